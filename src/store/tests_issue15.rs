//! getStats after a burst of tokens expiring at the same moment (issue 15, defect 9): the
//! counts the memory store keeps without visiting the expired tokens, checked against a
//! count of every token, on the memory store and a SQLite file.

use std::collections::{HashMap, HashSet};

use super::*;
use crate::model::{NewAccessToken, Stats};

const NOW: i64 = 1_800_000_000_000;

fn token(i: usize, user: usize, expires_at: Option<i64>) -> NewAccessToken {
    NewAccessToken {
        resource: None,
        extra: None,
        links: None,
        token: format!("t{i}"),
        refresh_token: None,
        api_key: "sk".into(),
        user_id: Some(format!("u{user}")),
        client_id: "c".into(),
        scopes: vec![],
        expires_at,
    }
}

/// Live tokens and their distinct users, by looking at every token.
fn counted(tokens: &HashMap<String, NewAccessToken>, now: i64) -> Stats {
    let live: Vec<_> = tokens
        .values()
        .filter(|t| t.expires_at.is_none_or(|at| at > now))
        .collect();
    let users: HashSet<_> = live.iter().filter_map(|t| t.user_id.clone()).collect();
    Stats {
        total_tokens: live.len() as u64,
        unique_users: users.len() as u64,
    }
}

fn burst(store: &dyn TokenStore) {
    let mut kept = HashMap::new();
    let mut batch = Vec::new();
    // 20,000 tokens of 2,000 users expiring within 50 ms (400 at each millisecond), a
    // few earlier, later and never, then some replaced and deleted.
    for i in 0..20_000 {
        let at = match i % 100 {
            0 => NOW - 5_000 - i as i64,
            1 => NOW + 3_600_000,
            2 => i64::MAX,
            _ => NOW + (i % 50) as i64,
        };
        let at = (at != i64::MAX).then_some(at);
        batch.push(token(i, i % 2_000, at));
    }
    store.store_access_tokens(&batch, NOW - 60_000).unwrap();
    for t in batch {
        kept.insert(t.token.clone(), t);
    }
    for i in (0..20_000).step_by(7) {
        store.delete_token(&format!("t{i}")).unwrap();
        kept.remove(&format!("t{i}"));
    }
    for i in (3..20_000).step_by(11) {
        let t = token(i, (i * 3) % 2_500, Some(NOW + 20 + (i % 7) as i64));
        store
            .store_access_tokens(std::slice::from_ref(&t), NOW - 60_000)
            .unwrap();
        kept.insert(t.token.clone(), t);
    }
    for now in [
        NOW - 6_000,
        NOW - 1,
        NOW,
        NOW + 1,
        NOW + 10,
        NOW + 25,
        NOW + 49,
        NOW + 50,
        NOW + 300,
        NOW + 20_000,
        NOW + 7_200_000,
    ] {
        assert_eq!(
            store.stats(now).unwrap(),
            counted(&kept, now),
            "at NOW{:+}",
            now - NOW
        );
    }
}

#[test]
fn stats_after_a_burst_count_right_on_memory() {
    burst(&MemoryStore::new());
}

#[test]
fn stats_after_a_burst_count_right_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    burst(&SqliteStore::new(
        dir.path().join("tokens.db"),
        SyncMode::Normal,
        1000,
    ));
}
