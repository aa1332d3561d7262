//! Sealed values: XChaCha20-Poly1305 under the sealing key derived from a keyring entry,
//! with the column and the row's digest bound in as associated data.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::XNonce;

use super::keyring::{Key, Keyring, MAX_ID_LEN};
use crate::error::{Result, StoreError};

/// What a sealed text starts with.
pub const SEALED_PREFIX: &str = "nts1:";
/// The binary layout's version (the first byte after decoding).
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The parts of a decoded sealed value.
struct Envelope<'a> {
    id: &'a [u8],
    nonce: &'a [u8],
    ciphertext: &'a [u8],
}

/// Splits the binary form; `None` when it is not one this version writes.
fn split(bytes: &[u8]) -> Option<Envelope<'_>> {
    let (&version, rest) = bytes.split_first()?;
    let (&id_len, rest) = rest.split_first()?;
    let id_len = usize::from(id_len);
    if version != VERSION || id_len == 0 || id_len > MAX_ID_LEN {
        return None;
    }
    if rest.len() < id_len + NONCE_LEN + TAG_LEN {
        return None;
    }
    let (id, rest) = rest.split_at(id_len);
    if !id
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
    {
        return None;
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    Some(Envelope {
        id,
        nonce,
        ciphertext,
    })
}

/// Whether `text` is a sealed value (the prefix and a well-formed layout; whether it opens
/// is for [`Keyring::open`] to say).
pub fn is_sealed(text: &str) -> bool {
    text.strip_prefix(SEALED_PREFIX)
        .and_then(|b64| STANDARD_NO_PAD.decode(b64).ok())
        .is_some_and(|bytes| split(&bytes).is_some())
}

/// The associated data: everything a sealed value is bound to besides its key.
fn associated_data(id: &[u8], column: &str, row_digest: &[u8]) -> Vec<u8> {
    let mut ad = Vec::with_capacity(16 + id.len() + column.len() + row_digest.len());
    ad.extend_from_slice(b"nts");
    ad.push(VERSION);
    ad.push(id.len() as u8);
    ad.extend_from_slice(id);
    ad.extend_from_slice(&(column.len() as u32).to_be_bytes());
    ad.extend_from_slice(column.as_bytes());
    ad.extend_from_slice(&(row_digest.len() as u32).to_be_bytes());
    ad.extend_from_slice(row_digest);
    ad
}

fn cannot(column: &str, why: &str) -> StoreError {
    StoreError::CannotDecrypt(format!("the sealed value in column {column} {why}"))
}

impl Keyring {
    /// Seals `plaintext` under the active key, bound to `column` and `row_digest` (the
    /// digest that finds the row). Fails only if the system's random source does.
    pub fn seal(&self, column: &str, row_digest: &[u8], plaintext: &[u8]) -> Result<String> {
        let key: &Key = self.active();
        let id = key.id.as_bytes();
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| {
            StoreError::Internal("the system's random source failed while sealing a value")
        })?;
        let aad = associated_data(id, column, row_digest);
        let sealed = key
            .seal
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::Internal("a value is too long to seal"))?;
        let mut bytes = Vec::with_capacity(2 + id.len() + NONCE_LEN + sealed.len());
        bytes.push(VERSION);
        bytes.push(id.len() as u8);
        bytes.extend_from_slice(id);
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        let mut text = String::with_capacity(SEALED_PREFIX.len() + bytes.len() * 4 / 3 + 4);
        text.push_str(SEALED_PREFIX);
        STANDARD_NO_PAD.encode_string(&bytes, &mut text);
        Ok(text)
    }

    /// Opens what [`Keyring::seal`] made for the same `column` and `row_digest`, under
    /// whichever key of the keyring sealed it.
    pub fn open(&self, column: &str, row_digest: &[u8], sealed: &str) -> Result<Vec<u8>> {
        let not_sealed = || {
            cannot(
                column,
                "is not a sealed value of this package (damaged, or written in clear)",
            )
        };
        let b64 = sealed.strip_prefix(SEALED_PREFIX).ok_or_else(not_sealed)?;
        let bytes = STANDARD_NO_PAD.decode(b64).map_err(|_| not_sealed())?;
        let env = split(&bytes).ok_or_else(not_sealed)?;
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
        let aad = associated_data(env.id, column, row_digest);
        key.seal
            .decrypt(
                &XNonce::try_from(env.nonce).map_err(|_| not_sealed())?,
                Payload {
                    msg: env.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| {
                cannot(
                    column,
                    &format!(
                        "does not open under key id {id}: it was altered, or moved from another row or column"
                    ),
                )
            })
    }
}
