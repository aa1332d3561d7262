//! One connection to the file: opened with its pragmas (WAL checked, the sync mode set,
//! the schema migrated), the check that the file is still the one at its path, and the
//! transactions every operation runs in. The operations are in `tokens`, `oauth` and
//! `cleanup`.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::background::checkpoint_in_background;
use super::busy::{retry_while_busy, set_busy_handler, BusyWait};
use super::errors::{from_sqlite, TxError};
use super::file::{file_id, final_target, prepare_file};
use super::recent::Recent;
use super::watch::Watch;
use super::schema::migrate;
use super::tokens::GrantTriggers;
use super::SyncMode;
use crate::error::{Result, StoreError};

/// The size, in bytes, that a WAL file grown by a burst of writes is cut back to.
pub(super) const WAL_SIZE_LIMIT: i64 = 16 << 20;

/// How much of the file SQLite reads through a memory map (`PRAGMA mmap_size`): as much as
/// SQLite maps at most on Linux and macOS (`SQLITE_MAX_MMAP_SIZE`, 2 GiB less 64 KiB), so a
/// file of one to two million tokens is read through the map whole.
pub(super) const MMAP_SIZE: i64 = 0x7fff_0000;

/// The page cache of a connection, in KiB (`PRAGMA cache_size`, SQLite's default). Reads
/// go through the memory map, so the cache holds mostly the pages a transaction writes and
/// the WAL's latest versions. It is kept small because, in a file under 1 GiB, a large one
/// costs the writes that split a page: a split (`balance_nonroot`) sorts its new pages by
/// giving one, for a moment, the number of the page past the first GiB, so the cache's
/// highest page number stays above the file's size, and the commit that ends the
/// transaction (`pager_end_transaction`, truncating the cache to the file's size) then
/// walks the whole hash table and every cached page. With 64 MiB (16,384 slots, ~15,800
/// pages once full) that was a few hundred µs on most stores at a million tokens (about
/// 700 MB), whose random inserts split some b-tree most of the time: stores with refresh
/// tokens at 1M took 274 µs against 132 µs with this cache (benchmark/PROFILE.md, "SQLite
/// writes at 1M: the page cache's size and the commit").
pub(super) const PAGE_CACHE_KIB: i64 = 2000;

/// One open connection to the file, with its checkpoint thread.
pub(super) struct Db {
    pub(super) conn: Connection,
    /// The file's path, for error messages.
    pub(super) path: String,
    /// The busy handler's state; after `conn`, so that it outlives the connection.
    pub(super) busy: Box<BusyWait>,
    /// The background checkpoint thread, joined on drop (see `Drop`).
    checkpointer: Option<std::thread::JoinHandle<()>>,
    /// The -wal and -shm files this connection uses, with their (device, inode).
    sidecars: Vec<(PathBuf, (u64, u64))>,
    /// Access tokens read recently, served again while no commit happened (see `recent`).
    pub(super) recent: RefCell<Recent>,
    /// What spares most calls the `stat` of `ensure_in_place`, if it could be set up.
    watch: Option<Watch>,
    /// Whether the grant rows' triggers are known to be in the file (see `GrantTriggers`).
    pub(super) grants: GrantTriggers,
    /// Whether a read transaction is held open for the synchronous gets (see `held`).
    pub(super) held: Cell<bool>,
}

impl Drop for Db {
    /// Stops the checkpoint thread (removing the hook drops its channel) and waits for it,
    /// so that this connection is the file's last in this process when it closes: SQLite
    /// then checkpoints and removes the WAL, and the `.db` file alone holds every token.
    fn drop(&mut self) {
        let _ = self
            .conn
            .wal_hook(None::<fn(&mut rusqlite::hooks::Wal, i32) -> rusqlite::Result<()>>);
        if let Some(thread) = self.checkpointer.take() {
            let _ = thread.join();
        }
    }
}

impl Db {
    /// Opens (creating if needed) the database file, with WAL checked, the sync mode set
    /// and the schema migrated.
    pub(super) fn open(path: &Path, sync: SyncMode, busy_timeout_ms: u32) -> Result<Self> {
        let shown = path.display().to_string();
        prepare_file(path, &shown)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let err = |e: rusqlite::Error| from_sqlite(&shown, &e);
        // Through the layer that writes a commit's WAL frames at once (`vfs`), where it exists.
        let mut conn = match super::vfs::name() {
            Some(vfs) => Connection::open_with_flags_and_vfs(path, flags, vfs),
            None => Connection::open_with_flags(path, flags),
        }
        .map_err(err)?;
        let busy_timeout = Duration::from_millis(u64::from(busy_timeout_ms));
        let busy = Box::new(BusyWait {
            timeout: busy_timeout,
            base: std::time::Instant::now(),
            since: std::sync::atomic::AtomicU64::new(0),
        });
        set_busy_handler(&conn, Some(&busy)).map_err(err)?;
        conn.set_prepared_statement_cache_capacity(64);
        conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)
            .map_err(err)?;
        // Reads of the file through a memory map (up to 2 GiB of it) instead of `pread`
        // into the page cache: a page not cached costs a page fault at most, not a system
        // call and a 4 KiB copy. Writes still go through the WAL. The price: an I/O error
        // reading a mapped page (a failing disk, the file truncated by someone else) is a
        // SIGBUS that ends the process instead of an error (see docs/sqlite.md).
        conn.pragma_update(None, "mmap_size", MMAP_SIZE)
            .map_err(err)?;
        // First, so that a file another program owns is refused before anything changes it.
        migrate(&mut conn, &shown)?;
        let mode: String = retry_while_busy(busy_timeout, || {
            conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        })
        .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Open {
                path: shown,
                reason: format!("SQLite refused WAL mode (journal_mode is {mode})"),
            });
        }
        let level = match sync {
            SyncMode::Normal => 1,
            SyncMode::Full => 2,
        };
        conn.pragma_update(None, "synchronous", level)
            .map_err(err)?;
        let set: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .map_err(err)?;
        if set != level {
            return Err(StoreError::Open {
                path: shown,
                reason: format!("SQLite kept synchronous={set}, not {level}"),
            });
        }
        // After a burst that the checkpoint fell behind on, the WAL file keeps its size (SQLite
        // reuses it from the start) unless a limit is set: then the next write after a full
        // checkpoint cuts it back to this.
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
            .map_err(err)?;
        let checkpointer = checkpoint_in_background(&mut conn, path, busy_timeout).map_err(err)?;
        conn.execute_batch(
            "PRAGMA temp_store = MEMORY;
             CREATE TEMP TABLE IF NOT EXISTS nts_batch (
                 token TEXT PRIMARY KEY, refresh_token TEXT) WITHOUT ROWID;",
        )
        .map_err(err)?;
        // A read, so that the -wal and -shm files exist before they are noted.
        conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |_| Ok(()))
            .map_err(err)?;
        let sidecars = ["-wal", "-shm"]
            .iter()
            .filter_map(|suffix| {
                let mut name = final_target(path).into_os_string();
                name.push(suffix);
                let file = PathBuf::from(name);
                let id = file_id(&file)?;
                Some((file, id))
            })
            .collect();
        // After the open: a change before it is seen by the first call's `stat`.
        let watch = conn.path().and_then(|p| Watch::new(Path::new(p)));
        Ok(Db {
            conn,
            path: shown,
            busy,
            checkpointer,
            sidecars,
            recent: RefCell::new(Recent::new()),
            watch,
            grants: GrantTriggers::default(),
            held: Cell::new(false),
        })
    }

    /// The schema version of the open file.
    #[cfg(test)]
    pub(super) fn schema_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction, committed if `f` succeeds and the file
    /// is still the one at the path (see `ensure_in_place`), rolled back otherwise.
    pub(super) fn write<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let result = transaction(&self.conn, "BEGIN IMMEDIATE", |c| {
            let value = f(c)?;
            self.ensure_in_place().map_err(TxError::Store)?;
            Ok(value)
        });
        self.grants.settle(result.is_ok());
        result.map_err(|e| self.tx_err(e))
    }

    /// Fails with `Moved` if the file this connection has open is no longer the one at its
    /// path: deleted, renamed, or replaced by another file (a restore). Writes to it would
    /// be acknowledged and then lost, and reads would answer from a file nobody else sees.
    /// One `stat` of the path (SQLite's `SQLITE_FCNTL_HAS_MOVED`), unless the watches on
    /// its folders saw nothing happen to it since the last one (see `watch`).
    pub(super) fn ensure_in_place(&self) -> Result<()> {
        let changes = self.watch.as_ref().and_then(Watch::changes);
        if let (Some(watch), Some(changes)) = (&self.watch, changes) {
            if watch.unchanged_since_confirmed(changes) {
                return Ok(());
            }
        }
        self.stat_in_place()?;
        if let (Some(watch), Some(changes)) = (&self.watch, changes) {
            watch.confirm(changes);
        }
        Ok(())
    }

    /// This connection without its watch, as where none can be set up.
    #[cfg(test)]
    pub(super) fn without_watch(mut self) -> Self {
        self.watch = None;
        self
    }

    /// Whether this connection stats the path at each call (no watch, or no longer).
    #[cfg(test)]
    pub(super) fn stats_every_call(&self) -> bool {
        self.watch.as_ref().is_none_or(Watch::is_off)
    }

    /// `ensure_in_place` by one `stat` of the path (SQLite's `SQLITE_FCNTL_HAS_MOVED`).
    fn stat_in_place(&self) -> Result<()> {
        let mut moved: std::os::raw::c_int = 0;
        // SAFETY: the handle is this open connection's; "main" is a NUL-terminated name;
        // HAS_MOVED writes one int through the pointer, which lives for the call.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_file_control(
                self.conn.handle(),
                c"main".as_ptr(),
                rusqlite::ffi::SQLITE_FCNTL_HAS_MOVED,
                (&mut moved as *mut std::os::raw::c_int).cast(),
            )
        };
        if rc == rusqlite::ffi::SQLITE_OK && moved != 0 {
            // SQLite leaves the old -wal and -shm files in place when the file has moved,
            // and the next connection to the path would take the old file's WAL frames
            // for its own (undoing a restore, or mixing pages into a new file): they go,
            // if they are still this connection's. Connections to the old file (here or
            // in other processes) keep them open, and find the file moved at their next call.
            for (file, id) in &self.sidecars {
                if file_id(file) == Some(*id) {
                    let _ = std::fs::remove_file(file);
                }
            }
            return Err(StoreError::Moved {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// Housekeeping a read does on the side (removing what it found expired): done now if
    /// the write lock is free, else left for the next read or cleanup. It never waits for
    /// the lock and never fails the read, whose answer does not depend on it.
    /// A read held for the synchronous gets (see `held`) ends first: a write cannot begin
    /// inside it, and this is the one write a holding get makes (every other call ends the
    /// held read in `SqliteStore::main`).
    pub(super) fn tidy(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<()>) {
        if self.end_read().is_ok() && set_busy_handler(&self.conn, None).is_ok() {
            let _ = immediate(&self.conn, f);
            let _ = set_busy_handler(&self.conn, Some(&self.busy));
        }
    }
}

/// `BEGIN IMMEDIATE` … `COMMIT`, rolled back if `f` or the commit fails.
pub(super) fn immediate<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    transaction(conn, "BEGIN IMMEDIATE", f)
}

/// `begin` … `COMMIT`, rolled back if `f` or the commit fails.
pub(super) fn transaction<T, E: From<rusqlite::Error>>(
    conn: &Connection,
    begin: &str,
    f: impl FnOnce(&Connection) -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    conn.prepare_cached(begin)?.execute([])?;
    let result = f(conn).and_then(|v| Ok(conn.prepare_cached("COMMIT")?.execute([]).map(|_| v)?));
    if result.is_err() && !conn.is_autocommit() {
        // The rollback's own failure cannot be reported better than the first error.
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}
