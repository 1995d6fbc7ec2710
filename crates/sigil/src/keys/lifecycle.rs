//! Key lifecycle as pure functions of (keys, now, schedule). Nothing here reads a clock or the
//! database; `keys::KeyService` applies what these functions decide.
//!
//! A key moves `next` (published, not signing) → `active` (signing) → `retiring` (published until
//! every token it signed has expired) → `retired` (unpublished; row deleted after retention).
//! States are derived from three instants on the key, so every process computes the same state
//! from the same row without coordination:
//!
//! ```text
//! created_at ──(next)── activates_at ──(active)── deactivates_at ──(retiring)── retires_at ──(retired)
//! ```

use serde::Serialize;
use sigil_verify::Algorithm;

/// The lifecycle facts of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTimes {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: Algorithm,
    /// Published from.
    pub created_at: i64,
    /// Signs from.
    pub activates_at: i64,
    /// Stops signing at.
    pub deactivates_at: Option<i64>,
    /// Unpublished from.
    pub retires_at: Option<i64>,
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published, not yet signing.
    Next,
    /// Signing.
    Active,
    /// Published so tokens it signed still verify; no longer signing.
    Retiring,
    /// Gone from the JWKS.
    Retired,
}

impl KeyState {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
        }
    }
}

/// The timing rules, all in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// How long a new key is published before it signs: JWKS max-age + clock skew.
    pub activation_delay: i64,
    /// How long a key stays published after it stops signing: longest token lifetime + clock skew.
    pub retire_after: i64,
    /// Automatic rotation period; `None` turns it off.
    pub rotate_every: Option<i64>,
    /// How long a retired key's row is kept before deletion.
    pub retention: i64,
}

impl KeyTimes {
    /// The state at `now`.
    pub fn state(&self, now: i64) -> KeyState {
        if self.retires_at.is_some_and(|r| now >= r) {
            KeyState::Retired
        } else if self.deactivates_at.is_some_and(|d| now >= d) {
            KeyState::Retiring
        } else if now >= self.activates_at {
            KeyState::Active
        } else {
            KeyState::Next
        }
    }

    /// Whether the key is in the JWKS at `now`.
    pub fn is_published(&self, now: i64) -> bool {
        self.state(now) != KeyState::Retired
    }
}

/// Anything that carries a key's lifecycle facts: the facts themselves, or a server's loaded key
/// (`keys::LoadedKey`), so [`signing_key`] is one rule for planning and for signing.
pub trait HasTimes {
    /// The key's lifecycle facts.
    fn times(&self) -> &KeyTimes;
}

impl HasTimes for KeyTimes {
    fn times(&self) -> &KeyTimes {
        self
    }
}

impl<T: HasTimes> HasTimes for std::sync::Arc<T> {
    fn times(&self) -> &KeyTimes {
        (**self).times()
    }
}

/// The key that signs `alg` at `now`: the most recently activated active key (the later created
/// one when two activated at the same instant).
pub fn signing_key<K: HasTimes>(keys: &[K], alg: Algorithm, now: i64) -> Option<&K> {
    keys.iter()
        .filter(|k| k.times().alg == alg && k.times().state(now) == KeyState::Active)
        .max_by_key(|k| (k.times().activates_at, k.times().created_at))
}

/// Keys of `alg` waiting to activate, earliest first.
pub fn pending(keys: &[KeyTimes], alg: Algorithm, now: i64) -> Vec<&KeyTimes> {
    let mut v: Vec<_> = keys
        .iter()
        .filter(|k| k.alg == alg && k.state(now) == KeyState::Next)
        .collect();
    v.sort_by_key(|k| k.activates_at);
    v
}

/// A change to one existing key's schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reschedule {
    /// Key id.
    pub kid: String,
    /// New activation instant.
    pub activates_at: i64,
    /// New end of signing.
    pub deactivates_at: Option<i64>,
    /// New unpublication instant.
    pub retires_at: Option<i64>,
}

/// What a rotation of one algorithm will do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RotationPlan {
    /// Algorithm rotated.
    pub alg: &'static str,
    /// A new key to generate, published now, signing from this instant. `None` when an already
    /// published key is activated instead.
    pub new_key_activates_at: Option<i64>,
    /// Schedule changes to existing keys (the pending key activated now, the active key retiring).
    pub reschedule: Vec<Reschedule>,
}

/// Why a plan was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A key is already published and waiting; activating it early needs `--now`.
    #[error(
        "key {kid} is already published and waiting to sign at {}; activating it earlier could reach verifiers that have not fetched it yet. Wait, or pass --now (`--plan` shows the waiting change)",
        instant(*activates_at)
    )]
    AlreadyPending {
        /// The waiting key.
        kid: String,
        /// When it will sign.
        activates_at: i64,
    },
    /// Tokens signed by this key may still be valid; dropping it would break them.
    #[error(
        "key {kid} may have signed tokens that are still valid until {}; retiring it now breaks them. Pass --now if the key is compromised",
        instant(*until)
    )]
    TokensMayBeValid {
        /// The key.
        kid: String,
        /// When its last token expires.
        until: i64,
    },
    /// No such key.
    #[error("no key with kid {0}")]
    UnknownKey(String),
    /// The key is already retired.
    #[error("key {0} is already retired")]
    AlreadyRetired(String),
}

/// An instant for people: RFC 3339, or the Unix seconds when out of range.
fn instant(t: i64) -> String {
    crate::clock::rfc3339(t).unwrap_or_else(|| t.to_string())
}

/// The rotation of `alg` already under way, if a key is waiting: the waiting key's schedule and
/// the current key's end of signing, as they stand. What `keys rotate --plan` shows instead of
/// refusing.
pub fn pending_rotation(keys: &[KeyTimes], alg: Algorithm, now: i64) -> Option<RotationPlan> {
    let waiting = pending(keys, alg, now);
    let first = waiting.first()?;
    let as_change = |k: &KeyTimes| Reschedule {
        kid: k.kid.clone(),
        activates_at: k.activates_at,
        deactivates_at: k.deactivates_at,
        retires_at: k.retires_at,
    };
    let mut reschedule = vec![as_change(first)];
    if let Some(current) = signing_key(keys, alg, now) {
        reschedule.push(as_change(current));
    }
    Some(RotationPlan {
        alg: alg.as_str(),
        new_key_activates_at: None,
        reschedule,
    })
}

/// Plan a rotation of `alg`.
///
/// Staged (`immediate == false`): a new key is published now and signs after
/// `activation_delay`; the current key stops signing then and stays published for
/// `retire_after` more. Refused while another key of `alg` is already waiting.
///
/// Immediate (`--now`): the waiting key, if any, or else a new key signs at once; the current key
/// retires as above (its tokens stay valid).
pub fn plan_rotation(
    keys: &[KeyTimes],
    alg: Algorithm,
    now: i64,
    schedule: &Schedule,
    immediate: bool,
) -> Result<RotationPlan, PlanError> {
    let waiting = pending(keys, alg, now);
    let mut reschedule = Vec::new();
    let (new_key_activates_at, switch_at) = match (waiting.first(), immediate) {
        (Some(k), false) => {
            return Err(PlanError::AlreadyPending {
                kid: k.kid.clone(),
                activates_at: k.activates_at,
            });
        }
        (Some(k), true) => {
            reschedule.push(Reschedule {
                kid: k.kid.clone(),
                activates_at: now,
                deactivates_at: None,
                retires_at: None,
            });
            (None, now)
        }
        (None, true) => (Some(now), now),
        (None, false) => {
            let at = now.saturating_add(schedule.activation_delay);
            (Some(at), at)
        }
    };
    if let Some(current) = signing_key(keys, alg, now) {
        reschedule.push(Reschedule {
            kid: current.kid.clone(),
            activates_at: current.activates_at,
            deactivates_at: Some(switch_at),
            retires_at: Some(switch_at.saturating_add(schedule.retire_after)),
        });
    }
    Ok(RotationPlan {
        alg: alg.as_str(),
        new_key_activates_at,
        reschedule,
    })
}

/// What retiring one key will do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetirePlan {
    /// The key retired now.
    pub retire: Reschedule,
    /// When the retired key was signing: the rotation that replaces it at once.
    pub replacement: Option<RotationPlan>,
}

/// Plan `keys retire KID`. A `next` key (it signed nothing) or a retiring key whose tokens have all
/// expired goes at once; an active key, or a retiring one whose tokens may still be valid, only with
/// `force` (`--now`, for a compromised key), and an active key is then replaced at once.
pub fn plan_retire(
    keys: &[KeyTimes],
    kid: &str,
    now: i64,
    schedule: &Schedule,
    force: bool,
) -> Result<RetirePlan, PlanError> {
    let key = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or_else(|| PlanError::UnknownKey(kid.to_owned()))?;
    let state = key.state(now);
    let tokens_valid_until = match state {
        KeyState::Retired => return Err(PlanError::AlreadyRetired(kid.to_owned())),
        KeyState::Next => None,
        KeyState::Active => Some(now.saturating_add(schedule.retire_after)),
        KeyState::Retiring => key
            .deactivates_at
            .map(|d| d.saturating_add(schedule.retire_after))
            .filter(|until| *until > now),
    };
    if let Some(until) = tokens_valid_until
        && !force
    {
        return Err(PlanError::TokensMayBeValid {
            kid: kid.to_owned(),
            until,
        });
    }
    let replacement = if state == KeyState::Active {
        let others: Vec<KeyTimes> = keys.iter().filter(|k| k.kid != kid).cloned().collect();
        Some(plan_rotation(&others, key.alg, now, schedule, true)?)
    } else {
        None
    };
    Ok(RetirePlan {
        retire: Reschedule {
            kid: kid.to_owned(),
            activates_at: key.activates_at.min(now),
            deactivates_at: Some(key.deactivates_at.map_or(now, |d| d.min(now))),
            retires_at: Some(now),
        },
        replacement,
    })
}

/// Whether the scheduled rotation of `alg` is due at `now`: the active key has signed for
/// `rotate_every` minus the activation delay and nothing is waiting. The new key then activates
/// exactly `rotate_every` after the current one did (or after the delay, if that is later).
pub fn auto_rotation_due(
    keys: &[KeyTimes],
    alg: Algorithm,
    now: i64,
    schedule: &Schedule,
) -> Option<RotationPlan> {
    let every = schedule.rotate_every?;
    let current = signing_key(keys, alg, now)?;
    if !pending(keys, alg, now).is_empty() {
        return None;
    }
    let due_at = current.activates_at.saturating_add(every);
    if now < due_at.saturating_sub(schedule.activation_delay) {
        return None;
    }
    let switch_at = due_at.max(now.saturating_add(schedule.activation_delay));
    Some(RotationPlan {
        alg: alg.as_str(),
        new_key_activates_at: Some(switch_at),
        reschedule: vec![Reschedule {
            kid: current.kid.clone(),
            activates_at: current.activates_at,
            deactivates_at: Some(switch_at),
            retires_at: Some(switch_at.saturating_add(schedule.retire_after)),
        }],
    })
}

/// Algorithms among `required` with neither an active nor a waiting key: these get a key that
/// signs at once (first start, or after every key of an algorithm was retired).
pub fn missing_algorithms(keys: &[KeyTimes], required: &[Algorithm], now: i64) -> Vec<Algorithm> {
    required
        .iter()
        .copied()
        .filter(|alg| signing_key(keys, *alg, now).is_none() && pending(keys, *alg, now).is_empty())
        .collect()
}

/// Retired keys whose retention has passed: their rows are deleted.
pub fn prunable(keys: &[KeyTimes], now: i64, schedule: &Schedule) -> Vec<String> {
    keys.iter()
        .filter(|k| {
            k.retires_at
                .is_some_and(|r| r.saturating_add(schedule.retention) <= now)
        })
        .map(|k| k.kid.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000;
    const SCHED: Schedule = Schedule {
        activation_delay: 960, // 15 min max-age + 60 s skew
        retire_after: 660,     // 10 min tokens + 60 s skew
        rotate_every: Some(90 * 86_400),
        retention: 7 * 86_400,
    };

    fn key(kid: &str, alg: Algorithm, activates_at: i64) -> KeyTimes {
        KeyTimes {
            kid: kid.into(),
            alg,
            created_at: activates_at,
            activates_at,
            deactivates_at: None,
            retires_at: None,
        }
    }

    fn apply(keys: &mut Vec<KeyTimes>, plan: &RotationPlan, new_kid: &str, now: i64) {
        for r in &plan.reschedule {
            if let Some(k) = keys.iter_mut().find(|k| k.kid == r.kid) {
                k.activates_at = r.activates_at;
                k.deactivates_at = r.deactivates_at;
                k.retires_at = r.retires_at;
            }
        }
        if let Some(at) = plan.new_key_activates_at {
            let alg = plan.alg.parse().unwrap_or(Algorithm::ES256);
            keys.push(KeyTimes {
                created_at: now,
                ..key(new_kid, alg, at)
            });
        }
    }

    #[test]
    fn states_follow_the_instants() {
        let k = KeyTimes {
            kid: "a".into(),
            alg: Algorithm::ES256,
            created_at: T0,
            activates_at: T0 + 10,
            deactivates_at: Some(T0 + 20),
            retires_at: Some(T0 + 30),
        };
        assert_eq!(k.state(T0), KeyState::Next);
        assert_eq!(k.state(T0 + 10), KeyState::Active);
        assert_eq!(k.state(T0 + 20), KeyState::Retiring);
        assert_eq!(k.state(T0 + 29), KeyState::Retiring);
        assert_eq!(k.state(T0 + 30), KeyState::Retired);
        assert!(k.is_published(T0));
        assert!(!k.is_published(T0 + 30));
    }

    #[test]
    fn staged_rotation_publishes_before_it_signs_and_keeps_the_old_key_for_its_tokens()
    -> Result<(), PlanError> {
        let mut keys = vec![key("old", Algorithm::ES256, T0)];
        let now = T0 + 100;
        let plan = plan_rotation(&keys, Algorithm::ES256, now, &SCHED, false)?;
        assert_eq!(
            plan.new_key_activates_at,
            Some(now + SCHED.activation_delay)
        );
        apply(&mut keys, &plan, "new", now);

        // Right after: both published, old still signs.
        assert_eq!(keys[1].state(now), KeyState::Next);
        assert_eq!(
            signing_key(&keys, Algorithm::ES256, now).map(|k| k.kid.as_str()),
            Some("old")
        );
        // One cache lifetime + skew later, new signs; old retiring.
        let switch = now + SCHED.activation_delay;
        assert_eq!(
            signing_key(&keys, Algorithm::ES256, switch).map(|k| k.kid.as_str()),
            Some("new")
        );
        assert_eq!(keys[0].state(switch), KeyState::Retiring);
        // Old is published until its last token (signed just before switch) expires, plus skew.
        assert!(keys[0].is_published(switch + SCHED.retire_after - 1));
        assert!(!keys[0].is_published(switch + SCHED.retire_after));
        Ok(())
    }

    #[test]
    fn a_second_staged_rotation_is_refused_while_one_is_waiting() -> Result<(), PlanError> {
        let mut keys = vec![key("old", Algorithm::ES256, T0)];
        let plan = plan_rotation(&keys, Algorithm::ES256, T0 + 1, &SCHED, false)?;
        apply(&mut keys, &plan, "new", T0 + 1);
        let again = plan_rotation(&keys, Algorithm::ES256, T0 + 2, &SCHED, false);
        assert!(matches!(again, Err(PlanError::AlreadyPending { ref kid, .. }) if kid == "new"));
        // A plan shows the waiting change instead.
        let shown = pending_rotation(&keys, Algorithm::ES256, T0 + 2)
            .ok_or(PlanError::UnknownKey("pending".into()))?;
        assert_eq!(shown.new_key_activates_at, None);
        assert_eq!(shown.reschedule.len(), 2, "{shown:?}");
        assert!(pending_rotation(&keys, Algorithm::RS256, T0 + 2).is_none());
        // --now activates the waiting key instead of making a third.
        let now_plan = plan_rotation(&keys, Algorithm::ES256, T0 + 2, &SCHED, true)?;
        assert_eq!(now_plan.new_key_activates_at, None);
        apply(&mut keys, &now_plan, "unused", T0 + 2);
        assert_eq!(
            signing_key(&keys, Algorithm::ES256, T0 + 2).map(|k| k.kid.as_str()),
            Some("new")
        );
        assert_eq!(keys[0].state(T0 + 2), KeyState::Retiring);
        assert_eq!(keys.len(), 2);
        Ok(())
    }

    #[test]
    fn immediate_rotation_signs_at_once_but_keeps_old_tokens_verifiable() -> Result<(), PlanError> {
        let mut keys = vec![key("old", Algorithm::RS256, T0)];
        let plan = plan_rotation(&keys, Algorithm::RS256, T0 + 5, &SCHED, true)?;
        apply(&mut keys, &plan, "new", T0 + 5);
        assert_eq!(
            signing_key(&keys, Algorithm::RS256, T0 + 5).map(|k| k.kid.as_str()),
            Some("new")
        );
        assert!(keys[0].is_published(T0 + 5 + SCHED.retire_after - 1));
        Ok(())
    }

    #[test]
    fn rotation_of_one_algorithm_leaves_others_alone() -> Result<(), PlanError> {
        let keys = vec![
            key("es", Algorithm::ES256, T0),
            key("rs", Algorithm::RS256, T0),
        ];
        let plan = plan_rotation(&keys, Algorithm::ES256, T0 + 1, &SCHED, false)?;
        assert!(plan.reschedule.iter().all(|r| r.kid == "es"));
        Ok(())
    }

    #[test]
    fn retire_refuses_to_drop_a_key_with_live_tokens_unless_forced() -> Result<(), PlanError> {
        let keys = vec![key("a", Algorithm::ES256, T0)];
        let refused = plan_retire(&keys, "a", T0 + 1, &SCHED, false);
        assert!(matches!(refused, Err(PlanError::TokensMayBeValid { .. })));
        let forced = plan_retire(&keys, "a", T0 + 1, &SCHED, true)?;
        assert_eq!(forced.retire.retires_at, Some(T0 + 1));
        let replacement = forced
            .replacement
            .ok_or(PlanError::UnknownKey("replacement".into()))?;
        assert_eq!(
            replacement.new_key_activates_at,
            Some(T0 + 1),
            "an active key is replaced at once"
        );
        Ok(())
    }

    #[test]
    fn retire_drops_a_next_key_or_an_expired_retiring_key_at_once() -> Result<(), PlanError> {
        let keys = vec![
            key("next", Algorithm::ES256, T0 + 1000),
            KeyTimes {
                deactivates_at: Some(T0 - 1000),
                retires_at: Some(T0 + 10_000),
                ..key("old", Algorithm::ES256, T0 - 5000)
            },
        ];
        assert!(
            plan_retire(&keys, "next", T0, &SCHED, false)?
                .replacement
                .is_none()
        );
        assert!(
            plan_retire(&keys, "old", T0, &SCHED, false).is_ok(),
            "its tokens expired at T0-340"
        );
        assert!(matches!(
            plan_retire(&keys, "nope", T0, &SCHED, true),
            Err(PlanError::UnknownKey(_))
        ));
        Ok(())
    }

    #[test]
    fn retire_refuses_a_retiring_key_whose_tokens_may_be_valid() {
        let keys = vec![KeyTimes {
            deactivates_at: Some(T0 - 10),
            retires_at: Some(T0 + 650),
            ..key("old", Algorithm::ES256, T0 - 5000)
        }];
        assert!(matches!(
            plan_retire(&keys, "old", T0, &SCHED, false),
            Err(PlanError::TokensMayBeValid { until, .. }) if until == T0 - 10 + SCHED.retire_after
        ));
    }

    #[test]
    fn automatic_rotation_is_due_one_activation_delay_before_the_period_ends() {
        let every = 90 * 86_400;
        let keys = vec![key("a", Algorithm::ES256, T0)];
        let due = T0 + every - SCHED.activation_delay;
        assert!(auto_rotation_due(&keys, Algorithm::ES256, due - 1, &SCHED).is_none());
        let plan = auto_rotation_due(&keys, Algorithm::ES256, due, &SCHED);
        assert_eq!(plan.and_then(|p| p.new_key_activates_at), Some(T0 + every));
        // Late (server was down): still publishes a full delay ahead.
        let late = T0 + every + 5000;
        let plan = auto_rotation_due(&keys, Algorithm::ES256, late, &SCHED);
        assert_eq!(
            plan.and_then(|p| p.new_key_activates_at),
            Some(late + SCHED.activation_delay)
        );
        let off = Schedule {
            rotate_every: None,
            ..SCHED
        };
        assert!(auto_rotation_due(&keys, Algorithm::ES256, late, &off).is_none());
    }

    #[test]
    fn automatic_rotation_waits_while_a_key_is_pending() {
        let keys = vec![
            key("a", Algorithm::ES256, T0),
            key("b", Algorithm::ES256, T0 + 100 * 86_400),
        ];
        assert!(auto_rotation_due(&keys, Algorithm::ES256, T0 + 95 * 86_400, &SCHED).is_none());
    }

    #[test]
    fn missing_and_prunable() {
        let keys = vec![
            key("es", Algorithm::ES256, T0),
            KeyTimes {
                deactivates_at: Some(T0),
                retires_at: Some(T0 + 100),
                ..key("rs", Algorithm::RS256, T0 - 10)
            },
        ];
        assert_eq!(
            missing_algorithms(&keys, &[Algorithm::ES256, Algorithm::RS256], T0 + 200),
            vec![Algorithm::RS256]
        );
        assert!(prunable(&keys, T0 + 100 + SCHED.retention - 1, &SCHED).is_empty());
        assert_eq!(
            prunable(&keys, T0 + 100 + SCHED.retention, &SCHED),
            vec!["rs".to_owned()]
        );
    }
}
