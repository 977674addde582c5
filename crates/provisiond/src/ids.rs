//! Identifiers in AWS's forms: `port-` + 13 lowercase alphanumerics, UUIDs, access keys.

use getrandom::getrandom;

const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn random_from(alphabet: &[u8], len: usize) -> String {
    let mut bytes = vec![0u8; len];
    getrandom(&mut bytes).expect("the OS random source is available");
    // 256 is not a multiple of 36: reject the top bytes to keep the choice uniform.
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    let mut pool = bytes.into_iter();
    while out.len() < len {
        let b = match pool.next() {
            Some(b) => b as usize,
            None => {
                let mut one = [0u8; 1];
                getrandom(&mut one).expect("the OS random source is available");
                one[0] as usize
            }
        };
        if b < limit {
            out.push(alphabet[b % alphabet.len()] as char);
        }
    }
    out
}

/// A Service Catalog id: `prefix` (`port`, `prod`, `pp`, …) + `-` + 13 lowercase alphanumerics.
pub fn catalog_id(prefix: &str) -> String {
    format!("{prefix}-{}", random_from(LOWER_ALNUM, 13))
}

/// A random number from the OS source (jitter, not secrets' material).
pub fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    getrandom(&mut b).expect("the OS random source is available");
    u32::from_le_bytes(b)
}

/// A random (version 4) UUID, lowercase.
pub fn uuid() -> String {
    let mut b = [0u8; 16];
    getrandom(&mut b).expect("the OS random source is available");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// An access key id in AWS's form: `AKIA` + 16 characters of `[A-Z2-7]`.
pub fn access_key_id() -> String {
    format!("AKIA{}", random_from(UPPER_BASE32, 16))
}

/// A 40-character secret access key.
pub fn secret_access_key() -> String {
    random_from(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        40,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_aws_forms() {
        let id = catalog_id("port");
        assert_eq!(id.len(), 18);
        assert!(id[5..]
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        let u = uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(access_key_id().starts_with("AKIA"));
        assert_eq!(secret_access_key().len(), 40);
        assert_ne!(catalog_id("port"), catalog_id("port"));
    }
}
