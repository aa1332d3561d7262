//! A store behind a lock, opened on first use and reopened after `close`, and the
//! process-wide registry of default stores (shared by every worker thread, as the
//! process has one memory store and one connection per file).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::config::StoreConfig;
use crate::error::{Result, StoreError};
use crate::store::{self, TokenStore};

pub struct StoreHandle {
    config: StoreConfig,
    store: Mutex<Option<Box<dyn TokenStore>>>,
    /// A second connection for cleanup on a background thread (SQLite only), so that a
    /// long cleanup never holds the lock the caller's thread needs for its reads.
    cleaner: Mutex<Option<Box<dyn TokenStore>>>,
    /// Rows per background cleanup transaction (see `cleanup_batch_in_background`).
    chunk: AtomicUsize,
}

/// How long one background cleanup transaction should hold the write lock.
const CHUNK_TARGET: Duration = Duration::from_millis(4);
const MIN_CHUNK: usize = 16;
const MAX_CHUNK: usize = 4096;

impl StoreHandle {
    /// A store of its own (`new TokenStorage(...)`).
    pub fn new(config: StoreConfig) -> Arc<Self> {
        Arc::new(StoreHandle {
            config,
            store: Mutex::new(None),
            cleaner: Mutex::new(None),
            chunk: AtomicUsize::new(256),
        })
    }

    /// The process-wide store for this configuration (the module-level functions).
    pub fn shared(config: StoreConfig) -> Result<Arc<Self>> {
        static DEFAULTS: OnceLock<Mutex<HashMap<String, Arc<StoreHandle>>>> = OnceLock::new();
        let mut map = DEFAULTS
            .get_or_init(Default::default)
            .lock()
            .map_err(|_| StoreError::Poisoned)?;
        Ok(map
            .entry(config.key())
            .or_insert_with(|| StoreHandle::new(config))
            .clone())
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Opens the store if it is closed; returns whether it opened it now.
    pub fn open(&self) -> Result<bool> {
        let mut guard = self.store.lock().map_err(|_| StoreError::Poisoned)?;
        if guard.is_some() {
            return Ok(false);
        }
        *guard = Some(store::open(&self.config)?);
        Ok(true)
    }

    /// Runs `f` on the store, opening it first if needed.
    pub fn with<R>(&self, f: impl FnOnce(&mut dyn TokenStore) -> Result<R>) -> Result<R> {
        with_open(&self.store, &self.config, f)
    }

    /// One batch of cleanup (at most `limit` rows), for a background thread: on its own
    /// connection for SQLite, on the store itself for memory. The batch is cut into
    /// transactions sized to last about `CHUNK_TARGET`, so that a writer on another thread
    /// (or process) never waits long for the lock; the size adapts to the machine.
    pub fn cleanup_batch_in_background(&self, now: i64, limit: usize) -> Result<usize> {
        let slot = match self.config {
            StoreConfig::Memory => &self.store,
            StoreConfig::Sqlite { .. } => &self.cleaner,
        };
        let mut removed = 0;
        while removed < limit {
            let chunk = self
                .chunk
                .load(Ordering::Relaxed)
                .clamp(MIN_CHUNK, MAX_CHUNK);
            let want = chunk.min(limit - removed);
            let started = Instant::now();
            let n = with_open(slot, &self.config, |s| s.cleanup_expired(now, want))?;
            let took = started.elapsed();
            if took > CHUNK_TARGET && chunk > MIN_CHUNK {
                self.chunk.store(chunk / 2, Ordering::Relaxed);
            } else if took < CHUNK_TARGET / 3 && n == want && chunk < MAX_CHUNK {
                self.chunk.store(chunk * 2, Ordering::Relaxed);
            }
            removed += n;
            if n < want {
                break;
            }
        }
        Ok(removed)
    }

    /// Closes a SQLite store's file; the next call reopens it. A memory store has nothing
    /// to close and keeps its tokens (as the old module's Maps did): the default memory
    /// store is shared by every thread, and one thread's `closeDB()` must not empty it.
    pub fn close(&self) -> Result<()> {
        if matches!(self.config, StoreConfig::Memory) {
            return Ok(());
        }
        *self.store.lock().map_err(|_| StoreError::Poisoned)? = None;
        *self.cleaner.lock().map_err(|_| StoreError::Poisoned)? = None;
        Ok(())
    }
}

/// Runs `f` on the store in `slot`, opening it first if it is closed.
fn with_open<R>(
    slot: &Mutex<Option<Box<dyn TokenStore>>>,
    config: &StoreConfig,
    f: impl FnOnce(&mut dyn TokenStore) -> Result<R>,
) -> Result<R> {
    let mut guard = slot.lock().map_err(|_| StoreError::Poisoned)?;
    if guard.is_none() {
        *guard = Some(store::open(config)?);
    }
    let result = match guard.as_deref_mut() {
        Some(s) => f(s),
        None => Err(StoreError::Poisoned),
    };
    if matches!(result, Err(StoreError::Moved { .. })) {
        // The file at the path is another (or none): the next call opens it afresh.
        *guard = None;
    }
    result
}
