//! `clients` table.

use diesel::prelude::*;
use sigil_verify::JwkSet;

use super::schema::clients;
use super::{DbConn, StoreError, from_json_list, meta, to_json_list};
use crate::domain::client::{Client, PkceMode};
use crate::domain::{ClientId, GrantType, Name, RedirectUri, ScopeSet, WebOrigin};

/// One stored client.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = clients)]
pub struct ClientRow {
    client_id: String,
    name: String,
    public: bool,
    secret_hash: Option<Vec<u8>>,
    previous_secret_hash: Option<Vec<u8>>,
    previous_secret_expires_at: Option<i64>,
    grants: String,
    scopes: String,
    audiences: String,
    roles: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    pkce: String,
    jwks: Option<String>,
    created_at: i64,
    updated_at: i64,
    first_party: bool,
    id_token_alg: String,
    web_origins: String,
    access_token_alg: Option<String>,
}

impl From<&Client> for ClientRow {
    fn from(c: &Client) -> Self {
        ClientRow {
            client_id: c.id.as_str().to_owned(),
            name: c.name.clone(),
            public: c.public,
            secret_hash: c.secret_hash.clone(),
            previous_secret_hash: c.previous_secret_hash.clone(),
            previous_secret_expires_at: c.previous_secret_expires_at,
            grants: to_json_list(&c.grants),
            scopes: to_json_list(&c.scopes.iter().collect::<Vec<_>>()),
            audiences: to_json_list(&c.audiences),
            roles: to_json_list(&c.roles),
            redirect_uris: to_json_list(&c.redirect_uris),
            post_logout_redirect_uris: to_json_list(&c.post_logout_redirect_uris),
            pkce: c.pkce.as_str().to_owned(),
            jwks: c.jwks.as_ref().and_then(|j| serde_json::to_string(j).ok()),
            created_at: c.created_at,
            updated_at: c.updated_at,
            first_party: c.first_party,
            id_token_alg: c.id_token_alg.as_str().to_owned(),
            web_origins: to_json_list(&c.web_origins),
            access_token_alg: c.access_token_alg.map(|a| a.as_str().to_owned()),
        }
    }
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;
    fn try_from(r: ClientRow) -> Result<Client, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("client {}: {what}", r.client_id));
        Ok(Client {
            id: ClientId::parse(&r.client_id).map_err(|_| corrupt("client_id"))?,
            name: r.name.clone(),
            public: r.public,
            secret_hash: r.secret_hash.clone(),
            previous_secret_hash: r.previous_secret_hash.clone(),
            previous_secret_expires_at: r.previous_secret_expires_at,
            grants: from_json_list::<GrantType>(&r.grants, "grants")?,
            scopes: ScopeSet::from_scopes(from_json_list(&r.scopes, "scopes")?),
            audiences: from_json_list::<Name>(&r.audiences, "audiences")?,
            roles: from_json_list::<Name>(&r.roles, "roles")?,
            redirect_uris: from_json_list::<RedirectUri>(&r.redirect_uris, "redirect_uris")?,
            post_logout_redirect_uris: from_json_list::<RedirectUri>(
                &r.post_logout_redirect_uris,
                "post_logout_redirect_uris",
            )?,
            pkce: PkceMode::parse(&r.pkce).ok_or_else(|| corrupt("pkce"))?,
            jwks: match &r.jwks {
                Some(text) => {
                    Some(JwkSet::from_json(text.as_bytes()).map_err(|_| corrupt("jwks"))?)
                }
                None => None,
            },
            created_at: r.created_at,
            updated_at: r.updated_at,
            first_party: r.first_party,
            id_token_alg: r
                .id_token_alg
                .parse()
                .map_err(|_| corrupt("id_token_alg"))?,
            web_origins: from_json_list::<WebOrigin>(&r.web_origins, "web_origins")?,
            access_token_alg: r
                .access_token_alg
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|_| corrupt("access_token_alg"))?,
        })
    }
}

/// Insert a new client. Bumps `clients_version` in the same transaction.
pub fn insert(conn: &mut DbConn, client: &Client) -> Result<(), StoreError> {
    conn.transaction(|c| {
        diesel::insert_into(clients::table)
            .values(ClientRow::from(client))
            .execute(c)?;
        meta::bump(c, meta::CLIENTS_VERSION)
    })
}

/// Find one client.
pub fn find(conn: &mut DbConn, id: &ClientId) -> Result<Option<Client>, StoreError> {
    let row = clients::table
        .find(id.as_str())
        .select(ClientRow::as_select())
        .first(conn)
        .optional()?;
    row.map(Client::try_from).transpose()
}

/// All clients, by name.
pub fn list(conn: &mut DbConn) -> Result<Vec<Client>, StoreError> {
    let rows = clients::table
        .order((clients::name.asc(), clients::client_id.asc()))
        .select(ClientRow::as_select())
        .load(conn)?;
    rows.into_iter().map(Client::try_from).collect()
}

/// Every origin any client's CORS requests may come from (for preflight requests, which do
/// not say which client they are for).
pub fn all_cors_origins(conn: &mut DbConn) -> Result<Vec<WebOrigin>, StoreError> {
    let mut all: Vec<WebOrigin> = list(conn)?.iter().flat_map(Client::cors_origins).collect();
    all.sort();
    all.dedup();
    Ok(all)
}

/// Write the fields an operator may change (name, scopes, audiences, roles, redirect URIs) and
/// `updated_at`; id, secrets and creation time are kept. `NotFound` when there is no such client.
fn write_registration(conn: &mut DbConn, client: &Client) -> Result<(), StoreError> {
    let row = ClientRow::from(client);
    let n = diesel::update(clients::table.find(&row.client_id))
        .set((
            clients::name.eq(&row.name),
            clients::scopes.eq(&row.scopes),
            clients::audiences.eq(&row.audiences),
            clients::roles.eq(&row.roles),
            clients::redirect_uris.eq(&row.redirect_uris),
            clients::web_origins.eq(&row.web_origins),
            clients::updated_at.eq(row.updated_at),
        ))
        .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    meta::bump(conn, meta::CLIENTS_VERSION)
}

/// Take the write lock of client `id`'s row for the rest of the transaction (a row lock on
/// PostgreSQL, the database write lock on SQLite), so a read that follows cannot be overtaken by
/// another writer. False when there is no such client.
fn lock_row(conn: &mut DbConn, id: &ClientId) -> Result<bool, StoreError> {
    let n = diesel::update(clients::table.find(id.as_str()))
        .set(clients::updated_at.eq(clients::updated_at))
        .execute(conn)?;
    Ok(n == 1)
}

/// Read client `id`, let `change` return it changed (with anything else it reports), and write
/// the registration back, in one transaction under the row's lock: two changes at once cannot
/// lose one another, and a refused change writes nothing. Bumps `clients_version`. `Ok(None)`
/// when there is no such client.
pub fn modify<T, E>(
    conn: &mut DbConn,
    id: &ClientId,
    change: impl FnOnce(Client) -> Result<(Client, T), E>,
) -> Result<Option<(Client, T)>, E>
where
    E: From<StoreError> + From<diesel::result::Error>,
{
    conn.transaction(|c| {
        if !lock_row(c, id)? {
            return Ok(None);
        }
        let client = find(c, id)?.ok_or(StoreError::NotFound)?;
        let (client, extra) = change(client)?;
        write_registration(c, &client)?;
        Ok(Some((client, extra)))
    })
}

/// Delete a client. Bumps `clients_version` in the same transaction. False when it did not
/// exist.
pub fn delete(conn: &mut DbConn, id: &ClientId) -> Result<bool, StoreError> {
    conn.transaction(|c| {
        let n = diesel::delete(clients::table.find(id.as_str())).execute(c)?;
        if n > 0 {
            meta::bump(c, meta::CLIENTS_VERSION)?;
        }
        Ok(n > 0)
    })
}

/// What [`rotate_secret`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretRotation {
    /// The new secret is in place; the old one stays valid for the overlap.
    Rotated,
    /// The client has no secret to rotate (it is public or uses `private_key_jwt`); nothing
    /// changed.
    NoSecret,
}

/// Replace the secret of client `id`, keeping the old one valid until `previous_expires_at`:
/// the check that it has a secret and the change are one transaction under the row's lock, and
/// `clients_version` is bumped in it. `NotFound` when there is no such client.
pub fn rotate_secret(
    conn: &mut DbConn,
    id: &ClientId,
    new_hash: &[u8],
    previous_expires_at: i64,
    now: i64,
) -> Result<SecretRotation, StoreError> {
    conn.transaction(|c| {
        if !lock_row(c, id)? {
            return Err(StoreError::NotFound);
        }
        let (public, current): (bool, Option<Vec<u8>>) = clients::table
            .find(id.as_str())
            .select((clients::public, clients::secret_hash))
            .first(c)?;
        if public || current.is_none() {
            return Ok(SecretRotation::NoSecret);
        }
        diesel::update(clients::table.find(id.as_str()))
            .set((
                clients::previous_secret_hash.eq(current),
                clients::previous_secret_expires_at.eq(Some(previous_expires_at)),
                clients::secret_hash.eq(Some(new_hash.to_vec())),
                clients::updated_at.eq(now),
            ))
            .execute(c)?;
        meta::bump(c, meta::CLIENTS_VERSION)?;
        Ok(SecretRotation::Rotated)
    })
}

/// Forget previous secrets whose overlap ended before `now`. Returns how many. Bumps
/// `clients_version` in the same transaction when any.
pub fn prune_previous_secrets(conn: &mut DbConn, now: i64) -> Result<usize, StoreError> {
    conn.transaction(|c| {
        let n = diesel::update(clients::table.filter(clients::previous_secret_expires_at.lt(now)))
            .set((
                clients::previous_secret_hash.eq(None::<Vec<u8>>),
                clients::previous_secret_expires_at.eq(None::<i64>),
            ))
            .execute(c)?;
        if n > 0 {
            meta::bump(c, meta::CLIENTS_VERSION)?;
        }
        Ok(n)
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use diesel::connection::SimpleConnection;

    use super::*;
    use crate::store::Store;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn store(dir: &std::path::Path) -> Result<Store, StoreError> {
        let url = format!("sqlite://{}", dir.join("sigil.db").display());
        let store = Store::open(&url, 1, Duration::from_secs(5), Duration::from_secs(5))?;
        store.migrate()?;
        Ok(store)
    }

    fn client(id: &str, secret: Option<&[u8]>) -> Result<Client, StoreError> {
        Ok(Client {
            id: ClientId::parse(id).map_err(|e| StoreError::Corrupt(e.into()))?,
            name: "app".into(),
            public: secret.is_none(),
            secret_hash: secret.map(<[u8]>::to_vec),
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            grants: vec![GrantType::ClientCredentials],
            scopes: ScopeSet::default(),
            audiences: vec![],
            roles: vec![],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            pkce: PkceMode::Required,
            jwks: None,
            created_at: 1,
            updated_at: 1,
            first_party: false,
            id_token_alg: sigil_verify::Algorithm::RS256,
            web_origins: vec![],
            access_token_alg: None,
        })
    }

    fn version(store: &Store) -> Result<i64, StoreError> {
        store.run_blocking(|c| meta::versions(c).map(|v| v.clients))
    }

    /// Make every later change of `meta` fail, as a lost connection would midway.
    fn break_version_bumps(store: &Store) -> Result<(), StoreError> {
        store.run_blocking(|c| {
            c.batch_execute(
                "CREATE TRIGGER fail_meta BEFORE UPDATE ON meta BEGIN SELECT RAISE(ABORT, 'boom'); END;",
            )
            .map_err(StoreError::from)
        })
    }

    #[test]
    fn a_secret_rotates_only_for_a_client_that_has_one() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = store(dir.path())?;
        let (web, public) = (client("sgl_web", Some(b"old"))?, client("sgl_pub", None)?);
        store.run_blocking(|c| insert(c, &web).and_then(|()| insert(c, &public)))?;
        let before = version(&store)?;

        let rotated = store.run_blocking(|c| rotate_secret(c, &web.id, b"new", 50, 9))?;
        assert_eq!(rotated, SecretRotation::Rotated);
        let found = store.run_blocking(|c| find(c, &web.id))?.ok_or("gone")?;
        assert_eq!(found.secret_hash.as_deref(), Some(&b"new"[..]));
        assert_eq!(found.previous_secret_hash.as_deref(), Some(&b"old"[..]));
        assert_eq!(found.previous_secret_expires_at, Some(50));
        assert_eq!(version(&store)?, before + 1);

        let refused = store.run_blocking(|c| rotate_secret(c, &public.id, b"new", 50, 9))?;
        assert_eq!(refused, SecretRotation::NoSecret);
        let found = store.run_blocking(|c| find(c, &public.id))?.ok_or("gone")?;
        assert_eq!((found.secret_hash, found.updated_at), (None, 1));
        assert_eq!(
            version(&store)?,
            before + 1,
            "nothing changed, nothing bumped"
        );

        let nobody = ClientId::parse("sgl_nobody")?;
        assert!(matches!(
            store.run_blocking(|c| rotate_secret(c, &nobody, b"new", 50, 9)),
            Err(StoreError::NotFound)
        ));
        Ok(())
    }

    #[test]
    fn a_change_is_written_whole_or_not_at_all() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = store(dir.path())?;
        let web = client("sgl_web", Some(b"s"))?;
        store.run_blocking(|c| insert(c, &web))?;
        let before = version(&store)?;

        let renamed = store.run_blocking(|c| {
            modify(c, &web.id, |mut cl| {
                cl.name = "renamed".into();
                Ok::<_, StoreError>((cl, "reported"))
            })
        })?;
        assert!(renamed.is_some_and(|(cl, r)| cl.name == "renamed" && r == "reported"));
        assert_eq!(version(&store)?, before + 1);

        // A refused change writes nothing.
        let refused = store.run_blocking(|c| {
            modify(c, &web.id, |mut cl| -> Result<(Client, ()), StoreError> {
                cl.name = "never".into();
                Err(StoreError::Conflict("refused".into()))
            })
        });
        assert!(matches!(refused, Err(StoreError::Conflict(_))));
        // A change whose version bump fails is not kept either.
        break_version_bumps(&store)?;
        let failed = store.run_blocking(|c| {
            modify(c, &web.id, |mut cl| {
                cl.name = "never".into();
                Ok::<_, StoreError>((cl, ()))
            })
        });
        assert!(failed.is_err());
        let found = store.run_blocking(|c| find(c, &web.id))?.ok_or("gone")?;
        assert_eq!(found.name, "renamed");

        let nobody = ClientId::parse("sgl_nobody")?;
        let none =
            store.run_blocking(|c| modify(c, &nobody, |cl| Ok::<_, StoreError>((cl, ()))))?;
        assert!(none.is_none());
        Ok(())
    }

    #[test]
    fn no_client_changes_without_its_version_bump() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = store(dir.path())?;
        let web = client("sgl_web", Some(b"s"))?;
        store.run_blocking(|c| insert(c, &web))?;
        let other = client("sgl_other", Some(b"s"))?;
        break_version_bumps(&store)?;
        assert!(store.run_blocking(|c| insert(c, &other)).is_err());
        assert!(store.run_blocking(|c| delete(c, &web.id)).is_err());
        assert!(
            store
                .run_blocking(|c| rotate_secret(c, &web.id, b"new", 50, 9))
                .is_err()
        );
        store.run_blocking(|c| {
            assert!(find(c, &other.id)?.is_none(), "insert rolled back");
            let kept = find(c, &web.id)?.ok_or(StoreError::NotFound)?;
            assert_eq!(
                kept.secret_hash.as_deref(),
                Some(&b"s"[..]),
                "rotation rolled back"
            );
            Ok::<_, StoreError>(())
        })?;
        Ok(())
    }
}
