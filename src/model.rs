//! Plain records the stores take and return. Times are epoch milliseconds.

/// What `storeAccessToken` stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccessToken {
    pub token: String,
    /// `None` or empty: no refresh token.
    pub refresh_token: Option<String>,
    pub api_key: String,
    pub user_id: Option<String>,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<i64>,
}

/// What `getAccessToken` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub api_key: String,
    pub user_id: Option<String>,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub refresh_token: Option<String>,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

/// What `getRefreshToken` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub user_id: Option<String>,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub access_token: String,
    pub created_at: i64,
}

/// An authorization code, as stored and as `consumeAuthorizationCode` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    pub user_id: Option<String>,
    pub api_key: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub scopes: Vec<String>,
    pub expires_at: i64,
    pub created_at: i64,
}

/// What `getStats` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Live (unexpired) access tokens.
    pub total_tokens: u64,
    /// Distinct non-null user ids among live access tokens.
    pub unique_users: u64,
}

/// Whether a record with this expiry is expired at `now`.
pub fn is_expired(expires_at: Option<i64>, now: i64) -> bool {
    matches!(expires_at, Some(t) if t <= now)
}

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}
