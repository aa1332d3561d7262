//! The `TokenStore` impl of the memory store: each operation on the tables, under the lock.

use super::MemoryStore;
use crate::error::Result;
use crate::model::{
    AccessToken, AuthorizationCode, ClientRecord, NewAccessToken, RefreshToken, RotateRequest,
    Rotation, Stats,
};
use crate::store::TokenStore;
use crate::wire::AccessTokenRef;

impl TokenStore for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn in_memory(&self) -> bool {
        true
    }

    fn store_access_tokens(&self, tokens: &[NewAccessToken], now: i64) -> Result<()> {
        let mut tables = self.tables()?;
        // All or none: the only failure (a slab or token past 2^32) is checked first.
        tables.check_room(tokens)?;
        tokens
            .iter()
            .try_for_each(|t| tables.store_access_token(t, now))
    }

    fn get_access_token(&self, token: &str, now: i64) -> Result<Option<AccessToken>> {
        self.tables()?.get_access_token(token, now)
    }

    fn get_access_token_text(&self, token: &str, now: i64) -> Result<Option<String>> {
        self.tables()?.get_access_token_text(token, now)
    }

    fn with_access_token_linked(
        &self,
        token: &str,
        now: i64,
        write: &mut dyn FnMut(AccessTokenRef<'_>) -> Result<String>,
    ) -> Result<Option<String>> {
        self.tables()?.with_access_token_linked(token, now, write)
    }

    fn store_authorization_code(&self, code: &str, data: &AuthorizationCode) -> Result<()> {
        self.tables()?.store_authorization_code(code, data)
    }

    fn take_authorization_code(&self, code: &str, now: i64) -> Result<Option<AuthorizationCode>> {
        self.tables()?.take_authorization_code(code, now)
    }

    fn get_refresh_token(&self, refresh_token: &str, now: i64) -> Result<Option<RefreshToken>> {
        self.tables()?.get_refresh_token(refresh_token, now)
    }

    fn revoke_refresh_token(&self, refresh_token: &str) -> Result<()> {
        self.tables()?.revoke_refresh_token(refresh_token)
    }

    fn delete_token(&self, token: &str) -> Result<()> {
        self.tables()?.delete_token(token)
    }

    fn delete_user_tokens(&self, user_id: &str) -> Result<u64> {
        self.tables()?.delete_user_tokens(user_id)
    }

    fn cleanup_expired(&self, now: i64, limit: usize) -> Result<usize> {
        self.tables()?.cleanup_expired(now, limit)
    }

    fn stats(&self, now: i64) -> Result<Stats> {
        self.tables()?.stats(now)
    }

    fn rotate_refresh_token(&self, request: &RotateRequest, now: i64) -> Result<Rotation> {
        self.tables()?.rotate_refresh_token(request, now)
    }

    fn put_client(&self, client: &ClientRecord) -> Result<()> {
        self.tables()?.put_client(client)
    }

    fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        self.tables()?.get_client(client_id)
    }

    fn client_ids(&self) -> Result<Vec<String>> {
        self.tables()?.client_ids()
    }

    fn store_pending_authorization(
        &self,
        state: &str,
        data: &str,
        expires_at: i64,
        _now: i64,
    ) -> Result<()> {
        self.tables()?
            .store_pending_authorization(state, data, expires_at)
    }

    fn take_pending_authorization(&self, state: &str, now: i64) -> Result<Option<String>> {
        self.tables()?.take_pending_authorization(state, now)
    }

    fn seal_mark(&self) -> Result<(Option<String>, bool)> {
        let tables = self.tables()?;
        Ok((tables.seal_mark.clone(), holds_secrets(&tables)))
    }

    /// No: under a keyring the memory store keeps its tokens in clear, in the process's
    /// memory, where the keys are too (sealing them there would protect nothing: whoever
    /// reads the memory or a core dump reads the keys); its codes and pending
    /// authorizations are sealed as on every store, and whatever leaves it (a backup, a
    /// copy) is sealed as a sealed store's rows are (`sealed::Sealed::export_rows`).
    fn seals_tokens(&self) -> bool {
        false
    }

    fn set_seal_mark(&self, old: Option<&str>, new: &str, only_if_empty: bool) -> Result<bool> {
        let mut tables = self.tables()?;
        if tables.seal_mark.as_deref() != old || (only_if_empty && holds_secrets(&tables)) {
            return Ok(false);
        }
        tables.seal_mark = Some(new.to_owned());
        Ok(true)
    }
}

/// Whether any row but a client's is stored.
fn holds_secrets(tables: &super::tables::Tables) -> bool {
    let c = tables.counts();
    c.total() > c.clients
}
