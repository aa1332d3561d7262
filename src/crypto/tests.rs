//! The crypto module's tests: the primitives against their RFC vectors, the keyring's
//! syntax, sealing (round trips, tampering, wrong row or column, rotation) and that no
//! key material is ever in a message or a `Debug` output.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2_next::Sha256;

use super::keyring::derive;
use super::*;
use crate::error::StoreError;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A distinct, recognisable 32-byte key per seed.
fn key_bytes(seed: u8) -> [u8; 32] {
    std::array::from_fn(|i| seed.wrapping_mul(37).wrapping_add(i as u8 * 7) ^ 0xa5)
}

fn b64(seed: u8) -> String {
    STANDARD.encode(key_bytes(seed))
}

fn ring(spec: &[(&str, u8)]) -> Keyring {
    let text: Vec<String> = spec
        .iter()
        .map(|(id, seed)| format!("{id}:{}", b64(*seed)))
        .collect();
    Keyring::parse(&text.join(",")).unwrap()
}

const ROW: [u8; 32] = [7; 32];

// --- The primitives, wired as the module uses them -----------------------------------

#[test]
fn hmac_sha256_matches_rfc_4231() {
    let cases: [(&[u8], &[u8], &str); 2] = [
        (
            &[0x0b; 20],
            b"Hi There",
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        ),
        (
            b"Jefe",
            b"what do ya want for nothing?",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
    ];
    for (key, msg, want) in cases {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
        mac.update(msg);
        assert_eq!(hex(&mac.finalize().into_bytes()), want);
    }
}

#[test]
fn hkdf_sha256_matches_rfc_5869() {
    // Test case 1 (salt and info) on the primitive.
    let mut okm = [0u8; 42];
    Hkdf::<Sha256>::new(Some(&unhex("000102030405060708090a0b0c")), &[0x0b; 22])
        .expand(&unhex("f0f1f2f3f4f5f6f7f8f9"), &mut okm)
        .unwrap();
    assert_eq!(
        hex(&okm),
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    );
    // Test case 3 (no salt, no info) through the module's own `derive`: its 32 bytes are
    // the first 32 of the 42 the RFC gives.
    assert_eq!(
        hex(&derive(&[0x0b; 22], b"")[..]),
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
    );
}

/// The digest end to end against an independent computation (Python's hmac and hashlib:
/// HKDF-SHA-256 of the master with the digest label, then HMAC of `label ‖ 0 ‖ value`).
#[test]
fn digest_matches_an_independent_computation() {
    let master: [u8; 32] = std::array::from_fn(|i| i as u8);
    let keys = Keyring::parse(&format!("k1:{}", STANDARD.encode(master))).unwrap();
    let d = keys.digest(Kind::AccessToken, b"abc");
    assert_eq!(d.key_id, "k1");
    assert_eq!(
        hex(&d.bytes),
        "b10f3ae76c39e77920d369d6557c3f18f2ea8f42504241ab1d7c71a0e8395fc7"
    );
    assert_eq!(
        hex(&keys.digest(Kind::RefreshToken, b"abc").bytes),
        "abc420d809c838875238b5ed48701c3b112928cd9428e03eb46fe2551b5883b9"
    );
}

// --- Digests -----------------------------------------------------------------------------

#[test]
fn digests_are_separated_by_kind_key_and_value() {
    let a = ring(&[("a", 1)]);
    let b = ring(&[("b", 2)]);
    let mut seen = std::collections::HashSet::new();
    for kind in Kind::ALL {
        for value in [&b"tok"[..], b"tok2", b""] {
            assert!(seen.insert(a.digest(kind, value).bytes));
            assert!(seen.insert(b.digest(kind, value).bytes));
            assert_eq!(a.digest(kind, value), a.digest(kind, value));
        }
    }
    // The label and the value are separated: "access_token" + "x" is not "access_tokenx".
    assert_ne!(
        a.digest(Kind::AccessToken, b"x").bytes,
        a.digest(Kind::AccessToken, b"\0x").bytes
    );
}

#[test]
fn digest_hex_on_the_stack_is_hex() {
    let bytes: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37));
    assert_eq!(DigestHex::of(&bytes).as_str(), hex(&bytes));
    assert_eq!(DigestHex::of(&[0xff; 32]).as_str(), "f".repeat(64));
}

#[test]
fn digests_all_gives_each_key_active_first() {
    let old = ring(&[("old", 1)]);
    let both = ring(&[("new", 2), ("old", 1)]);
    let all: Vec<_> = both.digests_all(Kind::Code, b"c0de").collect();
    assert_eq!(
        all.iter().map(|d| d.key_id).collect::<Vec<_>>(),
        ["new", "old"]
    );
    assert_eq!(all[0], both.digest(Kind::Code, b"c0de"));
    assert_eq!(all[1].bytes, old.digest(Kind::Code, b"c0de").bytes);
    assert_ne!(all[0].bytes, all[1].bytes);
}

// --- Sealing -----------------------------------------------------------------------------

#[test]
fn seal_then_open_round_trips() {
    let keys = ring(&[("k1", 1)]);
    for plain in [
        &b""[..],
        b"a",
        b"sk-ant-api03-0123456789",
        "é✓ unicode".as_bytes(),
        &[0u8, 255, 1, 254][..],
        &vec![b'x'; 100_000][..],
    ] {
        let sealed = keys.seal("api_key", &ROW, plain).unwrap();
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(is_sealed(&sealed));
        assert_eq!(keys.open("api_key", &ROW, &sealed).unwrap(), plain);
    }
    // Random nonces: the same value sealed twice differs.
    assert_ne!(
        keys.seal("c", &ROW, b"same").unwrap(),
        keys.seal("c", &ROW, b"same").unwrap()
    );
}

#[test]
fn is_sealed_tells_sealed_from_clear() {
    let keys = ring(&[("k1", 1)]);
    assert!(is_sealed(&keys.seal("c", &ROW, b"v").unwrap()));
    for clear in [
        "",
        "nts1:",
        "nts1:AAAA",
        "nts1:not base64!",
        "a-clear-access-token",
        "{\"json\":true}",
        "NTS1:AQJrMQ",
    ] {
        assert!(!is_sealed(clear), "{clear}");
    }
}

fn assert_cannot(result: crate::error::Result<Vec<u8>>, want_in_message: &str) -> String {
    match result {
        Err(e @ StoreError::CannotDecrypt(_)) => {
            assert_eq!(e.code(), "ERR_TOKEN_STORAGE_CANNOT_DECRYPT");
            let msg = e.to_string();
            assert!(msg.contains(want_in_message), "{msg}");
            msg
        }
        other => panic!("expected CannotDecrypt, got {other:?}"),
    }
}

#[test]
fn a_flipped_bit_anywhere_does_not_open() {
    let keys = ring(&[("k1", 1)]);
    let sealed = keys
        .seal("refresh_token", &ROW, b"a refresh token")
        .unwrap();
    let bytes = STANDARD_NO_PAD
        .decode(&sealed[SEALED_PREFIX.len()..])
        .unwrap();
    // version, id length, id, nonce, ciphertext and tag: every byte, two different flips.
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut t = bytes.clone();
            t[i] ^= bit;
            let text = format!("{SEALED_PREFIX}{}", STANDARD_NO_PAD.encode(&t));
            assert_cannot(keys.open("refresh_token", &ROW, &text), "refresh_token");
        }
    }
    // Cut short, lengthened, the prefix changed, not base64.
    for i in 0..bytes.len() {
        let text = format!("{SEALED_PREFIX}{}", STANDARD_NO_PAD.encode(&bytes[..i]));
        assert_cannot(keys.open("refresh_token", &ROW, &text), "refresh_token");
    }
    let longer = format!("{sealed}AA");
    assert_cannot(keys.open("refresh_token", &ROW, &longer), "refresh_token");
    let other_prefix = sealed.replacen("nts1:", "nts2:", 1);
    assert_cannot(
        keys.open("refresh_token", &ROW, &other_prefix),
        "not a sealed value",
    );
    assert_cannot(
        keys.open("refresh_token", &ROW, "clear"),
        "not a sealed value",
    );
    assert_cannot(
        keys.open("refresh_token", &ROW, "nts1:@@@"),
        "not a sealed value",
    );
}

#[test]
fn moved_to_another_row_or_column_does_not_open() {
    let keys = ring(&[("k1", 1)]);
    let sealed = keys.seal("api_key", &ROW, b"sk-secret").unwrap();
    let mut other_row = ROW;
    other_row[31] ^= 1;
    let msg = assert_cannot(keys.open("api_key", &other_row, &sealed), "moved");
    assert!(msg.contains("k1"), "{msg}");
    assert_cannot(keys.open("api_key", &ROW[..31], &sealed), "moved");
    assert_cannot(keys.open("pending_data", &ROW, &sealed), "moved");
    // The column and the row digest are length-prefixed: moving a byte between them fails.
    let s2 = keys.seal("ab", b"c", b"v").unwrap();
    assert_cannot(keys.open("a", b"bc", &s2), "moved");
    assert_eq!(keys.open("ab", b"c", &s2).unwrap(), b"v");
}

#[test]
fn an_unknown_key_id_is_named_and_its_key_is_not() {
    let old = ring(&[("old-2025", 1)]);
    let sealed = old.seal("api_key", &ROW, b"sk-secret").unwrap();
    let new = ring(&[("new", 2)]);
    let msg = assert_cannot(new.open("api_key", &ROW, &sealed), "key id old-2025");
    assert!(msg.contains("not in the keyring"), "{msg}");
    assert_no_key_material(&msg, &[1, 2]);
    // Same id, different key: does not open (altered), rather than an unknown id.
    let impostor = ring(&[("old-2025", 3)]);
    assert_cannot(impostor.open("api_key", &ROW, &sealed), "does not open");
}

#[test]
fn rotation_opens_what_the_old_key_sealed_and_seals_under_the_new() {
    let before = ring(&[("k2025", 1)]);
    let sealed_old = before.seal("api_key", &ROW, b"sk-old").unwrap();
    let after = ring(&[("k2026", 2), ("k2025", 1)]);
    assert_eq!(after.active_id(), "k2026");
    assert_eq!(after.ids().collect::<Vec<_>>(), ["k2026", "k2025"]);
    assert_eq!(after.open("api_key", &ROW, &sealed_old).unwrap(), b"sk-old");
    let sealed_new = after.seal("api_key", &ROW, b"sk-new").unwrap();
    assert_eq!(after.open("api_key", &ROW, &sealed_new).unwrap(), b"sk-new");
    // The old keyring does not know the new key.
    assert_cannot(before.open("api_key", &ROW, &sealed_new), "key id k2026");
    // Once the old key is retired, what it sealed no longer opens.
    let retired = ring(&[("k2026", 2)]);
    assert_cannot(retired.open("api_key", &ROW, &sealed_old), "key id k2025");
    assert_eq!(
        retired.open("api_key", &ROW, &sealed_new).unwrap(),
        b"sk-new"
    );
}

// --- The keyring's syntax ----------------------------------------------------------------

#[test]
fn accepts_padding_or_none_spaces_and_several_keys() {
    let padded = b64(1);
    assert!(padded.ends_with('='));
    let unpadded = padded.trim_end_matches('=').to_string();
    let a = Keyring::parse(&format!("k:{padded}")).unwrap();
    let b = Keyring::parse(&format!("k:{unpadded}")).unwrap();
    assert_eq!(a.digest(Kind::Code, b"x"), b.digest(Kind::Code, b"x"));
    let spaced = Keyring::parse(&format!("  k1 : {} ,\tk_2-B:{}  ", b64(1), b64(2))).unwrap();
    assert_eq!(spaced.ids().collect::<Vec<_>>(), ["k1", "k_2-B"]);
    let long_id = "x".repeat(MAX_ID_LEN);
    assert!(Keyring::parse(&format!("{long_id}:{}", b64(1))).is_ok());
}

/// Every parse error, its message, and that none holds any of the keys given.
#[test]
fn every_malformed_keyring_is_a_coded_error_naming_the_entry_not_the_key() {
    let (k1, k2) = (b64(1), b64(2));
    let short = STANDARD.encode(&key_bytes(3)[..31]);
    let long = STANDARD.encode([key_bytes(4).as_slice(), &[9]].concat());
    let url_safe = STANDARD
        .encode(key_bytes(5))
        .replace('+', "-")
        .replace('/', "_");
    assert!(url_safe.contains('-') || url_safe.contains('_'));
    let long_id = "x".repeat(MAX_ID_LEN + 1);
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "no key"),
        ("  ".into(), "no key"),
        (format!("a:{k1},"), "entry 2 is empty"),
        (format!(",a:{k1}"), "entry 1 is empty"),
        (format!("a:{k1},,b:{k2}"), "entry 2 is empty"),
        (k1.clone(), "entry 1 is not of the form id:key"),
        (format!("a:{k1},{k2}"), "entry 2 is not of the form id:key"),
        (format!(":{k1}"), "entry 1 has an empty id"),
        (format!("a b:{k1}"), "entry 1 has an id of 3 characters"),
        (format!("a.b:{k1}"), "entry 1 has an id of 3 characters"),
        (format!("é:{k1}"), "entry 1 has an id of 1 characters"),
        (
            format!("{long_id}:{k1}"),
            "entry 1 has an id of 33 characters",
        ),
        // A key in the id's place (and the id in the key's): the key is never quoted.
        (format!("{k1}:a"), "entry 1 has an id of 44 characters"),
        ("a:".into(), "entry 1 (id a) has an empty key"),
        (format!("a:{k1},b:"), "entry 2 (id b) has an empty key"),
        (
            format!("a:{url_safe}"),
            "entry 1 (id a): the key is not standard base64",
        ),
        (
            format!("a:{k1}!"),
            "entry 1 (id a): the key is not standard base64",
        ),
        (
            format!("a:{k1}:{k2}"),
            "entry 1 (id a): the key is not standard base64",
        ),
        (
            format!("a:{short}"),
            "entry 1 (id a): the key is 31 bytes, not 32",
        ),
        (
            format!("a:{long}"),
            "entry 1 (id a): the key is 33 bytes, not 32",
        ),
        (
            "a:AAAA".into(),
            "entry 1 (id a): the key is 3 bytes, not 32",
        ),
        (
            format!("a:{k1},a:{k2}"),
            "entry 2 repeats the id a of entry 1",
        ),
        (
            format!("a:{k1},b:{k2},c:{k1}"),
            "entry 3 (id c) has the same key as entry 1 (id a)",
        ),
        (
            format!("a:{k1},b:{}", k1.trim_end_matches('=')),
            "entry 2 (id b) has the same key as entry 1 (id a)",
        ),
    ];
    for (text, want) in cases {
        let err = Keyring::parse(&text).unwrap_err();
        assert_eq!(err.code(), "ERR_TOKEN_STORAGE_BAD_ENCRYPTION_KEY", "{text}");
        assert!(matches!(err, StoreError::BadEncryptionKey(_)));
        let msg = err.to_string();
        assert!(msg.starts_with("TOKEN_ENCRYPTION_KEYS: "), "{msg}");
        assert!(msg.contains(want), "{text:?}: {msg}");
        assert_no_key_material(&msg, &[1, 2, 3, 4, 5]);
        assert_no_key_material(&format!("{err:?}"), &[1, 2, 3, 4, 5]);
    }
}

/// Neither the key's base64 (any 8 characters of it), nor its hex, nor the keys derived from
/// it (as hex) are in `text`.
fn assert_no_key_material(text: &str, seeds: &[u8]) {
    for &seed in seeds {
        let raw = key_bytes(seed);
        let b64 = STANDARD.encode(raw);
        for w in b64.as_bytes().windows(8) {
            let w = std::str::from_utf8(w).unwrap();
            assert!(!text.contains(w), "key {seed}'s base64 ({w}) is in: {text}");
        }
        assert!(
            !text.contains(&hex(&raw)[..16]),
            "key {seed}'s hex is in: {text}"
        );
        for info in [
            &b"native-token-storage v1 lookup digest"[..],
            b"native-token-storage v1 sealing",
        ] {
            let derived = derive(&raw, info);
            assert!(
                !text.contains(&hex(&derived[..])[..16]),
                "a derived key is in: {text}"
            );
        }
        assert!(
            !text.contains(&format!("{:?}", &raw[..8])),
            "key bytes in: {text}"
        );
    }
}

#[test]
fn debug_output_redacts_every_key() {
    let keys = ring(&[("a", 1), ("b", 2)]);
    let debug = format!("{keys:?} {keys:#?}");
    assert!(debug.contains("\"a\"") && debug.contains("\"b\"") && debug.contains("redacted"));
    assert_no_key_material(&debug, &[1, 2]);
}

// --- Cost per call -------------------------------------------------------------------------

/// Prints what a digest, a seal and an open cost. Timing only, no assertion (the machine is
/// shared): `cargo test --release --lib crypto::tests::cost -- --ignored --nocapture`.
#[test]
#[ignore]
fn cost_per_call() {
    use std::hint::black_box;
    use std::time::Instant;
    let keys = ring(&[("k2026", 2), ("k2025", 1)]);
    let token = "0123456789abcdef0123456789abcdef0123456789abcdef"; // a 48-character token
    let value = br#"{"userId":"user-1234","clientId":"client-5678","scope":"read write"}"#;
    let sealed = keys.seal("api_key", &ROW, value).unwrap();
    let n = 200_000u32;
    let time = |name: &str, f: &mut dyn FnMut()| {
        for _ in 0..n / 10 {
            f();
        }
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        let per = start.elapsed().as_nanos() as f64 / f64::from(n);
        eprintln!("{name}: {per:.0} ns per call");
        per
    };
    let d = time("digest (48-byte token)", &mut || {
        black_box(keys.digest(Kind::AccessToken, black_box(token.as_bytes())));
    });
    time("seal (68-byte value)", &mut || {
        black_box(keys.seal("api_key", &ROW, black_box(value)).unwrap());
    });
    let o = time("open (68-byte value)", &mut || {
        black_box(keys.open("api_key", &ROW, black_box(&sealed)).unwrap());
    });
    eprintln!("digest + open (a get): {:.0} ns", d + o);

    // The candidate for a format version 2 (docs/development.md, "Secrets at rest"):
    // AES-256-GCM under a per-message key, HMAC-SHA-256(sealing key, 24-byte random nonce),
    // so that random nonces stay safe for any number of messages (GCM's bound is per key).
    use aes_gcm::aead::{Aead, Payload};
    use aes_gcm::{Aes256Gcm, Nonce};
    let derive: Hmac<Sha256> = <Hmac<Sha256> as KeyInit>::new(&[9u8; 64].into());
    let nonce24 = [3u8; 24];
    let aad = b"nts\x02\x02k1 column row digest 0123456789abcdef0123456789abcdef";
    let message_key = |n: &[u8]| -> [u8; 32] {
        let mut m = derive.clone();
        m.update(n);
        m.finalize().into_bytes().into()
    };
    let zero = Nonce::from([0u8; 12]);
    let sealed2 = Aes256Gcm::new(&message_key(&nonce24).into())
        .encrypt(&zero, Payload { msg: value, aad })
        .unwrap();
    let fixed = Aes256Gcm::new(&[5u8; 32].into());
    let sealed_fixed = fixed
        .encrypt(&Nonce::from([1u8; 12]), Payload { msg: value, aad })
        .unwrap();
    time("AES-256-GCM open, one key (68-byte value)", &mut || {
        black_box(
            fixed
                .decrypt(
                    &Nonce::from([1u8; 12]),
                    Payload {
                        msg: black_box(&sealed_fixed),
                        aad,
                    },
                )
                .unwrap(),
        );
    });
    let o2 = time(
        "AES-256-GCM open, per-message key derived (68-byte value)",
        &mut || {
            let cipher = Aes256Gcm::new(&message_key(black_box(&nonce24)).into());
            black_box(
                cipher
                    .decrypt(
                        &zero,
                        Payload {
                            msg: black_box(&sealed2),
                            aad,
                        },
                    )
                    .unwrap(),
            );
        },
    );
    eprintln!(
        "digest + per-message-key AES-GCM open (a get): {:.0} ns",
        d + o2
    );

    // XAES-256-GCM (the per-message key derived with AES itself), the planned `nts2:`.
    let xaes = Xaes::new(&[9u8; 32]);
    let sealed3 = xaes.seal(&nonce24, value, aad);
    let o3 = time("XAES-256-GCM open (68-byte value)", &mut || {
        black_box(
            xaes.open(black_box(&nonce24), black_box(&sealed3), aad)
                .unwrap(),
        );
    });
    eprintln!("digest + XAES-256-GCM open (a get): {:.0} ns", d + o3);
}

/// XAES-256-GCM (C2SP), written for the cost probe only: a candidate for the format of
/// sealed tokens (docs/development.md, "Secrets at rest"), checked against C2SP's vectors.
struct Xaes {
    aes: aes::Aes256,
    k1: [u8; 16],
}

impl Xaes {
    fn new(key: &[u8; 32]) -> Xaes {
        use aes::cipher::{BlockCipherEncrypt, KeyInit as _};
        let aes = aes::Aes256::new(&(*key).into());
        let mut l = aes::Block::default();
        aes.encrypt_block(&mut l);
        // K1 = L << 1, reduced by 0x87 if L's top bit was set (CMAC's subkey).
        let mut k1 = [0u8; 16];
        for i in 0..16 {
            k1[i] = (l[i] << 1) | l.get(i + 1).map_or(0, |b| b >> 7);
        }
        if l[0] & 0x80 != 0 {
            k1[15] ^= 0x87;
        }
        Xaes { aes, k1 }
    }

    fn cipher(&self, nonce: &[u8; 24]) -> aes_gcm::Aes256Gcm {
        use aes::cipher::BlockCipherEncrypt;
        use aes_gcm::aead::KeyInit as _;
        let mut derived = [0u8; 32];
        for (i, half) in derived.chunks_mut(16).enumerate() {
            let mut m = aes::Block::default();
            m[..4].copy_from_slice(&[0, i as u8 + 1, b'X', 0]);
            m[4..].copy_from_slice(&nonce[..12]);
            for (b, k) in m.iter_mut().zip(self.k1) {
                *b ^= k;
            }
            self.aes.encrypt_block(&mut m);
            half.copy_from_slice(&m);
        }
        aes_gcm::Aes256Gcm::new(&derived.into())
    }

    fn seal(&self, nonce: &[u8; 24], msg: &[u8], aad: &[u8]) -> Vec<u8> {
        use aes_gcm::aead::{Aead, Payload};
        let n: [u8; 12] = nonce[12..].try_into().unwrap();
        self.cipher(nonce)
            .encrypt(&n.into(), Payload { msg, aad })
            .unwrap()
    }

    fn open(&self, nonce: &[u8; 24], sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        use aes_gcm::aead::{Aead, Payload};
        let n: [u8; 12] = nonce[12..].try_into().ok()?;
        self.cipher(nonce)
            .decrypt(&n.into(), Payload { msg: sealed, aad })
            .ok()
    }
}

/// The probe's XAES-256-GCM gives C2SP's test vectors (so the cost measured is the real one).
#[test]
fn xaes_probe_matches_c2sp_vectors() {
    let nonce = b"ABCDEFGHIJKLMNOPQRSTUVWX";
    let cases: [([u8; 32], &[u8], &str); 2] = [
        (
            [1; 32],
            b"",
            "ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271",
        ),
        (
            [3; 32],
            b"c2sp.org/XAES-256-GCM",
            "986ec1832593df5443a179437fd083bf3fdb41abd740a21f71eb769d",
        ),
    ];
    for (key, aad, want) in cases {
        let x = Xaes::new(&key);
        let sealed = x.seal(nonce, b"XAES-256-GCM", aad);
        assert_eq!(hex(&sealed), want);
        assert_eq!(
            x.open(nonce, &sealed, aad).as_deref(),
            Some(&b"XAES-256-GCM"[..])
        );
        let mut bad = sealed.clone();
        bad[0] ^= 1;
        assert_eq!(x.open(nonce, &bad, aad), None);
    }
}
