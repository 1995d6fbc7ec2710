//! Storage with diesel on two backends, chosen by URL scheme: SQLite (bundled, the default) and
//! PostgreSQL (libpq bundled). Queries are written once against [`DbConn`], diesel's
//! `MultiConnection` over both; where SQL must differ, a small function per backend lives here.
//!
//! Every query runs on the blocking pool ([`Store::run`]) so async workers never wait on database
//! I/O. The pool is bounded (`database.pool_size`) and a checkout waits at most
//! `database.connect_timeout`, after which the caller gets [`StoreError::Unavailable`] (HTTP 503).

pub mod audit;
pub mod clients;
pub mod consents;
pub mod heartbeat;
pub mod keys;
pub mod meta;
pub mod mfa;
pub mod prune;
pub mod refresh_tokens;
pub mod revocations;
pub mod roles;
pub mod schema;
pub mod sessions;
pub mod shared_state;
pub mod users;

use std::path::Path;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Advisory-lock key that serialises migrations across processes on PostgreSQL.
const MIGRATION_LOCK_KEY: i64 = 0x5161_6c00_0000_0001;

/// A connection to either backend.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    /// PostgreSQL.
    Pg(diesel::PgConnection),
    /// SQLite.
    Sqlite(diesel::SqliteConnection),
}

/// Which backend a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `postgres://` or `postgresql://`
    Postgres,
    /// `sqlite://PATH`
    Sqlite,
}

impl Backend {
    /// The backend `url`'s scheme selects, if any.
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite://") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// Storage errors. HTTP maps `Unavailable` to 503; nothing here is shown to a client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No connection could be had, or the database stopped answering.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The row does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was violated.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Stored data could not be decoded.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// The database answered, and refused the query: a bug or a schema the code does not
    /// expect, not an outage (HTTP 500, never 503 with `Retry-After`).
    #[error("query failed")]
    Query(#[source] diesel::result::Error),
    /// The database, or its schema, is not there or not up to date (the CLI never makes it).
    #[error("{0}")]
    NotReady(String),
}

impl From<diesel::result::Error> for StoreError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::NotFound => StoreError::NotFound,
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                StoreError::Conflict(info.message().to_owned())
            }
            e if is_transient(&e) => StoreError::Unavailable(error_chain(&e)),
            e => StoreError::Query(e),
        }
    }
}

/// Whether a diesel error means "the database cannot serve this now" (retry later) rather than
/// "this query is wrong": a lost connection, a serialization conflict, a statement cut by
/// `statement_timeout`, a busy or full SQLite file, a read-only database.
fn is_transient(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::SerializationFailure,
            _,
        ) => true,
        Error::DatabaseError(_, info) => {
            let m = info.message().to_ascii_lowercase();
            [
                "statement timeout",
                "canceling statement",
                "database is locked",
                "database table is locked",
                "disk is full",
                "disk i/o error",
                "readonly database",
                "read-only",
                "terminating connection",
                "server closed the connection",
                "too many connections",
                "the database system is",
            ]
            .iter()
            .any(|needle| m.contains(needle))
        }
        Error::BrokenTransactionManager => true,
        _ => false,
    }
}

/// An error and every `source()` below it, joined with ": " (for logs: one line, whole cause).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// The longest a request waits for the database. Past it the request answers 503 and a
/// transaction still open on the server is rolled back there (`idle_in_transaction_session_timeout`),
/// so a partition neither hangs requests nor lets their work commit when it heals.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// libpq settings that bound a connection that stops answering without closing (a partition,
/// a frozen host): TCP keepalives probe an idle connection, and `tcp_user_timeout` ends one
/// whose sent data goes unacknowledged. Added to the URL unless it sets them itself.
const PG_LIVENESS: [(&str, &str); 5] = [
    ("keepalives", "1"),
    ("keepalives_idle", "5"),
    ("keepalives_interval", "2"),
    ("keepalives_count", "2"),
    ("tcp_user_timeout", "5000"),
];

/// `url` with [`PG_LIVENESS`] and `connect_timeout` added where it does not set them.
fn pg_target(url: &str, connect_timeout: Duration) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    let present: Vec<String> = parsed.query_pairs().map(|(k, _)| k.into_owned()).collect();
    let timeout = connect_timeout.as_secs().max(2).to_string();
    {
        let mut q = parsed.query_pairs_mut();
        for (k, v) in PG_LIVENESS
            .iter()
            .copied()
            .chain(std::iter::once(("connect_timeout", timeout.as_str())))
        {
            if !present.iter().any(|p| p == k) {
                q.append_pair(k, v);
            }
        }
    }
    parsed.to_string()
}

/// Connection manager that builds the right backend from the URL.
#[derive(Debug)]
pub struct Manager {
    backend: Backend,
    target: String,
    statement_timeout: Duration,
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConn, r2d2::Error> {
        match self.backend {
            Backend::Postgres => {
                let mut c = diesel::PgConnection::establish(&self.target)
                    .map_err(r2d2::Error::ConnectionError)?;
                c.batch_execute(&format!(
                    "SET statement_timeout = {}; SET idle_in_transaction_session_timeout = {}",
                    self.statement_timeout.as_millis(),
                    DEADLINE.as_millis()
                ))
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConn::Pg(c))
            }
            Backend::Sqlite => {
                let mut c = diesel::SqliteConnection::establish(&self.target)
                    .map_err(r2d2::Error::ConnectionError)?;
                c.batch_execute(
                    "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                )
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConn::Sqlite(c))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        use diesel::r2d2::R2D2Connection;
        match conn {
            DbConn::Pg(c) => c.is_broken(),
            DbConn::Sqlite(c) => c.is_broken(),
        }
    }
}

/// The database handle shared by the server, the CLI and the jobs.
#[derive(Clone)]
pub struct Store {
    pool: Pool<Manager>,
    backend: Backend,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({:?})", self.backend)
    }
}

impl Store {
    /// Open `url` for `serve` and `migrate`, which may create it: a missing SQLite file is
    /// created 0600 in a private (0700) directory. Then as [`Store::open`].
    pub fn create(
        url: &str,
        pool_size: u32,
        connect_timeout: Duration,
        statement_timeout: Duration,
    ) -> Result<Store, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite://")
            && !path.is_empty()
        {
            create_private_file(Path::new(path))
                .map_err(|e| StoreError::Unavailable(format!("cannot create {path}: {e}")))?;
        }
        Store::open(url, pool_size, connect_timeout, statement_timeout)
    }

    /// Open `url` for the admin CLI, which never creates or migrates: a missing SQLite file, a
    /// database without Sigil's schema, or a schema older than this binary is
    /// [`StoreError::NotReady`] naming what is missing and saying to run `sigil migrate`.
    pub fn open_existing(
        url: &str,
        pool_size: u32,
        connect_timeout: Duration,
        statement_timeout: Duration,
    ) -> Result<Store, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite://")
            && !path.is_empty()
            && !Path::new(path).exists()
        {
            return Err(StoreError::NotReady(format!(
                "no database at {path}: run `sigil migrate` (or start `sigil serve`) to create it, or point --database-url / SIGIL_DATABASE_URL / --data-dir at the right one"
            )));
        }
        let store = Store::open(url, pool_size, connect_timeout, statement_timeout)?;
        store.check_schema()?;
        Ok(store)
    }

    /// Fail unless every migration this binary knows has been applied. Reads only: the CLI
    /// must not migrate under running servers.
    pub fn check_schema(&self) -> Result<(), StoreError> {
        #[derive(QueryableByName)]
        struct Applied {
            #[diesel(sql_type = diesel::sql_types::Text)]
            version: String,
        }
        let mut conn = self.conn()?;
        let applied: Vec<Applied> = match diesel::sql_query(
            "SELECT version FROM __diesel_schema_migrations",
        )
        .load(&mut *conn)
        {
            Ok(rows) => rows,
            Err(diesel::result::Error::DatabaseError(..)) => {
                return Err(StoreError::NotReady(
                        "the database has no Sigil schema: run `sigil migrate` (or start `sigil serve`) first".into(),
                    ));
            }
            Err(e) => return Err(e.into()),
        };
        let applied: std::collections::HashSet<String> =
            applied.into_iter().map(|a| a.version).collect();
        let known: Vec<String> = match &mut *conn {
            DbConn::Pg(_) => migration_versions::<diesel::pg::Pg>(&POSTGRES_MIGRATIONS)?,
            DbConn::Sqlite(_) => migration_versions::<diesel::sqlite::Sqlite>(&SQLITE_MIGRATIONS)?,
        };
        let missing = known.iter().filter(|v| !applied.contains(*v)).count();
        if missing > 0 {
            return Err(StoreError::NotReady(format!(
                "the database schema is older than this sigil binary ({missing} migration(s) pending): run `sigil migrate` first (running servers of the older version keep working until they are upgraded)"
            )));
        }
        Ok(())
    }

    /// Open a pool for `url`, creating nothing. Does not connect yet; the first query (or
    /// [`Store::migrate`]) does.
    pub fn open(
        url: &str,
        pool_size: u32,
        connect_timeout: Duration,
        statement_timeout: Duration,
    ) -> Result<Store, StoreError> {
        let (backend, target) = match (Backend::of_url(url), url.strip_prefix("sqlite://")) {
            (Some(Backend::Sqlite), Some("")) => {
                return Err(StoreError::Unavailable(
                    "sqlite:// URL names no file".into(),
                ));
            }
            (Some(Backend::Sqlite), Some(path)) => (Backend::Sqlite, path.to_owned()),
            (Some(Backend::Postgres), _) => (Backend::Postgres, pg_target(url, connect_timeout)),
            _ => {
                return Err(StoreError::Unavailable(
                    "database URL must start with sqlite:// or postgres://".into(),
                ));
            }
        };
        let manager = Manager {
            backend,
            target,
            statement_timeout,
        };
        let pool = Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(0))
            .connection_timeout(connect_timeout)
            .test_on_check_out(true)
            .build_unchecked(manager);
        Ok(Store { pool, backend })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn conn(&self) -> Result<PooledConnection<Manager>, StoreError> {
        self.pool
            .get()
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// Run `f` with a pooled connection on the blocking thread pool.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
    {
        let store = self.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut conn = store.conn()?;
            f(&mut conn)
        });
        match tokio::time::timeout(DEADLINE, task).await {
            Ok(joined) => joined.map_err(|e| {
                E::from(StoreError::Unavailable(format!(
                    "database task failed: {e}"
                )))
            })?,
            Err(_) => Err(E::from(StoreError::Unavailable(format!(
                "the database did not answer within {} s",
                DEADLINE.as_secs()
            )))),
        }
    }

    /// Run `f` on the calling thread (CLI and tests outside a runtime).
    pub fn run_blocking<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut DbConn) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.conn()?;
        f(&mut conn)
    }

    /// Apply pending migrations. Safe when several processes start at once: PostgreSQL takes an
    /// advisory lock, SQLite an immediate (write) transaction, so the second process waits and
    /// then finds nothing to do. Returns the names of the migrations applied.
    pub fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn()?;
        let mig =
            |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(e.to_string());
        let applied = match &mut *conn {
            DbConn::Pg(c) => {
                diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                    .execute(c)?;
                let result = c
                    .run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map(|v| v.iter().map(|m| m.to_string()).collect::<Vec<_>>());
                diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
                    .execute(c)?;
                result.map_err(mig)?
            }
            DbConn::Sqlite(c) => c
                .immediate_transaction(|c| {
                    c.run_pending_migrations(SQLITE_MIGRATIONS)
                        .map(|v| v.iter().map(|m| m.to_string()).collect::<Vec<_>>())
                        .map_err(diesel::result::Error::QueryBuilderError)
                })
                .map_err(|e| StoreError::Migration(e.to_string()))?,
        };
        Ok(applied)
    }

    /// Cheap liveness query for `/readyz`: whether the database answers. Whether it also
    /// commits writes is [`heartbeat::WriteProbe`]'s question.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|c| c.batch_execute("SELECT 1").map_err(StoreError::from))
            .await
    }
}

/// Create a directory (and parents) readable only by its owner, as the data dir holds the
/// database and the master key.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// The versions of the embedded migrations for backend `DB`.
fn migration_versions<DB: diesel::backend::Backend>(
    source: &EmbeddedMigrations,
) -> Result<Vec<String>, StoreError> {
    use diesel::migration::MigrationSource;
    let migrations = MigrationSource::<DB>::migrations(source)
        .map_err(|e| StoreError::Migration(e.to_string()))?;
    Ok(migrations
        .iter()
        .map(|m| m.name().version().to_string())
        .collect())
}

/// Create the SQLite file `path` (and its directory, private) with mode 0600 unless it exists,
/// before SQLite opens it: SQLite creates a missing file 0644, and gives the `-wal` and `-shm`
/// files the database file's mode.
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        create_private_dir(parent)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path).map(drop)
}

/// Files and directories under `paths` (those that exist) that group or others can read, with
/// their modes: what start-up warns about. Directories count when they are more than 0700.
pub fn exposed(paths: &[std::path::PathBuf]) -> Vec<(std::path::PathBuf, u32)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        paths
            .iter()
            .filter_map(|p| {
                let mode = std::fs::metadata(p).ok()?.permissions().mode() & 0o777;
                (mode & 0o077 != 0).then(|| (p.clone(), mode))
            })
            .collect()
    }
    #[cfg(not(unix))]
    {
        let _ = paths;
        Vec::new()
    }
}

/// Encode a list as the JSON text stored in list columns.
pub(crate) fn to_json_list<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// Decode a JSON list column.
pub(crate) fn from_json_list<T: serde::de::DeserializeOwned>(
    text: &str,
    column: &str,
) -> Result<Vec<T>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::{DatabaseErrorKind, Error};

    fn db(kind: DatabaseErrorKind, message: &str) -> Error {
        Error::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn only_outages_are_unavailable() {
        for transient in [
            db(
                DatabaseErrorKind::ClosedConnection,
                "server closed the connection",
            ),
            db(
                DatabaseErrorKind::SerializationFailure,
                "could not serialize access",
            ),
            db(
                DatabaseErrorKind::Unknown,
                "canceling statement due to statement timeout",
            ),
            db(DatabaseErrorKind::Unknown, "database is locked"),
            db(DatabaseErrorKind::Unknown, "database or disk is full"),
        ] {
            assert!(
                matches!(StoreError::from(transient), StoreError::Unavailable(_)),
                "transient"
            );
        }
        for bug in [
            db(DatabaseErrorKind::Unknown, "no such column: family_id"),
            db(DatabaseErrorKind::NotNullViolation, "null value in column"),
            db(
                DatabaseErrorKind::ForeignKeyViolation,
                "violates foreign key",
            ),
            Error::QueryBuilderError("bad".into()),
        ] {
            assert!(matches!(StoreError::from(bug), StoreError::Query(_)), "bug");
        }
        assert!(matches!(
            StoreError::from(Error::NotFound),
            StoreError::NotFound
        ));
    }

    #[test]
    fn the_chain_keeps_every_cause() {
        let e = StoreError::Query(db(DatabaseErrorKind::Unknown, "no such column: x"));
        assert_eq!(error_chain(&e), "query failed: no such column: x");
    }
}
