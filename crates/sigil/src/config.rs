//! Settings, layered: built-in defaults → `sigil.toml` → `SIGIL_*` environment → command-line flags.
//!
//! The file and the environment are merged into one TOML tree first and deserialized once, with
//! `deny_unknown_fields` on every section, so a misspelt key is an error that names it. Secrets are
//! held in [`secrecy::SecretString`] and never printed: [`Settings::redacted`] is what
//! `sigil config check` shows.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sigil_verify::Algorithm;

/// Everything Sigil can be told. Field docs are the source of `deploy/sigil.example.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Issuer URL, used byte-for-byte as `iss`. Default `http://<listen>`.
    pub issuer: Option<String>,
    /// Directory for the SQLite file and the generated master key.
    pub data_dir: PathBuf,
    /// Base64 of 32 bytes; encrypts private keys at rest. Default: `<data_dir>/master.key`.
    pub master_key: Option<SecretString>,
    /// Database section.
    pub database: DatabaseSettings,
    /// Shared cache section.
    pub redis: RedisSettings,
    /// Token issuance section.
    pub tokens: TokenSettings,
    /// Key ring section.
    pub keys: KeySettings,
    /// Client registration section.
    pub clients: ClientSettings,
    /// User password section.
    pub passwords: PasswordSettings,
    /// HTTP limits section.
    pub http: HttpSettings,
    /// Logging section.
    pub log: LogSettings,
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://…`. Default `sqlite://<data_dir>/sigil.db`.
    pub url: Option<SecretString>,
    /// Maximum connections in the pool.
    pub pool_size: u32,
    /// How long a request waits for a connection before answering 503.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// PostgreSQL `statement_timeout`.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
}

/// `[redis]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// Shared cache URL; none means the in-process cache (single instance only).
    pub url: Option<SecretString>,
}

/// `[tokens]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSettings {
    /// Access-token lifetime, 1 second to 15 minutes.
    #[serde(with = "humantime_serde")]
    pub access_token_ttl: Duration,
    /// Algorithm that signs access tokens.
    #[serde(with = "alg_serde")]
    pub access_token_alg: Algorithm,
    /// `aud` when a client has no registered audience. Default: the issuer URL.
    pub default_audience: Option<String>,
    /// Largest access token Sigil will issue, in bytes.
    pub max_size: usize,
    /// A refresh token unused this long expires.
    #[serde(with = "humantime_serde")]
    pub refresh_token_idle: Duration,
    /// A refresh-token family (all its rotations) ends this long after the login.
    #[serde(with = "humantime_serde")]
    pub refresh_token_absolute: Duration,
    /// A repeat of the same refresh token within this window returns the same successor (lost
    /// responses, two tabs); after it, a repeat revokes the family. `0s` disables the window.
    #[serde(with = "humantime_serde")]
    pub refresh_reuse_window: Duration,
}

/// `[keys]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeySettings {
    /// Automatic rotation period of every signing algorithm in use; `0s` turns it off.
    #[serde(with = "humantime_serde")]
    pub rotate_every: Duration,
    /// `Cache-Control: max-age` of `/jwks.json`; a new key is published this long plus `clock_skew`
    /// before it signs.
    #[serde(with = "humantime_serde")]
    pub jwks_max_age: Duration,
    /// Allowed clock difference between Sigil and verifiers.
    #[serde(with = "humantime_serde")]
    pub clock_skew: Duration,
    /// How long a retired key's row is kept (unpublished) before it is deleted.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// RSA modulus size for new RS256/PS256 keys (2048, 3072 or 4096).
    pub rsa_bits: u32,
}

/// `[clients]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSettings {
    /// How long the previous secret stays valid after `clients rotate-secret`.
    #[serde(with = "humantime_serde")]
    pub secret_overlap: Duration,
}

/// `[passwords]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordSettings {
    /// bcrypt cost, at least 10. Each +1 doubles the work per login.
    pub bcrypt_cost: u32,
    /// Optional secret mixed into every password hash (HMAC key of the pre-hash).
    pub pepper: Option<SecretString>,
    /// Most bcrypt computations at once; 0 = half the cores (at least one), so logins can never
    /// take every core from the other endpoints.
    pub max_concurrency: usize,
    /// Scheduling priority (nice, 0–19) of the bcrypt threads on Linux: higher runs them after
    /// waiting requests on a shared core. 0 leaves it unchanged.
    pub worker_nice: i32,
    /// Login form posts accepted per client IP per minute (then 429).
    pub max_logins_per_ip_minute: u64,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        PasswordSettings {
            bcrypt_cost: 10,
            pepper: None,
            max_concurrency: 0,
            worker_nice: 10,
            max_logins_per_ip_minute: 30,
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Largest accepted request body, bytes.
    pub max_body: usize,
    /// Worker threads; 0 = one per core.
    pub workers: usize,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `tracing` filter, e.g. `info` or `sigil=debug,info`.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: None,
            data_dir: PathBuf::from("./data"),
            master_key: None,
            database: DatabaseSettings::default(),
            redis: RedisSettings::default(),
            tokens: TokenSettings::default(),
            keys: KeySettings::default(),
            clients: ClientSettings::default(),
            passwords: PasswordSettings::default(),
            http: HttpSettings::default(),
            log: LogSettings::default(),
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: None,
            pool_size: 20,
            connect_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(30),
        }
    }
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            access_token_ttl: Duration::from_secs(600),
            access_token_alg: Algorithm::ES256,
            default_audience: None,
            max_size: 4096,
            refresh_token_idle: Duration::from_secs(14 * 86_400),
            refresh_token_absolute: Duration::from_secs(30 * 86_400),
            refresh_reuse_window: Duration::from_secs(10),
        }
    }
}

impl Default for KeySettings {
    fn default() -> Self {
        KeySettings {
            rotate_every: Duration::from_secs(90 * 86_400),
            jwks_max_age: Duration::from_secs(15 * 60),
            clock_skew: Duration::from_secs(60),
            retention: Duration::from_secs(7 * 86_400),
            rsa_bits: 2048,
        }
    }
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            secret_overlap: Duration::from_secs(86_400),
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            max_body: 16 * 1024,
            workers: 0,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

/// Why settings could not be loaded. Messages name the key or variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file, or the merged settings, do not parse.
    #[error("invalid configuration{}: {message}", origin.as_deref().map(|o| format!(" in {o}")).unwrap_or_default())]
    Parse {
        /// Where the bad value came from.
        origin: Option<String>,
        /// What is wrong (names the key).
        message: String,
    },
    /// An environment variable that starts with `SIGIL_` but names no setting.
    #[error("unknown environment variable {0}: no such setting (see deploy/sigil.example.toml)")]
    UnknownEnv(String),
    /// A value is out of range.
    #[error("invalid setting {key} (environment {}): {reason}", env_var(key))]
    Invalid {
        /// Dotted key.
        key: &'static str,
        /// Why.
        reason: String,
    },
}

/// The environment variable that sets the dotted `key`.
pub fn env_var(key: &str) -> String {
    if key == "tokens.access_token_ttl" {
        return "SIGIL_ACCESS_TOKEN_TTL".to_owned();
    }
    format!("SIGIL_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// Top-level keys and sections, used to map `SIGIL_<SECTION>_<KEY>`.
const SECTIONS: &[&str] = &[
    "database",
    "redis",
    "tokens",
    "keys",
    "clients",
    "passwords",
    "http",
    "log",
];
const TOP_LEVEL: &[&str] = &["listen", "issuer", "data_dir", "master_key"];
/// Environment variables that are not settings but are read by Sigil.
const NON_SETTING_ENV: &[&str] = &["SIGIL_CONFIG"];

/// Flags that override everything else (only those the CLI exposes).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`
    pub listen: Option<SocketAddr>,
    /// `--database-url`
    pub database_url: Option<String>,
    /// `--data-dir`
    pub data_dir: Option<PathBuf>,
    /// `--issuer`
    pub issuer: Option<String>,
}

impl Settings {
    /// Load from an optional file and the given environment, then apply flags and validate.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Settings, ConfigError> {
        let mut tree = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse {
                        origin: Some(path.display().to_string()),
                        message: e.message().to_owned(),
                    })?
            }
            None => toml::Table::new(),
        };
        let from_env = apply_env(&mut tree, env)?;
        let mut settings: Settings =
            toml::Value::Table(tree)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    let message = e.message().to_owned();
                    // Name the variable when the unknown key came from the environment.
                    match from_env
                        .iter()
                        .find(|(_, key)| message.starts_with(&format!("unknown field `{key}`")))
                    {
                        Some((var, _)) => ConfigError::UnknownEnv(var.clone()),
                        None => ConfigError::Parse {
                            origin: None,
                            message,
                        },
                    }
                })?;
        if let Some(listen) = overrides.listen {
            settings.listen = listen;
        }
        if let Some(url) = &overrides.database_url {
            settings.database.url = Some(SecretString::from(url.clone()));
        }
        if let Some(dir) = &overrides.data_dir {
            settings.data_dir = dir.clone();
        }
        if let Some(issuer) = &overrides.issuer {
            settings.issuer = Some(issuer.clone());
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Check ranges and relations between settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ttl = self.tokens.access_token_ttl;
        if ttl < Duration::from_secs(1) || ttl > Duration::from_secs(900) {
            return Err(ConfigError::Invalid {
                key: "tokens.access_token_ttl",
                reason: "must be between 1s and 15m".into(),
            });
        }
        if let Some(issuer) = &self.issuer {
            crate::domain::IssuerUrl::parse(issuer).map_err(|reason| ConfigError::Invalid {
                key: "issuer",
                reason,
            })?;
        }
        if self.database.pool_size == 0 {
            return Err(ConfigError::Invalid {
                key: "database.pool_size",
                reason: "must be at least 1".into(),
            });
        }
        if self.tokens.refresh_token_idle > self.tokens.refresh_token_absolute
            || self.tokens.refresh_token_idle.is_zero()
        {
            return Err(ConfigError::Invalid {
                key: "tokens.refresh_token_idle",
                reason: "must be non-zero and at most tokens.refresh_token_absolute".into(),
            });
        }
        if self.tokens.refresh_reuse_window > Duration::from_secs(300) {
            return Err(ConfigError::Invalid {
                key: "tokens.refresh_reuse_window",
                reason: "must be at most 5m".into(),
            });
        }
        if !(crate::passwords::MIN_COST..=16).contains(&self.passwords.bcrypt_cost) {
            return Err(ConfigError::Invalid {
                key: "passwords.bcrypt_cost",
                reason: format!("must be between {} and 16", crate::passwords::MIN_COST),
            });
        }
        if !(0..=19).contains(&self.passwords.worker_nice) {
            return Err(ConfigError::Invalid {
                key: "passwords.worker_nice",
                reason: "must be between 0 and 19".into(),
            });
        }
        if !matches!(self.keys.rsa_bits, 2048 | 3072 | 4096) {
            return Err(ConfigError::Invalid {
                key: "keys.rsa_bits",
                reason: "must be 2048, 3072 or 4096".into(),
            });
        }
        if self.tokens.max_size < 512 {
            return Err(ConfigError::Invalid {
                key: "tokens.max_size",
                reason: "must be at least 512 bytes".into(),
            });
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(ConfigError::Invalid {
                key: "log.format",
                reason: "must be \"text\" or \"json\"".into(),
            });
        }
        let url = self.database_url();
        if !(url.starts_with("sqlite://")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid {
                key: "database.url",
                reason: "must start with sqlite:// or postgres://".into(),
            });
        }
        if !self.keys.rotate_every.is_zero()
            && self.keys.rotate_every <= self.activation_delay() + self.max_token_lifetime()
        {
            return Err(ConfigError::Invalid {
                key: "keys.rotate_every",
                reason: "must be longer than keys.jwks_max_age + keys.clock_skew + the longest token lifetime".into(),
            });
        }
        if self.max_token_lifetime() > Duration::from_secs(3600 * 24 * 365) {
            return Err(ConfigError::Invalid {
                key: "tokens",
                reason: "token lifetimes above a year are not supported".into(),
            });
        }
        Ok(())
    }

    /// The issuer URL, exactly as it appears in `iss`.
    pub fn issuer(&self) -> String {
        match &self.issuer {
            Some(i) => i.clone(),
            None => format!("http://{}", self.listen),
        }
    }

    /// The database URL (default SQLite in the data dir).
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(u) => u.expose_secret().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("sigil.db").display()),
        }
    }

    /// The password hasher these settings describe.
    pub fn password_hasher(&self) -> Result<crate::passwords::Hasher, crate::passwords::HashError> {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let concurrency = match self.passwords.max_concurrency {
            0 => (cores / 2).max(1),
            n => n,
        };
        crate::passwords::Hasher::new(
            self.passwords.bcrypt_cost,
            self.passwords.pepper.as_ref(),
            concurrency,
            self.passwords.worker_nice,
        )
    }

    /// How long a newly published key waits before it signs.
    pub fn activation_delay(&self) -> Duration {
        self.keys.jwks_max_age + self.keys.clock_skew
    }

    /// The longest lifetime of any token Sigil signs; a superseded key stays published this long
    /// (plus clock skew).
    pub fn max_token_lifetime(&self) -> Duration {
        self.tokens
            .access_token_ttl
            .max(self.tokens.refresh_token_absolute)
    }

    /// A printable view with every secret replaced by `"<redacted>"`.
    pub fn redacted(&self) -> serde_json::Value {
        let redact = |s: &Option<SecretString>| s.as_ref().map(|_| "<redacted>");
        let database_url = match &self.database.url {
            Some(u) => redact_url(u.expose_secret()),
            None => self.database_url(),
        };
        serde_json::json!({
            "listen": self.listen.to_string(),
            "issuer": self.issuer(),
            "data_dir": self.data_dir.display().to_string(),
            "master_key": redact(&self.master_key).unwrap_or("<data_dir>/master.key"),
            "database": {
                "url": database_url,
                "pool_size": self.database.pool_size,
                "connect_timeout": humantime::format_duration(self.database.connect_timeout).to_string(),
                "statement_timeout": humantime::format_duration(self.database.statement_timeout).to_string(),
            },
            "redis": { "url": self.redis.url.as_ref().map(|u| redact_url(u.expose_secret())) },
            "tokens": {
                "access_token_ttl": humantime::format_duration(self.tokens.access_token_ttl).to_string(),
                "access_token_alg": self.tokens.access_token_alg.as_str(),
                "default_audience": self.tokens.default_audience.clone().unwrap_or_else(|| self.issuer()),
                "max_size": self.tokens.max_size,
                "refresh_token_idle": humantime::format_duration(self.tokens.refresh_token_idle).to_string(),
                "refresh_token_absolute": humantime::format_duration(self.tokens.refresh_token_absolute).to_string(),
                "refresh_reuse_window": humantime::format_duration(self.tokens.refresh_reuse_window).to_string(),
            },
            "keys": {
                "rotate_every": humantime::format_duration(self.keys.rotate_every).to_string(),
                "jwks_max_age": humantime::format_duration(self.keys.jwks_max_age).to_string(),
                "clock_skew": humantime::format_duration(self.keys.clock_skew).to_string(),
                "retention": humantime::format_duration(self.keys.retention).to_string(),
                "rsa_bits": self.keys.rsa_bits,
            },
            "clients": { "secret_overlap": humantime::format_duration(self.clients.secret_overlap).to_string() },
            "passwords": {
                "bcrypt_cost": self.passwords.bcrypt_cost,
                "pepper": redact(&self.passwords.pepper),
                "max_concurrency": self.passwords.max_concurrency,
                "worker_nice": self.passwords.worker_nice,
                "max_logins_per_ip_minute": self.passwords.max_logins_per_ip_minute,
            },
            "http": { "max_body": self.http.max_body, "workers": self.http.workers },
            "log": { "level": self.log.level, "format": self.log.format },
        })
    }
}

/// Hide the password part of a URL (`postgres://user:pw@host/db` → `postgres://user:<redacted>@host/db`).
fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.rsplit_once('@')
    {
        let user = userinfo.split(':').next().unwrap_or("");
        return format!("{scheme}://{user}:<redacted>@{host}");
    }
    url.to_owned()
}

/// Overlay `SIGIL_*` variables onto the file's tree. Returns (variable, key) pairs applied.
fn apply_env(
    tree: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut applied = Vec::new();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("SIGIL_") else {
            continue;
        };
        if NON_SETTING_ENV.contains(&name.as_str()) || name.starts_with("SIGIL_TEST_") {
            continue;
        }
        let lower = rest.to_ascii_lowercase();
        let (section, key) = if lower == "access_token_ttl" {
            (Some("tokens"), "access_token_ttl".to_owned())
        } else if TOP_LEVEL.contains(&lower.as_str()) {
            (None, lower.clone())
        } else {
            match SECTIONS.iter().find(|s| {
                lower.len() > s.len() + 1
                    && lower.starts_with(*s)
                    && lower.as_bytes()[s.len()] == b'_'
            }) {
                Some(s) => (Some(*s), lower[s.len() + 1..].to_owned()),
                None => return Err(ConfigError::UnknownEnv(name)),
            }
        };
        let value = env_value(&value);
        let table = match section {
            None => &mut *tree,
            Some(s) => {
                let entry = tree
                    .entry(s.to_owned())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                match entry {
                    toml::Value::Table(t) => t,
                    _ => {
                        return Err(ConfigError::Parse {
                            origin: None,
                            message: format!("`{s}` must be a table"),
                        });
                    }
                }
            }
        };
        applied.push((name.clone(), key.clone()));
        table.insert(key, value);
    }
    Ok(applied)
}

/// Environment values are strings; numbers and booleans are recognised so `SIGIL_DATABASE_POOL_SIZE=5` works.
fn env_value(raw: &str) -> toml::Value {
    if let Ok(i) = raw.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    match raw {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(raw.to_owned()),
    }
}

mod humantime_serde {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        crate::domain::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

mod alg_serde {
    use serde::{Deserialize, Deserializer};
    use sigil_verify::Algorithm;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Algorithm, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<Algorithm>().map_err(|_| {
            serde::de::Error::custom(format!(
                "unknown algorithm `{s}`, expected one of RS256, PS256, ES256, EdDSA"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_contract() -> Result<(), ConfigError> {
        let s = Settings::load(None, env(&[]), &Overrides::default())?;
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.issuer(), "http://127.0.0.1:8080");
        assert_eq!(s.database_url(), "sqlite://./data/sigil.db");
        assert_eq!(s.tokens.access_token_ttl, Duration::from_secs(600));
        assert_eq!(s.database.pool_size, 20);
        Ok(())
    }

    #[test]
    fn env_overrides_file_and_flags_override_env() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("sigil.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\n[database]\npool_size = 3\n",
        )?;
        let s = Settings::load(
            Some(&file),
            env(&[
                ("SIGIL_DATABASE_POOL_SIZE", "7"),
                ("SIGIL_ACCESS_TOKEN_TTL", "5m"),
                ("PATH", "/bin"),
            ]),
            &Overrides {
                listen: Some("127.0.0.1:9100".parse()?),
                ..Overrides::default()
            },
        )?;
        assert_eq!(s.database.pool_size, 7);
        assert_eq!(s.listen.port(), 9100);
        assert_eq!(s.tokens.access_token_ttl, Duration::from_secs(300));
        Ok(())
    }

    #[test]
    fn unknown_key_in_file_is_named() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("sigil.toml");
        std::fs::write(&file, "[tokens]\naccess_token_tll = \"10m\"\n")?;
        let err = Settings::load(Some(&file), env(&[]), &Overrides::default())
            .err()
            .ok_or("expected an error")?;
        assert!(err.to_string().contains("access_token_tll"), "{err}");
        Ok(())
    }

    #[test]
    fn unknown_env_is_named() {
        let err = Settings::load(
            None,
            env(&[("SIGIL_TOKENS_NOPE", "1")]),
            &Overrides::default(),
        );
        assert!(matches!(err, Err(ConfigError::UnknownEnv(ref n)) if n == "SIGIL_TOKENS_NOPE"));
        let err = Settings::load(None, env(&[("SIGIL_BOGUS", "1")]), &Overrides::default());
        assert!(matches!(err, Err(ConfigError::UnknownEnv(_))));
    }

    #[test]
    fn every_section_takes_environment_variables() -> Result<(), ConfigError> {
        let s = Settings::load(
            None,
            env(&[
                ("SIGIL_PASSWORDS_BCRYPT_COST", "11"),
                ("SIGIL_KEYS_CLOCK_SKEW", "30s"),
                ("SIGIL_HTTP_MAX_BODY", "8192"),
                ("SIGIL_CLIENTS_SECRET_OVERLAP", "1h"),
                ("SIGIL_LOG_FORMAT", "json"),
                ("SIGIL_REDIS_URL", "redis://127.0.0.1:6379"),
            ]),
            &Overrides::default(),
        )?;
        assert_eq!(s.passwords.bcrypt_cost, 11);
        assert_eq!(s.keys.clock_skew, Duration::from_secs(30));
        assert_eq!(s.http.max_body, 8192);
        assert_eq!(s.clients.secret_overlap, Duration::from_secs(3600));
        assert_eq!(s.log.format, "json");
        assert!(s.redis.url.is_some());
        Ok(())
    }

    #[test]
    fn ttl_out_of_range_is_refused() {
        let err = Settings::load(
            None,
            env(&[("SIGIL_ACCESS_TOKEN_TTL", "1h")]),
            &Overrides::default(),
        );
        assert!(matches!(
            err,
            Err(ConfigError::Invalid {
                key: "tokens.access_token_ttl",
                ..
            })
        ));
    }

    #[test]
    fn redacted_view_hides_secrets() -> Result<(), ConfigError> {
        let s = Settings::load(
            None,
            env(&[
                (
                    "SIGIL_MASTER_KEY",
                    "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=",
                ),
                ("SIGIL_DATABASE_URL", "postgres://sigil:hunter2@db/sigil"),
            ]),
            &Overrides::default(),
        )?;
        let shown = s.redacted().to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        Ok(())
    }
}
