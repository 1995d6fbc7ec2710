//! Signing in with a username and password: the account lockout, one bcrypt verification
//! whoever asks, the audit trail (failed attempts of unknown names aggregated, see
//! [`super::anonymous`]), metrics, and the new session. The per-address limit on attempts
//! (`rate_limits.login_per_ip`) is applied before, at the HTTP edge (`http::rate_limit`).
//!
//! `http::login` only reads the form and the cookies, calls [`sign_in`], and renders its
//! [`Outcome`]. The decisions are the pure functions [`verdict`], [`lock_scopes`] and
//! [`lock_step`].
//!
//! **Lockout without a kill switch.** Failures are counted per account *and client*: from one
//! client (an IPv4 address or IPv6 /64) `passwords.lockout_failures` (5) within
//! `passwords.lockout_window` (15 min) lock the account for that client only, so a guesser
//! locks out himself and not the user on another network. All clients together may fail
//! `passwords.lockout_account_failures` (100) times per window before the account locks for
//! every client, which bounds a guesser with many addresses. A browser that signed in to the
//! account before holds its **device cookie** (an HMAC under the master key of the account id
//! and a random id, 90 days): it is counted on its own (5 per window) and ignores the
//! per-network and account-wide locks, so the user who signed in from this browser before gets
//! in even while the account is under attack from elsewhere.
//!
//! **The second factor.** For a user with TOTP enrolled, a correct password does not sign in:
//! [`sign_in`] answers [`Outcome::SecondFactor`] and `http` shows the code form, its state
//! sealed in the form (`pending::start_mfa`), so it exists only after a correct password and
//! costs the server nothing to keep. [`second_factor`] checks the code (`mfa::check`: a TOTP
//! code once across replicas, a recovery code once). [`MFA_LOCK_FAILURES`] wrong codes within
//! `passwords.lockout_window` lock the user's second factor for that window, whoever presents
//! it (only someone who knew the password can reach it): a locked second factor refuses even the
//! right code, with the same message, and is checked before any code is, so a lock never uses
//! up a recovery code. The session then remembers `["pwd","otp"]` for the ID token's `amr`.

use super::OAuthError;
use super::anonymous::{self, Record};
use super::session;
use crate::domain::ClientId;
use crate::domain::user::{User, Username};
use crate::mfa::{self, Check};
use crate::state::AppState;
use crate::store::sessions::SessionRow;
use crate::store::users as user_store;

/// How long a device cookie is honoured, seconds.
pub const DEVICE_TTL: i64 = 90 * 24 * 3600;
/// Purpose of the device cookie's HMAC.
const DEVICE_PURPOSE: &str = "device";
/// Wrong second-factor codes within `passwords.lockout_window` that lock the second factor.
pub const MFA_LOCK_FAILURES: u64 = 5;
/// `amr` of a sign-in with a password alone.
pub const AMR_PASSWORD: &[&str] = &["pwd"];
/// `amr` of a sign-in with a password and a one-time code (TOTP or recovery code).
pub const AMR_PASSWORD_OTP: &[&str] = &["pwd", "otp"];

/// One sign-in attempt, as the form and the connection gave it.
#[derive(Debug)]
pub struct Attempt<'a> {
    /// The username as typed (not yet parsed).
    pub username: &'a str,
    /// The password as typed.
    pub password: String,
    /// The client's address (the audit trail's `ip`), behind trusted proxies the forwarded one.
    pub ip: &'a str,
    /// What the lockout's per-client count is kept by: the IPv4 address or the IPv6 /64.
    pub ip_bucket: &'a str,
    /// The client the sign-in is for.
    pub client_id: &'a ClientId,
    /// The browser's current session cookie, ended by a successful sign-in.
    pub previous_session: Option<String>,
    /// The browser's device cookie, if it has one.
    pub device: Option<&'a str>,
}

/// How an attempt ended.
#[derive(Debug)]
pub enum Outcome {
    /// Signed in: a new session (the cookie value and the stored row).
    SignedIn {
        /// The user.
        user: Box<User>,
        /// Session cookie value.
        session_id: String,
        /// The stored session.
        session: SessionRow,
        /// A new device cookie value for this browser and account ([`DEVICE_TTL`]).
        device: String,
    },
    /// Refused, for whatever reason: the page shows one message for all of them.
    Refused {
        /// The username to show again in the form (empty when it was not a valid name).
        username: String,
    },
    /// The password was right and the user has a second factor: ask for the code.
    SecondFactor {
        /// The user.
        user: Box<User>,
    },
    /// The second step cannot go on (the factor was removed meanwhile): start again.
    Expired,
}

/// One second-factor attempt: the code typed into the form of a second step the browser holds.
#[derive(Debug)]
pub struct SecondAttempt<'a> {
    /// The user whose password was accepted (from the sealed step).
    pub user_id: &'a str,
    /// The code as typed.
    pub code: String,
    /// The client's address (the audit trail's `ip`).
    pub ip: &'a str,
    /// The client the sign-in is for.
    pub client_id: &'a ClientId,
    /// The browser's current session cookie, ended by a successful sign-in.
    pub previous_session: Option<String>,
}

/// Why a second-factor attempt was refused (audit `reason`; never shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaRefusal {
    /// Too many wrong codes: the second factor is locked.
    Locked,
    /// Neither the current code nor an unused recovery code.
    WrongCode,
    /// A code already used.
    ReplayedCode,
}

impl MfaRefusal {
    /// The audit trail's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            MfaRefusal::Locked => "mfa_locked",
            MfaRefusal::WrongCode => "wrong_code",
            MfaRefusal::ReplayedCode => "replayed_code",
        }
    }
}

/// How a second factor was proved (the metric's outcome and the audit trail's `mfa`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaMethod {
    /// The current TOTP code.
    Totp,
    /// A recovery code, with how many are left.
    Recovery {
        /// Recovery codes left.
        left: i64,
    },
}

/// Whether a checked code proves the second factor. `None` when there is no factor to prove
/// (removed since the password): the step starts again.
pub fn mfa_verdict(check: Check) -> Option<Result<MfaMethod, MfaRefusal>> {
    match check {
        Check::Totp => Some(Ok(MfaMethod::Totp)),
        Check::Recovery { left } => Some(Ok(MfaMethod::Recovery { left })),
        Check::Replayed => Some(Err(MfaRefusal::ReplayedCode)),
        Check::Wrong => Some(Err(MfaRefusal::WrongCode)),
        Check::NotEnrolled => None,
    }
}

/// The counter of wrong second-factor codes of `user_id` (its lock marker is `<key>:locked`).
pub fn mfa_lock_key(user_id: &str) -> String {
    format!("mfa_fail:{user_id}")
}

/// Why a sign-in was refused (audit `reason`; never shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such user (or not a valid username).
    UnknownUser,
    /// The account is locked after too many failures.
    Locked,
    /// The account is disabled.
    Disabled,
    /// The password did not match.
    WrongPassword,
}

impl Refusal {
    /// The audit trail's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::UnknownUser => "unknown_user",
            Refusal::Locked => "locked",
            Refusal::Disabled => "disabled",
            Refusal::WrongPassword => "wrong_password",
        }
    }
}

/// Whether `user` may sign in, given whether the password `verified` and the account is
/// `locked`. A locked account is refused even with the right password.
pub fn verdict(user: Option<&User>, verified: bool, locked: bool) -> Result<(), Refusal> {
    match user {
        None => Err(Refusal::UnknownUser),
        Some(_) if locked => Err(Refusal::Locked),
        Some(u) if u.disabled => Err(Refusal::Disabled),
        Some(_) if !verified => Err(Refusal::WrongPassword),
        Some(_) => Ok(()),
    }
}

/// What one failure counts against, and the limit of each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockScope {
    /// Cache key of the counter (its lock marker is `<key>:locked`).
    pub key: String,
    /// Failures within the window that lock it.
    pub limit: u64,
    /// For the audit trail: `client`, `account` or `device`.
    pub kind: &'static str,
}

/// The counters an attempt on `username` from `client` (or from a browser holding the
/// account's device cookie `device`) is judged by. Names are compared case-insensitively.
pub fn lock_scopes(
    username: &Username,
    client: &str,
    device: Option<&str>,
    per_client: u64,
    per_account: u64,
) -> Vec<LockScope> {
    let name = username.as_str().to_ascii_lowercase();
    match device {
        Some(d) => vec![LockScope {
            key: format!("login_fail:{name}:device:{d}"),
            limit: per_client,
            kind: "device",
        }],
        None => vec![
            LockScope {
                key: format!("login_fail:{name}:client:{client}"),
                limit: per_client,
                kind: "client",
            },
            LockScope {
                key: format!("login_fail:{name}:account"),
                limit: per_account,
                kind: "account",
            },
        ],
    }
}

/// What the `failures`-th failure within the window does to a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockStep {
    /// Below the limit: nothing.
    Count,
    /// The failure that reaches the limit: lock, and record the lockout (once).
    Lock,
    /// Beyond the limit: keep the lock for a full window from now.
    Extend,
}

/// [`LockStep`] for the `failures`-th failure against `limit`.
pub fn lock_step(failures: u64, limit: u64) -> LockStep {
    match failures {
        n if n < limit => LockStep::Count,
        n if n == limit => LockStep::Lock,
        _ => LockStep::Extend,
    }
}

/// A new device cookie value for `user_id`: a random id and the HMAC that ties it to the account.
fn new_device(ctx: &AppState, user_id: &str) -> String {
    let id = crate::crypto::random_b64(16);
    let tag = ctx
        .master
        .form_token(DEVICE_PURPOSE, &format!("{user_id}.{id}"));
    format!("{id}.{tag}")
}

/// The device id of `cookie` if it is this account's device cookie (constant-time check).
fn device_of<'c>(ctx: &AppState, user_id: &str, cookie: &'c str) -> Option<&'c str> {
    let (id, tag) = cookie.split_once('.')?;
    (id.len() <= 32
        && ctx
            .master
            .verify_form_token(DEVICE_PURPOSE, &format!("{user_id}.{id}"), tag))
    .then_some(id)
}

/// Try to sign in. Errors are the cache's, the database's or the hasher's: the caller answers
/// 503, and nothing was granted.
pub async fn sign_in(ctx: &AppState, mut attempt: Attempt<'_>) -> Result<Outcome, OAuthError> {
    let now = ctx.now();
    let username = Username::parse(attempt.username).ok();
    let user = match &username {
        Some(u) => {
            let name = u.as_str().to_owned();
            ctx.store
                .run(move |c| user_store::find_by_username(c, &name))
                .await?
        }
        None => None,
    };
    let device = match (&user, attempt.device) {
        (Some(u), Some(cookie)) => device_of(ctx, &u.id, cookie),
        _ => None,
    };
    let limits = &ctx.settings.passwords;
    let scopes = username
        .as_ref()
        .map(|u| {
            lock_scopes(
                u,
                attempt.ip_bucket,
                device,
                limits.lockout_failures,
                limits.lockout_account_failures,
            )
        })
        .unwrap_or_default();
    let mut locked = false;
    for scope in &scopes {
        locked |= ctx
            .cache
            .get(&format!("{}:locked", scope.key), now)
            .await?
            .is_some();
    }
    // Always one bcrypt verification, whoever asks: unknown users hit a dummy hash.
    let verified = ctx
        .hasher
        .verify(
            std::mem::take(&mut attempt.password),
            user.as_ref().map(|u| u.password_hash.clone()),
        )
        .await
        .map_err(|e| OAuthError::Unavailable(e.to_string()))?;
    match verdict(user.as_ref(), verified, locked) {
        Ok(()) => {}
        Err(refusal) => {
            record_failure(ctx, &attempt, user.as_ref(), refusal, &scopes, now).await?;
            return Ok(Outcome::Refused {
                username: username.map(|u| u.as_str().to_owned()).unwrap_or_default(),
            });
        }
    }
    let Some(user) = user else {
        return Err(OAuthError::Internal("verdict passed without a user".into()));
    };
    // The client (or device) proved the password: its own count starts again. The
    // account-wide count stays, so a guesser's budget is not renewed by the user's sign-ins.
    for scope in scopes.iter().filter(|s| s.kind != "account") {
        // Best effort: a counter that stays behind expires with its window.
        let _ = ctx.cache.take(&scope.key, now).await;
    }
    if mfa::is_enrolled(&ctx.store, &user.id).await? {
        let mut event = ctx.event("login.mfa_challenge", format!("user:{}", user.id));
        event.subject = Some(user.id.clone());
        event.client_id = Some(attempt.client_id.as_str().to_owned());
        event.details = serde_json::json!({ "ip": attempt.ip });
        ctx.audit(event).await;
        return Ok(Outcome::SecondFactor {
            user: Box::new(user),
        });
    }
    let details = serde_json::json!({ "ip": attempt.ip, "amr": AMR_PASSWORD });
    finish(
        ctx,
        user,
        AMR_PASSWORD,
        attempt.previous_session.take(),
        attempt.client_id,
        details,
    )
    .await
}

/// Start the session of a sign-in that is complete, with its audit event, metric and a new
/// device cookie.
async fn finish(
    ctx: &AppState,
    user: User,
    methods: &[&str],
    previous_session: Option<String>,
    client_id: &ClientId,
    details: serde_json::Value,
) -> Result<Outcome, OAuthError> {
    let (session_id, session) = session::start(ctx, &user, methods, previous_session).await?;
    ctx.metrics.logins.with_label_values(&["success"]).inc();
    let mut event = ctx.event("login.success", format!("user:{}", user.id));
    event.subject = Some(user.id.clone());
    event.client_id = Some(client_id.as_str().to_owned());
    event.details = details;
    ctx.audit(event).await;
    let device = new_device(ctx, &user.id);
    Ok(Outcome::SignedIn {
        user: Box::new(user),
        session_id,
        session,
        device,
    })
}

/// The second step: check the code of a user whose password was accepted. Errors are the
/// cache's, the database's or a secret that does not open: the caller answers 503 or 500, and
/// nothing was granted.
pub async fn second_factor(
    ctx: &AppState,
    mut attempt: SecondAttempt<'_>,
) -> Result<Outcome, OAuthError> {
    let now = ctx.now();
    let refused = || Outcome::Refused {
        username: String::new(),
    };
    let user_id = attempt.user_id.to_owned();
    let Some(user) = ctx
        .store
        .run(move |c| user_store::find_by_id(c, &user_id))
        .await?
    else {
        return Ok(Outcome::Expired);
    };
    if user.disabled {
        let mut event = ctx.event("login.failure", "anonymous".to_owned());
        event.subject = Some(user.id.clone());
        event.client_id = Some(attempt.client_id.as_str().to_owned());
        event.details = serde_json::json!({
            "reason": Refusal::Disabled.as_str(), "ip": attempt.ip, "step": "otp",
        });
        ctx.audit(event).await;
        ctx.metrics.logins.with_label_values(&["failure"]).inc();
        return Ok(refused());
    }
    let lock_key = mfa_lock_key(&user.id);
    let locked = ctx
        .cache
        .get(&format!("{lock_key}:locked"), now)
        .await?
        .is_some();
    let verdict = if locked {
        Err(MfaRefusal::Locked)
    } else {
        let code = std::mem::take(&mut attempt.code);
        let check = mfa::check(&ctx.store, &ctx.cache, &ctx.master, &user.id, &code, now).await?;
        match mfa_verdict(check) {
            Some(v) => v,
            None => return Ok(Outcome::Expired),
        }
    };
    let method = match verdict {
        Ok(method) => method,
        Err(refusal) => {
            record_mfa_failure(ctx, &attempt, &user, refusal, now).await?;
            return Ok(refused());
        }
    };
    // Best effort: a counter that stays behind expires with its window.
    let _ = ctx.cache.take(&lock_key, now).await;
    let details = match method {
        MfaMethod::Totp => {
            ctx.metrics.mfa.with_label_values(&["success"]).inc();
            serde_json::json!({ "ip": attempt.ip, "amr": AMR_PASSWORD_OTP, "mfa": "totp" })
        }
        MfaMethod::Recovery { left } => {
            ctx.metrics.mfa.with_label_values(&["recovery"]).inc();
            serde_json::json!({
                "ip": attempt.ip,
                "amr": AMR_PASSWORD_OTP,
                "mfa": "recovery_code",
                "recovery_codes_left": left,
            })
        }
    };
    finish(
        ctx,
        user,
        AMR_PASSWORD_OTP,
        attempt.previous_session.take(),
        attempt.client_id,
        details,
    )
    .await
}

/// Audit, count and (at the limit) lock after a refused second-factor code.
async fn record_mfa_failure(
    ctx: &AppState,
    attempt: &SecondAttempt<'_>,
    user: &User,
    refusal: MfaRefusal,
    now: i64,
) -> Result<(), OAuthError> {
    let mut event = ctx.event("login.failure", "anonymous".to_owned());
    event.subject = Some(user.id.clone());
    event.client_id = Some(attempt.client_id.as_str().to_owned());
    event.details =
        serde_json::json!({ "reason": refusal.as_str(), "ip": attempt.ip, "step": "otp" });
    ctx.audit(event).await;
    ctx.metrics.logins.with_label_values(&["failure"]).inc();
    if refusal == MfaRefusal::Locked {
        // Attempts while locked are refused unchecked and do not extend the lock.
        ctx.metrics.mfa.with_label_values(&["locked"]).inc();
        return Ok(());
    }
    ctx.metrics.mfa.with_label_values(&["failure"]).inc();
    let window = crate::clock::secs(ctx.settings.passwords.lockout_window);
    let key = mfa_lock_key(&user.id);
    let failures = ctx.cache.incr(&key, now + window, now).await?;
    if lock_step(failures, MFA_LOCK_FAILURES) != LockStep::Count {
        ctx.cache
            .put(&format!("{key}:locked"), vec![1], now + window, now)
            .await?;
        if lock_step(failures, MFA_LOCK_FAILURES) == LockStep::Lock {
            ctx.metrics.mfa_lockouts.inc();
            let mut event = ctx.event("login.mfa_locked", "system".to_owned());
            event.subject = Some(user.id.clone());
            event.details = serde_json::json!({
                "failures": failures,
                "ip": attempt.ip,
                "until": now + window,
            });
            ctx.audit(event).await;
        }
    }
    Ok(())
}

/// Audit, count and (for a known name) lock after a refused attempt.
async fn record_failure(
    ctx: &AppState,
    attempt: &Attempt<'_>,
    user: Option<&User>,
    refusal: Refusal,
    scopes: &[LockScope],
    now: i64,
) -> Result<(), OAuthError> {
    let user_id = user.map(|u| u.id.clone());
    let record = if user.is_some() {
        Record::Event
    } else {
        anonymous_record(ctx, attempt.ip, now).await
    };
    let summary = |count: u64, network: String| {
        let mut event = ctx.event("login.failure.summary", "anonymous".to_owned());
        event.details = serde_json::json!({
            "reason": Refusal::UnknownUser.as_str(),
            "network": network,
            "count": count,
            "since": anonymous::window_start(now),
        });
        event
    };
    match record {
        Record::Event => {
            let mut event = ctx.event("login.failure", "anonymous".to_owned());
            event.subject = user_id.clone();
            event.client_id = Some(attempt.client_id.as_str().to_owned());
            event.details = serde_json::json!({ "reason": refusal.as_str(), "ip": attempt.ip });
            ctx.audit(event).await;
        }
        Record::NetworkSummary { count } => {
            ctx.audit(summary(count, anonymous::bucket(attempt.ip)))
                .await;
        }
        Record::OverallSummary { count } => ctx.audit(summary(count, "all".to_owned())).await,
        Record::Nothing => {}
    }
    ctx.metrics.logins.with_label_values(&["failure"]).inc();
    let window = crate::clock::secs(ctx.settings.passwords.lockout_window);
    for scope in scopes {
        let failures = ctx.cache.incr(&scope.key, now + window, now).await?;
        let step = lock_step(failures, scope.limit);
        if step == LockStep::Lock {
            ctx.metrics.account_lockouts.inc();
            let mut event = ctx.event("account.lock", "system".to_owned());
            event.subject = user_id.clone();
            event.details = serde_json::json!({
                "failures": failures,
                "known_user": user_id.is_some(),
                "scope": scope.kind,
                "client": (scope.kind == "client").then_some(attempt.ip_bucket),
                "until": now + window,
            });
            ctx.audit(event).await;
        }
        if step != LockStep::Count {
            ctx.cache
                .put(&format!("{}:locked", scope.key), vec![1], now + window, now)
                .await?;
        }
    }
    Ok(())
}

/// Count a failed sign-in of an unknown name (per network and overall, in the shared cache) and
/// say what the audit trail gets for it. When the counters cannot be reached the event is
/// recorded: better a row too many than a failure forgotten.
async fn anonymous_record(ctx: &AppState, ip: &str, now: i64) -> Record {
    let start = anonymous::window_start(now);
    let end = start + anonymous::WINDOW;
    let network = ctx
        .cache
        .incr(
            &format!("anon_fail:{}:{start}", anonymous::bucket(ip)),
            end,
            now,
        )
        .await;
    let overall = ctx
        .cache
        .incr(&format!("anon_fail:*:{start}"), end, now)
        .await;
    match (network, overall) {
        (Ok(n), Ok(all)) => anonymous::decide(n, all),
        _ => Record::Event,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(disabled: bool) -> User {
        User {
            id: "usr_1".into(),
            username: Username::parse("alice").unwrap_or_else(|e| panic!("{e}")),
            email: None,
            email_verified: false,
            password_hash: String::new(),
            disabled,
            roles: vec![],
            created_at: 1,
            updated_at: 1,
            password_changed_at: 1,
        }
    }

    #[test]
    fn only_a_known_enabled_unlocked_user_with_the_right_password_signs_in() {
        assert_eq!(verdict(Some(&user(false)), true, false), Ok(()));
        assert_eq!(verdict(None, true, false), Err(Refusal::UnknownUser));
        assert_eq!(verdict(None, false, true), Err(Refusal::UnknownUser));
        assert_eq!(
            verdict(Some(&user(false)), false, false),
            Err(Refusal::WrongPassword)
        );
        assert_eq!(
            verdict(Some(&user(true)), true, false),
            Err(Refusal::Disabled)
        );
    }

    #[test]
    fn a_locked_account_is_refused_even_with_the_right_password() {
        assert_eq!(
            verdict(Some(&user(false)), true, true),
            Err(Refusal::Locked)
        );
    }

    #[test]
    fn only_an_unused_current_code_or_recovery_code_proves_the_second_factor() {
        assert_eq!(mfa_verdict(Check::Totp), Some(Ok(MfaMethod::Totp)));
        assert_eq!(
            mfa_verdict(Check::Recovery { left: 3 }),
            Some(Ok(MfaMethod::Recovery { left: 3 }))
        );
        assert_eq!(
            mfa_verdict(Check::Replayed),
            Some(Err(MfaRefusal::ReplayedCode))
        );
        assert_eq!(mfa_verdict(Check::Wrong), Some(Err(MfaRefusal::WrongCode)));
        assert_eq!(mfa_verdict(Check::NotEnrolled), None);
    }

    #[test]
    fn the_fifth_wrong_code_locks_the_second_factor() {
        let steps: Vec<LockStep> = (1..=6).map(|n| lock_step(n, MFA_LOCK_FAILURES)).collect();
        assert_eq!(steps[..4], [LockStep::Count; 4]);
        assert_eq!(steps[4], LockStep::Lock);
        assert_eq!(steps[5], LockStep::Extend);
        assert_ne!(
            mfa_lock_key("usr_a"),
            mfa_lock_key("usr_b"),
            "each user their own count"
        );
        assert!(!mfa_lock_key("usr_a").starts_with("login_fail:"));
    }

    #[test]
    fn the_failure_that_reaches_the_limit_locks_once_and_later_ones_extend_the_lock() {
        let steps: Vec<LockStep> = (1..=7).map(|n| lock_step(n, 5)).collect();
        assert_eq!(
            steps,
            [
                LockStep::Count,
                LockStep::Count,
                LockStep::Count,
                LockStep::Count,
                LockStep::Lock,
                LockStep::Extend,
                LockStep::Extend
            ]
        );
    }

    #[test]
    fn without_a_device_cookie_failures_count_per_client_and_per_account()
    -> Result<(), &'static str> {
        let u = Username::parse("alice")?;
        let scopes = lock_scopes(&u, "192.0.2.7", None, 5, 100);
        let kinds: Vec<(&str, u64)> = scopes.iter().map(|s| (s.kind, s.limit)).collect();
        assert_eq!(kinds, [("client", 5), ("account", 100)]);
        let other = lock_scopes(&u, "198.51.100.1", None, 5, 100);
        assert_ne!(scopes[0].key, other[0].key, "each client its own count");
        assert_eq!(scopes[1].key, other[1].key, "one account-wide count");
        Ok(())
    }

    #[test]
    fn a_device_cookie_is_counted_on_its_own() -> Result<(), &'static str> {
        let u = Username::parse("alice")?;
        let scopes = lock_scopes(&u, "192.0.2.7", Some("dev1"), 5, 100);
        assert_eq!(scopes.len(), 1);
        assert_eq!((scopes[0].kind, scopes[0].limit), ("device", 5));
        let without = lock_scopes(&u, "192.0.2.7", None, 5, 100);
        assert!(without.iter().all(|s| s.key != scopes[0].key));
        Ok(())
    }

    #[test]
    fn failure_counters_ignore_the_case_of_the_name() -> Result<(), &'static str> {
        let a = lock_scopes(&Username::parse("Alice")?, "c", None, 5, 100);
        let b = lock_scopes(&Username::parse("alice")?, "c", None, 5, 100);
        assert_eq!(a, b);
        Ok(())
    }
}
