//! `totp_factors` and `totp_recovery_codes`: a user's TOTP second factor. The secret is stored
//! sealed (`crypto::MasterKey::seal`, the user id as associated data) and each recovery code only
//! as its keyed hash; both are written and removed together, in one transaction.

use diesel::prelude::*;

use super::schema::{totp_factors, totp_recovery_codes};
use super::{DbConn, StoreError};

/// A user's stored TOTP factor.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = totp_factors)]
pub struct TotpRow {
    /// The user.
    pub user_id: String,
    /// The sealed secret: nonce ‖ AES-256-GCM ciphertext ‖ tag.
    pub secret: Vec<u8>,
    /// When it was enrolled.
    pub created_at: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = totp_recovery_codes)]
struct CodeRow<'a> {
    user_id: &'a str,
    code_hash: &'a [u8],
    created_at: i64,
}

/// What `users export` shows of a factor: never the secret or a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpSummary {
    /// When it was enrolled.
    pub created_at: i64,
    /// Recovery codes not used yet.
    pub recovery_codes_left: i64,
}

/// Enrol (or enrol again): the factor `row` and the hashes of its recovery codes replace
/// whatever the user had, in one transaction, so old codes never outlive a new secret.
pub fn enroll(conn: &mut DbConn, row: &TotpRow, code_hashes: &[Vec<u8>]) -> Result<(), StoreError> {
    conn.transaction(|c| {
        remove(c, &row.user_id)?;
        diesel::insert_into(totp_factors::table)
            .values(row)
            .execute(c)?;
        // One statement per code: batch inserts are not portable across the two backends.
        for hash in code_hashes {
            diesel::insert_into(totp_recovery_codes::table)
                .values(CodeRow {
                    user_id: &row.user_id,
                    code_hash: hash,
                    created_at: row.created_at,
                })
                .execute(c)?;
        }
        Ok(())
    })
}

/// Remove the user's factor and recovery codes (`users totp disable`, and deleting the user).
/// True when there was a factor.
pub fn remove(conn: &mut DbConn, user_id: &str) -> Result<bool, StoreError> {
    conn.transaction(|c| {
        diesel::delete(totp_recovery_codes::table.filter(totp_recovery_codes::user_id.eq(user_id)))
            .execute(c)?;
        let n = diesel::delete(totp_factors::table.find(user_id)).execute(c)?;
        Ok(n > 0)
    })
}

/// The user's factor, if enrolled.
pub fn find(conn: &mut DbConn, user_id: &str) -> Result<Option<TotpRow>, StoreError> {
    Ok(totp_factors::table
        .find(user_id)
        .select(TotpRow::as_select())
        .first(conn)
        .optional()?)
}

/// A user by username with their factor's [`summary`] (what `users show` and the admin API's
/// user show), on one connection.
pub fn user_with_summary(
    conn: &mut DbConn,
    username: &str,
) -> Result<Option<(crate::domain::user::User, Option<TotpSummary>)>, StoreError> {
    let Some(user) = super::users::find_by_username(conn, username)? else {
        return Ok(None);
    };
    let totp = summary(conn, &user.id)?;
    Ok(Some((user, totp)))
}

/// Whether the user has a factor, and how many recovery codes are left.
pub fn summary(conn: &mut DbConn, user_id: &str) -> Result<Option<TotpSummary>, StoreError> {
    let Some(created_at) = totp_factors::table
        .find(user_id)
        .select(totp_factors::created_at)
        .first::<i64>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let left = totp_recovery_codes::table
        .filter(totp_recovery_codes::user_id.eq(user_id))
        .count()
        .get_result::<i64>(conn)?;
    Ok(Some(TotpSummary {
        created_at,
        recovery_codes_left: left,
    }))
}

/// Use one recovery code: compare `presented` (its keyed hash) with each of the user's unused
/// codes in constant time, and delete the one it matches in the same transaction. Of several
/// requests racing with one code, in any process, only the one whose DELETE removed the row
/// wins. Returns the number of codes left after it, or `None` when no unused code matched.
pub fn use_recovery_code(
    conn: &mut DbConn,
    user_id: &str,
    presented: &[u8],
) -> Result<Option<i64>, StoreError> {
    conn.transaction(|c| {
        let stored: Vec<Vec<u8>> = totp_recovery_codes::table
            .filter(totp_recovery_codes::user_id.eq(user_id))
            .select(totp_recovery_codes::code_hash)
            .load(c)?;
        // Every stored hash is compared, so the time taken does not tell which one matched.
        let mut matched: Option<&Vec<u8>> = None;
        for hash in &stored {
            if crate::crypto::ct_eq(hash, presented) {
                matched = Some(hash);
            }
        }
        let Some(hash) = matched else {
            return Ok(None);
        };
        let n = diesel::delete(
            totp_recovery_codes::table
                .filter(totp_recovery_codes::user_id.eq(user_id))
                .filter(totp_recovery_codes::code_hash.eq(hash.as_slice())),
        )
        .execute(c)?;
        if n == 0 {
            // Another request used it between the read and the delete.
            return Ok(None);
        }
        let left = totp_recovery_codes::table
            .filter(totp_recovery_codes::user_id.eq(user_id))
            .count()
            .get_result::<i64>(c)?;
        Ok(Some(left))
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::Store;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn store(dir: &std::path::Path) -> Result<Store, Box<dyn std::error::Error>> {
        let url = format!("sqlite://{}", dir.join("sigil.db").display());
        let store = Store::open(&url, 1, Duration::from_secs(5), Duration::from_secs(5))?;
        store.migrate()?;
        Ok(store)
    }

    fn row(user: &str, secret: &[u8]) -> TotpRow {
        TotpRow {
            user_id: user.into(),
            secret: secret.to_vec(),
            created_at: 7,
        }
    }

    #[test]
    fn a_recovery_code_works_once_and_enrolling_again_replaces_the_codes() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = store(dir.path())?;
        let codes = vec![vec![1u8; 32], vec![2u8; 32]];
        store.run_blocking(|c| enroll(c, &row("usr_a", b"s1"), &codes))?;
        assert_eq!(
            store.run_blocking(|c| use_recovery_code(c, "usr_a", &[2u8; 32]))?,
            Some(1)
        );
        assert_eq!(
            store.run_blocking(|c| use_recovery_code(c, "usr_a", &[2u8; 32]))?,
            None,
            "a used code is gone"
        );
        assert_eq!(
            store.run_blocking(|c| use_recovery_code(c, "usr_b", &[1u8; 32]))?,
            None,
            "codes are per user"
        );
        store.run_blocking(|c| enroll(c, &row("usr_a", b"s2"), &[vec![3u8; 32]]))?;
        assert_eq!(
            store.run_blocking(|c| use_recovery_code(c, "usr_a", &[1u8; 32]))?,
            None,
            "old codes end with the old secret"
        );
        let found = store.run_blocking(|c| find(c, "usr_a"))?;
        assert_eq!(found.map(|r| r.secret), Some(b"s2".to_vec()));
        assert_eq!(
            store.run_blocking(|c| summary(c, "usr_a"))?,
            Some(TotpSummary {
                created_at: 7,
                recovery_codes_left: 1
            })
        );
        assert!(store.run_blocking(|c| remove(c, "usr_a"))?);
        assert!(store.run_blocking(|c| summary(c, "usr_a"))?.is_none());
        assert_eq!(
            store.run_blocking(|c| use_recovery_code(c, "usr_a", &[3u8; 32]))?,
            None
        );
        assert!(!store.run_blocking(|c| remove(c, "usr_a"))?);
        Ok(())
    }
}
