//! native-token-storage: synchronous OAuth token storage for Node.js.
//!
//! The plain-Rust core, usable without Node:
//! - `store`: the `TokenStore` trait and its backends (memory, SQLite, PostgreSQL);
//! - `ops`: each operation as a `Call`, checked and run on a store (`ops::run`), one body
//!   for the synchronous and the Promise form;
//! - `model`: the records; `config`: which store to open and the defaults;
//! - `default_stores`: the process-wide store per configuration (module-level functions);
//! - `error`: `StoreError` and its stable codes; `pkce`: the code challenge check;
//! - `wire`: records as the JSON arrays that cross to JS.
//!
//! The napi layer, what JS sees (`NativeStore`, `sqliteVersion`, `checkPostgresUrl`):
//! `napi/`, wrapped by `lib/` and the package's entry points.

pub mod config;
pub mod default_stores;
pub mod error;
pub mod model;
pub mod napi;
pub mod ops;
pub mod pkce;
pub mod store;
pub mod wire;
