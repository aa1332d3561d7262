//! `encrypt`, `decrypt` and `rekey` of the command line (`lib/cli.js`): a store converted in place,
//! in one transaction (`store::sealed::convert`). The store is the backend itself, not
//! behind the sealed layer, which refuses a store that does not match its keys.

use std::time::Instant;

use napi_derive::napi;

use super::config::NativeConfig;
use super::errors::{js_err, Result};
use crate::error::StoreError;
use crate::store;
use crate::store::sealed::convert::{convert, Direction};

/// Converts the store of `options` (`"encrypt"`, `"decrypt"` or `"rekey"`) under its
/// `encryptionKeys`; answers JSON text: the counts, what could not be kept, the time taken.
/// `failVerify`: the tests' way to see a failed check leave the store as it was.
#[napi]
pub fn convert_store(
    options: NativeConfig,
    direction: String,
    fail_verify: bool,
) -> Result<String> {
    let direction = match direction.as_str() {
        "encrypt" => Direction::Encrypt,
        "decrypt" => Direction::Decrypt,
        "rekey" => Direction::Rekey,
        _ => {
            return Err(js_err(StoreError::InvalidArgument(
                "unknown conversion".into(),
            )))
        }
    };
    let keys = options.keyring().map_err(js_err)?.ok_or_else(|| {
        js_err(StoreError::Config(
            "no encryption keys: set TOKEN_ENCRYPTION_KEYS (or pass --keys-file)".into(),
        ))
    })?;
    let backend = store::open(&options.typed().map_err(js_err)?);
    let started = Instant::now();
    let converted = convert(&*backend, direction, &keys, fail_verify);
    let _ = backend.close();
    let c = converted.map_err(js_err)?;
    Ok(serde_json::json!({
        "counts": c.counts.to_json(),
        "droppedAuthorizationCodes": c.dropped_codes,
        "droppedPendingAuthorizations": c.dropped_pending,
        "droppedRefreshTokens": c.dropped_refresh,
        "ms": started.elapsed().as_millis() as u64,
    })
    .to_string())
}
