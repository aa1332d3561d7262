//! The SQLite store: one file, shared safely by several processes.
//!
//! The three tables are the ones the old JavaScript module created, so a `tokens.db` it
//! wrote opens here and keeps its tokens, and it can still read what this store writes.
//! Every write runs in a `BEGIN IMMEDIATE` transaction, every statement is cached, and
//! schema changes are `user_version` migrations that are only ever appended.

use std::fs::{DirBuilder, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};

use super::{validate_authorization_code, validate_new_access_token, TokenStore};
use crate::config::SyncMode;
use crate::error::{Result, StoreError};
use crate::model::{
    is_expired, AccessToken, AuthorizationCode, NewAccessToken, RefreshToken, Stats,
};

/// Trigger statements of migration 3 that count the access token `NEW` in: its expiry
/// bucket, and its user's token count and latest expiry. (Released text: never edited.)
macro_rules! count_in_new {
    () => {
        "
        INSERT INTO nts_expiry (kind, bucket, n)
            SELECT k.kind, CAST(NEW.expires_at AS INTEGER) >> k.bits, 1
            FROM (SELECT 0 AS kind, 12 AS bits UNION ALL SELECT 2, 20) k
            WHERE typeof(NEW.expires_at) IN ('integer', 'real')
            ON CONFLICT (kind, bucket) DO UPDATE SET n = n + 1;
        INSERT INTO nts_users (user_id, tokens, until)
            SELECT NEW.user_id, 1,
                CASE WHEN typeof(NEW.expires_at) IN ('integer', 'real') THEN NEW.expires_at END
            WHERE COALESCE(NEW.user_id, '') <> ''
            ON CONFLICT (user_id) DO UPDATE SET tokens = tokens + 1,
                until = CASE WHEN until IS NULL OR excluded.until IS NULL THEN NULL
                    ELSE max(until, excluded.until) END;
        "
    };
}

/// Trigger statements of migration 3 that count the access token `OLD` out. When it held
/// its user's latest expiry, the next latest comes from the (user_id, expires_at) index,
/// leaving the row `OLD.token` out (in an UPDATE it is still there, with its new values).
macro_rules! count_out_old {
    () => {
        "
        UPDATE nts_expiry SET n = n - 1
            WHERE typeof(OLD.expires_at) IN ('integer', 'real')
            AND ((kind = 0 AND bucket = CAST(OLD.expires_at AS INTEGER) >> 12)
                OR (kind = 2 AND bucket = CAST(OLD.expires_at AS INTEGER) >> 20));
        DELETE FROM nts_expiry WHERE n <= 0
            AND ((kind = 0 AND bucket = CAST(OLD.expires_at AS INTEGER) >> 12)
                OR (kind = 2 AND bucket = CAST(OLD.expires_at AS INTEGER) >> 20));
        UPDATE nts_users SET tokens = tokens - 1, until = CASE
            WHEN tokens <= 1 THEN until
            WHEN until IS NOT NULL AND typeof(OLD.expires_at) IN ('integer', 'real')
                AND OLD.expires_at < until THEN until
            WHEN EXISTS (SELECT 1 FROM access_tokens WHERE user_id = OLD.user_id
                AND expires_at IS NULL AND token <> OLD.token) THEN NULL
            WHEN EXISTS (SELECT 1 FROM access_tokens WHERE user_id = OLD.user_id
                AND expires_at >= '' AND token <> OLD.token) THEN NULL
            ELSE (SELECT expires_at FROM access_tokens WHERE user_id = OLD.user_id
                AND expires_at < '' AND token <> OLD.token ORDER BY expires_at DESC LIMIT 1)
            END
        WHERE user_id = OLD.user_id;
        DELETE FROM nts_users WHERE user_id = OLD.user_id AND tokens <= 0;
        "
    };
}

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
/// Append only: a released entry is never edited.
const MIGRATIONS: &[&str] = &[
    // 1. The old module's tables and columns (so it can still open the file) and indexes.
    //    A new file gets them WITHOUT ROWID: the row lives in the primary-key b-tree, so a
    //    write dirties one page less per table (a legacy file keeps its rowid tables).
    //    Codes are few and short-lived: no secondary indexes, one page per write.
    //    Each index carries the other column, so that getStats can tell, from the indexes
    //    alone, which users have only expired tokens left.
    "CREATE TABLE IF NOT EXISTS access_tokens (
        token TEXT PRIMARY KEY,
        api_key TEXT NOT NULL,
        user_id TEXT NOT NULL,
        client_id TEXT NOT NULL,
        scopes TEXT NOT NULL,
        refresh_token TEXT,
        expires_at INTEGER,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS refresh_tokens (
        refresh_token TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        client_id TEXT NOT NULL,
        scopes TEXT NOT NULL,
        access_token TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS authorization_codes (
        code TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        api_key TEXT NOT NULL,
        client_id TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        code_challenge TEXT,
        code_challenge_method TEXT,
        scopes TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS idx_access_tokens_user_id ON access_tokens(user_id, expires_at);
    CREATE INDEX IF NOT EXISTS idx_access_tokens_expires_at ON access_tokens(expires_at, user_id);",
    // 2. Counters kept by triggers, so getStats is O(1) and right across processes (and
    //    stays right when the old module writes the file: its writes fire them too).
    //    Whether a user has another token is answered by the user_id index, so a write
    //    dirties one counter page, nothing more. A user id of '' means "none".
    "CREATE TABLE nts_stats (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        tokens INTEGER NOT NULL,
        users INTEGER NOT NULL
    );
    INSERT INTO nts_stats (id, tokens, users) VALUES (1,
        (SELECT COUNT(*) FROM access_tokens),
        (SELECT COUNT(DISTINCT user_id) FROM access_tokens WHERE user_id <> ''));
    CREATE TRIGGER nts_access_insert AFTER INSERT ON access_tokens BEGIN
        UPDATE nts_stats SET tokens = tokens + 1,
            users = users + (COALESCE(NEW.user_id, '') <> '' AND NOT EXISTS (
                SELECT 1 FROM access_tokens WHERE user_id = NEW.user_id AND token <> NEW.token))
        WHERE id = 1;
    END;
    CREATE TRIGGER nts_access_delete AFTER DELETE ON access_tokens BEGIN
        UPDATE nts_stats SET tokens = tokens - 1,
            users = users - (COALESCE(OLD.user_id, '') <> '' AND NOT EXISTS (
                SELECT 1 FROM access_tokens WHERE user_id = OLD.user_id))
        WHERE id = 1;
    END;
    CREATE TRIGGER nts_access_update_user AFTER UPDATE OF user_id ON access_tokens
    WHEN OLD.user_id IS NOT NEW.user_id BEGIN
        UPDATE nts_stats SET
            users = users
                - (COALESCE(OLD.user_id, '') <> '' AND NOT EXISTS (
                    SELECT 1 FROM access_tokens WHERE user_id = OLD.user_id))
                + (COALESCE(NEW.user_id, '') <> '' AND NOT EXISTS (
                    SELECT 1 FROM access_tokens WHERE user_id = NEW.user_id AND token <> NEW.token))
        WHERE id = 1;
    END;",
    // 3. getStats in constant time however many expired rows wait for cleanup, and counts
    //    that stay right whoever writes. The counters of migration 2 include expired rows;
    //    `nts_expiry` says how many of them expire in each 4-second bucket (expires_at >> 12)
    //    and each 17-minute one (>> 20), for tokens (kinds 0 and 2) and for users by the
    //    expiry of their last token (kinds 1 and 3, kept in `nts_users`), so getStats
    //    subtracts the past 17-minute buckets, then the past 4-second buckets of the
    //    current 17 minutes, and counts only the current 4 seconds' rows. A user's `until`
    //    is NULL while one of their tokens never expires; an expires_at that is not a number
    //    never expires (as the reader treats it).
    //    `INSERT OR REPLACE` (the old module's way of writing) deletes the old row without
    //    firing delete triggers, so `nts_access_replace` deletes it first, as a DELETE.
    concat!(
        "DROP TRIGGER IF EXISTS nts_access_insert;
    DROP TRIGGER IF EXISTS nts_access_delete;
    DROP TRIGGER IF EXISTS nts_access_update_user;
    CREATE TABLE nts_users (
        user_id TEXT PRIMARY KEY,
        tokens INTEGER NOT NULL,
        until INTEGER
    ) WITHOUT ROWID;
    CREATE TABLE nts_expiry (
        kind INTEGER NOT NULL,
        bucket INTEGER NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (kind, bucket)
    ) WITHOUT ROWID;
    INSERT INTO nts_users (user_id, tokens, until)
        SELECT user_id, COUNT(*), CASE WHEN SUM(typeof(expires_at) NOT IN ('integer', 'real')) > 0
            THEN NULL ELSE MAX(expires_at) END
        FROM access_tokens WHERE COALESCE(user_id, '') <> '' GROUP BY user_id;
    INSERT INTO nts_expiry (kind, bucket, n)
        SELECT k.kind, CAST(a.expires_at AS INTEGER) >> k.bits, COUNT(*)
        FROM access_tokens a, (SELECT 0 AS kind, 12 AS bits UNION ALL SELECT 2, 20) k
        WHERE typeof(a.expires_at) IN ('integer', 'real') GROUP BY 1, 2;
    INSERT INTO nts_expiry (kind, bucket, n)
        SELECT k.kind, CAST(u.until AS INTEGER) >> k.bits, COUNT(*)
        FROM nts_users u, (SELECT 1 AS kind, 12 AS bits UNION ALL SELECT 3, 20) k
        WHERE u.until IS NOT NULL GROUP BY 1, 2;
    UPDATE nts_stats SET tokens = (SELECT COUNT(*) FROM access_tokens),
        users = (SELECT COUNT(*) FROM nts_users) WHERE id = 1;
    CREATE TRIGGER nts_access_replace BEFORE INSERT ON access_tokens
    WHEN EXISTS (SELECT 1 FROM access_tokens WHERE token = NEW.token) BEGIN
        DELETE FROM access_tokens WHERE token = NEW.token;
    END;
    CREATE TRIGGER nts_access_insert AFTER INSERT ON access_tokens BEGIN
        UPDATE nts_stats SET tokens = tokens + 1 WHERE id = 1;",
        count_in_new!(),
        "END;
    CREATE TRIGGER nts_access_delete AFTER DELETE ON access_tokens BEGIN
        UPDATE nts_stats SET tokens = tokens - 1 WHERE id = 1;",
        count_out_old!(),
        "END;
    CREATE TRIGGER nts_access_update AFTER UPDATE OF user_id, expires_at ON access_tokens
    WHEN OLD.user_id IS NOT NEW.user_id OR OLD.expires_at IS NOT NEW.expires_at BEGIN",
        count_out_old!(),
        count_in_new!(),
        "END;
    CREATE TRIGGER nts_users_insert AFTER INSERT ON nts_users BEGIN
        UPDATE nts_stats SET users = users + 1 WHERE id = 1;
        INSERT INTO nts_expiry (kind, bucket, n)
            SELECT k.kind, CAST(NEW.until AS INTEGER) >> k.bits, 1
            FROM (SELECT 1 AS kind, 12 AS bits UNION ALL SELECT 3, 20) k
            WHERE NEW.until IS NOT NULL
            ON CONFLICT (kind, bucket) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER nts_users_delete AFTER DELETE ON nts_users BEGIN
        UPDATE nts_stats SET users = users - 1 WHERE id = 1;
        UPDATE nts_expiry SET n = n - 1
            WHERE (kind = 1 AND bucket = CAST(OLD.until AS INTEGER) >> 12)
                OR (kind = 3 AND bucket = CAST(OLD.until AS INTEGER) >> 20);
        DELETE FROM nts_expiry WHERE n <= 0
            AND ((kind = 1 AND bucket = CAST(OLD.until AS INTEGER) >> 12)
                OR (kind = 3 AND bucket = CAST(OLD.until AS INTEGER) >> 20));
    END;
    CREATE TRIGGER nts_users_until AFTER UPDATE OF until ON nts_users
    WHEN (CAST(OLD.until AS INTEGER) >> 12) IS NOT (CAST(NEW.until AS INTEGER) >> 12) BEGIN
        UPDATE nts_expiry SET n = n - 1
            WHERE (kind = 1 AND bucket = CAST(OLD.until AS INTEGER) >> 12)
                OR (kind = 3 AND bucket = CAST(OLD.until AS INTEGER) >> 20);
        DELETE FROM nts_expiry WHERE n <= 0
            AND ((kind = 1 AND bucket = CAST(OLD.until AS INTEGER) >> 12)
                OR (kind = 3 AND bucket = CAST(OLD.until AS INTEGER) >> 20));
        INSERT INTO nts_expiry (kind, bucket, n)
            SELECT k.kind, CAST(NEW.until AS INTEGER) >> k.bits, 1
            FROM (SELECT 1 AS kind, 12 AS bits UNION ALL SELECT 3, 20) k
            WHERE NEW.until IS NOT NULL
            ON CONFLICT (kind, bucket) DO UPDATE SET n = n + 1;
    END;"
    ),
];

/// Expiry times are counted by buckets of 2^12 ms (4 s) and of 2^20 ms (17.5 min):
/// `expires_at >> 12` and `>> 20`, as the triggers of migration 3 compute them.
const FINE_BUCKET_BITS: u32 = 12;
const COARSE_BUCKET_BITS: u32 = 20;

/// The stored text for "no user id" in the NOT NULL `user_id` columns.
const NO_USER: &str = "";
/// The stored text for "no PKCE challenge" (and method): the old module declared both
/// columns NOT NULL.
const NO_CHALLENGE: &str = "";

const SELECT_ACCESS: &str =
    "SELECT api_key, user_id, client_id, scopes, refresh_token, expires_at, created_at
     FROM access_tokens WHERE token = ?1";

/// getStats: the counters, less the expired rows of past buckets (from their counts) and
/// of the current 4-second bucket (visited). ?1 now, ?2 its 17-minute bucket, ?3 that
/// bucket's first 4-second bucket, ?4 now's 4-second bucket, ?5 that bucket's first instant.
const STATS: &str = "SELECT s.tokens
        - (SELECT COALESCE(SUM(n), 0) FROM nts_expiry WHERE kind = 2 AND bucket < ?2)
        - (SELECT COALESCE(SUM(n), 0) FROM nts_expiry WHERE kind = 0 AND bucket >= ?3 AND bucket < ?4)
        - (SELECT COUNT(*) FROM access_tokens INDEXED BY idx_access_tokens_expires_at
           WHERE expires_at >= ?5 AND expires_at <= ?1),
     s.users
        - (SELECT COALESCE(SUM(n), 0) FROM nts_expiry WHERE kind = 3 AND bucket < ?2)
        - (SELECT COALESCE(SUM(n), 0) FROM nts_expiry WHERE kind = 1 AND bucket >= ?3 AND bucket < ?4)
        - (SELECT COUNT(DISTINCT a.user_id)
           FROM access_tokens a INDEXED BY idx_access_tokens_expires_at
           CROSS JOIN nts_users u ON u.user_id = a.user_id
           WHERE a.expires_at >= ?5 AND a.expires_at <= ?1
           AND u.until >= ?5 AND u.until <= ?1)
     FROM nts_stats s WHERE s.id = 1";

const CODE_COLUMNS: &str = "user_id, api_key, client_id, redirect_uri, code_challenge, code_challenge_method, scopes, expires_at, created_at";

pub struct SqliteStore {
    conn: Connection,
    /// The file's path, for error messages.
    path: String,
    busy_timeout: Duration,
    /// The background checkpoint thread, joined on drop (see `Drop`).
    checkpointer: Option<std::thread::JoinHandle<()>>,
    /// The -wal and -shm files this connection uses, with their (device, inode).
    sidecars: Vec<(PathBuf, (u64, u64))>,
}

/// A file's (device, inode), if it exists.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl Drop for SqliteStore {
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

impl SqliteStore {
    /// Opens (creating if needed) the database file, with WAL checked, the sync mode set
    /// and the schema migrated.
    pub fn open(path: &Path, sync: SyncMode, busy_timeout_ms: u32) -> Result<Self> {
        let shown = path.display().to_string();
        prepare_file(path, &shown)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let err = |e: rusqlite::Error| StoreError::from_sqlite(&shown, &e);
        let mut conn = Connection::open_with_flags(path, flags).map_err(err)?;
        let busy_timeout = Duration::from_millis(u64::from(busy_timeout_ms));
        conn.busy_timeout(busy_timeout).map_err(err)?;
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
        Ok(SqliteStore {
            conn,
            path: shown,
            busy_timeout,
            checkpointer,
            sidecars,
        })
    }

    /// The schema version of the open file.
    #[cfg(test)]
    fn schema_version(&self) -> Result<i64> {
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
        if self.conn.busy_timeout(Duration::ZERO).is_ok() {
            let _ = immediate(&self.conn, f);
            let _ = self.conn.busy_timeout(self.busy_timeout);
        }
    }

    /// Removes an access token that a read found expired (see `tidy`). Checked again
    /// inside the transaction: another process may have replaced it since.
    fn remove_if_expired(&self, token: &str, now: i64) {
        self.tidy(|c| {
            let still = c
                .prepare_cached(
                    "SELECT 1 FROM access_tokens WHERE token = ?1 AND expires_at <= ?2",
                )?
                .exists(params![token, now])?;
            if still {
                delete_access(c, token)?;
            }
            Ok(())
        });
    }
}

/// Creates missing parent folders (0700) and the file itself (0600) before SQLite does,
/// so a file of API keys is never readable by others, not even for a moment.
fn prepare_file(path: &Path, shown: &str) -> Result<()> {
    let open_err = |reason: String| StoreError::Open {
        path: shown.to_owned(),
        reason,
    };
    if path.is_dir() {
        return Err(open_err("the path is a directory".into()));
    }
    // Through a symlink, the file to create is its target (SQLite opens the target, and
    // puts the -wal and -shm files beside it with the target's mode).
    let path = &final_target(path);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| open_err(format!("cannot create its folder ({})", io_reason(&e))))?;
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(open_err(format!(
            "cannot create the file ({})",
            io_reason(&e)
        ))),
    }
}

/// The path with its last component's symlinks followed, whether or not the final target
/// exists yet (`canonicalize` fails on a dangling link). Parent folders may stay symlinks.
fn final_target(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    // As the kernel's own limit on nested links: a loop ends as a path that fails to open.
    for _ in 0..40 {
        let is_link = std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink());
        let Some(target) = is_link.then(|| std::fs::read_link(&p).ok()).flatten() else {
            break;
        };
        p = match p.parent() {
            Some(parent) if target.is_relative() => parent.join(target),
            _ => target,
        };
    }
    p
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::NotFound => "a parent folder does not exist".into(),
        _ => e.to_string(),
    }
}

/// `PRAGMA application_id` of a file whose schema this package wrote ("nts1"): together
/// with `user_version`, the marker that tells our schema versions from another program's.
const APPLICATION_ID: i32 = 0x6e74_7331;

/// Brings the schema up to date. An up-to-date file (every open but the first) is only
/// read: no write lock is taken, so a process starts while another holds the lock for a
/// long import. Only a migration takes it, and checks the version again under it, as
/// another process may have migrated meanwhile.
fn migrate(conn: &mut Connection, shown: &str) -> Result<()> {
    let latest = MIGRATIONS.len() as i64;
    if applied_migrations(conn, shown).map_err(|e| tx_error(shown, e))? == latest {
        return Ok(());
    }
    transaction(conn, "BEGIN IMMEDIATE", |c| {
        let from = applied_migrations(c, shown)?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
            c.execute_batch(sql)?;
            c.pragma_update(None, "user_version", i as i64 + 1)?;
        }
        c.pragma_update(None, "application_id", APPLICATION_ID)?;
        Ok(())
    })
    .map_err(|e| tx_error(shown, e))
}

/// How many of `MIGRATIONS` the file has, from its header; an error for a file whose
/// marker this package never wrote (another program's `user_version`) or a newer schema.
fn applied_migrations(c: &Connection, shown: &str) -> std::result::Result<i64, TxError> {
    let latest = MIGRATIONS.len() as i64;
    let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let app: i32 = c.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let refuse = |reason: String| {
        TxError::Store(StoreError::Open {
            path: shown.to_owned(),
            reason,
        })
    };
    match (app, version) {
        (APPLICATION_ID, v) if v > latest => Err(refuse(format!(
            "its schema version {v} is newer than this package's {latest}; upgrade native-token-storage"
        ))),
        (APPLICATION_ID, v) if v >= 1 => Ok(v),
        // A new file, or one the old JavaScript module made: its tables are kept.
        (0, 0) => Ok(0),
        // A file of version 0.1 of this package, which did not set application_id.
        (0, 2) if has_v01_schema(c)? => Ok(2),
        _ => Err(refuse(format!(
            "its user_version ({version}) and application_id ({app}) were not written by \
             native-token-storage, so another program may use this file; \
             set TOKEN_DB_PATH to a file of the token store's own"
        ))),
    }
}

/// Whether the file has the counters table and trigger that version 0.1 created.
fn has_v01_schema(c: &Connection) -> rusqlite::Result<bool> {
    c.query_row(
        "SELECT COUNT(*) = 2 FROM sqlite_master
         WHERE (type = 'table' AND name = 'nts_stats')
            OR (type = 'trigger' AND name = 'nts_access_insert')",
        [],
        |r| r.get(0),
    )
}

fn tx_error(shown: &str, e: TxError) -> StoreError {
    match e {
        TxError::Sql(e) => StoreError::from_sqlite(shown, &e),
        TxError::Store(e) => e,
    }
}

/// WAL frames after which a commit asks for a checkpoint (SQLite's own default).
const CHECKPOINT_FRAMES: i32 = 1000;

/// Moves WAL checkpoints off the caller's thread. SQLite runs them inside the commit that
/// crosses the threshold, so now and then one `storeAccessToken` paid for copying
/// thousands of pages back into the file. Here that commit only wakes a thread with its own
/// connection, which runs a PASSIVE checkpoint (never blocking readers or writers). The
/// thread is not a libuv handle, so it never keeps Node's event loop alive; it ends when
/// the connection is dropped. If it cannot run, the commit checkpoints itself, as before.
fn checkpoint_in_background(
    conn: &mut Connection,
    path: &Path,
    busy_timeout: Duration,
) -> rusqlite::Result<Option<std::thread::JoinHandle<()>>> {
    use std::sync::mpsc::{sync_channel, TrySendError};
    let (wake, woken) = sync_channel::<()>(1);
    let path = path.to_owned();
    let spawned = std::thread::Builder::new()
        .name("token-storage-checkpoint".into())
        .spawn(move || {
            yield_cpu_to_js_thread();
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let Ok(c) = Connection::open_with_flags(&path, flags) else {
                return;
            };
            let _ = c.busy_timeout(busy_timeout);
            while woken.recv().is_ok() {
                let _ = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            }
        });
    let Ok(thread) = spawned else {
        return Ok(None); // keep SQLite's own auto-checkpoint
    };
    conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, frames: i32| {
        // Under sustained writes the thread always lags a little, and SQLite can restart
        // the WAL only after a checkpoint that caught up: past 4x the threshold the commit
        // catches up itself (cheaply: the thread has copied most pages), so the WAL
        // stays bounded.
        let inline = frames >= 4 * CHECKPOINT_FRAMES
            || (frames >= CHECKPOINT_FRAMES
                && matches!(wake.try_send(()), Err(TrySendError::Disconnected(()))));
        if inline {
            let _ = wal.checkpoint();
        }
        Ok(())
    }))?;
    Ok(Some(thread))
}

/// Lowers the calling thread's scheduling priority (nice +10), so that on a busy machine
/// the checkpoint gives way to the JS thread: over 7 background cleanups of 100k expired
/// tokens at 1M on 2 cores, the longest event-loop gap went from 5-15 ms to 4-8 ms, and
/// cleanup throughput from ~19k to ~22k tokens/s. Linux only, where a thread has
/// a nice value of its own (elsewhere `setpriority` would apply to the whole process).
fn yield_cpu_to_js_thread() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority reads no memory of ours; who = 0 is the calling thread. A
    // failure leaves the priority as it was, which is harmless.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

/// `BEGIN IMMEDIATE` … `COMMIT`, rolled back if `f` or the commit fails.
fn immediate<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    transaction(conn, "BEGIN IMMEDIATE", f)
}

/// A failure inside a transaction: SQLite's, or the store's own (a moved file, a schema
/// this package did not write).
enum TxError {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for TxError {
    fn from(e: rusqlite::Error) -> Self {
        TxError::Sql(e)
    }
}

/// `begin` … `COMMIT`, rolled back if `f` or the commit fails.
fn transaction<T, E: From<rusqlite::Error>>(
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

/// A text column, tolerating numbers (a legacy file may hold them) and NULL.
fn text(row: &Row, i: usize) -> rusqlite::Result<Option<String>> {
    Ok(match row.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
    })
}

/// A time column (epoch milliseconds), tolerating reals and numeric text.
fn time(row: &Row, i: usize) -> rusqlite::Result<Option<i64>> {
    Ok(match row.get_ref(i)? {
        ValueRef::Integer(n) => Some(n),
        ValueRef::Real(f) if f.is_finite() => Some(f as i64),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.trim().parse().ok()),
        _ => None,
    })
}

fn required_text(row: &Row, i: usize) -> rusqlite::Result<String> {
    Ok(text(row, i)?.unwrap_or_default())
}

fn user(row: &Row, i: usize) -> rusqlite::Result<Option<String>> {
    Ok(text(row, i)?.filter(|u| u != NO_USER))
}

/// `scopes` is JSON text; anything else reads as no scopes (never more rights).
fn scopes(row: &Row, i: usize) -> rusqlite::Result<Vec<String>> {
    Ok(text(row, i)?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

fn scopes_json(scopes: &[String]) -> String {
    serde_json::to_string(scopes).unwrap_or_else(|_| "[]".into())
}

fn read_code(row: &Row) -> rusqlite::Result<AuthorizationCode> {
    Ok(AuthorizationCode {
        user_id: user(row, 0)?,
        api_key: required_text(row, 1)?,
        client_id: required_text(row, 2)?,
        redirect_uri: required_text(row, 3)?,
        code_challenge: text(row, 4)?.filter(|c| c != NO_CHALLENGE),
        code_challenge_method: text(row, 5)?.filter(|m| m != NO_CHALLENGE),
        scopes: scopes(row, 6)?,
        expires_at: time(row, 7)?.unwrap_or(i64::MIN),
        created_at: time(row, 8)?.unwrap_or(0),
    })
}

fn cleanup_batch(c: &Connection, now: i64, limit: usize) -> rusqlite::Result<usize> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // The batch's tokens go into a per-connection temp table once, then each table is
    // cleared of them in one statement: set-based, and both statements name the same
    // rows. A refresh token goes only if it still points at its access token.
    c.prepare_cached("DELETE FROM temp.nts_batch")?
        .execute([])?;
    let mut removed = c
        .prepare_cached(
            "INSERT INTO temp.nts_batch (token, refresh_token)
             SELECT token, refresh_token FROM access_tokens
             WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
        )?
        .execute(params![now, limit])?;
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
    let left = limit - removed as i64;
    if left > 0 {
        removed += c
            .prepare_cached(
                "DELETE FROM authorization_codes WHERE code IN
                 (SELECT code FROM authorization_codes WHERE expires_at <= ?1 LIMIT ?2)",
            )?
            .execute(params![now, left])?;
    }
    Ok(removed)
}

impl TokenStore for SqliteStore {
    fn store_access_token(&mut self, t: NewAccessToken, now: i64) -> Result<()> {
        validate_new_access_token(&t)?;
        self.write(|c| insert_access(c, &t, now))
    }

    fn store_access_tokens(&mut self, tokens: Vec<NewAccessToken>, now: i64) -> Result<()> {
        tokens.iter().try_for_each(validate_new_access_token)?;
        self.write(|c| tokens.iter().try_for_each(|t| insert_access(c, t, now)))
    }

    fn get_access_token(&mut self, token: &str, now: i64) -> Result<Option<AccessToken>> {
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
                        expires_at: time(r, 5)?,
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

    fn store_authorization_code(&mut self, code: &str, d: AuthorizationCode) -> Result<()> {
        validate_authorization_code(code, &d)?;
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

    fn take_authorization_code(
        &mut self,
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

    fn get_refresh_token(&mut self, refresh_token: &str, now: i64) -> Result<Option<RefreshToken>> {
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
                    let live = r.get::<_, bool>(5)? && !is_expired(time(r, 6)?, now);
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

    fn revoke_refresh_token(&mut self, refresh_token: &str) -> Result<()> {
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

    fn delete_token(&mut self, token: &str) -> Result<()> {
        self.write(|c| delete_access(c, token).map(|_| ()))
    }

    fn delete_user_tokens(&mut self, user_id: &str) -> Result<()> {
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

    fn cleanup_expired(&mut self, now: i64, limit: usize) -> Result<usize> {
        self.write(|c| cleanup_batch(c, now, limit))
    }

    fn stats(&mut self, now: i64) -> Result<Stats> {
        self.ensure_in_place()?;
        // The counters include expired rows that nothing has removed yet. Those of past
        // minutes are subtracted by their per-minute counts (migration 3), those of the
        // current minute are counted: the cost does not grow with the expired rows, and
        // a read never takes the write lock to remove them.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const NOW: i64 = 1_800_000_000_000;

    fn open(path: &Path) -> Result<SqliteStore> {
        SqliteStore::open(path, SyncMode::Normal, 1000)
    }

    fn token(token: &str, user: &str, expires_at: Option<i64>) -> NewAccessToken {
        NewAccessToken {
            token: token.into(),
            refresh_token: None,
            api_key: "k".into(),
            user_id: Some(user.into()),
            client_id: "c".into(),
            scopes: vec![],
            expires_at,
        }
    }

    /// The old JavaScript module's schema, as it created `tokens.db`.
    const LEGACY_SCHEMA: &str = "
        CREATE TABLE access_tokens (token TEXT PRIMARY KEY, api_key TEXT NOT NULL,
            user_id TEXT NOT NULL, client_id TEXT NOT NULL, scopes TEXT,
            refresh_token TEXT, expires_at INTEGER, created_at INTEGER NOT NULL);
        CREATE TABLE refresh_tokens (refresh_token TEXT PRIMARY KEY, user_id TEXT NOT NULL,
            client_id TEXT NOT NULL, scopes TEXT, access_token TEXT NOT NULL,
            created_at INTEGER NOT NULL);
        CREATE TABLE authorization_codes (code TEXT PRIMARY KEY, user_id TEXT NOT NULL,
            api_key TEXT NOT NULL, client_id TEXT NOT NULL, redirect_uri TEXT NOT NULL,
            code_challenge TEXT NOT NULL, code_challenge_method TEXT NOT NULL, scopes TEXT,
            expires_at INTEGER NOT NULL, created_at INTEGER NOT NULL);";

    #[test]
    fn a_legacy_file_keeps_its_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(LEGACY_SCHEMA).unwrap();
            c.execute_batch(&format!(
                "INSERT INTO access_tokens VALUES ('at1','sk-1','u1','cl','[\"a\",\"b\"]','rt1',{},{NOW});
                 INSERT INTO access_tokens VALUES ('at2','sk-2','u2','cl','[]',NULL,NULL,{NOW});
                 INSERT INTO refresh_tokens VALUES ('rt1','u1','cl','[\"a\",\"b\"]','at1',{NOW});
                 INSERT INTO authorization_codes VALUES ('c1','u1','sk-1','cl','https://x/cb','','','[]',{},{NOW});",
                NOW + 1000,
                NOW + 1000
            ))
            .unwrap();
        }
        let mut s = open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let t = s.get_access_token("at1", NOW).unwrap().unwrap();
        assert_eq!((t.api_key.as_str(), t.scopes.len()), ("sk-1", 2));
        assert_eq!(t.expires_at, Some(NOW + 1000));
        assert_eq!(
            s.get_refresh_token("rt1", NOW)
                .unwrap()
                .unwrap()
                .access_token,
            "at1"
        );
        assert!(s.take_authorization_code("c1", NOW).unwrap().is_some());
        let st = s.stats(NOW).unwrap();
        assert_eq!((st.total_tokens, st.unique_users), (2, 2));
        // Reopening does not migrate again.
        drop(s);
        assert_eq!(
            open(&path).unwrap().schema_version().unwrap(),
            MIGRATIONS.len() as i64
        );
    }

    #[test]
    fn writes_keep_the_old_modules_not_null_columns_filled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        let mut s = open(&path).unwrap();
        let t = NewAccessToken {
            token: "at".into(),
            refresh_token: Some("rt".into()),
            api_key: "k".into(),
            user_id: None,
            client_id: "c".into(),
            scopes: vec![],
            expires_at: None,
        };
        s.store_access_token(t, NOW).unwrap();
        let row: (String, String, i64) = s
            .conn
            .query_row(
                "SELECT a.user_id, r.scopes, r.created_at FROM access_tokens a JOIN refresh_tokens r ON r.access_token = a.token",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(row, ("".into(), "[]".into(), NOW));
    }

    #[test]
    fn file_and_folder_are_private_and_wal_is_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/sub/tokens.db");
        let s = open(&path).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("new")), 0o700);
        assert_eq!(mode(&dir.path().join("new/sub")), 0o700);
        let jm: String = s
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(jm, "wal");
    }

    #[test]
    fn sync_full_is_applied() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db"), SyncMode::Full, 100).unwrap();
        let level: i64 = s
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(level, 2);
    }

    #[test]
    fn a_directory_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = open(dir.path()).err().unwrap();
        assert_eq!(err.code(), "ERR_TOKEN_STORAGE_OPEN");
        assert!(err.to_string().contains(&dir.path().display().to_string()));
    }

    #[test]
    fn a_garbage_file_is_not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let err = open(&path).err().unwrap();
        assert_eq!(err.code(), "ERR_TOKEN_STORAGE_NOT_A_DATABASE");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        let err = open(&path).err().unwrap();
        assert_eq!(err.code(), "ERR_TOKEN_STORAGE_OPEN");
        assert!(err.to_string().contains("newer"));
    }

    #[test]
    fn schema_markers_of_other_programs_are_refused_and_the_file_left_alone() {
        for (app, version) in [(0, 1), (0, 2), (0, -1), (0, 7), (42, 0), (42, 3)] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("tokens.db");
            {
                let c = Connection::open(&path).unwrap();
                c.execute_batch("CREATE TABLE other (x)").unwrap();
                c.pragma_update(None, "application_id", app).unwrap();
                c.pragma_update(None, "user_version", version).unwrap();
            }
            let err = open(&path).err().expect("refused");
            assert_eq!(err.code(), "ERR_TOKEN_STORAGE_OPEN", "{app} {version}");
            let msg = err.to_string();
            assert!(msg.contains("not written by native-token-storage"), "{msg}");
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            let c = Connection::open(&path).unwrap();
            let (mode, tables): (String, i64) = c
                .query_row(
                    "SELECT (SELECT journal_mode FROM pragma_journal_mode),
                            (SELECT COUNT(*) FROM sqlite_master)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!((mode.as_str(), tables), ("delete", 1), "{app} {version}");
        }
    }

    #[test]
    fn a_file_of_version_0_1_is_migrated_with_its_counts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(MIGRATIONS[0]).unwrap();
            c.execute_batch(MIGRATIONS[1]).unwrap();
            c.pragma_update(None, "user_version", 2).unwrap();
            c.execute_batch(&format!(
                "INSERT INTO access_tokens VALUES ('a','k','u1','c','[]',NULL,{},{NOW});
                 INSERT INTO access_tokens VALUES ('b','k','u1','c','[]',NULL,{},{NOW});
                 INSERT INTO access_tokens VALUES ('c','k','u2','c','[]',NULL,NULL,{NOW});
                 INSERT INTO access_tokens VALUES ('d','k','u3','c','[]',NULL,{},{NOW});",
                NOW - 5,
                NOW + 200_000,
                NOW - 100_000
            ))
            .unwrap();
        }
        let mut s = open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let app: i32 = s
            .conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .unwrap();
        assert_eq!(app, APPLICATION_ID);
        assert_eq!(
            s.stats(NOW).unwrap(),
            Stats {
                total_tokens: 2,
                unique_users: 2
            }
        );
        assert_eq!(
            s.stats(NOW + 200_000).unwrap(),
            Stats {
                total_tokens: 1,
                unique_users: 1
            }
        );
    }

    #[test]
    fn opening_an_up_to_date_file_takes_no_write_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        open(&path)
            .unwrap()
            .store_access_token(token("t", "u", None), NOW)
            .unwrap();
        // Another connection holds the write lock, as a long import in another process.
        let other = Connection::open(&path).unwrap();
        other
            .execute_batch("BEGIN IMMEDIATE; DELETE FROM authorization_codes;")
            .unwrap();
        let started = std::time::Instant::now();
        let mut s = SqliteStore::open(&path, SyncMode::Normal, 2_000).expect("opens");
        assert!(s.get_access_token("t", NOW).unwrap().is_some());
        assert_eq!(s.stats(NOW).unwrap().total_tokens, 1);
        assert!(
            started.elapsed() < Duration::from_millis(1_000),
            "waited for the lock"
        );
        other.execute_batch("COMMIT").unwrap();
    }

    #[test]
    fn counts_stay_right_under_another_writers_insert_or_replace_and_update() {
        for legacy in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("tokens.db");
            if legacy {
                Connection::open(&path)
                    .unwrap()
                    .execute_batch(LEGACY_SCHEMA)
                    .unwrap();
            }
            let mut s = open(&path).unwrap();
            // The old module's writes, from its own connection.
            let old = Connection::open(&path).unwrap();
            let put = |user: &str, exp: Option<i64>| {
                old.execute(
                    "INSERT OR REPLACE INTO access_tokens
                     (token, api_key, user_id, client_id, scopes, refresh_token, expires_at, created_at)
                     VALUES ('t', 'k', ?1, 'c', '[]', NULL, ?2, ?3)",
                    params![user, exp, NOW],
                )
                .unwrap();
            };
            for _ in 0..3 {
                put("u1", None);
            }
            assert_eq!(
                s.stats(NOW).unwrap(),
                Stats {
                    total_tokens: 1,
                    unique_users: 1
                },
                "legacy {legacy}"
            );
            put("u2", Some(NOW + 100_000));
            assert_eq!(
                s.stats(NOW).unwrap(),
                Stats {
                    total_tokens: 1,
                    unique_users: 1
                }
            );
            assert_eq!(s.stats(NOW + 100_000).unwrap(), Stats::default());
            old.execute(
                "UPDATE access_tokens SET expires_at = NULL, user_id = 'u3'",
                [],
            )
            .unwrap();
            assert_eq!(
                s.stats(NOW + 100_000).unwrap(),
                Stats {
                    total_tokens: 1,
                    unique_users: 1
                }
            );
            old.execute("DELETE FROM access_tokens WHERE token = 't'", [])
                .unwrap();
            assert_eq!(s.stats(NOW).unwrap(), Stats::default(), "legacy {legacy}");
            let rows: i64 = s
                .conn
                .query_row(
                    "SELECT (SELECT COUNT(*) FROM nts_users) + (SELECT COUNT(*) FROM nts_expiry)",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(rows, 0, "bookkeeping rows left behind");
        }
    }

    #[test]
    fn stats_cost_does_not_grow_with_expired_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        let mut s = open(&path).unwrap();
        let steps = |s: &mut SqliteStore, expected: u64| {
            s.conn
                .prepare_cached(STATS)
                .unwrap()
                .reset_status(rusqlite::StatementStatus::VmStep);
            assert_eq!(s.stats(NOW).unwrap().total_tokens, expected);
            s.conn
                .prepare_cached(STATS)
                .unwrap()
                .get_status(rusqlite::StatementStatus::VmStep)
        };
        // Expired in three past minutes (and a few seconds ago, in the current bucket).
        let add = |s: &mut SqliteStore, from: usize, n: usize| {
            let list = (from..from + n)
                .map(|i| {
                    let ago = [70_000, 140_000, 210_000][i % 3];
                    token(&format!("x{i}"), &format!("u{i}"), Some(NOW - ago))
                })
                .collect();
            s.store_access_tokens(list, NOW - 300_000).unwrap();
        };
        for i in 0..5 {
            s.store_access_token(token(&format!("live{i}"), "u", None), NOW)
                .unwrap();
        }
        add(&mut s, 0, 10);
        let few = steps(&mut s, 5);
        add(&mut s, 10, 20_000);
        let many = steps(&mut s, 5);
        assert_eq!(
            few, many,
            "getStats ran {few} steps with 10 expired rows, {many} with 20,010"
        );
    }

    #[test]
    fn a_code_without_pkce_fits_the_old_modules_not_null_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(LEGACY_SCHEMA)
            .unwrap();
        let mut s = open(&path).unwrap();
        let code = AuthorizationCode {
            user_id: Some("u".into()),
            api_key: "k".into(),
            client_id: "c".into(),
            redirect_uri: "https://x/cb".into(),
            code_challenge: None,
            code_challenge_method: None,
            scopes: vec![],
            expires_at: NOW + 1000,
            created_at: NOW,
        };
        s.store_authorization_code("c1", code.clone()).unwrap();
        let raw: (String, String) = s
            .conn
            .query_row(
                "SELECT code_challenge, code_challenge_method FROM authorization_codes",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(raw, (String::new(), String::new()));
        assert_eq!(s.take_authorization_code("c1", NOW).unwrap(), Some(code));
    }

    #[test]
    fn a_symlinked_path_creates_an_owner_only_target() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link.db");
        let target = dir.path().join("real/tokens.db");
        std::os::unix::fs::symlink("real/tokens.db", &link).unwrap();
        let mut s = open(&link).unwrap();
        s.store_access_token(token("t", "u", None), NOW).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&target), 0o600);
        assert_eq!(mode(&dir.path().join("real")), 0o700);
        for suffix in ["-wal", "-shm"] {
            let side = dir.path().join(format!("real/tokens.db{suffix}"));
            assert_eq!(mode(&side), 0o600, "{suffix}");
        }
    }

    #[test]
    fn a_deleted_or_replaced_file_fails_the_call_and_is_reopened() {
        use crate::config::StoreConfig;
        use crate::handle::StoreHandle;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        let handle = StoreHandle::new(StoreConfig::Sqlite {
            path: path.clone(),
            sync: SyncMode::Normal,
            busy_timeout_ms: 1000,
        });
        let put = |name: &str| handle.with(|s| s.store_access_token(token(name, "u", None), NOW));
        let has = |name: &str| {
            handle
                .with(|s| s.get_access_token(name, NOW))
                .map(|t| t.is_some())
        };
        put("a").unwrap();
        // An operator's rm: the write fails with a code naming the path, writes nothing.
        std::fs::remove_file(&path).unwrap();
        let err = put("b").unwrap_err();
        assert_eq!(err.code(), "ERR_TOKEN_STORAGE_MOVED");
        assert!(err.to_string().contains(&path.display().to_string()));
        // The next call opens the path again: a new, empty file that keeps what it is given.
        put("c").unwrap();
        assert_eq!(
            (has("a"), has("b"), has("c")),
            (Ok(false), Ok(false), Ok(true))
        );
        let fresh = open(&path).unwrap();
        let n: i64 = fresh
            .conn
            .query_row("SELECT COUNT(*) FROM access_tokens", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        drop(fresh);
        // A restore that renames a backup over the file: reads fail once, then see it.
        let backup = dir.path().join("backup.db");
        Connection::open(&path)
            .unwrap()
            .execute(&format!("VACUUM INTO '{}'", backup.display()), [])
            .unwrap();
        put("d").unwrap();
        std::fs::rename(&backup, &path).unwrap();
        assert_eq!(has("c").unwrap_err().code(), "ERR_TOKEN_STORAGE_MOVED");
        assert_eq!((has("c"), has("d")), (Ok(true), Ok(false)));
        assert_eq!(handle.with(|s| s.stats(NOW)).unwrap().total_tokens, 1);
    }

    #[test]
    fn a_lock_held_past_the_busy_timeout_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        let mut s = SqliteStore::open(&path, SyncMode::Normal, 50).unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let err = s.delete_token("x").unwrap_err();
        assert_eq!(err.code(), "ERR_TOKEN_STORAGE_BUSY");
        other.execute_batch("COMMIT").unwrap();
        s.delete_token("x").unwrap();
    }

    #[test]
    fn reads_answer_during_another_writers_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        let mut s = SqliteStore::open(&path, SyncMode::Normal, 50).unwrap();
        s.store_access_token(token("live", "u1", None), NOW)
            .unwrap();
        s.store_access_token(token("old", "u2", Some(NOW - 1)), NOW - 10)
            .unwrap();
        s.store_access_token(token("old2", "u1", Some(NOW - 1)), NOW - 10)
            .unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        // The expired token reads as gone, and stats leave it out, without the write lock.
        assert!(s.get_access_token("old", NOW).unwrap().is_none());
        let st = s.stats(NOW).unwrap();
        assert_eq!((st.total_tokens, st.unique_users), (1, 1));
        other.execute_batch("COMMIT").unwrap();
        // Once the lock is free, the next read removes it.
        assert!(s.get_access_token("old", NOW).unwrap().is_none());
        let left: i64 = s
            .conn
            .query_row("SELECT COUNT(*) FROM access_tokens", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 2);
    }

    #[test]
    fn the_wal_is_checkpointed_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        let mut s = open(&path).unwrap();
        // About 7 WAL frames a token: 3,000 tokens would make an 80 MiB WAL unchecked.
        for i in 0..3000 {
            s.store_access_token(token(&format!("t{i:05}"), "u", None), NOW)
                .unwrap();
        }
        let wal = dir.path().join("tokens.db-wal");
        let mut size = u64::MAX;
        for _ in 0..100 {
            size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
            if size < 24 << 20 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(
            size < 24 << 20,
            "WAL of {size} bytes was never checkpointed"
        );
        assert_eq!(s.stats(NOW).unwrap().total_tokens, 3000);
    }

    #[test]
    fn after_close_the_db_file_alone_holds_every_token() {
        // Found by the truncated-file suite: with the checkpoint thread's connection still
        // open at close, the WAL stayed and a copy of the .db file missed tokens.
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("tokens.db");
            let mut s = open(&path).unwrap();
            for i in 0..300 {
                s.store_access_token(token(&format!("t{i}"), "u", None), NOW)
                    .unwrap();
            }
            drop(s);
            assert!(
                !dir.path().join("tokens.db-wal").exists(),
                "round {round}: the WAL outlived the store"
            );
            let copy = dir.path().join("copy.db");
            std::fs::copy(&path, &copy).unwrap();
            let n: i64 = Connection::open(&copy)
                .unwrap()
                .query_row("SELECT COUNT(*) FROM access_tokens", [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 300, "round {round}");
        }
    }

    #[test]
    fn two_connections_share_counts_and_codes_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        let mut a = open(&path).unwrap();
        let mut b = open(&path).unwrap();
        a.store_access_token(token("t1", "u1", None), NOW).unwrap();
        b.store_access_token(token("t2", "u1", None), NOW).unwrap();
        b.store_access_token(token("t3", "u2", None), NOW).unwrap();
        a.delete_token("t3").unwrap();
        let st = b.stats(NOW).unwrap();
        assert_eq!((st.total_tokens, st.unique_users), (2, 1));
        let code = AuthorizationCode {
            user_id: None,
            api_key: "k".into(),
            client_id: "c".into(),
            redirect_uri: "r".into(),
            code_challenge: None,
            code_challenge_method: None,
            scopes: vec![],
            expires_at: NOW + 1,
            created_at: NOW,
        };
        a.store_authorization_code("c1", code).unwrap();
        assert!(b.take_authorization_code("c1", NOW).unwrap().is_some());
        assert!(a.take_authorization_code("c1", NOW).unwrap().is_none());
    }
}
