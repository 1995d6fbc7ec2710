//! PEM public keys: SPKI (`PUBLIC KEY`) for RSA, P-256 and Ed25519, and PKCS#1
//! (`RSA PUBLIC KEY`). A minimal DER reader with bounds checks; no crypto happens here.

use crate::algorithm::Algorithm;
use crate::error::Error;
use crate::jwk::Jwk;

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

fn bad(what: &str) -> Error {
    Error::invalid_key(format!("PEM: {what}"))
}

/// A cursor over DER bytes.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    /// Reads one TLV with the expected tag and returns its contents.
    fn read(&mut self, tag: u8) -> Result<&'a [u8], Error> {
        let (&t, rest) = self.0.split_first().ok_or_else(|| bad("truncated DER"))?;
        if t != tag {
            return Err(bad("unexpected DER tag"));
        }
        let (&l0, mut rest) = rest.split_first().ok_or_else(|| bad("truncated DER"))?;
        let len = if l0 < 0x80 {
            usize::from(l0)
        } else {
            let count = usize::from(l0 & 0x7f);
            if count == 0 || count > 3 || rest.len() < count {
                return Err(bad("bad DER length"));
            }
            let (len_bytes, r) = rest.split_at(count);
            rest = r;
            let len = len_bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            if len < 0x80 || len_bytes[0] == 0 {
                return Err(bad("non-minimal DER length"));
            }
            len
        };
        if rest.len() < len {
            return Err(bad("truncated DER"));
        }
        let (content, rest) = rest.split_at(len);
        self.0 = rest;
        Ok(content)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn finish(&self) -> Result<(), Error> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(bad("trailing DER bytes"))
        }
    }
}

/// A DER INTEGER's magnitude, which must be positive.
fn positive_integer(bytes: &[u8]) -> Result<&[u8], Error> {
    match bytes {
        [] => Err(bad("empty INTEGER")),
        [b, ..] if b & 0x80 != 0 => Err(bad("negative INTEGER")),
        [0, rest @ ..] => Ok(rest),
        _ => Ok(bytes),
    }
}

fn rsa_public_key(der: &[u8]) -> Result<Jwk, Error> {
    let mut outer = Der(der);
    let mut seq = Der(outer.read(0x30)?);
    outer.finish()?;
    let n = positive_integer(seq.read(0x02)?)?;
    let e = positive_integer(seq.read(0x02)?)?;
    seq.finish()?;
    let mut jwk = Jwk::rsa(n, e, Algorithm::RS256);
    // PEM says nothing about padding: the key verifies RS256 or PS256, as the header says.
    jwk.alg = None;
    Ok(jwk)
}

fn spki(der: &[u8]) -> Result<Jwk, Error> {
    let mut outer = Der(der);
    let mut seq = Der(outer.read(0x30)?);
    outer.finish()?;
    let mut alg_id = Der(seq.read(0x30)?);
    let bits = seq.read(0x03)?;
    seq.finish()?;
    let key = match bits.split_first() {
        Some((0, key)) => key,
        _ => return Err(bad("BIT STRING with unused bits")),
    };
    let oid = alg_id.read(0x06)?;
    if oid == OID_RSA {
        if !alg_id.is_empty() {
            alg_id.read(0x05)?;
            alg_id.finish()?;
        }
        rsa_public_key(key)
    } else if oid == OID_EC {
        if alg_id.read(0x06)? != OID_P256 {
            return Err(bad("EC curve other than P-256"));
        }
        alg_id.finish()?;
        match key {
            [4, rest @ ..] if rest.len() == 64 => Ok(Jwk::ec_p256(&rest[..32], &rest[32..])),
            _ => Err(bad("P-256 key is not an uncompressed point")),
        }
    } else if oid == OID_ED25519 {
        alg_id.finish()?;
        if key.len() != 32 {
            return Err(bad("Ed25519 key is not 32 bytes"));
        }
        Ok(Jwk::ed25519(key))
    } else {
        Err(bad("unsupported key algorithm"))
    }
}

/// Every public key block in `text`; anything labelled PRIVATE is refused.
pub(crate) fn parse_public_keys(text: &str) -> Result<Vec<Jwk>, Error> {
    let mut keys = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        if label.contains("PRIVATE") {
            return Err(bad("private key block; export only public keys"));
        }
        let end = format!("-----END {label}-----");
        let mut b64 = String::new();
        let mut closed = false;
        for l in lines.by_ref() {
            if l == end {
                closed = true;
                break;
            }
            b64.push_str(l);
        }
        if !closed {
            return Err(bad("unterminated block"));
        }
        let der = crate::b64::decode_standard(b64.as_bytes()).ok_or_else(|| bad("bad base64"))?;
        let jwk = match label {
            "PUBLIC KEY" => spki(&der)?,
            "RSA PUBLIC KEY" => rsa_public_key(&der)?,
            _ => continue,
        };
        keys.push(jwk);
    }
    if keys.is_empty() {
        return Err(bad("no PUBLIC KEY block"));
    }
    Ok(keys)
}
