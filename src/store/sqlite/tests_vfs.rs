//! The layer that writes a commit's WAL frames at once (`vfs`): what a commit leaves on
//! disk and what other connections see are SQLite's own.

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::path::Path;
use std::sync::Once;
use std::time::Duration;

use rusqlite::{ffi, Connection};

use super::connection::Db;
use super::SyncMode;
use crate::model::NewAccessToken;

const NOW: i64 = 1_800_000_000_000;

fn open(path: &Path) -> Db {
    Db::open(path, SyncMode::Normal, 1000).unwrap()
}

fn token(token: &str) -> NewAccessToken {
    NewAccessToken {
        resource: None,
        extra: None,
        links: None,
        token: token.into(),
        refresh_token: Some(format!("r-{token}")),
        api_key: "k".into(),
        user_id: Some("u".into()),
        client_id: "c".into(),
        scopes: vec![],
        expires_at: None,
    }
}

/// `tokens.db` and its WAL in `dir`, copied into `dir/name` while the store is open (no
/// checkpoint, no close, no `-shm`), opened afresh: SQLite reads the WAL back frame by frame,
/// stopping at the first whose checksum is wrong. Checked whole.
fn as_a_crash_leaves_it(dir: &Path, name: &str) -> Connection {
    let copy = dir.join(name);
    std::fs::create_dir(&copy).unwrap();
    for file in ["tokens.db", "tokens.db-wal"] {
        std::fs::copy(dir.join(file), copy.join(file)).unwrap();
    }
    let c = Connection::open(copy.join("tokens.db")).unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    c
}

fn count(c: &Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn every_commit_is_on_file_when_it_returns() {
    // What a crash right after each commit would leave: the files copied while the store
    // is open (no checkpoint, no close) hold every token committed, with valid WAL frames.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let s = open(&path);
    for i in 0..300 {
        s.store_access_token(token(&format!("t{i}")), NOW).unwrap();
        if i % 50 == 49 {
            let c = as_a_crash_leaves_it(dir.path(), &format!("copy{i}"));
            assert_eq!(count(&c, "SELECT COUNT(*) FROM access_tokens"), i + 1);
            assert_eq!(count(&c, "SELECT COUNT(*) FROM refresh_tokens"), i + 1);
        }
    }
}

#[test]
fn another_connection_sees_each_commit_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let s = open(&path);
    let other = Connection::open(&path).unwrap();
    for i in 0..300 {
        s.store_access_token(token(&format!("t{i}")), NOW).unwrap();
        let found = count(
            &other,
            &format!("SELECT COUNT(*) FROM access_tokens WHERE token = 't{i}'"),
        );
        assert_eq!(found, 1, "token {i} not seen by another connection");
    }
}

#[test]
fn frames_of_a_rolled_back_transaction_never_land_on_a_later_writers() {
    // A transaction larger than the page cache writes frames to the WAL before its commit;
    // rolled back, they must not be written later over the frames another writer committed
    // in their place. Checked as a crash would find the files.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let s = open(&path);
    s.store_access_token(token("first"), NOW).unwrap();
    s.conn.execute_batch("PRAGMA cache_size = 10").unwrap();
    let other = Connection::open(&path).unwrap();
    other
        .execute_batch("CREATE TABLE others (k TEXT NOT NULL)")
        .unwrap();
    for round in 0..5 {
        s.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        for i in 0..100 {
            s.conn
                .execute(
                    "INSERT INTO authorization_codes (code, user_id, api_key, client_id,
                         redirect_uri, code_challenge, code_challenge_method, scopes,
                         expires_at, created_at)
                     VALUES (?1, 'u', ?2, 'c', 'r', '', '', '[]', 1, 1)",
                    rusqlite::params![format!("spill{round}-{i}"), "x".repeat(1000)],
                )
                .unwrap();
        }
        s.conn.execute_batch("ROLLBACK").unwrap();
        // Another writer's commits, from where the rolled-back frames began and past them.
        for i in 0..150 {
            other
                .execute(
                    "INSERT INTO others (k) VALUES (?1)",
                    [format!("{round}-{i}-{}", "y".repeat(500))],
                )
                .unwrap();
        }
        s.store_access_token(token(&format!("after{round}")), NOW)
            .unwrap();
    }
    let c = as_a_crash_leaves_it(dir.path(), "copy");
    assert_eq!(count(&c, "SELECT COUNT(*) FROM others"), 750);
    assert_eq!(count(&c, "SELECT COUNT(*) FROM access_tokens"), 6);
    assert_eq!(count(&c, "SELECT COUNT(*) FROM authorization_codes"), 0);
}

// Failures injected: the `unix` VFS's `pwrite` replaced (xSetSystemCall) by one that fails
// when the test's own thread asks it to, and counts this thread's writes.

thread_local! {
    static FAIL_NEXT: Cell<u32> = const { Cell::new(0) };
    static WRITES: Cell<u64> = const { Cell::new(0) };
}

unsafe extern "C" fn pwrite_hook(
    fd: c_int,
    buf: *const c_void,
    n: libc::size_t,
    off: libc::off_t,
) -> libc::ssize_t {
    let fail = FAIL_NEXT.with(|f| {
        let v = f.get();
        if v > 0 {
            f.set(v - 1);
            true
        } else {
            false
        }
    });
    if fail {
        // SAFETY: this thread's errno.
        unsafe { *libc::__errno_location() = libc::ENOSPC };
        return -1;
    }
    WRITES.with(|w| w.set(w.get() + 1));
    // SAFETY: the arguments SQLite gave for its own pwrite.
    unsafe { libc::pwrite(fd, buf, n, off) }
}

fn install() {
    static ONCE: Once = Once::new();
    type Pwrite = unsafe extern "C" fn(c_int, *const c_void, libc::size_t, libc::off_t) -> isize;
    // SAFETY: SQLite's `unix` VFS lives for the process; xSetSystemCall takes any function
    // pointer and calls it with pwrite's own signature, which `pwrite_hook` has.
    ONCE.call_once(|| unsafe {
        let _ = super::vfs::name();
        let unix = ffi::sqlite3_vfs_find(c"unix".as_ptr());
        let set = (*unix).xSetSystemCall.unwrap();
        let f: unsafe extern "C" fn() = std::mem::transmute(pwrite_hook as Pwrite);
        assert_eq!(set(unix, c"pwrite".as_ptr(), Some(f)), ffi::SQLITE_OK);
    });
}

fn open_spilling(path: &Path) -> Db {
    install();
    let s = Db::open(path, SyncMode::Normal, 1000)
        .unwrap()
        .without_watch();
    s.conn
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS big (k TEXT UNIQUE, v BLOB); PRAGMA cache_size = 10;",
        )
        .unwrap();
    s
}

fn fill(c: &Connection, tag: &str) -> rusqlite::Result<()> {
    for i in 0..100 {
        c.execute(
            "INSERT INTO big (k, v) VALUES (?1, randomblob(1000))",
            [format!("{tag}-{i}")],
        )?;
    }
    Ok(())
}

/// A write of buffered frames failing in a call whose result SQLite or the store may ignore
/// (here before the store's own HAS_MOVED check, `stat_in_place`, just before `COMMIT`):
/// the commit fails, or succeeds with every frame on file. Found by review.
#[test]
fn a_write_failing_before_the_commit_never_lets_the_commit_succeed_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let s = open_spilling(&path);
    let result = s.write(|c| {
        fill(c, "a")?;
        FAIL_NEXT.with(|f| f.set(1)); // the next pwrite on this thread: ENOSPC
        Ok(())
    });
    FAIL_NEXT.with(|f| f.set(0));
    let other = Connection::open(&path).unwrap();
    let ok: String = other
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap_or_else(|e| format!("error: {e}"));
    let n: rusqlite::Result<i64> = other.query_row("SELECT COUNT(*) FROM big", [], |r| r.get(0));
    if result.is_ok() {
        assert_eq!(
            ok, "ok",
            "commit returned OK but its frames are not all on file"
        );
        assert_eq!(n.unwrap(), 100);
    }
}

/// A write failing while a transaction with spilled frames rolls back (wherever the layer
/// writes them) never keeps the write lock: another connection writes right after.
#[test]
fn a_write_failing_at_rollback_does_not_keep_the_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let s = open_spilling(&path);
    s.conn.execute_batch("PRAGMA cache_size = -65536").unwrap();
    fill(&s.conn, "pre").unwrap();
    fill(&s.conn, "pre2").unwrap();
    s.conn.execute_batch("PRAGMA cache_size = 10").unwrap();
    let other = Connection::open(&path).unwrap();
    other.busy_timeout(Duration::from_millis(300)).unwrap();
    for n in 1..60 {
        // Same-size updates: page 1 stays clean, so the rollback re-reads nothing.
        s.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        s.conn
            .execute("UPDATE big SET v = randomblob(1000) WHERE rowid <= ?1", [n])
            .unwrap();
        FAIL_NEXT.with(|f| f.set(1));
        let _ = s.conn.execute_batch("ROLLBACK");
        FAIL_NEXT.with(|f| f.set(0));
        let r = other.execute(
            "INSERT INTO big (k, v) VALUES (?1, x'00')",
            [format!("o{n}")],
        );
        assert!(
            r.is_ok(),
            "another connection cannot write after rollback {n}: {r:?}"
        );
    }
}

/// The layer's point: a commit of a few pages costs one pwrite, not two per frame.
#[test]
fn a_small_commit_is_one_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let s = open_spilling(&path);
    s.conn.execute_batch("PRAGMA cache_size = -65536").unwrap();
    s.conn
        .execute("INSERT INTO big VALUES ('warm', x'00')", [])
        .unwrap();
    let before = WRITES.with(Cell::get);
    s.conn
        .execute("INSERT INTO big VALUES ('x', randomblob(3000))", [])
        .unwrap();
    let n = WRITES.with(Cell::get) - before;
    assert!(n <= 2, "{n} pwrites");
}

/// synchronous=FULL with padding to the sector (psow=0), savepoint rollbacks over spilled
/// frames, and another connection checking every commit.
#[test]
fn padding_savepoints_and_spills_stay_consistent() {
    install();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let uri = format!("file:{}?psow=0", path.display());
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
        | rusqlite::OpenFlags::SQLITE_OPEN_CREATE
        | rusqlite::OpenFlags::SQLITE_OPEN_URI;
    let c = Connection::open_with_flags_and_vfs(&uri, flags, super::vfs::name().unwrap()).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=8;
         PRAGMA journal_size_limit=100000; CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB);",
    )
    .unwrap();
    let other = Connection::open(&path).unwrap();
    let mut expected = 0i64;
    for round in 0..40 {
        c.execute_batch("BEGIN IMMEDIATE").unwrap();
        for _ in 0..30 {
            c.execute("INSERT INTO t (v) VALUES (randomblob(900))", [])
                .unwrap();
        }
        expected += 30;
        c.execute_batch("SAVEPOINT s").unwrap();
        for _ in 0..40 {
            c.execute("INSERT INTO t (v) VALUES (randomblob(900))", [])
                .unwrap();
        }
        c.execute(
            "UPDATE t SET v = randomblob(800) WHERE k % 7 = ?1",
            [round % 7],
        )
        .unwrap();
        c.execute_batch("ROLLBACK TO s; RELEASE s").unwrap();
        c.execute(
            "UPDATE t SET v = randomblob(850) WHERE k % 11 = ?1",
            [round % 11],
        )
        .unwrap();
        c.execute_batch("COMMIT").unwrap();
        if round % 10 == 9 {
            c.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
                .unwrap();
        }
        let n: i64 = other
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, expected);
        let ok: String = other
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
    }
    let k = as_a_crash_leaves_it(dir.path(), "copy");
    assert_eq!(count(&k, "SELECT COUNT(*) FROM t"), expected);
}

/// Control: the same failure met by the commit itself fails the commit.
#[test]
fn control_a_flush_error_at_the_commit_fails_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let s = open_spilling(&path);
    s.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    fill(&s.conn, "c").unwrap();
    FAIL_NEXT.with(|f| f.set(1));
    let r = s.conn.execute_batch("COMMIT");
    FAIL_NEXT.with(|f| f.set(0));
    assert!(r.is_err());
    let _ = s.conn.execute_batch("ROLLBACK");
    let other = Connection::open(&path).unwrap();
    let n: i64 = other
        .query_row("SELECT COUNT(*) FROM big", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}
