//! Background jobs of a running server:
//! * **sync** (every `sync` interval, default 2 s): polls `meta` change counters; reloads the key ring
//!   when another process (the CLI, another replica) changed it, and re-renders the JWKS when a
//!   key's state changes with time;
//! * **authz sync** (every `authz` interval, default 500 ms, so a change holds on every replica
//!   within a second): drops cached clients (and reloads every client's web origins, for CORS)
//!   when `clients_version` moved, and reloads the roles and APIs when `authz_version` moved;
//! * **rotation** (every minute): under the `key_rotation` lease, so one process among many
//!   rotates, applies `lifecycle::auto_rotation_due`;
//! * **prune** (every 10 minutes, also under a lease): deletes retired keys past retention, forgets
//!   expired previous client secrets, deletes ended sessions, and drops expired shared state
//!   (the database's tables under the lease; each process's memory, its own rate-limit counts
//!   included, on its own).

use std::sync::Arc;
use std::time::Duration;

use crate::crypto::random_b64;
use crate::keys::{KeyError, KeyService, load_snapshot};
use crate::state::AppState;
use crate::store::{meta, prune};

/// How often each job runs.
#[derive(Debug, Clone, Copy)]
pub struct JobTimings {
    /// Change polling for keys.
    pub sync: Duration,
    /// Change polling for clients, roles and APIs.
    pub authz: Duration,
    /// Rotation check.
    pub rotation: Duration,
    /// Pruning.
    pub prune: Duration,
}

impl Default for JobTimings {
    fn default() -> Self {
        JobTimings {
            sync: Duration::from_secs(2),
            authz: Duration::from_millis(500),
            rotation: Duration::from_secs(60),
            prune: Duration::from_secs(600),
        }
    }
}

/// Handles to stop the jobs.
pub struct Jobs(Vec<tokio::task::JoinHandle<()>>);

impl Jobs {
    /// Stop every job.
    pub fn abort(&self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// Start the jobs on the current runtime.
pub fn spawn(ctx: Arc<AppState>, keys: KeyService, timings: JobTimings) -> Jobs {
    let holder = random_b64(12);
    let mut handles = Vec::new();
    {
        let ctx = ctx.clone();
        let keys = keys.clone();
        handles.push(tokio::spawn(async move {
            let mut seen: Option<i64> = None;
            let mut tick = tokio::time::interval(timings.sync);
            loop {
                tick.tick().await;
                sync_once(&ctx, &keys, &mut seen).await;
            }
        }));
    }
    {
        let ctx = ctx.clone();
        handles.push(tokio::spawn(async move {
            let mut seen = PrincipalsSeen::default();
            let mut tick = tokio::time::interval(timings.authz);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                sync_principals(&ctx, &mut seen).await;
            }
        }));
    }
    {
        let ctx = ctx.clone();
        let keys = keys.clone();
        let holder = holder.clone();
        handles.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(timings.rotation);
            loop {
                tick.tick().await;
                let now = ctx.now();
                let lease_until =
                    now + i64::try_from(timings.rotation.as_secs() * 2 + 30).unwrap_or(150);
                let k = keys.clone();
                let h = holder.clone();
                let result = tokio::task::spawn_blocking(move || {
                    k.store.run_blocking(|c| {
                        meta::leased(c, meta::ROTATION_LEASE, &h, now, lease_until, |c| {
                            k.auto_rotate(c, now)
                        })
                    })
                })
                .await;
                match result {
                    Ok(Ok(None)) => {}
                    Ok(Ok(Some(applied))) => {
                        for a in applied {
                            tracing::info!(
                                alg = a.plan.alg,
                                kid = a.new_kid.as_deref().unwrap_or(""),
                                "scheduled key rotation"
                            );
                            if let Some(kid) = a.new_kid {
                                let mut event =
                                    ctx.event("key.rotate", "system:scheduler".to_owned());
                                event.subject = Some(kid);
                                event.details = serde_json::to_value(&a.plan).unwrap_or_default();
                                ctx.audit(event).await;
                            }
                        }
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "scheduled key rotation failed"),
                    Err(e) => tracing::warn!(error = %e, "scheduled key rotation task failed"),
                }
            }
        }));
    }
    handles.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(timings.prune);
        loop {
            tick.tick().await;
            let now = ctx.now();
            let lease_until = now + i64::try_from(timings.prune.as_secs()).unwrap_or(600);
            let k = keys.clone();
            let h = holder.clone();
            let session_idle_cutoff = now - crate::oauth::session::SESSION_IDLE;
            let result = tokio::task::spawn_blocking(move || {
                k.store.run_blocking(|c| {
                    meta::leased(c, meta::PRUNE_LEASE, &h, now, lease_until, |c| {
                        let kids = k.prune(c, now)?;
                        let rows = prune::expired(c, now, session_idle_cutoff)?;
                        Ok::<_, KeyError>((kids, rows))
                    })
                })
            })
            .await;
            let leased = matches!(result, Ok(Ok(Some(_))));
            match result {
                Ok(Ok(None)) => {}
                Ok(Ok(Some((kids, rows)))) => {
                    if !kids.is_empty() || rows.total() > 0 {
                        tracing::info!(
                            keys = kids.len(),
                            previous_secrets = rows.previous_secrets,
                            refresh_tokens = rows.refresh_tokens,
                            sessions = rows.sessions,
                            revocations = rows.revocations,
                            "pruned expired rows"
                        );
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "prune failed"),
                Err(e) => tracing::warn!(error = %e, "prune task failed"),
            }
            // Shared state in the database is pruned once, by the lease holder; each process
            // prunes its own memory.
            if leased || !ctx.cache.is_shared() {
                match ctx.cache.prune(now).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(entries = n, "pruned expired shared state"),
                    Err(e) => tracing::warn!(error = %e, "cache prune failed"),
                }
            }
            // Rate-limit counts this process keeps to itself.
            if let Err(e) = ctx.limits.prune(now).await {
                tracing::warn!(error = %e, "rate-limit prune failed");
            }
        }
    }));
    Jobs(handles)
}

/// One sync pass: pick up key changes made by other processes.
pub async fn sync_once(ctx: &AppState, keys: &KeyService, seen: &mut Option<i64>) {
    let now = ctx.now();
    let keys_v = match ctx.store.run(meta::versions).await {
        Ok(v) => v.keys,
        Err(e) => {
            tracing::warn!(error = %e, "cannot poll for key changes");
            ctx.ring.refresh_published(now);
            return;
        }
    };
    let seen_keys = seen.unwrap_or(ctx.ring.load().version);
    if keys_v != seen_keys {
        let k = keys.clone();
        match tokio::task::spawn_blocking(move || {
            k.store.run_blocking(|c| load_snapshot(c, &k.master, now))
        })
        .await
        {
            Ok(Ok(snap)) => {
                tracing::info!(
                    version = keys_v,
                    keys = snap.keys.len(),
                    "key ring reloaded"
                );
                ctx.ring.store(snap);
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "key ring reload failed; keeping the previous keys");
                ctx.ring.refresh_published(now);
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "key ring reload task failed");
                return;
            }
        }
    } else {
        ctx.ring.refresh_published(now);
    }
    *seen = Some(keys_v);
}

/// The `clients_version` [`sync_principals`] has applied (the model of roles and APIs knows
/// its own version).
#[derive(Debug, Clone, Copy)]
pub struct PrincipalsSeen {
    clients: i64,
}

impl Default for PrincipalsSeen {
    fn default() -> Self {
        // The first pass reloads the web origins once.
        PrincipalsSeen { clients: -1 }
    }
}

/// One authz sync pass: drop cached clients and reload their web origins when clients changed;
/// reload the roles and APIs when they changed. A failed reload is tried again next pass.
pub async fn sync_principals(ctx: &AppState, seen: &mut PrincipalsSeen) {
    let v = match ctx.store.run(meta::versions).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "cannot poll for client and role changes");
            return;
        }
    };
    if v.clients != seen.clients {
        ctx.clients.invalidate();
        match ctx.clients.reload_origins(&ctx.store).await {
            Ok(()) => seen.clients = v.clients,
            Err(e) => tracing::warn!(error = %e, "cannot reload the clients' web origins"),
        }
    }
    if v.authz != ctx.authz.load().version {
        match ctx.authz.reload(&ctx.store).await {
            Ok(version) => tracing::info!(version, "roles and APIs reloaded"),
            Err(e) => tracing::warn!(error = %e, "cannot reload roles and APIs"),
        }
    }
}
