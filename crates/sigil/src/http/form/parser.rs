//! The form and query-string parser itself: plain Rust over bytes, no actix and nothing else of
//! Sigil, so the fuzz target (`crates/sigil/fuzz`) builds it on its own. Linear in the input: at
//! most [`MAX_PARAMS`] parameters, names of at most [`MAX_KEY_LEN`] bytes, duplicates found with
//! a hash set.

use std::collections::HashSet;

use percent_encoding::percent_decode;

/// Why a form was refused (the `error_description` of an `invalid_request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormError(pub &'static str);

/// Parameters that may appear more than once.
const REPEATABLE: &[&str] = &["resource"];

/// The most parameters one form or query may carry. An authorization request has about 15
/// defined ones, a token request fewer; the rest is room for extensions.
pub const MAX_PARAMS: usize = 64;

/// The longest parameter name, in bytes after decoding (the longest defined one,
/// `client_assertion_type`, has 21).
pub const MAX_KEY_LEN: usize = 64;

/// A parsed form.
#[derive(Debug, Default)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    /// The single value of `name`; empty values count as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every parameter in the order sent, empty values included.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Every non-empty value of a repeatable parameter.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Parse a form body or query string.
pub fn parse(body: &[u8]) -> Result<Form, FormError> {
    let mut form = Form::default();
    let mut seen: HashSet<String> = HashSet::new();
    for part in body.split(|b| *b == b'&') {
        if part.is_empty() {
            continue;
        }
        if form.pairs.len() == MAX_PARAMS {
            return Err(FormError("the request has too many parameters"));
        }
        let (k, v) = match part.iter().position(|b| *b == b'=') {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &b""[..]),
        };
        // Encoded, a name is at most three times its decoded length.
        if k.len() > 3 * MAX_KEY_LEN {
            return Err(FormError("a parameter name is too long"));
        }
        let k = decode(k)?;
        if k.len() > MAX_KEY_LEN {
            return Err(FormError("a parameter name is too long"));
        }
        let v = decode(v)?;
        if !REPEATABLE.contains(&k.as_str()) && !seen.insert(k.clone()) {
            return Err(FormError("a parameter was sent more than once"));
        }
        form.pairs.push((k, v));
    }
    Ok(form)
}

/// Decode one form component: `+` is a space, `%XX` a byte; the result must be UTF-8.
pub fn decode(raw: &[u8]) -> Result<String, FormError> {
    let plus: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let bytes: Vec<u8> = percent_decode(&plus).collect();
    String::from_utf8(bytes).map_err(|_| FormError("the request is not valid UTF-8"))
}
