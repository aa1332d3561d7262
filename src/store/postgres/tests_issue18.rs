//! Issue 18 on PostgreSQL: getStats after a burst of expiries (migration 10, refined
//! buckets). These need the real clock: fine counts are kept and read only near the
//! server's clock (the test server runs on this host).

use std::time::{SystemTime, UNIX_EPOCH};

use super::tests::token;
use super::TestSchema;
use crate::model::NewAccessToken;
use crate::store::TokenStore;

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// xorshift64: the same writes on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The rows of `nts_fine` of 4-second buckets `buckets` (summed over shards) that differ
/// from a count of the tokens' rows by definition (a user's until: their latest expiry,
/// none if one never expires), at both fine levels, for the milliseconds a getStats may
/// still read: those not yet 3 s past by the server's clock (migration 10 leaves the
/// counts of older ones stale).
fn fine_mismatches(schema: &TestSchema, buckets: &[i64]) -> Vec<Vec<i64>> {
    let list = buckets
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    schema.rows(&format!(
        "WITH past AS (SELECT {{s}}.nts_clock_ms() - 3000 AS ms),
         def AS (
             SELECT 0 AS kind, expires_at AS v FROM {{s}}.access_tokens
             WHERE expires_at >> 12 IN ({list})
             UNION ALL
             SELECT 1, until FROM (SELECT max(expires_at) AS until,
                     bool_or(expires_at IS NULL) AS never
                 FROM {{s}}.access_tokens WHERE coalesce(user_id, '') <> ''
                 GROUP BY user_id) u
             WHERE NOT never AND until >> 12 IN ({list})),
         want AS (
             SELECT kind::BIGINT AS kind, 0::BIGINT AS bits, v AS bucket, count(*)::BIGINT AS n
             FROM def, past WHERE v > past.ms GROUP BY 1, 2, 3
             UNION ALL
             SELECT kind, 6, v >> 6, count(*) FROM def, past WHERE (v >> 6) << 6 > past.ms
             GROUP BY 1, 2, 3),
         got AS (
             SELECT kind::BIGINT, bits::BIGINT, bucket, sum(n)::BIGINT
             FROM {{s}}.nts_fine, past
             WHERE (bits = 0 AND bucket >> 12 IN ({list}) AND bucket > past.ms)
                 OR (bits = 6 AND bucket >> 6 IN ({list}) AND bucket << 6 > past.ms)
             GROUP BY 1, 2, 3 HAVING sum(n) <> 0)
         (SELECT 1, * FROM want EXCEPT SELECT 1, * FROM got)
         UNION ALL (SELECT 2, * FROM got EXCEPT SELECT 2, * FROM want)"
    ))
}

/// getStats against the rows themselves at `at`.
fn assert_stats_by_definition(schema: &TestSchema, store: &dyn TokenStore, at: i64) {
    let stats = store.stats(at).expect("stats");
    let want = schema.rows(&format!(
        "SELECT count(*), count(DISTINCT NULLIF(user_id, '')) FROM {{s}}.access_tokens
         WHERE expires_at IS NULL OR expires_at > {at}"
    ));
    assert_eq!(
        vec![stats.total_tokens as i64, stats.unique_users as i64],
        want[0],
        "at {at}"
    );
}

/// Index entries and heap rows of the tokens and users tables that one getStats at `at`
/// reads (after `setup`, in the same transaction, rolled back).
fn rows_read_by_stats(schema: &TestSchema, setup: &str, at: i64) -> i64 {
    let rows = schema.rows(&format!(
        "BEGIN; {setup}; SELECT * FROM {{s}}.nts_stats({at});
         SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(o)), 0)::BIGINT
         FROM (SELECT indexrelid AS o FROM pg_index
               WHERE indrelid IN ('{{s}}.access_tokens'::regclass, '{{s}}.nts_users'::regclass)
               UNION ALL SELECT '{{s}}.access_tokens'::regclass
               UNION ALL SELECT '{{s}}.nts_users'::regclass) r;
         ROLLBACK"
    ));
    rows.last().map(|r| r[0]).unwrap_or(0)
}

#[test]
fn fine_counts_and_stats_stay_exact_under_two_concurrent_writers() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let stores = [schema.store(), schema.store()];
    let now = wall_ms();
    let current = now >> 12;
    // The bucket the clock is in (its past part expires while the test runs, and cleanup
    // removes those), and one a few seconds ahead, both refined with rows in them.
    let ahead = current + 3;
    let buckets = [current, ahead];
    let mut seed = Vec::new();
    for i in 0..200 {
        let b = buckets[i % 2];
        seed.push(token(
            &format!("seed{i}"),
            &format!("u{}", i % 23),
            Some((b << 12) + (i as i64 * 37) % 4096),
        ));
    }
    stores[0].store_access_tokens(&seed, now).expect("seed");
    for b in buckets {
        let done = schema.rows(&format!(
            "SELECT {{s}}.nts_refine({current}, {b}, 1000)::INT"
        ));
        assert_eq!(done, vec![vec![1]], "refined {b}");
    }
    assert_eq!(fine_mismatches(&schema, &buckets), Vec::<Vec<i64>>::new());
    for round in 0..4u64 {
        std::thread::scope(|s| {
            for (w, store) in stores.iter().enumerate() {
                s.spawn(move || {
                    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (round * 2 + w as u64 + 1));
                    for i in 0..150 {
                        let name = format!("t{}", rng.below(120));
                        let user = match rng.below(6) {
                            0 => String::new(),
                            n => format!("u{}", rng.below(23) + n),
                        };
                        let expiry = match rng.below(9) {
                            0 => None,
                            8 => Some(wall_ms() - rng.below(6000) as i64),
                            1 => Some(wall_ms() + 3_600_000),
                            2 => Some(((ahead + 1) << 12) + rng.below(4096) as i64),
                            3 | 4 => Some((current << 12) + rng.below(4096) as i64),
                            _ => Some((ahead << 12) + rng.below(4096) as i64),
                        };
                        let at = wall_ms();
                        let r = match rng.below(10) {
                            0 => store.delete_token(&name),
                            1 if !user.is_empty() => store.delete_user_tokens(&user).map(|_| ()),
                            2 => store.cleanup_expired(at, 20).map(|_| ()),
                            3 => store.store_access_tokens(
                                &[
                                    token(&name, &user, expiry),
                                    token(&format!("{name}b{i}"), &user, expiry.map(|e| e + 1)),
                                ],
                                at,
                            ),
                            _ => store.store_access_token(&token(&name, &user, expiry), at),
                        };
                        r.expect("write");
                    }
                });
            }
        });
        assert_eq!(
            fine_mismatches(&schema, &buckets),
            Vec::<Vec<i64>>::new(),
            "round {round}"
        );
        let now = wall_ms();
        for at in [
            now,
            now - 500,
            now - 2500,
            (ahead << 12),
            (ahead << 12) + 63,
            (ahead << 12) + 64,
            (ahead << 12) + 2047,
            (ahead << 12) + 4095,
        ] {
            assert_stats_by_definition(&schema, &stores[1], at);
        }
    }
}

#[test]
fn stats_after_a_burst_reads_a_bounded_number_of_rows() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store();
    let now = wall_ms();
    // 20,000 tokens of 2,000 users expiring in the next 4-second bucket.
    let bucket = (now >> 12) + 1;
    for slice in 0..20 {
        let batch: Vec<NewAccessToken> = (0..1000)
            .map(|i| {
                let n = slice * 1000 + i;
                token(
                    &format!("b{n}"),
                    &format!("u{}", n % 2000),
                    Some((bucket << 12) + (n * 7 % 4096) as i64),
                )
            })
            .collect();
        store.store_access_tokens(&batch, now).expect("seed");
    }
    let at = (bucket << 12) + 4000;
    if (wall_ms() >> 12) > bucket + 1 {
        eprintln!("seeding took too long for this machine's clock: bounded-work test skipped");
        return;
    }
    // The first getStats refines the bucket (it holds more than 64 tokens), exactly.
    assert_stats_by_definition(&schema, &store, at);
    assert_eq!(schema.rows("SELECT count(*) FROM {s}.nts_refined"), vec![vec![1]]);
    assert_eq!(fine_mismatches(&schema, &[bucket]), Vec::<Vec<i64>>::new());
    // From then on it reads no row of the tokens or the users; with the mark taken away
    // it reads them all (counting them, or refining again).
    let refined = rows_read_by_stats(&schema, "SELECT 1", at);
    let visited = rows_read_by_stats(&schema, "DELETE FROM {s}.nts_refined", at);
    assert!(refined < 100, "refined: {refined} rows read");
    assert!(visited >= 20_000, "unrefined: {visited} rows read");
    assert_stats_by_definition(&schema, &store, at);
}

#[test]
fn cleanup_of_a_burst_past_its_expiry_leaves_the_fine_counts_alone() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store();
    // 3,000 tokens of 300 users expiring within half a second at the start of a bucket
    // listed before they expire (as the automatic cleanup's refine-ahead does), and one
    // token expiring at its end.
    let now = wall_ms();
    let bucket = ((now + 600) >> 12) + 1;
    let base = bucket << 12;
    let burst: Vec<NewAccessToken> = (0..3000)
        .map(|i| {
            token(
                &format!("b{i}"),
                &format!("u{}", i % 300),
                Some(base + (i * 7 % 500) as i64),
            )
        })
        .collect();
    store.store_access_tokens(&burst, now).expect("seed");
    let live = token("live", "u-live", Some(base + 4000));
    store.store_access_token(&live, now).expect("seed");
    let done = schema.rows(&format!(
        "SELECT {{s}}.nts_refine({}, {bucket}, 1000)::INT",
        now >> 12
    ));
    assert_eq!(done, vec![vec![1]]);
    if wall_ms() >= base {
        eprintln!("seeding took too long for this machine's clock: burst cleanup test skipped");
        return;
    }
    let fine = format!(
        "SELECT kind, bits, bucket, sum(n)::BIGINT FROM {{s}}.nts_fine
         WHERE (bits = 0 AND bucket >> 12 = {bucket}) OR (bits = 6 AND bucket >> 6 = {bucket})
         GROUP BY 1, 2, 3 HAVING sum(n) <> 0 ORDER BY 1, 2, 3"
    );
    let before = schema.rows(&fine);
    let tokens: i64 = before
        .iter()
        .filter(|r| r[0] == 0 && r[1] == 0)
        .map(|r| r[3])
        .sum();
    assert_eq!(tokens, 3001, "the tokens counted finely");
    assert_eq!(fine_mismatches(&schema, &[bucket]), Vec::<Vec<i64>>::new());
    // Past the 3 s after the last expiry, still in the bucket: the cleanup deletes the
    // burst (and its users) without touching a fine count, and getStats stays exact.
    let wait = base + 500 + 3000 + 200 - wall_ms();
    std::thread::sleep(std::time::Duration::from_millis(wait.max(0) as u64));
    let at = wall_ms();
    assert_eq!(store.cleanup_expired(at, 100_000).expect("cleanup"), 3000);
    assert_eq!(schema.rows(&fine), before, "the burst's fine counts");
    assert_stats_by_definition(&schema, &store, wall_ms());
    // A deletion of a row still live in the listed bucket is counted.
    store.delete_token("live").expect("delete");
    assert_eq!(fine_mismatches(&schema, &[bucket]), Vec::<Vec<i64>>::new());
    assert_stats_by_definition(&schema, &store, wall_ms());
    assert_eq!(
        schema.rows(&format!("SELECT count(*) FROM {{s}}.nts_refined WHERE bucket = {bucket}")),
        vec![vec![1]]
    );
}

/// Migration 13 (storeAccessToken's short path in one statement, the hot fine-count
/// triggers without `WHEN`): a schema at migration 12 with tokens migrates, and stores of
/// every shape the short path takes (a new user, a user moved forward or not, one that
/// never expires, none, a refresh string of a family left behind) keep the counts and the
/// fine counts of a refined bucket exact.
#[test]
fn a_schema_at_migration_12_keeps_its_counts_exact_through_the_short_path() {
    use super::schema::MIGRATIONS;
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let mut sql = super::tests::migrated_to(12);
    let now = wall_ms();
    let ahead = (now >> 12) + 3;
    for i in 0..40 {
        let e = (ahead << 12) + i * 97 % 4096;
        sql.push_str(&format!(
            "SELECT {{s}}.nts_store_access_tokens(ARRAY['seed{i}'], ARRAY['sk'],
                ARRAY['u{}'], ARRAY['c'], ARRAY['[]'], ARRAY['r-seed{i}'], ARRAY[{e}::int8],
                {now});",
            i % 7
        ));
    }
    // A family row left for a refresh string no longer stored.
    sql.push_str("INSERT INTO {s}.nts_refresh_families (refresh_token, family)
        VALUES ('r-left', 'gone');");
    schema.execute(&sql);
    let store = schema.store();
    assert_eq!(
        schema.rows(&format!("SELECT {{s}}.nts_refine({}, {ahead}, 1000)::INT", now >> 12)),
        vec![vec![1]]
    );
    let base = ahead << 12;
    let mut stores = vec![
        token("new-user", "fresh", Some(base + 5)),
        token("forward", "u1", Some(base + 4090)),
        token("behind", "u2", Some(base + 1)),
        token("never", "u3", None),
        token("after-never", "u3", Some(base + 4000)),
        token("no-user", "", Some(base + 17)),
        token("far", "u4", Some(now + 3_600_000)),
        token("left", "u5", Some(base + 700)),
    ];
    stores[7].refresh_token = Some("r-left".into());
    for t in &stores {
        store.store_access_token(t, wall_ms()).expect("store");
    }
    assert_eq!(
        schema.rows("SELECT count(*) FROM {s}.nts_refresh_families WHERE refresh_token = 'r-left'"),
        vec![vec![0]]
    );
    assert_eq!(fine_mismatches(&schema, &[ahead]), Vec::<Vec<i64>>::new());
    for at in [wall_ms(), base, base + 3, base + 700, base + 4089, base + 4095, now + 4_000_000] {
        assert_stats_by_definition(&schema, &store, at);
    }
    assert_eq!(
        schema.rows("SELECT max(version) FROM {s}.nts_migrations"),
        [[MIGRATIONS.len() as i64]]
    );
}

/// getStats is planned once per connection (migration 14): it calls no function written in
/// SQL (which the server parses and plans again in every statement that calls it; 0.3 to
/// 0.5 ms a getStats through migration 10's `nts_sum`), and its statements keep one
/// generic plan for any `at_ms`. Its counts stay those of the rows, before and after the
/// plan is made, on either side of the current bucket.
#[test]
fn stats_call_no_function_planned_again_at_every_call() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store();
    let now = wall_ms();
    let tokens: Vec<NewAccessToken> = (0..40)
        .map(|i| token(&format!("t{i}"), &format!("u{}", i % 7), Some(now + 500 * i as i64)))
        .collect();
    store.store_access_tokens(&tokens, now).expect("seed");
    let sql_calls = schema.rows(&format!(
        "BEGIN; SET LOCAL track_functions = 'all';
         SELECT * FROM {{s}}.nts_stats({now}); SELECT * FROM {{s}}.nts_stats({now});
         SELECT coalesce(sum(pg_stat_get_xact_function_calls(p.oid)), 0)::BIGINT
         FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
         WHERE p.pronamespace = '{{s}}'::regnamespace AND l.lanname = 'sql';
         ROLLBACK"
    ));
    assert_eq!(sql_calls.last(), Some(&vec![0]), "calls of functions in SQL");
    assert_eq!(
        schema.rows(
            "SELECT count(*) FROM pg_proc WHERE oid = '{s}.nts_stats'::regproc
             AND 'plan_cache_mode=force_generic_plan' = ANY (proconfig)"
        ),
        vec![vec![1]]
    );
    for at in (0..8).flat_map(|i| [now + 2_500 * i, now - 60_000 + 9_000 * i]) {
        assert_stats_by_definition(&schema, &store, at);
    }
}
