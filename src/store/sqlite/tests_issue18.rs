//! Tests for issue 18: getStats' counters stay exact whichever path a write takes.

use rusqlite::{params, Connection};

use super::connection::Db;
use super::SyncMode;
use crate::model::NewAccessToken;

const NOW: i64 = 1_800_000_000_000;

/// The counters as migration 3 computes them from the rows (rows of 0 left out).
const RECOUNT: &str = "
    SELECT l.level, CAST(a.expires_at AS INTEGER) >> l.bits, 0, COUNT(*)
    FROM access_tokens a, (SELECT 0 AS level, 12 AS bits UNION ALL SELECT 1, 20) l
    WHERE typeof(a.expires_at) IN ('integer', 'real') GROUP BY 1, 2
    UNION ALL
    SELECT l.level, CAST(u.until AS INTEGER) >> l.bits, 1, COUNT(*)
    FROM (SELECT CASE WHEN SUM(typeof(expires_at) NOT IN ('integer', 'real')) > 0
            THEN NULL ELSE MAX(expires_at) END AS until
          FROM access_tokens WHERE COALESCE(user_id, '') <> '' GROUP BY user_id) u,
        (SELECT 0 AS level, 12 AS bits UNION ALL SELECT 1, 20) l
    WHERE u.until IS NOT NULL GROUP BY 1, 2
    UNION ALL SELECT 2, 0, 0, COUNT(*) FROM access_tokens
    UNION ALL SELECT 2, 0, 1, COUNT(DISTINCT user_id) FROM access_tokens
        WHERE COALESCE(user_id, '') <> ''";

type Counts = Vec<(i64, i64, i64, i64)>;

fn counts(c: &Connection, sql: &str) -> Counts {
    let mut rows: Counts = c
        .prepare(sql)
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    rows.retain(|r| r.3 != 0);
    rows.sort_unstable();
    rows
}

/// Random writes, by the store and by another program's connection (INSERT OR REPLACE,
/// DELETE, UPDATE of the user or the expiry), with expiries in the same and in other
/// 4-second and 17-minute buckets, never-expiring (NULL) and text ones, and users with
/// no id: after each, the counters equal a recount of the rows.
#[test]
fn counters_equal_a_recount_after_random_writes_of_both_writers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let db = Db::open(&path, SyncMode::Normal, 1000).unwrap();
    let other = Connection::open(&path).unwrap();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut below = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for step in 0..1500 {
        let token = format!("t{}", below(30));
        let user = ["", "u1", "u2", "u3"][below(4) as usize];
        let expires: rusqlite::types::Value = match below(8) {
            0 => rusqlite::types::Value::Null,
            1 => rusqlite::types::Value::Text("soon".into()),
            2 => rusqlite::types::Value::Real((NOW + below(4) as i64 * 4096) as f64 + 0.5),
            k => rusqlite::types::Value::Integer(
                NOW + below(6) as i64 * if k % 2 == 0 { 4096 } else { 1 << 20 } + below(3000) as i64,
            ),
        };
        match below(6) {
            0 | 1 => {
                let expires_at = match expires {
                    rusqlite::types::Value::Integer(i) => Some(i),
                    _ => None,
                };
                let refresh = (below(2) == 0).then(|| format!("r{}", below(30)));
                db.store_access_token(
                    NewAccessToken {
                        token: token.clone(),
                        refresh_token: refresh,
                        api_key: "k".into(),
                        user_id: Some(user.into()),
                        client_id: "c".into(),
                        scopes: vec![],
                        expires_at,
                    },
                    NOW,
                )
                .unwrap();
            }
            2 => {
                other
                    .execute(
                        "INSERT OR REPLACE INTO access_tokens VALUES (?1, 'k', ?2, 'c', '[]', NULL, ?3, ?4)",
                        params![token, user, expires, NOW],
                    )
                    .unwrap();
            }
            3 => {
                other
                    .execute("DELETE FROM access_tokens WHERE token = ?1", [&token])
                    .unwrap();
            }
            4 => {
                other
                    .execute(
                        "UPDATE access_tokens SET expires_at = ?1 WHERE token = ?2",
                        params![expires, token],
                    )
                    .unwrap();
            }
            _ => {
                other
                    .execute(
                        "UPDATE access_tokens SET user_id = ?1 WHERE token = ?2",
                        params![user, token],
                    )
                    .unwrap();
            }
        }
        assert_eq!(
            counts(&db.conn, "SELECT level, bucket, kind, n FROM nts_counts"),
            counts(&db.conn, RECOUNT),
            "after step {step}"
        );
    }
}
