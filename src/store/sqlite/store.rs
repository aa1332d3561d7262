//! The `TokenStore` impl of the SQLite store: each operation on the main connection, and
//! cleanup on its own.

use std::time::Duration;

use super::connection::Db;
use super::{SqliteStore, MIN_CLEANUP_PAUSE};
use crate::error::{Result, StoreError};
use crate::model::{
    AccessToken, AuthorizationCode, ClientRecord, NewAccessToken, RefreshToken, RotateRequest,
    Rotation, Stats,
};
use crate::store::TokenStore;

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
        self.main(|db| db.get_access_token(token, now, false))
    }

    fn get_access_token_linked(&self, token: &str, now: i64) -> Result<Option<AccessToken>> {
        self.main(|db| db.get_access_token(token, now, true))
    }

    /// From the connection's recently read replies where it can (see `recent`).
    fn get_access_token_text(&self, token: &str, now: i64) -> Result<Option<String>> {
        self.main(|db| db.get_access_token_text(token, now))
    }

    /// The same, in one read transaction held until `end_reads` (see `held`).
    fn get_access_token_text_holding(&self, token: &str, now: i64) -> Result<Option<String>> {
        self.main_holding(|db| db.get_access_token_text_as(token, now, true))
    }

    /// Without opening the file if it is closed: nothing is held then.
    fn end_reads(&self) -> Result<()> {
        let guard = self.main.lock().map_err(|_| StoreError::Poisoned)?;
        guard.as_ref().map_or(Ok(()), Db::end_read)
    }

    fn store_authorization_code(&self, code: &str, data: &AuthorizationCode) -> Result<()> {
        self.main(|db| db.store_authorization_code(code, data))
    }

    fn take_authorization_code(&self, code: &str, now: i64) -> Result<Option<AuthorizationCode>> {
        self.main(|db| db.take_authorization_code(code, now))
    }

    fn get_refresh_token(&self, refresh_token: &str, now: i64) -> Result<Option<RefreshToken>> {
        self.main(|db| db.get_refresh_token(refresh_token, now, false))
    }

    fn get_refresh_token_linked(
        &self,
        refresh_token: &str,
        now: i64,
    ) -> Result<Option<RefreshToken>> {
        self.main(|db| db.get_refresh_token(refresh_token, now, true))
    }

    fn revoke_refresh_token(&self, refresh_token: &str) -> Result<()> {
        self.main(|db| db.revoke_refresh_token(refresh_token))
    }

    fn delete_token(&self, token: &str) -> Result<()> {
        self.main(|db| db.delete_token(token))
    }

    fn delete_user_tokens(&self, user_id: &str) -> Result<u64> {
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

    /// On the cleanup's connection, as the cleanup.
    fn prepare_stats(&self, now: i64, until: i64) -> Result<()> {
        self.with(&self.cleaner, |db| db.refine_ahead(now, until).map(drop))
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

    fn seal_mark(&self) -> Result<(Option<String>, bool)> {
        self.main(|db| db.seal_mark())
    }

    fn seals_tokens(&self) -> bool {
        true
    }

    fn set_seal_mark(&self, old: Option<&str>, new: &str, only_if_empty: bool) -> Result<bool> {
        self.main(|db| db.set_seal_mark(old, new, only_if_empty))
    }
}
