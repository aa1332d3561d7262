//! The in-process memory store, lost when the process ends.
//!
//! Laid out for a million tokens: each token is one slot in a slab, its token and refresh
//! token in one allocation; the two look-up tables hold only slot numbers; API keys, user
//! ids and (client id, scopes) pairs are shared between the tokens that have the same one
//! (a user's tokens all carry that user's key). About 300 bytes a token, where a JS `Map`
//! of objects takes more than twice that.
//!
//! - `tables`: the slab, its look-up tables and the shared values, kept consistent;
//! - `histogram`: the expiry buckets that make getStats constant-time;
//! - `ops`: each store operation on the tables;
//! - `errors`: its failures in the neutral kinds;
//! - `settings`: its settings (none);
//! - this file: the lock around them; `store`: the `TokenStore` impl.
//!
//! It has no rows to decode: the answers are built from the slots (`tables`, `ops`).

mod errors;
mod histogram;
mod ops;
mod settings;
mod snapshot;
mod store;
mod tables;

use std::sync::{Mutex, MutexGuard};

use crate::error::Result;
pub use settings::MemorySettings;
use tables::Tables;

/// The in-process memory store: its tables behind one lock.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn tables(&self) -> Result<MutexGuard<'_, Tables>> {
        self.tables.lock().map_err(errors::poisoned)
    }
}
