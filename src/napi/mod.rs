//! The napi layer: what JS sees of the addon. Each export decodes its arguments, calls the
//! plain-Rust store through `ops::run` and maps errors; `lib/` checks argument types first
//! (so callers get `TypeError`s naming the function and argument) and shapes the answers.
//!
//! - `store.rs`: the `NativeStore` class, its constructor, getters, `open` and `close`;
//! - `operations.rs`: the table of operations, each exported sync and async from one entry;
//! - `config.rs`: the store's configuration from JS to `StoreConfig` (decoded by the backend);
//! - `args.rs`: the operations' records, string arguments (`Key`, read in one pass) and
//!   times from JS to the model;
//! - `reply.rs`: answers to JS values (records as one string each, see `wire.rs`);
//! - `task.rs`: the Promise form: a call run on libuv's pool;
//! - `driven.rs`: the Promise form of a PostgreSQL store's `getAccessToken`, run from the JS
//!   thread itself;
//! - `copy.rs`: a copy from one store into another, and how far a copy or backup is;
//! - `convert.rs`: a store encrypted or decrypted in place (the command line's);
//! - `errors.rs`: `StoreError` to JS errors with their stable `code`;
//! - `info.rs`: module-level functions that need no store;
//! - `backup_age.rs`: a backup file encrypted in the age format, and decrypted.

mod args;
mod backup_age;
mod config;
mod convert;
mod copy;
mod driven;
mod errors;
mod info;
mod operations;
mod reply;
mod store;
mod task;

pub use args::{NativeClient, NativeCode, NativeNewToken, NativeRotation};
pub use backup_age::{age_decrypt_file, age_encrypt_file, is_age_file_at};
pub use config::NativeConfig;
pub use convert::convert_store;
pub use info::{check_encryption_keys, check_settings, sqlite_version};
pub use reply::{NativeStats, Reply};
pub use store::NativeStore;
pub use task::Later;
