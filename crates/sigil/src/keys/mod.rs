//! The key ring: signing keys, their lifecycle, encryption at rest and the published JWKS.
//!
//! * [`lifecycle`] decides (pure functions of keys, now and the schedule);
//! * [`KeyService`] applies decisions to the database under the `keys` lock row, so the CLI, the
//!   rotation job and several servers never interleave key changes;
//! * [`KeyRing`] is a server's in-memory view: parsed ring signers for every key not retired
//!   (what verifies Sigil's own tokens) and the pre-rendered JWKS of the published ones, swapped
//!   atomically (readers never take a lock a refresh holds).
//!
//! **Invariant:** the database never holds a plaintext private key; every private key is sealed
//! with the master key, with its `kid` as associated data.

pub mod lifecycle;
pub mod master;
pub mod material;

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use ring::digest;
use serde::Serialize;
use sigil_verify::{Algorithm, Jwk, JwkSet};

use crate::clock::rfc3339;
use crate::crypto::MasterKey;
use crate::store::keys::{KeyRow, KeySchedule};
use crate::store::{DbConn, Store, StoreError, keys as key_store, meta};
use lifecycle::{KeyState, KeyTimes, PlanError, Reschedule, RotationPlan, Schedule};
use material::{Signer, b64};

/// Key-ring errors.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A lifecycle rule refused the change.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Generating or parsing key material failed.
    #[error(transparent)]
    Material(#[from] material::MaterialError),
    /// A private key did not decrypt: wrong master key.
    #[error(transparent)]
    Decrypt(#[from] crate::crypto::DecryptError),
    /// A stored row is malformed.
    #[error("stored key {kid} is malformed: {reason}")]
    Corrupt {
        /// Key id.
        kid: String,
        /// What is wrong.
        reason: String,
    },
    /// Writing exported keys failed.
    #[error("cannot write {path}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// A key as `keys list` shows it (CONTRACT: kid, alg, state, created_at, activates_at, retires_at;
/// also whether it is in the JWKS now and until when).
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    /// Key id (RFC 7638 thumbprint).
    pub kid: String,
    /// Algorithm.
    pub alg: &'static str,
    /// Lifecycle state now.
    pub state: KeyState,
    /// RFC 3339: published since.
    pub created_at: Option<String>,
    /// RFC 3339: signs from.
    pub activates_at: Option<String>,
    /// RFC 3339: stops signing at (superseded), if scheduled.
    pub deactivates_at: Option<String>,
    /// Whether `/jwks.json` holds it now (a retiring key may be kept only for Sigil's own
    /// refresh tokens).
    pub published: bool,
    /// RFC 3339: leaves the JWKS at, if scheduled.
    pub unpublishes_at: Option<String>,
    /// RFC 3339: leaves the ring at (nothing it signed verifies after), if scheduled.
    pub retires_at: Option<String>,
}

fn times_of(row: &KeyRow) -> Result<KeyTimes, KeyError> {
    let alg = row
        .alg
        .parse::<Algorithm>()
        .map_err(|_| KeyError::Corrupt {
            kid: row.kid.clone(),
            reason: format!("unknown alg {}", row.alg),
        })?;
    Ok(KeyTimes {
        kid: row.kid.clone(),
        alg,
        created_at: row.created_at,
        activates_at: row.activates_at,
        deactivates_at: row.deactivates_at,
        unpublishes_at: row.unpublishes_at,
        retires_at: row.retires_at,
    })
}

fn info_of(t: &KeyTimes, now: i64) -> KeyInfo {
    KeyInfo {
        kid: t.kid.clone(),
        alg: t.alg.as_str(),
        state: t.state(now),
        created_at: rfc3339(t.created_at),
        activates_at: rfc3339(t.activates_at),
        deactivates_at: t.deactivates_at.and_then(rfc3339),
        published: t.is_published(now),
        unpublishes_at: t.unpublished_from().and_then(rfc3339),
        retires_at: t.retires_at.and_then(rfc3339),
    }
}

fn schedule_of(r: &Reschedule) -> KeySchedule {
    KeySchedule {
        activates_at: r.activates_at,
        deactivates_at: r.deactivates_at,
        unpublishes_at: r.unpublishes_at,
        retires_at: r.retires_at,
    }
}

/// The outcome of one applied rotation, for the CLI.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    /// What was planned.
    pub plan: RotationPlan,
    /// The new key's id, when one was generated.
    pub new_kid: Option<String>,
    /// A plan (`--plan`) that shows a rotation already waiting rather than a new one.
    pub pending: bool,
}

/// Database-side key operations: used by the CLI, the jobs and `serve` start-up.
#[derive(Debug, Clone)]
pub struct KeyService {
    /// Storage.
    pub store: Store,
    /// Master key (sealing).
    pub master: Arc<MasterKey>,
    /// Timing rules.
    pub schedule: Schedule,
    /// RSA size for new keys.
    pub rsa_bits: u32,
}

const KEYS_LOCK: &str = "keys";

impl KeyService {
    fn load_times(conn: &mut DbConn) -> Result<(Vec<KeyRow>, Vec<KeyTimes>), KeyError> {
        let rows = key_store::all(conn)?;
        let times = rows.iter().map(times_of).collect::<Result<Vec<_>, _>>()?;
        Ok((rows, times))
    }

    /// Every key with its state at `now`.
    pub fn list(&self, now: i64) -> Result<Vec<KeyInfo>, KeyError> {
        let (_, times) = self.store.run_blocking(Self::load_times)?;
        Ok(times.iter().map(|t| info_of(t, now)).collect())
    }

    /// Check that every stored private key opens with this master key. A wrong key is a start-up
    /// error, never a silent new key set.
    pub fn check_master_key(&self) -> Result<usize, KeyError> {
        let rows = self.store.run_blocking(key_store::all)?;
        for r in &rows {
            self.master.open(&r.kid, &r.private_key)?;
        }
        Ok(rows.len())
    }

    fn new_row(&self, alg: Algorithm, now: i64, activates_at: i64) -> Result<KeyRow, KeyError> {
        let g = material::generate(alg, self.rsa_bits)?;
        let kid = g.jwk.kid.clone().unwrap_or_else(|| g.jwk.thumbprint());
        let public_jwk = serde_json::to_string(&g.jwk).map_err(|e| KeyError::Corrupt {
            kid: kid.clone(),
            reason: e.to_string(),
        })?;
        Ok(KeyRow {
            private_key: self.master.seal(&kid, &g.pkcs8),
            kid,
            alg: alg.as_str().to_owned(),
            public_jwk,
            public_pem: g.public_pem,
            created_at: now,
            activates_at,
            deactivates_at: None,
            retires_at: None,
            unpublishes_at: None,
        })
    }

    fn apply(&self, conn: &mut DbConn, plan: &RotationPlan, now: i64) -> Result<Applied, KeyError> {
        for r in &plan.reschedule {
            key_store::set_schedule(conn, &r.kid, schedule_of(r))?;
        }
        let mut new_kid = None;
        if let Some(at) = plan.new_key_activates_at {
            let alg = plan
                .alg
                .parse::<Algorithm>()
                .map_err(|_| KeyError::Corrupt {
                    kid: String::new(),
                    reason: format!("bad alg {}", plan.alg),
                })?;
            let row = self.new_row(alg, now, at)?;
            key_store::insert(conn, &row)?;
            new_kid = Some(row.kid);
        }
        Ok(Applied {
            plan: plan.clone(),
            new_kid,
            pending: false,
        })
    }

    /// Make sure each of `required` has a key; missing ones are created signing at once.
    pub fn ensure(&self, required: &[Algorithm], now: i64) -> Result<Vec<Applied>, KeyError> {
        self.store.run_blocking(|conn| {
            meta::locked(conn, KEYS_LOCK, |c| {
                let (_, times) = Self::load_times(c)?;
                let mut out = Vec::new();
                for alg in lifecycle::missing_algorithms(&times, required, now) {
                    let plan = lifecycle::plan_rotation(&times, alg, now, &self.schedule, true)?;
                    out.push(self.apply(c, &plan, now)?);
                }
                Ok(out)
            })
        })
    }

    /// Algorithms to rotate when none is named: every algorithm that has a signing key.
    pub fn algorithms_in_use(&self, now: i64) -> Result<Vec<Algorithm>, KeyError> {
        let (_, times) = self.store.run_blocking(Self::load_times)?;
        let mut algs: Vec<Algorithm> = times
            .iter()
            .filter(|t| matches!(t.state(now), KeyState::Active | KeyState::Next))
            .map(|t| t.alg)
            .collect();
        algs.sort_by_key(|a| a.as_str());
        algs.dedup();
        Ok(algs)
    }

    /// Plan (and unless `dry_run`, apply) a rotation of each of `algs`. All or nothing. A dry
    /// run of a staged rotation while one is already waiting shows that waiting change.
    pub fn rotate(
        &self,
        algs: &[Algorithm],
        now: i64,
        immediate: bool,
        dry_run: bool,
    ) -> Result<Vec<Applied>, KeyError> {
        self.store.run_blocking(|conn| {
            meta::locked(conn, KEYS_LOCK, |c| {
                let (_, times) = Self::load_times(c)?;
                let mut out = Vec::new();
                for alg in algs {
                    if dry_run
                        && !immediate
                        && let Some(plan) = lifecycle::pending_rotation(&times, *alg, now)
                    {
                        out.push(Applied {
                            plan,
                            new_kid: None,
                            pending: true,
                        });
                        continue;
                    }
                    let plan =
                        lifecycle::plan_rotation(&times, *alg, now, &self.schedule, immediate)?;
                    if dry_run {
                        out.push(Applied {
                            plan,
                            new_kid: None,
                            pending: false,
                        });
                    } else {
                        out.push(self.apply(c, &plan, now)?);
                    }
                }
                Ok(out)
            })
        })
    }

    /// Retire `kid` now (see [`lifecycle::plan_retire`]).
    pub fn retire(
        &self,
        kid: &str,
        now: i64,
        force: bool,
    ) -> Result<(Reschedule, Option<Applied>), KeyError> {
        self.store.run_blocking(|conn| {
            meta::locked(conn, KEYS_LOCK, |c| {
                let (_, times) = Self::load_times(c)?;
                let plan = lifecycle::plan_retire(&times, kid, now, &self.schedule, force)?;
                let r = &plan.retire;
                key_store::set_schedule(c, &r.kid, schedule_of(r))?;
                let replacement = match &plan.replacement {
                    Some(p) => Some(self.apply(c, p, now)?),
                    None => None,
                };
                Ok((plan.retire.clone(), replacement))
            })
        })
    }

    /// The scheduled rotation, on `conn` (the rotation job's, under its lease): rotate every
    /// algorithm whose period is up. Returns what was done.
    pub fn auto_rotate(&self, conn: &mut DbConn, now: i64) -> Result<Vec<Applied>, KeyError> {
        meta::locked(conn, KEYS_LOCK, |c| {
            let (_, times) = Self::load_times(c)?;
            let mut algs: Vec<Algorithm> = times.iter().map(|t| t.alg).collect();
            algs.sort_by_key(|a| a.as_str());
            algs.dedup();
            let mut out = Vec::new();
            for alg in algs {
                if let Some(plan) = lifecycle::auto_rotation_due(&times, alg, now, &self.schedule) {
                    out.push(self.apply(c, &plan, now)?);
                }
            }
            Ok(out)
        })
    }

    /// Delete retired keys past retention, on `conn` (the prune job's, under its lease). Returns
    /// their kids.
    pub fn prune(&self, conn: &mut DbConn, now: i64) -> Result<Vec<String>, KeyError> {
        meta::locked(conn, KEYS_LOCK, |c| {
            let (_, times) = Self::load_times(c)?;
            let kids = lifecycle::prunable(&times, now, &self.schedule);
            if !kids.is_empty() {
                key_store::delete_retired_before(
                    c,
                    now.saturating_sub(self.schedule.retention)
                        .saturating_add(1),
                )?;
            }
            Ok(kids)
        })
    }

    /// Write the published public keys to `dir` as `jwks.json` or one `<kid>.pem` per key.
    /// Never a private key.
    pub fn export(
        &self,
        now: i64,
        format: ExportFormat,
        dir: &Path,
    ) -> Result<Vec<String>, KeyError> {
        let (rows, times) = self.store.run_blocking(Self::load_times)?;
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| KeyError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let published: Vec<&KeyRow> = rows
            .iter()
            .zip(&times)
            .filter(|(_, t)| t.is_published(now))
            .map(|(r, _)| r)
            .collect();
        let mut written = Vec::new();
        match format {
            ExportFormat::Jwks => {
                let set = JwkSet {
                    keys: published
                        .iter()
                        .map(|r| parse_jwk(r))
                        .collect::<Result<Vec<_>, _>>()?,
                };
                let path = dir.join("jwks.json");
                let body = serde_json::to_vec_pretty(&set).map_err(|e| KeyError::Corrupt {
                    kid: String::new(),
                    reason: e.to_string(),
                })?;
                std::fs::write(&path, body).map_err(io(&path))?;
                written.push(path.display().to_string());
            }
            ExportFormat::Pem => {
                for r in published {
                    let path = dir.join(format!("{}.pem", r.kid));
                    std::fs::write(&path, &r.public_pem).map_err(io(&path))?;
                    written.push(path.display().to_string());
                }
            }
        }
        Ok(written)
    }
}

/// `keys export --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One `jwks.json`.
    Jwks,
    /// One SPKI PEM file per key.
    Pem,
}

fn parse_jwk(r: &KeyRow) -> Result<Jwk, KeyError> {
    serde_json::from_str(&r.public_jwk).map_err(|e| KeyError::Corrupt {
        kid: r.kid.clone(),
        reason: e.to_string(),
    })
}

impl From<diesel::result::Error> for KeyError {
    fn from(e: diesel::result::Error) -> Self {
        KeyError::Store(e.into())
    }
}

/// A loaded key: lifecycle facts, the parsed signer and pre-encoded JWS headers.
#[derive(Debug)]
pub struct LoadedKey {
    /// Lifecycle facts.
    pub times: KeyTimes,
    /// Public JWK.
    pub jwk: Jwk,
    /// ring signer, parsed once.
    pub signer: Signer,
    /// base64url of `{"alg":…,"typ":"at+jwt","kid":…}`.
    pub at_header_b64: String,
    /// base64url of `{"alg":…,"typ":"JWT","kid":…}` (ID tokens).
    pub jwt_header_b64: String,
    /// base64url of `{"alg":…,"typ":"refresh+jwt","kid":…}`.
    pub rt_header_b64: String,
}

impl lifecycle::HasTimes for LoadedKey {
    fn times(&self) -> &KeyTimes {
        &self.times
    }
}

/// The published JWKS, rendered once per change.
#[derive(Debug, Clone)]
pub struct JwksDocument {
    /// JSON body.
    pub body: actix_web::web::Bytes,
    /// Strong ETag (quoted).
    pub etag: actix_web::web::Bytes,
}

/// One immutable view of the ring.
#[derive(Debug)]
pub struct RingSnapshot {
    /// `keys_version` this was loaded at.
    pub version: i64,
    /// Every key not retired, published or not: what signs and what verifies Sigil's own tokens.
    pub keys: Vec<Arc<LoadedKey>>,
    /// What is published, and its rendering.
    pub jwks: JwksDocument,
    published: Vec<String>,
    kept_tag: [u8; 16],
}

/// A server's in-memory key ring.
#[derive(Debug)]
pub struct KeyRing {
    current: ArcSwap<RingSnapshot>,
}

impl KeyRing {
    /// Decrypt and parse `rows` into a snapshot.
    pub fn snapshot(
        rows: &[KeyRow],
        master: &MasterKey,
        version: i64,
        now: i64,
    ) -> Result<RingSnapshot, KeyError> {
        let mut keys = Vec::with_capacity(rows.len());
        for r in rows {
            let times = times_of(r)?;
            if !times.is_kept(now) {
                continue;
            }
            let pkcs8 = master.open(&r.kid, &r.private_key)?;
            let signer = Signer::from_pkcs8(times.alg, &pkcs8)?;
            let jwk = parse_jwk(r)?;
            let header =
                serde_json::json!({"alg": times.alg.as_str(), "typ": "at+jwt", "kid": r.kid});
            let jwt_header =
                serde_json::json!({"alg": times.alg.as_str(), "typ": "JWT", "kid": r.kid});
            let rt_header =
                serde_json::json!({"alg": times.alg.as_str(), "typ": "refresh+jwt", "kid": r.kid});
            keys.push(Arc::new(LoadedKey {
                at_header_b64: b64(header.to_string().as_bytes()),
                jwt_header_b64: b64(jwt_header.to_string().as_bytes()),
                rt_header_b64: b64(rt_header.to_string().as_bytes()),
                times,
                jwk,
                signer,
            }));
        }
        Ok(RingSnapshot::of(version, keys, now))
    }

    /// A ring holding `snapshot`.
    pub fn new(snapshot: RingSnapshot) -> KeyRing {
        KeyRing {
            current: ArcSwap::from_pointee(snapshot),
        }
    }

    /// The current snapshot (a cheap guard; no reference count is taken on the hot path).
    pub fn load(&self) -> arc_swap::Guard<Arc<RingSnapshot>> {
        self.current.load()
    }

    /// Replace the snapshot.
    pub fn store(&self, snapshot: RingSnapshot) {
        self.current.store(Arc::new(snapshot));
    }

    /// Follow the passage of time: drop keys that retired, and re-render the JWKS when the
    /// published set changed. A key unpublished but not retired stays in the ring: refresh
    /// tokens it signed still verify.
    pub fn refresh_published(&self, now: i64) {
        let cur = self.current.load();
        let all_kept = cur.keys.iter().all(|k| k.times.is_kept(now));
        let published = cur
            .keys
            .iter()
            .filter(|k| k.times.is_published(now))
            .map(|k| &k.times.kid);
        if all_kept && published.eq(cur.published.iter()) {
            return;
        }
        let keys: Vec<Arc<LoadedKey>> = cur
            .keys
            .iter()
            .filter(|k| k.times.is_kept(now))
            .cloned()
            .collect();
        self.current
            .store(Arc::new(RingSnapshot::of(cur.version, keys, now)));
    }

    /// The key that signs `alg` now ([`lifecycle::signing_key`], the rule plans use).
    pub fn signer(&self, alg: Algorithm, now: i64) -> Option<Arc<LoadedKey>> {
        lifecycle::signing_key(&self.current.load().keys, alg, now).cloned()
    }
}

/// A fingerprint of the ring's keys (their kids, which are thumbprints), so a cache of verifiers
/// built from them knows when to rebuild.
fn kept_tag(keys: &[Arc<LoadedKey>]) -> [u8; 16] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for k in keys {
        ctx.update(k.times.kid.as_bytes());
        ctx.update(b"\n");
    }
    let mut tag = [0; 16];
    tag.copy_from_slice(&ctx.finish().as_ref()[..16]);
    tag
}

fn render_jwks(keys: &[Arc<LoadedKey>], now: i64) -> (Vec<String>, JwksDocument) {
    let published: Vec<&Arc<LoadedKey>> =
        keys.iter().filter(|k| k.times.is_published(now)).collect();
    let set = JwkSet {
        keys: published.iter().map(|k| k.jwk.clone()).collect(),
    };
    let body = serde_json::to_vec(&set).unwrap_or_else(|_| b"{\"keys\":[]}".to_vec());
    let hash = digest::digest(&digest::SHA256, &body);
    let etag = format!("\"{}\"", b64(&hash.as_ref()[..16]));
    (
        published.iter().map(|k| k.times.kid.clone()).collect(),
        JwksDocument {
            body: body.into(),
            etag: etag.into(),
        },
    )
}

/// Load a snapshot from the database (blocking).
pub fn load_snapshot(
    conn: &mut DbConn,
    master: &MasterKey,
    now: i64,
) -> Result<RingSnapshot, KeyError> {
    let version = meta::versions(conn)?.keys;
    let rows = key_store::all(conn)?;
    KeyRing::snapshot(&rows, master, version, now)
}

impl RingSnapshot {
    /// A snapshot of `keys` (the ring) with the JWKS of those published at `now`.
    fn of(version: i64, keys: Vec<Arc<LoadedKey>>, now: i64) -> RingSnapshot {
        let (published, jwks) = render_jwks(&keys, now);
        RingSnapshot {
            version,
            kept_tag: kept_tag(&keys),
            keys,
            jwks,
            published,
        }
    }

    /// The published keys as a key set: what verifies the tokens third parties verify too
    /// (access tokens), exactly as they would.
    pub fn published_set(&self, now: i64) -> JwkSet {
        JwkSet {
            keys: self
                .keys
                .iter()
                .filter(|k| k.times.is_published(now))
                .map(|k| k.jwk.clone())
                .collect(),
        }
    }

    /// Every key in the ring, published or not, as a key set: what verifies the tokens that
    /// come back to Sigil alone (refresh tokens, `id_token_hint`s), signed by a key that may
    /// have left the JWKS since.
    pub fn kept_set(&self, now: i64) -> JwkSet {
        JwkSet {
            keys: self
                .keys
                .iter()
                .filter(|k| k.times.is_kept(now))
                .map(|k| k.jwk.clone())
                .collect(),
        }
    }

    /// Changes whenever the ring's keys do (the JWKS ETag changes with the published ones).
    pub fn kept_tag(&self) -> [u8; 16] {
        self.kept_tag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(master: &MasterKey, alg: Algorithm, created_at: i64, activates_at: i64) -> KeyRow {
        let g = material::generate(alg, 2048).unwrap_or_else(|e| panic!("{e}"));
        let kid = g.jwk.kid.clone().unwrap_or_else(|| g.jwk.thumbprint());
        KeyRow {
            private_key: master.seal(&kid, &g.pkcs8),
            kid,
            alg: alg.as_str().to_owned(),
            public_jwk: serde_json::to_string(&g.jwk).unwrap_or_else(|e| panic!("{e}")),
            public_pem: g.public_pem,
            created_at,
            activates_at,
            deactivates_at: None,
            retires_at: None,
            unpublishes_at: None,
        }
    }

    #[test]
    fn the_ring_signs_with_the_key_the_lifecycle_names() -> Result<(), KeyError> {
        let master = MasterKey::from_bytes(&[7; 32]).unwrap_or_else(|e| panic!("{e}"));
        let rows = vec![
            row(&master, Algorithm::EdDSA, 100, 100),
            // Two keys activating at the same instant: the later created one signs, wherever
            // it is in the list.
            row(&master, Algorithm::EdDSA, 120, 200),
            row(&master, Algorithm::EdDSA, 110, 200),
            row(&master, Algorithm::EdDSA, 130, 300),
            row(&master, Algorithm::ES256, 100, 150),
        ];
        let times: Vec<KeyTimes> = rows.iter().map(times_of).collect::<Result<_, _>>()?;
        let ring = KeyRing::new(KeyRing::snapshot(&rows, &master, 1, 100)?);
        for now in [99, 100, 150, 199, 200, 250, 300, 400] {
            for alg in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256] {
                let planned = lifecycle::signing_key(&times, alg, now).map(|k| k.kid.clone());
                let signing = ring.signer(alg, now).map(|k| k.times.kid.clone());
                assert_eq!(signing, planned, "{} at {now}", alg.as_str());
            }
        }
        assert_eq!(
            ring.signer(Algorithm::EdDSA, 250)
                .map(|k| k.times.kid.clone()),
            Some(rows[1].kid.clone())
        );
        Ok(())
    }

    #[test]
    fn an_unpublished_key_stays_in_the_ring_until_it_retires() -> Result<(), KeyError> {
        let master = MasterKey::from_bytes(&[7; 32]).unwrap_or_else(|e| panic!("{e}"));
        let old = KeyRow {
            deactivates_at: Some(200),
            unpublishes_at: Some(300),
            retires_at: Some(1000),
            ..row(&master, Algorithm::ES256, 100, 100)
        };
        let current = row(&master, Algorithm::ES256, 200, 200);
        let (old_kid, current_kid) = (old.kid.clone(), current.kid.clone());
        let ring = KeyRing::new(KeyRing::snapshot(&[old, current], &master, 1, 250)?);
        let kids =
            |set: JwkSet| -> Vec<String> { set.keys.into_iter().filter_map(|k| k.kid).collect() };
        let jwks_kids = |ring: &KeyRing| -> Vec<String> {
            let doc = ring.load().jwks.body.clone();
            JwkSet::from_json(&doc)
                .map(kids)
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let before = (ring.load().jwks.etag.clone(), ring.load().kept_tag());
        assert_eq!(jwks_kids(&ring), vec![old_kid.clone(), current_kid.clone()]);

        // Its access tokens expired: it leaves the JWKS, not the ring.
        ring.refresh_published(300);
        let snap = ring.load();
        assert_eq!(jwks_kids(&ring), vec![current_kid.clone()]);
        assert_eq!(kids(snap.published_set(300)), vec![current_kid.clone()]);
        assert_eq!(
            kids(snap.kept_set(300)),
            vec![old_kid.clone(), current_kid.clone()]
        );
        assert_ne!(snap.jwks.etag, before.0);
        assert_eq!(snap.kept_tag(), before.1, "the ring did not change");
        drop(snap);
        // Nothing changes until it retires...
        ring.refresh_published(999);
        assert_eq!(ring.load().keys.len(), 2);
        // ...then it leaves the ring too, and the ring's tag changes.
        ring.refresh_published(1000);
        let snap = ring.load();
        assert_eq!(kids(snap.kept_set(1000)), vec![current_kid.clone()]);
        assert_eq!(snap.keys.len(), 1);
        assert_ne!(snap.kept_tag(), before.1);
        assert_eq!(jwks_kids(&ring), vec![current_kid]);
        Ok(())
    }
}
