//! The automatic cleanup's lease (issue 15, defect 4): one process cleans a file at a time.

use super::connection::Db;
use super::SyncMode;
use crate::model::NewAccessToken;

const NOW: i64 = 1_800_000_000_000;

fn expired(n: usize) -> Vec<NewAccessToken> {
    (0..n)
        .map(|i| NewAccessToken {
            resource: None,
            extra: None,
            links: None,
            token: format!("t{i}"),
            refresh_token: Some(format!("r{i}")),
            api_key: "k".into(),
            user_id: Some(format!("u{}", i % 7)),
            client_id: "c".into(),
            scopes: vec!["a".into()],
            expires_at: Some(NOW - 1000),
        })
        .collect()
}

/// Two connections to a file of 25 expired tokens, the first's automatic cleanup (holder
/// 1) having removed 10 of them (and so holding the lease).
fn two_connections_first_cleaning() -> (tempfile::TempDir, Db, Db) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let a = Db::open(&path, SyncMode::Normal, 1000).unwrap();
    let b = Db::open(&path, SyncMode::Normal, 1000).unwrap();
    a.store_access_tokens(&expired(25), NOW - 2000).unwrap();
    assert_eq!(a.cleanup_expired_as(NOW, 10, 1).unwrap(), Some(10));
    (dir, a, b)
}

#[test]
fn a_second_automatic_cleanup_of_the_file_waits_until_the_first_is_done() {
    let (_dir, a, b) = two_connections_first_cleaning();
    // The other process's cleanup removes nothing while the first holds the lease.
    assert_eq!(b.cleanup_expired_as(NOW, 10, 2).unwrap(), None);
    assert_eq!(a.cleanup_expired_as(NOW, 10, 1).unwrap(), Some(10));
    assert_eq!(b.cleanup_expired_as(NOW + 1, 10, 2).unwrap(), None);
    // Fewer than asked: done, the lease is given back.
    assert_eq!(a.cleanup_expired_as(NOW, 10, 1).unwrap(), Some(5));
    assert_eq!(b.cleanup_expired_as(NOW, 10, 2).unwrap(), Some(0));
    // An explicit cleanup (cleanupExpiredTokensAsync) is not held back by the lease.
    a.store_access_tokens(&expired(25), NOW - 2000).unwrap();
    assert_eq!(a.cleanup_expired_as(NOW, 10, 1).unwrap(), Some(10));
    assert_eq!(b.cleanup_expired(NOW, 10).unwrap(), 10);
}

#[test]
fn the_lease_of_a_cleanup_that_stopped_lapses() {
    let (_dir, a, b) = two_connections_first_cleaning();
    // `a`'s process died: ten seconds after its last batch, `b` takes over.
    assert_eq!(b.cleanup_expired_as(NOW + 9_999, 10, 2).unwrap(), None);
    assert_eq!(b.cleanup_expired_as(NOW + 10_001, 10, 2).unwrap(), Some(10));
    assert_eq!(a.cleanup_expired_as(NOW + 10_002, 10, 1).unwrap(), None);
}
