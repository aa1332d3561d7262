//! Tests of the SQLite store itself (the suite every store passes is in `store/tests.rs`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection};

use super::connection::Db;
use super::tokens::{insert_grant, Grants};
use super::schema::{APPLICATION_ID, MIGRATIONS};
use super::sql::STATS;
use super::SqliteStore;
use super::SyncMode;
use crate::error::Result;
use crate::model::{AuthorizationCode, ClientRecord, NewAccessToken, RotateRequest, Rotation, Stats};
use crate::store::TokenStore;

const NOW: i64 = 1_800_000_000_000;

fn open(path: &Path) -> Result<Db> {
    Db::open(path, SyncMode::Normal, 1000)
}

fn token(token: &str, user: &str, expires_at: Option<i64>) -> NewAccessToken {
    NewAccessToken {
        resource: None,
        extra: None,
        links: None,
        token: token.into(),
        refresh_token: None,
        api_key: "k".into(),
        user_id: Some(user.into()),
        client_id: "c".into(),
        scopes: vec![],
        expires_at,
    }
}

/// A code without PKCE or grant fields, live for a second after `NOW`.
fn code_record() -> AuthorizationCode {
    crate::store::tests::code_at(NOW, NOW + 1000)
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
    let s = open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
    let t = s.get_access_token("at1", NOW, false).unwrap().unwrap();
    assert_eq!((t.api_key.as_str(), t.scopes.len()), ("sk-1", 2));
    assert_eq!(t.expires_at, Some(NOW + 1000));
    assert_eq!(
        s.get_refresh_token("rt1", NOW, false)
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
    let s = open(&path).unwrap();
    let t = NewAccessToken {
        resource: None,
        extra: None,
        links: None,
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

/// A pragma's value on a fresh store's connection.
fn fresh_pragma(name: &str) -> i64 {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir.path().join("t.db")).unwrap();
    s.conn
        .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn reads_go_through_a_memory_map() {
    assert_eq!(fresh_pragma("mmap_size"), super::connection::MMAP_SIZE);
}

/// A large page cache made the commit of a write that split a page walk the whole cache,
/// in a file under 1 GiB (see `PAGE_CACHE_KIB`); a connection keeps SQLite's default.
#[test]
fn the_page_cache_stays_small() {
    let kib = fresh_pragma("cache_size");
    assert_eq!(kib, -super::connection::PAGE_CACHE_KIB);
    assert!(-kib <= 2000, "at most SQLite's default, 2,000 KiB");
}

#[test]
fn sync_full_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let s = Db::open(&dir.path().join("t.db"), SyncMode::Full, 100).unwrap();
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
    let s = open(&path).unwrap();
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
    let s = Db::open(&path, SyncMode::Normal, 2_000).expect("opens");
    assert!(s.get_access_token("t", NOW, false).unwrap().is_some());
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
        let s = open(&path).unwrap();
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
        // A new token string and a new expiry in one UPDATE: still one token, one user.
        old.execute(
            "UPDATE access_tokens SET token = 't9', expires_at = ?1",
            [NOW + 50_000],
        )
        .unwrap();
        let one = Stats {
            total_tokens: 1,
            unique_users: 1,
        };
        assert_eq!(s.stats(NOW).unwrap(), one, "legacy {legacy}");
        assert_eq!(s.stats(NOW + 50_000).unwrap(), Stats::default());
        old.execute("DELETE FROM access_tokens WHERE token = 't9'", [])
            .unwrap();
        assert_eq!(s.stats(NOW).unwrap(), Stats::default(), "legacy {legacy}");
        let rows: i64 = s
            .conn
            .query_row(
                "SELECT COUNT(*) FROM nts_counts WHERE level < 2 AND n <> 0",
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
    let s = open(&path).unwrap();
    let steps = |s: &Db, expected: u64| {
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
    let add = |s: &Db, from: usize, n: usize| {
        let list: Vec<_> = (from..from + n)
            .map(|i| {
                let ago = [70_000, 140_000, 210_000][i % 3];
                token(&format!("x{i}"), &format!("u{i}"), Some(NOW - ago))
            })
            .collect();
        s.store_access_tokens(&list, NOW - 300_000).unwrap();
    };
    for i in 0..5 {
        s.store_access_token(token(&format!("live{i}"), "u", None), NOW)
            .unwrap();
    }
    add(&s, 0, 10);
    let few = steps(&s, 5);
    add(&s, 10, 20_000);
    let many = steps(&s, 5);
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
    let s = open(&path).unwrap();
    let code = code_record();
    s.store_authorization_code("c1", &code).unwrap();
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
    let s = open(&link).unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let store = SqliteStore::new(path.clone(), SyncMode::Normal, 1000);
    let put = |name: &str| store.store_access_token(&token(name, "u", None), NOW);
    let has = |name: &str| store.get_access_token(name, NOW).map(|t| t.is_some());
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
    assert_eq!(store.stats(NOW).unwrap().total_tokens, 1);
}

#[test]
fn a_lock_held_past_the_busy_timeout_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let s = Db::open(&path, SyncMode::Normal, 50).unwrap();
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
    let s = Db::open(&path, SyncMode::Normal, 50).unwrap();
    s.store_access_token(token("live", "u1", None), NOW)
        .unwrap();
    s.store_access_token(token("old", "u2", Some(NOW - 1)), NOW - 10)
        .unwrap();
    s.store_access_token(token("old2", "u1", Some(NOW - 1)), NOW - 10)
        .unwrap();
    let other = Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    // The expired token reads as gone, and stats leave it out, without the write lock.
    assert!(s.get_access_token("old", NOW, false).unwrap().is_none());
    let st = s.stats(NOW).unwrap();
    assert_eq!((st.total_tokens, st.unique_users), (1, 1));
    other.execute_batch("COMMIT").unwrap();
    // Once the lock is free, the next read removes it.
    assert!(s.get_access_token("old", NOW, false).unwrap().is_none());
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
    let s = open(&path).unwrap();
    // About 7 WAL frames a token: 3,000 tokens would make an 80 MiB WAL unchecked.
    for i in 0..3000 {
        s.store_access_token(token(&format!("t{i:05}"), "u", None), NOW)
            .unwrap();
    }
    let wal = dir.path().join("tokens.db-wal");
    let mut size = u64::MAX;
    // Up to 15 s: on a loaded machine the checkpoint thread may run late, and the WAL grow
    // meanwhile; once a checkpoint has caught up, the next write cuts the file back to
    // journal_size_limit (it kept its largest size before the limit: 2 of 10 loaded runs).
    for _ in 0..750 {
        s.store_access_token(token("probe", "u", None), NOW).unwrap();
        size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        if size <= super::connection::WAL_SIZE_LIMIT as u64 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        size <= super::connection::WAL_SIZE_LIMIT as u64,
        "WAL of {size} bytes was never checkpointed"
    );
    assert_eq!(s.stats(NOW).unwrap().total_tokens, 3001);
}

#[test]
fn a_commit_finishes_a_checkpoint_the_thread_left_nearly_done() {
    // Under a steady writer the thread's checkpoint never copies every frame (commits add
    // more while it runs), and SQLite starts the WAL over only after one that did: the WAL
    // grew to the 4,000-frame bound, and each commit's lookups and appends walked the WAL
    // index's run of every version of a page rewritten at each commit (a code's leaf).
    // Here a reader holds the thread's checkpoint short of the WAL's end, as new commits do.
    use super::recent::wal_frames;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let s = open(&path).unwrap();
    let mut n = 0;
    let mut store = || {
        n += 1;
        s.store_authorization_code(&format!("c{n}"), &code_record())
            .unwrap();
        wal_frames(&s.conn).unwrap()
    };
    while store().0 < 1000 {}
    let reader = Connection::open(&path).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT COUNT(*) FROM authorization_codes", [], |r| r.get(0))
        .unwrap();
    let pinned = wal_frames(&s.conn).unwrap().0;
    let mut frames = 0;
    for _ in 0..50 {
        frames = store().0;
    }
    assert!(frames > pinned + 40, "the WAL was started over under a reader");
    // The thread copies up to the reader's snapshot, then rests.
    for _ in 0..750 {
        if wal_frames(&s.conn).unwrap().1 == pinned {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(wal_frames(&s.conn).unwrap().1, pinned);
    std::thread::sleep(Duration::from_millis(300));
    reader.execute_batch("COMMIT").unwrap();
    // About 50 frames left: this commit copies them itself, and the next starts over.
    let (frames, copied) = store();
    assert_eq!(copied, frames, "the commit left the checkpoint to the thread");
    let (frames, _) = store();
    assert!(frames < 10, "the WAL was not started over ({frames} frames)");
}

#[test]
fn after_close_the_db_file_alone_holds_every_token() {
    // Found by the truncated-file suite: with the checkpoint thread's connection still
    // open at close, the WAL stayed and a copy of the .db file missed tokens.
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        let s = open(&path).unwrap();
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
    let a = open(&path).unwrap();
    let b = open(&path).unwrap();
    a.store_access_token(token("t1", "u1", None), NOW).unwrap();
    b.store_access_token(token("t2", "u1", None), NOW).unwrap();
    b.store_access_token(token("t3", "u2", None), NOW).unwrap();
    a.delete_token("t3").unwrap();
    let st = b.stats(NOW).unwrap();
    assert_eq!((st.total_tokens, st.unique_users), (2, 1));
    let code = AuthorizationCode {
        resource: None,
        extra: None,
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
    a.store_authorization_code("c1", &code).unwrap();
    assert!(b.take_authorization_code("c1", NOW).unwrap().is_some());
    assert!(a.take_authorization_code("c1", NOW).unwrap().is_none());
}

/// Sealed tokens' links (migration 9) leave with their tokens, by the trigger the mark
/// brings; a store in clear has no such trigger (its deletes pay nothing for it).
#[test]
fn sealed_links_leave_with_their_tokens_and_clear_stores_have_no_trigger() {
    use base64::Engine;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let triggers = |file: &str| -> i64 {
        Connection::open(dir.path().join(file))
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'nts_token_links_delete'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    let links = |file: &str| -> i64 {
        Connection::open(dir.path().join(file))
            .unwrap()
            .query_row("SELECT COUNT(*) FROM nts_token_links", [], |r| r.get(0))
            .unwrap()
    };
    let store = |file: &str| -> Arc<dyn TokenStore> {
        Arc::new(SqliteStore::new(dir.path().join(file), SyncMode::Normal, 1000))
    };
    let clear = crate::store::sealed::Sealed::new(store("clear.db"), None);
    clear.store_access_token(&token("a", "u1", None), NOW).unwrap();
    clear.delete_token("a").unwrap();
    assert_eq!(triggers("clear.db"), 0);

    let key = base64::engine::general_purpose::STANDARD.encode([3u8; 32]);
    let keys = Arc::new(crate::crypto::Keyring::parse(&format!("k1:{key}")).unwrap());
    let sealed = crate::store::sealed::Sealed::new(store("sealed.db"), Some(keys));
    for (i, user) in ["u1", "u1", "u2"].iter().enumerate() {
        let mut t = token(&format!("t{i}"), user, Some(NOW + 1000));
        t.refresh_token = Some(format!("r{i}"));
        sealed.store_access_token(&t, NOW).unwrap();
    }
    assert_eq!((triggers("sealed.db"), links("sealed.db")), (1, 3));
    sealed.delete_user_tokens("u1").unwrap();
    assert_eq!(links("sealed.db"), 1);
    assert_eq!(sealed.cleanup_expired(NOW + 2000, 100).unwrap(), 1);
    assert_eq!(links("sealed.db"), 0);
}

#[test]
fn connections_opening_a_new_file_at_once_all_open() {
    // Several processes started together on a file in rollback mode (new, or the old
    // module's): each migrates it or finds it migrated, then switches it to WAL. Two things
    // failed 1 run in ~10 of the 4-process reliability suite: the switch (it reads the
    // header, then writes it, and SQLite answers SQLITE_BUSY at once, without the busy
    // handler, to the connection holding the read lock while another holds the write lock),
    // and the check of the header before migrating (user_version and application_id read
    // in two statements, with another process's migration committed in between, looked
    // like another program's file).
    for round in 0..100 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        if round % 2 == 1 {
            Connection::open(&path).unwrap().execute_batch(LEGACY_SCHEMA).unwrap();
        }
        let barrier = std::sync::Barrier::new(4);
        std::thread::scope(|s| {
            let opens: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        Db::open(&path, SyncMode::Normal, 5000).map(|_| ())
                    })
                })
                .collect();
            for open in opens {
                let result = open.join().unwrap();
                assert!(result.is_ok(), "round {round}: {result:?}");
            }
        });
    }
}

/// Calls `f` on every statement prepared on `c` (those rusqlite's cache holds), with its text.
fn each_statement(c: &Connection, mut f: impl FnMut(*mut rusqlite::ffi::sqlite3_stmt, String)) {
    use rusqlite::ffi::{sqlite3_next_stmt, sqlite3_sql};
    // SAFETY: the handle is this open connection's, used on this thread only; the statements
    // `sqlite3_next_stmt` lists stay prepared (held by the cache) while `f` reads them, and
    // `sqlite3_sql` of a statement prepared from text is a NUL-terminated string it owns.
    unsafe {
        let db = c.handle();
        let mut stmt = sqlite3_next_stmt(db, std::ptr::null_mut());
        while !stmt.is_null() {
            let sql = std::ffi::CStr::from_ptr(sqlite3_sql(stmt))
                .to_string_lossy()
                .into_owned();
            f(stmt, sql);
            stmt = sqlite3_next_stmt(db, stmt);
        }
    }
}

/// How many times each statement prepared on `c` was prepared again
/// (`SQLITE_STMTSTATUS_REPREPARE`) since the last call; the counts are reset.
fn prepared_again(c: &Connection) -> Vec<(String, i32)> {
    let mut found = Vec::new();
    each_statement(c, |stmt, sql| {
        // SAFETY: `stmt` is a live statement of `c` (see `each_statement`).
        let n = unsafe {
            rusqlite::ffi::sqlite3_stmt_status(stmt, rusqlite::ffi::SQLITE_STMTSTATUS_REPREPARE, 1)
        };
        found.push((sql, n));
    });
    found
}

#[test]
fn statements_of_the_hot_paths_are_not_prepared_again_for_each_value() {
    // SQLite is built with STAT4: a statement whose plan may depend on a bound value is
    // prepared again whenever that value changes. The LEFT JOINs of the grant fields did that
    // (the parser on every read of a token not served from `recent`: 7.8 -> 29 µs), and so
    // did the joins of getRefreshToken, of the rotation's read and of a family's revocation.
    // Every statement the operations below run, over 40 values each, is prepared once.
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir.path().join("tokens.db")).unwrap();
    // Room for every statement below, so that none leaves the cache unchecked.
    s.conn.set_prepared_statement_cache_capacity(256);
    let granted = |mut t: NewAccessToken| {
        t.resource = Some("https://api.example/".into());
        t.extra = Some("{\"a\":1}".into());
        t
    };
    let mut granted_code = code_record();
    granted_code.resource = Some("https://api.example/".into());
    granted_code.extra = Some("{\"a\":1}".into());
    // The first grant row creates its triggers: a schema change, which prepares every
    // statement once more. Not what is checked: counts reset after it.
    s.store_access_token(granted(token("warm", "u0", None)), NOW)
        .unwrap();
    s.store_authorization_code("warm", &granted_code).unwrap();
    // Twice: the statements the first store ran before that change are prepared again now.
    s.store_access_token(granted(token("warm", "u0", None)), NOW)
        .unwrap();
    prepared_again(&s.conn);
    let with_refresh = |n: usize, tag: &str| {
        let mut t = token(&format!("{tag}{n}"), &format!("u{}", n % 7), Some(NOW + 60_000));
        t.refresh_token = Some(format!("r{tag}{n}"));
        if n % 2 == 1 {
            t = granted(t);
        }
        t
    };
    let rotate = |from: String, to: String, grace_ms| RotateRequest {
        refresh_token: from,
        new_access_token: to.clone(),
        new_refresh_token: format!("r{to}"),
        expires_at: Some(NOW + 60_000),
        grace_ms,
        links: None,
    };
    let rounds = 40;
    for n in 0..rounds {
        // New, then replaced: the same token and refresh string again.
        s.store_access_token(with_refresh(n, "t"), NOW).unwrap();
        s.store_access_token(with_refresh(n, "t"), NOW).unwrap();
        s.store_access_tokens(&[with_refresh(n, "b"), token(&format!("n{n}"), "u1", None)], NOW)
            .unwrap();
        let code = if n % 2 == 1 {
            granted_code.clone()
        } else {
            code_record()
        };
        s.store_authorization_code(&format!("c{n}"), &code).unwrap();
        s.store_authorization_code(&format!("c{n}"), &code_record()).unwrap();
        s.store_pending_authorization(&format!("p{n}"), "{}", NOW + 1000)
            .unwrap();
        s.put_client(&ClientRecord {
            client_id: format!("client{n}"),
            secret_digest: None,
            metadata: "{}".into(),
            created_at: NOW,
        })
        .unwrap();
        s.store_access_token(token(&format!("d{n}"), &format!("gone{n}"), None), NOW)
            .unwrap();
        // Expired: read, then removed by the read.
        s.store_access_token(token(&format!("x{n}"), "u2", Some(NOW - 1)), NOW)
            .unwrap();
    }
    for n in 0..rounds {
        for linked in [false, true] {
            assert!(s.get_access_token(&format!("t{n}"), NOW, linked).unwrap().is_some());
            assert!(s.get_refresh_token(&format!("rt{n}"), NOW, linked).unwrap().is_some());
            assert!(s.get_access_token(&format!("x{n}"), NOW, linked).unwrap().is_none());
            assert!(s.get_access_token(&format!("none{n}"), NOW, linked).unwrap().is_none());
        }
        assert!(s.get_access_token_text(&format!("t{n}"), NOW).unwrap().is_some());
        assert!(s.take_authorization_code(&format!("c{n}"), NOW).unwrap().is_some());
        assert!(s.take_authorization_code(&format!("c{n}"), NOW).unwrap().is_none());
        assert!(s.take_pending_authorization(&format!("p{n}"), NOW).unwrap().is_some());
        assert!(s.get_client(&format!("client{n}")).unwrap().is_some());
        // Rotated, replayed within the grace period, rotated on, replayed after it.
        let rotated = s.rotate_refresh_token(&rotate(format!("rt{n}"), format!("s{n}"), 0), NOW);
        assert!(matches!(rotated.unwrap(), Rotation::Rotated(_)));
        let again = s.rotate_refresh_token(&rotate(format!("rt{n}"), format!("z{n}"), 1000), NOW);
        assert!(matches!(again.unwrap(), Rotation::Reused { within_grace: true, .. }));
        let on = s.rotate_refresh_token(&rotate(format!("rs{n}"), format!("v{n}"), 0), NOW);
        assert!(matches!(on.unwrap(), Rotation::Rotated(_)));
        // The family's newest refresh string given to storeAccessToken starts a grant of its own.
        let mut taken = with_refresh(n, "w");
        taken.refresh_token = Some(format!("rv{n}"));
        s.store_access_token(taken, NOW).unwrap();
        let replay = s.rotate_refresh_token(&rotate(format!("rs{n}"), format!("y{n}"), 0), NOW + 5);
        assert!(matches!(replay.unwrap(), Rotation::Reused { within_grace: false, .. }));
        s.revoke_refresh_token(&format!("rb{n}")).unwrap();
        s.delete_token(&format!("n{n}")).unwrap();
        s.delete_user_tokens(&format!("gone{n}")).unwrap();
        s.stats(NOW + n as i64).unwrap();
    }
    // Not checked: cleanup, whose `LIMIT ?` statements are prepared again for each new limit
    // (SQLite plans a LIMIT known when preparing): once per batch, not per call.
    let again: Vec<_> = prepared_again(&s.conn)
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert!(again.is_empty(), "prepared again for new values: {again:#?}");
}

#[test]
fn grant_triggers_are_made_again_after_a_rolled_back_write() {
    // A connection makes the grant rows' triggers once (`GrantTriggers`); a transaction that
    // made them and rolled back left nothing, so the next grant write makes them again.
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir.path().join("tokens.db")).unwrap();
    let triggers = |s: &Db| -> i64 {
        s.conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'
                 AND name IN ('nts_token_grants_delete', 'nts_code_grants_delete')",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    let failed = s.write(|c| {
        insert_grant(c, Grants::Code, "c0", Some("https://api.example/"), None, &s.grants)?;
        Err::<(), _>(rusqlite::Error::QueryReturnedNoRows)
    });
    assert!(failed.is_err());
    assert_eq!(triggers(&s), 0);
    let mut code = code_record();
    code.resource = Some("https://api.example/".into());
    code.extra = Some("{}".into());
    for n in 0..3 {
        s.store_authorization_code(&format!("c{n}"), &code).unwrap();
        assert_eq!(triggers(&s), 2);
    }
    // Taken with its grant, which leaves with it (by the trigger alone).
    for n in 0..3 {
        let taken = s.take_authorization_code(&format!("c{n}"), NOW).unwrap();
        assert_eq!(taken.unwrap().resource.as_deref(), Some("https://api.example/"));
        assert_eq!(s.take_authorization_code(&format!("c{n}"), NOW).unwrap(), None);
    }
    let left: i64 = s
        .conn
        .query_row("SELECT COUNT(*) FROM nts_code_grants", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}
