//! What a token must hold to be let through: the permission-matching rule (with its one
//! wildcard), the syntax of permissions, scopes and role names, and the named requirements
//! ([`PermissionName`], [`ScopeName`], [`RoleName`], declared with
//! [`permission!`](crate::permission!), [`scope!`](crate::scope!) and [`role!`](crate::role!))
//! that typed guards such as
//! `actix::RequirePermission<P>` check.
//!
//! # Permissions
//!
//! A permission is a string in Sigil's syntax, `^[a-z0-9_.-]+(:[a-z0-9_.*-]+)+$`: two or more
//! segments separated by `:`, e.g. `orders:read` or `job:run:now`. A held permission grants a
//! required one when
//!
//! * they are equal, byte for byte; or
//! * the held one ends in the segment `*` and the required one is the held one's prefix
//!   followed by `:` and one or more segments: `job:*` grants `job:create` and `job:run:now`,
//!   but neither `job` nor `jobs:create`; `admin:*` grants `admin:users:read`.
//!
//! `*` is a wildcard only as the whole last segment of a *held* permission: `job:*:read` and
//! `job:r*` are matched literally, and a *required* permission containing `*` is granted only by
//! that very string (a required `job:*` is met by a held `job:*`, not by `job:create`). Strings
//! outside the syntax are matched literally. Scopes and roles have no wildcard: they match
//! exactly.

/// Whether `s` is a permission in Sigil's syntax, `^[a-z0-9_.-]+(:[a-z0-9_.*-]+)+$`.
///
/// ```
/// use sigil_verify::is_permission;
/// assert!(is_permission("orders:read"));
/// assert!(is_permission("job:*"));
/// assert!(is_permission("job:run:now"));
/// assert!(!is_permission("orders"));
/// assert!(!is_permission("Orders:read"));
/// assert!(!is_permission("*:read"));
/// assert!(!is_permission("orders::read"));
/// ```
pub const fn is_permission(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let mut separators = 0;
    let mut segment_len = 0;
    while i < b.len() {
        let c = b[i];
        if c == b':' {
            if segment_len == 0 {
                return false;
            }
            separators += 1;
            segment_len = 0;
        } else {
            let ok = c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || matches!(c, b'_' | b'.' | b'-')
                || (c == b'*' && separators > 0);
            if !ok {
                return false;
            }
            segment_len += 1;
        }
        i += 1;
    }
    separators > 0 && segment_len > 0
}

/// Whether `s` is one scope token (RFC 6749 §3.3): one or more printable ASCII characters other
/// than space, `"` and `\`.
///
/// ```
/// use sigil_verify::is_scope_token;
/// assert!(is_scope_token("orders:read"));
/// assert!(is_scope_token("openid"));
/// assert!(!is_scope_token("read write"));
/// assert!(!is_scope_token(""));
/// ```
pub const fn is_scope_token(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !matches!(b[i], 0x21 | 0x23..=0x5B | 0x5D..=0x7E) {
            return false;
        }
        i += 1;
    }
    !b.is_empty()
}

/// Whether `s` is a role name Sigil accepts: 1 to 100 characters, no control characters and no
/// whitespace at either end.
///
/// ```
/// use sigil_verify::is_role_name;
/// assert!(is_role_name("admin"));
/// assert!(is_role_name("Billing Service"));
/// assert!(!is_role_name(" admin"));
/// assert!(!is_role_name(""));
/// ```
pub const fn is_role_name(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return false;
    }
    let mut i = 0;
    let mut chars = 0;
    let mut last = 0;
    while i < b.len() {
        // `i` is at the start of a character (a `&str` is valid UTF-8).
        let c = char_at(b, i);
        if c <= 0x1F || (c >= 0x7F && c <= 0x9F) {
            return false;
        }
        if i == 0 && is_unicode_whitespace(c) {
            return false;
        }
        last = c;
        chars += 1;
        i += utf8_len(b[i]);
    }
    chars <= 100 && !is_unicode_whitespace(last)
}

/// The length of the UTF-8 sequence that starts with `lead`.
const fn utf8_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// The scalar value of the character starting at `b[i]`, which holds valid UTF-8.
const fn char_at(b: &[u8], i: usize) -> u32 {
    let n = utf8_len(b[i]);
    let mut c = match n {
        1 => b[i] as u32,
        2 => (b[i] & 0x1F) as u32,
        3 => (b[i] & 0x0F) as u32,
        _ => (b[i] & 0x07) as u32,
    };
    let mut k = 1;
    while k < n && i + k < b.len() {
        c = (c << 6) | (b[i + k] & 0x3F) as u32;
        k += 1;
    }
    c
}

/// Unicode `White_Space` (what `char::is_whitespace` and `str::trim` use).
const fn is_unicode_whitespace(c: u32) -> bool {
    matches!(
        c,
        0x09..=0x0D
            | 0x20
            | 0x85
            | 0xA0
            | 0x1680
            | 0x2000..=0x200A
            | 0x2028
            | 0x2029
            | 0x202F
            | 0x205F
            | 0x3000
    )
}

/// Whether the held permission `held` grants the required permission `required`, by the rule
/// in the [module documentation](self): equal, or `held` is `prefix:*` and `required` is
/// `prefix:` followed by one or more segments (and has no `*` of its own).
///
/// ```
/// use sigil_verify::permission_covers;
/// assert!(permission_covers("orders:read", "orders:read"));
/// assert!(permission_covers("job:*", "job:create"));
/// assert!(permission_covers("job:*", "job:run:now"));
/// assert!(permission_covers("job:*", "job:*"));
/// assert!(!permission_covers("job:*", "job"));
/// assert!(!permission_covers("job:*", "jobs:create"));
/// assert!(!permission_covers("job:create", "job:*"));
/// assert!(!permission_covers("job:*:read", "job:x:read"));
/// ```
pub fn permission_covers(held: &str, required: &str) -> bool {
    if held == required {
        return true;
    }
    if required.contains('*') || !is_permission(held) || !is_permission(required) {
        return false;
    }
    // `held` is `prefix:*`; `required` must be `prefix:` and at least one more segment (which
    // `is_permission(required)` makes non-empty).
    match held.strip_suffix('*') {
        Some(prefix) if prefix.ends_with(':') => {
            required.len() > prefix.len() && required.starts_with(prefix)
        }
        _ => false,
    }
}

/// A permission named by a type, for typed guards such as
/// `sigil_verify::actix::RequirePermission<P>`. Declare one with [`permission!`](crate::permission!).
pub trait PermissionName {
    /// The permission, e.g. `orders:read`.
    const NAME: &'static str;
}

/// A scope named by a type, for typed guards such as `sigil_verify::actix::RequireScope<S>`.
/// Declare one with [`scope!`](crate::scope!).
pub trait ScopeName {
    /// The scope, e.g. `orders:read`.
    const NAME: &'static str;
}

/// A role named by a type, for typed guards such as `sigil_verify::actix::RequireRole<R>`.
/// Declare one with [`role!`](crate::role!).
pub trait RoleName {
    /// The role, e.g. `admin`.
    const NAME: &'static str;
}

/// Declares unit types that name permissions ([`PermissionName`]), for typed guards.
///
/// Each `Type = "permission"` becomes a `struct Type;` (with the given attributes and
/// visibility) implementing [`PermissionName`]. A string that is not a permission in Sigil's
/// syntax ([`is_permission`]) fails to compile.
///
/// ```
/// sigil_verify::permission!(OrdersRead = "orders:read");
/// sigil_verify::permission! {
///     /// Run any job.
///     pub JobRun = "job:run";
///     pub(crate) JobAny = "job:*";
/// }
/// use sigil_verify::PermissionName;
/// assert_eq!(OrdersRead::NAME, "orders:read");
/// assert_eq!(JobAny::NAME, "job:*");
/// ```
///
/// ```compile_fail
/// sigil_verify::permission!(Bad = "Orders:Read");
/// ```
#[macro_export]
macro_rules! permission {
    ($($(#[$meta:meta])* $vis:vis $name:ident = $value:literal);+ $(;)?) => {
        $(
            $crate::__named!(
                $crate::PermissionName, $crate::is_permission, "permission",
                $(#[$meta])* $vis $name = $value
            );
        )+
    };
}

/// Declares unit types that name scopes ([`ScopeName`]), for typed guards.
///
/// Each `Type = "scope"` becomes a `struct Type;` implementing [`ScopeName`]. A string that is
/// not one scope token ([`is_scope_token`]) fails to compile.
///
/// ```
/// sigil_verify::scope!(pub Profile = "profile"; ReportsRead = "reports:read");
/// use sigil_verify::ScopeName;
/// assert_eq!(ReportsRead::NAME, "reports:read");
/// ```
///
/// ```compile_fail
/// sigil_verify::scope!(Two = "read write");
/// ```
#[macro_export]
macro_rules! scope {
    ($($(#[$meta:meta])* $vis:vis $name:ident = $value:literal);+ $(;)?) => {
        $(
            $crate::__named!(
                $crate::ScopeName, $crate::is_scope_token, "scope",
                $(#[$meta])* $vis $name = $value
            );
        )+
    };
}

/// Declares unit types that name roles ([`RoleName`]), for typed guards.
///
/// Each `Type = "role"` becomes a `struct Type;` implementing [`RoleName`]. A string that is not
/// a role name ([`is_role_name`]) fails to compile.
///
/// ```
/// sigil_verify::role!(pub Admin = "admin");
/// use sigil_verify::RoleName;
/// assert_eq!(Admin::NAME, "admin");
/// ```
///
/// ```compile_fail
/// sigil_verify::role!(Padded = "admin ");
/// ```
#[macro_export]
macro_rules! role {
    ($($(#[$meta:meta])* $vis:vis $name:ident = $value:literal);+ $(;)?) => {
        $(
            $crate::__named!(
                $crate::RoleName, $crate::is_role_name, "role",
                $(#[$meta])* $vis $name = $value
            );
        )+
    };
}

/// The body of [`permission!`](crate::permission!), [`scope!`](crate::scope!) and
/// [`role!`](crate::role!).
#[doc(hidden)]
#[macro_export]
macro_rules! __named {
    ($trait:path, $check:path, $what:literal, $(#[$meta:meta])* $vis:vis $name:ident = $value:literal) => {
        #[doc = concat!("The ", $what, " `", $value, "`.")]
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        $vis struct $name;

        impl $trait for $name {
            const NAME: &'static str = {
                // The message cannot quote the value: it is a format string.
                assert!($check($value), concat!("not a valid ", $what));
                $value
            };
        }

        const _: &str = <$name as $trait>::NAME;
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_syntax_is_the_contracts() {
        for ok in [
            "a:b",
            "job:create",
            "job:*",
            "job:run:now",
            "admin:users:read",
            "a-b_c.d:e-f_g.h",
            "0:1",
            "x:**",
            "x:a*b",
        ] {
            assert!(is_permission(ok), "{ok}");
        }
        for bad in [
            "", "job", ":", "job:", ":job", "job::x", "*:x", "Job:x", "job:X", "job x:y", "job:y ",
            "jöb:x", "job/x:y", "job:x:", "*", "a:b\n",
        ] {
            assert!(!is_permission(bad), "{bad:?}");
        }
    }

    #[test]
    fn wildcard_grants_deeper_permissions_only() {
        let covers = |h, r| permission_covers(h, r);
        // Exact.
        assert!(covers("orders:read", "orders:read"));
        assert!(!covers("orders:read", "orders:write"));
        assert!(!covers("orders:read", "orders:read:all"));
        // The last-segment wildcard.
        assert!(covers("job:*", "job:create"));
        assert!(covers("job:*", "job:run:now"));
        assert!(covers("admin:*", "admin:users:read"));
        assert!(covers("admin:users:*", "admin:users:read"));
        assert!(!covers("admin:users:*", "admin:clients:read"));
        assert!(!covers("admin:users:*", "admin:users"));
        assert!(!covers("job:*", "job"));
        assert!(!covers("job:*", "jobs:create"));
        assert!(!covers("job:*", "jo:create"));
        assert!(!covers("job:*", "job:"));
        assert!(!covers("job:*", "job::x"));
        assert!(!covers("job:*", "job:Create"));
        // A required `*` is literal.
        assert!(covers("job:*", "job:*"));
        assert!(!covers("job:create", "job:*"));
        assert!(!covers("job:*", "job:*:x"));
        assert!(!covers("job:*:*", "job:*:x"));
        assert!(!covers("*:*", "x:y"));
        // `*` that is not the whole last segment is literal.
        assert!(!covers("job:*:read", "job:x:read"));
        assert!(!covers("job:r*", "job:run"));
        assert!(!covers("job:**", "job:x"));
        // Outside the syntax: literal only.
        assert!(covers("Job:*", "Job:*"));
        assert!(!covers("Job:*", "Job:x"));
        assert!(!covers("*", "job:x"));
        assert!(!covers(":*", "x:y"));
    }

    /// A segment: mostly valid, sometimes `*`, empty or outside the syntax.
    fn segment() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            6 => "[ab]{1,2}",
            1 => Just("*".to_owned()),
            1 => Just(String::new()),
            1 => Just("A".to_owned()),
        ]
    }

    /// A held permission (often ending in `:*`) and a required one that often extends it.
    fn pair() -> impl proptest::strategy::Strategy<Value = (String, String)> {
        use proptest::prelude::*;
        (
            prop::collection::vec(segment(), 1..4),
            any::<bool>(),
            prop_oneof![3 => Just(usize::MAX), 1 => 0usize..4],
            prop::collection::vec(segment(), 0..3),
        )
            .prop_map(|(base, wildcard, keep, extra)| {
                let mut held = base.join(":");
                if wildcard {
                    held.push_str(":*");
                }
                let keep = keep.min(base.len());
                let required = [&base[..keep], &extra[..]].concat().join(":");
                (held, required)
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 4096, ..proptest::prelude::ProptestConfig::default()
        })]

        /// `permission_covers` against the rule written over segments.
        #[test]
        fn wildcard_rule_over_segments((held, required) in pair()) {
            let h: Vec<&str> = held.split(':').collect();
            let r: Vec<&str> = required.split(':').collect();
            let expected = held == required
                || (is_permission(&held)
                    && is_permission(&required)
                    && !required.contains('*')
                    && h.last() == Some(&"*")
                    && r.len() >= h.len()
                    && r[..h.len() - 1] == h[..h.len() - 1]);
            proptest::prop_assert_eq!(permission_covers(&held, &required), expected);
        }
    }

    /// The generator above reaches wildcard grants often enough to mean something.
    #[test]
    fn pair_generator_reaches_wildcard_grants() {
        use proptest::strategy::{Strategy, ValueTree};
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let granted = (0..4096)
            .filter(|_| {
                let (h, r) = pair()
                    .new_tree(&mut runner)
                    .map(|t| t.current())
                    .unwrap_or_default();
                h != r && permission_covers(&h, &r)
            })
            .count();
        assert!(granted > 200, "{granted}");
    }

    #[test]
    fn scope_tokens() {
        for ok in [
            "a",
            "openid",
            "orders:read",
            "!#[]~",
            "https://api.example.com/x",
        ] {
            assert!(is_scope_token(ok), "{ok}");
        }
        for bad in ["", " ", "a b", "a\"", "a\\b", "é", "a\t", "\u{7f}"] {
            assert!(!is_scope_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn role_names_follow_the_servers_rule() {
        let hundred = "é".repeat(100);
        for ok in [
            "a",
            "admin",
            "Billing Service",
            "ops-é",
            hundred.as_str(),
            "a\u{a0}b",
        ] {
            assert!(is_role_name(ok), "{ok}");
        }
        let long = "a".repeat(101);
        for bad in [
            "",
            " a",
            "a ",
            "\ta",
            "a\u{a0}",
            "\u{3000}a",
            "a\u{2029}",
            "a\nb",
            "a\u{7f}",
            "a\u{85}b",
            "a\u{9f}",
            long.as_str(),
        ] {
            assert!(!is_role_name(bad), "{bad:?}");
        }
        // The hand-written UTF-8 and whitespace helpers agree with the standard library.
        for c in (0..0x11_0000).filter_map(char::from_u32) {
            let mut buf = [0; 4];
            let s = c.encode_utf8(&mut buf);
            assert_eq!(char_at(s.as_bytes(), 0), u32::from(c));
            assert_eq!(utf8_len(s.as_bytes()[0]), s.len());
            assert_eq!(
                is_unicode_whitespace(u32::from(c)),
                c.is_whitespace(),
                "{c:?}"
            );
            let expected = !c.is_control() && !c.is_whitespace();
            assert_eq!(is_role_name(s), expected, "{c:?}");
        }
    }
}
