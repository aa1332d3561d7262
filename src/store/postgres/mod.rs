//! The PostgreSQL store: any number of processes on any number of hosts share one
//! database.
//!
//! The client is rust-postgres's async core (`tokio-postgres`) on one I/O thread shared by
//! every PostgreSQL store of the process, so that each call has a deadline of its own: a
//! dead server or a dropped network fails the call with `ERR_TOKEN_STORAGE_UNAVAILABLE`
//! after the query timeout, never hangs it. A synchronous call blocks the JavaScript thread
//! until the answer or the deadline; a Promise call is a task of the I/O runtime that the
//! JavaScript thread drives without waiting (`store::later`, `napi/driven.rs`), or, for
//! cleanup, backups and large batches, blocks one of libuv's threads.
//!
//! - `settings`: its settings, decoded and checked (the connection string at configuration);
//! - `url`: connection strings (URL and key-value forms, `sslmode`, `sslrootcert`);
//! - `tls`: rustls, one configuration per `sslmode`;
//! - `runtime`: the shared I/O thread, and ending connections on it;
//! - `pool`: the connections kept open, handed out and taken back;
//! - `call`: each call's deadline and retries, and transactions in one round trip;
//! - `schema`: the migrations and the advisory lock they run under;
//! - `sql`: each operation's statements;
//! - `rows`: rows decoded, and a batch's rows resolved;
//! - `errors`: PostgreSQL's errors mapped to the store's kinds;
//! - `store`: the `TokenStore` operations;
//! - `cache`: the access tokens read recently, answered without a round trip while the
//!   change feed is up;
//! - `listener`: the change feed (`LISTEN`, on a thread of its own), which keeps the cache
//!   true to every instance's writes.
//!
//! A write is one transaction sent in one round trip (its statements pipelined), or one
//! statement. A failed connection is dropped and the next call opens another. A read that
//! fails on a connection the pool had kept is tried again (on each kept connection the
//! server ended, then on a new one); a write is
//! retried only when PostgreSQL says it rolled it back (a deadlock or serialization
//! failure), never when its outcome is unknown.

mod call;
mod errors;
mod listener;

/// The shared cache (`store::cache`), its feed's thread woken through tokio.
mod cache {
    pub(super) use crate::store::cache::*;
    pub(super) type Cache = crate::store::cache::Cache<tokio::sync::Notify>;

    impl Wake for tokio::sync::Notify {
        fn wake(&self) {
            self.notify_one();
        }
    }
}
mod pool;
mod rows;
mod runtime;
mod schema;
mod settings;
mod snapshot;
mod sql;
mod store;
mod tls;
mod url;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::Semaphore;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{Result, StoreError};
use pool::Pooled;
use schema::quote;
use sql::Sql;

pub(crate) use runtime::{discard, io_fd, turn};
pub use settings::PostgresSettings;
pub use url::SslMode;

/// One database (and schema). Connections open at first use.
pub struct PostgresStore {
    settings: PostgresSettings,
    /// Parsed at the first call, so a bad URL fails calls, not the constructor.
    target: OnceLock<std::result::Result<Target, StoreError>>,
    sql: Sql,
    idle: Mutex<Vec<Pooled>>,
    permits: Semaphore,
    /// Bumped by `close`: connections of an older epoch are not put back.
    epoch: AtomicU64,
    /// Whether the schema was checked since the store was made or closed.
    migrated: AtomicBool,
    /// Whether a connection was made since the store was made or closed (for `open`).
    opened: AtomicBool,
    /// Cleared for good when the server did not know a statement this store prepared
    /// (a transaction-mode pooler): from then on every statement is sent unnamed.
    named: AtomicBool,
    /// Calls that could have sent named statements but for the session not yet proved
    /// (see `call::PROVE_AFTER`).
    unproved_calls: AtomicU32,
    /// Access tokens read recently, and the listener that keeps them true.
    cache: Arc<cache::Cache>,
    listener: Mutex<Option<listener::Listener>>,
}

struct Target {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    ssl_mode: SslMode,
    shown: String,
    /// Every statement sent unnamed (the URL says a pooler keeps no prepared statements).
    unnamed: bool,
}

impl PostgresStore {
    pub fn new(settings: PostgresSettings) -> Self {
        let sql = Sql::new(&quote(&settings.schema));
        let pool_size = settings.pool_size.max(1);
        PostgresStore {
            settings,
            target: OnceLock::new(),
            sql,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(pool_size),
            epoch: AtomicU64::new(0),
            migrated: AtomicBool::new(false),
            opened: AtomicBool::new(false),
            named: AtomicBool::new(true),
            unproved_calls: AtomicU32::new(0),
            cache: Arc::new(cache::Cache::new()),
            listener: Mutex::new(None),
        }
    }

    /// Starts the listener once the schema is known to be up to date (so that its
    /// triggers send the change feed), if it is not running.
    fn ensure_listener(&self) {
        if !self.migrated.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let Ok(mut l) = self.listener.lock() else {
            return;
        };
        if l.is_some() {
            return;
        }
        let Ok(t) = self.target() else {
            return;
        };
        *l = listener::Listener::start(
            self.cache.clone(),
            t.config.clone(),
            t.tls.clone(),
            &self.settings.schema,
            self.settings.connect_timeout,
        );
    }

    /// Stops the listener (the cache is void until it runs again).
    fn stop_listener(&self) {
        let l = self.listener.lock().ok().and_then(|mut l| l.take());
        if let Some(l) = l {
            l.stop();
        }
    }

    fn target(&self) -> Result<&Target> {
        self.target
            .get_or_init(|| {
                let s = &self.settings;
                let t = url::parse(&s.url, &s.url_name, s.connect_timeout)?;
                let tls = tls::connector(t.ssl_mode, t.root_cert.as_deref(), &s.url_name)?;
                let mut config = t.config;
                config.ssl_mode(match t.ssl_mode {
                    SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                    SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                    _ => tokio_postgres::config::SslMode::Require,
                });
                Ok(Target {
                    config,
                    tls,
                    ssl_mode: t.ssl_mode,
                    shown: t.shown,
                    unnamed: t.unnamed,
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn shown(&self) -> String {
        match self.target() {
            Ok(t) => t.shown.clone(),
            Err(_) => "(PostgreSQL)".into(),
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_issue18;

#[cfg(test)]
pub use tests::TestSchema;
