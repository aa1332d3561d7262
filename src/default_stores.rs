//! The process-wide default stores (the module-level functions): one per configuration,
//! shared by every worker thread, as the process has one memory store and one connection
//! per file.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Result, StoreError};
use crate::store::StoreConfig;
use crate::store::{self, TokenStore};

/// The process-wide store for this configuration, made (not opened) on first request.
pub fn shared(config: &StoreConfig) -> Result<Arc<dyn TokenStore>> {
    static DEFAULTS: OnceLock<Mutex<HashMap<String, Arc<dyn TokenStore>>>> = OnceLock::new();
    let mut map = DEFAULTS
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| StoreError::Poisoned)?;
    Ok(map
        .entry(config.key())
        .or_insert_with(|| store::open(config))
        .clone())
}
