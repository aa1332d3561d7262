//! PKCE verification (RFC 7636 §4.6), in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`.
pub fn is_valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `BASE64URL-no-pad(SHA-256(verifier))`, the S256 challenge of a verifier.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` answers a code stored with `challenge` and `method`.
///
/// A code stored without a challenge is not PKCE-checked. With a challenge, the verifier
/// must be present and well formed, and the method `S256` or `plain` (a missing method
/// means `plain`, as RFC 7636 §4.3 says); anything else fails.
pub fn verify(challenge: Option<&str>, method: Option<&str>, verifier: Option<&str>) -> bool {
    let Some(challenge) = challenge.filter(|c| !c.is_empty()) else {
        return true;
    };
    let Some(verifier) = verifier.filter(|v| is_valid_verifier(v)) else {
        return false;
    };
    let computed = match method.unwrap_or("plain") {
        "S256" => s256_challenge(verifier),
        "plain" => verifier.to_owned(),
        _ => return false,
    };
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(s256_challenge(VERIFIER), CHALLENGE);
        assert!(verify(Some(CHALLENGE), Some("S256"), Some(VERIFIER)));
    }

    #[test]
    fn s256_rejects_wrong_or_missing_verifier() {
        let other = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx";
        assert!(!verify(Some(CHALLENGE), Some("S256"), Some(other)));
        assert!(!verify(Some(CHALLENGE), Some("S256"), None));
        assert!(!verify(Some(CHALLENGE), Some("S256"), Some("")));
    }

    #[test]
    fn plain_compares_verifier_to_challenge() {
        assert!(verify(Some(VERIFIER), Some("plain"), Some(VERIFIER)));
        assert!(verify(Some(VERIFIER), None, Some(VERIFIER)));
        assert!(!verify(Some(VERIFIER), Some("plain"), Some(CHALLENGE)));
    }

    #[test]
    fn unknown_method_fails() {
        assert!(!verify(Some(CHALLENGE), Some("s256"), Some(VERIFIER)));
        assert!(!verify(Some(CHALLENGE), Some("S512"), Some(VERIFIER)));
    }

    #[test]
    fn verifier_format_is_enforced() {
        let short = "a".repeat(42);
        let long = "a".repeat(129);
        assert!(!verify(Some(&short), Some("plain"), Some(&short)));
        assert!(!verify(Some(&long), Some("plain"), Some(&long)));
        assert!(verify(
            Some(&"a".repeat(43)),
            Some("plain"),
            Some(&"a".repeat(43))
        ));
        assert!(verify(
            Some(&"~".repeat(128)),
            Some("plain"),
            Some(&"~".repeat(128))
        ));
        let bad = format!("{}+", "a".repeat(42));
        assert!(!verify(Some(&bad), Some("plain"), Some(&bad)));
        let unicode = format!("{}é", "a".repeat(42));
        assert!(!verify(Some(&unicode), Some("plain"), Some(&unicode)));
    }

    #[test]
    fn no_challenge_means_no_check() {
        assert!(verify(None, None, None));
        assert!(verify(Some(""), Some("S256"), Some("anything")));
    }
}
