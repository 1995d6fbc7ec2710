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
#[derive(Debug, Default)]
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
    let mut de = serde_json::Deserializer::from_str(utf8(bytes, "header is not UTF-8")?);
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
#[derive(Debug)]
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
#[derive(Debug, Default)]
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
    pub(crate) tenant: Option<Field>,
    pub(crate) extra: Map<String, Value>,
}

/// Parses a JWT claims set strictly, without building an intermediate `Value` tree for it.
pub(crate) fn parse_claims(bytes: &[u8]) -> Result<RawClaims, Error> {
    let mut de = serde_json::Deserializer::from_str(utf8(bytes, "claims are not UTF-8")?);
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
