//! native-token-storage: synchronous OAuth token storage for Node.js.
//!
//! The plain-Rust core, usable without Node:
//! - `store`: the `TokenStore` trait, the list of backends (memory, SQLite, PostgreSQL),
//!   each a folder that also reads its own settings, and `StoreConfig`, which store to open;
//! - `ops`: each operation as a `Call`, checked and run on a store (`ops::run`), one body
//!   for the synchronous and the Promise form;
//! - `model`: the records;
//! - `default_stores`: the process-wide store per configuration (module-level functions);
//! - `crypto`: secrets at rest (keyring, lookup digests, sealed values; no store uses it yet);
//! - `error`: `StoreError` and its stable codes; `pkce`: the code challenge check;
//! - `wire`: records as the JSON arrays that cross to JS;
//! - `backup_age`: a backup file encrypted to age recipients or a passphrase, and back.
//!
//! The napi layer, what JS sees (`NativeStore`, `sqliteVersion`, `checkSettings`):
//! `napi/`, wrapped by `lib/` and the package's entry points.

pub mod backup_age;
pub mod crypto;
pub mod default_stores;
pub mod error;
pub mod model;
pub mod napi;
pub mod ops;
pub mod pkce;
pub mod store;
pub mod wire;
