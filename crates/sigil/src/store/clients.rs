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

/// Insert a new client. Bumps `clients_version`.
pub fn insert(conn: &mut DbConn, client: &Client) -> Result<(), StoreError> {
    diesel::insert_into(clients::table)
        .values(ClientRow::from(client))
        .execute(conn)?;
    meta::bump(conn, meta::CLIENTS_VERSION)
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

/// Replace the registration of an existing client (id, secrets and creation time kept: only
/// the fields an operator may change are written). Bumps `clients_version`.
pub fn update(conn: &mut DbConn, client: &Client) -> Result<(), StoreError> {
    let row = ClientRow::from(client);
    conn.transaction(|c| {
        let n = diesel::update(clients::table.find(&row.client_id))
            .set((
                clients::name.eq(&row.name),
                clients::scopes.eq(&row.scopes),
                clients::audiences.eq(&row.audiences),
                clients::roles.eq(&row.roles),
                clients::redirect_uris.eq(&row.redirect_uris),
                clients::updated_at.eq(row.updated_at),
            ))
            .execute(c)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        meta::bump(c, meta::CLIENTS_VERSION)
    })
}

/// Delete a client. Bumps `clients_version`. False when it did not exist.
pub fn delete(conn: &mut DbConn, id: &ClientId) -> Result<bool, StoreError> {
    let n = diesel::delete(clients::table.find(id.as_str())).execute(conn)?;
    if n > 0 {
        meta::bump(conn, meta::CLIENTS_VERSION)?;
    }
    Ok(n > 0)
}

/// Replace the secret, keeping the old one valid until `previous_expires_at`.
pub fn rotate_secret(
    conn: &mut DbConn,
    id: &ClientId,
    new_hash: &[u8],
    previous_expires_at: i64,
    now: i64,
) -> Result<(), StoreError> {
    let current: Option<Option<Vec<u8>>> = clients::table
        .find(id.as_str())
        .select(clients::secret_hash)
        .first(conn)
        .optional()?;
    let Some(current) = current else {
        return Err(StoreError::NotFound);
    };
    diesel::update(clients::table.find(id.as_str()))
        .set((
            clients::previous_secret_hash.eq(current),
            clients::previous_secret_expires_at.eq(Some(previous_expires_at)),
            clients::secret_hash.eq(Some(new_hash.to_vec())),
            clients::updated_at.eq(now),
        ))
        .execute(conn)?;
    meta::bump(conn, meta::CLIENTS_VERSION)
}

/// Forget previous secrets whose overlap ended before `now`. Returns how many.
pub fn prune_previous_secrets(conn: &mut DbConn, now: i64) -> Result<usize, StoreError> {
    let n = diesel::update(clients::table.filter(clients::previous_secret_expires_at.lt(now)))
        .set((
            clients::previous_secret_hash.eq(None::<Vec<u8>>),
            clients::previous_secret_expires_at.eq(None::<i64>),
        ))
        .execute(conn)?;
    if n > 0 {
        meta::bump(conn, meta::CLIENTS_VERSION)?;
    }
    Ok(n)
}
