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
//! - `rows`: decoding what the old module (or anything else) may have written.

mod background;
mod busy;
mod cleanup;
mod connection;
mod errors;
mod file;
mod oauth;
mod rows;
mod schema;
mod sql;
mod tokens;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use connection::Db;

use super::TokenStore;
use crate::config::SyncMode;
use crate::error::{Result, StoreError};
use crate::model::{
    AccessToken, AuthorizationCode, ClientRecord, NewAccessToken, RefreshToken, RotateRequest,
    Rotation, Stats,
};

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

    fn main<R>(&self, f: impl FnOnce(&Db) -> Result<R>) -> Result<R> {
        self.with(&self.main, f)
    }
}

impl TokenStore for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn location(&self) -> Option<String> {
        Some(self.path.display().to_string())
    }

    fn open(&self) -> Result<bool> {
        let mut guard = self.main.lock().map_err(|_| StoreError::Poisoned)?;
        self.open_in(&mut guard)
    }

    /// Closes both connections (the checkpoint thread first, so the `.db` file alone then
    /// holds every token); the next call opens the file again.
    fn close(&self) -> Result<()> {
        *self.cleaner.lock().map_err(|_| StoreError::Poisoned)? = None;
        *self.main.lock().map_err(|_| StoreError::Poisoned)? = None;
        Ok(())
    }

    fn store_access_tokens(&self, tokens: &[NewAccessToken], now: i64) -> Result<()> {
        self.main(|db| db.store_access_tokens(tokens, now))
    }

    fn get_access_token(&self, token: &str, now: i64) -> Result<Option<AccessToken>> {
        self.main(|db| db.get_access_token(token, now))
    }

    fn store_authorization_code(&self, code: &str, data: &AuthorizationCode) -> Result<()> {
        self.main(|db| db.store_authorization_code(code, data))
    }

    fn take_authorization_code(&self, code: &str, now: i64) -> Result<Option<AuthorizationCode>> {
        self.main(|db| db.take_authorization_code(code, now))
    }

    fn get_refresh_token(&self, refresh_token: &str, now: i64) -> Result<Option<RefreshToken>> {
        self.main(|db| db.get_refresh_token(refresh_token, now))
    }

    fn revoke_refresh_token(&self, refresh_token: &str) -> Result<()> {
        self.main(|db| db.revoke_refresh_token(refresh_token))
    }

    fn delete_token(&self, token: &str) -> Result<()> {
        self.main(|db| db.delete_token(token))
    }

    fn delete_user_tokens(&self, user_id: &str) -> Result<()> {
        self.main(|db| db.delete_user_tokens(user_id))
    }

    fn cleanup_expired(&self, now: i64, limit: usize) -> Result<usize> {
        self.main(|db| db.cleanup_expired(now, limit))
    }

    fn cleanup_expired_in_background(&self, now: i64, limit: usize) -> Result<usize> {
        self.with(&self.cleaner, |db| db.cleanup_expired(now, limit))
    }

    fn cleanup_expired_as(&self, now: i64, limit: usize, holder: i64) -> Result<Option<usize>> {
        self.with(&self.cleaner, |db| {
            db.cleanup_expired_as(now, limit, holder)
        })
    }

    /// As long as the transaction took, and at least `MIN_CLEANUP_PAUSE`: a writer waiting
    /// for the lock polls it every millisecond (see `busy::BUSY_POLL`), so it takes
    /// the lock in that gap, and waits at most about one cleanup transaction.
    fn cleanup_pause(&self, took: Duration) -> Duration {
        took.max(MIN_CLEANUP_PAUSE)
    }

    fn stats(&self, now: i64) -> Result<Stats> {
        self.main(|db| db.stats(now))
    }

    fn rotate_refresh_token(&self, request: &RotateRequest, now: i64) -> Result<Rotation> {
        self.main(|db| db.rotate_refresh_token(request, now))
    }

    fn put_client(&self, client: &ClientRecord) -> Result<()> {
        self.main(|db| db.put_client(client))
    }

    fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        self.main(|db| db.get_client(client_id))
    }

    fn client_ids(&self) -> Result<Vec<String>> {
        self.main(|db| db.client_ids())
    }

    fn store_pending_authorization(
        &self,
        state: &str,
        data: &str,
        expires_at: i64,
        _now: i64,
    ) -> Result<()> {
        self.main(|db| db.store_pending_authorization(state, data, expires_at))
    }

    fn take_pending_authorization(&self, state: &str, now: i64) -> Result<Option<String>> {
        self.main(|db| db.take_pending_authorization(state, now))
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_cleanup;
#[cfg(test)]
mod tests_issue15;
