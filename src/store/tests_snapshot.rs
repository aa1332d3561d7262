//! Backups and copies (`snapshot`), on every backend: everything a store holds comes
//! back from the backup file and from a copy, so that nobody is logged out. The cases
//! run on every backend from the list at the bottom of `tests.rs`.

use std::os::unix::fs::PermissionsExt;

use super::snapshot::{backup, copy, BackupOptions, CopyOptions, Progress};
use super::tests::token;
use super::*;
use crate::model::{AuthorizationCode, ClientRecord, RotateRequest, Rotation};

const NOW: i64 = 1_800_000_000_000;

fn rotate(old: &str, access: &str, refresh: &str) -> RotateRequest {
    RotateRequest {
        links: None,
        refresh_token: old.into(),
        new_access_token: access.into(),
        new_refresh_token: refresh.into(),
        expires_at: Some(NOW + 3_600_000),
        grace_ms: 0,
    }
}

/// A store holding one of everything: tokens with and without refresh tokens and users,
/// a rotated family (so a replay of its old refresh token is known), an expired token, a
/// code, clients, a pending authorization.
fn fill(store: &dyn TokenStore) {
    let mut a1 = token("a1", Some("r1"), Some("u1"), Some(NOW + 3_600_000));
    a1.resource = Some("https://mcp.example/".into());
    a1.extra = Some(r#"{"apiKey":"up-1"}"#.into());
    let tokens = [
        a1,
        token("a2", None, None, None),
        token("a3", Some("r3"), Some("u2"), Some(NOW - 1)),
    ];
    store.store_access_tokens(&tokens, NOW - 10).unwrap();
    let r = store
        .rotate_refresh_token(&rotate("r1", "a4", "r4"), NOW)
        .unwrap();
    assert!(matches!(r, Rotation::Rotated(_)), "{r:?}");
    let code = AuthorizationCode {
        resource: Some("https://mcp.example/".into()),
        extra: Some("{}".into()),
        user_id: Some("u1".into()),
        api_key: "sk-code".into(),
        client_id: "client".into(),
        redirect_uri: "https://app.example/cb".into(),
        code_challenge: None,
        code_challenge_method: None,
        scopes: vec!["read".into()],
        expires_at: NOW + 60_000,
        created_at: NOW,
    };
    store.store_authorization_code("c1", &code).unwrap();
    for id in ["zeta", "alpha"] {
        store
            .put_client(&ClientRecord {
                client_id: id.into(),
                secret_digest: Some(format!("digest-{id}")),
                metadata: "{}".into(),
                created_at: NOW,
            })
            .unwrap();
    }
    store
        .store_pending_authorization("s1", "{\"x\":1}", NOW + 60_000, NOW)
        .unwrap();
}

/// What `fill` left, read back from `store`.
fn check(store: &dyn TokenStore) {
    let a1 = store.get_access_token("a4", NOW).unwrap().expect("a4");
    assert_eq!(a1.api_key, "sk-a1");
    assert_eq!(a1.refresh_token.as_deref(), Some("r4"));
    assert_eq!(a1.created_at, NOW);
    // The grant's resource and extra came along (carried by the rotation before).
    assert_eq!(a1.resource.as_deref(), Some("https://mcp.example/"));
    assert_eq!(a1.extra.as_deref(), Some(r#"{"apiKey":"up-1"}"#));
    let a2 = store.get_access_token("a2", NOW).unwrap().expect("a2");
    assert_eq!(
        (a2.user_id, a2.expires_at, a2.created_at),
        (None, None, NOW - 10)
    );
    assert!(store.get_refresh_token("r4", NOW).unwrap().is_some());
    assert_eq!(store.client_ids().unwrap(), ["zeta", "alpha"]);
    assert_eq!(
        store
            .get_client("alpha")
            .unwrap()
            .unwrap()
            .secret_digest
            .as_deref(),
        Some("digest-alpha")
    );
    let c1 = store
        .take_authorization_code("c1", NOW)
        .unwrap()
        .expect("c1");
    assert_eq!(
        (c1.resource.as_deref(), c1.extra.as_deref()),
        (Some("https://mcp.example/"), Some("{}"))
    );
    assert_eq!(
        store
            .take_pending_authorization("s1", NOW)
            .unwrap()
            .as_deref(),
        Some("{\"x\":1}")
    );
    // The rotation family came along: a replay of r1 revokes a4/r4.
    let replay = store
        .rotate_refresh_token(&rotate("r1", "a5", "r5"), NOW + 1)
        .unwrap();
    assert_eq!(
        replay,
        Rotation::Reused {
            within_grace: false,
            revoked: 1
        }
    );
    assert!(store.get_access_token("a4", NOW + 1).unwrap().is_none());
}

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

pub(super) fn backup_keeps_everything(f: backends::TestStore) {
    fill(&*f.store);
    let dir = temp();
    let file = dir.path().join("backup.db");
    let report = backup(
        &*f.store,
        &file,
        BackupOptions::default(),
        &Progress::default(),
    )
    .expect("backup");
    assert_eq!(report.counts.access_tokens, 3, "{report:?}");
    assert_eq!(report.counts.clients, 2);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "only the backup is left: {leftovers:?}");
    let restored = SqliteStore::new(file.clone(), SyncMode::Normal, 5000);
    assert_eq!(restored.stats(NOW).unwrap(), f.store.stats(NOW).unwrap());
    check(&restored);
    // The original is untouched by the backup.
    check(&*f.store);
}

pub(super) fn backup_refuses_a_file_already_there(f: backends::TestStore) {
    fill(&*f.store);
    let dir = temp();
    let file = dir.path().join("backup.db");
    std::fs::write(&file, b"keep me").unwrap();
    let e = backup(
        &*f.store,
        &file,
        BackupOptions::default(),
        &Progress::default(),
    )
    .expect_err("refused");
    assert_eq!(e.code(), "ERR_TOKEN_STORAGE_OPEN", "{e}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    let options = BackupOptions {
        overwrite: true,
        batch: 2,
    };
    let progress = Progress::default();
    backup(&*f.store, &file, options, &progress).expect("overwrite");
    let (done, total) = progress.get();
    assert_eq!(done, total);
    check(&SqliteStore::new(file, SyncMode::Normal, 5000));
}

pub(super) fn copy_into_each_store(f: backends::TestStore) {
    // From a SQLite file written by another store, into this kind of store.
    let source = sqlite_fixture();
    fill(&*source.store);
    let progress = Progress::default();
    let counts = copy(&*source.store, &*f.store, CopyOptions::default(), &progress).expect("copy");
    assert_eq!(counts, f.store.row_counts().unwrap());
    assert_eq!(progress.get().0, counts.total());
    // Into itself: refused at once (its transaction would wait for its own export).
    let e = copy(
        &*f.store,
        &*f.store,
        CopyOptions {
            batch: 1,
            overwrite: true,
        },
        &progress,
    )
    .expect_err("itself");
    assert_eq!(e.code(), "ERR_TOKEN_STORAGE_INVALID_ARGUMENT", "{e}");
    assert_eq!(counts, f.store.row_counts().unwrap());
    // A second copy into the now non-empty store is refused, unless told.
    let e =
        copy(&*source.store, &*f.store, CopyOptions::default(), &progress).expect_err("non-empty");
    assert_eq!(e.code(), "ERR_TOKEN_STORAGE_INVALID_ARGUMENT", "{e}");
    f.store
        .store_access_token(&token("extra", None, None, None), NOW)
        .unwrap();
    let options = CopyOptions {
        batch: 1,
        overwrite: true,
    };
    copy(&*source.store, &*f.store, options, &progress).expect("overwrite");
    assert!(f.store.get_access_token("extra", NOW).unwrap().is_none());
    assert_eq!(
        f.store.stats(NOW).unwrap(),
        source.store.stats(NOW).unwrap()
    );
    check(&*f.store);
}

fn sqlite_fixture() -> backends::TestStore {
    <SqliteSettings as backends::Backend>::test_store().expect("a SQLite file")
}

pub(super) fn revoking_a_client_removes_its_tokens_and_codes(f: backends::TestStore) {
    fill(&*f.store);
    let mut other = token("b1", Some("rb1"), Some("u1"), None);
    other.client_id = "other".into();
    f.store.store_access_token(&other, NOW).unwrap();
    // a2, a3 (expired, still stored) and a4 (rotated from a1) are the client's.
    assert_eq!(f.store.revoke_client("client").unwrap(), 3);
    for t in ["a2", "a4"] {
        assert!(f.store.get_access_token(t, NOW).unwrap().is_none(), "{t}");
    }
    assert!(f.store.get_refresh_token("r4", NOW).unwrap().is_none());
    assert!(f
        .store
        .take_authorization_code("c1", NOW)
        .unwrap()
        .is_none());
    assert!(f.store.get_access_token("b1", NOW).unwrap().is_some());
    assert_eq!(f.store.stats(NOW).unwrap().total_tokens, 1);
    assert_eq!(f.store.revoke_client("nobody").unwrap(), 0);
}

/// From PostgreSQL into PostgreSQL: the export's reader and the target's writes share the
/// I/O thread's runtime (each on a thread of its own), in batches smaller than the tables.
#[test]
#[cfg(feature = "postgres")]
fn postgres_into_postgres() {
    let test = || <PostgresSettings as backends::Backend>::test_store();
    let (Some(from), Some(to)) = (test(), test()) else {
        return;
    };
    fill(&*from.store);
    let more: Vec<_> = (0..250)
        .map(|i| {
            token(
                &format!("bulk-{i}"),
                Some(&format!("rb-{i}")),
                Some("u9"),
                None,
            )
        })
        .collect();
    from.store.store_access_tokens(&more, NOW).unwrap();
    let progress = Progress::default();
    let options = CopyOptions {
        batch: 7,
        overwrite: false,
    };
    let counts = copy(&*from.store, &*to.store, options, &progress).expect("copy");
    assert_eq!(counts.access_tokens, 253);
    assert_eq!(progress.get(), (counts.total(), counts.total()));
    assert_eq!(to.store.stats(NOW).unwrap(), from.store.stats(NOW).unwrap());
    check(&*to.store);
}
