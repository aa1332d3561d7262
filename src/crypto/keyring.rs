//! The keyring: parsing `id:key,…`, the derived keys, and lookup digests.

use std::fmt;

use aes_gcm::Aes256Gcm;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2_next::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};

/// The length of a master key, in bytes.
pub const KEY_LEN: usize = 32;
/// The longest key id accepted, in characters.
pub const MAX_ID_LEN: usize = 32;

const DIGEST_INFO: &[u8] = b"native-token-storage v1 lookup digest";
const SEAL_INFO: &[u8] = b"native-token-storage v1 sealing";
/// The `nts2:` (AES-256-GCM) key: its own derivation, so that no key serves two ciphers.
const SEAL2_INFO: &[u8] = b"native-token-storage v2 sealing aes-256-gcm";
/// What a key check is the digest of (a label no `Kind` has, so no value's digest equals it).
const CHECK_LABEL: &[u8] = b"key_check";

/// Standard base64, `=` padding optional (keys from `openssl rand -base64 32` have it,
/// some tools drop it); trailing bits must be zero, so one key has one spelling.
const KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What a digested value is: each kind has its own label, so equal texts of two kinds
/// have unrelated digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    AccessToken,
    RefreshToken,
    Code,
    PendingState,
    ClientSecret,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::AccessToken,
        Kind::RefreshToken,
        Kind::Code,
        Kind::PendingState,
        Kind::ClientSecret,
    ];

    /// The domain-separation label (never changes once released: digests depend on it).
    fn label(self) -> &'static [u8] {
        match self {
            Kind::AccessToken => b"access_token",
            Kind::RefreshToken => b"refresh_token",
            Kind::Code => b"authorization_code",
            Kind::PendingState => b"pending_state",
            Kind::ClientSecret => b"client_secret",
        }
    }
}

/// A lookup digest and the id of the key it was made under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyedDigest<'a> {
    pub key_id: &'a str,
    pub bytes: [u8; 32],
}

/// One entry: its id and the keys derived from its master key (the master itself is not kept).
pub(super) struct Key {
    pub(super) id: String,
    /// HMAC-SHA-256 already keyed (its inner and outer pads hashed): cloned per digest.
    digest: Hmac<Sha256>,
    pub(super) seal: XChaCha20Poly1305,
    /// `nts2:` values (tokens: opened on every get).
    pub(super) gcm: Aes256Gcm,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("keys", &"<redacted>")
            .finish()
    }
}

/// The parsed `TOKEN_ENCRYPTION_KEYS`: the first key active (digests and new seals), the
/// others for opening and finding what older keys wrote.
pub struct Keyring {
    keys: Vec<Key>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("ids", &self.ids().collect::<Vec<_>>())
            .field("keys", &"<redacted>")
            .finish()
    }
}

fn bad(msg: String) -> StoreError {
    StoreError::BadEncryptionKey(format!("TOKEN_ENCRYPTION_KEYS: {msg}"))
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// HKDF-SHA-256 (RFC 5869), no salt, 32 bytes of output for `info`.
pub(super) fn derive(master: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA-256's limit of 255 * 32: this cannot fail.
    let _ = Hkdf::<Sha256>::new(None, master).expand(info, &mut out[..]);
    out
}

impl Key {
    fn from_master(id: String, master: &[u8; KEY_LEN]) -> Key {
        let digest_key = derive(master, DIGEST_INFO);
        let seal_key = derive(master, SEAL_INFO);
        let gcm_key = derive(master, SEAL2_INFO);
        // HMAC pads a key shorter than SHA-256's 64-byte block with zeros: padding it here
        // is the same key, given in the block-sized form that cannot fail.
        let mut block = Zeroizing::new([0u8; 64]);
        block[..32].copy_from_slice(&digest_key[..]);
        Key {
            id,
            digest: <Hmac<Sha256> as KeyInit>::new(&(*block).into()),
            seal: XChaCha20Poly1305::new(&(*seal_key).into()),
            gcm: <Aes256Gcm as KeyInit>::new(&(*gcm_key).into()),
        }
    }

    fn digest(&self, kind: Kind, value: &[u8]) -> [u8; 32] {
        self.digest_labelled(kind.label(), value)
    }

    fn digest_labelled(&self, label: &[u8], value: &[u8]) -> [u8; 32] {
        let mut mac = self.digest.clone();
        mac.update(label);
        mac.update(&[0]);
        mac.update(value);
        mac.finalize().into_bytes().into()
    }
}

impl Keyring {
    /// Parses `id:key,id:key,…` (the syntax of `TOKEN_ENCRYPTION_KEYS`); spaces around an
    /// entry, its id and its key are ignored.
    pub fn parse(text: &str) -> Result<Keyring> {
        if text.trim().is_empty() {
            return Err(bad(
                "no key: give one or more id:key entries, separated by commas".into(),
            ));
        }
        let mut keys: Vec<Key> = Vec::new();
        let mut masters: Vec<Zeroizing<[u8; KEY_LEN]>> = Vec::new();
        for (i, entry) in text.split(',').enumerate() {
            let n = i + 1;
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(bad(format!("entry {n} is empty")));
            }
            let Some((id, key)) = entry.split_once(':') else {
                return Err(bad(format!(
                    "entry {n} is not of the form id:key (it has no ':')"
                )));
            };
            let (id, key) = (id.trim(), key.trim());
            if id.is_empty() {
                return Err(bad(format!("entry {n} has an empty id")));
            }
            if !valid_id(id) {
                // Not quoted: a malformed id may be a key put in the wrong place.
                return Err(bad(format!(
                    "entry {n} has an id of {} characters that is not 1 to {MAX_ID_LEN} of A-Z a-z 0-9 _ -",
                    id.chars().count()
                )));
            }
            if key.is_empty() {
                return Err(bad(format!("entry {n} (id {id}) has an empty key")));
            }
            let decoded = Zeroizing::new(KEY_BASE64.decode(key.as_bytes()).map_err(|_| {
                bad(format!(
                    "entry {n} (id {id}): the key is not standard base64 (A-Z a-z 0-9 + /, optional = padding)"
                ))
            })?);
            if decoded.len() != KEY_LEN {
                return Err(bad(format!(
                    "entry {n} (id {id}): the key is {} bytes, not {KEY_LEN} (make one with `openssl rand -base64 32`)",
                    decoded.len()
                )));
            }
            let mut master = Zeroizing::new([0u8; KEY_LEN]);
            master.copy_from_slice(&decoded);
            if let Some(j) = keys.iter().position(|k| k.id == id) {
                return Err(bad(format!(
                    "entry {n} repeats the id {id} of entry {}",
                    j + 1
                )));
            }
            if let Some(j) = masters
                .iter()
                .position(|m| bool::from(m[..].ct_eq(&master[..])))
            {
                return Err(bad(format!(
                    "entry {n} (id {id}) has the same key as entry {} (id {})",
                    j + 1,
                    keys[j].id
                )));
            }
            keys.push(Key::from_master(id.to_string(), &master));
            masters.push(master);
        }
        Ok(Keyring { keys })
    }

    /// The active key's id (new digests and seals use it).
    pub fn active_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Every key id, active first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    pub(super) fn active(&self) -> &Key {
        &self.keys[0]
    }

    pub(super) fn find(&self, id: &[u8]) -> Option<&Key> {
        self.keys.iter().find(|k| k.id.as_bytes() == id)
    }

    /// Each key's id and its check: the hex of a digest of a fixed label under the key, which
    /// a store records so that a key of the same id but other bytes is told from the right
    /// one. It reveals nothing of the key (an HMAC output under a derived key).
    pub fn key_checks(&self) -> Vec<(&str, String)> {
        self.keys
            .iter()
            .map(|k| (k.id.as_str(), hex(&k.digest_labelled(CHECK_LABEL, &[]))))
            .collect()
    }

    /// The lookup digest of `value` under the active key.
    pub fn digest(&self, kind: Kind, value: &[u8]) -> KeyedDigest<'_> {
        let key = self.active();
        KeyedDigest {
            key_id: &key.id,
            bytes: key.digest(kind, value),
        }
    }

    /// The lookup digest of `value` under each key, active first: how a row written under
    /// a key that is no longer active is found. Lazy: each digest is made when asked for,
    /// so a lookup that finds its row under the active key makes only that one.
    pub fn digests_all<'a>(
        &'a self,
        kind: Kind,
        value: &'a [u8],
    ) -> impl Iterator<Item = KeyedDigest<'a>> + 'a {
        self.keys.iter().map(move |k| KeyedDigest {
            key_id: &k.id,
            bytes: k.digest(kind, value),
        })
    }
}

/// Lower-case hex of a digest, on the stack (a row's key looked up on every get).
pub struct DigestHex([u8; 64]);

impl DigestHex {
    pub fn of(bytes: &[u8; 32]) -> DigestHex {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 15)];
        }
        DigestHex(out)
    }

    pub fn as_str(&self) -> &str {
        // ASCII hex digits only: never the empty fallback.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Lower-case hex of `bytes` (digests as stored: lookup keys and key checks).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}
