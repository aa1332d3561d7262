//! The Redis store's test fixture, and its tests that the shared suite does not cover.
//! They need the server `TOKEN_TEST_REDIS_URL` names (`npm test` starts a throwaway one).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
use crate::store::TokenStore;

/// A fresh key prefix on the test server; its keys are removed with the fixture.
pub struct TestPrefix {
    url: String,
    pub(super) prefix: String,
}

impl TestPrefix {
    /// `None` when no test server is configured outside CI (said once); in CI that fails.
    pub fn new() -> Option<TestPrefix> {
        let url = match std::env::var("TOKEN_TEST_REDIS_URL") {
            Ok(u) if !u.trim().is_empty() => u,
            _ => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI runs the Redis suites: TOKEN_TEST_REDIS_URL is not set (npm test sets it)"
                );
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| {
                    eprintln!(
                        "Redis store tests skipped: set TOKEN_TEST_REDIS_URL to a server you run \
                         (or run npm test, which starts one)"
                    )
                });
                return None;
            }
        };
        static N: AtomicUsize = AtomicUsize::new(0);
        let prefix = format!(
            "nts_rs_{}_{}:",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Some(TestPrefix { url, prefix })
    }

    pub fn settings(&self) -> RedisSettings {
        RedisSettings {
            url: self.url.clone(),
            url_name: "TOKEN_TEST_REDIS_URL".into(),
            prefix: self.prefix.clone(),
            connect_timeout: Duration::from_secs(5),
            query_timeout: Duration::from_secs(10),
            pool_size: 4,
        }
    }

    pub fn store(&self) -> RedisStore {
        RedisStore::new(self.settings())
    }
}

impl Drop for TestPrefix {
    fn drop(&mut self) {
        let _ = self.store().remove_all_keys(false);
    }
}

/// A server that cannot be reached fails the call with UNAVAILABLE, in about the
/// connect timeout, naming the server but never the password.
#[test]
fn an_unreachable_server_is_unavailable_and_the_password_never_shown() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let store = RedisStore::new(RedisSettings {
        url: format!("redis://user:s3cret@127.0.0.1:{port}/0"),
        url_name: "TOKEN_REDIS_URL".into(),
        prefix: "nts:".into(),
        connect_timeout: Duration::from_millis(500),
        query_timeout: Duration::from_millis(500),
        pool_size: 1,
    });
    let e = store.get_access_token("t", 0).unwrap_err();
    assert_eq!(e.code(), "ERR_TOKEN_STORAGE_UNAVAILABLE", "{e}");
    let text = e.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("s3cret") && !text.contains("user:"), "{text}");
}

/// Two stores with different prefixes on one server see nothing of each other.
#[test]
fn prefixes_keep_stores_apart() {
    let (Some(a), Some(b)) = (TestPrefix::new(), TestPrefix::new()) else {
        return;
    };
    let (sa, sb) = (a.store(), b.store());
    let t = crate::store::tests::token("t1", Some("r1"), Some("u1"), None);
    sa.store_access_token(&t, 1).unwrap();
    assert!(sa.get_access_token("t1", 1).unwrap().is_some());
    assert!(sb.get_access_token("t1", 1).unwrap().is_none());
    assert_eq!(sb.stats(1).unwrap().total_tokens, 0);
    sb.delete_user_tokens("u1").unwrap();
    assert!(sa.get_refresh_token("r1", 1).unwrap().is_some());
}

/// A server that lost the scripts (restarted, `SCRIPT FLUSH`) is sent them again.
/// A prefix nothing wrote under is not a store (the command line refuses it as a typo);
/// one token makes it one, and emptying it keeps the mark only if it has one.
#[test]
fn a_store_exists_once_something_is_written_under_its_prefix() {
    use crate::store::snapshot::RowStore;
    let Some(p) = TestPrefix::new() else {
        return;
    };
    let s = p.store();
    assert!(!s.exists().unwrap(), "a fresh prefix holds no store");
    let t = crate::store::tests::token("t1", Some("r1"), Some("u1"), None);
    s.store_access_token(&t, 1).unwrap();
    assert!(s.exists().unwrap(), "a token makes it a store");
    s.clear_rows().unwrap();
    assert!(!s.exists().unwrap(), "emptied, with no mark, nothing is left");
}

#[test]
fn scripts_flushed_on_the_server_are_sent_again() {
    let Some(p) = TestPrefix::new() else {
        return;
    };
    let s = p.store();
    let t = crate::store::tests::token("t1", None, None, None);
    s.store_access_token(&t, 1).unwrap();
    s.call(false, |c| c.command(&[b"SCRIPT", b"FLUSH"])).unwrap();
    s.delete_token("t1").unwrap();
    assert!(s.get_access_token("t1", 1).unwrap().is_none());
}

/// A kept connection the server closed (a restart, an idle timeout) is not used: the
/// next call, a write included, goes through on a new one.
#[test]
fn a_connection_closed_by_the_server_is_replaced() {
    let Some(p) = TestPrefix::new() else {
        return;
    };
    let s = p.store();
    let id = s.call(true, |c| c.command(&[b"CLIENT", b"ID"])).unwrap();
    let id = id.int().unwrap().to_string();
    // From a connection of another store: the kept one of `s` is closed by the server.
    p.store()
        .call(false, |c| c.command(&[b"CLIENT", b"KILL", b"ID", id.as_bytes()]))
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let t = crate::store::tests::token("t1", None, None, None);
    s.store_access_token(&t, 1).unwrap();
    assert!(s.get_access_token("t1", 1).unwrap().is_some());
}

/// Records live by the caller's clock, whatever Redis's says: a token, a code and a
/// pending authorization stored at a `now` far from the server's time are found until
/// their expiry by that clock (Redis's TTLs count from the caller's `now`, not from an
/// absolute time that Redis's clock may think long past).
#[test]
fn records_live_by_the_callers_clock() {
    let Some(p) = TestPrefix::new() else {
        return;
    };
    let s = p.store();
    let then = 1_000_000;
    let t = crate::store::tests::token("t1", Some("r1"), Some("u1"), Some(then + 60_000));
    s.store_access_token(&t, then).unwrap();
    assert!(s.get_access_token("t1", then + 1).unwrap().is_some());
    assert!(s.get_refresh_token("r1", then + 1).unwrap().is_some());
    assert_eq!(s.stats(then + 1).unwrap().unique_users, 1);
    let code = crate::store::tests::code_at(then, then + 60_000);
    s.store_authorization_code("c1", &code).unwrap();
    assert_eq!(s.take_authorization_code("c1", then + 1).unwrap(), Some(code));
    s.store_pending_authorization("st", "{}", then + 60_000, then)
        .unwrap();
    assert_eq!(
        s.take_pending_authorization("st", then + 1).unwrap().as_deref(),
        Some("{}")
    );
    // And the keys do go by themselves, an hour after their expiry by that clock: the
    // token, its refresh key and the user's index with the token; the user's codes with
    // their latest code, moved forward by a later one and never back.
    let ttl = |name: &str| {
        let key = format!("{}{name}", p.prefix);
        s.call(true, |c| c.command(&[b"PTTL", key.as_bytes()]))
            .unwrap()
            .int()
            .unwrap()
    };
    let about = |ttl: i64, ms: i64| ttl > ms - 60_000 && ttl <= ms;
    for key in ["at:t1", "rt:r1", "u:u1"] {
        assert!(about(ttl(key), 3_660_000), "{key}: {}", ttl(key));
    }
    for (code, until, kept) in [("c2", 60_000, 3_660_000), ("c3", 600_000, 4_200_000)] {
        s.store_authorization_code(code, &crate::store::tests::code_at(then, then + until))
            .unwrap();
        assert!(about(ttl("uc:u1"), kept), "{code}: {}", ttl("uc:u1"));
    }
    s.store_authorization_code("c4", &crate::store::tests::code_at(then, then + 60_000))
        .unwrap();
    assert!(about(ttl("uc:u1"), 4_200_000), "{}", ttl("uc:u1"));
    // A later token of the user moves the user's index forward; an earlier one does not.
    for (t, r, until) in [("t2", "r2", 600_000), ("t3", "r3", 60_000)] {
        let t = crate::store::tests::token(t, Some(r), Some("u1"), Some(then + until));
        s.store_access_token(&t, then).unwrap();
        assert!(about(ttl("u:u1"), 4_200_000), "{}", ttl("u:u1"));
    }
    assert!(about(ttl("rt:r3"), 3_660_000), "{}", ttl("rt:r3"));
    // A token without an expiry: neither it nor its refresh key nor the user's index goes.
    let t = crate::store::tests::token("t4", Some("r4"), Some("u1"), None);
    s.store_access_token(&t, then).unwrap();
    assert_eq!([ttl("at:t4"), ttl("rt:r4"), ttl("u:u1")], [-1, -1, -1]);
}

/// Only `appendonly yes` with `appendfsync always` keeps every acknowledged write; every
/// other setting is a warning saying what a crash loses, and so are settings not given.
#[test]
fn persistence_that_can_lose_acknowledged_writes_is_a_warning() {
    use super::durability::{assess, CAN_LOSE, UNCHECKED};
    let of = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<std::collections::HashMap<_, _>>()
    };
    let field = |w: &crate::store::Warning, name: &str| {
        w.fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let safe = of(&[("appendonly", "yes"), ("appendfsync", "always"), ("save", "")]);
    assert_eq!(assess("h:1/0", &safe), None);
    for (aof, fsync, save, loses) in [
        ("yes", "everysec", "", "about a second"),
        ("yes", "no", "", "not flushed"),
        ("no", "everysec", "3600 1 300 100 60 10000", "since the last snapshot"),
        ("no", "always", "", "nothing is kept on disk"),
    ] {
        let w = assess("h:1/0", &of(&[("appendonly", aof), ("appendfsync", fsync), ("save", save)]))
            .unwrap();
        assert_eq!(w.message, CAN_LOSE);
        assert!(field(&w, "loses").contains(loses), "{w:?}");
        assert_eq!(field(&w, "server"), "h:1/0");
        assert_eq!(field(&w, "appendonly"), aof);
    }
    let w = assess("h:1/0", &of(&[("save", "")])).unwrap();
    assert_eq!(w.message, UNCHECKED);
}

/// The test server's settings are read at the first open, and the warning (if any) given
/// once per store.
#[test]
fn persistence_is_checked_once_per_store() {
    let Some(p) = TestPrefix::new() else {
        return;
    };
    let s = p.store();
    assert!(s.take_warnings().is_empty(), "nothing before it opens");
    s.open().unwrap();
    let first = s.take_warnings();
    assert!(first.len() <= 1, "{first:?}");
    s.close().unwrap();
    s.open().unwrap();
    assert!(s.take_warnings().is_empty(), "once per store");
}

/// A store without keys that opened the prefix before a store with keys sealed it (its
/// mark `sealed v2`): its writes in clear are refused in the scripts, as SQLite's and
/// PostgreSQL's triggers refuse them (ENCRYPTION_MISMATCH), and nothing is written; its
/// revocations still go through; a sealed store's own writes are taken.
#[test]
fn rows_in_clear_are_refused_by_a_sealed_prefix() {
    use crate::store::sealed::Sealed;
    use crate::store::tests::{code_at, token};
    use std::sync::Arc;
    let Some(p) = TestPrefix::new() else {
        return;
    };
    let now = 1_700_000_000_000;
    let clear = Sealed::new(Arc::new(p.store()), None);
    clear.open().unwrap();
    clear
        .store_access_token(&token("before", Some("rb"), Some("u1"), None), now)
        .unwrap();
    clear.delete_token("before").unwrap();

    let keys = crate::store::tests_sealed::keyring(&[("k1", 1)]);
    let sealed = Sealed::new(Arc::new(p.store()), Some(keys));
    sealed.open().unwrap();
    sealed
        .store_access_token(&token("sealed", Some("rs"), Some("u1"), None), now)
        .unwrap();
    let raw = p.store();
    let (mark, _) = raw.seal_mark().unwrap();
    assert!(mark.unwrap_or_default().starts_with("sealed v2 "));

    let refused = |r: crate::error::Result<()>, what: &str| match r {
        Err(e) => assert_eq!(e.code(), "ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH", "{what}: {e}"),
        Ok(()) => panic!("{what}: a row in clear was taken"),
    };
    let keys_now = || {
        let pattern = format!("{}*", p.prefix);
        let reply = raw
            .call(true, |c| c.command(&[b"KEYS", pattern.as_bytes()]))
            .unwrap();
        let mut names: Vec<String> = reply.items().into_iter().filter_map(|r| r.text()).collect();
        names.sort();
        names
    };
    let before = keys_now();
    refused(
        clear.store_access_token(&token("clear", Some("rc"), Some("u2"), None), now),
        "a token",
    );
    refused(
        clear.store_access_tokens(
            &[
                token("clear1", None, Some("u2"), None),
                token("clear2", None, Some("u2"), None),
            ],
            now,
        ),
        "tokens",
    );
    refused(
        clear.store_authorization_code("code-clear", &code_at(now, now + 600_000)),
        "a code",
    );
    refused(
        clear.store_pending_authorization("state-clear", "{\"v\":1}", now + 600_000, now),
        "a pending authorization",
    );
    assert_eq!(keys_now(), before, "nothing written");
    // Revocations are not refused, and the sealed store still writes.
    clear.delete_user_tokens("u2").unwrap();
    sealed
        .store_authorization_code("code-sealed", &code_at(now, now + 600_000))
        .unwrap();
    sealed
        .store_pending_authorization("state-sealed", "{\"v\":1}", now + 600_000, now)
        .unwrap();
    assert!(sealed.get_access_token("sealed", now).unwrap().is_some());
}
