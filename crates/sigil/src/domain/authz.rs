//! Authorization's parsed types: a [`Permission`] (`job:create`), a [`Role`] that bundles
//! permissions, and an [`Api`] (a resource server: the audience it answers to and the permissions
//! it declares). What a principal's token carries is worked out in `crate::authz`.

use serde::{Deserialize, Serialize};

use super::Name;

/// The role every administrator holds: every `admin:*` permission of the admin API. Built in: it
/// cannot be created, changed or deleted.
pub const SIGIL_ADMIN: &str = "sigil-admin";

/// The admin API's resources; each has `admin:<resource>:read` and `admin:<resource>:write`.
pub const ADMIN_RESOURCES: [&str; 6] = ["users", "clients", "roles", "keys", "audit", "tenants"];

/// Role names as a user or client holds them: each a [`Name`] (`what` names the input in the
/// error), sorted, duplicates dropped. Whether each exists is the store's to say
/// (`store::roles::unknown`, then [`unknown_roles_message`]).
pub fn role_names(raw: &[String], what: &str) -> Result<Vec<Name>, String> {
    let mut names = raw
        .iter()
        .map(|r| Name::parse(r, what))
        .collect::<Result<Vec<_>, _>>()?;
    names.sort();
    names.dedup();
    Ok(names)
}

/// Why role names that are no role are refused, naming them (`unknown` is not empty), so a typo
/// never grants nothing silently.
pub fn unknown_roles_message(unknown: &[Name]) -> String {
    let all: Vec<&str> = unknown.iter().map(Name::as_str).collect();
    format!(
        "no role named {}: create it first (`sigil roles create {}`), or see `sigil roles list`",
        all.join(", "),
        all.first().copied().unwrap_or_default()
    )
}

/// A permission: `^[a-z0-9_.-]+(:[a-z0-9_.*-]+)+$`, at most 200 bytes (e.g. `job:create`,
/// `admin:users:read`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Permission(String);

impl Permission {
    /// Parse a permission; the error says what the rule is.
    pub fn parse(s: &str) -> Result<Permission, String> {
        let rule = || {
            format!(
                "`{}` is not a permission: lowercase segments of a-z 0-9 _ . - joined by `:`, at least two (e.g. `job:create`; `*` is allowed after the first), at most 200 characters",
                s.escape_debug()
            )
        };
        if s.is_empty() || s.len() > 200 {
            return Err(rule());
        }
        let mut segments = s.split(':');
        let first = segments.next().unwrap_or("");
        let plain = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c);
        if first.is_empty() || !first.chars().all(plain) {
            return Err(rule());
        }
        let mut rest = 0;
        for seg in segments {
            if seg.is_empty() || !seg.chars().all(|c| plain(c) || c == '*') {
                return Err(rule());
            }
            rest += 1;
        }
        if rest == 0 {
            return Err(rule());
        }
        Ok(Permission(s.to_owned()))
    }

    /// The permission as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is one of the admin API's permissions (`admin:…`), which only the admin API
    /// (audience: the issuer) declares.
    pub fn is_admin(&self) -> bool {
        self.0.starts_with("admin:")
    }
}

impl TryFrom<String> for Permission {
    type Error = String;
    fn try_from(s: String) -> Result<Permission, String> {
        Permission::parse(&s)
    }
}

impl From<Permission> for String {
    fn from(p: Permission) -> String {
        p.0
    }
}

/// Every `admin:<resource>:read|write` permission, sorted: what [`SIGIL_ADMIN`] holds.
pub fn admin_permissions() -> Vec<Permission> {
    let mut all: Vec<Permission> = ADMIN_RESOURCES
        .iter()
        .flat_map(|r| ["read", "write"].map(|a| Permission(format!("admin:{r}:{a}"))))
        .collect();
    all.sort();
    all
}

/// A role: a name and the permissions it bundles (sorted, unique).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// Name (what users' and clients' `roles` and tokens' `roles` hold).
    pub name: Name,
    /// What it is for.
    pub description: String,
    /// Permissions, sorted and unique.
    pub permissions: Vec<Permission>,
    /// Created, Unix seconds.
    pub created_at: i64,
    /// Last changed, Unix seconds.
    pub updated_at: i64,
}

impl Role {
    /// The built-in [`SIGIL_ADMIN`] role.
    pub fn sigil_admin() -> Role {
        Role {
            name: Name(SIGIL_ADMIN.to_owned()),
            description: "Sigil's administrators: every admin API permission".to_owned(),
            permissions: admin_permissions(),
            created_at: 0,
            updated_at: 0,
        }
    }

    /// Whether this is a built-in role.
    pub fn builtin(&self) -> bool {
        self.name.as_str() == SIGIL_ADMIN
    }

    /// The `roles show --json` shape (`roles list --json` is an array of them).
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "description": self.description,
            "permissions": self.permissions,
            "builtin": self.builtin(),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

/// A registered API (resource server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    /// The audience its tokens carry (RFC 8707 `resource` / `audience`).
    pub audience: Name,
    /// Display name.
    pub name: String,
    /// The permissions it declares: these appear only in tokens for this audience.
    pub permissions: Vec<Permission>,
    /// Created, Unix seconds.
    pub created_at: i64,
    /// Last changed, Unix seconds.
    pub updated_at: i64,
}

impl Api {
    /// The `apis show --json` shape.
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "audience": self.audience,
            "name": self.name,
            "permissions": self.permissions,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

/// Sort and deduplicate permissions.
pub fn normalize(mut perms: Vec<Permission>) -> Vec<Permission> {
    perms.sort();
    perms.dedup();
    perms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_follow_the_contract_rule() {
        for good in [
            "job:create",
            "admin:users:read",
            "a:b",
            "job:*",
            "billing.v2:invoice-line_item:read",
            "0:1",
        ] {
            assert!(Permission::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "job",
            "Job:create",
            "job:",
            ":create",
            "job::create",
            "*:create",
            "job create:x",
            "job:créer",
            "job:create\n",
            &format!("a:{}", "b".repeat(199)),
        ] {
            assert!(Permission::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sigil_admin_holds_every_admin_permission() {
        let perms = Role::sigil_admin().permissions;
        assert_eq!(perms.len(), 12);
        assert!(perms.iter().all(Permission::is_admin));
        assert!(perms.contains(&Permission::parse("admin:tenants:write").expect("a permission")));
        assert!(perms.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn deserializing_checks_the_rule() {
        assert!(serde_json::from_str::<Vec<Permission>>(r#"["job:create"]"#).is_ok());
        assert!(serde_json::from_str::<Vec<Permission>>(r#"["JOB"]"#).is_err());
    }
}
