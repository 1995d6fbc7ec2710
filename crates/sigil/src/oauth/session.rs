//! Browser sessions at Sigil: resolving the session cookie to a live session of an enabled
//! user, and starting a new session at each sign-in (a new id every time: no fixation).
//! Stored by the SHA-256 of the cookie value ([`crate::crypto::hash_id`]).

use crate::crypto::{hash_id, random_b64};
use crate::domain::user::User;
use crate::state::AppState;
use crate::store::sessions::{self as session_store, SessionRow};

use super::OAuthError;

/// Idle session timeout.
pub const SESSION_IDLE: i64 = 8 * 3600;
/// Absolute session timeout.
pub const SESSION_ABSOLUTE: i64 = 24 * 3600;
/// The longest session cookie value looked up (Sigil's are 43 characters).
const MAX_COOKIE: usize = 64;

/// A live session and its user.
#[derive(Debug, Clone)]
pub struct LiveSession {
    /// Stored row.
    pub row: SessionRow,
    /// The (enabled) user.
    pub user: User,
}

/// Resolve a session cookie value to a live session of an enabled user.
pub async fn find(ctx: &AppState, cookie: &str) -> Result<Option<LiveSession>, OAuthError> {
    if cookie.is_empty() || cookie.len() > MAX_COOKIE {
        return Ok(None);
    }
    let id_hash = hash_id(cookie);
    let now = ctx.now();
    let found = ctx
        .store
        .run(move |c| session_store::find_live_with_user(c, &id_hash, now, now - SESSION_IDLE))
        .await?;
    Ok(found
        .filter(|(_, u)| !u.disabled)
        .map(|(row, user)| LiveSession { row, user }))
}

/// Start a new session for `user`, signed in with `methods` (OIDC `amr` values: `pwd`, `otp`),
/// ending the browser's `previous` one if it had one. Returns the cookie value and the stored
/// row, which remembers the methods for every code issued under it.
pub async fn start(
    ctx: &AppState,
    user: &User,
    methods: &[&str],
    previous: Option<String>,
) -> Result<(String, SessionRow), OAuthError> {
    let id = random_b64(32);
    let now = ctx.now();
    let row = SessionRow {
        id_hash: hash_id(&id),
        user_id: user.id.clone(),
        auth_time: now,
        created_at: now,
        last_seen_at: now,
        expires_at: now + SESSION_ABSOLUTE,
        amr: SessionRow::amr_of(methods),
    };
    let stored = row.clone();
    let previous_hash = previous.as_deref().map(hash_id);
    ctx.store
        .run(move |c| session_store::replace(c, previous_hash.as_deref(), &stored))
        .await?;
    Ok((id, row))
}

/// End the session behind a cookie value (sign-out): the session row goes, and the access
/// tokens issued under it stop being active at `/introspect` and `/userinfo` on every replica
/// (a `sid` revocation in the same transaction). Offline verifiers see them until they expire.
pub async fn end(ctx: &AppState, cookie: &str) -> Result<(), OAuthError> {
    use crate::store::revocations::{COVERS_ACCESS_TOKENS, session_claim, session_id};
    let id_hash = hash_id(cookie);
    let revocation = session_id(&session_claim(&id_hash));
    let until = ctx.now() + COVERS_ACCESS_TOKENS;
    ctx.store
        .run(move |c| session_store::end(c, &id_hash, &revocation, until))
        .await?;
    Ok(())
}
