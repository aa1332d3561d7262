//! Tests of the watches that spare calls the `stat` of `ensure_in_place` (`watch`): a file
//! deleted or replaced, or a folder above it renamed, before a call is seen by that call,
//! with the watches, once they no longer fit the path, and without any.

use std::path::Path;

use super::connection::Db;
use super::SyncMode;
use crate::model::NewAccessToken;

const NOW: i64 = 1_800_000_000_000;

fn open(path: &Path) -> Db {
    Db::open(path, SyncMode::Normal, 1000).unwrap()
}

fn token(name: &str) -> NewAccessToken {
    NewAccessToken {
        resource: None,
        extra: None,
        links: None,
        token: name.into(),
        refresh_token: None,
        api_key: format!("key-{name}"),
        user_id: None,
        client_id: "c".into(),
        scopes: vec![],
        expires_at: None,
    }
}

/// A file at `path` holding only `name`, written and closed (its WAL folded in).
fn file_with(path: &Path, name: &str) {
    let db = open(path);
    db.store_access_token(token(name), NOW).unwrap();
}

/// Reads `name` from `db` until it is served from `recent`.
fn read_often(db: &Db, name: &str) {
    for _ in 0..4 {
        assert!(db.get_access_token(name, NOW, false).unwrap().is_some(), "{name}");
    }
}

/// A connection to `path` that stored "old" and serves it from `recent`.
fn serving_old(path: &Path) -> Db {
    let db = open(path);
    db.store_access_token(token("old"), NOW).unwrap();
    read_often(&db, "old");
    db
}

fn moved(db: &Db, name: &str) {
    let err = db.get_access_token(name, NOW, false).unwrap_err();
    assert_eq!(err.code(), "ERR_TOKEN_STORAGE_MOVED");
}

/// A file holding only "new", written at `other` and renamed over `path`: `db`'s next call
/// fails as moved, and does not serve "old".
fn renamed_over(db: &Db, other: &Path, path: &Path) {
    file_with(other, "new");
    std::fs::rename(other, path).unwrap();
    moved(db, "old");
}

#[test]
fn a_file_renamed_over_the_path_is_seen_by_the_next_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let db = serving_old(&path);
    #[cfg(target_os = "linux")]
    assert!(!db.stats_every_call(), "watched");
    renamed_over(&db, &dir.path().join("other.db"), &path);
    // The path is the other file now.
    let db = open(&path);
    assert!(db.get_access_token("old", NOW, false).unwrap().is_none());
    assert!(db.get_access_token("new", NOW, false).unwrap().is_some());
}

#[test]
fn a_folder_above_renamed_and_replaced_is_seen_by_the_next_call() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("a").join("b");
    let path = dir.join("tokens.db");
    let db = serving_old(&path);
    // `a` renamed away, and a new `a/b/tokens.db` in its place.
    std::fs::rename(root.path().join("a"), root.path().join("gone")).unwrap();
    file_with(&path, "new");
    moved(&db, "old");
}

#[test]
fn a_deleted_file_is_seen_by_the_next_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let db = serving_old(&path);
    std::fs::remove_file(&path).unwrap();
    moved(&db, "old");
}

#[test]
fn events_about_other_names_keep_the_watch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let db = serving_old(&path);
    std::fs::write(dir.path().join("x"), b"x").unwrap();
    std::fs::rename(dir.path().join("x"), dir.path().join("y")).unwrap();
    std::fs::remove_file(dir.path().join("y")).unwrap();
    read_often(&db, "old");
    #[cfg(target_os = "linux")]
    assert!(!db.stats_every_call(), "still watched");
}

#[test]
#[cfg(unix)]
fn a_folder_replaced_under_the_same_file_turns_the_watch_off_and_the_stat_still_sees() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("d");
    let path = dir.join("tokens.db");
    let db = serving_old(&path);
    // A new folder `d` holding the same file (a hard link): the file is in place, but the
    // watch is on the old folder, which is no longer on the path.
    let next = root.path().join("next");
    std::fs::create_dir(&next).unwrap();
    std::fs::hard_link(&path, next.join("tokens.db")).unwrap();
    std::fs::rename(&dir, root.path().join("old")).unwrap();
    std::fs::rename(&next, &dir).unwrap();
    read_often(&db, "old");
    assert!(db.stats_every_call(), "the watch is off");
    // A file renamed over the path in the new folder (unwatched): the stat sees it.
    renamed_over(&db, &root.path().join("other.db"), &path);
}

#[test]
fn without_a_watch_every_call_stats() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let db = open(&path).without_watch();
    assert!(db.stats_every_call());
    db.store_access_token(token("old"), NOW).unwrap();
    read_often(&db, "old");
    renamed_over(&db, &dir.path().join("other.db"), &path);
}

#[test]
fn many_connections_share_one_descriptor_and_release_their_watches() {
    let dir = tempfile::tempdir().unwrap();
    let dbs: Vec<Db> = (0..140)
        .map(|i| open(&dir.path().join(format!("s{i}.db"))))
        .collect();
    #[cfg(target_os = "linux")]
    assert!(dbs.iter().all(|db| !db.stats_every_call()));
    for (i, db) in dbs.iter().enumerate() {
        db.store_access_token(token("t"), NOW).unwrap();
        read_often(db, "t");
        if i % 50 == 0 {
            std::fs::remove_file(dir.path().join(format!("s{i}.db"))).unwrap();
            moved(db, "t");
        }
    }
}
