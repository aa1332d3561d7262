//! The `TokenStore` trait that every backend implements.
//!
//! # Writing a store
//!
//! A store is a type that implements `TokenStore` and is `Send + Sync`: every method takes
//! `&self`, and the store owns its own concurrency (the memory store a lock around its
//! tables, the SQLite store a lock around each of its connections, the PostgreSQL store a
//! pool of connections, one per call), so nothing above it serialises calls. Each method is one atomic step: a reader never sees half of a write,
//! also when several processes share the data. Arguments arrive checked (see `ops`): a
//! store trusts that tokens, codes and ids are non-empty. `now` is passed in (epoch
//! milliseconds) so that expiry is testable without sleeping. What a store does on its
//! own (background threads, reconnecting) it starts and stops itself; `close` says what
//! closing means for it. Errors are `StoreError`s of the backend-neutral kinds.
//!
//! A store is a folder here, and its settings type (`<folder>/settings.rs`) implements
//! `backends::Backend`: it decodes the settings `lib/config.js` passes (a plain object),
//! checks at configuration what it can before anything opens, gives the key of the data it
//! names and opens the store. Add the folder to `backend_list!` below: its `mod`, its
//! `StoreConfig` variant, `check_settings`, `open` and its run of the suite every store must
//! pass (`tests.rs`, through `Backend::test_store`) come from that line. On the JavaScript
//! side, a store is one entry of `STORE_KINDS` in `lib/config.js` and its defaults in
//! `lib/defaults.js` (docs/development.md, "Adding a store").
//!
//! # Layout
//!
//! Each backend is a folder with the same rooms, by concern: `mod.rs` (the store type),
//! `settings.rs` (its settings, decoded and checked), `store.rs` (the `TokenStore` impl),
//! `errors.rs` (its errors mapped to the neutral kinds of `crate::error`: nothing outside
//! the folder classifies them), the
//! connection or pool (`sqlite/connection.rs`, `postgres/{runtime,pool,call}.rs`;
//! `memory/tables.rs`), the schema and its migrations, the statements (`sql.rs` and the
//! operation files: `sqlite/{tokens,oauth,cleanup}.rs`, `memory/ops.rs`) and the row
//! decoding (`rows.rs`: every record a statement returns is read there; the schema checks
//! read their one version number where they ask for it). The memory store has no schema,
//! statements or rows: its operations work on its tables. `snapshot.rs` in each folder:
//! its rows read in one snapshot and written as they are (`snapshot::RowStore`), from which
//! `snapshot` makes backups and copies between any two stores. The expiry-bucket constants
//! every backend counts by are in `buckets`. Above every backend, `sealed` (one wrapper for
//! all of them) digests and seals what the keyring protects: a backend stores opaque text,
//! and keeps only the mark that says whether it is sealed (`seal_mark`).

#[macro_use]
mod backends;
pub(crate) mod buckets;
/// Access tokens read recently, answered without a round trip (PostgreSQL, Redis).
#[cfg(any(feature = "postgres", feature = "redis"))]
pub(crate) mod cache;
pub mod later;
pub mod sealed;
pub mod snapshot;
pub(crate) mod spin;

use std::sync::Arc;

pub use memory::{MemorySettings, MemoryStore};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresSettings, PostgresStore};
#[cfg(feature = "redis")]
pub use redis::{RedisSettings, RedisStore};
pub use sqlite::{SqliteSettings, SqliteStore, SyncMode};

use crate::error::{Result, StoreError};
use crate::model::{
    AccessToken, AuthorizationCode, ClientRecord, NewAccessToken, RefreshToken, RotateRequest,
    Rotation, Stats,
};
use crate::ops::{Call, Driven};
use crate::wire::AccessTokenRef;
pub use later::Later;

/// A warning a store found about its data (logged at `warn` by `lib/`): a fixed message and
/// its fields, neither ever holding a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub message: &'static str,
    pub fields: Vec<(&'static str, String)>,
}

/// Every store also reads and writes its rows as they are (`snapshot::RowStore`: backups
/// and copies), in its folder's `snapshot.rs`.
pub trait TokenStore: Send + Sync + snapshot::RowStore {
    /// `"memory"`, `"sqlite"`, …: for logs and `getStats`.
    fn kind(&self) -> &'static str;

    /// Where the data lives (a file path, a host and database), for logs; never a secret.
    fn location(&self) -> Option<String> {
        None
    }

    /// Opens the store now if it is closed (it opens at first use anyway); returns whether
    /// it opened it now.
    fn open(&self) -> Result<bool> {
        Ok(false)
    }

    /// Releases what the store holds open (files, connections, threads); the next call
    /// opens it again. A store whose data lives only in this process keeps it.
    fn close(&self) -> Result<()> {
        Ok(())
    }

    /// What the store found worth a warning when it opened (a Redis server whose
    /// persistence can lose acknowledged writes), each given once per store.
    fn take_warnings(&self) -> Vec<Warning> {
        Vec::new()
    }

    /// Stores access tokens (each with its refresh token, if any), all or none, each
    /// replacing any token with the same string and the refresh token that pointed at it;
    /// a later token in the slice replaces an earlier one with the same string.
    fn store_access_tokens(&self, tokens: &[NewAccessToken], now: i64) -> Result<()>;

    /// One token: `store_access_tokens` of one.
    fn store_access_token(&self, token: &NewAccessToken, now: i64) -> Result<()> {
        self.store_access_tokens(std::slice::from_ref(token), now)
    }

    /// The live access token, or `None`. An expired one is removed with its refresh token.
    fn get_access_token(&self, token: &str, now: i64) -> Result<Option<AccessToken>>;

    /// `get_access_token` with the row's `AccessToken::links` (what the sealed layer reads,
    /// on a store that `seals_tokens`); a store that reads them at no cost gives them to
    /// `get_access_token` too, and need not implement this.
    fn get_access_token_linked(&self, token: &str, now: i64) -> Result<Option<AccessToken>> {
        self.get_access_token(token, now)
    }

    /// `get_refresh_token` with its access token's links, as `get_access_token_linked`.
    fn get_refresh_token_linked(
        &self,
        refresh_token: &str,
        now: i64,
    ) -> Result<Option<RefreshToken>> {
        self.get_refresh_token(refresh_token, now)
    }

    /// The store's part of `call` (what `ops::run` asks of the store for it, before the
    /// call's `Finish`; see `ops::run_later`) as a future the caller drives on its own
    /// thread with `later::turn` (a PostgreSQL store's: no thread of libuv's pool in
    /// between); the call back where only the synchronous methods can answer it.
    fn later(self: Arc<Self>, call: Call, _now: i64) -> Driven {
        Driven::Back(Box::new(call))
    }

    /// `get_access_token`'s answer as the JS side reads it (`wire::access_token`). A store
    /// that keeps the fields at hand writes them without making an `AccessToken` first.
    fn get_access_token_text(&self, token: &str, now: i64) -> Result<Option<String>> {
        Ok(self
            .get_access_token(token, now)?
            .as_ref()
            .map(crate::wire::access_token))
    }

    /// `get_access_token_text` for a caller that calls `end_reads` before its thread waits
    /// for anything (the JS thread's synchronous calls: `end_reads` runs at the end of the
    /// turn). Until then, a store may keep what it set up for this read for the caller's
    /// next reads (SQLite: the read transaction, while no commit to the file is seen; see
    /// `sqlite::held`). Any other call of the store ends it first.
    fn get_access_token_text_holding(&self, token: &str, now: i64) -> Result<Option<String>> {
        self.get_access_token_text(token, now)
    }

    /// Ends what `get_access_token_text_holding` kept, if anything.
    fn end_reads(&self) -> Result<()> {
        Ok(())
    }

    /// What `write` makes of `get_access_token_linked`'s record, its fields and links lent
    /// (`None`: no live token). How the sealed layer opens a hit and writes its answer: a
    /// store that keeps the fields at hand lends them from there, with no record made (the
    /// memory store: `write` runs under its lock); the others make the record first.
    fn with_access_token_linked(
        &self,
        token: &str,
        now: i64,
        write: &mut dyn FnMut(AccessTokenRef<'_>) -> Result<String>,
    ) -> Result<Option<String>> {
        self.get_access_token_linked(token, now)?
            .map(|t| write(AccessTokenRef::of(&t)))
            .transpose()
    }

    /// `get_access_token_text`'s answer when the store has it at hand, without I/O and as
    /// that call would give it now (a cache it trusts now); `None` when only that call can
    /// tell. The Promise API answers these on the calling thread, with no thread hop.
    fn get_access_token_at_hand(&self, _token: &str, _now: i64) -> Option<Option<String>> {
        None
    }

    /// Whether every call is work on this process's memory alone, a microsecond or so (the
    /// memory store): the Promise API runs its short calls on the calling thread (see
    /// `ops::at_once`), as a hand-off to another thread and back costs more than the work.
    fn in_memory(&self) -> bool {
        false
    }

    /// Stores an authorization code, replacing any code with the same string.
    fn store_authorization_code(&self, code: &str, data: &AuthorizationCode) -> Result<()>;

    /// Removes the code and returns it if it was live. Exactly one caller can take a code.
    fn take_authorization_code(&self, code: &str, now: i64) -> Result<Option<AuthorizationCode>>;

    /// The refresh token if its access token is live, or `None`.
    fn get_refresh_token(&self, refresh_token: &str, now: i64) -> Result<Option<RefreshToken>>;

    /// Removes the refresh token and its access token.
    fn revoke_refresh_token(&self, refresh_token: &str) -> Result<()>;

    /// Removes the access token and its refresh token.
    fn delete_token(&self, token: &str) -> Result<()>;

    /// Removes every access token, refresh token and authorization code of the user;
    /// returns how many access tokens it removed (expired ones not yet cleaned up included).
    fn delete_user_tokens(&self, user_id: &str) -> Result<u64>;

    /// Removes at most `limit` expired access tokens (with their refresh tokens) and
    /// expired authorization codes; returns how many it removed. Fewer than `limit`
    /// means nothing expired is left.
    fn cleanup_expired(&self, now: i64, limit: usize) -> Result<usize>;

    /// How long one background cleanup transaction should last: short where it holds a
    /// lock that every writer waits on (SQLite's), longer where the round trip alone takes
    /// milliseconds and other writers are not blocked (PostgreSQL's row locks, skipped).
    fn cleanup_slice(&self) -> std::time::Duration {
        std::time::Duration::from_millis(4)
    }

    /// `cleanup_expired`, called from a background thread: a store may run it on
    /// resources of its own so that the calls of the JavaScript thread do not wait on it.
    fn cleanup_expired_in_background(&self, now: i64, limit: usize) -> Result<usize> {
        self.cleanup_expired(now, limit)
    }

    /// `cleanup_expired_in_background` for the automatic cleanup of `holder` (a number
    /// drawn per store instance): None, removing nothing, if another's automatic cleanup
    /// is at work on the same data, where two would get in the way of the writers.
    fn cleanup_expired_as(&self, now: i64, limit: usize, _holder: i64) -> Result<Option<usize>> {
        self.cleanup_expired_in_background(now, limit).map(Some)
    }

    /// How long a background cleanup waits after a transaction that took `took` and left
    /// more to do: long enough, where writers wait on the same lock, for a waiting writer
    /// to take it before the next transaction.
    fn cleanup_pause(&self, _took: std::time::Duration) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// Work done ahead, off the JavaScript thread, so that the `stats` calls until `until`
    /// find it done instead of doing it: the automatic cleanup's last step, `until` when
    /// its next pass is due. The SQLite store refines the buckets due by then (see
    /// `sqlite::refine`); the others have nothing to do.
    fn prepare_stats(&self, _now: i64, _until: i64) -> Result<()> {
        Ok(())
    }

    /// Counts of live tokens, in constant time.
    fn stats(&self, now: i64) -> Result<Stats>;

    /// The refresh grant in one atomic step: if `refresh_token` is live, its access and
    /// refresh tokens are replaced by the new pair (same API key, user, client and scopes,
    /// same family) and it is remembered as rotated away. A refresh token rotated away
    /// before is a reuse: after the grace period, every token of its family is revoked.
    /// Of any number of concurrent rotations of one refresh token, one rotates it.
    fn rotate_refresh_token(&self, request: &RotateRequest, now: i64) -> Result<Rotation>;

    /// Stores a client registration, replacing one with the same id.
    fn put_client(&self, client: &ClientRecord) -> Result<()>;

    fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>>;

    /// Every registered client's id, in registration order.
    fn client_ids(&self) -> Result<Vec<String>>;

    /// Stores a pending authorization (JSON text) under `state` until `expires_at`,
    /// replacing one with the same state.
    fn store_pending_authorization(
        &self,
        state: &str,
        data: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<()>;

    /// Removes the pending authorization and returns it if it was live; one caller gets it.
    fn take_pending_authorization(&self, state: &str, now: i64) -> Result<Option<String>>;

    /// The store's mark of encryption at rest (`sealed`): `None` for a store written in
    /// clear (every store before issue 19), and whether the store holds any row that a
    /// keyring digests or seals (every kind but clients).
    fn seal_mark(&self) -> Result<(Option<String>, bool)>;

    /// Whether a keyring seals this store's tokens (`sealed`), which needs the store to keep
    /// `NewAccessToken::links` with each access token (and give them back in
    /// `AccessToken::links`, `RefreshToken::links`, and through a rotation's
    /// `RotateRequest::links`). A store that answers no keeps its tokens in clear under a
    /// keyring (its mark `sealed v1`), and its export seals them (`Sealed::export_rows`):
    /// the memory store, which holds nothing at rest.
    fn seals_tokens(&self) -> bool {
        false
    }

    /// Sets the mark to `new` if it is still `old` and, when `only_if_empty`, the store
    /// holds no row `seal_mark` counts, in one atomic step; returns whether it did.
    fn set_seal_mark(&self, old: Option<&str>, new: &str, only_if_empty: bool) -> Result<bool>;
}

/// The backends, one line each: its folder (the kind `lib/config.js` names it by) and the
/// type of its settings (`<folder>/settings.rs`, implementing `backends::Backend`); a backend
/// behind a cargo feature says which, and what to call it in the error an addon built
/// without it gives. From this list come each folder's `mod`, `StoreConfig` (its decoding
/// and `key`), `check_settings`, `open`, and the suite every store runs (`tests.rs`).
macro_rules! backend_list {
    ($then:ident $($args:tt)*) => {
        $then! {
            [$($args)*]
            /// The in-process store.
            memory::MemorySettings;
            /// A SQLite file.
            sqlite::SqliteSettings;
            /// A PostgreSQL database.
            postgres::PostgresSettings if feature "postgres" else "PostgreSQL";
            /// A Redis or Valkey server.
            redis::RedisSettings if feature "redis" else "Redis";
        }
    };
}

backend_list!(backends);

#[cfg(test)]
mod tests;

#[cfg(test)]
mod tests_issue15;

#[cfg(test)]
mod tests_snapshot;

#[cfg(test)]
mod tests_sealed;
