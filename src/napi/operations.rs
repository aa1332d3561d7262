//! The operations of `NativeStore`, one entry each: the JS method(s), the arguments (every
//! method takes one more, last: `now`, the caller's clock, `Date.now()`), and the `ops::Call`
//! they make. `operations!` makes the napi methods from it:
//!
//! - `both sync_name, async_name(args…) -> "Promise<…>" = |self, now| call;` exports
//!   `syncName`, which runs the call on the calling thread and returns the answer, and
//!   `asyncName`, which runs the same call on a thread of libuv's pool and returns a Promise
//!   of the same answer (or a rejection with the same error), or the answer itself when the
//!   store has it at hand without I/O (`ops::at_hand`) or the call is short in-memory work
//!   (`ops::at_once`: a memory store; the JS layer awaits either);
//! - `sync name(args…) = …;` and `async name(args…) -> "Promise<…>" = …;` export one of the two.
//!
//! What each call does is `ops::run`'s; how the answer reaches JS is `reply.rs`'s.

use napi::bindgen_prelude::{AsyncTask, Either3};
use napi::Env;
use napi_derive::napi;

use super::args::{new_code, new_tokens, pending, Key, NativeClient, NativeCode};
use super::args::{NativeGrant, NativeNewToken, NativeRotation};
use super::driven::Started;
use super::errors::Result;
use super::reply::Reply;
use super::store::NativeStore;
use super::task::Later;
use crate::ops::Call;
use crate::store::snapshot::BackupOptions;

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
            pub fn $async_(&$this, env: Env, $($arg: $ty,)* $now: f64) -> Result<Either3<Reply, AsyncTask<Later>, Started>> {
                $this.later(&env, $call, $now)
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
        token: Key,
        refresh_token: Option<Key>,
        api_key: Key,
        user_id: Option<Key>,
        client_id: Key,
        scopes: Vec<String>,
        expires_at: Option<f64>,
        grant: Option<NativeGrant>,
    ) -> "Promise<number>" = |self, now| {
        let t = NativeNewToken {
            access_token: token.0,
            refresh_token: refresh_token.map(|k| k.0),
            api_key: api_key.0,
            user_id: user_id.map(|k| k.0),
            client_id: client_id.0,
            scopes,
            expires_at,
            resource: grant.as_ref().and_then(|g| g.resource.clone()),
            extra: grant.and_then(|g| g.extra),
        };
        Call::StoreAccessTokens(new_tokens(vec![t])?)
    };

    /// Stores many tokens at once, all or none; returns how many distinct tokens it stored.
    both store_access_tokens, store_access_tokens_async(tokens: Vec<NativeNewToken>)
        -> "Promise<number>" = |self, now| Call::StoreAccessTokens(new_tokens(tokens)?);

    /// `apiKey, userId, clientId, scopes, refreshToken, expiresAt, createdAt` in the fields
    /// format of `wire.rs`, or null.
    /// The synchronous call may keep the store's read for the next ones until
    /// `end_reads` (`TokenStore::get_access_token_text_holding`).
    sync get_access_token(token: Key) = |self, now| Call::GetAccessToken {
        token: token.0,
        hold: true,
    };
    async get_access_token_async(token: Key)
        -> "Promise<string | null>" = |self, now| Call::GetAccessToken {
            token: token.0,
            hold: false,
        };

    both store_authorization_code, store_authorization_code_async(code: Key, data: NativeCode)
        -> "Promise<undefined>" = |self, now| new_code(code.0, data, now)?;

    /// `userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes,
    /// expiresAt, createdAt` in the fields format of `wire.rs`, or null.
    both consume_authorization_code, consume_authorization_code_async(
        code: Key,
        verifier: Option<Key>,
    ) -> "Promise<string | null>" = |self, now| Call::ConsumeAuthorizationCode {
        code: code.0,
        verifier: verifier.map(|k| k.0),
    };

    /// `userId, clientId, scopes, accessToken, createdAt` in the fields format, or null.
    both get_refresh_token, get_refresh_token_async(refresh_token: Key)
        -> "Promise<string | null>" = |self, now| Call::GetRefreshToken(refresh_token.0);

    both revoke_refresh_token, revoke_refresh_token_async(refresh_token: Key)
        -> "Promise<undefined>" = |self, now| Call::RevokeRefreshToken(refresh_token.0);

    both delete_token, delete_token_async(token: Key)
        -> "Promise<undefined>" = |self, now| Call::DeleteToken(token.0);

    /// Returns how many access tokens it removed (the public function returns nothing).
    both delete_user_tokens, delete_user_tokens_async(user_id: Key)
        -> "Promise<number>" = |self, now| Call::DeleteUserTokens(user_id.0);

    /// Removes everything expired, `batch_size` rows per transaction; returns the count.
    sync cleanup_expired_tokens(batch_size: u32) =
        |self, now| Call::CleanupAll(batch_size as usize);

    /// Removes at most `batch_size` expired rows on the store's background resources (the
    /// SQLite store's second connection), on a thread of libuv's pool; resolves to the count.
    /// `automatic`: the automatic cleanup's batch, which removes nothing while another
    /// process's automatic cleanup works on the same file. `stats_ahead_ms`: the pass's
    /// last batch then prepares getStats for that long (until the next pass is due).
    async cleanup_expired_batch_async(
        batch_size: u32,
        automatic: Option<bool>,
        stats_ahead_ms: Option<u32>,
    ) -> "Promise<number>" = |self, now| Call::CleanupBatch {
            limit: batch_size as usize,
            automatic: automatic.unwrap_or(false),
            stats_ahead_ms: i64::from(stats_ahead_ms.unwrap_or(0)),
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
    both get_client, get_client_async(client_id: Key)
        -> "Promise<string | null>" = |self, now| Call::GetClient(client_id.0);

    /// The client ids as a JSON array.
    both client_ids, client_ids_async() -> "Promise<string>" = |self, now| Call::ClientIds;

    both store_pending_authorization, store_pending_authorization_async(
        state: Key,
        data: Key,
        ttl_ms: f64,
    ) -> "Promise<undefined>" = |self, now| pending(state.0, data.0, ttl_ms)?;

    /// Writes a consistent snapshot of the store as a new SQLite file at `path` (see
    /// `store::snapshot::backup`); answers `{ path, counts, bytes, ms }` as JSON text.
    /// Its progress: `copyProgress()`.
    both backup, backup_async(path: String, overwrite: bool, batch_size: u32)
        -> "Promise<string>" = |self, now| Call::Backup {
            path: path.into(),
            options: BackupOptions { overwrite, batch: batch_size as usize },
            progress: self.progress.clone(),
        };

    /// The data as stored (JSON text), or null.
    both consume_pending_authorization, consume_pending_authorization_async(state: Key)
        -> "Promise<string | null>" = |self, now| Call::TakePendingAuthorization(state.0);
}
