//! Module-level functions that need no store.

use napi_derive::napi;
use serde_json::{Map, Value};

use super::errors::{js_err, Result};
use crate::store;

/// The version of the bundled SQLite library.
#[napi]
pub fn sqlite_version() -> String {
    rusqlite::version().to_owned()
}

/// Checks the settings of a store of `kind` as far as they can be checked before anything
/// opens (a PostgreSQL connection string's form and the CA file it names, without
/// connecting): its backend's `check` (`store/<kind>/settings.rs`).
#[napi]
pub fn check_settings(kind: String, settings: Map<String, Value>) -> Result<()> {
    store::check_settings(&kind, &settings).map_err(js_err)
}

/// Checks a keyring (`TOKEN_ENCRYPTION_KEYS` or the `encryptionKeys` option) at
/// configuration: `ERR_TOKEN_STORAGE_BAD_ENCRYPTION_KEY` naming the entry, never its key.
#[napi]
pub fn check_encryption_keys(keys: String) -> Result<()> {
    crate::crypto::Keyring::parse(&keys)
        .map(|_| ())
        .map_err(js_err)
}
