//! The cache of access tokens read recently (`tracking`), on the server
//! `TOKEN_TEST_REDIS_URL` names: a hot token answered without a round trip, a change by
//! another instance honoured within 50 ms, nothing stale while the feed is down.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::tests::TestPrefix;
use super::*;
use crate::model::NewAccessToken;
use crate::store::TokenStore;

const BOUND: Duration = Duration::from_millis(50);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn token(t: &str, refresh: &str) -> NewAccessToken {
    NewAccessToken {
        token: t.into(),
        api_key: "sk-key".into(),
        user_id: Some("user_1".into()),
        client_id: "client_1".into(),
        scopes: vec!["mcp".into()],
        refresh_token: Some(refresh.into()),
        expires_at: Some(now_ms() + 3_600_000),
        resource: None,
        extra: None,
        links: None,
    }
}

fn reads(s: &RedisStore) -> u64 {
    s.hot.server_reads.load(Ordering::Relaxed)
}

/// Reads `t` until a read is answered from the cache (no read sent to the server), for 5 s
/// at most; whether it was.
fn cached(s: &RedisStore, t: &str) -> bool {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        let before = reads(s);
        assert!(s.get_access_token(t, now_ms()).unwrap().is_some());
        if reads(s) == before {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

/// Reads `t` in a loop until it is gone (or 2 s pass); how long after `from` that was.
fn gone_after(s: &RedisStore, t: &str, from: Instant) -> Option<Duration> {
    while from.elapsed() < Duration::from_secs(2) {
        if s.get_access_token(t, now_ms()).unwrap().is_none() {
            return Some(from.elapsed());
        }
    }
    None
}

#[test]
fn a_hot_token_is_answered_without_a_round_trip() {
    let Some(p) = TestPrefix::new() else { return };
    let s = p.store();
    s.store_access_tokens(&[token("at_hot", "rt_hot")], now_ms())
        .unwrap();
    assert!(cached(&s, "at_hot"), "never answered from the cache");
    let before = reads(&s);
    for _ in 0..1000 {
        let t = s.get_access_token("at_hot", now_ms()).unwrap().unwrap();
        assert_eq!(t.api_key, "sk-key");
    }
    // The pings keep it trusted (a late one on a loaded machine sends a read or two).
    assert!(reads(&s) - before < 50, "{} reads", reads(&s) - before);
    // The Promise API's answer at hand is the cache's.
    assert!(matches!(
        s.get_access_token_at_hand("at_hot", now_ms()),
        Some(Some(_))
    ));
    // An expired token is not served from it.
    assert!(s.get_access_token("at_hot", i64::MAX).unwrap().is_none());
}

#[test]
fn a_change_by_another_instance_is_honoured_within_50_ms() {
    let Some(p) = TestPrefix::new() else { return };
    let (a, b) = (p.store(), p.store());
    for (t, r) in [("at_1", "rt_1"), ("at_2", "rt_2"), ("at_3", "rt_3")] {
        a.store_access_tokens(&[token(t, r)], now_ms()).unwrap();
    }
    // A delete by the other instance.
    assert!(cached(&b, "at_1"));
    let at = Instant::now();
    a.delete_token("at_1").unwrap();
    let seen = gone_after(&b, "at_1", at).expect("B still serves a deleted token");
    assert!(seen < BOUND, "seen after {seen:?}");
    // A family revoked (the other instance's script, several keys).
    assert!(cached(&b, "at_2"));
    let at = Instant::now();
    a.revoke_refresh_token("rt_2").unwrap();
    let seen = gone_after(&b, "at_2", at).expect("B still serves a revoked token");
    assert!(seen < BOUND, "seen after {seen:?}");
    // Any client's write to the key (not this store's scripts).
    assert!(cached(&b, "at_3"));
    let key = a.key("at:", "at_3");
    let at = Instant::now();
    a.call(false, |c| c.command(&[b"DEL", key.as_slice()]))
        .unwrap();
    let seen = gone_after(&b, "at_3", at).expect("B still serves a removed key");
    assert!(seen < BOUND, "seen after {seen:?}");
}

#[test]
fn the_feed_killed_nothing_stale_is_served_and_the_cache_comes_back() {
    let Some(p) = TestPrefix::new() else { return };
    let (a, b) = (p.store(), p.store());
    a.store_access_tokens(&[token("at_k", "rt_k")], now_ms())
        .unwrap();
    assert!(cached(&b, "at_k"));
    let id = b.hot.client_id.load(Ordering::Acquire);
    assert!(id > 0);
    // The feed's connection killed, then the token changed: its invalidation reaches no one.
    let key = a.key("at:", "at_k");
    let id_text = id.to_string();
    a.call(false, |c| {
        c.command(&[b"CLIENT", b"KILL", b"ID", id_text.as_bytes()])
    })
    .unwrap();
    let at = Instant::now();
    a.call(false, |c| {
        c.command(&[b"HSET", key.as_slice(), b"k", b"sk-changed"])
    })
    .unwrap();
    let mut seen = None;
    while at.elapsed() < Duration::from_secs(2) {
        let t = b.get_access_token("at_k", now_ms()).unwrap().unwrap();
        if t.api_key == "sk-changed" {
            seen = Some(at.elapsed());
            break;
        }
    }
    let seen = seen.expect("B served a stale token with its feed down");
    assert!(seen < BOUND, "seen after {seen:?}");
    // A new feed, and the cache answers again.
    let end = Instant::now() + Duration::from_secs(5);
    while b.hot.client_id.load(Ordering::Acquire) == id || b.hot.client_id.load(Ordering::Acquire) == 0 {
        assert!(Instant::now() < end, "no new feed");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(cached(&b, "at_k"), "the cache did not come back");
    // close() ends the feed's connection.
    let id = b.hot.client_id.load(Ordering::Acquire);
    b.close().unwrap();
    let list = a.call(true, |c| c.command(&[b"CLIENT", b"LIST", b"ID", id.to_string().as_bytes()]));
    let list = list.unwrap().text().unwrap_or_default();
    assert!(list.trim().is_empty(), "the feed's connection is still open");
}

/// `close` does not wait for a feed still connecting to a server that does not answer.
#[test]
fn close_does_not_wait_for_a_feed_still_connecting() {
    let s = RedisStore::new(RedisSettings {
        // An address no Redis answers at: connecting, or the login on whatever accepts the
        // connection, waits up to the connect timeout (or fails at once).
        url: "redis://10.255.255.1:6379/0".into(),
        url_name: "TOKEN_REDIS_URL".into(),
        prefix: "nts:".into(),
        connect_timeout: Duration::from_secs(5),
        query_timeout: Duration::from_secs(5),
        pool_size: 1,
    });
    s.ensure_feed();
    std::thread::sleep(Duration::from_millis(50));
    let at = Instant::now();
    s.close().unwrap();
    assert!(at.elapsed() < Duration::from_secs(1), "close took {:?}", at.elapsed());
}
