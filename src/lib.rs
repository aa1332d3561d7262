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

use napi::bindgen_prelude::{AsyncTask, FromNapiValue, ToNapiValue, TypeName, Unknown};
use napi::{Env, Task, ValueType};
use napi_derive::napi;

use config::{
    StoreConfig, SyncMode, DEFAULT_BUSY_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_POOL_SIZE,
    DEFAULT_QUERY_TIMEOUT_MS, DEFAULT_REFRESH_GRACE_MS,
};
use error::StoreError;
use model::{AuthorizationCode, ClientRecord, NewAccessToken, RotateRequest};
use ops::{Answer, BackgroundCleanup, Call};
use store::TokenStore;

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

/// The caller's clock: `Date.now()`, passed with every call so that every expiry decision,
/// every `createdAt` and every cleanup pass use the time the JavaScript side sees (fake
/// timers included), never the system clock behind its back.
fn clock(now: f64) -> Result<i64> {
    // The range of a JS `Date`: anything else is no clock reading.
    if !now.is_finite() || now.abs() > 8.64e15 {
        return Err(js_err(StoreError::InvalidArgument(
            "now must be the current time in epoch milliseconds (Date.now() returned something else)".into(),
        )));
    }
    Ok(now.trunc() as i64)
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
    /// `"memory"`, `"sqlite"` or `"postgres"`.
    pub kind: String,
    /// The SQLite file's absolute path.
    pub path: Option<String>,
    /// The PostgreSQL connection string, and what to call it in messages.
    pub url: Option<String>,
    pub url_name: Option<String>,
    /// The PostgreSQL schema (`public` by default).
    pub schema: Option<String>,
    pub connect_timeout_ms: Option<u32>,
    pub query_timeout_ms: Option<u32>,
    pub pool_size: Option<u32>,
    /// How long a refresh token rotated away is taken for a retry, not a replay.
    pub refresh_grace_ms: Option<u32>,
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
            ("postgres", _) => Ok(StoreConfig::Postgres {
                url: self
                    .url
                    .clone()
                    .ok_or_else(|| StoreError::Config("a PostgreSQL store needs a URL".into()))?,
                url_name: self
                    .url_name
                    .clone()
                    .unwrap_or_else(|| "the connection string".into()),
                schema: self.schema.clone().unwrap_or_else(|| "public".into()),
                connect_timeout_ms: self
                    .connect_timeout_ms
                    .unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS),
                query_timeout_ms: self.query_timeout_ms.unwrap_or(DEFAULT_QUERY_TIMEOUT_MS),
                pool_size: self.pool_size.unwrap_or(DEFAULT_POOL_SIZE),
            }),
            _ => Err(unknown("store kind")),
        }
    }
}

/// One store: memory or a SQLite file. Wrapped by `TokenStorage` in `index.js`.
#[napi]
pub struct NativeStore {
    store: Arc<dyn TokenStore>,
    cleanup: Arc<BackgroundCleanup>,
    /// `rotateRefreshToken`'s grace period (see `RotateRequest`).
    refresh_grace_ms: i64,
}

/// Each operation has two exports: `name` runs it on the calling thread and returns the
/// answer, `nameAsync` runs the same `Call` on a thread of libuv's pool and returns a
/// Promise of the same answer (or a rejection with the same error).
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
            refresh_grace_ms: i64::from(
                options.refresh_grace_ms.unwrap_or(DEFAULT_REFRESH_GRACE_MS),
            ),
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

    /// `open`, on a thread of libuv's pool (the Promise API's first call).
    #[napi(ts_return_type = "Promise<undefined>")]
    pub fn open_async(&self, now: f64) -> Result<AsyncTask<Later>> {
        self.later(Call::Open, now)
    }

    #[napi]
    pub fn close(&self) -> Result<()> {
        self.store.close().map_err(js_err)
    }

    /// Runs `call` on the calling thread at `now`: the caller's clock (`Date.now()`), so
    /// that fake timers drive expiry as they drove the old module's `Map`s.
    fn run(&self, call: Call, now: f64) -> Result<Reply> {
        ops::run(&*self.store, &self.cleanup, call, clock(now)?)
            .and_then(reply)
            .map_err(js_err)
    }

    /// Runs `call` on a thread of libuv's pool at `now`, the caller's clock when it called.
    fn later(&self, call: Call, now: f64) -> Result<AsyncTask<Later>> {
        Ok(AsyncTask::new(Later {
            store: self.store.clone(),
            cleanup: self.cleanup.clone(),
            call: Some(call),
            now: clock(now)?,
        }))
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
        now: f64,
    ) -> Result<Reply> {
        let t = new_token(
            token,
            refresh_token,
            api_key,
            user_id,
            client_id,
            scopes,
            expires_at,
        );
        self.run(Call::StoreAccessTokens(vec![t?]), now)
    }

    #[napi(ts_return_type = "Promise<number>")]
    #[allow(clippy::too_many_arguments)]
    pub fn store_access_token_async(
        &self,
        token: String,
        refresh_token: Option<String>,
        api_key: String,
        user_id: Option<String>,
        client_id: String,
        scopes: Vec<String>,
        expires_at: Option<f64>,
        now: f64,
    ) -> Result<AsyncTask<Later>> {
        let t = new_token(
            token,
            refresh_token,
            api_key,
            user_id,
            client_id,
            scopes,
            expires_at,
        );
        self.later(Call::StoreAccessTokens(vec![t?]), now)
    }

    /// Stores many tokens at once, all or none; returns how many distinct tokens it stored.
    #[napi]
    pub fn store_access_tokens(&self, tokens: Vec<NativeNewToken>, now: f64) -> Result<Reply> {
        self.run(Call::StoreAccessTokens(new_tokens(tokens)?), now)
    }

    #[napi(ts_return_type = "Promise<number>")]
    pub fn store_access_tokens_async(
        &self,
        tokens: Vec<NativeNewToken>,
        now: f64,
    ) -> Result<AsyncTask<Later>> {
        self.later(Call::StoreAccessTokens(new_tokens(tokens)?), now)
    }

    /// `[apiKey, userId, clientId, scopes, refreshToken, expiresAt, createdAt]` as JSON.
    #[napi]
    pub fn get_access_token(&self, token: String, now: f64) -> Result<Reply> {
        self.run(Call::GetAccessToken(token), now)
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn get_access_token_async(&self, token: String, now: f64) -> Result<AsyncTask<Later>> {
        self.later(Call::GetAccessToken(token), now)
    }

    #[napi]
    pub fn store_authorization_code(
        &self,
        code: String,
        data: NativeCode,
        now: f64,
    ) -> Result<Reply> {
        self.run(new_code(code, data, now)?, now)
    }

    #[napi(ts_return_type = "Promise<undefined>")]
    pub fn store_authorization_code_async(
        &self,
        code: String,
        data: NativeCode,
        now: f64,
    ) -> Result<AsyncTask<Later>> {
        self.later(new_code(code, data, now)?, now)
    }

    /// `[userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes,
    /// expiresAt, createdAt]` as JSON.
    #[napi]
    pub fn consume_authorization_code(
        &self,
        code: String,
        verifier: Option<String>,
        now: f64,
    ) -> Result<Reply> {
        self.run(Call::ConsumeAuthorizationCode { code, verifier }, now)
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn consume_authorization_code_async(
        &self,
        code: String,
        verifier: Option<String>,
        now: f64,
    ) -> Result<AsyncTask<Later>> {
        self.later(Call::ConsumeAuthorizationCode { code, verifier }, now)
    }

    /// `[userId, clientId, scopes, accessToken, createdAt]` as JSON.
    #[napi]
    pub fn get_refresh_token(&self, refresh_token: String, now: f64) -> Result<Reply> {
        self.run(Call::GetRefreshToken(refresh_token), now)
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn get_refresh_token_async(
        &self,
        refresh_token: String,
        now: f64,
    ) -> Result<AsyncTask<Later>> {
        self.later(Call::GetRefreshToken(refresh_token), now)
    }

    #[napi]
    pub fn revoke_refresh_token(&self, refresh_token: String, now: f64) -> Result<Reply> {
        self.run(Call::RevokeRefreshToken(refresh_token), now)
    }

    #[napi(ts_return_type = "Promise<undefined>")]
    pub fn revoke_refresh_token_async(
        &self,
        refresh_token: String,
        now: f64,
    ) -> Result<AsyncTask<Later>> {
        self.later(Call::RevokeRefreshToken(refresh_token), now)
    }

    #[napi]
    pub fn delete_token(&self, token: String, now: f64) -> Result<Reply> {
        self.run(Call::DeleteToken(token), now)
    }

    #[napi(ts_return_type = "Promise<undefined>")]
    pub fn delete_token_async(&self, token: String, now: f64) -> Result<AsyncTask<Later>> {
        self.later(Call::DeleteToken(token), now)
    }

    #[napi]
    pub fn delete_user_tokens(&self, user_id: String, now: f64) -> Result<Reply> {
        self.run(Call::DeleteUserTokens(user_id), now)
    }

    #[napi(ts_return_type = "Promise<undefined>")]
    pub fn delete_user_tokens_async(&self, user_id: String, now: f64) -> Result<AsyncTask<Later>> {
        self.later(Call::DeleteUserTokens(user_id), now)
    }

    /// Removes everything expired, `batch_size` rows per transaction; returns the count.
    #[napi]
    pub fn cleanup_expired_tokens(&self, batch_size: u32, now: f64) -> Result<Reply> {
        self.run(Call::CleanupAll(batch_size as usize), now)
    }

    /// Removes at most `batch_size` expired rows on the store's background resources (the
    /// SQLite store's second connection), on a thread of libuv's pool; resolves to the count.
    /// `automatic`: the automatic cleanup's batch, which removes nothing while another
    /// process's automatic cleanup works on the same file.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn cleanup_expired_batch_async(
        &self,
        batch_size: u32,
        automatic: Option<bool>,
        now: f64,
    ) -> Result<AsyncTask<Later>> {
        self.later(
            Call::CleanupBatch {
                limit: batch_size as usize,
                automatic: automatic.unwrap_or(false),
            },
            now,
        )
    }

    #[napi]
    pub fn get_stats(&self, now: f64) -> Result<Reply> {
        self.run(Call::Stats, now)
    }

    #[napi(ts_return_type = "Promise<{ totalTokens: number, uniqueUsers: number }>")]
    pub fn get_stats_async(&self, now: f64) -> Result<AsyncTask<Later>> {
        self.later(Call::Stats, now)
    }

    /// `[outcome, userId, clientId, scopes, apiKey, accessToken, refreshToken, revoked]` as
    /// JSON (see `wire::rotation`).
    #[napi]
    pub fn rotate_refresh_token(&self, request: NativeRotation, now: f64) -> Result<Reply> {
        self.run(
            Call::RotateRefreshToken(request.typed(self.refresh_grace_ms)?),
            now,
        )
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub fn rotate_refresh_token_async(
        &self,
        request: NativeRotation,
        now: f64,
    ) -> Result<AsyncTask<Later>> {
        self.later(
            Call::RotateRefreshToken(request.typed(self.refresh_grace_ms)?),
            now,
        )
    }

    #[napi]
    pub fn put_client(&self, client: NativeClient, now: f64) -> Result<Reply> {
        self.run(Call::PutClient(client.typed()?), now)
    }

    #[napi(ts_return_type = "Promise<undefined>")]
    pub fn put_client_async(&self, client: NativeClient, now: f64) -> Result<AsyncTask<Later>> {
        self.later(Call::PutClient(client.typed()?), now)
    }

    /// `[clientId, secretDigest, metadata, createdAt]` as JSON, or null.
    #[napi]
    pub fn get_client(&self, client_id: String, now: f64) -> Result<Reply> {
        self.run(Call::GetClient(client_id), now)
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn get_client_async(&self, client_id: String, now: f64) -> Result<AsyncTask<Later>> {
        self.later(Call::GetClient(client_id), now)
    }

    /// The client ids as a JSON array.
    #[napi]
    pub fn client_ids(&self, now: f64) -> Result<Reply> {
        self.run(Call::ClientIds, now)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub fn client_ids_async(&self, now: f64) -> Result<AsyncTask<Later>> {
        self.later(Call::ClientIds, now)
    }

    #[napi]
    pub fn store_pending_authorization(
        &self,
        state: String,
        data: String,
        ttl_ms: f64,
        now: f64,
    ) -> Result<Reply> {
        self.run(pending(state, data, ttl_ms)?, now)
    }

    #[napi(ts_return_type = "Promise<undefined>")]
    pub fn store_pending_authorization_async(
        &self,
        state: String,
        data: String,
        ttl_ms: f64,
        now: f64,
    ) -> Result<AsyncTask<Later>> {
        self.later(pending(state, data, ttl_ms)?, now)
    }

    /// The data as stored (JSON text), or null.
    #[napi]
    pub fn consume_pending_authorization(&self, state: String, now: f64) -> Result<Reply> {
        self.run(Call::TakePendingAuthorization(state), now)
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn consume_pending_authorization_async(
        &self,
        state: String,
        now: f64,
    ) -> Result<AsyncTask<Later>> {
        self.later(Call::TakePendingAuthorization(state), now)
    }
}

/// `rotateRefreshToken`'s arguments (checked by `lib/` first); times in milliseconds.
#[napi(object)]
pub struct NativeRotation {
    pub refresh_token: String,
    pub new_access_token: String,
    pub new_refresh_token: String,
    pub expires_at: Option<f64>,
}

impl NativeRotation {
    fn typed(self, grace_ms: i64) -> Result<RotateRequest> {
        Ok(RotateRequest {
            refresh_token: self.refresh_token,
            new_access_token: self.new_access_token,
            new_refresh_token: self.new_refresh_token,
            expires_at: self
                .expires_at
                .map(|t| millis(t, "expiresAt"))
                .transpose()?,
            grace_ms,
        })
    }
}

/// A client registration as stored (built by `lib/clients.js`).
#[napi(object)]
pub struct NativeClient {
    pub client_id: String,
    pub secret_digest: Option<String>,
    /// The registration's metadata, JSON text.
    pub metadata: String,
    pub created_at: f64,
}

impl NativeClient {
    fn typed(self) -> Result<ClientRecord> {
        Ok(ClientRecord {
            client_id: self.client_id,
            secret_digest: self.secret_digest,
            metadata: self.metadata,
            created_at: millis(self.created_at, "createdAt")?,
        })
    }
}

fn pending(state: String, data: String, ttl_ms: f64) -> Result<Call> {
    Ok(Call::StorePendingAuthorization {
        state,
        data,
        ttl_ms: millis(ttl_ms, "ttlSeconds")?,
    })
}

/// A call run off the JS thread: the same `ops::run` as the synchronous exports.
pub struct Later {
    store: Arc<dyn TokenStore>,
    cleanup: Arc<BackgroundCleanup>,
    call: Option<Call>,
    /// The caller's clock when it made the call.
    now: i64,
}

impl Task for Later {
    type Output = std::result::Result<Reply, StoreError>;
    type JsValue = Reply;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let call = self.call.take();
        Ok(call
            .ok_or(StoreError::Internal("a call ran twice"))
            .and_then(|call| ops::run(&*self.store, &self.cleanup, call, self.now))
            .and_then(reply))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Reply> {
        output.map_err(|e| rejection(&env, e))
    }
}

/// An answer as the JS value the JS layer shapes: records as JSON (see `wire.rs`), made on
/// the thread that ran the call.
pub enum Reply {
    Undefined,
    Number(u32),
    Json(Option<String>),
    Stats(NativeStats),
}

fn reply(answer: Answer) -> std::result::Result<Reply, StoreError> {
    let count = |n: usize| Reply::Number(u32::try_from(n).unwrap_or(u32::MAX));
    Ok(match answer {
        Answer::Done => Reply::Undefined,
        Answer::Count(n) => count(n),
        Answer::AccessToken(t) => Reply::Json(t.as_ref().map(wire::access_token).transpose()?),
        Answer::AuthorizationCode(c) => {
            Reply::Json(c.as_ref().map(wire::authorization_code).transpose()?)
        }
        Answer::RefreshToken(r) => Reply::Json(r.as_ref().map(wire::refresh_token).transpose()?),
        Answer::Stats(s) => Reply::Stats(NativeStats {
            total_tokens: s.total_tokens as f64,
            unique_users: s.unique_users as f64,
        }),
        Answer::Rotation(r) => Reply::Json(Some(wire::rotation(&r)?)),
        Answer::Client(c) => Reply::Json(c.as_ref().map(wire::client).transpose()?),
        Answer::Ids(ids) => Reply::Json(Some(wire::ids(&ids)?)),
        Answer::Text(text) => Reply::Json(text),
    })
}

impl TypeName for Reply {
    fn type_name() -> &'static str {
        "unknown"
    }

    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl ToNapiValue for Reply {
    unsafe fn to_napi_value(
        env: napi::sys::napi_env,
        value: Self,
    ) -> napi::Result<napi::sys::napi_value> {
        // SAFETY: each arm hands `env`, as given, to the ToNapiValue of the value it holds.
        unsafe {
            match value {
                Reply::Undefined => <()>::to_napi_value(env, ()),
                Reply::Number(n) => u32::to_napi_value(env, n),
                Reply::Json(json) => Option::<String>::to_napi_value(env, json),
                Reply::Stats(stats) => NativeStats::to_napi_value(env, stats),
            }
        }
    }
}

/// What `storeAuthorizationCode` stores (checked by `index.js` first); `expiresIn` in seconds.
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
}

#[allow(clippy::too_many_arguments)]
fn new_token(
    token: String,
    refresh_token: Option<String>,
    api_key: String,
    user_id: Option<String>,
    client_id: String,
    scopes: Vec<String>,
    expires_at: Option<f64>,
) -> Result<NewAccessToken> {
    Ok(NewAccessToken {
        token,
        refresh_token,
        api_key,
        user_id,
        client_id,
        scopes,
        expires_at: expires_at.map(|t| millis(t, "expiresAt")).transpose()?,
    })
}

fn new_tokens(tokens: Vec<NativeNewToken>) -> Result<Vec<NewAccessToken>> {
    tokens
        .into_iter()
        .map(|t| {
            new_token(
                t.access_token,
                t.refresh_token,
                t.api_key,
                t.user_id,
                t.client_id,
                t.scopes,
                t.expires_at,
            )
        })
        .collect()
}

/// The code's times are the caller's clock when it called (also when the store runs later).
fn new_code(code: String, d: NativeCode, now: f64) -> Result<Call> {
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
        },
    ))
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
/// Checks a PostgreSQL connection string as the store will read it (and the CA file it
/// names), without connecting; `url_name` is what messages call it.
#[napi]
pub fn check_postgres_url(url: String, url_name: String) -> Result<()> {
    store::check_postgres_url(&url, &url_name).map_err(js_err)
}

#[napi]
pub fn sqlite_version() -> String {
    rusqlite::version().to_owned()
}
