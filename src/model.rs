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
    /// The RFC 8707 resource the grant is for (`None`: none); kept in clear.
    pub resource: Option<String>,
    /// The caller's own per-grant data, JSON text (`None`: none); sealed like the API key
    /// under a keyring (it may hold an upstream key).
    pub extra: Option<String>,
    /// With tokens sealed (`store::sealed`), the layer's sealed copy of the row's access
    /// and refresh token strings (the row holds their digests); opaque to a store, which
    /// keeps it with the access token. `None` in clear.
    pub links: Option<String>,
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
    /// The stored `NewAccessToken::resource` and `extra`.
    pub resource: Option<String>,
    pub extra: Option<String>,
    /// The stored `NewAccessToken::links`.
    pub links: Option<String>,
}

/// What `getRefreshToken` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub user_id: Option<String>,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub access_token: String,
    pub created_at: i64,
    /// Its access token's `NewAccessToken::links`.
    pub links: Option<String>,
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
    /// As `NewAccessToken::resource` and `extra`, given to the tokens the code is exchanged for.
    pub resource: Option<String>,
    pub extra: Option<String>,
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

/// A registered OAuth client (RFC 7591), as stored: its metadata as JSON text, and the
/// SHA-256 digest (hex) of its secret, never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub client_id: String,
    pub secret_digest: Option<String>,
    pub metadata: String,
    pub created_at: i64,
}

/// `rotateRefreshToken`'s request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotateRequest {
    pub refresh_token: String,
    pub new_access_token: String,
    pub new_refresh_token: String,
    pub expires_at: Option<i64>,
    /// How long after a rotation the old refresh token, presented again, is taken for a
    /// retry of the same request (refused, nothing revoked) rather than a replay.
    pub grace_ms: i64,
    /// The new pair's `NewAccessToken::links` (sealed by the layer); `None` in clear.
    pub links: Option<String>,
}

impl RotateRequest {
    /// The new access token, carrying over the old one's API key, user, client, scopes,
    /// resource and extra.
    pub fn successor(&self, old: &AccessToken) -> NewAccessToken {
        NewAccessToken {
            token: self.new_access_token.clone(),
            refresh_token: Some(self.new_refresh_token.clone()),
            api_key: old.api_key.clone(),
            user_id: old.user_id.clone(),
            client_id: old.client_id.clone(),
            scopes: old.scopes.clone(),
            expires_at: self.expires_at,
            resource: old.resource.clone(),
            extra: old.extra.clone(),
            links: self.links.clone(),
        }
    }

    /// What the rotation answers once `successor(old)` is stored.
    pub fn rotated(&self, old: AccessToken) -> Rotation {
        Rotation::Rotated(Rotated {
            user_id: old.user_id,
            client_id: old.client_id,
            scopes: old.scopes,
            api_key: old.api_key,
            access_token: self.new_access_token.clone(),
            refresh_token: self.new_refresh_token.clone(),
        })
    }
}

/// The new pair a rotation issued, with what it carries over from the old one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub user_id: Option<String>,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub api_key: String,
    pub access_token: String,
    pub refresh_token: String,
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    Rotated(Rotated),
    /// No live refresh token of that string, and none rotated away.
    Unknown,
    /// The refresh token was rotated away before: within the grace period nothing more
    /// happens; after it, every token of its family (`revoked` of them) was revoked.
    Reused {
        within_grace: bool,
        revoked: usize,
    },
}
