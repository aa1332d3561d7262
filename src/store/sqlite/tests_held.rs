//! Tests of the read transaction held across the synchronous gets of one turn (`held`):
//! never a snapshot older than the file, ended by every other call and by `end_reads`, and
//! no checkpoint kept back once it ends.

use std::path::Path;

use rusqlite::Connection;

use super::connection::Db;
use super::tests_recent::{another_program, open, token, NOW};
use super::SqliteStore;
use super::SyncMode;
use crate::model::NewAccessToken;
use crate::store::TokenStore;

/// Whether `name` is found by a held read of `db` (each name read once: never from `recent`).
fn held(db: &Db, name: &str, now: i64) -> bool {
    db.get_access_token_text_as(name, now, true)
        .unwrap()
        .is_some()
}

/// Whether `db`'s connection is inside a transaction.
fn in_transaction(db: &Db) -> bool {
    !db.conn.is_autocommit()
}

#[test]
fn a_held_read_stays_open_until_it_is_ended() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("tokens.db"));
    db.store_access_tokens(&[token("a", None), token("b", None)], NOW)
        .unwrap();
    assert!(held(&db, "a", NOW));
    assert!(in_transaction(&db));
    assert!(held(&db, "b", NOW));
    assert!(in_transaction(&db));
    db.end_read().unwrap();
    assert!(!in_transaction(&db));
    // Not holding: each read is a transaction of its own, as before.
    assert!(db.get_access_token_text("a", NOW).unwrap().is_some());
    assert!(!in_transaction(&db));
}

#[test]
fn a_token_answered_from_recent_begins_no_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("tokens.db"));
    db.store_access_tokens(&[token("a", None)], NOW).unwrap();
    for _ in 0..2 {
        assert!(db.get_access_token_text("a", NOW).unwrap().is_some());
    }
    assert!(held(&db, "a", NOW));
    assert!(!in_transaction(&db));
}

#[test]
fn a_held_read_never_serves_what_another_connection_committed_since() {
    type Change = fn(&Db, &Path);
    let changes: [(&str, Change, bool, bool); 4] = [
        ("deleteToken", |o, _| o.delete_token("a").unwrap(), false, false),
        (
            "a new token stored",
            |o, _| {
                o.store_access_tokens(&[token("new", None)], NOW).unwrap();
            },
            true,
            true,
        ),
        (
            "another program's DELETE",
            |_, p| another_program(p, "DELETE FROM access_tokens WHERE token = 'a'"),
            false,
            false,
        ),
        (
            "another program's UPDATE",
            |_, p| another_program(p, "UPDATE access_tokens SET token = 'new' WHERE token = 'a'"),
            false,
            true,
        ),
    ];
    for (what, change, a_after, new_after) in changes {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        let db = open(&path);
        let other = open(&path);
        db.store_access_tokens(&[token("a", None), token("x", None)], NOW)
            .unwrap();
        // The held read's snapshot is taken here, before the change.
        assert!(held(&db, "x", NOW), "{what}");
        change(&other, &path);
        assert_eq!(held(&db, "a", NOW), a_after, "{what}: a");
        assert_eq!(held(&db, "new", NOW), new_after, "{what}: new");
        assert!(in_transaction(&db), "{what}: held again, from the new snapshot");
    }
}

#[test]
fn every_other_call_of_the_store_ends_the_held_read_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::new(dir.path().join("tokens.db"), SyncMode::Normal, 1000);
    // Tokens read once each by a holding get (one read again would come from `recent`).
    let once: Vec<String> = (0..7).map(|i| format!("h{i}")).collect();
    let mut tokens: Vec<NewAccessToken> = once.iter().map(|n| token(n, None)).collect();
    tokens.extend([token("a", None), token("b", None)]);
    store.store_access_tokens(&tokens, NOW).unwrap();
    let mut once = once.iter();
    let mut holding = || {
        let name = once.next().unwrap();
        assert!(store
            .get_access_token_text_holding(name, NOW)
            .unwrap()
            .is_some());
        let main = store.main.lock().unwrap();
        assert!(in_transaction(main.as_ref().unwrap()), "held after {name}");
    };
    let calls: [(&str, &dyn Fn()); 6] = [
        ("a store", &|| {
            store.store_access_tokens(&[token("c", None)], NOW).unwrap();
        }),
        ("getStats", &|| {
            assert_eq!(store.stats(NOW).unwrap().total_tokens, 10);
        }),
        ("getRefreshToken", &|| {
            assert!(store.get_refresh_token("rt-a", NOW).unwrap().is_some());
        }),
        ("a get that does not hold", &|| {
            assert!(store.get_access_token_text("b", NOW).unwrap().is_some());
        }),
        ("deleteToken", &|| store.delete_token("c").unwrap()),
        ("end_reads", &|| store.end_reads().unwrap()),
    ];
    for (what, call) in calls {
        holding();
        call();
        let main = store.main.lock().unwrap();
        assert!(!in_transaction(main.as_ref().unwrap()), "{what}");
    }
    // Closing with a read held, and ending reads of a closed store: nothing to end, the
    // file not opened again.
    holding();
    store.close().unwrap();
    store.end_reads().unwrap();
    assert!(store.main.lock().unwrap().is_none());
}

#[test]
fn an_expired_token_found_by_a_held_read_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let db = open(&path);
    db.store_access_tokens(&[token("x", None), token("e", Some(NOW + 1_000))], NOW)
        .unwrap();
    assert!(held(&db, "x", NOW));
    // Its removal is a write: the held read ends first, and the row is gone for everyone.
    assert!(!held(&db, "e", NOW + 2_000));
    let rows: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM access_tokens WHERE token = 'e'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
    assert!(held(&db, "x", NOW + 2_000));
}

#[test]
fn a_held_read_keeps_checkpoints_back_only_until_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let db = open(&path);
    db.store_access_tokens(&[token("x", None)], NOW).unwrap();
    assert!(held(&db, "x", NOW));
    let other = open(&path);
    for i in 0..50 {
        other
            .store_access_tokens(&[token(&format!("t{i}"), None)], NOW)
            .unwrap();
    }
    let checkpoint = || -> (i64, i64) {
        Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap()
    };
    // Busy: the frames after the held snapshot cannot be copied back, nor the WAL restart.
    assert_eq!(checkpoint().0, 1);
    db.end_read().unwrap();
    assert_eq!(checkpoint(), (0, 0));
}
