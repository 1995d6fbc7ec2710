//! Recovery codes: ten random codes of 80 bits each, shown once at enrolment and stored only as
//! keyed hashes (`crypto::MasterKey::hash_recovery_code`). Written as five groups of four
//! lowercase hex digits (`3f9a-0c1d-77be-2a40-e5c3`); typed in any case, with or without the
//! dashes and spaces.

/// Codes made at each enrolment.
pub const COUNT: usize = 10;
/// Random bytes per code.
const BYTES: usize = 10;
/// The longest input looked at as a recovery code (a typed code with generous spacing).
const MAX_INPUT: usize = 64;

/// [`COUNT`] new codes, in their written form.
pub fn generate() -> Vec<String> {
    (0..COUNT)
        .map(|_| {
            let hex: String = crate::crypto::random_bytes(BYTES)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let groups: Vec<&str> = (0..hex.len()).step_by(4).map(|i| &hex[i..i + 4]).collect();
            groups.join("-")
        })
        .collect()
}

/// The canonical form of a typed code (lowercase hex, no separators) as it is hashed, or
/// `None` when the input cannot be a recovery code.
pub fn normalize(input: &str) -> Option<String> {
    if input.len() > MAX_INPUT {
        return None;
    }
    let code: String = input
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (code.len() == 2 * BYTES && code.bytes().all(|b| b.is_ascii_hexdigit())).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_distinct_codes_that_read_back_as_themselves() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), COUNT);
        for code in &codes {
            assert_eq!(code.len(), 24, "{code}");
            let canonical = normalize(code).unwrap_or_default();
            assert_eq!(canonical, code.replace('-', ""));
            assert_eq!(normalize(&code.to_uppercase()), Some(canonical.clone()));
            assert_eq!(normalize(&code.replace('-', " ")), Some(canonical));
        }
    }

    #[test]
    fn anything_else_is_no_recovery_code() {
        for wrong in [
            "",
            "123456",
            "3f9a-0c1d-77be-2a40-e5c",
            "3f9a-0c1d-77be-2a40-e5c3-1",
            "3f9a-0c1d-77be-2a40-e5cg",
            &"-".repeat(100),
        ] {
            assert_eq!(normalize(wrong), None, "{wrong:?}");
        }
    }
}
