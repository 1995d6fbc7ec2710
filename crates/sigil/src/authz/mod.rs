//! Who may do what: the roles and APIs of the authorization model, held in memory
//! ([`Authz`], reloaded when `authz_version` moves) and the pure rule that turns a principal's
//! roles and a token's audiences into the token's `permissions` ([`Model::permissions`]).
//!
//! The rule (docs/authorization.md): the permissions of every role the principal holds, sorted
//! and unique, narrowed to the audience: a permission that a registered API declares appears
//! only in tokens whose `aud` includes that API's audience; one that no API declares appears in
//! every token of the principal. The admin API's `admin:*` permissions are declared by the
//! issuer's own audience (the admin API is Sigil's resource), so they never reach another
//! resource server's tokens.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::domain::authz::{Api, Permission, Role};
use crate::store::{Store, StoreError, roles as role_store};

/// One consistent view of the roles and APIs.
#[derive(Debug, Default)]
pub struct Model {
    /// `authz_version` it was read at (`-1`: never loaded).
    pub version: i64,
    roles: HashMap<String, Role>,
    /// Permission → the audiences that declare it.
    declared: HashMap<String, Vec<String>>,
    /// The admin API's audience, which declares every `admin:` permission (wildcards too).
    issuer: String,
}

impl Model {
    /// The model of these stored roles and APIs, plus the built-in `sigil-admin` role, whose
    /// permissions `issuer` (the admin API's audience) declares.
    pub fn new(version: i64, roles: Vec<Role>, apis: Vec<Api>, issuer: &str) -> Model {
        let mut by_name: HashMap<String, Role> = roles
            .into_iter()
            .map(|r| (r.name.as_str().to_owned(), r))
            .collect();
        let admin = Role::sigil_admin();
        let mut declared: HashMap<String, Vec<String>> = HashMap::new();
        for p in &admin.permissions {
            declared
                .entry(p.as_str().to_owned())
                .or_default()
                .push(issuer.to_owned());
        }
        by_name.insert(admin.name.as_str().to_owned(), admin);
        for api in apis {
            for p in api.permissions {
                let auds = declared.entry(p.as_str().to_owned()).or_default();
                if !auds.iter().any(|a| a == api.audience.as_str()) {
                    auds.push(api.audience.as_str().to_owned());
                }
            }
        }
        Model {
            version,
            roles: by_name,
            declared,
            issuer: issuer.to_owned(),
        }
    }

    /// A role by name (built-in ones included).
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }

    /// Whether `p` may appear in a token for `aud`.
    fn meaningful(&self, p: &Permission, aud: &[String]) -> bool {
        if p.is_admin() {
            return aud.contains(&self.issuer);
        }
        match self.declared.get(p.as_str()) {
            None => true,
            Some(owners) => owners.iter().any(|o| aud.iter().any(|a| a == o)),
        }
    }

    /// The `permissions` claim of a token for a principal holding `roles`, for `aud`: sorted,
    /// unique, narrowed to the audience. A role that does not exist contributes nothing.
    pub fn permissions<S: AsRef<str>>(&self, roles: &[S], aud: &[String]) -> Vec<String> {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out: Vec<String> = Vec::new();
        for r in roles {
            let Some(role) = self.roles.get(r.as_ref()) else {
                continue;
            };
            for p in &role.permissions {
                if !seen.contains(p.as_str()) && self.meaningful(p, aud) {
                    seen.insert(p.as_str());
                    out.push(p.as_str().to_owned());
                }
            }
        }
        out.sort();
        out
    }

    /// The role among `roles` that adds the most bytes to a token for `aud` (name and bytes),
    /// to name it when a token is too large.
    pub fn largest_role<S: AsRef<str>>(
        &self,
        roles: &[S],
        aud: &[String],
    ) -> Option<(String, usize)> {
        roles
            .iter()
            .filter_map(|r| {
                let role = self.roles.get(r.as_ref())?;
                let bytes: usize = role
                    .permissions
                    .iter()
                    .filter(|p| self.meaningful(p, aud))
                    .map(|p| p.as_str().len() + 3)
                    .sum();
                Some((role.name.as_str().to_owned(), bytes))
            })
            .max_by_key(|(_, b)| *b)
    }
}

/// The server's in-memory model, swapped whole without locks.
#[derive(Debug)]
pub struct Authz {
    model: ArcSwap<Model>,
    issuer: String,
}

impl Authz {
    /// An empty model (only `sigil-admin`) until [`Authz::reload`].
    pub fn new(issuer: &str) -> Authz {
        Authz {
            model: ArcSwap::from_pointee(Model::new(-1, vec![], vec![], issuer)),
            issuer: issuer.to_owned(),
        }
    }

    /// The current model (a cheap guard: no reference count is touched on the token path).
    pub fn load(&self) -> arc_swap::Guard<Arc<Model>> {
        self.model.load()
    }

    /// Read every role and API again; on error the previous model stays.
    pub async fn reload(&self, store: &Store) -> Result<i64, StoreError> {
        let (version, roles, apis) = store.run(role_store::snapshot).await?;
        self.model
            .store(Arc::new(Model::new(version, roles, apis, &self.issuer)));
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Name;

    fn perm(s: &str) -> Permission {
        Permission::parse(s).expect("a permission")
    }

    fn role(name: &str, perms: &[&str]) -> Role {
        Role {
            name: Name::parse(name, "role").expect("a role name"),
            description: String::new(),
            permissions: perms.iter().map(|p| perm(p)).collect(),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn api(aud: &str, perms: &[&str]) -> Api {
        Api {
            audience: Name::parse(aud, "audience").expect("an audience"),
            name: aud.to_owned(),
            permissions: perms.iter().map(|p| perm(p)).collect(),
            created_at: 0,
            updated_at: 0,
        }
    }

    const ISS: &str = "https://id.example.com";

    fn model() -> Model {
        Model::new(
            1,
            vec![
                role(
                    "ops",
                    &["job:create", "job:read", "billing:read", "audit:x"],
                ),
                role("reader", &["job:read", "user:read"]),
            ],
            vec![
                api("https://jobs", &["job:create", "job:read"]),
                api("https://billing", &["billing:read", "job:read"]),
            ],
            ISS,
        )
    }

    fn aud(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn declared_permissions_appear_only_for_their_audience() {
        let m = model();
        assert_eq!(
            m.permissions(&["ops"], &aud(&["https://jobs"])),
            ["audit:x", "job:create", "job:read"]
        );
        assert_eq!(
            m.permissions(&["ops"], &aud(&["https://billing"])),
            ["audit:x", "billing:read", "job:read"]
        );
        assert_eq!(
            m.permissions(&["ops"], &aud(&["https://other"])),
            ["audit:x"]
        );
        assert_eq!(
            m.permissions(&["ops"], &aud(&["https://jobs", "https://billing"])),
            ["audit:x", "billing:read", "job:create", "job:read"]
        );
    }

    #[test]
    fn union_is_sorted_and_unique_and_unknown_roles_add_nothing() {
        let m = model();
        assert_eq!(
            m.permissions(&["reader", "ops", "gone"], &aud(&["https://jobs"])),
            ["audit:x", "job:create", "job:read", "user:read"]
        );
        assert!(
            m.permissions::<&str>(&[], &aud(&["https://jobs"]))
                .is_empty()
        );
    }

    #[test]
    fn admin_permissions_only_reach_the_issuer() {
        let m = model();
        let for_issuer = m.permissions(&["sigil-admin"], &aud(&[ISS]));
        assert_eq!(for_issuer.len(), 12);
        assert!(for_issuer.contains(&"admin:users:write".to_owned()));
        assert!(
            m.permissions(&["sigil-admin"], &aud(&["https://jobs"]))
                .is_empty()
        );
    }

    #[test]
    fn the_largest_role_is_named() {
        let m = model();
        let (name, bytes) = m
            .largest_role(&["reader", "ops"], &aud(&["https://jobs"]))
            .expect("a role");
        assert_eq!(name, "ops");
        assert!(bytes > 0);
    }

    mod narrowing {
        use super::*;
        use proptest::prelude::*;

        const AUDS: [&str; 4] = ["https://a", "https://b", "https://c", ISS];

        fn perm_name() -> impl Strategy<Value = String> {
            (0u8..4, 0u8..6).prop_map(|(r, a)| format!("r{r}:a{a}"))
        }

        fn setup() -> impl Strategy<Value = (Vec<Role>, Vec<Api>)> {
            let roles =
                proptest::collection::vec(proptest::collection::vec(perm_name(), 0..8), 1..4);
            let apis = proptest::collection::vec(
                (0usize..3, proptest::collection::vec(perm_name(), 0..6)),
                0..4,
            );
            (roles, apis).prop_map(|(roles, apis)| {
                let roles = roles
                    .into_iter()
                    .enumerate()
                    .map(|(i, perms)| {
                        let refs: Vec<&str> = perms.iter().map(String::as_str).collect();
                        let mut r = role(&format!("role{i}"), &refs);
                        r.permissions = crate::domain::authz::normalize(r.permissions);
                        r
                    })
                    .collect();
                let mut seen = std::collections::HashSet::new();
                let apis = apis
                    .into_iter()
                    .filter(|(a, _)| seen.insert(*a))
                    .map(|(a, perms)| {
                        let refs: Vec<&str> = perms.iter().map(String::as_str).collect();
                        api(AUDS[a], &refs)
                    })
                    .collect();
                (roles, apis)
            })
        }

        proptest! {
            /// Narrowing never widens: a token's permissions are held by its roles, each one
            /// declared by an API of its audience or by none, and more audiences never take
            /// one away.
            #[test]
            fn narrowing_never_widens((roles, apis) in setup(), pick in proptest::collection::vec(0usize..4, 0..4), extra in 0usize..4) {
                let names: Vec<String> = roles.iter().map(|r| r.name.as_str().to_owned()).collect();
                let held: std::collections::HashSet<String> = roles
                    .iter()
                    .flat_map(|r| r.permissions.iter().map(|p| p.as_str().to_owned()))
                    .collect();
                let declared: Vec<(String, String)> = apis
                    .iter()
                    .flat_map(|a| a.permissions.iter().map(move |p| (p.as_str().to_owned(), a.audience.as_str().to_owned())))
                    .collect();
                let m = Model::new(1, roles, apis, ISS);
                let aud: Vec<String> = pick.iter().map(|i| AUDS[*i].to_owned()).collect();
                let got = m.permissions(&names, &aud);
                let mut sorted = got.clone();
                sorted.sort();
                sorted.dedup();
                prop_assert_eq!(&sorted, &got, "sorted and unique");
                for p in &got {
                    prop_assert!(held.contains(p), "{} is held by a role", p);
                    let owners: Vec<&String> = declared.iter().filter(|(q, _)| q == p).map(|(_, a)| a).collect();
                    prop_assert!(owners.is_empty() || owners.iter().any(|o| aud.contains(o)), "{} belongs to the audience", p);
                }
                for p in &held {
                    let owners: Vec<&String> = declared.iter().filter(|(q, _)| q == p).map(|(_, a)| a).collect();
                    if owners.is_empty() || owners.iter().any(|o| aud.contains(o)) {
                        prop_assert!(got.contains(p), "{} is meaningful here and kept", p);
                    }
                }
                let mut wider = aud.clone();
                wider.push(AUDS[extra].to_owned());
                let more = m.permissions(&names, &wider);
                prop_assert!(got.iter().all(|p| more.contains(p)), "another audience takes nothing away");
            }
        }
    }
}
