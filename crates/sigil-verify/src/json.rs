//! Strict JSON: duplicate member names are an error at every depth (serde_json alone keeps the
//! last one), trailing characters other than JSON whitespace are an error, and the top level
//! must be an object.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::Error;

/// Parses `bytes` as one JSON object, rejecting duplicate member names anywhere.
pub(crate) fn parse_object(bytes: &[u8], what: &'static str) -> Result<Map<String, Value>, Error> {
    let mut de = serde_json::Deserializer::from_str(utf8(bytes, what)?);
    let value = StrictValue
        .deserialize(&mut de)
        .map_err(|_| Error::malformed(what))?;
    de.end().map_err(|_| Error::malformed(what))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(Error::malformed(what)),
    }
}

/// Validates UTF-8 once for the whole text (fast), so the JSON reader need not do it per string.
fn utf8<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a str, Error> {
    std::str::from_utf8(bytes).map_err(|_| Error::malformed(what))
}

/// A `DeserializeSeed` producing a `serde_json::Value` but refusing duplicate member names.
#[derive(Clone, Copy)]
pub(crate) struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictValue)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom("duplicate member name"));
            }
            let value = map.next_value_seed(StrictValue)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// A string borrowed from the input when it has no escapes.
struct Str<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Str<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The JOSE header members the verifier looks at; everything else is checked for duplicates
/// and ignored, except the refused members recorded in `refused`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Header<'a> {
    pub(crate) alg: Option<Cow<'a, str>>,
    pub(crate) kid: Option<Cow<'a, str>>,
    pub(crate) typ: Option<Cow<'a, str>>,
    /// The first refused member (embedded/remote keys, `crit`, `b64`, JWE members).
    pub(crate) refused: Option<&'static str>,
}

/// Members whose mere presence makes the token unacceptable.
const REFUSED: [&str; 8] = ["jwk", "jku", "x5u", "x5c", "crit", "b64", "enc", "zip"];

/// Parses a JOSE header strictly. Allocates only for escaped strings or unknown members.
pub(crate) fn parse_header(bytes: &[u8]) -> Result<Header<'_>, Error> {
    let text = utf8(bytes, "header is not UTF-8")?;
    match fast::header(text) {
        Some(header) => Ok(header),
        None => header_serde(text),
    }
}

/// The general path of [`parse_header`]: any JSON, every rule.
fn header_serde(text: &str) -> Result<Header<'_>, Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let header = (&mut de)
        .deserialize_map(HeaderVisitor)
        .map_err(|_| Error::malformed("header is not a JSON object without duplicate members"))?;
    de.end()
        .map_err(|_| Error::malformed("trailing characters after header"))?;
    Ok(header)
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = Header<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JOSE header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header<'de>, A::Error> {
        let mut h = Header::default();
        // Unknown members, kept only to detect duplicates among them.
        let mut others: Vec<Cow<'de, str>> = Vec::new();
        let mut seen_typ = false;
        let mut seen_kid = false;
        while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
            match key.as_ref() {
                "alg" => {
                    if h.alg.is_some() {
                        return Err(de::Error::custom("duplicate alg"));
                    }
                    h.alg = Some(map.next_value::<Str<'de>>()?.0);
                }
                "kid" => {
                    if seen_kid {
                        return Err(de::Error::custom("duplicate kid"));
                    }
                    seen_kid = true;
                    h.kid = Some(map.next_value::<Str<'de>>()?.0);
                }
                "typ" => {
                    if seen_typ {
                        return Err(de::Error::custom("duplicate typ"));
                    }
                    seen_typ = true;
                    h.typ = Some(map.next_value::<Str<'de>>()?.0);
                }
                other => {
                    if others.iter().any(|k| k == other) {
                        return Err(de::Error::custom("duplicate member"));
                    }
                    if h.refused.is_none() {
                        h.refused = REFUSED.iter().find(|r| **r == other).copied();
                    }
                    map.next_value_seed(StrictValue)?;
                    others.push(key);
                }
            }
        }
        Ok(h)
    }
}

/// A registered claim's value, typed as far as the claim rules need.
#[derive(Debug, PartialEq)]
pub(crate) enum Field {
    /// A JSON string.
    Str(String),
    /// A JSON integer that fits in `i64`.
    Int(i64),
    /// A JSON array of strings only (possibly empty).
    StrList(Vec<String>),
    /// Anything else (null, bool, float, big integer, object, mixed array).
    Other(Value),
}

#[derive(Clone, Copy)]
struct FieldSeed;

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = Field;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Field, D::Error> {
        d.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Field, E> {
        Ok(Field::Other(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Field, E> {
        Ok(Field::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Field, E> {
        Ok(i64::try_from(v).map_or(Field::Other(Value::from(v)), Field::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Field, E> {
        StrictVisitor.visit_f64(v).map(Field::Other)
    }

    fn visit_str<E>(self, v: &str) -> Result<Field, E> {
        Ok(Field::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Field, E> {
        Ok(Field::Str(v))
    }

    fn visit_unit<E>(self) -> Result<Field, E> {
        Ok(Field::Other(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Field, E> {
        Ok(Field::Other(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field, A::Error> {
        let mut strings = Vec::new();
        let mut mixed: Option<Vec<Value>> = None;
        while let Some(v) = seq.next_element_seed(StrictValue)? {
            match (v, &mut mixed) {
                (Value::String(s), None) => strings.push(s),
                (v, Some(all)) => all.push(v),
                (v, None) => {
                    let mut all: Vec<Value> = strings.drain(..).map(Value::String).collect();
                    all.push(v);
                    mixed = Some(all);
                }
            }
        }
        Ok(match mixed {
            Some(all) => Field::Other(Value::Array(all)),
            None => Field::StrList(strings),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Field, A::Error> {
        StrictVisitor.visit_map(map).map(Field::Other)
    }
}

/// A claims set read in one pass: registered members kept apart (typed as far as the claim
/// rules need), everything else in `extra`. Duplicates are an error.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct RawClaims {
    pub(crate) iss: Option<Field>,
    pub(crate) sub: Option<Field>,
    pub(crate) aud: Option<Field>,
    pub(crate) exp: Option<Field>,
    pub(crate) iat: Option<Field>,
    pub(crate) nbf: Option<Field>,
    pub(crate) jti: Option<Field>,
    pub(crate) client_id: Option<Field>,
    pub(crate) scope: Option<Field>,
    pub(crate) roles: Option<Field>,
    pub(crate) permissions: Option<Field>,
    pub(crate) tenant: Option<Field>,
    pub(crate) extra: Map<String, Value>,
}

/// Parses a JWT claims set strictly, without building an intermediate `Value` tree for it.
pub(crate) fn parse_claims(bytes: &[u8]) -> Result<RawClaims, Error> {
    let text = utf8(bytes, "claims are not UTF-8")?;
    match fast::claims(text) {
        Some(claims) => Ok(claims),
        None => claims_serde(text),
    }
}

/// The general path of [`parse_claims`]: any JSON, every rule.
fn claims_serde(text: &str) -> Result<RawClaims, Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let claims = (&mut de)
        .deserialize_map(ClaimsVisitor)
        .map_err(|_| Error::malformed("claims are not a JSON object without duplicate members"))?;
    de.end()
        .map_err(|_| Error::malformed("trailing characters after claims"))?;
    Ok(claims)
}

struct ClaimsVisitor;

impl<'de> Visitor<'de> for ClaimsVisitor {
    type Value = RawClaims;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWT claims set")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawClaims, A::Error> {
        let mut c = RawClaims::default();
        while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
            let slot = match key.as_ref() {
                "iss" => &mut c.iss,
                "sub" => &mut c.sub,
                "aud" => &mut c.aud,
                "exp" => &mut c.exp,
                "iat" => &mut c.iat,
                "nbf" => &mut c.nbf,
                "jti" => &mut c.jti,
                "client_id" => &mut c.client_id,
                "scope" => &mut c.scope,
                "roles" => &mut c.roles,
                "permissions" => &mut c.permissions,
                "tenant" => &mut c.tenant,
                _ => {
                    let key = key.into_owned();
                    if c.extra.contains_key(&key) {
                        return Err(de::Error::custom("duplicate member name"));
                    }
                    let value = map.next_value_seed(StrictValue)?;
                    c.extra.insert(key, value);
                    continue;
                }
            };
            if slot.is_some() {
                return Err(de::Error::custom("duplicate member name"));
            }
            *slot = Some(map.next_value_seed(FieldSeed)?);
        }
        Ok(c)
    }
}

/// A fast path for the plain shape every Sigil token has: one flat object whose member names
/// have no escapes and whose values are strings without escapes, integers from 0 to
/// 10^18 - 1, `true`, `false`, `null` or arrays of such strings.
///
/// It accepts a *subset* of what the serde path accepts and builds exactly the value that path
/// would build; on anything else (escapes, control characters, other numbers, nested objects,
/// mixed arrays, duplicates, refused or unknown header members, malformed text, trailing
/// characters) it returns `None` and the caller parses the text again with the serde path,
/// which then accepts or refuses it as before. So every rule stays where it was, and the unit
/// tests below check the two paths against each other.
mod fast {
    use std::borrow::Cow;

    use serde_json::Value;

    use super::{Field, Header, RawClaims};

    /// Whether a byte ends the fast scan of a string: the closing quote, a backslash (escapes
    /// are left to serde_json) or a control character, which JSON forbids unescaped.
    fn is_stop(b: u8) -> bool {
        b < 0x20 || b == b'"' || b == b'\\'
    }

    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;

    /// Eight bytes at a time: masks whose lowest set bits are the high bits of the first quote
    /// and of the first other stop byte of `x` (little-endian), or 0. (The borrow in these
    /// tests can flag bytes *after* a real match of the same test, never before one.)
    fn stop_masks(x: u64) -> (u64, u64) {
        let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGHS;
        (
            zero(x ^ (ONES * u64::from(b'"'))),
            zero(x ^ (ONES * u64::from(b'\\'))) | control,
        )
    }

    /// Index of the first stop byte of `bytes`, and whether it is a quote.
    pub(super) fn stop_index(bytes: &[u8]) -> Option<(usize, bool)> {
        let mut chunks = bytes.chunks_exact(8);
        let mut at = 0;
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let (quote, other) = stop_masks(u64::from_le_bytes(word));
            if quote | other != 0 {
                let (q, o) = (quote.trailing_zeros(), other.trailing_zeros());
                return Some((at + (q.min(o) / 8) as usize, q < o));
            }
            at += 8;
        }
        let rest = chunks.remainder();
        let i = rest.iter().position(|b| is_stop(*b))?;
        Some((at + i, rest.get(i) == Some(&b'"')))
    }

    struct Cursor<'a> {
        text: &'a str,
        i: usize,
    }

    impl<'a> Cursor<'a> {
        fn peek(&self) -> Option<u8> {
            self.text.as_bytes().get(self.i).copied()
        }

        /// JSON whitespace: space, tab, line feed, carriage return.
        fn ws(&mut self) {
            while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
                self.i += 1;
            }
        }

        fn eat(&mut self, c: u8) -> Option<()> {
            (self.peek() == Some(c)).then(|| self.i += 1)
        }

        /// A string without escapes or control characters, the cursor on its opening quote.
        fn str(&mut self) -> Option<&'a str> {
            self.eat(b'"')?;
            let start = self.i;
            let (len, quote) = stop_index(self.text.as_bytes().get(start..)?)?;
            if !quote {
                return None;
            }
            self.i = start + len + 1;
            // Both ends sit next to an ASCII quote, so this slice is on character boundaries.
            self.text.get(start..start + len)
        }

        /// A non-negative integer of at most 18 digits (so it fits in `i64`), without leading
        /// zeros, fraction or exponent. serde_json reads `-0` as a float and long integers as
        /// `u64` or `f64`: those are left to it.
        fn int(&mut self) -> Option<i64> {
            let bytes = self.text.as_bytes().get(self.i..)?;
            let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 || digits > 18 || (digits > 1 && bytes.first() == Some(&b'0')) {
                return None;
            }
            if let Some(b'.' | b'e' | b'E') = bytes.get(digits) {
                return None;
            }
            let value = bytes
                .get(..digits)?
                .iter()
                .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0'));
            self.i += digits;
            Some(value)
        }

        /// `true`, `false` or `null`.
        fn literal(&mut self) -> Option<Value> {
            let rest = self.text.as_bytes().get(self.i..)?;
            let (value, len) = if rest.starts_with(b"true") {
                (Value::Bool(true), 4)
            } else if rest.starts_with(b"false") {
                (Value::Bool(false), 5)
            } else if rest.starts_with(b"null") {
                (Value::Null, 4)
            } else {
                return None;
            };
            self.i += len;
            Some(value)
        }

        /// An array of plain strings (possibly empty), the cursor on `[`; `item` wraps each.
        fn str_list<T>(&mut self, item: impl Fn(String) -> T) -> Option<Vec<T>> {
            self.eat(b'[')?;
            self.ws();
            let mut out = Vec::new();
            if self.eat(b']').is_some() {
                return Some(out);
            }
            loop {
                out.push(item(self.str()?.to_owned()));
                self.ws();
                match self.peek()? {
                    b',' => {
                        self.i += 1;
                        self.ws();
                    }
                    b']' => {
                        self.i += 1;
                        return Some(out);
                    }
                    _ => return None,
                }
            }
        }

        /// A registered claim's value, typed as `FieldVisitor` types it.
        fn field(&mut self) -> Option<Field> {
            match self.peek()? {
                b'"' => Some(Field::Str(self.str()?.to_owned())),
                b'0'..=b'9' => Some(Field::Int(self.int()?)),
                b'[' => Some(Field::StrList(self.str_list(|s| s)?)),
                _ => Some(Field::Other(self.literal()?)),
            }
        }

        /// Any other member's value, as `StrictVisitor` builds it.
        fn value(&mut self) -> Option<Value> {
            match self.peek()? {
                b'"' => Some(Value::String(self.str()?.to_owned())),
                // serde_json hands non-negative integers to `visit_u64`.
                b'0'..=b'9' => Some(Value::from(self.int()?.unsigned_abs())),
                b'[' => Some(Value::Array(self.str_list(Value::String)?)),
                _ => self.literal(),
            }
        }

        /// After a member: `true` at `}`, `false` at `,`, the cursor then at the next token.
        fn member_end(&mut self) -> Option<bool> {
            self.ws();
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    self.ws();
                    Some(false)
                }
                b'}' => {
                    self.i += 1;
                    Some(true)
                }
                _ => None,
            }
        }

        /// `{` and, for a non-empty object, the first member name's position; `true` if the
        /// object is empty (and already closed).
        fn open(&mut self) -> Option<bool> {
            self.ws();
            self.eat(b'{')?;
            self.ws();
            Some(self.eat(b'}').is_some())
        }

        /// A member name and its colon, the cursor then on the value.
        fn name(&mut self) -> Option<&'a str> {
            let name = self.str()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            Some(name)
        }

        /// Only whitespace left.
        fn finish(mut self) -> Option<()> {
            self.ws();
            (self.i == self.text.len()).then_some(())
        }
    }

    /// A header with members among `alg`, `kid` and `typ` only, each a plain string.
    pub(super) fn header(text: &str) -> Option<Header<'_>> {
        let mut c = Cursor { text, i: 0 };
        let mut h = Header::default();
        let mut done = c.open()?;
        while !done {
            // Byte patterns compile to a few integer compares instead of one memcmp per arm.
            let slot = match c.name()?.as_bytes() {
                [b'a', b'l', b'g'] => &mut h.alg,
                [b'k', b'i', b'd'] => &mut h.kid,
                [b't', b'y', b'p'] => &mut h.typ,
                _ => return None,
            };
            if slot.is_some() {
                return None;
            }
            *slot = Some(Cow::Borrowed(c.str()?));
            done = c.member_end()?;
        }
        c.finish()?;
        Some(h)
    }

    /// A claims set of plain members.
    pub(super) fn claims(text: &str) -> Option<RawClaims> {
        let mut c = Cursor { text, i: 0 };
        let mut r = RawClaims::default();
        let mut done = c.open()?;
        while !done {
            let name = c.name()?;
            let slot = match name.as_bytes() {
                [b'i', b's', b's'] => &mut r.iss,
                [b's', b'u', b'b'] => &mut r.sub,
                [b'a', b'u', b'd'] => &mut r.aud,
                [b'e', b'x', b'p'] => &mut r.exp,
                [b'i', b'a', b't'] => &mut r.iat,
                [b'n', b'b', b'f'] => &mut r.nbf,
                [b'j', b't', b'i'] => &mut r.jti,
                [b'c', b'l', b'i', b'e', b'n', b't', b'_', b'i', b'd'] => &mut r.client_id,
                [b's', b'c', b'o', b'p', b'e'] => &mut r.scope,
                [b'r', b'o', b'l', b'e', b's'] => &mut r.roles,
                b"permissions" => &mut r.permissions,
                [b't', b'e', b'n', b'a', b'n', b't'] => &mut r.tenant,
                _ => {
                    if r.extra.contains_key(name) {
                        return None;
                    }
                    let value = c.value()?;
                    r.extra.insert(name.to_owned(), value);
                    done = c.member_end()?;
                    continue;
                }
            };
            if slot.is_some() {
                return None;
            }
            *slot = Some(c.field()?);
            done = c.member_end()?;
        }
        c.finish()?;
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use proptest::prelude::*;

    use super::{claims_serde, fast, header_serde, parse_claims, parse_header};

    /// Member names: registered claims, header members, refused members, others, and names
    /// that only equal those after unescaping.
    const NAMES: &[&str] = &[
        r#""iss""#,
        r#""sub""#,
        r#""aud""#,
        r#""exp""#,
        r#""iat""#,
        r#""nbf""#,
        r#""jti""#,
        r#""client_id""#,
        r#""scope""#,
        r#""roles""#,
        r#""tenant""#,
        r#""alg""#,
        r#""kid""#,
        r#""typ""#,
        r#""crit""#,
        r#""jwk""#,
        r#""permissions""#,
        r#""x""#,
        r#""""#,
        r#""\u0069ss""#,
        r#""al\u0067""#,
        r#""x\"y""#,
        "\"é\"",
        "\"\u{1}\"",
        "\"\u{7f}\"",
    ];

    /// Values the fast path takes.
    const PLAIN: &[&str] = &[
        r#""a""#,
        r#""""#,
        r#""RS256""#,
        r#""at+jwt""#,
        r#""https://id.example.com""#,
        "\"é€𝄞\"",
        "0",
        "7",
        "1700000000",
        "999999999999999999",
        "true",
        "false",
        "null",
        "[]",
        "[ ]",
        r#"["a"]"#,
        r#"["a","b"]"#,
        r#"[ "a" , "b" ]"#,
    ];

    /// Values: everything the fast path takes, and much that it must leave to serde_json.
    const VALUES: &[&str] = &[
        r#""a""#,
        r#""""#,
        r#""RS256""#,
        r#""at+jwt""#,
        r#""https://id.example.com""#,
        r#""a\nb""#,
        r#""\u00e9""#,
        r#""\ud800""#,
        r#""\uDBFF\uDFFF""#,
        "\"tab\tin\"",
        "\"nul\u{0}\"",
        "\"é€𝄞\"",
        "\"\u{feff}\"",
        "0",
        "7",
        "1700000000",
        "-1",
        "-0",
        "00",
        "01",
        "1.0",
        "1e3",
        "1E3",
        "1.5e-3",
        "999999999999999999",
        "1000000000000000000",
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551616",
        "true",
        "false",
        "null",
        "tru",
        "nul",
        "True",
        "[]",
        "[ ]",
        r#"["a"]"#,
        r#"["a","b"]"#,
        r#"[ "a" , "b" ]"#,
        r#"["a",]"#,
        r#"["a",1]"#,
        r#"[1,"a"]"#,
        r#"[["a"]]"#,
        r#"["a\"b"]"#,
        "{}",
        r#"{"a":1}"#,
        r#"{"a":1,"a":2}"#,
        r#"["#,
        r#"""#,
        "NaN",
        "+1",
    ];

    /// Whitespace, JSON's and otherwise.
    const SPACE: &[&str] = &[
        "", "", "", "", "", "", " ", "\t", "\n", "\r", "  ", "\u{a0}", "\u{feff}",
    ];

    /// Random members with random whitespace; the names repeat often, so duplicates are common.
    fn object() -> impl Strategy<Value = String> {
        let value = prop_oneof![
            4 => prop::sample::select(PLAIN),
            1 => prop::sample::select(VALUES),
        ];
        let member = (
            prop::sample::select(NAMES),
            value,
            prop::array::uniform4(prop::sample::select(SPACE)),
        )
            .prop_map(|(n, v, w)| format!("{}{n}{}:{}{v}{}", w[0], w[1], w[2], w[3]));
        (
            prop::collection::vec(member, 0..6),
            prop::array::uniform3(prop::sample::select(SPACE)),
            prop::sample::select(&[",", ",", ",", ",", ",", ",", ",", ",", ", ", ";", ""][..]),
        )
            .prop_map(|(members, w, sep)| format!("{}{{{}}}{}", w[0], members.join(sep), w[2]))
    }

    /// An object, then maybe cut short, with something inserted, or with something after it.
    fn text() -> impl Strategy<Value = String> {
        (
            object(),
            0usize..6,
            any::<prop::sample::Index>(),
            prop::sample::select(
                &[
                    "}", "{", "]", ",", ":", "\"", "\\", "x", "0", " ", "}}", "\u{0}",
                ][..],
            ),
        )
            .prop_map(|(o, how, at, piece)| {
                let mut cut = at.index(o.len() + 1);
                while !o.is_char_boundary(cut) {
                    cut -= 1;
                }
                match how {
                    0 => o[..cut].to_owned(),
                    1 => format!("{}{piece}{}", &o[..cut], &o[cut..]),
                    2 => format!("{o}{piece}"),
                    _ => o,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

        /// Whatever the fast path accepts, serde_json accepts too, with the same result.
        #[test]
        fn fast_claims_agree_with_serde(t in text()) {
            if let Some(fast) = fast::claims(&t) {
                prop_assert_eq!(Some(fast), claims_serde(&t).ok(), "{:?}", t);
            }
        }

        #[test]
        fn fast_header_agrees_with_serde(t in text()) {
            if let Some(fast) = fast::header(&t) {
                let serde = header_serde(&t).ok();
                prop_assert!(serde.as_ref().is_some_and(|h| h.refused.is_none()), "{:?}", t);
                prop_assert_eq!(Some(fast), serde, "{:?}", t);
            }
        }

        /// Same on arbitrary text.
        #[test]
        fn fast_paths_agree_with_serde_on_any_text(t in "[ -~\t\n\r\u{0}-\u{1f}é]{0,40}") {
            if let Some(fast) = fast::claims(&t) {
                prop_assert_eq!(Some(fast), claims_serde(&t).ok(), "{:?}", t);
            }
            if let Some(fast) = fast::header(&t) {
                prop_assert_eq!(Some(fast), header_serde(&t).ok(), "{:?}", t);
            }
        }
    }

    /// The generators above reach both outcomes of the fast path often enough to mean
    /// something.
    #[test]
    fn generators_exercise_both_paths() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let (mut fast_ok, mut serde_only, mut fast_header) = (0, 0, 0);
        for _ in 0..5_000 {
            let t = text().new_tree(&mut runner).unwrap().current();
            match (fast::claims(&t).is_some(), claims_serde(&t).is_ok()) {
                (true, _) => fast_ok += 1,
                (false, true) => serde_only += 1,
                (false, false) => {}
            }
            fast_header += usize::from(fast::header(&t).is_some());
        }
        println!("fast path {fast_ok}, serde only {serde_only}, fast header {fast_header}");
        assert!(fast_ok > 500, "{fast_ok}");
        assert!(serde_only > 40, "{serde_only}");
        assert!(fast_header > 100, "{fast_header}");
    }

    /// The word-at-a-time scan finds the same first stop byte as a plain one.
    #[test]
    fn stop_index_matches_a_plain_scan() {
        let plain = |b: &[u8]| {
            b.iter()
                .position(|&c| c < 0x20 || c == b'"' || c == b'\\')
                .map(|i| (i, b[i] == b'"'))
        };
        let mut runner = proptest::test_runner::TestRunner::default();
        let bytes = prop::collection::vec(
            prop_oneof![
                4 => 0x20u8..0x7f,
                1 => any::<u8>(),
                1 => prop::sample::select(&[b'"', b'\\', 0, 0x1f, 0x20, 0x21, 0x5b, 0x5d, 0x80, 0xff][..]),
            ],
            0..40,
        );
        runner
            .run(&bytes, |b| {
                prop_assert_eq!(fast::stop_index(&b), plain(&b));
                Ok(())
            })
            .unwrap();
        for i in 0..=255u8 {
            for at in 0..17 {
                let mut b = vec![b'a'; 17];
                b[at] = i;
                assert_eq!(fast::stop_index(&b), plain(&b), "{i} at {at}");
            }
        }
    }

    /// Tokens as Sigil issues them take the fast path.
    #[test]
    fn sigil_tokens_take_the_fast_path() {
        let h = br#"{"alg":"ES256","kid":"k-1","typ":"at+jwt"}"#;
        assert!(fast::header(std::str::from_utf8(h).unwrap()).is_some());
        assert_eq!(parse_header(h).unwrap().alg.as_deref(), Some("ES256"));
        let c = r#"{"iss":"https://id.example.com","sub":"user-1","aud":"https://api.example.com",
            "exp":1700000600,"iat":1699999990,"jti":"j-1","client_id":"client-1",
            "scope":"read write","roles":["admin"],"permissions":["orders:read"],"x":true}"#;
        let fast = fast::claims(c).unwrap();
        assert_eq!(fast, parse_claims(c.as_bytes()).unwrap());
        assert_eq!(fast, claims_serde(c).unwrap());
        assert_eq!(fast.extra.len(), 1);
    }
}
