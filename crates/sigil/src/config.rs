//! Settings, layered: built-in defaults → `sigil.toml` → `SIGIL_*` environment → command-line flags.
//!
//! The file and the environment are merged into one TOML tree first and deserialized once, with
//! `deny_unknown_fields` on every section, so a misspelt key is an error that names it. An
//! environment value is read by the type of the setting it names (a number only where a number is
//! expected) and checked on its own first, so a bad one names its variable and its key; the
//! variables Kubernetes injects for a Service named `sigil` are ignored.
//!
//! Secrets are held in [`secrecy::SecretString`] and serialize as `"<redacted>"`; database and
//! Redis URLs serialize without their password or any query parameter not known to be harmless.
//! So the derived [`serde::Serialize`] of [`Settings`] is what `sigil config check` prints, and
//! no hand-written copy of the keys can drift from the struct.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sigil_verify::Algorithm;

use crate::domain::IssuerUrl;

/// Everything Sigil can be told. Field docs are the source of `deploy/sigil.example.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Issuer URL, used byte-for-byte as `iss`. Default `http://<listen>`.
    pub issuer: Option<IssuerUrl>,
    /// Directory for the SQLite file and the generated master key.
    pub data_dir: PathBuf,
    /// Base64 of 32 bytes; encrypts private keys at rest. Default: `<data_dir>/master.key`.
    #[serde(serialize_with = "redact::secret")]
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
    /// Rate limits, one per class.
    pub rate_limits: RateLimitSettings,
    /// Logging section.
    pub log: LogSettings,
    /// What people see on Sigil's pages.
    pub ui: UiSettings,
}

/// `[ui]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiSettings {
    /// The product name on the login, consent and logout pages ("Sign in to …").
    pub product_name: String,
}

impl Default for UiSettings {
    fn default() -> Self {
        UiSettings {
            product_name: "Sigil".into(),
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://…`. Default `sqlite://<data_dir>/sigil.db`.
    #[serde(serialize_with = "redact::url")]
    pub url: Option<SecretString>,
    /// Maximum connections in the pool.
    pub pool_size: u32,
    /// How long a request waits for a connection before answering 503.
    #[serde(with = "duration_serde")]
    pub connect_timeout: Duration,
    /// PostgreSQL `statement_timeout`.
    #[serde(with = "duration_serde")]
    pub statement_timeout: Duration,
}

/// `[redis]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// Shared state URL (`redis://…`). None: the state is kept in the database's tables on
    /// PostgreSQL, in process on SQLite (one server).
    #[serde(serialize_with = "redact::url")]
    pub url: Option<SecretString>,
    /// Prefix of every shared-state key, so deployments can share one Redis database.
    pub key_prefix: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: None,
            key_prefix: "sigil:".into(),
        }
    }
}

/// `[tokens]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSettings {
    /// Access-token lifetime, 1 second to 15 minutes.
    #[serde(with = "duration_serde")]
    pub access_token_ttl: Duration,
    /// Algorithm that signs access tokens.
    #[serde(with = "alg_serde")]
    pub access_token_alg: Algorithm,
    /// `aud` when a client has no registered audience. Default: the issuer URL.
    pub default_audience: Option<String>,
    /// Largest access token Sigil will issue, in bytes.
    pub max_size: usize,
    /// A refresh token unused this long expires.
    #[serde(with = "duration_serde")]
    pub refresh_token_idle: Duration,
    /// A refresh-token family (all its rotations) ends this long after the login.
    #[serde(with = "duration_serde")]
    pub refresh_token_absolute: Duration,
    /// A repeat of the same refresh token within this window returns the same successor (lost
    /// responses, two tabs); after it, a repeat revokes the family. `0s` disables the window.
    #[serde(with = "duration_serde")]
    pub refresh_reuse_window: Duration,
}

/// `[keys]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeySettings {
    /// Automatic rotation period of every signing algorithm in use; `0s` turns it off.
    #[serde(with = "duration_serde")]
    pub rotate_every: Duration,
    /// `Cache-Control: max-age` of `/jwks.json`; a new key is published this long plus `clock_skew`
    /// before it signs.
    #[serde(with = "duration_serde")]
    pub jwks_max_age: Duration,
    /// Allowed clock difference between Sigil and verifiers.
    #[serde(with = "duration_serde")]
    pub clock_skew: Duration,
    /// How long a retired key's row is kept (unpublished) before it is deleted.
    #[serde(with = "duration_serde")]
    pub retention: Duration,
    /// RSA modulus size for new RS256/PS256 keys (2048, 3072 or 4096).
    pub rsa_bits: u32,
}

/// `[clients]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSettings {
    /// How long the previous secret stays valid after `clients rotate-secret`.
    #[serde(with = "duration_serde")]
    pub secret_overlap: Duration,
    /// Registered clients each server keeps in memory (least recently used ones make room);
    /// unknown ids are remembered apart, in a small cache of their own.
    pub cache_size: usize,
}

/// `[passwords]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordSettings {
    /// bcrypt cost, at least 10. Each +1 doubles the work per login.
    pub bcrypt_cost: u32,
    /// Optional secret mixed into every password hash (HMAC key of the pre-hash).
    #[serde(serialize_with = "redact::secret")]
    pub pepper: Option<SecretString>,
    /// Most bcrypt computations at once; 0 = half the cores (at least one), so logins can never
    /// take every core from the other endpoints.
    pub max_concurrency: usize,
    /// Scheduling priority (nice, 0–19) of the bcrypt threads on Linux: higher runs them after
    /// waiting requests on a shared core. 0 leaves it unchanged.
    pub worker_nice: i32,
    /// Moved to `rate_limits.login_per_ip`: read only to refuse it with a message that says so.
    #[serde(skip_serializing)]
    pub max_logins_per_ip_minute: Option<serde::de::IgnoredAny>,
    /// Failed sign-ins to one account from one client (an IPv4 address or IPv6 /64, or a browser
    /// holding the account's device cookie) within `lockout_window` that lock the account for
    /// that client.
    pub lockout_failures: u64,
    /// Failed sign-ins to one account from all clients together (device cookies aside) within
    /// `lockout_window` that lock it for every client without its device cookie.
    pub lockout_account_failures: u64,
    /// How long failures count, and how long a lock lasts after the last of them.
    #[serde(with = "duration_serde")]
    pub lockout_window: Duration,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        PasswordSettings {
            bcrypt_cost: 10,
            pepper: None,
            max_concurrency: 0,
            worker_nice: 10,
            max_logins_per_ip_minute: None,
            lockout_failures: 5,
            lockout_account_failures: 100,
            lockout_window: Duration::from_secs(15 * 60),
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Largest accepted request body, bytes.
    pub max_body: usize,
    /// Worker threads; 0 = one per core.
    pub workers: usize,
    /// Reverse proxies (CIDRs) whose forwarded-for header is believed
    /// (`SIGIL_HTTP_TRUSTED_PROXIES`, comma-separated). Empty: the TCP peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Which header the trusted proxies set: `x-forwarded-for` or `forwarded` (RFC 7239).
    /// Only that one is read, so a client cannot slip in the other.
    pub forwarded_header: ForwardedHeader,
    /// On SIGTERM, how long to keep serving with `/readyz` failing and every response closing
    /// its connection, before the listener closes (load balancers stop sending meanwhile).
    #[serde(with = "duration_serde")]
    pub drain_delay: Duration,
}

/// `http.forwarded_header`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

/// `[rate_limits]`: one limit per class of request, each `"N/PERIOD"` (N requests per period,
/// all of them at once if need be: GCRA with a burst of N) or `"off"`. What each class counts and
/// why its default is what it is: docs/operations.md, "Rate limits".
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// `/token` requests per authenticated client.
    pub token_per_client: Rate,
    /// `/introspect` requests per authenticated client (a resource server).
    pub introspect_per_client: Rate,
    /// `/revoke` requests per authenticated client.
    pub revoke_per_client: Rate,
    /// `/userinfo` requests per token subject (the user).
    pub userinfo_per_subject: Rate,
    /// Admin API requests per token subject (the administrator or automation client).
    pub admin_per_principal: Rate,
    /// Failed client authentications (`invalid_client` at `/token`, `/revoke`, `/introspect`)
    /// per client address (IPv4 address or IPv6 /64). Once over it, the address is refused
    /// before its credentials are checked.
    pub client_auth_failures_per_ip: Rate,
    /// Login form posts per client address (every attempt, right or wrong).
    pub login_per_ip: Rate,
    /// Other failed requests before any client, token or sign-in attempt was identified
    /// (malformed requests, `/userinfo` without a valid token, `/authorize` refused on Sigil's
    /// own page) per client address.
    pub failures_per_ip: Rate,
    /// All requests to each of `/token`, `/introspect`, `/revoke`, `/userinfo` and the login
    /// form across the deployment (one count per endpoint).
    pub global: Rate,
    /// Count the per-client and per-subject classes in the shared state too, exact across
    /// replicas, at one shared-state round trip per request. Default: each process counts
    /// them on its own.
    pub share_principal_limits: bool,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        let per = |n: u32, secs: u64| Rate::Limit {
            requests: n,
            per: Duration::from_secs(secs),
        };
        RateLimitSettings {
            token_per_client: per(500, 60),
            introspect_per_client: per(3000, 60),
            revoke_per_client: per(1000, 60),
            userinfo_per_subject: per(120, 60),
            admin_per_principal: per(600, 60),
            client_auth_failures_per_ip: per(20, 60),
            login_per_ip: per(30, 60),
            failures_per_ip: per(100, 15 * 60),
            global: Rate::Off,
            share_principal_limits: false,
        }
    }
}

/// One rate-limit setting: `"500/1m"` (500 requests per minute), or `"off"` (also `"0"` or `0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// No limit.
    Off,
    /// `requests` per `per`.
    Limit {
        /// Requests per period, 1 to [`Rate::MAX_REQUESTS`].
        requests: u32,
        /// The period, 1 second to 1 day.
        per: Duration,
    },
}

impl Rate {
    /// The most requests one period may allow.
    pub const MAX_REQUESTS: u32 = 1_000_000;

    /// Parse `"N/PERIOD"`, `"off"` or `"0"`.
    pub fn parse(s: &str) -> Result<Rate, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") || s == "0" {
            return Ok(Rate::Off);
        }
        let bad = || format!("invalid rate `{s}`: write it like 500/1m, 20/10s or off");
        let (n, period) = s.split_once('/').ok_or_else(bad)?;
        let requests: u32 = n.trim().parse().map_err(|_| bad())?;
        let per = crate::domain::parse_duration(period).map_err(|_| bad())?;
        if requests == 0 || requests > Rate::MAX_REQUESTS {
            return Err(format!(
                "invalid rate `{s}`: between 1 and {} requests per period (or off)",
                Rate::MAX_REQUESTS
            ));
        }
        if per < Duration::from_secs(1) || per > Duration::from_secs(86_400) {
            return Err(format!(
                "invalid rate `{s}`: the period must be between 1s and 24h"
            ));
        }
        Ok(Rate::Limit { requests, per })
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::Off => f.write_str("off"),
            Rate::Limit { requests, per } => {
                write!(f, "{requests}/{}", crate::domain::format_duration(*per))
            }
        }
    }
}

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Rate, D::Error> {
        /// A rate as written: text, or the number 0 for off.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Text(String),
            Number(i64),
        }
        match Written::deserialize(d)? {
            Written::Text(s) => Rate::parse(&s).map_err(serde::de::Error::custom),
            Written::Number(0) => Ok(Rate::Off),
            Written::Number(n) => Err(serde::de::Error::custom(format!(
                "invalid rate {n}: write it as text like \"{n}/1m\", or off"
            ))),
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `tracing` filter, e.g. `info` or `sigil=debug,info`.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

/// `log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per event.
    Json,
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
            rate_limits: RateLimitSettings::default(),
            log: LogSettings::default(),
            ui: UiSettings::default(),
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
            cache_size: 10_000,
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            max_body: 16 * 1024,
            workers: 0,
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeader::XForwardedFor,
            drain_delay: Duration::from_secs(5),
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// Why settings could not be loaded. Messages name the key or variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
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
    /// An environment variable's value does not fit its setting.
    #[error("invalid environment variable {var} (setting {key}): {message}")]
    Env {
        /// The variable.
        var: String,
        /// Dotted key it sets.
        key: String,
        /// What is wrong.
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
    "rate_limits",
    "log",
    "ui",
];
const TOP_LEVEL: &[&str] = &["listen", "issuer", "data_dir", "master_key"];
/// Environment variables that are not settings but are read by Sigil.
const NON_SETTING_ENV: &[&str] = &[
    "SIGIL_CONFIG",
    // `sigil --server`: the remote admin API and its credentials (cli::remote).
    "SIGIL_SERVER",
    "SIGIL_ADMIN_TOKEN",
    "SIGIL_ADMIN_TOKEN_FILE",
    "SIGIL_ADMIN_CLIENT_ID",
    "SIGIL_ADMIN_CLIENT_SECRET",
    "SIGIL_ADMIN_CLIENT_SECRET_FILE",
];

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
            settings.issuer =
                Some(
                    IssuerUrl::parse(issuer).map_err(|reason| ConfigError::Invalid {
                        key: "issuer",
                        reason,
                    })?,
                );
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
        if self.clients.cache_size < 10 {
            return Err(ConfigError::Invalid {
                key: "clients.cache_size",
                reason: "must be at least 10".into(),
            });
        }
        if let Some(aud) = &self.tokens.default_audience {
            crate::domain::parse_audience(aud, "tokens.default_audience").map_err(|reason| {
                ConfigError::Invalid {
                    key: "tokens.default_audience",
                    reason,
                }
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
        if self.http.drain_delay > Duration::from_secs(60) {
            return Err(ConfigError::Invalid {
                key: "http.drain_delay",
                reason: "must be at most 60s".into(),
            });
        }
        let p = &self.passwords;
        if p.max_logins_per_ip_minute.is_some() {
            return Err(ConfigError::Invalid {
                key: "passwords.max_logins_per_ip_minute",
                reason: "moved: set rate_limits.login_per_ip (SIGIL_RATE_LIMITS_LOGIN_PER_IP) to \"N/1m\" instead".into(),
            });
        }
        if p.lockout_failures == 0 || p.lockout_account_failures < p.lockout_failures {
            return Err(ConfigError::Invalid {
                key: "passwords.lockout_account_failures",
                reason: "passwords.lockout_failures must be at least 1 and at most passwords.lockout_account_failures".into(),
            });
        }
        if p.lockout_window < Duration::from_secs(60)
            || p.lockout_window > Duration::from_secs(86_400)
        {
            return Err(ConfigError::Invalid {
                key: "passwords.lockout_window",
                reason: "must be between 1m and 24h".into(),
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
        let name = self.ui.product_name.trim();
        if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
            return Err(ConfigError::Invalid {
                key: "ui.product_name",
                reason: "must be 1 to 60 characters, without control characters".into(),
            });
        }
        let prefix = &self.redis.key_prefix;
        if prefix.is_empty()
            || prefix.len() > 64
            || prefix.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(ConfigError::Invalid {
                key: "redis.key_prefix",
                reason: "must be 1 to 64 bytes, without spaces or control characters".into(),
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
            Some(i) => i.as_str().to_owned(),
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

    /// The longest lifetime of a token third parties verify with the JWKS: access and ID tokens
    /// (ID tokens live as long as access tokens). A superseded key stays published this long
    /// (plus clock skew).
    pub fn max_published_token_lifetime(&self) -> Duration {
        self.tokens.access_token_ttl
    }

    /// The longest lifetime of any token Sigil signs (refresh tokens, which only Sigil verifies,
    /// included); a superseded key stays in the ring this long (plus clock skew).
    pub fn max_token_lifetime(&self) -> Duration {
        self.tokens
            .access_token_ttl
            .max(self.tokens.refresh_token_absolute)
    }

    /// The settings with the defaults that depend on others filled in (issuer, database URL,
    /// default audience): what `sigil config check` serializes.
    pub fn effective(&self) -> Settings {
        let mut s = self.clone();
        if s.issuer.is_none() {
            s.issuer = IssuerUrl::parse(&self.issuer()).ok();
        }
        if s.database.url.is_none() {
            s.database.url = Some(SecretString::from(self.database_url()));
        }
        if s.tokens.default_audience.is_none() {
            s.tokens.default_audience = Some(self.issuer());
        }
        s
    }
}

/// Whether `name` is one of the variables Kubernetes injects for a Service named `sigil`
/// (`SIGIL_SERVICE_HOST`, `SIGIL_SERVICE_PORT[_*]`, `SIGIL_PORT`, `SIGIL_PORT_*`).
fn injected_by_kubernetes(name: &str) -> bool {
    name.starts_with("SIGIL_SERVICE_") || name == "SIGIL_PORT" || name.starts_with("SIGIL_PORT_")
}

/// Overlay `SIGIL_*` variables onto the file's tree. Each value is typed by the setting it names
/// and checked on its own, so an error names the variable and the key. Returns (variable, key)
/// pairs applied.
fn apply_env(
    tree: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<(String, String)>, ConfigError> {
    // The type of every setting, from the serialized defaults (an unset optional setting is text).
    let defaults = serde_json::to_value(Settings::default()).unwrap_or_default();
    let mut applied = Vec::new();
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix("SIGIL_") else {
            continue;
        };
        if NON_SETTING_ENV.contains(&name.as_str())
            || name.starts_with("SIGIL_TEST_")
            || injected_by_kubernetes(&name)
        {
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
        let dotted = match section {
            Some(s) => format!("{s}.{key}"),
            None => key.clone(),
        };
        let default = match section {
            Some(s) => defaults.get(s).and_then(|t| t.get(&key)),
            None => defaults.get(&key),
        };
        let bad = |message: String| ConfigError::Env {
            var: name.clone(),
            key: dotted.clone(),
            message,
        };
        let value = match default {
            Some(serde_json::Value::Number(_)) => toml::Value::Integer(
                raw.trim()
                    .parse::<i64>()
                    .map_err(|_| bad(format!("`{raw}` is not a whole number")))?,
            ),
            Some(serde_json::Value::Array(_)) => toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| toml::Value::String(v.to_owned()))
                    .collect(),
            ),
            Some(serde_json::Value::Bool(_)) => match raw.trim() {
                "true" => toml::Value::Boolean(true),
                "false" => toml::Value::Boolean(false),
                _ => return Err(bad(format!("`{raw}` is not true or false"))),
            },
            _ => toml::Value::String(raw.clone()),
        };
        // Alone on top of the defaults, so the error (if any) is this variable's.
        let mut alone = toml::Table::new();
        match section {
            None => {
                alone.insert(key.clone(), value.clone());
            }
            Some(s) => {
                let mut t = toml::Table::new();
                t.insert(key.clone(), value.clone());
                alone.insert(s.to_owned(), toml::Value::Table(t));
            }
        }
        if let Err(e) = toml::Value::Table(alone).try_into::<Settings>() {
            let message = e.message().to_owned();
            if message.starts_with("unknown field") {
                return Err(ConfigError::UnknownEnv(name));
            }
            return Err(bad(message));
        }
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

/// Durations are written `30s`, `10m`, `12h`, `90d`, and printed the same way.
mod duration_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        crate::domain::parse_duration(&s).map_err(serde::de::Error::custom)
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::domain::format_duration(*d))
    }
}

mod alg_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use sigil_verify::Algorithm;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Algorithm, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<Algorithm>().map_err(|_| {
            serde::de::Error::custom(format!(
                "unknown algorithm `{s}`, expected one of RS256, PS256, ES256, EdDSA"
            ))
        })
    }

    pub fn serialize<S: Serializer>(a: &Algorithm, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(a.as_str())
    }
}

/// Serializers that never write a credential.
mod redact {
    use secrecy::{ExposeSecret, SecretString};
    use serde::Serializer;

    /// Shown instead of a secret.
    pub const REDACTED: &str = "<redacted>";

    /// Query parameters known to carry no credential (libpq's and Redis URLs' harmless ones);
    /// every other parameter's value is redacted.
    const HARMLESS_PARAMS: &[&str] = &[
        "application_name",
        "channel_binding",
        "client_encoding",
        "connect_timeout",
        "db",
        "dbname",
        "fallback_application_name",
        "gssencmode",
        "host",
        "hostaddr",
        "keepalives",
        "keepalives_count",
        "keepalives_idle",
        "keepalives_interval",
        "load_balance_hosts",
        "options",
        "port",
        "protocol",
        "sslcompression",
        "sslmode",
        "sslnegotiation",
        "sslrootcert",
        "target_session_attrs",
        "tcp_user_timeout",
        "timeout",
        "user",
    ];

    pub fn secret<S: Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(_) => s.serialize_str(REDACTED),
            None => s.serialize_none(),
        }
    }

    pub fn url<S: Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(u) => s.serialize_str(&redact_url(u.expose_secret())),
            None => s.serialize_none(),
        }
    }

    /// A URL without its password (`scheme://user:<redacted>@host…`) and with the value of every
    /// query parameter not in [`HARMLESS_PARAMS`] redacted. When in doubt, more is hidden: an
    /// `@` anywhere makes everything before the last one userinfo.
    pub fn redact_url(url: &str) -> String {
        let Some((scheme, rest)) = url.split_once("://") else {
            return REDACTED.to_owned();
        };
        let (userinfo, rest) = match rest.rsplit_once('@') {
            Some((userinfo, host)) => (Some(userinfo), host),
            None => (None, rest),
        };
        // A fragment is never needed to tell which database this is.
        let rest = rest.split('#').next().unwrap_or("");
        let (place, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut out = format!("{scheme}://");
        if let Some(userinfo) = userinfo {
            match userinfo.split_once(':') {
                Some((user, _)) => out.push_str(&format!("{user}:{REDACTED}@")),
                None => out.push_str(&format!("{userinfo}@")),
            }
        }
        out.push_str(place);
        if let Some(query) = query {
            let params: Vec<String> = query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    let name = percent_encoding::percent_decode_str(k)
                        .decode_utf8_lossy()
                        .to_ascii_lowercase();
                    if HARMLESS_PARAMS.contains(&name.as_str()) {
                        format!("{k}={v}")
                    } else {
                        format!("{k}={REDACTED}")
                    }
                })
                .collect();
            out.push('?');
            out.push_str(&params.join("&"));
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::redact_url;

        #[test]
        fn every_credential_form_is_hidden() {
            for (url, shown) in [
                (
                    "postgres://sigil:pw@db:5432/sigil?sslmode=require&password=pw2&sslpassword=pw3",
                    "postgres://sigil:<redacted>@db:5432/sigil?sslmode=require&password=<redacted>&sslpassword=<redacted>",
                ),
                ("postgres://sigil@db/sigil", "postgres://sigil@db/sigil"),
                (
                    "postgres://u:p@ss/w@rd@db/x?PassWord=y",
                    "postgres://u:<redacted>@db/x?PassWord=<redacted>",
                ),
                (
                    "postgres://db/x?%70assword=y&user=u",
                    "postgres://db/x?%70assword=<redacted>&user=u",
                ),
                (
                    "redis://:pw@cache:6379/0",
                    "redis://:<redacted>@cache:6379/0",
                ),
                (
                    "sqlite:///var/lib/sigil/sigil.db",
                    "sqlite:///var/lib/sigil/sigil.db",
                ),
                ("no-scheme:pw", "<redacted>"),
            ] {
                assert_eq!(redact_url(url), shown, "{url}");
            }
        }
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
        assert_eq!(s.log.format, LogFormat::Json);
        assert!(s.redis.url.is_some());
        Ok(())
    }

    #[test]
    fn rate_limits_parse_check_and_print_back() -> Result<(), ConfigError> {
        let s = Settings::load(
            None,
            env(&[
                ("SIGIL_RATE_LIMITS_TOKEN_PER_CLIENT", "3/10s"),
                ("SIGIL_RATE_LIMITS_GLOBAL", "1000/1m"),
                ("SIGIL_RATE_LIMITS_LOGIN_PER_IP", "off"),
                ("SIGIL_RATE_LIMITS_FAILURES_PER_IP", "0"),
            ]),
            &Overrides::default(),
        )?;
        let r = &s.rate_limits;
        assert_eq!(
            r.token_per_client,
            Rate::Limit {
                requests: 3,
                per: Duration::from_secs(10)
            }
        );
        assert_eq!(r.token_per_client.to_string(), "3/10s");
        assert_eq!(r.global.to_string(), "1000/1m");
        assert_eq!((r.login_per_ip, r.failures_per_ip), (Rate::Off, Rate::Off));
        for bad in [
            "500",
            "500/",
            "/1m",
            "-1/1m",
            "x/1m",
            "0/1m",
            "2000000/1m",
            "5/0s",
            "5/2d",
        ] {
            let err = Settings::load(
                None,
                env(&[("SIGIL_RATE_LIMITS_TOKEN_PER_CLIENT", bad)]),
                &Overrides::default(),
            );
            assert!(
                matches!(&err, Err(ConfigError::Env { var, .. }) if var == "SIGIL_RATE_LIMITS_TOKEN_PER_CLIENT"),
                "{bad}: {err:?}"
            );
        }
        // In a file, 0 may be a number; any other number needs its period.
        let dir = tempfile::tempdir().map_err(|e| ConfigError::Parse {
            origin: None,
            message: e.to_string(),
        })?;
        let file = dir.path().join("sigil.toml");
        let write = |text: &str| {
            std::fs::write(&file, text).map_err(|e| ConfigError::Parse {
                origin: None,
                message: e.to_string(),
            })
        };
        write("[rate_limits]\nglobal = 0\n")?;
        let s = Settings::load(Some(&file), env(&[]), &Overrides::default())?;
        assert_eq!(s.rate_limits.global, Rate::Off);
        write("[rate_limits]\nglobal = 30\n")?;
        let err = Settings::load(Some(&file), env(&[]), &Overrides::default());
        assert!(
            matches!(&err, Err(ConfigError::Parse { message, .. }) if message.contains("30/1m")),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn the_old_login_limit_says_where_it_moved() {
        let err = Settings::load(
            None,
            env(&[("SIGIL_PASSWORDS_MAX_LOGINS_PER_IP_MINUTE", "30")]),
            &Overrides::default(),
        );
        assert!(
            matches!(
                &err,
                Err(e @ ConfigError::Invalid { key: "passwords.max_logins_per_ip_minute", .. })
                    if e.to_string().contains("rate_limits.login_per_ip")
            ),
            "{err:?}"
        );
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

    /// The example file documents every key the struct has, with its default: the struct is
    /// the one written list of keys, and this keeps the example true to it.
    #[test]
    fn the_example_file_documents_every_key_with_its_default()
    -> Result<(), Box<dyn std::error::Error>> {
        let text = include_str!("../../../deploy/sigil.example.toml");
        let defaults = serde_json::to_value(Settings::default())?;
        let mut section = String::new();
        let mut documented = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_owned();
            } else if let Some((key, _)) = line.trim_start_matches("# ").split_once(" = ") {
                documented.push(if section.is_empty() {
                    key.to_owned()
                } else {
                    format!("{section}.{key}")
                });
            }
        }
        let serde_json::Value::Object(top) = &defaults else {
            return Err("settings serialize to an object".into());
        };
        for (k, v) in top {
            match v {
                serde_json::Value::Object(inner) => {
                    for key in inner.keys() {
                        let dotted = format!("{k}.{key}");
                        assert!(
                            documented.contains(&dotted),
                            "{dotted} is not in the example"
                        );
                    }
                }
                _ => assert!(documented.contains(k), "{k} is not in the example"),
            }
        }
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("example.toml");
        std::fs::write(&file, text)?;
        let loaded = Settings::load(Some(&file), env(&[]), &Overrides::default())?;
        assert_eq!(
            serde_json::to_value(loaded)?,
            defaults,
            "the example shows the defaults"
        );
        Ok(())
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
        let shown = serde_json::to_string(&s.effective()).map_err(|e| ConfigError::Parse {
            origin: None,
            message: e.to_string(),
        })?;
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        Ok(())
    }
}
