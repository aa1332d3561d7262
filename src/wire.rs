//! Records as the JSON arrays `index.js` turns into the contract's objects. Positional,
//! so the JS side builds each object with one literal (one hidden class).

use napi::{Error as JsError, Status};

use crate::model::{AccessToken, AuthorizationCode, RefreshToken};

fn encode<T: serde::Serialize>(value: &T) -> napi::Result<String> {
    serde_json::to_string(value).map_err(|_| {
        JsError::new(
            Status::GenericFailure,
            "[ERR_TOKEN_STORAGE_INTERNAL] a stored record could not be encoded",
        )
    })
}

pub fn access_token(t: &AccessToken) -> napi::Result<String> {
    encode(&(
        &t.api_key,
        &t.user_id,
        &t.client_id,
        &t.scopes,
        &t.refresh_token,
        t.expires_at,
        t.created_at,
    ))
}

pub fn refresh_token(r: &RefreshToken) -> napi::Result<String> {
    encode(&(
        &r.user_id,
        &r.client_id,
        &r.scopes,
        &r.access_token,
        r.created_at,
    ))
}

pub fn authorization_code(c: &AuthorizationCode) -> napi::Result<String> {
    encode(&(
        &c.user_id,
        &c.api_key,
        &c.client_id,
        &c.redirect_uri,
        &c.code_challenge,
        &c.code_challenge_method,
        &c.scopes,
        c.expires_at,
        c.created_at,
    ))
}
