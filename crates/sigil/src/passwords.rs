//! Password hashing and policy.
//!
//! Hash: bcrypt (cost `passwords.bcrypt_cost`, at least 10) over `base64(HMAC-SHA256(pepper,
//! password))`. The pre-hash makes every password 44 bytes, so passwords longer than bcrypt's
//! 72-byte limit are neither truncated nor refused (`password + "x"` is a different password),
//! and the optional pepper keeps a stolen database useless without the configuration.
//!
//! bcrypt is slow on purpose (cost 10 ≈ 15 verifications/s per core here), so it runs on its
//! own small pool of threads behind a semaphore ([`Hasher`]): a login flood queues here instead
//! of starving the async workers that serve `/jwks.json` and `/token`. On Linux those threads
//! also run at a lower scheduling priority (`passwords.worker_nice`, default 10), so when a core
//! is shared the kernel runs a waiting `/jwks.json` or `/token` request first and bcrypt gets
//! the rest of the time.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// Lowest accepted bcrypt cost.
pub const MIN_COST: u32 = 10;

/// A password that passed the policy.
pub struct Password(SecretString);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Why a new password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Length outside 8..=100 characters.
    #[error("a password must be 8 to 100 characters long")]
    Length,
    /// Too easy to guess (common, patterned, or built from the username/email).
    #[error("this password is too easy to guess{0}")]
    Weak(String),
}

impl Password {
    /// Check a new password against the policy: 8–100 characters and a zxcvbn score of at least
    /// 3 ("safely unguessable"), judged with the username and email as known inputs.
    pub fn new(raw: &str, user_inputs: &[&str]) -> Result<Password, PolicyError> {
        let len = raw.chars().count();
        if !(8..=100).contains(&len) {
            return Err(PolicyError::Length);
        }
        let estimate = zxcvbn::zxcvbn(raw, user_inputs);
        if (estimate.score() as u8) < 3 {
            let hint = estimate
                .feedback()
                .and_then(|f| f.warning())
                .map(|w| format!(": {w}"))
                .unwrap_or_default();
            return Err(PolicyError::Weak(hint));
        }
        Ok(Password(SecretString::from(raw.to_owned())))
    }

    /// Check a user's new password against the policy, with their username and email (if any)
    /// as the known inputs: what `sigil users create|reset-password` and the admin API apply.
    pub fn for_user(
        raw: &str,
        username: &str,
        email: Option<&str>,
    ) -> Result<Password, PolicyError> {
        let inputs: Vec<&str> = [Some(username), email].into_iter().flatten().collect();
        Password::new(raw, &inputs)
    }

    /// The password text.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// Hashing errors.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// bcrypt failed (bad cost or malformed stored hash).
    #[error("password hashing failed: {0}")]
    Bcrypt(#[from] bcrypt::BcryptError),
    /// The blocking task failed.
    #[error("password hashing task failed")]
    Task,
}

/// Hashes and verifies passwords with bounded concurrency.
#[derive(Clone)]
pub struct Hasher {
    cost: u32,
    pepper: hmac::Key,
    permits: Arc<Semaphore>,
    dummy: Arc<String>,
    pool: Arc<Pool>,
}

type Job = Box<dyn FnOnce() + Send>;

/// The threads that run bcrypt. They exit when the last [`Hasher`] clone is dropped.
struct Pool {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl Pool {
    fn new(threads: usize, nice: i32) -> Pool {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name(format!("sigil-bcrypt-{i}"))
                .spawn(move || {
                    lower_priority(nice);
                    loop {
                        // The lock is held only while waiting for the next job, never while
                        // running one.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        Pool {
            jobs: Mutex::new(tx),
        }
    }

    fn submit(&self, job: Job) -> Result<(), HashError> {
        self.jobs
            .lock()
            .map_err(|_| HashError::Task)?
            .send(job)
            .map_err(|_| HashError::Task)
    }
}

/// Lower the calling thread's scheduling priority to `nice` (0 = unchanged, 19 = lowest).
/// On Linux the nice value is per thread, so this touches only the bcrypt threads.
#[cfg(target_os = "linux")]
fn lower_priority(nice: i32) {
    if nice <= 0 {
        return;
    }
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), nice) {
        tracing::warn!(error = %e, nice, "could not lower the priority of a password hashing thread");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_nice: i32) {}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hasher(cost {})", self.cost)
    }
}

impl Hasher {
    /// A hasher with `cost`, optional `pepper`, and at most `concurrency` bcrypt runs at once,
    /// on threads at scheduling priority `nice` (Linux; 0 leaves it unchanged).
    pub fn new(
        cost: u32,
        pepper: Option<&SecretString>,
        concurrency: usize,
        nice: i32,
    ) -> Result<Hasher, HashError> {
        let key = match pepper {
            Some(p) => p.expose_secret().as_bytes().to_vec(),
            None => b"sigil-password-prehash".to_vec(),
        };
        let pepper = hmac::Key::new(hmac::HMAC_SHA256, &key);
        // A real hash at the same cost, verified for unknown users so they cost the same work.
        let dummy = bcrypt::hash(prehash(&pepper, "sigil-dummy-password"), cost)?;
        Ok(Hasher {
            cost: cost.max(MIN_COST),
            pepper,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: Arc::new(dummy),
            pool: Arc::new(Pool::new(concurrency.max(1), nice)),
        })
    }

    /// Hash a password (blocking; for the CLI).
    pub fn hash_blocking(&self, password: &Password) -> Result<String, HashError> {
        Ok(bcrypt::hash(
            prehash(&self.pepper, password.expose()),
            self.cost,
        )?)
    }

    /// Hash a password on the hashing threads, at most `concurrency` at once (for the server,
    /// whose async workers must not run bcrypt).
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        let _permit = self.permits.acquire().await.map_err(|_| HashError::Task)?;
        let this = self.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pool.submit(Box::new(move || {
            let _ = tx.send(this.hash_blocking(&password));
        }))?;
        rx.await.map_err(|_| HashError::Task)?
    }

    /// Verify (blocking). A malformed stored hash verifies as false.
    pub fn verify_blocking(&self, password: &str, stored: &str) -> bool {
        bcrypt::verify(prehash(&self.pepper, password), stored).unwrap_or(false)
    }

    /// Verify on the hashing threads, at most `concurrency` at once. `stored = None` (unknown
    /// user) verifies against a dummy hash and returns false, costing the same time.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let _permit = self.permits.acquire().await.map_err(|_| HashError::Task)?;
        let this = self.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pool.submit(Box::new(move || {
            let ok = match stored {
                Some(h) => this.verify_blocking(&password, &h),
                None => {
                    let _ = this.verify_blocking(&password, &this.dummy);
                    false
                }
            };
            let _ = tx.send(ok);
        }))?;
        rx.await.map_err(|_| HashError::Task)
    }
}

fn prehash(pepper: &hmac::Key, password: &str) -> String {
    STANDARD.encode(hmac::sign(pepper, password.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert_eq!(Password::new("short", &[]).err(), Some(PolicyError::Length));
        assert!(matches!(
            Password::new("password123", &[]),
            Err(PolicyError::Weak(_))
        ));
        // Built from the username: refused.
        assert!(matches!(
            Password::new("alicealice1", &["alice"]),
            Err(PolicyError::Weak(_))
        ));
        assert!(Password::new(&"x".repeat(101), &[]).is_err());
        assert!(Password::new("correct horse battery staple", &[]).is_ok());
    }

    #[test]
    fn long_passwords_are_not_truncated() -> Result<(), Box<dyn std::error::Error>> {
        let h = Hasher::new(MIN_COST, None, 1, 0)?;
        let long = format!("{}tail", "a-long-passphrase-".repeat(4));
        assert!(long.len() > 72);
        let p = Password::new(&long, &[])?;
        let stored = h.hash_blocking(&p)?;
        assert!(h.verify_blocking(&long, &stored));
        assert!(
            !h.verify_blocking(&format!("{long}x"), &stored),
            "password+x must fail"
        );
        assert!(!h.verify_blocking(&long[..72], &stored));
        Ok(())
    }

    #[test]
    fn pepper_changes_the_hash() -> Result<(), Box<dyn std::error::Error>> {
        let pepper = SecretString::from("pepper".to_owned());
        let a = Hasher::new(MIN_COST, Some(&pepper), 1, 0)?;
        let b = Hasher::new(MIN_COST, None, 1, 0)?;
        let p = Password::new("correct horse battery staple", &[])?;
        let stored = a.hash_blocking(&p)?;
        assert!(a.verify_blocking(p.expose(), &stored));
        assert!(!b.verify_blocking(p.expose(), &stored));
        assert!(!a.verify_blocking(p.expose(), "not-a-bcrypt-hash"));
        Ok(())
    }
}
