//! The string to sign, the derived signing key and the signature (HMAC-SHA256 throughout).

use crate::Secret;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::sync::Mutex;
use zeroize::Zeroizing;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `AWS4-HMAC-SHA256\n<amz date>\n<scope>\n<hex sha256 of the canonical request>`.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    let mut out = String::with_capacity(18 + amz_date.len() + scope.len() + 64);
    out.push_str("AWS4-HMAC-SHA256\n");
    out.push_str(amz_date);
    out.push('\n');
    out.push_str(scope);
    out.push('\n');
    let mut hex = [0u8; 64];
    hex::encode_to_slice(Sha256::digest(canonical_request.as_bytes()), &mut hex)
        .expect("64 hex digits hold 32 bytes");
    out.push_str(std::str::from_utf8(&hex).expect("hex digits are ASCII"));
    out
}

/// The key derived from the secret for one day, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Zeroizing<[u8; 32]> {
    let k_secret = Zeroizing::new(format!("AWS4{secret}"));
    let k_date = hmac(k_secret.as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    Zeroizing::new(hmac(&k_service, b"aws4_request"))
}

/// The signature of `string_to_sign` under `key`.
pub fn signature(key: &[u8; 32], string_to_sign: &str) -> [u8; 32] {
    hmac(key, string_to_sign.as_bytes())
}

/// How many derived keys a [`SigningSecret`] keeps: a key signs for a day, one region and a
/// few services, and a day's keys change at midnight.
const DERIVED_KEPT: usize = 8;

/// A scope's derived key: (day, region, service) and the key.
type Derived = (String, String, String, Zeroizing<[u8; 32]>);

/// A secret access key, with the signing keys lately derived from it (one per day, region and
/// service): deriving one takes four HMACs, which every request signed for a scope seen before
/// would otherwise repeat. The derived keys are as secret as the key itself and are zeroed
/// when dropped.
pub struct SigningSecret {
    secret: Secret,
    derived: Mutex<Vec<Derived>>,
}

impl SigningSecret {
    /// Wraps `secret`, with no key derived yet.
    pub fn new(secret: Secret) -> Self {
        SigningSecret {
            secret,
            derived: Mutex::new(Vec::new()),
        }
    }

    /// The secret itself; use only where it is needed (signing, sealing).
    pub fn expose(&self) -> &str {
        self.secret.expose()
    }

    /// The signing key of one day, region and service: [`signing_key`], remembered.
    pub fn key(&self, date: &str, region: &str, service: &str) -> Zeroizing<[u8; 32]> {
        let mut derived = self.derived.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((.., key)) = derived
            .iter()
            .find(|(d, r, s, _)| d == date && r == region && s == service)
        {
            return key.clone();
        }
        let key = signing_key(self.secret.expose(), date, region, service);
        if derived.len() == DERIVED_KEPT {
            derived.remove(0);
        }
        derived.push((date.into(), region.into(), service.into(), key.clone()));
        key
    }
}

impl From<Secret> for SigningSecret {
    fn from(secret: Secret) -> Self {
        SigningSecret::new(secret)
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of AWS's SigV4 documentation ("get-vanilla" of the test suite).
    #[test]
    fn matches_the_documented_example() {
        let canonical = "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let sts = string_to_sign(
            "20150830T123600Z",
            "20150830/us-east-1/service/aws4_request",
            canonical,
        );
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "service",
        );
        assert_eq!(
            hex::encode(signature(&key, &sts)),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn a_signing_secret_derives_each_scopes_key_as_signing_key_does() {
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let kept = SigningSecret::new(Secret::new(secret.into()));
        let scopes: Vec<(String, &str, &str)> = (0..2 * DERIVED_KEPT)
            .map(|day| (format!("201508{:02}", day + 1), "us-east-1", "service"))
            .chain([("20150830".to_string(), "eu-west-1", "s3")])
            .collect();
        // Twice over more scopes than are kept: remembered or derived again, each the same.
        for _ in 0..2 {
            for (date, region, service) in &scopes {
                assert_eq!(
                    *kept.key(date, region, service),
                    *signing_key(secret, date, region, service),
                    "{date}/{region}/{service}"
                );
            }
        }
        assert_eq!(format!("{kept:?}"), "[redacted]");
        assert!(kept.derived.lock().unwrap().len() <= DERIVED_KEPT);
    }
}
