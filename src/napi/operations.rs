//! The operations of `NativeStore`, one entry each: the JS method(s), the arguments (every
//! method takes one more, last: `now`, the caller's clock, `Date.now()`), and the `ops::Call`
//! they make. `operations!` makes the napi methods from it:
//!
//! - `both sync_name, async_name(args…) -> "Promise<…>" = |self, now| call;` exports
//!   `syncName`, which runs the call on the calling thread and returns the answer, and
//!   `asyncName`, which runs the same call on a thread of libuv's pool and returns a Promise
//!   of the same answer (or a rejection with the same error);
//! - `sync name(args…) = …;` and `async name(args…) -> "Promise<…>" = …;` export one of the two.
//!
//! What each call does is `ops::run`'s; how the answer reaches JS is `reply.rs`'s.

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;

use super::args::{new_code, new_tokens, pending, NativeClient, NativeCode};
use super::args::{NativeNewToken, NativeRotation};
use super::errors::Result;
use super::reply::Reply;
use super::store::NativeStore;
use super::task::Later;
use crate::ops::Call;

/// One `#[napi] impl NativeStore` block per method (napi-rs merges them into one class);
/// a `both` entry is its `sync` and its `async` entry, the doc comment on the first.
macro_rules! operations {
    () => {};
    (
        $(#[doc = $doc:tt])*
        both $sync:ident, $async_:ident($($arg:ident: $ty:ty),* $(,)?) -> $promise:tt =
            |$this:ident, $now:ident| $call:expr;
        $($rest:tt)*
    ) => {
        operations! {
            $(#[doc = $doc])*
            sync $sync($($arg: $ty),*) = |$this, $now| $call;
            async $async_($($arg: $ty),*) -> $promise = |$this, $now| $call;
            $($rest)*
        }
    };
    (
        $(#[doc = $doc:tt])*
        sync $sync:ident($($arg:ident: $ty:ty),* $(,)?) = |$this:ident, $now:ident| $call:expr;
        $($rest:tt)*
    ) => {
        #[napi]
        impl NativeStore {
            $(#[doc = $doc])*
            #[napi]
            #[allow(clippy::too_many_arguments)]
            pub fn $sync(&$this, $($arg: $ty,)* $now: f64) -> Result<Reply> {
                $this.run($call, $now)
            }
        }
        operations!($($rest)*);
    };
    (
        $(#[doc = $doc:tt])*
        async $async_:ident($($arg:ident: $ty:ty),* $(,)?) -> $promise:tt =
            |$this:ident, $now:ident| $call:expr;
        $($rest:tt)*
    ) => {
        #[napi]
        impl NativeStore {
            $(#[doc = $doc])*
            #[napi(ts_return_type = $promise)]
            #[allow(clippy::too_many_arguments)]
            pub fn $async_(&$this, $($arg: $ty,)* $now: f64) -> Result<AsyncTask<Later>> {
                $this.later($call, $now)
            }
        }
        operations!($($rest)*);
    };
}

operations! {
    /// `open`, on a thread of libuv's pool (the Promise API's first call).
    async open_async() -> "Promise<undefined>" = |self, now| Call::Open;

    /// Returns how many distinct tokens it stored (1).
    both store_access_token, store_access_token_async(
        token: String,
        refresh_token: Option<String>,
        api_key: String,
        user_id: Option<String>,
        client_id: String,
        scopes: Vec<String>,
        expires_at: Option<f64>,
    ) -> "Promise<number>" = |self, now| {
        let t = NativeNewToken { access_token: token, refresh_token, api_key, user_id, client_id, scopes, expires_at };
        Call::StoreAccessTokens(new_tokens(vec![t])?)
    };

    /// Stores many tokens at once, all or none; returns how many distinct tokens it stored.
    both store_access_tokens, store_access_tokens_async(tokens: Vec<NativeNewToken>)
        -> "Promise<number>" = |self, now| Call::StoreAccessTokens(new_tokens(tokens)?);

    /// `[apiKey, userId, clientId, scopes, refreshToken, expiresAt, createdAt]` as JSON.
    both get_access_token, get_access_token_async(token: String)
        -> "Promise<string | null>" = |self, now| Call::GetAccessToken(token);

    both store_authorization_code, store_authorization_code_async(code: String, data: NativeCode)
        -> "Promise<undefined>" = |self, now| new_code(code, data, now)?;

    /// `[userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes,
    /// expiresAt, createdAt]` as JSON.
    both consume_authorization_code, consume_authorization_code_async(
        code: String,
        verifier: Option<String>,
    ) -> "Promise<string | null>" = |self, now| Call::ConsumeAuthorizationCode { code, verifier };

    /// `[userId, clientId, scopes, accessToken, createdAt]` as JSON.
    both get_refresh_token, get_refresh_token_async(refresh_token: String)
        -> "Promise<string | null>" = |self, now| Call::GetRefreshToken(refresh_token);

    both revoke_refresh_token, revoke_refresh_token_async(refresh_token: String)
        -> "Promise<undefined>" = |self, now| Call::RevokeRefreshToken(refresh_token);

    both delete_token, delete_token_async(token: String)
        -> "Promise<undefined>" = |self, now| Call::DeleteToken(token);

    both delete_user_tokens, delete_user_tokens_async(user_id: String)
        -> "Promise<undefined>" = |self, now| Call::DeleteUserTokens(user_id);

    /// Removes everything expired, `batch_size` rows per transaction; returns the count.
    sync cleanup_expired_tokens(batch_size: u32) =
        |self, now| Call::CleanupAll(batch_size as usize);

    /// Removes at most `batch_size` expired rows on the store's background resources (the
    /// SQLite store's second connection), on a thread of libuv's pool; resolves to the count.
    /// `automatic`: the automatic cleanup's batch, which removes nothing while another
    /// process's automatic cleanup works on the same file.
    async cleanup_expired_batch_async(batch_size: u32, automatic: Option<bool>)
        -> "Promise<number>" = |self, now| Call::CleanupBatch {
            limit: batch_size as usize,
            automatic: automatic.unwrap_or(false),
        };

    both get_stats, get_stats_async()
        -> "Promise<{ totalTokens: number, uniqueUsers: number }>" = |self, now| Call::Stats;

    /// `[outcome, userId, clientId, scopes, apiKey, accessToken, refreshToken, revoked]` as
    /// JSON (see `wire::rotation`).
    both rotate_refresh_token, rotate_refresh_token_async(request: NativeRotation)
        -> "Promise<string>" =
        |self, now| Call::RotateRefreshToken(request.typed(self.refresh_grace_ms)?);

    both put_client, put_client_async(client: NativeClient)
        -> "Promise<undefined>" = |self, now| Call::PutClient(client.typed()?);

    /// `[clientId, secretDigest, metadata, createdAt]` as JSON, or null.
    both get_client, get_client_async(client_id: String)
        -> "Promise<string | null>" = |self, now| Call::GetClient(client_id);

    /// The client ids as a JSON array.
    both client_ids, client_ids_async() -> "Promise<string>" = |self, now| Call::ClientIds;

    both store_pending_authorization, store_pending_authorization_async(
        state: String,
        data: String,
        ttl_ms: f64,
    ) -> "Promise<undefined>" = |self, now| pending(state, data, ttl_ms)?;

    /// The data as stored (JSON text), or null.
    both consume_pending_authorization, consume_pending_authorization_async(state: String)
        -> "Promise<string | null>" = |self, now| Call::TakePendingAuthorization(state);
}
