//! Key lifecycle as pure functions of (keys, now, schedule). Nothing here reads a clock or the
//! database; `keys::KeyService` applies what these functions decide.
//!
//! A key moves `next` (published, not signing) → `active` (signing) → `retiring` (no longer
//! signing; kept until every token it signed has expired) → `retired` (gone from the ring; row
//! deleted after retention). States are derived from instants on the key, so every process
//! computes the same state from the same row without coordination:
//!
//! ```text
//! created_at ──(next)── activates_at ──(active)── deactivates_at ──(retiring)── retires_at ──(retired)
//!                                                                 └ unpublishes_at
//! ```
//!
//! Retention counts from the last token a key signed (`deactivates_at`), with two horizons,
//! because not every token is verified by the same party:
//!
//! * access and ID tokens are verified by third parties from `/jwks.json`: a retiring key stays
//!   published until `unpublishes_at` = `deactivates_at` + [`Schedule::unpublish_after`] (their
//!   lifetime plus clock skew);
//! * refresh tokens (and `id_token_hint`s) come back to Sigil alone: the key stays in the ring,
//!   unpublished, until `retires_at` = `deactivates_at` + [`Schedule::retire_after`] (the refresh
//!   lifetime plus clock skew).
//!
//! So however often keys rotate, the JWKS holds only the keys of the last `unpublish_after`.
//! A key stored before `unpublishes_at` existed (NULL) stays published until `retires_at`.

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
    /// Leaves the JWKS at (`None`: at `retires_at`).
    pub unpublishes_at: Option<i64>,
    /// Leaves the ring at: nothing it signed verifies any more.
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
    /// No longer signing; kept so the tokens it signed still verify: published until
    /// `unpublishes_at`, then in the ring for Sigil's own refresh tokens only.
    Retiring,
    /// Gone from the JWKS and the ring.
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
    /// How long a key stays published after it stops signing: the longest lifetime of a token
    /// third parties verify (access and ID tokens) + clock skew. At most `retire_after`.
    pub unpublish_after: i64,
    /// How long a key stays in the ring after it stops signing: the longest lifetime of any token
    /// Sigil signs (refresh tokens, which only Sigil verifies) + clock skew.
    pub retire_after: i64,
    /// Automatic rotation period; `None` turns it off.
    pub rotate_every: Option<i64>,
    /// How long a retired key's row is kept before deletion.
    pub retention: i64,
}

impl Schedule {
    /// `(unpublishes_at, retires_at)` of a key that stops signing at `deactivates_at`.
    fn horizons(&self, deactivates_at: i64) -> (i64, i64) {
        let retires_at = deactivates_at.saturating_add(self.retire_after);
        let unpublishes_at = deactivates_at
            .saturating_add(self.unpublish_after)
            .min(retires_at);
        (unpublishes_at, retires_at)
    }

    /// The schedule change that makes `key` stop signing at `deactivates_at`.
    fn superseded(&self, key: &KeyTimes, deactivates_at: i64) -> Reschedule {
        let (unpublishes_at, retires_at) = self.horizons(deactivates_at);
        Reschedule {
            kid: key.kid.clone(),
            activates_at: key.activates_at,
            deactivates_at: Some(deactivates_at),
            unpublishes_at: Some(unpublishes_at),
            retires_at: Some(retires_at),
        }
    }
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

    /// When the key leaves the JWKS: `unpublishes_at`, never later than `retires_at` (a key
    /// stored before `unpublishes_at` existed leaves at `retires_at`).
    pub fn unpublished_from(&self) -> Option<i64> {
        match (self.unpublishes_at, self.retires_at) {
            (Some(u), Some(r)) => Some(u.min(r)),
            (u, r) => u.or(r),
        }
    }

    /// Whether the key is in the JWKS at `now`.
    pub fn is_published(&self, now: i64) -> bool {
        self.unpublished_from().is_none_or(|u| now < u)
    }

    /// Whether the key is in the ring at `now` (published or not): tokens it signed verify.
    pub fn is_kept(&self, now: i64) -> bool {
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
    /// New end of publication.
    pub unpublishes_at: Option<i64>,
    /// New end of the key (leaves the ring).
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
        unpublishes_at: k.unpublishes_at,
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
/// `activation_delay`; the current key stops signing then, stays published for
/// `unpublish_after` more and in the ring for `retire_after`. Refused while another key of `alg`
/// is already waiting.
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
                unpublishes_at: None,
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
        reschedule.push(schedule.superseded(current, switch_at));
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
            unpublishes_at: Some(key.unpublished_from().map_or(now, |u| u.min(now))),
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
        reschedule: vec![schedule.superseded(current, switch_at)],
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
        activation_delay: 960,          // 15 min max-age + 60 s skew
        unpublish_after: 660,           // 10 min access and ID tokens + 60 s skew
        retire_after: 30 * 86_400 + 60, // 30 days of refresh tokens + 60 s skew
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
            unpublishes_at: None,
            retires_at: None,
        }
    }

    fn apply(keys: &mut Vec<KeyTimes>, plan: &RotationPlan, new_kid: &str, now: i64) {
        for r in &plan.reschedule {
            if let Some(k) = keys.iter_mut().find(|k| k.kid == r.kid) {
                k.activates_at = r.activates_at;
                k.deactivates_at = r.deactivates_at;
                k.unpublishes_at = r.unpublishes_at;
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
            unpublishes_at: Some(T0 + 25),
            retires_at: Some(T0 + 30),
        };
        assert_eq!(k.state(T0), KeyState::Next);
        assert_eq!(k.state(T0 + 10), KeyState::Active);
        assert_eq!(k.state(T0 + 20), KeyState::Retiring);
        assert_eq!(k.state(T0 + 29), KeyState::Retiring);
        assert_eq!(k.state(T0 + 30), KeyState::Retired);
        for (now, published, kept) in [
            (T0, true, true),
            (T0 + 24, true, true),
            (T0 + 25, false, true),
            (T0 + 29, false, true),
            (T0 + 30, false, false),
        ] {
            assert_eq!(
                (k.is_published(now), k.is_kept(now)),
                (published, kept),
                "at T0+{}",
                now - T0
            );
        }
    }

    #[test]
    fn a_key_stored_without_unpublishes_at_is_published_until_it_retires() {
        let k = KeyTimes {
            deactivates_at: Some(T0 + 20),
            retires_at: Some(T0 + 30),
            ..key("legacy", Algorithm::ES256, T0)
        };
        assert_eq!(k.unpublished_from(), Some(T0 + 30));
        assert!(k.is_published(T0 + 29));
        assert!(!k.is_published(T0 + 30));
        // Never published past its retirement, whatever is stored.
        let late = KeyTimes {
            unpublishes_at: Some(T0 + 40),
            ..k
        };
        assert_eq!(late.unpublished_from(), Some(T0 + 30));
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
        // Old is published until its last access or ID token (signed just before switch)
        // expires, plus skew; then kept for its refresh tokens.
        assert!(keys[0].is_published(switch + SCHED.unpublish_after - 1));
        assert!(!keys[0].is_published(switch + SCHED.unpublish_after));
        assert!(keys[0].is_kept(switch + SCHED.retire_after - 1));
        assert!(!keys[0].is_kept(switch + SCHED.retire_after));
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
        let now = T0 + 5;
        let plan = plan_rotation(&keys, Algorithm::RS256, now, &SCHED, true)?;
        apply(&mut keys, &plan, "new", now);
        assert_eq!(
            signing_key(&keys, Algorithm::RS256, now).map(|k| k.kid.as_str()),
            Some("new")
        );
        let old = &keys[0];
        assert_eq!(old.deactivates_at, Some(now));
        assert_eq!(old.unpublishes_at, Some(now + 660));
        assert_eq!(old.retires_at, Some(now + 30 * 86_400 + 60));
        // Published while an access or ID token it signed may be valid...
        for t in [now, now + 659] {
            assert_eq!(
                (old.state(t), old.is_published(t)),
                (KeyState::Retiring, true)
            );
        }
        // ...then kept, unpublished, while a refresh token it signed may be...
        for t in [now + 660, now + 30 * 86_400 + 59] {
            assert_eq!(
                (old.state(t), old.is_published(t), old.is_kept(t)),
                (KeyState::Retiring, false, true)
            );
        }
        // ...then retired.
        let end = now + 30 * 86_400 + 60;
        assert_eq!(
            (old.state(end), old.is_published(end), old.is_kept(end)),
            (KeyState::Retired, false, false)
        );
        Ok(())
    }

    #[test]
    fn repeated_immediate_rotation_keeps_the_published_set_bounded() -> Result<(), PlanError> {
        let mut keys = vec![key("k0", Algorithm::ES256, T0)];
        // 60 rotations, one a minute: after the publish horizon only the keys of its last
        // `unpublish_after` are published, while all stay in the ring for their refresh tokens.
        let mut now = T0;
        for i in 1..=60 {
            now = T0 + i * 60;
            let plan = plan_rotation(&keys, Algorithm::ES256, now, &SCHED, true)?;
            apply(&mut keys, &plan, &format!("k{i}"), now);
        }
        let published = keys.iter().filter(|k| k.is_published(now)).count();
        let bound = usize::try_from(SCHED.unpublish_after / 60).unwrap_or(usize::MAX) + 1;
        assert_eq!(
            published, bound,
            "the signing key and the last 11 minutes' keys"
        );
        assert_eq!(keys.iter().filter(|k| k.is_kept(now)).count(), 61);
        let later = now + SCHED.unpublish_after;
        assert_eq!(
            keys.iter()
                .filter(|k| k.is_published(later))
                .map(|k| k.kid.as_str())
                .collect::<Vec<_>>(),
            vec!["k60"]
        );
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
        assert_eq!(forced.retire.unpublishes_at, Some(T0 + 1));
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
                deactivates_at: Some(T0 - 31 * 86_400),
                retires_at: Some(T0 + 10_000),
                ..key("old", Algorithm::ES256, T0 - 40 * 86_400)
            },
        ];
        assert!(
            plan_retire(&keys, "next", T0, &SCHED, false)?
                .replacement
                .is_none()
        );
        assert!(
            plan_retire(&keys, "old", T0, &SCHED, false).is_ok(),
            "its tokens expired a day before T0"
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
        // Unpublished but kept: its refresh tokens may still be valid.
        let kept = vec![KeyTimes {
            deactivates_at: Some(T0 - 86_400),
            unpublishes_at: Some(T0 - 86_400 + SCHED.unpublish_after),
            retires_at: Some(T0 - 86_400 + SCHED.retire_after),
            ..key("kept", Algorithm::ES256, T0 - 5 * 86_400)
        }];
        assert!(!kept[0].is_published(T0) && kept[0].is_kept(T0));
        assert!(matches!(
            plan_retire(&kept, "kept", T0, &SCHED, false),
            Err(PlanError::TokensMayBeValid { .. })
        ));
        let forced = plan_retire(&kept, "kept", T0, &SCHED, true);
        assert!(
            forced.is_ok_and(|p| p.retire.unpublishes_at == kept[0].unpublishes_at),
            "retiring an unpublished key does not publish it again"
        );
    }

    #[test]
    fn automatic_rotation_is_due_one_activation_delay_before_the_period_ends() {
        let every = 90 * 86_400;
        let keys = vec![key("a", Algorithm::ES256, T0)];
        let due = T0 + every - SCHED.activation_delay;
        assert!(auto_rotation_due(&keys, Algorithm::ES256, due - 1, &SCHED).is_none());
        let plan = auto_rotation_due(&keys, Algorithm::ES256, due, &SCHED);
        let switch = T0 + every;
        assert_eq!(
            plan.as_ref().and_then(|p| p.new_key_activates_at),
            Some(switch)
        );
        // The current key's two horizons count from its last token.
        let current = plan.as_ref().and_then(|p| p.reschedule.first());
        assert_eq!(
            current.map(|r| (r.deactivates_at, r.unpublishes_at, r.retires_at)),
            Some((
                Some(switch),
                Some(switch + SCHED.unpublish_after),
                Some(switch + SCHED.retire_after)
            ))
        );
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
