//! Where the master key comes from: `SIGIL_MASTER_KEY` / `master_key` (base64 of 32 bytes), or
//! `<data_dir>/master.key`, created once with mode 0600 — but only for a database that holds no
//! keys yet. A database with keys and no (or the wrong) master key is a start-up error: Sigil never
//! silently makes a new key set.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};

use crate::crypto::{MasterKey, random_bytes};

/// Master-key errors (messages never include key material).
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    /// Neither configured nor on disk, and the database already has keys.
    #[error(
        "no master key: the database already holds encrypted signing keys but neither SIGIL_MASTER_KEY nor {0} is present. Restore the master key that encrypted them; Sigil will not create a new key set over an existing one"
    )]
    MissingForExistingKeys(PathBuf),
    /// Neither configured nor on disk, and this command may not create one (only `serve` and
    /// `migrate` do).
    #[error(
        "no master key: neither SIGIL_MASTER_KEY nor {0} is present. `sigil migrate` or `sigil serve` creates one for a new database; for an existing one, set the master key it was created with"
    )]
    Missing(PathBuf),
    /// Not base64 of 32 bytes.
    #[error("master key from {source_name} is invalid: {reason}")]
    Invalid {
        /// `SIGIL_MASTER_KEY` or the file path.
        source_name: String,
        /// Why.
        reason: String,
    },
    /// File I/O.
    #[error("master key file {path}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// The file that holds a generated master key.
pub fn key_file(data_dir: &Path) -> PathBuf {
    data_dir.join("master.key")
}

fn decode(text: &str, source_name: String) -> Result<MasterKey, MasterKeyError> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| MasterKeyError::Invalid {
            source_name: source_name.clone(),
            reason: "not base64".into(),
        })?;
    MasterKey::from_bytes(&bytes).map_err(|reason| MasterKeyError::Invalid {
        source_name,
        reason,
    })
}

/// Resolve the master key. A missing one is created only when `may_create` (`serve`, `migrate`)
/// and the database holds no keys yet (`db_has_keys`).
pub fn resolve(
    configured: Option<&SecretString>,
    data_dir: &Path,
    db_has_keys: bool,
    may_create: bool,
) -> Result<MasterKey, MasterKeyError> {
    if let Some(secret) = configured {
        return decode(secret.expose_secret(), "SIGIL_MASTER_KEY".into());
    }
    let path = key_file(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => decode(&text, path.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if db_has_keys {
                return Err(MasterKeyError::MissingForExistingKeys(path));
            }
            if !may_create {
                return Err(MasterKeyError::Missing(path));
            }
            create(&path)
        }
        Err(source) => Err(MasterKeyError::Io { path, source }),
    }
}

/// Create `path` with a new random key, mode 0600, refusing to overwrite (two processes starting at
/// once: the loser reads the winner's key).
fn create(path: &Path) -> Result<MasterKey, MasterKeyError> {
    let io = |source| MasterKeyError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        crate::store::create_private_dir(parent).map_err(io)?;
    }
    let encoded = STANDARD.encode(random_bytes(32));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(mut f) => {
            f.write_all(encoded.as_bytes()).map_err(io)?;
            f.write_all(b"\n").map_err(io)?;
            f.sync_all().map_err(io)?;
            decode(&encoded, path.display().to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path).map_err(io)?;
            decode(&text, path.display().to_string())
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_file_is_private_and_reused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        assert!(matches!(
            resolve(None, dir.path(), false, false),
            Err(MasterKeyError::Missing(_))
        ));
        assert!(
            !key_file(dir.path()).exists(),
            "only serve and migrate create one"
        );
        let a = resolve(None, dir.path(), false, true)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(key_file(dir.path()))?
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let b = resolve(None, dir.path(), true, false)?;
        let sealed = a.seal("k", b"x");
        assert!(b.open("k", &sealed).is_ok(), "the same key is read back");
        Ok(())
    }

    #[test]
    fn missing_key_for_existing_database_is_an_error() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let err = resolve(None, dir.path(), true, true);
        assert!(matches!(
            err,
            Err(MasterKeyError::MissingForExistingKeys(_))
        ));
        assert!(!key_file(dir.path()).exists(), "no key file is created");
        Ok(())
    }

    #[test]
    fn configured_key_must_be_32_bytes_of_base64() {
        let bad = SecretString::from("c2hvcnQ=");
        assert!(matches!(
            resolve(Some(&bad), Path::new("/nonexistent"), true, true),
            Err(MasterKeyError::Invalid { .. })
        ));
    }
}
