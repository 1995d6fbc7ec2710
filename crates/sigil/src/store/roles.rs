//! `roles` and `apis` tables: what roles bundle and what APIs declare. Every change bumps
//! `authz_version` first, inside its transaction, so on PostgreSQL concurrent changes queue on
//! that row and a read-modify-write of a permission list never loses another's change; servers
//! reload both tables when the counter moves. The built-in `sigil-admin` role is not stored.

use diesel::prelude::*;

use super::schema::{apis, clients, roles, users};
use super::{DbConn, StoreError, from_json_list, meta, to_json_list};
use crate::domain::Name;
use crate::domain::authz::{Api, Permission, Role, SIGIL_ADMIN, normalize};

/// Bumped by every change to `roles` or `apis`.
pub const AUTHZ_VERSION: &str = "authz_version";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = roles)]
struct RoleRow {
    name: String,
    description: String,
    permissions: String,
    created_at: i64,
    updated_at: i64,
}

impl From<&Role> for RoleRow {
    fn from(r: &Role) -> Self {
        RoleRow {
            name: r.name.as_str().to_owned(),
            description: r.description.clone(),
            permissions: to_json_list(&r.permissions),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl TryFrom<RoleRow> for Role {
    type Error = StoreError;
    fn try_from(r: RoleRow) -> Result<Role, StoreError> {
        Ok(Role {
            name: Name::parse(&r.name, "role")
                .map_err(|e| StoreError::Corrupt(format!("role {}: {e}", r.name)))?,
            description: r.description,
            permissions: normalize(from_json_list::<Permission>(
                &r.permissions,
                "roles.permissions",
            )?),
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = apis)]
struct ApiRow {
    audience: String,
    name: String,
    permissions: String,
    created_at: i64,
    updated_at: i64,
}

impl From<&Api> for ApiRow {
    fn from(a: &Api) -> Self {
        ApiRow {
            audience: a.audience.as_str().to_owned(),
            name: a.name.clone(),
            permissions: to_json_list(&a.permissions),
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

impl TryFrom<ApiRow> for Api {
    type Error = StoreError;
    fn try_from(r: ApiRow) -> Result<Api, StoreError> {
        Ok(Api {
            audience: Name::parse(&r.audience, "audience")
                .map_err(|e| StoreError::Corrupt(format!("api {}: {e}", r.audience)))?,
            name: r.name,
            permissions: normalize(from_json_list::<Permission>(
                &r.permissions,
                "apis.permissions",
            )?),
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// Every stored role, by name (the built-in `sigil-admin` is not among them).
pub fn list(conn: &mut DbConn) -> Result<Vec<Role>, StoreError> {
    roles::table
        .order(roles::name.asc())
        .select(RoleRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Role::try_from)
        .collect()
}

/// One stored role.
pub fn find(conn: &mut DbConn, name: &str) -> Result<Option<Role>, StoreError> {
    roles::table
        .find(name)
        .select(RoleRow::as_select())
        .first(conn)
        .optional()?
        .map(Role::try_from)
        .transpose()
}

/// The names among `names` that are no role (stored or built in), sorted.
pub fn unknown(conn: &mut DbConn, names: &[Name]) -> Result<Vec<Name>, StoreError> {
    let wanted: Vec<&str> = names
        .iter()
        .map(Name::as_str)
        .filter(|n| *n != SIGIL_ADMIN)
        .collect();
    if wanted.is_empty() {
        return Ok(vec![]);
    }
    let found: Vec<String> = roles::table
        .filter(roles::name.eq_any(&wanted))
        .select(roles::name)
        .load(conn)?;
    let mut missing: Vec<Name> = names
        .iter()
        .filter(|n| n.as_str() != SIGIL_ADMIN && !found.iter().any(|f| f == n.as_str()))
        .cloned()
        .collect();
    missing.sort();
    missing.dedup();
    Ok(missing)
}

/// Create a role; a taken name is `Conflict`.
pub fn insert(conn: &mut DbConn, role: &Role) -> Result<(), StoreError> {
    if role.name.as_str() == SIGIL_ADMIN {
        return Err(StoreError::Conflict(format!("{SIGIL_ADMIN} is built in")));
    }
    conn.transaction(|c| {
        meta::bump(c, AUTHZ_VERSION)?;
        diesel::insert_into(roles::table)
            .values(RoleRow::from(role))
            .execute(c)?;
        Ok(())
    })
}

/// What [`update`] changes.
#[derive(Debug, Default)]
pub struct RoleChange {
    /// Permissions to add.
    pub add: Vec<Permission>,
    /// Permissions to remove.
    pub remove: Vec<Permission>,
    /// A new description.
    pub description: Option<String>,
}

/// Change a stored role in one transaction; returns it as it now is. `NotFound` when no such role.
pub fn update(
    conn: &mut DbConn,
    name: &str,
    change: &RoleChange,
    now: i64,
) -> Result<Role, StoreError> {
    conn.transaction(|c| {
        meta::bump(c, AUTHZ_VERSION)?;
        let mut role = find(c, name)?.ok_or(StoreError::NotFound)?;
        let mut perms = role.permissions.clone();
        perms.extend(change.add.iter().cloned());
        perms.retain(|p| !change.remove.contains(p));
        role.permissions = normalize(perms);
        if let Some(d) = &change.description {
            role.description = d.clone();
        }
        role.updated_at = now;
        diesel::update(roles::table.find(name))
            .set((
                roles::permissions.eq(to_json_list(&role.permissions)),
                roles::description.eq(&role.description),
                roles::updated_at.eq(now),
            ))
            .execute(c)?;
        Ok(role)
    })
}

/// How many principals lost a deleted role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Holders {
    /// Users.
    pub users: usize,
    /// Clients.
    pub clients: usize,
}

/// Delete a stored role and take it from every user and client that held it, in one
/// transaction. `NotFound` when no such role.
pub fn delete(conn: &mut DbConn, name: &str, now: i64) -> Result<Holders, StoreError> {
    conn.transaction(|c| {
        meta::bump(c, AUTHZ_VERSION)?;
        let n = diesel::delete(roles::table.find(name)).execute(c)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        let mut holders = Holders::default();
        let rows: Vec<(String, String)> = users::table
            .filter(users::roles.ne("[]"))
            .select((users::id, users::roles))
            .load(c)?;
        for (id, list) in rows {
            if let Some(kept) = without(&list, name)? {
                diesel::update(users::table.find(&id))
                    .set((users::roles.eq(kept), users::updated_at.eq(now)))
                    .execute(c)?;
                holders.users += 1;
            }
        }
        let rows: Vec<(String, String)> = clients::table
            .filter(clients::roles.ne("[]"))
            .select((clients::client_id, clients::roles))
            .load(c)?;
        for (id, list) in rows {
            if let Some(kept) = without(&list, name)? {
                diesel::update(clients::table.find(&id))
                    .set((clients::roles.eq(kept), clients::updated_at.eq(now)))
                    .execute(c)?;
                holders.clients += 1;
            }
        }
        if holders.users > 0 {
            meta::bump(c, meta::USERS_VERSION)?;
        }
        if holders.clients > 0 {
            meta::bump(c, meta::CLIENTS_VERSION)?;
        }
        Ok(holders)
    })
}

/// `list` (a JSON list of role names) without `name`, or `None` when it did not hold it.
fn without(list: &str, name: &str) -> Result<Option<String>, StoreError> {
    let names: Vec<String> = from_json_list(list, "roles")?;
    if !names.iter().any(|n| n == name) {
        return Ok(None);
    }
    let kept: Vec<&String> = names.iter().filter(|n| *n != name).collect();
    Ok(Some(to_json_list(&kept)))
}

/// Every registered API, by audience.
pub fn list_apis(conn: &mut DbConn) -> Result<Vec<Api>, StoreError> {
    apis::table
        .order(apis::audience.asc())
        .select(ApiRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Api::try_from)
        .collect()
}

/// One API.
pub fn find_api(conn: &mut DbConn, audience: &str) -> Result<Option<Api>, StoreError> {
    apis::table
        .find(audience)
        .select(ApiRow::as_select())
        .first(conn)
        .optional()?
        .map(Api::try_from)
        .transpose()
}

/// Register an API; a registered audience is `Conflict`.
pub fn insert_api(conn: &mut DbConn, api: &Api) -> Result<(), StoreError> {
    conn.transaction(|c| {
        meta::bump(c, AUTHZ_VERSION)?;
        diesel::insert_into(apis::table)
            .values(ApiRow::from(api))
            .execute(c)?;
        Ok(())
    })
}

/// Change an API's name or declared permissions in one transaction; returns it as it now is.
pub fn update_api(
    conn: &mut DbConn,
    audience: &str,
    name: Option<&str>,
    add: &[Permission],
    remove: &[Permission],
    now: i64,
) -> Result<Api, StoreError> {
    conn.transaction(|c| {
        meta::bump(c, AUTHZ_VERSION)?;
        let mut api = find_api(c, audience)?.ok_or(StoreError::NotFound)?;
        let mut perms = api.permissions.clone();
        perms.extend(add.iter().cloned());
        perms.retain(|p| !remove.contains(p));
        api.permissions = normalize(perms);
        if let Some(n) = name {
            api.name = n.to_owned();
        }
        api.updated_at = now;
        diesel::update(apis::table.find(audience))
            .set((
                apis::permissions.eq(to_json_list(&api.permissions)),
                apis::name.eq(&api.name),
                apis::updated_at.eq(now),
            ))
            .execute(c)?;
        Ok(api)
    })
}

/// Forget an API (its permissions then appear in every token of their holders). `false` when
/// there was none.
pub fn delete_api(conn: &mut DbConn, audience: &str) -> Result<bool, StoreError> {
    conn.transaction(|c| {
        meta::bump(c, AUTHZ_VERSION)?;
        Ok(diesel::delete(apis::table.find(audience)).execute(c)? == 1)
    })
}

/// What [`import`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Imported {
    /// Roles created.
    pub roles_created: usize,
    /// Roles whose description and permissions were replaced.
    pub roles_replaced: usize,
    /// APIs registered.
    pub apis_created: usize,
    /// APIs whose name and permissions were replaced.
    pub apis_replaced: usize,
}

/// Create or replace roles and APIs, all in one transaction (a failure changes nothing).
pub fn import(
    conn: &mut DbConn,
    roles_in: &[Role],
    apis_in: &[Api],
    now: i64,
) -> Result<Imported, StoreError> {
    conn.transaction(|c| {
        meta::bump(c, AUTHZ_VERSION)?;
        let mut done = Imported::default();
        for r in roles_in {
            if r.name.as_str() == SIGIL_ADMIN {
                return Err(StoreError::Conflict(format!("{SIGIL_ADMIN} is built in")));
            }
            let n = diesel::update(roles::table.find(r.name.as_str()))
                .set((
                    roles::description.eq(&r.description),
                    roles::permissions.eq(to_json_list(&r.permissions)),
                    roles::updated_at.eq(now),
                ))
                .execute(c)?;
            if n == 1 {
                done.roles_replaced += 1;
            } else {
                diesel::insert_into(roles::table)
                    .values(RoleRow::from(r))
                    .execute(c)?;
                done.roles_created += 1;
            }
        }
        for a in apis_in {
            let n = diesel::update(apis::table.find(a.audience.as_str()))
                .set((
                    apis::name.eq(&a.name),
                    apis::permissions.eq(to_json_list(&a.permissions)),
                    apis::updated_at.eq(now),
                ))
                .execute(c)?;
            if n == 1 {
                done.apis_replaced += 1;
            } else {
                diesel::insert_into(apis::table)
                    .values(ApiRow::from(a))
                    .execute(c)?;
                done.apis_created += 1;
            }
        }
        Ok(done)
    })
}

/// The authorization model's version, for servers to notice a change.
pub fn version(conn: &mut DbConn) -> Result<i64, StoreError> {
    use super::schema::meta as m;
    Ok(m::table
        .find(AUTHZ_VERSION)
        .select(m::value)
        .first(conn)
        .optional()?
        .unwrap_or(0))
}

/// Every role and API with the version they were read at, in one transaction (a consistent
/// snapshot for the server's in-memory model).
pub fn snapshot(conn: &mut DbConn) -> Result<(i64, Vec<Role>, Vec<Api>), StoreError> {
    conn.transaction(|c| Ok((version(c)?, list(c)?, list_apis(c)?)))
}
