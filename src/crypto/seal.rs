//! Sealed values: XChaCha20-Poly1305 (`nts1:`) or, for tokens on CPUs with AES
//! instructions, AES-256-GCM (`nts2:`), under keys derived from a keyring entry, with the
//! column and the row's digest bound in as associated data.

use aes_gcm::Nonce as GcmNonce;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::XNonce;

use super::keyring::{Key, Keyring, MAX_ID_LEN};
use crate::error::{Result, StoreError};

/// What a sealed text starts with.
pub const SEALED_PREFIX: &str = "nts1:";
/// What a value sealed with AES-256-GCM (`Keyring::seal_token`) starts with.
pub const SEALED2_PREFIX: &str = "nts2:";
/// The binary layout's version (the first byte after decoding).
const VERSION: u8 = 1;
const VERSION2: u8 = 2;
const NONCE_LEN: usize = 24;
const NONCE2_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Whether AES-256-GCM runs on AES instructions here (constant-time and fast): tokens are
/// then sealed `nts2:`, else `nts1:` (software AES is slower and not constant-time
/// everywhere). Either opens anywhere.
fn aes_in_hardware() -> bool {
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")))]
    {
        false
    }
}

/// The parts of a decoded sealed value.
struct Envelope<'a> {
    id: &'a [u8],
    nonce: &'a [u8],
    ciphertext: &'a [u8],
}

/// Splits the binary form of layout `version`; `None` when it is not one this version writes.
fn split(bytes: &[u8], version: u8) -> Option<Envelope<'_>> {
    let nonce_len = if version == VERSION2 {
        NONCE2_LEN
    } else {
        NONCE_LEN
    };
    let (&found, rest) = bytes.split_first()?;
    let (&id_len, rest) = rest.split_first()?;
    let id_len = usize::from(id_len);
    if found != version || id_len == 0 || id_len > MAX_ID_LEN {
        return None;
    }
    if rest.len() < id_len + nonce_len + TAG_LEN {
        return None;
    }
    let (id, rest) = rest.split_at(id_len);
    if !id
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
    {
        return None;
    }
    let (nonce, ciphertext) = rest.split_at(nonce_len);
    Some(Envelope {
        id,
        nonce,
        ciphertext,
    })
}

/// Whether `text` is a sealed value (the prefix and a well-formed layout; whether it opens
/// is for [`Keyring::open`] to say).
pub fn is_sealed(text: &str) -> bool {
    let (b64, version) = match text.strip_prefix(SEALED_PREFIX) {
        Some(b64) => (b64, VERSION),
        None => match text.strip_prefix(SEALED2_PREFIX) {
            Some(b64) => (b64, VERSION2),
            None => return false,
        },
    };
    STANDARD_NO_PAD
        .decode(b64)
        .ok()
        .is_some_and(|bytes| split(&bytes, version).is_some())
}

/// The associated data: everything a sealed value is bound to besides its key.
fn associated_data(version: u8, id: &[u8], column: &str, row_digest: &[u8]) -> Vec<u8> {
    let mut ad = Vec::with_capacity(16 + id.len() + column.len() + row_digest.len());
    ad.extend_from_slice(b"nts");
    ad.push(version);
    ad.push(id.len() as u8);
    ad.extend_from_slice(id);
    ad.extend_from_slice(&(column.len() as u32).to_be_bytes());
    ad.extend_from_slice(column.as_bytes());
    ad.extend_from_slice(&(row_digest.len() as u32).to_be_bytes());
    ad.extend_from_slice(row_digest);
    ad
}

fn too_long() -> StoreError {
    StoreError::Internal("a value is too long to seal")
}

fn cannot(column: &str, why: &str) -> StoreError {
    StoreError::CannotDecrypt(format!("the sealed value in column {column} {why}"))
}

impl Keyring {
    /// Seals `plaintext` under the active key, bound to `column` and `row_digest` (the
    /// digest that finds the row). Fails only if the system's random source does.
    pub fn seal(&self, column: &str, row_digest: &[u8], plaintext: &[u8]) -> Result<String> {
        self.seal_as(VERSION, column, row_digest, plaintext)
    }

    /// Seals a token's value (opened on every get): AES-256-GCM (`nts2:`, random 12-byte
    /// nonces) under the active key where AES runs in hardware, else as [`Keyring::seal`].
    pub fn seal_token(&self, column: &str, row_digest: &[u8], plaintext: &[u8]) -> Result<String> {
        let version = if aes_in_hardware() { VERSION2 } else { VERSION };
        self.seal_as(version, column, row_digest, plaintext)
    }

    fn seal_as(
        &self,
        version: u8,
        column: &str,
        row_digest: &[u8],
        plaintext: &[u8],
    ) -> Result<String> {
        let key: &Key = self.active();
        let id = key.id.as_bytes();
        let (prefix, nonce_len) = if version == VERSION2 {
            (SEALED2_PREFIX, NONCE2_LEN)
        } else {
            (SEALED_PREFIX, NONCE_LEN)
        };
        let mut nonce = [0u8; NONCE_LEN];
        let nonce = &mut nonce[..nonce_len];
        getrandom::fill(nonce).map_err(|_| {
            StoreError::Internal("the system's random source failed while sealing a value")
        })?;
        let aad = associated_data(version, id, column, row_digest);
        let payload = Payload {
            msg: plaintext,
            aad: &aad,
        };
        let sealed = if version == VERSION2 {
            let n = GcmNonce::try_from(&*nonce).map_err(|_| too_long())?;
            key.gcm.encrypt(&n, payload)
        } else {
            let n = XNonce::try_from(&*nonce).map_err(|_| too_long())?;
            key.seal.encrypt(&n, payload)
        }
        .map_err(|_| too_long())?;
        let mut bytes = Vec::with_capacity(2 + id.len() + nonce_len + sealed.len());
        bytes.push(version);
        bytes.push(id.len() as u8);
        bytes.extend_from_slice(id);
        bytes.extend_from_slice(nonce);
        bytes.extend_from_slice(&sealed);
        let mut text = String::with_capacity(prefix.len() + bytes.len() * 4 / 3 + 4);
        text.push_str(prefix);
        STANDARD_NO_PAD.encode_string(&bytes, &mut text);
        Ok(text)
    }

    /// Opens what [`Keyring::seal`] or [`Keyring::seal_token`] made for the same `column`
    /// and `row_digest`, under whichever key of the keyring sealed it.
    pub fn open(&self, column: &str, row_digest: &[u8], sealed: &str) -> Result<Vec<u8>> {
        let not_sealed = || {
            cannot(
                column,
                "is not a sealed value of this package (damaged, or written in clear)",
            )
        };
        let (b64, version) = match sealed.strip_prefix(SEALED_PREFIX) {
            Some(b64) => (b64, VERSION),
            None => (
                sealed.strip_prefix(SEALED2_PREFIX).ok_or_else(not_sealed)?,
                VERSION2,
            ),
        };
        let bytes = STANDARD_NO_PAD.decode(b64).map_err(|_| not_sealed())?;
        let env = split(&bytes, version).ok_or_else(not_sealed)?;
        // `split` checked the id is ASCII of the allowed characters.
        let id = String::from_utf8_lossy(env.id);
        let key = self.find(env.id).ok_or_else(|| {
            cannot(
                column,
                &format!(
                    "was sealed under key id {id}, which is not in the keyring (TOKEN_ENCRYPTION_KEYS)"
                ),
            )
        })?;
        let aad = associated_data(version, env.id, column, row_digest);
        let payload = Payload {
            msg: env.ciphertext,
            aad: &aad,
        };
        let opened = if version == VERSION2 {
            let nonce = GcmNonce::try_from(env.nonce).map_err(|_| not_sealed())?;
            key.gcm.decrypt(&nonce, payload)
        } else {
            let nonce = XNonce::try_from(env.nonce).map_err(|_| not_sealed())?;
            key.seal.decrypt(&nonce, payload)
        };
        opened.map_err(|_| {
            cannot(
                column,
                &format!(
                    "does not open under key id {id}: it was altered, or moved from another row or column"
                ),
            )
        })
    }
}
