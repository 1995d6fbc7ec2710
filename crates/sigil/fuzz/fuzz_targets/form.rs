//! The form and query parser behind /token, /authorize, /revoke, /introspect and the login form:
//! never panics; whatever parses stays within the caps, has no repeated name (except the
//! repeatable `resource`), and parses again to the same pairs once re-encoded.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The parser as the server compiles it (`sigil::http::form` wraps it).
#[path = "../../src/http/form/parser.rs"]
mod form;

use form::{MAX_KEY_LEN, MAX_PARAMS};

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = form::parse(data) else {
        return;
    };
    let pairs: Vec<(&str, &str)> = parsed.iter().collect();
    assert!(pairs.len() <= MAX_PARAMS);
    let mut names = std::collections::HashSet::new();
    for (k, _) in &pairs {
        assert!(k.len() <= MAX_KEY_LEN);
        assert!(*k == "resource" || names.insert(*k), "repeated {k:?}");
    }
    let again = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let reparsed = form::parse(again.as_bytes()).expect("a re-encoded form parses");
    assert_eq!(reparsed.iter().collect::<Vec<_>>(), pairs);
});
