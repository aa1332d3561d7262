//! One connection to the file and what it does: transactions, the check that the file is
//! still the one at its path, and each store operation in SQL.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::background::checkpoint_in_background;
use super::file::{file_id, final_target, prepare_file};
use super::rows::{
    expiry, read_code, required_text, scopes, scopes_json, text, time, user, NO_CHALLENGE, NO_USER,
};
use super::schema::migrate;
use crate::config::SyncMode;
use crate::error::{Result, StoreError};
use crate::model::{
    is_expired, AccessToken, AuthorizationCode, ClientRecord, NewAccessToken, RefreshToken,
    RotateRequest, Rotation, Stats,
};
use crate::store::buckets::{COARSE_BUCKET_BITS, FINE_BUCKET_BITS};

/// How long an automatic cleanup's lease on the file lasts after its last batch.
const CLEANER_LEASE_MS: i64 = 10_000;

const SELECT_ACCESS: &str =
    "SELECT api_key, user_id, client_id, scopes, refresh_token, expires_at, created_at
     FROM access_tokens WHERE token = ?1";

/// getStats: the counters, less the expired rows of past buckets (from their counts) and
/// of the current 4-second bucket (visited). ?1 now, ?2 its 17-minute bucket, ?3 that
/// bucket's first 4-second bucket, ?4 now's 4-second bucket, ?5 that bucket's first instant.
pub(super) const STATS: &str = "SELECT
     (SELECT n FROM nts_counts WHERE level = 2 AND bucket = 0 AND kind = 0)
        - (SELECT COALESCE(SUM(n), 0) FROM nts_counts WHERE level = 1 AND bucket < ?2 AND kind = 0)
        - (SELECT COALESCE(SUM(n), 0) FROM nts_counts
           WHERE level = 0 AND bucket >= ?3 AND bucket < ?4 AND kind = 0)
        - (SELECT COUNT(*) FROM access_tokens INDEXED BY idx_access_tokens_expires_at
           WHERE expires_at >= ?5 AND expires_at <= ?1),
     (SELECT n FROM nts_counts WHERE level = 2 AND bucket = 0 AND kind = 1)
        - (SELECT COALESCE(SUM(n), 0) FROM nts_counts WHERE level = 1 AND bucket < ?2 AND kind = 1)
        - (SELECT COALESCE(SUM(n), 0) FROM nts_counts
           WHERE level = 0 AND bucket >= ?3 AND bucket < ?4 AND kind = 1)
        - (SELECT COUNT(DISTINCT a.user_id)
           FROM access_tokens a INDEXED BY idx_access_tokens_expires_at
           WHERE a.expires_at >= ?5 AND a.expires_at <= ?1 AND a.user_id <> ''
           AND NOT EXISTS (SELECT 1 FROM access_tokens l
               WHERE l.user_id = a.user_id AND l.expires_at > ?1)
           AND NOT EXISTS (SELECT 1 FROM access_tokens l
               WHERE l.user_id = a.user_id AND l.expires_at IS NULL))";

const CODE_COLUMNS: &str = "user_id, api_key, client_id, redirect_uri, code_challenge, code_challenge_method, scopes, expires_at, created_at";

/// How often a call waiting for the write lock tries again. SQLite's own busy handler
/// backs off to sleeps of 25, 50 and 100 ms, so a writer that found the lock taken slept
/// through every gap a cleanup left between its short transactions, and waited up to 2 s
/// behind a backlog's cleanup (issue 15, defect 4); polling every millisecond, it takes the
/// lock in the pause that follows each cleanup transaction (`SqliteStore::cleanup_pause`).
const BUSY_POLL: Duration = Duration::from_millis(1);

/// The state of a connection's busy handler (see `busy_wait`): how long a call may wait
/// for a lock, and since when the current call has waited.
struct BusyWait {
    timeout: Duration,
    base: std::time::Instant,
    /// Nanoseconds after `base` when the current wait began.
    since: std::sync::atomic::AtomicU64,
}

/// SQLite's busy handler: `count` is how many times it was called for this wait. Sleeps
/// `BUSY_POLL` (less at the end) and asks SQLite to try again, until the timeout.
unsafe extern "C" fn busy_wait(
    arg: *mut std::os::raw::c_void,
    count: std::os::raw::c_int,
) -> std::os::raw::c_int {
    use std::sync::atomic::Ordering;
    // SAFETY: `arg` is the `BusyWait` that `Db` owns in a Box, installed with this
    // handler and removed (by closing the connection) before the Box is dropped.
    let state = unsafe { &*(arg as *const BusyWait) };
    let now = u64::try_from(state.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
    if count == 0 {
        state.since.store(now, Ordering::Relaxed);
    }
    let waited = Duration::from_nanos(now.saturating_sub(state.since.load(Ordering::Relaxed)));
    if waited >= state.timeout {
        return 0;
    }
    std::thread::sleep(BUSY_POLL.min(state.timeout - waited));
    1
}

/// One open connection to the file, with its checkpoint thread.
pub(super) struct Db {
    pub(super) conn: Connection,
    /// The file's path, for error messages.
    path: String,
    /// The busy handler's state; after `conn`, so that it outlives the connection.
    busy: Box<BusyWait>,
    /// The background checkpoint thread, joined on drop (see `Drop`).
    checkpointer: Option<std::thread::JoinHandle<()>>,
    /// The -wal and -shm files this connection uses, with their (device, inode).
    sidecars: Vec<(PathBuf, (u64, u64))>,
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
        let err = |e: rusqlite::Error| StoreError::from_sqlite(&shown, &e);
        let mut conn = Connection::open_with_flags(path, flags).map_err(err)?;
        let busy_timeout = Duration::from_millis(u64::from(busy_timeout_ms));
        let busy = Box::new(BusyWait {
            timeout: busy_timeout,
            base: std::time::Instant::now(),
            since: std::sync::atomic::AtomicU64::new(0),
        });
        set_busy_handler(&conn, Some(&busy)).map_err(err)?;
        conn.set_prepared_statement_cache_capacity(64);
        // A page cache of up to 64 MiB (default 2 MiB) keeps a million-token file's inner
        // b-tree pages and recent leaves in memory; it grows only as pages are used.
        conn.pragma_update(None, "cache_size", -65536)
            .map_err(err)?;
        // First, so that a file another program owns is refused before anything changes it.
        migrate(&mut conn, &shown)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
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
        Ok(Db {
            conn,
            path: shown,
            busy,
            checkpointer,
            sidecars,
        })
    }

    /// The schema version of the open file.
    #[cfg(test)]
    pub(super) fn schema_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        StoreError::from_sqlite(&self.path, &e)
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction, committed if `f` succeeds and the file
    /// is still the one at the path (see `ensure_in_place`), rolled back otherwise.
    fn write<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        transaction(&self.conn, "BEGIN IMMEDIATE", |c| {
            let value = f(c)?;
            self.ensure_in_place().map_err(TxError::Store)?;
            Ok(value)
        })
        .map_err(|e| self.tx_err(e))
    }

    fn tx_err(&self, e: TxError) -> StoreError {
        tx_error(&self.path, e)
    }

    /// Fails with `Moved` if the file this connection has open is no longer the one at its
    /// path: deleted, renamed, or replaced by another file (a restore). Writes to it would
    /// be acknowledged and then lost, and reads would answer from a file nobody else sees.
    /// One `stat` of the path (SQLite's `SQLITE_FCNTL_HAS_MOVED`).
    fn ensure_in_place(&self) -> Result<()> {
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
    fn tidy(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<()>) {
        if set_busy_handler(&self.conn, None).is_ok() {
            let _ = immediate(&self.conn, f);
            let _ = set_busy_handler(&self.conn, Some(&self.busy));
        }
    }

    /// Removes an access token that a read found expired (see `tidy`). Checked again
    /// inside the transaction: another process may have replaced it since.
    fn remove_if_expired(&self, token: &str, now: i64) {
        self.tidy(|c| {
            let still = c
                .prepare_cached(
                    "SELECT 1 FROM access_tokens
                     WHERE token = ?1 AND (expires_at <= ?2 OR expires_at >= '')",
                )?
                .exists(params![token, now])?;
            if still {
                delete_access(c, token)?;
            }
            Ok(())
        });
    }
}

/// `BEGIN IMMEDIATE` … `COMMIT`, rolled back if `f` or the commit fails.
pub(super) fn immediate<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    transaction(conn, "BEGIN IMMEDIATE", f)
}

/// A failure inside a transaction: SQLite's, or the store's own (a moved file, a schema
/// this package did not write).
pub(super) enum TxError {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for TxError {
    fn from(e: rusqlite::Error) -> Self {
        TxError::Sql(e)
    }
}

/// Installs `busy_wait` with `state` as the connection's busy handler, or none (a locked
/// database then fails at once with SQLITE_BUSY).
fn set_busy_handler(conn: &Connection, state: Option<&BusyWait>) -> rusqlite::Result<()> {
    let (handler, arg) = match state {
        Some(s) => (
            Some(busy_wait as unsafe extern "C" fn(_, _) -> _),
            (s as *const BusyWait).cast_mut().cast(),
        ),
        None => (None, std::ptr::null_mut()),
    };
    // SAFETY: the handle is this open connection's; `arg` points at a `BusyWait` that lives
    // as long as the connection (see `Db::busy`).
    let rc = unsafe { rusqlite::ffi::sqlite3_busy_handler(conn.handle(), handler, arg) };
    if rc == rusqlite::ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rc),
            None,
        ))
    }
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

pub(super) fn tx_error(shown: &str, e: TxError) -> StoreError {
    match e {
        TxError::Sql(e) => StoreError::from_sqlite(shown, &e),
        TxError::Store(e) => e,
    }
}

/// Deletes an access token and the refresh token that points at it.
fn delete_access(c: &Connection, token: &str) -> rusqlite::Result<bool> {
    let refresh: Option<Option<String>> = c
        .prepare_cached("DELETE FROM access_tokens WHERE token = ?1 RETURNING refresh_token")?
        .query_row([token], |r| text(r, 0))
        .optional()?;
    let Some(refresh) = refresh else {
        return Ok(false);
    };
    if let Some(rt) = refresh {
        c.prepare_cached(
            "DELETE FROM refresh_tokens WHERE refresh_token = ?1 AND access_token = ?2",
        )?
        .execute([rt.as_str(), token])?;
    }
    Ok(true)
}

/// Stores an access token (and its refresh token), replacing any token with the same
/// string; the caller's transaction makes it atomic.
fn insert_access(c: &Connection, t: &NewAccessToken, now: i64) -> rusqlite::Result<()> {
    let refresh = t.refresh_token.as_deref().filter(|r| !r.is_empty());
    let scopes = scopes_json(&t.scopes);
    let user_id = t.user_id.as_deref().unwrap_or(NO_USER);
    delete_access(c, &t.token)?;
    if let Some(rt) = refresh {
        // A refresh string given by storeAccessToken starts a grant of its own.
        c.prepare_cached("DELETE FROM nts_refresh_families WHERE refresh_token = ?1")?
            .execute([rt])?;
        // A refresh token string re-used for a new access token leaves the old one.
        let prev: Option<String> = c
            .prepare_cached(
                "DELETE FROM refresh_tokens WHERE refresh_token = ?1 RETURNING access_token",
            )?
            .query_row([rt], |r| required_text(r, 0))
            .optional()?;
        if let Some(prev) = prev {
            c.prepare_cached(
                "UPDATE access_tokens SET refresh_token = NULL WHERE token = ?1 AND refresh_token = ?2",
            )?
            .execute([prev.as_str(), rt])?;
        }
    }
    c.prepare_cached(
        "INSERT INTO access_tokens
         (token, api_key, user_id, client_id, scopes, refresh_token, expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        t.token,
        t.api_key,
        user_id,
        t.client_id,
        scopes,
        refresh,
        t.expires_at,
        now
    ])?;
    if let Some(rt) = refresh {
        c.prepare_cached(
            "INSERT INTO refresh_tokens
             (refresh_token, user_id, client_id, scopes, access_token, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![rt, user_id, t.client_id, scopes, t.token, now])?;
    }
    Ok(())
}

fn cleanup_batch(c: &Connection, now: i64, limit: usize) -> rusqlite::Result<usize> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // The batch's tokens go into a per-connection temp table once, then each table is
    // cleared of them in one statement: set-based, and both statements name the same
    // rows. A refresh token goes only if it still points at its access token.
    c.prepare_cached("DELETE FROM temp.nts_batch")?
        .execute([])?;
    // Rows whose expiry is not a number (text or a blob another program wrote) first:
    // they read as expired. Both selects are ranges of the expires_at index.
    let mut removed = c
        .prepare_cached(
            "INSERT INTO temp.nts_batch (token, refresh_token)
             SELECT token, refresh_token FROM access_tokens WHERE expires_at >= '' LIMIT ?1",
        )?
        .execute([limit])?;
    removed += c
        .prepare_cached(
            "INSERT INTO temp.nts_batch (token, refresh_token)
             SELECT token, refresh_token FROM access_tokens
             WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
        )?
        .execute(params![now, limit - removed as i64])?;
    if removed > 0 {
        c.prepare_cached(
            "DELETE FROM refresh_tokens
             WHERE refresh_token IN (SELECT refresh_token FROM temp.nts_batch)
             AND access_token IN (SELECT token FROM temp.nts_batch)",
        )?
        .execute([])?;
        c.prepare_cached(
            "DELETE FROM access_tokens WHERE token IN (SELECT token FROM temp.nts_batch)",
        )?
        .execute([])?;
    }
    // Buckets whose count went to 0 (the triggers leave them): few, and never summed
    // beyond the current 17 minutes, but not kept forever.
    c.prepare_cached("DELETE FROM nts_counts WHERE level < 2 AND n = 0")?
        .execute([])?;
    let left = limit - removed as i64;
    if left > 0 {
        removed += c
            .prepare_cached(
                "DELETE FROM authorization_codes WHERE code IN
                 (SELECT code FROM authorization_codes
                  WHERE expires_at <= ?1 OR expires_at >= '' LIMIT ?2)",
            )?
            .execute(params![now, left])?;
    }
    let left = limit - removed as i64;
    if left > 0 {
        removed += c
            .prepare_cached(
                "DELETE FROM nts_pending_authorizations WHERE state IN
                 (SELECT state FROM nts_pending_authorizations WHERE expires_at <= ?1
                  UNION ALL
                  SELECT state FROM nts_pending_authorizations WHERE expires_at >= ''
                  LIMIT ?2)",
            )?
            .execute(params![now, left])?;
    }
    if (removed as i64) < limit {
        // Family rows of refresh tokens that are gone, then tokens rotated away from a
        // family with no live token left: a replay of one could revoke nothing.
        c.prepare_cached(
            "DELETE FROM nts_refresh_families WHERE refresh_token IN
             (SELECT f.refresh_token FROM nts_refresh_families f
              WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens r
                  WHERE r.refresh_token = f.refresh_token)
              LIMIT ?1)",
        )?
        .execute([limit])?;
        c.prepare_cached(
            "DELETE FROM nts_retired_refresh_tokens WHERE refresh_token IN
             (SELECT t.refresh_token FROM nts_retired_refresh_tokens t
              WHERE NOT EXISTS (SELECT 1 FROM nts_refresh_families f WHERE f.family = t.family)
              LIMIT ?1)",
        )?
        .execute([limit])?;
    }
    Ok(removed)
}

/// The store operations on this connection (see `TokenStore` for what each promises).
impl Db {
    /// One token (the tests' shorthand).
    #[cfg(test)]
    pub(super) fn store_access_token(&self, t: NewAccessToken, now: i64) -> Result<()> {
        self.store_access_tokens(std::slice::from_ref(&t), now)
    }

    pub(super) fn store_access_tokens(&self, tokens: &[NewAccessToken], now: i64) -> Result<()> {
        self.write(|c| tokens.iter().try_for_each(|t| insert_access(c, t, now)))
    }

    pub(super) fn get_access_token(&self, token: &str, now: i64) -> Result<Option<AccessToken>> {
        self.ensure_in_place()?;
        let found = self
            .conn
            .prepare_cached(SELECT_ACCESS)
            .and_then(|mut s| {
                s.query_row([token], |r| {
                    Ok(AccessToken {
                        api_key: required_text(r, 0)?,
                        user_id: user(r, 1)?,
                        client_id: required_text(r, 2)?,
                        scopes: scopes(r, 3)?,
                        refresh_token: text(r, 4)?.filter(|s| !s.is_empty()),
                        expires_at: expiry(r, 5)?,
                        created_at: time(r, 6)?.unwrap_or(0),
                    })
                })
                .optional()
            })
            .map_err(|e| self.err(e))?;
        match found {
            Some(t) if is_expired(t.expires_at, now) => {
                self.remove_if_expired(token, now);
                Ok(None)
            }
            other => Ok(other),
        }
    }

    pub(super) fn store_authorization_code(&self, code: &str, d: &AuthorizationCode) -> Result<()> {
        let scopes = scopes_json(&d.scopes);
        let user_id = d.user_id.as_deref().unwrap_or(NO_USER);
        self.write(|c| {
            c.prepare_cached(&format!(
                "INSERT OR REPLACE INTO authorization_codes (code, {CODE_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ))?
            .execute(params![
                code,
                user_id,
                d.api_key,
                d.client_id,
                d.redirect_uri,
                d.code_challenge.as_deref().unwrap_or(NO_CHALLENGE),
                d.code_challenge_method.as_deref().unwrap_or(NO_CHALLENGE),
                scopes,
                d.expires_at,
                d.created_at
            ])
            .map(|_| ())
        })
    }

    pub(super) fn take_authorization_code(
        &self,
        code: &str,
        now: i64,
    ) -> Result<Option<AuthorizationCode>> {
        let taken = self.write(|c| {
            c.prepare_cached(&format!(
                "DELETE FROM authorization_codes WHERE code = ?1 RETURNING {CODE_COLUMNS}"
            ))?
            .query_row([code], read_code)
            .optional()
        })?;
        Ok(taken.filter(|d| !is_expired(Some(d.expires_at), now)))
    }

    pub(super) fn get_refresh_token(
        &self,
        refresh_token: &str,
        now: i64,
    ) -> Result<Option<RefreshToken>> {
        self.ensure_in_place()?;
        let found = self
            .conn
            .prepare_cached(
                "SELECT r.user_id, r.client_id, r.scopes, r.access_token, r.created_at,
                        a.token IS NOT NULL, a.expires_at
                 FROM refresh_tokens r LEFT JOIN access_tokens a ON a.token = r.access_token
                 WHERE r.refresh_token = ?1",
            )
            .and_then(|mut s| {
                s.query_row([refresh_token], |r| {
                    let live = r.get::<_, bool>(5)? && !is_expired(expiry(r, 6)?, now);
                    Ok((
                        live,
                        RefreshToken {
                            user_id: user(r, 0)?,
                            client_id: required_text(r, 1)?,
                            scopes: scopes(r, 2)?,
                            access_token: required_text(r, 3)?,
                            created_at: time(r, 4)?.unwrap_or(0),
                        },
                    ))
                })
                .optional()
            })
            .map_err(|e| self.err(e))?;
        match found {
            Some((true, r)) => Ok(Some(r)),
            Some((false, r)) => {
                // Its access token is expired (or gone): remove it, as getAccessToken would.
                self.remove_if_expired(&r.access_token, now);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    pub(super) fn revoke_refresh_token(&self, refresh_token: &str) -> Result<()> {
        self.write(|c| {
            let access: Option<String> = c
                .prepare_cached(
                    "DELETE FROM refresh_tokens WHERE refresh_token = ?1 RETURNING access_token",
                )?
                .query_row([refresh_token], |r| required_text(r, 0))
                .optional()?;
            if let Some(a) = access {
                delete_access(c, &a)?;
            }
            Ok(())
        })
    }

    pub(super) fn delete_token(&self, token: &str) -> Result<()> {
        self.write(|c| delete_access(c, token).map(|_| ()))
    }

    pub(super) fn delete_user_tokens(&self, user_id: &str) -> Result<()> {
        if user_id == NO_USER {
            return Ok(());
        }
        self.write(|c| {
            c.prepare_cached(
                "DELETE FROM refresh_tokens WHERE refresh_token IN
                 (SELECT refresh_token FROM access_tokens WHERE user_id = ?1)",
            )?
            .execute([user_id])?;
            c.prepare_cached("DELETE FROM access_tokens WHERE user_id = ?1")?
                .execute([user_id])?;
            c.prepare_cached("DELETE FROM authorization_codes WHERE user_id = ?1")?
                .execute([user_id])?;
            Ok(())
        })
    }

    pub(super) fn cleanup_expired(&self, now: i64, limit: usize) -> Result<usize> {
        self.write(|c| cleanup_batch(c, now, limit))
    }

    /// `cleanup_expired` by the automatic cleanup of `holder`: only one process cleans a
    /// file at a time, the one holding the lease in `nts_cleaner` (renewed by each batch,
    /// given back when nothing expired is left, lapsing after `CLEANER_LEASE_MS` if its
    /// process died). Returns None, removing nothing, while another holder has it: two
    /// cleaners alternating would hold the write lock nearly all the time between them.
    pub(super) fn cleanup_expired_as(
        &self,
        now: i64,
        limit: usize,
        holder: i64,
    ) -> Result<Option<usize>> {
        let held_by_other = |c: &Connection| -> rusqlite::Result<bool> {
            let lease: Option<(i64, i64)> = c
                .prepare_cached("SELECT holder, until FROM nts_cleaner WHERE id = 1")?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            Ok(matches!(lease, Some((h, until)) if h != holder && until > now))
        };
        // Read first, without the write lock: a cleaner that is not the holder never
        // takes it from the writers.
        if held_by_other(&self.conn).map_err(|e| self.err(e))? {
            return Ok(None);
        }
        self.write(|c| {
            if held_by_other(c)? {
                return Ok(None);
            }
            let n = cleanup_batch(c, now, limit)?;
            if n < limit {
                c.prepare_cached("DELETE FROM nts_cleaner WHERE id = 1")?
                    .execute([])?;
            } else {
                c.prepare_cached(
                    "INSERT OR REPLACE INTO nts_cleaner (id, holder, until) VALUES (1, ?1, ?2)",
                )?
                .execute(params![holder, now.saturating_add(CLEANER_LEASE_MS)])?;
            }
            Ok(Some(n))
        })
    }

    pub(super) fn stats(&self, now: i64) -> Result<Stats> {
        self.ensure_in_place()?;
        // The counters include expired rows that nothing has removed yet. Those of past
        // buckets are subtracted by their counts (17-minute, then 4-second ones; migration
        // 3), those of the current 4 seconds are counted: the cost does not grow with the
        // expired rows, and a read never takes the write lock to remove them.
        let fine = now >> FINE_BUCKET_BITS;
        let coarse = now >> COARSE_BUCKET_BITS;
        let read = |c: &Connection| -> rusqlite::Result<Stats> {
            c.prepare_cached(STATS)?.query_row(
                params![
                    now,
                    coarse,
                    coarse << (COARSE_BUCKET_BITS - FINE_BUCKET_BITS),
                    fine,
                    fine << FINE_BUCKET_BITS
                ],
                |r| {
                    Ok(Stats {
                        total_tokens: r.get::<_, i64>(0)?.max(0) as u64,
                        unique_users: r.get::<_, i64>(1)?.max(0) as u64,
                    })
                },
            )
        };
        // One read transaction, so the counters and the rows are one snapshot.
        transaction(&self.conn, "BEGIN DEFERRED", read).map_err(|e| self.err(e))
    }
}

/// The rest of the OAuth state: rotation, clients, pending authorizations.
impl Db {
    pub(super) fn rotate_refresh_token(&self, req: &RotateRequest, now: i64) -> Result<Rotation> {
        self.write(|c| {
            let found = c
                .prepare_cached(
                    "SELECT a.token, a.api_key, a.user_id, a.client_id, a.scopes, a.expires_at,
                            COALESCE(f.family, r.refresh_token)
                     FROM refresh_tokens r JOIN access_tokens a ON a.token = r.access_token
                     LEFT JOIN nts_refresh_families f ON f.refresh_token = r.refresh_token
                     WHERE r.refresh_token = ?1",
                )?
                .query_row([&req.refresh_token], |r| {
                    Ok((
                        required_text(r, 0)?,
                        AccessToken {
                            api_key: required_text(r, 1)?,
                            user_id: user(r, 2)?,
                            client_id: required_text(r, 3)?,
                            scopes: scopes(r, 4)?,
                            refresh_token: None,
                            expires_at: expiry(r, 5)?,
                            created_at: 0,
                        },
                        required_text(r, 6)?,
                    ))
                })
                .optional()?;
            if let Some((access, old, family)) = found {
                if is_expired(old.expires_at, now) {
                    delete_access(c, &access)?;
                    return Ok(Rotation::Unknown);
                }
                delete_access(c, &access)?;
                c.prepare_cached("DELETE FROM nts_refresh_families WHERE refresh_token = ?1")?
                    .execute([&req.refresh_token])?;
                c.prepare_cached(
                    "INSERT OR REPLACE INTO nts_retired_refresh_tokens
                     (refresh_token, family, retired_at) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![req.refresh_token, family, now])?;
                let new = req.successor(&old);
                insert_access(c, &new, now)?;
                c.prepare_cached(
                    "INSERT OR REPLACE INTO nts_refresh_families (refresh_token, family)
                     VALUES (?1, ?2)",
                )?
                .execute(params![req.new_refresh_token, family])?;
                return Ok(req.rotated(old));
            }
            let retired: Option<(String, i64)> = c
                .prepare_cached(
                    "SELECT family, retired_at FROM nts_retired_refresh_tokens
                     WHERE refresh_token = ?1",
                )?
                .query_row([&req.refresh_token], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((family, at)) = retired else {
                return Ok(Rotation::Unknown);
            };
            if now - at < req.grace_ms {
                return Ok(Rotation::Reused {
                    within_grace: true,
                    revoked: 0,
                });
            }
            c.prepare_cached(
                "DELETE FROM access_tokens WHERE token IN
                 (SELECT r.access_token FROM nts_refresh_families f
                  JOIN refresh_tokens r ON r.refresh_token = f.refresh_token
                  WHERE f.family = ?1)",
            )?
            .execute([&family])?;
            let revoked = c
                .prepare_cached(
                    "DELETE FROM refresh_tokens WHERE refresh_token IN
                     (SELECT refresh_token FROM nts_refresh_families WHERE family = ?1)",
                )?
                .execute([&family])?;
            c.prepare_cached("DELETE FROM nts_refresh_families WHERE family = ?1")?
                .execute([&family])?;
            Ok(Rotation::Reused {
                within_grace: false,
                revoked,
            })
        })
    }

    pub(super) fn put_client(&self, client: &ClientRecord) -> Result<()> {
        self.write(|c| {
            c.prepare_cached(
                "INSERT INTO nts_clients (client_id, secret_digest, metadata, created_at, seq)
                 VALUES (?1, ?2, ?3, ?4, (SELECT COALESCE(MAX(seq), 0) + 1 FROM nts_clients))
                 ON CONFLICT (client_id) DO UPDATE SET secret_digest = excluded.secret_digest,
                     metadata = excluded.metadata",
            )?
            .execute(params![
                client.client_id,
                client.secret_digest,
                client.metadata,
                client.created_at
            ])
            .map(|_| ())
        })
    }

    pub(super) fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        self.ensure_in_place()?;
        self.conn
            .prepare_cached(
                "SELECT client_id, secret_digest, metadata, created_at FROM nts_clients
                 WHERE client_id = ?1",
            )
            .and_then(|mut st| {
                st.query_row([client_id], |r| {
                    Ok(ClientRecord {
                        client_id: r.get(0)?,
                        secret_digest: r.get(1)?,
                        metadata: r.get(2)?,
                        created_at: time(r, 3)?.unwrap_or(0),
                    })
                })
                .optional()
            })
            .map_err(|e| self.err(e))
    }

    pub(super) fn client_ids(&self) -> Result<Vec<String>> {
        self.ensure_in_place()?;
        self.conn
            .prepare_cached("SELECT client_id FROM nts_clients ORDER BY seq")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| self.err(e))
    }

    pub(super) fn store_pending_authorization(
        &self,
        state: &str,
        data: &str,
        expires_at: i64,
    ) -> Result<()> {
        self.write(|c| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO nts_pending_authorizations (state, data, expires_at)
                 VALUES (?1, ?2, ?3)",
            )?
            .execute(params![state, data, expires_at])
            .map(|_| ())
        })
    }

    pub(super) fn take_pending_authorization(
        &self,
        state: &str,
        now: i64,
    ) -> Result<Option<String>> {
        let taken: Option<(String, i64)> = self.write(|c| {
            c.prepare_cached(
                "DELETE FROM nts_pending_authorizations WHERE state = ?1 RETURNING data, expires_at",
            )?
            .query_row([state], |r| {
                Ok((required_text(r, 0)?, expiry(r, 1)?.unwrap_or(i64::MIN)))
            })
            .optional()
        })?;
        Ok(taken
            .filter(|(_, at)| !is_expired(Some(*at), now))
            .map(|(d, _)| d))
    }
}
