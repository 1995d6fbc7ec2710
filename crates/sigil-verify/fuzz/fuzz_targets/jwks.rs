//! JWKS and PEM parsing: never panic; whatever parses must validate and round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sigil_verify::JwkSet;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = JwkSet::from_json(data) {
        assert!(set.validate().is_ok());
        let text = serde_json::to_vec(&set).unwrap_or_default();
        assert_eq!(JwkSet::from_json(&text).ok().as_ref(), Some(&set));
        for k in &set.keys {
            let _ = k.thumbprint();
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(set) = JwkSet::from_pem(text) {
            assert!(set.validate().is_ok());
        }
    }
});
