//! JSON Web Keys (RFC 7517) as Sigil publishes them, and strict JWKS parsing.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::algorithm::Algorithm;
use crate::b64;
use crate::error::Error;
use crate::json;
use crate::key::VerifyingKey;

/// A public JSON Web Key: RSA, EC P-256 or OKP Ed25519.
///
/// Members that are `None` are left out when serializing. The server publishes its keys with
/// this type and this crate verifies with it, so signer and verifier share one definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: `"RSA"`, `"EC"` or `"OKP"`.
    pub kty: String,
    /// Key id; Sigil uses the RFC 7638 thumbprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Public key use; must be `"sig"` when present.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// The one algorithm this key verifies (`RS256`, `PS256`, `ES256`, `EdDSA`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Curve: `"P-256"` (EC) or `"Ed25519"` (OKP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC x coordinate or OKP public key, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC y coordinate, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus, base64url big-endian without leading zeros.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url big-endian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

impl Jwk {
    fn finish(mut self) -> Jwk {
        self.kid = Some(self.thumbprint());
        self
    }

    /// A public RSA key from its big-endian modulus and exponent (leading zero bytes are
    /// stripped); `kty` RSA, `alg` as given (meant for `RS256` or `PS256`), `use` sig and
    /// `kid` the RFC 7638 thumbprint.
    ///
    /// Nothing is checked here; [`JwkSet::validate`] and the verifier refuse keys under
    /// 2048 bits or with an `alg` that is not an RSA algorithm.
    pub fn rsa(n: &[u8], e: &[u8], alg: Algorithm) -> Jwk {
        Jwk {
            kty: "RSA".into(),
            kid: None,
            use_: Some("sig".into()),
            alg: Some(alg.as_str().into()),
            crv: None,
            x: None,
            y: None,
            n: Some(b64::encode(strip_leading_zeros(n))),
            e: Some(b64::encode(strip_leading_zeros(e))),
        }
        .finish()
    }

    /// A P-256 key from its 32-byte affine coordinates; `kty` EC, `crv` P-256, `alg` ES256,
    /// `use` sig, `kid` the thumbprint.
    pub fn ec_p256(x: &[u8], y: &[u8]) -> Jwk {
        Jwk {
            kty: "EC".into(),
            kid: None,
            use_: Some("sig".into()),
            alg: Some("ES256".into()),
            crv: Some("P-256".into()),
            x: Some(b64::encode(x)),
            y: Some(b64::encode(y)),
            n: None,
            e: None,
        }
        .finish()
    }

    /// An Ed25519 key from its 32-byte public key; `kty` OKP, `crv` Ed25519, `alg` EdDSA,
    /// `use` sig, `kid` the thumbprint.
    pub fn ed25519(x: &[u8]) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            kid: None,
            use_: Some("sig".into()),
            alg: Some("EdDSA".into()),
            crv: Some("Ed25519".into()),
            x: Some(b64::encode(x)),
            y: None,
            n: None,
            e: None,
        }
        .finish()
    }

    /// The RFC 7638 JWK thumbprint (SHA-256), base64url without padding.
    ///
    /// Hashes the required members in lexicographic order: `e, kty, n` for RSA; `crv, kty, x,
    /// y` for EC; `crv, kty, x` for OKP (RFC 8037). A missing member hashes as an empty string;
    /// an unknown `kty` hashes as `{"kty":...}` alone.
    pub fn thumbprint(&self) -> String {
        fn s(v: &Option<String>) -> String {
            let v = v.as_deref().unwrap_or("");
            serde_json::to_string(v).unwrap_or_else(|_| String::from("\"\""))
        }
        let kty = serde_json::to_string(&self.kty).unwrap_or_else(|_| String::from("\"\""));
        let canonical = match self.kty.as_str() {
            "RSA" => format!(r#"{{"e":{},"kty":{kty},"n":{}}}"#, s(&self.e), s(&self.n)),
            "EC" => format!(
                r#"{{"crv":{},"kty":{kty},"x":{},"y":{}}}"#,
                s(&self.crv),
                s(&self.x),
                s(&self.y)
            ),
            "OKP" => format!(
                r#"{{"crv":{},"kty":{kty},"x":{}}}"#,
                s(&self.crv),
                s(&self.x)
            ),
            _ => format!(r#"{{"kty":{kty}}}"#),
        };
        b64::encode(&crate::backend::sha256(canonical.as_bytes()))
    }
}

/// A JWK Set (RFC 7517 §5).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<Jwk>,
}

/// Private-key members: a JWKS carrying any of them is refused outright.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "k", "oth"];

fn opt_string(obj: &Map<String, Value>, name: &'static str) -> Result<Option<String>, Error> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::invalid_key(format!("`{name}` is not a string"))),
    }
}

impl JwkSet {
    /// Parses and validates a JWKS strictly. Refused, as [`ErrorKind::InvalidKey`] or
    /// [`ErrorKind::Malformed`]:
    /// duplicate JSON member names at any depth; private members (`d`, `p`, `q`, `dp`, `dq`,
    /// `qi`, `k`, `oth`); symmetric or unknown key types; `use` other than `sig`; `key_ops`
    /// without `verify`; an `alg`, `kty` and `crv` that do not agree or name an algorithm this
    /// crate does not verify; RSA moduli under 2048 or over 8192 bits, bad exponents, ROCA-weak
    /// moduli; EC points not on P-256; duplicate `kid`s.
    ///
    /// [`ErrorKind::InvalidKey`]: crate::ErrorKind::InvalidKey
    /// [`ErrorKind::Malformed`]: crate::ErrorKind::Malformed
    ///
    /// ```
    /// let set = sigil_verify::JwkSet::from_json(br#"{"keys":[{"kty":"OKP","crv":"Ed25519",
    ///     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","alg":"EdDSA","use":"sig","kid":"a"}]}"#)?;
    /// assert_eq!(set.keys.len(), 1);
    /// assert!(sigil_verify::JwkSet::from_json(br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).is_err());
    /// # Ok::<(), sigil_verify::Error>(())
    /// ```
    pub fn from_json(bytes: &[u8]) -> Result<JwkSet, Error> {
        let mut top = json::parse_object(bytes, "JWKS is not a JSON object")?;
        let keys = match top.remove("keys") {
            Some(Value::Array(keys)) => keys,
            _ => return Err(Error::malformed("JWKS has no `keys` array")),
        };
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let Value::Object(obj) = key else {
                return Err(Error::invalid_key("a JWKS entry is not an object"));
            };
            if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| obj.contains_key(**m)) {
                return Err(Error::invalid_key(format!(
                    "private member `{m}` in a public key set"
                )));
            }
            match obj.get("key_ops") {
                None => {}
                Some(Value::Array(ops)) if ops.iter().any(|o| o == "verify") => {}
                Some(_) => return Err(Error::invalid_key("`key_ops` does not allow `verify`")),
            }
            let kty = opt_string(&obj, "kty")?.ok_or_else(|| Error::invalid_key("no `kty`"))?;
            out.push(Jwk {
                kty,
                kid: opt_string(&obj, "kid")?,
                use_: opt_string(&obj, "use")?,
                alg: opt_string(&obj, "alg")?,
                crv: opt_string(&obj, "crv")?,
                x: opt_string(&obj, "x")?,
                y: opt_string(&obj, "y")?,
                n: opt_string(&obj, "n")?,
                e: opt_string(&obj, "e")?,
            });
        }
        let set = JwkSet { keys: out };
        set.validate()?;
        Ok(set)
    }

    /// Checks every key as the verifier will use it (see [`JwkSet::from_json`]) and that no
    /// two keys share a `kid`.
    pub fn validate(&self) -> Result<(), Error> {
        self.prepare().map(|_| ())
    }

    pub(crate) fn prepare(&self) -> Result<Vec<VerifyingKey>, Error> {
        let mut out: Vec<VerifyingKey> = Vec::with_capacity(self.keys.len());
        for jwk in &self.keys {
            let key = VerifyingKey::from_jwk(jwk)?;
            if let Some(kid) = key.kid() {
                if out.iter().any(|k| k.kid() == Some(kid)) {
                    return Err(Error::invalid_key(format!("duplicate kid `{kid}`")));
                }
            }
            out.push(key);
        }
        Ok(out)
    }

    /// Parses one or more PEM `PUBLIC KEY` (SPKI) or `RSA PUBLIC KEY` (PKCS#1) blocks into a
    /// set. RSA keys get no `alg` (they then verify RS256 or PS256, as the header says);
    /// EC P-256 keys get ES256 and Ed25519 keys EdDSA. Every `kid` is the RFC 7638 thumbprint,
    /// which is what Sigil uses. Private-key blocks are refused.
    pub fn from_pem(pem: &str) -> Result<JwkSet, Error> {
        let keys = crate::pem::parse_public_keys(pem)?;
        let set = JwkSet { keys };
        set.validate()?;
        Ok(set)
    }

    /// The key with this `kid`, if any.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }
}
