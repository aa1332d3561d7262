//! native-token-storage: synchronous OAuth token storage for Node.js.
//!
//! This file is the table of contents and the napi layer: each export converts its
//! arguments, calls the plain-Rust store and maps errors. `index.js` checks argument
//! types first (so callers get `TypeError`s naming the function and argument) and turns
//! times into `Date`s where the contract says so.
//!
//! Records cross to JS as one JSON array each (see `wire.rs`): one string and one
//! `JSON.parse` cost less than a napi call per field.

pub mod config;
pub mod error;
pub mod model;
pub mod ops;
pub mod pkce;
pub mod registry;
pub mod store;
mod wire;

use std::path::PathBuf;
use std::sync::Arc;

use napi::bindgen_prelude::{AsyncTask, FromNapiValue, ToNapiValue, Unknown};
use napi::{Env, Task};
use napi_derive::napi;

use config::{StoreConfig, SyncMode, DEFAULT_BUSY_TIMEOUT_MS};
use error::StoreError;
use model::{now_ms, AuthorizationCode, NewAccessToken};
use ops::BackgroundCleanup;
use store::TokenStore;

/// A store error as a JS `Error`; `index.js` moves the `[CODE]` prefix to `err.code`.
/// A store error's stable code, which napi puts on the JS error as `code`.
pub struct Code(&'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

type JsError = napi::Error<Code>;
type Result<T> = std::result::Result<T, JsError>;

/// A store error as a JS `Error` whose `code` is the error's (`lib/errors.js` gives it its
/// class: `TokenStorageError`, or `TypeError` for an argument).
fn js_err(e: StoreError) -> JsError {
    JsError::new(Code(e.code()), e.to_string())
}

/// Epoch milliseconds from a JS number (already checked finite by `index.js`).
fn millis(value: f64, name: &str) -> Result<i64> {
    if !value.is_finite() {
        return Err(js_err(StoreError::InvalidArgument(format!(
            "{name} must be a finite number"
        ))));
    }
    Ok(value.trunc() as i64)
}

/// One record of `storeAccessTokens` (checked by `index.js` first).
#[napi(object)]
pub struct NativeNewToken {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub api_key: String,
    pub user_id: Option<String>,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<f64>,
}

#[napi(object)]
pub struct NativeStats {
    pub total_tokens: f64,
    pub unique_users: f64,
}

/// A store's configuration, checked by `lib/config.js`.
#[napi(object)]
pub struct NativeConfig {
    /// `"memory"` or `"sqlite"`.
    pub kind: String,
    /// The SQLite file's absolute path.
    pub path: Option<String>,
    /// `"normal"` or `"full"`.
    pub sync: Option<String>,
    pub busy_timeout_ms: Option<u32>,
    /// Use the process-wide store for this configuration (module-level functions).
    pub shared: bool,
}

impl NativeConfig {
    fn typed(&self) -> std::result::Result<StoreConfig, StoreError> {
        let unknown = |what: &str| StoreError::Config(format!("unknown {what}"));
        match (self.kind.as_str(), self.path.as_deref()) {
            ("memory", _) => Ok(StoreConfig::Memory),
            ("sqlite", Some(path)) => Ok(StoreConfig::Sqlite {
                path: PathBuf::from(path),
                sync: match self.sync.as_deref() {
                    None | Some("normal") => SyncMode::Normal,
                    Some("full") => SyncMode::Full,
                    Some(_) => return Err(unknown("sync mode")),
                },
                busy_timeout_ms: self.busy_timeout_ms.unwrap_or(DEFAULT_BUSY_TIMEOUT_MS),
            }),
            ("sqlite", None) => Err(StoreError::Config("a SQLite store needs a path".into())),
            _ => Err(unknown("store kind")),
        }
    }
}

/// One store: memory or a SQLite file. Wrapped by `TokenStorage` in `index.js`.
#[napi]
pub struct NativeStore {
    store: Arc<dyn TokenStore>,
    cleanup: Arc<BackgroundCleanup>,
}

#[napi]
impl NativeStore {
    #[napi(constructor)]
    pub fn new(options: NativeConfig) -> Result<Self> {
        let config = options.typed().map_err(js_err)?;
        let store = if options.shared {
            registry::shared(&config).map_err(js_err)?
        } else {
            store::open(&config)
        };
        Ok(NativeStore {
            store,
            cleanup: Arc::default(),
        })
    }

    /// `"memory"` or `"sqlite"`.
    #[napi(getter)]
    pub fn storage(&self) -> String {
        self.store.kind().to_owned()
    }

    /// Where the store keeps its data (the database file's absolute path), or `null`.
    #[napi(getter)]
    pub fn path(&self) -> Option<String> {
        self.store.location()
    }

    /// Opens the store if it is closed; returns whether it opened it now.
    #[napi]
    pub fn open(&self) -> Result<bool> {
        self.store.open().map_err(js_err)
    }

    #[napi]
    pub fn close(&self) -> Result<()> {
        self.store.close().map_err(js_err)
    }

    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn store_access_token(
        &self,
        token: String,
        refresh_token: Option<String>,
        api_key: String,
        user_id: Option<String>,
        client_id: String,
        scopes: Vec<String>,
        expires_at: Option<f64>,
    ) -> Result<()> {
        let expires_at = expires_at.map(|t| millis(t, "expiresAt")).transpose()?;
        let t = NewAccessToken {
            token,
            refresh_token,
            api_key,
            user_id,
            client_id,
            scopes,
            expires_at,
        };
        ops::store_access_tokens(&*self.store, std::slice::from_ref(&t), now_ms())
            .map(|_| ())
            .map_err(js_err)
    }

    /// Stores many tokens at once, all or none; returns how many distinct tokens it stored.
    #[napi]
    pub fn store_access_tokens(&self, tokens: Vec<NativeNewToken>) -> Result<u32> {
        let list = tokens
            .into_iter()
            .map(|t| {
                Ok(NewAccessToken {
                    token: t.access_token,
                    refresh_token: t.refresh_token,
                    api_key: t.api_key,
                    user_id: t.user_id,
                    client_id: t.client_id,
                    scopes: t.scopes,
                    expires_at: t.expires_at.map(|x| millis(x, "expiresAt")).transpose()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let stored = ops::store_access_tokens(&*self.store, &list, now_ms()).map_err(js_err)?;
        Ok(u32::try_from(stored).unwrap_or(u32::MAX))
    }

    #[napi]
    pub fn get_access_token(&self, token: String) -> Result<Option<String>> {
        let found = self
            .store
            .get_access_token(&token, now_ms())
            .map_err(js_err)?;
        found
            .map(|t| wire::access_token(&t))
            .transpose()
            .map_err(js_err)
    }

    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn store_authorization_code(
        &self,
        code: String,
        user_id: Option<String>,
        api_key: String,
        client_id: String,
        redirect_uri: String,
        code_challenge: Option<String>,
        code_challenge_method: Option<String>,
        scopes: Vec<String>,
        expires_in: f64,
    ) -> Result<()> {
        let now = now_ms();
        let ttl = millis(expires_in * 1000.0, "expiresIn")?;
        let data = AuthorizationCode {
            user_id,
            api_key,
            client_id,
            redirect_uri,
            code_challenge,
            code_challenge_method,
            scopes,
            expires_at: now.saturating_add(ttl),
            created_at: now,
        };
        ops::store_authorization_code(&*self.store, &code, &data).map_err(js_err)
    }

    /// `[userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes,
    /// expiresAt, createdAt]` as JSON.
    #[napi]
    pub fn consume_authorization_code(
        &self,
        code: String,
        code_verifier: Option<String>,
    ) -> Result<Option<String>> {
        let found = ops::consume_authorization_code(
            &*self.store,
            &code,
            code_verifier.as_deref(),
            now_ms(),
        )
        .map_err(js_err)?;
        found
            .map(|c| wire::authorization_code(&c))
            .transpose()
            .map_err(js_err)
    }

    /// `[userId, clientId, scopes, accessToken, createdAt]` as JSON.
    #[napi]
    pub fn get_refresh_token(&self, refresh_token: String) -> Result<Option<String>> {
        let found = self
            .store
            .get_refresh_token(&refresh_token, now_ms())
            .map_err(js_err)?;
        found
            .map(|r| wire::refresh_token(&r))
            .transpose()
            .map_err(js_err)
    }

    #[napi]
    pub fn revoke_refresh_token(&self, refresh_token: String) -> Result<()> {
        self.store
            .revoke_refresh_token(&refresh_token)
            .map_err(js_err)
    }

    #[napi]
    pub fn delete_token(&self, token: String) -> Result<()> {
        self.store.delete_token(&token).map_err(js_err)
    }

    #[napi]
    pub fn delete_user_tokens(&self, user_id: String) -> Result<()> {
        self.store.delete_user_tokens(&user_id).map_err(js_err)
    }

    /// Removes everything expired, `batch_size` rows per transaction; returns the count.
    #[napi]
    pub fn cleanup_expired_tokens(&self, batch_size: u32) -> Result<u32> {
        let n = ops::cleanup_all(&*self.store, now_ms(), batch_size as usize).map_err(js_err)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Removes at most `batch_size` expired rows in one transaction, on a thread of the
    /// libuv pool (and its own SQLite connection); resolves to the count.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn cleanup_expired_batch_async(&self, batch_size: u32) -> AsyncTask<CleanupBatch> {
        AsyncTask::new(CleanupBatch {
            store: self.store.clone(),
            cleanup: self.cleanup.clone(),
            batch_size: batch_size.max(1) as usize,
        })
    }

    #[napi]
    pub fn get_stats(&self) -> Result<NativeStats> {
        let s = self.store.stats(now_ms()).map_err(js_err)?;
        Ok(NativeStats {
            total_tokens: s.total_tokens as f64,
            unique_users: s.unique_users as f64,
        })
    }
}

/// One batch of `cleanupExpiredTokensAsync`, computed off the JS thread.
pub struct CleanupBatch {
    store: Arc<dyn TokenStore>,
    cleanup: Arc<BackgroundCleanup>,
    batch_size: usize,
}

impl Task for CleanupBatch {
    type Output = std::result::Result<usize, StoreError>;
    type JsValue = u32;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(self.cleanup.batch(&*self.store, now_ms(), self.batch_size))
    }

    fn resolve(&mut self, env: Env, removed: Self::Output) -> napi::Result<u32> {
        match removed {
            Ok(n) => Ok(u32::try_from(n).unwrap_or(u32::MAX)),
            Err(e) => Err(rejection(&env, e)),
        }
    }
}

/// A store error as the rejection of a Promise: a JS error made here, on the JS thread, with
/// its `code`, and handed to napi by reference (a `Task` rejects with `napi::Error`, whose
/// own status codes are napi's).
fn rejection(env: &Env, e: StoreError) -> napi::Error {
    // SAFETY: `env` is the live environment of the JS thread this runs on (resolve), and
    // the value is read right after it was made.
    let made = unsafe {
        <JsError as ToNapiValue>::to_napi_value(env.raw(), js_err(e))
            .and_then(|v| Unknown::from_napi_value(env.raw(), v))
    };
    match made {
        Ok(value) => napi::Error::from(value),
        Err(err) => err,
    }
}

/// The version of the bundled SQLite library.
#[napi]
pub fn sqlite_version() -> String {
    rusqlite::version().to_owned()
}
