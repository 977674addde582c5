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

/// Bytes of the OS random source taken a few kilobytes at a time per thread, for what needs
/// many random bytes often (a UUID per request): one `getrandom` call serves 256 UUIDs. Each
/// byte is handed out once. Secrets and access keys take theirs straight from the source.
fn buffered_random(out: &mut [u8]) {
    const POOL: usize = 4096;
    struct Pool {
        bytes: [u8; POOL],
        used: usize,
    }
    std::thread_local! {
        static BUFFER: std::cell::RefCell<Pool> =
            const { std::cell::RefCell::new(Pool { bytes: [0; POOL], used: POOL }) };
    }
    BUFFER.with(|pool| {
        let mut pool = pool.borrow_mut();
        let mut filled = 0;
        while filled < out.len() {
            if pool.used == POOL {
                getrandom(&mut pool.bytes).expect("the OS random source is available");
                pool.used = 0;
            }
            let n = (out.len() - filled).min(POOL - pool.used);
            let from = pool.used;
            out[filled..filled + n].copy_from_slice(&pool.bytes[from..from + n]);
            // What was handed out is not kept.
            pool.bytes[from..from + n].fill(0);
            pool.used += n;
            filled += n;
        }
    });
}

/// A random number from the OS source (jitter, not secrets' material).
pub fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    buffered_random(&mut b);
    u32::from_le_bytes(b)
}

/// A time-ordered (version 7) UUID, lowercase: the milliseconds since the Unix epoch in its
/// first 48 bits, then 74 random bits. Ids made later sort later, so the store's indexes of
/// what is keyed by one (request ids of audit entries, message ids) grow at one end instead of
/// touching a random page per insert. Not a secret: nothing is authorized by knowing one.
pub fn uuid() -> String {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    uuid_at(now_ms)
}

fn uuid_at(now_ms: u64) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b = [0u8; 16];
    buffered_random(&mut b[6..]);
    b[..6].copy_from_slice(&now_ms.to_be_bytes()[2..]);
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0x0f)] as char);
    }
    out
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
        assert_eq!(&u[14..15], "7");
        assert!(access_key_id().starts_with("AKIA"));
        assert_eq!(secret_access_key().len(), 40);
        assert_ne!(catalog_id("port"), catalog_id("port"));
    }

    #[test]
    fn uuids_are_version_7_ordered_by_time_and_never_repeat_across_refills_of_the_buffer() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20_000 {
            let u = uuid();
            let dashes: Vec<usize> = u.match_indices('-').map(|(i, _)| i).collect();
            assert_eq!(dashes, [8, 13, 18, 23], "{u}");
            assert_eq!(&u[14..15], "7", "{u}");
            assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
            assert!(u
                .bytes()
                .all(|c| c == b'-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
            assert!(seen.insert(u), "a UUID repeated");
        }
        // The time is the first 48 bits, so a later millisecond sorts later whatever the
        // random bits, and one millisecond's ids share their first 12 hex digits.
        let (a, b) = (uuid_at(1_765_000_000_000), uuid_at(1_765_000_000_001));
        assert!(a < b, "{a} sorts before {b}");
        assert_eq!(uuid_at(0x0123_4567_89ab)[..13], *"01234567-89ab");
        assert!(uuid_at(u64::from(u32::MAX)) < uuid_at(u64::from(u32::MAX) + 1));
        // Odd sizes straddle the end of the buffer and still give different bytes.
        let (mut a, mut b) = ([0u8; 4000], [0u8; 4000]);
        buffered_random(&mut a);
        buffered_random(&mut b);
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 4000]);
    }
}
