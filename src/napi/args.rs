//! Arguments from JS to the plain-Rust model: the records `lib/` passes (already checked
//! there, so callers get `TypeError`s naming the function and argument) and the times.

use std::mem::MaybeUninit;

use napi::bindgen_prelude::{FromNapiValue, TypeName, ValidateNapiValue};
use napi::{sys, ValueType};
use napi_derive::napi;

use super::errors::{js_err, Result};
use crate::error::StoreError;
use crate::model::{AuthorizationCode, ClientRecord, NewAccessToken, RotateRequest};
use crate::ops::Call;

/// Epoch milliseconds from a JS number (already checked finite by `lib/`).
pub fn millis(value: f64, name: &str) -> Result<i64> {
    if !value.is_finite() {
        return Err(js_err(StoreError::InvalidArgument(format!(
            "{name} must be a finite number"
        ))));
    }
    Ok(value.trunc() as i64)
}

/// The caller's clock: `Date.now()`, passed with every call so that every expiry decision,
/// every `createdAt` and every cleanup pass use the time the JavaScript side sees (fake
/// timers included), never the system clock behind its back.
pub fn clock(now: f64) -> Result<i64> {
    // The range of a JS `Date`: anything else is no clock reading.
    if !now.is_finite() || now.abs() > 8.64e15 {
        return Err(js_err(StoreError::InvalidArgument(
            "now must be the current time in epoch milliseconds (Date.now() returned something else)".into(),
        )));
    }
    Ok(now.trunc() as i64)
}

/// A string argument (a token, code, key or id), read from JS in one pass: napi-rs's
/// `String` asks V8 for the UTF-8 length, zero-fills a buffer of it and then converts (two
/// passes over a JWT-sized token); this converts into a buffer on the stack and copies the
/// result, and takes napi-rs's way only for a string too long for the buffer (or not a string,
/// for its error).
pub struct Key(pub String);

/// Bytes of the stack buffer: any token, code or key the package makes fits.
const KEY_BUFFER: usize = 2048;

impl TypeName for Key {
    fn type_name() -> &'static str {
        String::type_name()
    }

    fn value_type() -> ValueType {
        String::value_type()
    }
}

impl ValidateNapiValue for Key {}

impl FromNapiValue for Key {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        let mut buffer = MaybeUninit::<[u8; KEY_BUFFER]>::uninit();
        let mut written = 0usize;
        // SAFETY: `env` and `value` are the caller's, valid for this call; napi writes at most
        // KEY_BUFFER - 1 bytes and a NUL into the buffer, and `written` says how many it wrote.
        let status = unsafe {
            sys::napi_get_value_string_utf8(
                env,
                value,
                buffer.as_mut_ptr().cast(),
                KEY_BUFFER,
                &mut written,
            )
        };
        // A string cut short stops at most 3 bytes (one UTF-8 character) before the
        // KEY_BUFFER - 1 napi may write: with fewer written, the whole string is there.
        if status == sys::Status::napi_ok && written + 4 < KEY_BUFFER - 1 {
            // SAFETY: napi wrote (initialised) the first `written` bytes.
            let bytes =
                unsafe { std::slice::from_raw_parts(buffer.as_ptr().cast::<u8>(), written) };
            // V8 writes well-formed UTF-8 (a lone surrogate as U+FFFD).
            if let Ok(text) = std::str::from_utf8(bytes) {
                return Ok(Key(text.to_owned()));
            }
        }
        // SAFETY: as above.
        unsafe { String::from_napi_value(env, value) }.map(Key)
    }
}

/// One record of `storeAccessTokens` (and `storeAccessToken`'s arguments).
#[napi(object)]
pub struct NativeNewToken {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub api_key: String,
    pub user_id: Option<String>,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<f64>,
    /// The grant's RFC 8707 resource and extra (JSON text), if any.
    pub resource: Option<String>,
    pub extra: Option<String>,
}

/// `storeAccessToken`'s and `storeAuthorizationCode`'s optional last argument: the grant's
/// resource and extra (JSON text), checked by `lib/`.
#[napi(object)]
pub struct NativeGrant {
    pub resource: Option<String>,
    pub extra: Option<String>,
}

pub fn new_tokens(tokens: Vec<NativeNewToken>) -> Result<Vec<NewAccessToken>> {
    tokens
        .into_iter()
        .map(|t| {
            Ok(NewAccessToken {
                token: t.access_token,
                refresh_token: t.refresh_token,
                api_key: t.api_key,
                user_id: t.user_id,
                client_id: t.client_id,
                scopes: t.scopes,
                expires_at: t.expires_at.map(|t| millis(t, "expiresAt")).transpose()?,
                resource: t.resource,
                extra: t.extra,
                links: None,
            })
        })
        .collect()
}

/// What `storeAuthorizationCode` stores; `expiresIn` in seconds.
#[napi(object)]
pub struct NativeCode {
    pub user_id: Option<String>,
    pub api_key: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub scopes: Vec<String>,
    pub expires_in: f64,
    pub resource: Option<String>,
    pub extra: Option<String>,
}

/// The code's times are the caller's clock when it called (also when the store runs later).
pub fn new_code(code: String, d: NativeCode, now: f64) -> Result<Call> {
    let now = clock(now)?;
    let ttl = millis(d.expires_in * 1000.0, "expiresIn")?;
    Ok(Call::StoreAuthorizationCode(
        code,
        AuthorizationCode {
            user_id: d.user_id,
            api_key: d.api_key,
            client_id: d.client_id,
            redirect_uri: d.redirect_uri,
            code_challenge: d.code_challenge,
            code_challenge_method: d.code_challenge_method,
            scopes: d.scopes,
            expires_at: now.saturating_add(ttl),
            created_at: now,
            resource: d.resource,
            extra: d.extra,
        },
    ))
}

/// `rotateRefreshToken`'s arguments; times in milliseconds.
#[napi(object)]
pub struct NativeRotation {
    pub refresh_token: String,
    pub new_access_token: String,
    pub new_refresh_token: String,
    pub expires_at: Option<f64>,
}

impl NativeRotation {
    /// The request, with the store's grace period (see `RotateRequest`).
    pub fn typed(self, grace_ms: i64) -> Result<RotateRequest> {
        Ok(RotateRequest {
            refresh_token: self.refresh_token,
            new_access_token: self.new_access_token,
            new_refresh_token: self.new_refresh_token,
            expires_at: self
                .expires_at
                .map(|t| millis(t, "expiresAt"))
                .transpose()?,
            grace_ms,
            links: None,
        })
    }
}

/// A client registration as stored (made by the client registry's operations in `lib/`).
#[napi(object)]
pub struct NativeClient {
    pub client_id: String,
    pub secret_digest: Option<String>,
    /// The registration's metadata, JSON text.
    pub metadata: String,
    pub created_at: f64,
}

impl NativeClient {
    pub fn typed(self) -> Result<ClientRecord> {
        Ok(ClientRecord {
            client_id: self.client_id,
            secret_digest: self.secret_digest,
            metadata: self.metadata,
            created_at: millis(self.created_at, "createdAt")?,
        })
    }
}

/// `storePendingAuthorization`'s call; `ttl_ms` is the caller's `ttlSeconds` in milliseconds.
pub fn pending(state: String, data: String, ttl_ms: f64) -> Result<Call> {
    Ok(Call::StorePendingAuthorization {
        state,
        data,
        ttl_ms: millis(ttl_ms, "ttlSeconds")?,
    })
}
