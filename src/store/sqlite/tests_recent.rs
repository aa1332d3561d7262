//! Tests of the recently read access tokens (`recent`): served again while nothing was
//! committed, never after a commit by any connection changed or removed them, never
//! past their expiry, never from a file deleted or replaced under the path.

use std::path::Path;

use rusqlite::Connection;

use super::connection::Db;
use super::SqliteStore;
use super::SyncMode;
use crate::model::{NewAccessToken, RotateRequest, Rotation};
use crate::store::TokenStore;
use crate::wire;

pub(super) const NOW: i64 = 1_800_000_000_000;

pub(super) fn open(path: &Path) -> Db {
    Db::open(path, SyncMode::Normal, 1000).unwrap()
}

pub(super) fn token(name: &str, expires_at: Option<i64>) -> NewAccessToken {
    NewAccessToken {
        resource: None,
        extra: None,
        links: None,
        token: name.into(),
        refresh_token: Some(format!("rt-{name}")),
        api_key: format!("key-{name}"),
        user_id: Some(format!("user-{name}")),
        client_id: "c".into(),
        scopes: vec!["mcp".into()],
        expires_at,
    }
}

/// Runs `sql` on the file as another program would (a connection of its own).
pub(super) fn another_program(path: &Path, sql: &str) {
    Connection::open(path).unwrap().execute(sql, []).unwrap();
}

/// Reads `name` until it is kept in `recent` (its second read), and checks it is.
fn read_until_kept(db: &Db, name: &str, now: i64) {
    for _ in 0..2 {
        assert!(db.get_access_token_text(name, now).unwrap().is_some(), "{name}");
    }
    assert!(db.recent.borrow().get(name, now).is_some(), "{name} is kept");
}

/// The api key of `name` as read at `now` (from `recent` if kept), after checking that the
/// reply served is exactly what the file holds (read without `recent`).
fn api_key(db: &Db, name: &str, now: i64) -> Option<String> {
    let served = db.get_access_token_text(name, now).unwrap();
    let record = db.get_access_token(name, now, false).unwrap();
    assert_eq!(served, record.as_ref().map(wire::access_token), "{name}");
    record.map(|t| t.api_key)
}

#[test]
fn a_token_read_again_is_served_as_stored_while_nothing_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("tokens.db"));
    db.store_access_token(token("a", Some(NOW + 60_000)), NOW)
        .unwrap();
    let first = db.get_access_token_text("a", NOW).unwrap();
    read_until_kept(&db, "a", NOW);
    assert_eq!(db.get_access_token_text("a", NOW).unwrap(), first);
    assert_eq!(db.get_access_token_text("b", NOW).unwrap(), None);
}

#[test]
fn every_change_by_another_connection_is_seen_by_the_next_read() {
    type Change = fn(&Db, &Path);
    let changes: [(&str, Change, Option<&str>); 8] = [
        ("deleteToken", |o, _| o.delete_token("a").unwrap(), None),
        (
            "revokeRefreshToken",
            |o, _| o.revoke_refresh_token("rt-a").unwrap(),
            None,
        ),
        (
            "deleteUserTokens",
            |o, _| {
                o.delete_user_tokens("user-a").unwrap();
            },
            None,
        ),
        (
            "rotation",
            |o, _| {
                let r = o
                    .rotate_refresh_token(
                        &RotateRequest {
                            links: None,
                            refresh_token: "rt-a".into(),
                            new_access_token: "a2".into(),
                            new_refresh_token: "rt-a2".into(),
                            expires_at: Some(NOW + 60_000),
                            grace_ms: 0,
                        },
                        NOW,
                    )
                    .unwrap();
                assert!(matches!(r, Rotation::Rotated(_)));
            },
            None,
        ),
        (
            "a store replacing it",
            |o, _| {
                let mut t = token("a", Some(NOW + 60_000));
                t.api_key = "key-new".into();
                o.store_access_token(t, NOW).unwrap();
            },
            Some("key-new"),
        ),
        (
            "cleanup",
            |o, _| {
                o.cleanup_expired(NOW + 120_000, 100).unwrap();
            },
            None,
        ),
        (
            "another program's DELETE",
            |_, p| another_program(p, "DELETE FROM access_tokens WHERE token = 'a'"),
            None,
        ),
        (
            "another program's UPDATE",
            |_, p| another_program(p, "UPDATE access_tokens SET api_key = 'key-edited' WHERE token = 'a'"),
            Some("key-edited"),
        ),
    ];
    for (what, change, after) in changes {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        let db = open(&path);
        let other = open(&path);
        db.store_access_token(token("a", Some(NOW + 60_000)), NOW)
            .unwrap();
        read_until_kept(&db, "a", NOW);
        change(&other, &path);
        // `cleanup` removed it as expired at a later time; read at NOW it would be live.
        assert_eq!(api_key(&db, "a", NOW).as_deref(), after, "{what}");
        assert_eq!(api_key(&db, "a", NOW).as_deref(), after, "{what}, again");
    }
}

#[test]
fn this_connections_own_writes_are_seen_by_the_next_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("tokens.db"));
    for name in ["a", "b"] {
        db.store_access_token(token(name, None), NOW).unwrap();
        read_until_kept(&db, name, NOW);
    }
    db.delete_token("a").unwrap();
    db.revoke_refresh_token("rt-b").unwrap();
    assert_eq!((api_key(&db, "a", NOW), api_key(&db, "b", NOW)), (None, None));
}

#[test]
fn the_cleanup_connection_of_the_same_store_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::new(dir.path().join("tokens.db"), SyncMode::Normal, 1000);
    store
        .store_access_tokens(&[token("a", Some(NOW + 1_000))], NOW)
        .unwrap();
    for _ in 0..3 {
        assert!(store.get_access_token_text("a", NOW).unwrap().is_some());
    }
    // The background cleanup (its own connection) removes it as expired at a later time;
    // a read that passes an earlier time finds it gone, not kept.
    assert_eq!(
        store
            .cleanup_expired_in_background(NOW + 5_000, 100)
            .unwrap(),
        1
    );
    assert_eq!(store.get_access_token_text("a", NOW).unwrap(), None);
}

#[test]
fn a_kept_token_is_never_served_at_or_after_its_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let db = open(&path);
    db.store_access_token(token("a", Some(NOW + 1_000)), NOW)
        .unwrap();
    read_until_kept(&db, "a", NOW + 999);
    assert_eq!(db.get_access_token_text("a", NOW + 1_000).unwrap(), None);
    // And the read that found it expired removed it, as any read does.
    let left: i64 = open(&path)
        .conn
        .query_row("SELECT COUNT(*) FROM access_tokens", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn a_kept_token_of_a_file_deleted_or_replaced_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let store = SqliteStore::new(path.clone(), SyncMode::Normal, 1000);
    let read = |name: &str| store.get_access_token_text(name, NOW).map(|t| t.is_some());
    store
        .store_access_tokens(&[token("a", None)], NOW)
        .unwrap();
    for _ in 0..3 {
        assert_eq!(read("a"), Ok(true));
    }
    std::fs::remove_file(&path).unwrap();
    assert_eq!(read("a").unwrap_err().code(), "ERR_TOKEN_STORAGE_MOVED");
    assert_eq!(read("a"), Ok(false));
    // Replaced by a copy without it (a restore renamed over the file).
    store
        .store_access_tokens(&[token("b", None)], NOW)
        .unwrap();
    let backup = dir.path().join("backup.db");
    Connection::open(&path)
        .unwrap()
        .execute(&format!("VACUUM INTO '{}'", backup.display()), [])
        .unwrap();
    Connection::open(&backup)
        .unwrap()
        .execute("DELETE FROM access_tokens", [])
        .unwrap();
    for _ in 0..3 {
        assert_eq!(read("b"), Ok(true));
    }
    std::fs::rename(&backup, &path).unwrap();
    assert_eq!(read("b").unwrap_err().code(), "ERR_TOKEN_STORAGE_MOVED");
    assert_eq!(read("b"), Ok(false));
}

#[test]
fn the_kept_tokens_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("tokens.db"));
    let n = super::recent::RECENT_TOKENS + 1_000;
    let tokens: Vec<_> = (0..n).map(|i| token(&format!("t{i}"), None)).collect();
    db.store_access_tokens(&tokens, NOW).unwrap();
    for _ in 0..2 {
        for t in &tokens {
            assert!(db.get_access_token_text(&t.token, NOW).unwrap().is_some());
        }
    }
    let recent = db.recent.borrow();
    assert_eq!(recent.len(), super::recent::RECENT_TOKENS);
    // First in, first out: the first read are the ones replaced.
    let kept = |range: std::ops::Range<usize>| {
        range
            .filter(|i| recent.get(&format!("t{i}"), NOW).is_some())
            .count()
    };
    assert_eq!(kept(0..100), 0);
    assert!(kept(n - 100..n) >= 90);
}
