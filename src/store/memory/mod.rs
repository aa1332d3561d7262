//! The in-process memory store, lost when the process ends.
//!
//! Laid out for a million tokens: each token is one slot in a slab (216 bytes), its token
//! and refresh token inside the slot when they fit in 128 bytes (two 64-character tokens),
//! else in one allocation of their own; the two look-up tables hold only slot numbers; API
//! keys, user ids and (client id, scopes) pairs are shared between the tokens that have
//! the same one (a user's tokens all carry that user's key). The slab and the look-up
//! tables ask for 2 MiB pages (`huge`). About 350 bytes a token with 64-character tokens,
//! where a JS `Map` of objects takes more than twice that.
//!
//! - `tables`: the slab, its look-up tables and the shared values, kept consistent;
//! - `text`: a slot's strings, inside it when short; `huge`: the big arrays' page advice;
//! - `histogram`: the expiry buckets that make getStats constant-time;
//! - `ops`: each store operation on the tables;
//! - `errors`: its failures in the neutral kinds;
//! - `settings`: its settings (none);
//! - this file: the lock around them; `store`: the `TokenStore` impl.
//!
//! It has no rows to decode: the answers are built from the slots (`tables`, `ops`).

mod errors;
mod histogram;
mod huge;
mod ops;
mod settings;
mod snapshot;
mod store;
mod tables;
mod text;

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
