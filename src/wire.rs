//! Records as the JSON arrays `index.js` turns into the contract's objects. Positional,
//! so the JS side builds each object with one literal (one hidden class).

use crate::error::StoreError;
use crate::model::{AccessToken, AuthorizationCode, ClientRecord, RefreshToken, Rotation};

/// JSON of `value`, into a buffer sized from `text_len` (the record's string bytes) so
/// that it is written without reallocating in the common case.
fn encode<T: serde::Serialize>(value: &T, text_len: usize) -> Result<String, StoreError> {
    let mut out = Vec::with_capacity(text_len + text_len / 8 + 96);
    serde_json::to_writer(&mut out, value).map_err(|_| encoding_failed())?;
    // serde_json writes valid UTF-8 only.
    String::from_utf8(out).map_err(|_| encoding_failed())
}

fn encoding_failed() -> StoreError {
    StoreError::Internal("a stored record could not be encoded")
}

fn len(s: &Option<String>) -> usize {
    s.as_ref().map_or(0, String::len)
}

fn scopes_len(scopes: &[String]) -> usize {
    scopes.iter().map(|s| s.len() + 3).sum()
}

pub fn access_token(t: &AccessToken) -> Result<String, StoreError> {
    let record = (
        &t.api_key,
        &t.user_id,
        &t.client_id,
        &t.scopes,
        &t.refresh_token,
        t.expires_at,
        t.created_at,
    );
    let n = t.api_key.len() + len(&t.user_id) + t.client_id.len() + len(&t.refresh_token);
    encode(&record, n + scopes_len(&t.scopes))
}

pub fn refresh_token(r: &RefreshToken) -> Result<String, StoreError> {
    let record = (
        &r.user_id,
        &r.client_id,
        &r.scopes,
        &r.access_token,
        r.created_at,
    );
    let n = len(&r.user_id) + r.client_id.len() + r.access_token.len();
    encode(&record, n + scopes_len(&r.scopes))
}

pub fn authorization_code(c: &AuthorizationCode) -> Result<String, StoreError> {
    let record = (
        &c.user_id,
        &c.api_key,
        &c.client_id,
        &c.redirect_uri,
        &c.code_challenge,
        &c.code_challenge_method,
        &c.scopes,
        c.expires_at,
        c.created_at,
    );
    let n = len(&c.user_id)
        + c.api_key.len()
        + c.client_id.len()
        + c.redirect_uri.len()
        + len(&c.code_challenge)
        + len(&c.code_challenge_method);
    encode(&record, n + scopes_len(&c.scopes))
}

/// `[outcome, userId, clientId, scopes, apiKey, accessToken, refreshToken, revoked]`;
/// outcome `"rotated"`, `"unknown"`, `"retry"` (reused within the grace period) or
/// `"reused"` (after it: the family revoked).
pub fn rotation(r: &Rotation) -> Result<String, StoreError> {
    let none: Option<&str> = None;
    match r {
        Rotation::Rotated(n) => encode(
            &(
                "rotated",
                &n.user_id,
                &n.client_id,
                &n.scopes,
                &n.api_key,
                &n.access_token,
                &n.refresh_token,
                0,
            ),
            n.api_key.len() + n.access_token.len() + n.refresh_token.len() + 64,
        ),
        Rotation::Unknown => encode(&("unknown", none, none, none, none, none, none, 0), 64),
        Rotation::Reused {
            within_grace,
            revoked,
        } => encode(
            &(
                if *within_grace { "retry" } else { "reused" },
                none,
                none,
                none,
                none,
                none,
                none,
                revoked,
            ),
            64,
        ),
    }
}

/// `[clientId, secretDigest, metadata, createdAt]`, the metadata as JSON text in a string.
pub fn client(c: &ClientRecord) -> Result<String, StoreError> {
    encode(
        &(&c.client_id, &c.secret_digest, &c.metadata, c.created_at),
        c.client_id.len() + c.metadata.len() + 96,
    )
}

pub fn ids(ids: &[String]) -> Result<String, StoreError> {
    encode(&ids, ids.iter().map(|i| i.len() + 3).sum())
}
