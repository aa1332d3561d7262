//! A backup file encrypted in the age format, and decrypted (`crate::backup_age`): what the
//! command line's `backup --encrypt-to`/`--passphrase-file` and `restore` call.

use std::path::Path;

use napi_derive::napi;

use super::errors::{js_err, Result};
use crate::backup_age::{decrypt_file, encrypt_file, is_age_file, EncryptTo, OpenWith};
use crate::error::StoreError;

/// Encrypts the file `input` into a new `0600` file `output`, to the `age1…` recipients or,
/// when there are none, to `passphrase`; answers the bytes written.
#[napi]
pub fn age_encrypt_file(
    input: String,
    output: String,
    recipients: Vec<String>,
    passphrase: Option<String>,
) -> Result<f64> {
    let to = match (recipients.is_empty(), passphrase) {
        (false, None) => EncryptTo::Recipients(recipients),
        (true, Some(p)) if !p.is_empty() => EncryptTo::Passphrase(p),
        _ => {
            return Err(js_err(StoreError::Config(
                "give either age recipients or a passphrase".into(),
            )))
        }
    };
    encrypt_file(Path::new(&input), Path::new(&output), &to)
        .map(|n| n as f64)
        .map_err(js_err)
}

/// Decrypts the age file `input` into a new `0600` file `output` with the identity file's
/// text `identities` or, when none is given, `passphrase`; answers the bytes written.
#[napi]
pub fn age_decrypt_file(
    input: String,
    output: String,
    identities: Option<String>,
    passphrase: Option<String>,
) -> Result<f64> {
    let with = match (identities, passphrase) {
        (Some(i), None) => OpenWith::Identities(i),
        (None, Some(p)) if !p.is_empty() => OpenWith::Passphrase(p),
        _ => {
            return Err(js_err(StoreError::Config(
                "give either an identity file or a passphrase".into(),
            )))
        }
    };
    decrypt_file(Path::new(&input), Path::new(&output), &with)
        .map(|n| n as f64)
        .map_err(js_err)
}

/// Whether the file at `path` is an age file (by its first line).
#[napi]
pub fn is_age_file_at(path: String) -> Result<bool> {
    is_age_file(Path::new(&path)).map_err(js_err)
}
