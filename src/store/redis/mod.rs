//! The Redis (and Valkey) store: any number of processes on any number of hosts share one
//! server, each store's keys under its prefix (several servers' state in one Redis).
//!
//! The client is this folder's own, small and synchronous (RESP2 over std's sockets, TLS by
//! rustls): the store needs a dozen commands and its scripts, one at a time per connection,
//! so a general client (and its async runtime) would bring more than it gives. As the
//! PostgreSQL store does, a call blocks its own thread (the JavaScript thread for the
//! synchronous functions, one of libuv's for the Promise API) on a connection from the
//! store's pool until the answer or the query timeout: a dead server or a dropped network
//! fails the call with `ERR_TOKEN_STORAGE_UNAVAILABLE`, never hangs it.
//!
//! - `settings`: its settings, decoded and checked (the URL at configuration);
//! - `url`: Redis URLs (`redis://`, `rediss://`; Sentinel and Cluster refused by name);
//! - `tls`: rustls for `rediss://`;
//! - `resp`: the protocol;
//! - `conn`: a connection (login, database, timeouts, scripts by digest), and the pool
//!   here: connections kept between calls, checked before reuse;
//! - `scripts`: the key layout and the Lua scripts, one per write that touches several keys;
//! - `rows`: the records read back from hashes and JSON;
//! - `durability`: the server's persistence settings, checked at the first open;
//! - `errors`: the server's and the socket's errors mapped to the store's kinds;
//! - `store`: the `TokenStore` operations; `snapshot`: the rows as they are;
//! - `tracking`: the access tokens read recently, answered without a round trip while
//!   the server's invalidations reach this store (RESP3 `CLIENT TRACKING`, see there).
//!
//! Expiry is Redis's own (`PEXPIRE` on every key that expires, an hour past its expiry by
//! the caller's clock), so nothing needs a cleanup
//! pass for memory; every read checks the expiry itself, so a key Redis has not removed yet
//! is never served after its time. A write is one script (atomic on the server); a failed
//! connection is dropped and the next call opens another; a read that fails on a kept
//! connection is tried once more on a fresh one, a write never (its outcome is unknown),
//! except when the server says it ran nothing (`NOSCRIPT`: the script is sent again).

mod conn;
mod durability;
mod errors;
mod resp;
mod rows;
mod scripts;
mod settings;
mod snapshot;
mod store;
mod tls;
mod tracking;
mod url;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use conn::{Conn, Failure};
use url::Target;

use crate::error::{Result, StoreError};

pub use settings::RedisSettings;

/// The parsed URL, and its TLS configuration for `rediss://`.
type Parsed = (Target, Option<Arc<rustls::ClientConfig>>);

/// One Redis database and key prefix. Connections open at first use.
pub struct RedisStore {
    settings: RedisSettings,
    /// Parsed at the first call, so a bad URL fails calls, not the constructor.
    target: OnceLock<std::result::Result<Parsed, StoreError>>,
    idle: Mutex<Vec<Conn>>,
    /// Bumped by `close`, a `READONLY` answer and the cache's feed finding its server no
    /// longer a primary (a failover): connections of an older epoch are not used again.
    epoch: Arc<AtomicU64>,
    /// Whether a connection was made since the store was made or closed (for `open`).
    opened: AtomicBool,
    /// Access tokens read recently, and the feed that keeps them true.
    hot: tracking::Hot,
    /// Whether the server's persistence was checked (`durability`), once per store.
    durability_checked: AtomicBool,
    /// What that check found, until `take_warnings`.
    warnings: Mutex<Vec<crate::store::Warning>>,
}

impl RedisStore {
    pub fn new(settings: RedisSettings) -> Self {
        RedisStore {
            settings,
            target: OnceLock::new(),
            idle: Mutex::new(Vec::new()),
            epoch: Arc::new(AtomicU64::new(0)),
            opened: AtomicBool::new(false),
            hot: tracking::Hot::new(),
            durability_checked: AtomicBool::new(false),
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// The server's `run_id` (as a connection read it at open), the database number and the
    /// key prefix (`RowStore::identity`); `None` if the server did not say (no `INFO`).
    fn server_identity(&self) -> Result<Option<String>> {
        let server = self.call(true, |c| Ok(c.server))?;
        let db = self.target()?.0.db;
        Ok((server != 0).then(|| format!("redis {server:016x}/{db}/{}", self.settings.prefix)))
    }

    fn target(&self) -> Result<&Parsed> {
        self.target
            .get_or_init(|| {
                let s = &self.settings;
                let t = url::parse(&s.url, &s.url_name)?;
                let tls = if t.tls {
                    Some(tls::config(t.ca_file.as_deref(), &s.url_name)?)
                } else {
                    None
                };
                Ok((t, tls))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn shown(&self) -> String {
        match self.target() {
            Ok((t, _)) => t.shown.clone(),
            Err(_) => "(Redis)".into(),
        }
    }

    /// Runs `op` on a connection; `read` says whether it may be tried again on a fresh
    /// connection after the kept one failed (its outcome is then known: it changed nothing).
    fn call<T>(
        &self,
        read: bool,
        mut op: impl FnMut(&mut Conn) -> std::result::Result<T, Failure>,
    ) -> Result<T> {
        let mut first = true;
        loop {
            let (mut conn, kept) = self.checkout()?;
            match op(&mut conn) {
                Ok(v) => {
                    self.checkin(conn);
                    return Ok(v);
                }
                // A demoted primary (a failover behind one host name): this connection and
                // the others kept (most likely on the same server) are dropped, so that the
                // next call connects again, and finds the new primary. Nothing was written.
                Err(Failure::Server(e)) if errors::first_word(&e) == "READONLY" => {
                    self.epoch.fetch_add(1, Ordering::AcqRel);
                    return Err(self.server_error(&e));
                }
                Err(Failure::Server(e)) => {
                    self.checkin(conn);
                    return Err(self.server_error(&e));
                }
                Err(Failure::Store(e)) => {
                    self.checkin(conn);
                    return Err(e);
                }
                // The connection is dropped: what it was in the middle of is unknown.
                Err(Failure::Io(e)) => {
                    if read && kept && first {
                        first = false;
                        continue;
                    }
                    return Err(self.io_error(&e));
                }
            }
        }
    }

    /// A connection: a kept one that is still open, else a new one. Returns it with
    /// whether it was kept.
    /// A kept connection on another server than the cache's feed (which is on a primary)
    /// is not used: it was opened before a failover.
    fn checkout(&self) -> Result<(Conn, bool)> {
        let epoch = self.epoch.load(Ordering::Acquire);
        let feed = self.hot.server.load(Ordering::Acquire);
        loop {
            let kept = self.idle.lock().map_err(|_| StoreError::Poisoned)?.pop();
            match kept {
                Some(c) if c.epoch == epoch && same_server(c.server, feed) && c.still_open() => {
                    return Ok((c, true))
                }
                Some(_) => continue,
                None => break,
            }
        }
        let (target, tls) = self.target()?;
        let s = &self.settings;
        let conn = Conn::open(target, tls.as_ref(), s.connect_timeout, s.query_timeout, epoch)
            .map_err(|f| self.failure(f))?;
        self.opened.store(true, Ordering::Release);
        Ok((conn, false))
    }

    /// Puts a healthy connection back for the next call, up to the pool's size.
    fn checkin(&self, c: Conn) {
        if c.epoch != self.epoch.load(Ordering::Acquire) {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < self.settings.pool_size.max(1) {
                idle.push(c);
            }
        }
    }

    fn failure(&self, f: Failure) -> StoreError {
        match f {
            Failure::Io(e) => self.io_error(&e),
            Failure::Server(e) => self.server_error(&e),
            Failure::Store(e) => e,
        }
    }
}

/// Whether two servers (`Conn::server`) may be the same: unknown (0) matches any.
fn same_server(a: u64, b: u64) -> bool {
    a == 0 || b == 0 || a == b
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod tests_cache;

#[cfg(test)]
mod tests_export;
