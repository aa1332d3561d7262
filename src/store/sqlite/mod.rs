//! The SQLite store: one file, shared safely by several processes.
//!
//! The three tables are the ones the old JavaScript module created, so a `tokens.db` it
//! wrote opens here and keeps its tokens, and it can still read what this store writes.
//! Every write runs in a `BEGIN IMMEDIATE` transaction, every statement is cached, and
//! schema changes are `user_version` migrations that are only ever appended.
//!
//! - `connection`: one open connection: pragmas, the WAL check, transactions;
//! - `busy`: the busy handler (how a call waits for another connection's lock);
//! - `sql`, `tokens`, `oauth`, `cleanup`: each operation in SQL on a connection (the
//!   cleanup with its lease);
//! - `errors`: SQLite's errors mapped to the store's kinds;
//! - `schema`: the migrations and the marker of this package's files;
//! - `file`: the file and its folders before SQLite opens them (modes, symlinks);
//! - `background`: the checkpoint thread;
//! - `recent`: access tokens read recently, served again while nothing was committed;
//! - `held`: one read transaction for the synchronous gets of one turn of the JS thread;
//! - `refine`: millisecond counts for getStats' current bucket once it holds many rows;
//! - `watch`: inotify watches that spare most calls the check that the file is in place;
//! - `rows`: decoding what the old module (or anything else) may have written;
//! - `settings`: its settings (the file, the sync mode, the busy timeout), decoded;
//! - `store`: the `TokenStore` impl.

mod background;
mod busy;
mod cleanup;
mod connection;
mod errors;
mod file;
mod held;
mod oauth;
mod recent;
#[macro_use]
mod refine;
mod rows;
mod schema;
mod settings;
mod snapshot;
mod sql;
mod store;
mod tokens;
mod vfs;
mod watch;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use connection::Db;
pub use settings::{SqliteSettings, SyncMode};
pub(crate) use snapshot::verify_backup;

use crate::error::{Result, StoreError};

/// The shortest pause between two background cleanup transactions (see `cleanup_pause`).
const MIN_CLEANUP_PAUSE: Duration = Duration::from_millis(3);

/// A SQLite file. Connections open at first use, and again after `close` or after the
/// file was found deleted or replaced (`StoreError::Moved`).
pub struct SqliteStore {
    path: PathBuf,
    sync: SyncMode,
    busy_timeout_ms: u32,
    /// The connection every call uses.
    main: Mutex<Option<Db>>,
    /// A second connection for cleanup on a background thread, so that a long cleanup
    /// never holds the lock that the calls on `main` need for their reads.
    cleaner: Mutex<Option<Db>>,
}

impl SqliteStore {
    /// The store of the file at `path`; nothing is opened until the first call.
    pub fn new(path: PathBuf, sync: SyncMode, busy_timeout_ms: u32) -> Self {
        SqliteStore {
            path,
            sync,
            busy_timeout_ms,
            main: Mutex::new(None),
            cleaner: Mutex::new(None),
        }
    }

    /// Runs `f` on the connection in `slot`, opening it first if needed. A file found
    /// moved drops the connection, so the next call opens the path afresh.
    fn with<R>(&self, slot: &Mutex<Option<Db>>, f: impl FnOnce(&Db) -> Result<R>) -> Result<R> {
        let mut guard = slot.lock().map_err(|_| StoreError::Poisoned)?;
        self.open_in(&mut guard)?;
        let result = match guard.as_ref() {
            Some(db) => f(db),
            None => Err(StoreError::Poisoned),
        };
        if matches!(result, Err(StoreError::Moved { .. })) {
            *guard = None;
        }
        result
    }

    /// Opens a connection into `slot` if it holds none; returns whether it opened one.
    fn open_in(&self, slot: &mut Option<Db>) -> Result<bool> {
        if slot.is_some() {
            return Ok(false);
        }
        *slot = Some(Db::open(&self.path, self.sync, self.busy_timeout_ms)?);
        Ok(true)
    }

    /// Runs `f` on the main connection, after ending any read held for the synchronous
    /// gets (see `held`).
    fn main<R>(&self, f: impl FnOnce(&Db) -> Result<R>) -> Result<R> {
        self.with(&self.main, |db| {
            db.end_read()?;
            f(db)
        })
    }

    /// Runs `f` on the main connection as it is, a held read included.
    fn main_holding<R>(&self, f: impl FnOnce(&Db) -> Result<R>) -> Result<R> {
        self.with(&self.main, f)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_cleanup;
#[cfg(test)]
mod tests_issue15;
#[cfg(test)]
mod tests_held;
#[cfg(test)]
mod tests_issue18;
#[cfg(test)]
mod tests_recent;
#[cfg(test)]
mod tests_vfs;
#[cfg(test)]
mod tests_watch;
