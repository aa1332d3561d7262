//! The `TokenStore` trait that every backend implements, and the pieces of behaviour that
//! sit above it (PKCE on consume, argument rules) so that backends cannot differ on them.

mod memory;
mod sqlite;

pub use memory::MemoryStore;
pub use sqlite::SqliteStore;

use crate::config::StoreConfig;
use crate::error::{Result, StoreError};
use crate::model::{AccessToken, AuthorizationCode, NewAccessToken, RefreshToken, Stats};
use crate::pkce;

/// A token store. Every method is one atomic step: a reader never sees half of a write,
/// also when several processes share one SQLite file.
///
/// `now` is passed in (epoch milliseconds) so that expiry is testable without sleeping.
pub trait TokenStore: Send {
    /// Stores an access token (and its refresh token, if any), replacing any token with the
    /// same string and the refresh token that pointed at it.
    fn store_access_token(&mut self, token: NewAccessToken, now: i64) -> Result<()>;

    /// Stores many access tokens at once, all or none (a migration, a seed): as many
    /// `store_access_token` calls, in one transaction where the store has them.
    fn store_access_tokens(&mut self, tokens: Vec<NewAccessToken>, now: i64) -> Result<()> {
        tokens.iter().try_for_each(validate_new_access_token)?;
        tokens
            .into_iter()
            .try_for_each(|t| self.store_access_token(t, now))
    }

    /// The live access token, or `None`. An expired one is removed with its refresh token.
    fn get_access_token(&mut self, token: &str, now: i64) -> Result<Option<AccessToken>>;

    /// Stores an authorization code, replacing any code with the same string.
    fn store_authorization_code(&mut self, code: &str, data: AuthorizationCode) -> Result<()>;

    /// Removes the code and returns it if it was live. Exactly one caller can take a code.
    fn take_authorization_code(
        &mut self,
        code: &str,
        now: i64,
    ) -> Result<Option<AuthorizationCode>>;

    /// The refresh token if its access token is live, or `None`.
    fn get_refresh_token(&mut self, refresh_token: &str, now: i64) -> Result<Option<RefreshToken>>;

    /// Removes the refresh token and its access token.
    fn revoke_refresh_token(&mut self, refresh_token: &str) -> Result<()>;

    /// Removes the access token and its refresh token.
    fn delete_token(&mut self, token: &str) -> Result<()>;

    /// Removes every access token, refresh token and authorization code of the user.
    fn delete_user_tokens(&mut self, user_id: &str) -> Result<()>;

    /// Removes at most `limit` expired access tokens (with their refresh tokens) and
    /// expired authorization codes; returns how many it removed. Fewer than `limit`
    /// means nothing expired is left.
    fn cleanup_expired(&mut self, now: i64, limit: usize) -> Result<usize>;

    /// Counts of live tokens.
    fn stats(&mut self, now: i64) -> Result<Stats>;
}

/// Opens the store a configuration names.
pub fn open(config: &StoreConfig) -> Result<Box<dyn TokenStore>> {
    match config {
        StoreConfig::Memory => Ok(Box::new(MemoryStore::new())),
        StoreConfig::Sqlite {
            path,
            sync,
            busy_timeout_ms,
        } => Ok(Box::new(SqliteStore::open(path, *sync, *busy_timeout_ms)?)),
    }
}

/// `consumeAuthorizationCode`: takes the code (so any attempt uses it up), then checks PKCE.
pub fn consume_authorization_code(
    store: &mut dyn TokenStore,
    code: &str,
    verifier: Option<&str>,
    now: i64,
) -> Result<Option<AuthorizationCode>> {
    let Some(data) = store.take_authorization_code(code, now)? else {
        return Ok(None);
    };
    let ok = pkce::verify(
        data.code_challenge.as_deref(),
        data.code_challenge_method.as_deref(),
        verifier,
    );
    Ok(ok.then_some(data))
}

/// Removes everything expired, in batches of `batch`; returns how many it removed.
pub fn cleanup_all(store: &mut dyn TokenStore, now: i64, batch: usize) -> Result<usize> {
    let batch = batch.max(1);
    let mut total = 0;
    loop {
        let n = store.cleanup_expired(now, batch)?;
        total += n;
        if n < batch {
            return Ok(total);
        }
    }
}

/// Checks the rules every backend relies on; the JS layer checks them first with
/// messages that name the function and argument.
pub fn validate_new_access_token(t: &NewAccessToken) -> Result<()> {
    require_non_empty("accessToken", &t.token)?;
    require_non_empty("apiKey", &t.api_key)?;
    require_non_empty("clientId", &t.client_id)?;
    if t.user_id.as_deref() == Some("") {
        return Err(invalid("userId must be null or a non-empty string"));
    }
    Ok(())
}

pub fn validate_authorization_code(code: &str, c: &AuthorizationCode) -> Result<()> {
    require_non_empty("code", code)?;
    require_non_empty("apiKey", &c.api_key)?;
    require_non_empty("clientId", &c.client_id)?;
    require_non_empty("redirectUri", &c.redirect_uri)?;
    if c.user_id.as_deref() == Some("") {
        return Err(invalid("userId must be null or a non-empty string"));
    }
    Ok(())
}

fn require_non_empty(name: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(invalid(&format!("{name} must be a non-empty string")));
    }
    Ok(())
}

fn invalid(msg: &str) -> StoreError {
    StoreError::InvalidArgument(msg.to_owned())
}

#[cfg(test)]
mod tests;
