//! The PostgreSQL store's test fixture, and its tests that the shared suite does not
//! cover. The connection-string tests need no server (`url`); these need the server that
//! `TOKEN_TEST_DATABASE_URL` names (`npm test` starts a throwaway cluster).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
use crate::model::{NewAccessToken, RotateRequest, Rotation};
use crate::store::snapshot::RowStore;
use crate::store::TokenStore;
use tokio_postgres::types::Type;

/// The test stores' timeouts and pool: values for the tests (the package's defaults are
/// `lib/defaults.js`'s, which the store never sees as such).
const TEST_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const TEST_QUERY_TIMEOUT: Duration = Duration::from_secs(5);
const TEST_POOL_SIZE: usize = 4;

/// A fresh schema on the test server, dropped with the fixture.
pub struct TestSchema {
    url: String,
    name: String,
}

impl TestSchema {
    /// `None` when no test server is configured outside CI (said once); in CI that fails.
    pub fn new() -> Option<TestSchema> {
        let url = match std::env::var("TOKEN_TEST_DATABASE_URL") {
            Ok(u) if !u.trim().is_empty() => u,
            _ => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI runs the PostgreSQL suites: TOKEN_TEST_DATABASE_URL is not set (npm test sets it)"
                );
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| {
                    eprintln!(
                        "PostgreSQL store tests skipped: set TOKEN_TEST_DATABASE_URL to a server \
                         you run (or run npm test, which starts one)"
                    )
                });
                return None;
            }
        };
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "nts_rs_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Some(TestSchema { url, name })
    }

    pub fn settings(&self) -> PostgresSettings {
        PostgresSettings {
            url: self.url.clone(),
            url_name: "TOKEN_TEST_DATABASE_URL".into(),
            schema: self.name.clone(),
            connect_timeout: TEST_CONNECT_TIMEOUT,
            query_timeout: TEST_QUERY_TIMEOUT,
            pool_size: TEST_POOL_SIZE,
        }
    }

    pub fn store(&self) -> PostgresStore {
        PostgresStore::new(self.settings())
    }

    /// A store that does not touch the schema when it connects (to run SQL of the test's).
    fn raw(&self) -> PostgresStore {
        let store = self.store();
        store.migrated.store(true, Ordering::Release);
        store
    }

    /// Runs SQL (with `{s}` for the schema) on a connection of its own.
    pub fn execute(&self, sql: &str) {
        let store = self.raw();
        let sql = sql.replace("{s}", &quote(&self.name));
        store
            .call(false, async |c, _| Ok(c.batch_execute(&sql).await?))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

impl TestSchema {
    /// Runs SQL (with `{s}` for the schema; several statements allowed) on a connection of
    /// its own, and answers the rows of its statements, each column read as an integer
    /// (0 for NULL).
    pub fn rows(&self, sql: &str) -> Vec<Vec<i64>> {
        let store = self.raw();
        let sql = sql.replace("{s}", &quote(&self.name));
        store
            .call(false, async |c, _| {
                let mut out = Vec::new();
                for m in c.simple_query(&sql).await? {
                    if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                        out.push(
                            (0..r.len())
                                .map(|i| r.get(i).and_then(|v| v.parse().ok()).unwrap_or(0))
                                .collect(),
                        );
                    }
                }
                Ok(out)
            })
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Ends a server process (`pg_terminate_backend` only signals it) and waits until it
    /// is gone, so that its socket is closed by the time this returns, whatever the load.
    /// From a connection on a runtime of its own: the store's I/O thread is not run
    /// meanwhile, so its connection to that process is not seen closed here.
    pub fn end_backend(&self, pid: i32) {
        let store = self.raw();
        let target = store.target().expect("the test server's URL");
        let rt = super::runtime::build().expect("a runtime");
        rt.block_on(async {
            let (client, connection) = target
                .config
                .connect(target.tls.clone())
                .await
                .expect("a connection");
            let driven = tokio::spawn(connection);
            client
                .execute("SELECT pg_terminate_backend($1)", &[&pid])
                .await
                .expect("pg_terminate_backend");
            let started = std::time::Instant::now();
            let gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1";
            while client
                .query_one(gone, &[&pid])
                .await
                .and_then(|r| r.try_get::<_, i64>(0))
                .expect("pg_stat_activity")
                != 0
            {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "backend {pid} still there after 10 s"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            drop(client);
            let _ = driven.await;
        });
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let store = self.raw();
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", quote(&self.name));
        let _ = store.call(false, async |c, _| Ok(c.batch_execute(&sql).await?));
    }
}

/// SQL (with `{s}`) that makes the schema as the first `n` migrations leave it, recorded as
/// applied: an existing schema of an older version, for a test of the next migration.
pub(super) fn migrated_to(n: usize) -> String {
    let mut sql = String::from(
        "CREATE SCHEMA {s};
         CREATE TABLE {s}.nts_migrations (version INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now());",
    );
    for (i, m) in schema::MIGRATIONS[..n].iter().enumerate() {
        sql.push_str(m);
        sql.push_str(&format!(
            ";\nINSERT INTO {{s}}.nts_migrations (version) VALUES ({});\n",
            i + 1
        ));
    }
    sql
}

pub(super) fn token(t: &str, user: &str, expires_at: Option<i64>) -> NewAccessToken {
    NewAccessToken {
        resource: None,
        extra: None,
        links: None,
        token: t.into(),
        refresh_token: Some(format!("r-{t}")),
        api_key: "sk-test".into(),
        user_id: Some(user.into()),
        client_id: "c".into(),
        scopes: vec![],
        expires_at,
    }
}

const NOW: i64 = 1_800_000_000_000;

/// One schema reached twice names itself the same, another schema of the same server
/// differently, and asking creates nothing (the command line's same-store check).
#[test]
fn a_store_names_itself_by_the_server_and_schema_not_the_url() {
    let (Some(a), Some(b)) = (TestSchema::new(), TestSchema::new()) else {
        return;
    };
    let id = |s: &PostgresStore| s.identity().expect("identity").expect("known");
    let first = id(&a.store());
    assert_eq!(first, id(&a.store()));
    assert_ne!(first, id(&b.store()));
    assert!(first.ends_with(&a.name), "{first}");
    assert!(!a.store().exists().expect("exists"), "asking created the schema");
}

#[test]
fn ten_stores_starting_at_once_migrate_once() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let stores: Vec<PostgresStore> = (0..10).map(|_| schema.store()).collect();
    std::thread::scope(|s| {
        for store in &stores {
            s.spawn(|| store.open().expect("open"));
        }
    });
    let versions = schema.raw().call(true, async |c, _| {
        let sql = format!(
            "SELECT count(*) FROM {}.nts_migrations",
            quote(&schema.name)
        );
        Ok(c.query_typed_one(&sql, &[]).await?.try_get::<_, i64>(0)?)
    });
    assert_eq!(versions.expect("count"), schema::MIGRATIONS.len() as i64);
}

#[test]
fn connections_the_server_ended_are_replaced_before_a_read_or_a_write() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    // Every connection of this schema's store is ended by the server.
    let (store, first) = kept_connection(&schema);
    schema.end_backend(first);
    std::thread::sleep(Duration::from_millis(100));
    // A read on the dead connection is tried again on a new one, transparently.
    assert!(store.get_access_token("a", NOW).expect("read").is_some());
    let pid = backend_pid(&store);
    assert_ne!(pid, first);
    schema.end_backend(pid);
    std::thread::sleep(Duration::from_millis(100));
    // A connection the server closed while it sat idle is seen closed before a write is
    // sent on it: the write goes to a new connection.
    store
        .store_access_token(&token("b", "u", None), NOW)
        .expect("a write after the server closed the idle connection");
    assert!(store.get_access_token("a", NOW).expect("read").is_some());
}

/// A store that stored token "a" and keeps the one connection it used, and the server
/// process of that connection.
fn kept_connection(schema: &TestSchema) -> (PostgresStore, i32) {
    let store = schema.store();
    store
        .store_access_token(&token("a", "u", None), NOW)
        .expect("store");
    let pid = backend_pid(&store);
    (store, pid)
}

/// The server process of a store's one kept connection.
fn backend_pid(store: &PostgresStore) -> i32 {
    store
        .call(true, async |c, _| {
            Ok(c.query_typed_one("SELECT pg_backend_pid()", &[])
                .await?
                .try_get::<_, i32>(0)?)
        })
        .expect("pid")
}

/// A write made while another thread runs the shared I/O thread (a call of the Promise API
/// on libuv's pool, a cleanup) still sees that the server closed its idle connection before
/// sending the write on it: what the server sent meanwhile is read first, whichever thread
/// runs the runtime (it failed with "the connection was closed" when the thread that held
/// the runtime had not read its I/O since).
#[test]
fn a_write_beside_another_threads_call_sees_a_connection_the_server_closed() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let (store, pid) = kept_connection(&schema);
    let io = super::runtime::runtime().expect("the I/O thread");
    let holding = std::sync::Barrier::new(2);
    let ended = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        let other = s.spawn(|| {
            io.block_on(async {
                holding.wait();
                // Busy on the runtime without reading its I/O, as a call may be, until
                // the write below has been begun (briefly: other tests share the runtime).
                ended.wait();
                std::thread::sleep(Duration::from_millis(100));
            })
        });
        holding.wait();
        schema.end_backend(pid);
        std::thread::sleep(Duration::from_millis(20));
        ended.wait();
        store
            .store_access_token(&token("b", "u", None), NOW)
            .expect("a write beside another thread's call");
        other.join().expect("the other thread");
    });
    assert!(store.get_access_token("b", NOW).expect("read").is_some());
    assert_ne!(backend_pid(&store), pid);
}

#[test]
fn an_unreachable_server_is_unavailable_within_the_connect_timeout() {
    let store = PostgresStore::new(PostgresSettings {
        // A port nothing listens on, and an address that drops packets.
        url: "postgres://u:hunter2@127.0.0.1:1/d?sslmode=disable".into(),
        url_name: "TOKEN_DATABASE_URL".into(),
        schema: "public".into(),
        connect_timeout: Duration::from_millis(300),
        query_timeout: Duration::from_millis(500),
        pool_size: 1,
    });
    let e = store.stats(NOW).expect_err("no server");
    assert_eq!(e.code(), "ERR_TOKEN_STORAGE_UNAVAILABLE", "{e}");
    assert!(e.to_string().contains("127.0.0.1:1/d"), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let started = std::time::Instant::now();
    let store = PostgresStore::new(PostgresSettings {
        url: "postgres://u:hunter2@10.255.255.1:5432/d?sslmode=disable".into(),
        url_name: "TOKEN_DATABASE_URL".into(),
        schema: "public".into(),
        connect_timeout: Duration::from_millis(300),
        query_timeout: Duration::from_millis(2000),
        pool_size: 1,
    });
    let e = store.stats(NOW).expect_err("no server");
    assert_eq!(e.code(), "ERR_TOKEN_STORAGE_UNAVAILABLE", "{e}");
    assert!(started.elapsed() < Duration::from_millis(1900), "{e}");
}

#[test]
fn tables_the_store_did_not_create_are_refused() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    schema.execute("CREATE SCHEMA {s}; CREATE TABLE {s}.access_tokens (token TEXT)");
    let e = schema.store().stats(NOW).expect_err("foreign table");
    assert_eq!(e.code(), "ERR_TOKEN_STORAGE_OPEN", "{e}");
    assert!(e.to_string().contains("did not create"), "{e}");
}

#[test]
fn a_newer_schema_is_refused() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    schema.store().open().expect("open");
    schema.execute("INSERT INTO {s}.nts_migrations (version) VALUES (99)");
    let e = schema.store().stats(NOW).expect_err("newer");
    assert!(
        e.to_string().contains("upgrade native-token-storage"),
        "{e}"
    );
}

#[test]
fn counters_fold_into_one_row_per_past_bucket() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store();
    // Tokens stored and deleted on different connections land in different shards.
    let other = schema.store();
    for i in 0..20 {
        store
            .store_access_token(&token(&format!("t{i}"), "u", Some(NOW + 10)), NOW)
            .expect("store");
    }
    for i in 0..10 {
        other.delete_token(&format!("t{i}")).expect("delete");
    }
    let later = NOW + 3_000_000;
    assert_eq!(store.cleanup_expired(later, 100).expect("cleanup"), 10);
    let rows = store
        .call(true, async |c, _| {
            let sql = format!(
                "SELECT count(*) FROM {}.nts_counts WHERE level < 2",
                quote(&schema.name)
            );
            Ok(c.query_typed_one(&sql, &[]).await?.try_get::<_, i64>(0)?)
        })
        .expect("count");
    assert_eq!(rows, 0, "past buckets at 0 are dropped");
    assert_eq!(store.stats(later).expect("stats").total_tokens, 0);
}

/// The fold's lock is the schema's: while a fold of another schema on the same server holds
/// its lock (a transaction left open), this schema's cleanup still folds. (The lock was one
/// for the whole server: a cleanup of any other schema at the same moment made this one
/// skip its fold, which failed `counters_fold_into_one_row_per_past_bucket` in a parallel
/// test run.)
#[test]
fn a_fold_in_another_schema_does_not_stop_this_ones() {
    let (Some(schema), Some(other)) = (TestSchema::new(), TestSchema::new()) else {
        return;
    };
    let store = schema.store();
    let writer = schema.store();
    for i in 0..6 {
        store
            .store_access_token(&token(&format!("t{i}"), "u", Some(NOW + 10)), NOW)
            .expect("store");
    }
    writer.delete_token("t0").expect("delete");
    let lock = sql::folding(&quote(&other.name));
    while_held(&other, &format!("SELECT {lock}"), Duration::from_secs(1), || {
        // Held: no other session takes it meanwhile.
        assert_eq!(
            other.rows(&format!("SELECT ({lock})::int")),
            vec![vec![0]],
            "the other schema's fold lock held"
        );
        let later = NOW + 3_000_000;
        assert_eq!(store.cleanup_expired(later, 100).expect("cleanup"), 5);
        let left = schema.rows("SELECT count(*) FROM {s}.nts_counts WHERE level < 2");
        assert_eq!(left, vec![vec![0]], "past buckets at 0 are dropped");
    });
}

#[test]
fn writers_in_another_schema_do_not_take_this_ones_shards() {
    let (Some(schema), Some(other)) = (TestSchema::new(), TestSchema::new()) else {
        return;
    };
    let store = schema.store();
    for s in [&store, &other.store()] {
        s.store_access_token(&token("first", "u", Some(NOW + 10)), NOW)
            .expect("store");
    }
    // Sixteen transactions of the other schema's, each holding the shard its insert's
    // counting claimed: all sixteen of its shards.
    let table = format!("{}.access_tokens", quote(&other.name));
    let take = |i: usize| {
        format!(
            "INSERT INTO {table} (token, api_key, user_id, client_id, scopes, expires_at,
                 created_at) VALUES ('held{i}', 'k', 'u{i}', 'c', '[]', {}, {NOW})",
            NOW + 10
        )
    };
    let write = Box::new(|| {
        store
            .store_access_token(&token("second", "v", Some(NOW + 10)), NOW)
            .expect("store");
    });
    while_all_held(&other, 16, &take, Duration::from_secs(4), write);
    assert_eq!(
        schema.rows("SELECT count(*) FROM {s}.nts_counts WHERE shard > 16"),
        vec![vec![0]],
        "this schema's writer took one of its own 16 shards"
    );
    assert_eq!(store.stats(NOW).expect("stats").total_tokens, 2);
}

/// Runs `f` while `sessions` sessions on `schema`'s server each hold what `take(i)` takes
/// (`while_held`, nested).
fn while_all_held(
    schema: &TestSchema,
    sessions: usize,
    take: &dyn Fn(usize) -> String,
    hold: Duration,
    f: Box<dyn FnOnce() + '_>,
) {
    if sessions == 0 {
        return f();
    }
    while_held(schema, &take(sessions), hold, move || {
        while_all_held(schema, sessions - 1, take, hold, f)
    });
}

/// Runs `f` while another session holds the row of access token `token` `FOR UPDATE`, for
/// `hold` after the lock is taken (then rolls back).
fn with_row_locked(schema: &TestSchema, token: &str, hold: Duration, f: impl FnOnce()) {
    let table = format!("{}.access_tokens", quote(&schema.name));
    let take = format!("SELECT 1 FROM {table} WHERE token = '{token}' FOR UPDATE");
    while_held(schema, &take, hold, f);
}

/// Runs `f` while another session on `schema`'s server holds what `take` takes (SQL run in
/// a transaction left open), for `hold` after it is taken (then rolls back).
fn while_held(schema: &TestSchema, take: &str, hold: Duration, f: impl FnOnce()) {
    let holder = schema.raw();
    let (locked, is_locked) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let r = holder.call(false, async |c, _| {
                c.batch_execute(&format!("BEGIN; {take}")).await?;
                let _ = locked.send(());
                tokio::time::sleep(hold).await;
                c.batch_execute("ROLLBACK").await?;
                Ok(())
            });
            r.expect("the lock holder");
        });
        is_locked.recv().expect("locked");
        f();
    });
}

#[test]
fn a_read_of_an_expired_token_does_not_wait_for_another_session_holding_its_row() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = PostgresStore::new(PostgresSettings {
        query_timeout: Duration::from_secs(2),
        ..schema.settings()
    });
    store
        .store_access_token(&token("locked", "u", Some(NOW + 10)), NOW)
        .expect("store");
    with_row_locked(&schema, "locked", Duration::from_millis(2500), || {
        let later = NOW + 1_000;
        let started = std::time::Instant::now();
        assert!(store
            .get_access_token("locked", later)
            .expect("read")
            .is_none());
        assert!(store
            .get_refresh_token("r-locked", later)
            .expect("read")
            .is_none());
        let took = started.elapsed();
        assert!(took < Duration::from_millis(500), "the reads took {took:?}");
    });
    // Once the lock is gone the row is left for a later read or cleanup to remove.
    assert!(store
        .get_access_token("locked", NOW + 1_000)
        .expect("read")
        .is_none());
    assert_eq!(store.cleanup_expired(NOW + 1_000, 100).expect("cleanup"), 0);
}

#[test]
fn a_statement_timeout_of_the_server_is_not_reported_as_the_query_timeout() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    schema.store().open().expect("open");
    let base = schema.settings();
    // The server's own limit (as ALTER ROLE … SET statement_timeout sets it), far below
    // this store's queryTimeout.
    let url = if base.url.contains("://") {
        let sep = if base.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-c%20statement_timeout%3D200", base.url)
    } else {
        format!("{} options='-c statement_timeout=200'", base.url)
    };
    let store = PostgresStore::new(PostgresSettings { url, ..base });
    store
        .store_access_token(&token("held", "u", None), NOW)
        .expect("store");
    with_row_locked(&schema, "held", Duration::from_millis(1500), || {
        let e = store
            .delete_token("held")
            .expect_err("cancelled by the server");
        let text = e.to_string();
        assert_eq!(e.code(), "ERR_TOKEN_STORAGE_POSTGRES", "{text}");
        assert!(text.contains("statement_timeout"), "{text}");
        assert!(!text.contains("query timeout"), "{text}");
    });
}

/// Reads until the change feed's ping came back (named statements are used from then on).
fn until_session_proved(store: &PostgresStore) {
    let start = std::time::Instant::now();
    while !store.cache.session_proved() {
        assert!(start.elapsed() < Duration::from_secs(5), "no ping came back");
        // A token never stored: a miss is not cached.
        let _ = store.get_access_token("none", NOW);
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn prepared_here(store: &PostgresStore) -> i64 {
    store
        .call(true, async |c, _| {
            let sql = "SELECT count(*) FROM pg_prepared_statements";
            Ok(c.query_typed_one(sql, &[]).await?.try_get::<_, i64>(0)?)
        })
        .expect("count")
}

/// A store whose calls all go through one connection (what `prepared_here` sees).
fn store_of_one_connection(schema: &TestSchema) -> PostgresStore {
    PostgresStore::new(PostgresSettings {
        pool_size: 1,
        ..schema.settings()
    })
}

#[test]
fn a_prepared_statement_whose_plan_changed_or_that_the_server_forgot_is_sent_again() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = store_of_one_connection(&schema);
    // A token for each read: a token read before may be answered by the cache.
    for t in ["a", "c", "d"] {
        store
            .store_access_token(&token(t, "u", None), NOW)
            .expect("store");
    }
    until_session_proved(&store);
    assert!(store.get_access_token("a", NOW).expect("read").is_some());
    assert!(prepared_here(&store) >= 1, "the read was prepared");
    // A migration changes what the prepared read returns: the server refuses the old
    // plan ("cached plan must not change result type"), and the read is prepared again.
    schema.execute("ALTER TABLE {s}.access_tokens ALTER COLUMN api_key TYPE VARCHAR");
    let got = store.get_access_token("c", NOW).expect("read after the change");
    assert_eq!(got.map(|t| t.api_key).as_deref(), Some("sk-test"));
    assert!(store.named.load(Ordering::Acquire));
    // The server forgets them (as behind a transaction-mode pooler, where the next call
    // reaches another server connection): the read is sent unnamed, and so is every
    // statement from then on.
    store
        .call(false, async |c, _| Ok(c.batch_execute("DEALLOCATE ALL").await?))
        .expect("deallocate");
    assert!(store.get_access_token("d", NOW).expect("read").is_some());
    assert!(!store.named.load(Ordering::Acquire));
    store
        .store_access_token(&token("b", "u", None), NOW)
        .expect("store");
    assert_eq!(prepared_here(&store), 0);
}

#[test]
fn a_url_that_names_a_transaction_pooler_gets_no_prepared_statements() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let mut settings = schema.settings();
    let sep = if settings.url.contains('?') { '&' } else { '?' };
    settings.url = format!("{}{sep}pgbouncer=true", settings.url);
    let store = PostgresStore::new(settings);
    store
        .store_access_token(&token("a", "u", None), NOW)
        .expect("store");
    until_session_proved(&store);
    assert!(store.get_access_token("a", NOW).expect("read").is_some());
    assert_eq!(prepared_here(&store), 0);
}

#[test]
fn a_store_that_only_writes_proves_its_session_and_names_its_statements() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = store_of_one_connection(&schema);
    let store_one = |t: &str| {
        store
            .store_access_token(&token(t, "u", None), NOW)
            .expect("store")
    };
    // A few writes (a command, a short script): no listener, no connection beyond the call's.
    for i in 0..8 {
        store_one(&format!("short{i}"));
    }
    assert!(store.listener.lock().expect("lock").is_none());
    assert_eq!(prepared_here(&store), 0);
    // An import, begun after the cache's first moments of use (no ping is due for reads):
    // no read ever, yet once its listener's first ping came back its statements are named.
    std::thread::sleep(crate::store::cache::IN_USE + Duration::from_millis(100));
    for i in 0..call::PROVE_AFTER {
        store_one(&format!("import{i}"));
    }
    let start = std::time::Instant::now();
    while !store.cache.session_proved() {
        assert!(start.elapsed() < Duration::from_secs(5), "no ping came back");
        std::thread::sleep(Duration::from_millis(5));
    }
    store_one("named");
    assert!(prepared_here(&store) >= 1, "the store's statement was prepared");
}

/// getStats against the rows themselves, at several moments.
fn stats_match_the_rows(schema: &TestSchema, store: &PostgresStore, at: &[i64]) {
    for &now in at {
        let stats = store.stats(now).expect("stats");
        let sql = format!(
            "SELECT count(*), count(DISTINCT NULLIF(user_id, '')) FROM {}.access_tokens
             WHERE expires_at IS NULL OR expires_at > $1",
            quote(&schema.name)
        );
        let (tokens, users) = store
            .call(true, async |c, _| {
                let r = c.query_typed_one(&sql, &[(&now, Type::INT8)]).await?;
                Ok((r.try_get::<_, i64>(0)?, r.try_get::<_, i64>(1)?))
            })
            .expect("count");
        assert_eq!(
            (stats.total_tokens as i64, stats.unique_users as i64),
            (tokens, users),
            "at {now}"
        );
    }
}

/// A minute, in ms.
const MIN: i64 = 60_000;

#[test]
fn one_token_stores_keep_the_counts_exact_on_each_path() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store();
    let at = [NOW, NOW + 5 * MIN, NOW + 15 * MIN, NOW + 25 * MIN, NOW + 90 * MIN];
    let steps: Vec<NewAccessToken> = vec![
        // A new user; the same user's until moved forward, by a little and by a lot.
        token("t1", "u1", Some(NOW + 10 * MIN)),
        token("t2", "u1", Some(NOW + 10 * MIN + 1)),
        token("t3", "u1", Some(NOW + 60 * MIN)),
        // A token expiring before the user's until: the user's row is only locked.
        token("t4", "u1", Some(NOW + 20 * MIN)),
        // Never expires: the user too; then a token with an expiry changes nothing.
        token("t5", "u2", Some(NOW + 20 * MIN)),
        token("t6", "u2", None),
        token("t7", "u2", Some(NOW + 30 * MIN)),
        // No user; no refresh token.
        token("t8", "", Some(NOW + 20 * MIN)),
        NewAccessToken {
            links: None,
            refresh_token: None,
            ..token("t9", "u3", Some(NOW + 20 * MIN))
        },
        // A token stored again (another user, an earlier expiry), and a refresh string
        // given again: the general function's path.
        token("t3", "u3", Some(NOW + 20 * MIN)),
        NewAccessToken {
            links: None,
            refresh_token: Some("r-t1".into()),
            ..token("t10", "u4", Some(NOW + 40 * MIN))
        },
    ];
    for t in &steps {
        store.store_access_token(t, NOW).expect("store");
        stats_match_the_rows(&schema, &store, &at);
    }
}

/// When the tests of rows changed by hand compare getStats with the rows.
const HAND_AT: [i64; 4] = [NOW, NOW + 15 * MIN, NOW + 45 * MIN, NOW + 90 * MIN];

/// A store in a fresh schema holding `rows` (token, user, expiry in minutes after `NOW`;
/// `None`: never), its counts checked; `None` without a test server.
fn changed_by_hand(rows: &[(&str, &str, Option<i64>)]) -> Option<(TestSchema, PostgresStore)> {
    let schema = TestSchema::new()?;
    let store = schema.store();
    for &(t, user, expires) in rows {
        let expires_at = expires.map(|m| NOW + m * MIN);
        store
            .store_access_token(&token(t, user, expires_at), NOW)
            .expect("store");
    }
    stats_match_the_rows(&schema, &store, &HAND_AT);
    Some((schema, store))
}

/// Rows a person deletes by hand (any statement, not the package's) keep getStats exact,
/// as the package's own deletes do: the counts follow every `DELETE` (docs/postgresql.md,
/// "Rows deleted by hand"; `TRUNCATE` is the documented exception).
#[test]
fn rows_deleted_by_hand_keep_the_counts_exact() {
    let Some((schema, store)) = changed_by_hand(&[
        ("t1", "u1", Some(10)),
        ("t2", "u1", Some(60)),
        ("t3", "u2", Some(20)),
        ("t4", "u2", None),
        ("t5", "u3", Some(30)),
    ]) else {
        return;
    };
    for statement in [
        // The user's latest token: the user's until moves back to their other one.
        "DELETE FROM {s}.access_tokens WHERE token = 't2'",
        // A user's token that never expires, then all of another user's.
        "DELETE FROM {s}.access_tokens WHERE token = 't4'",
        "DELETE FROM {s}.access_tokens WHERE user_id = 'u3'",
        // Everything.
        "DELETE FROM {s}.access_tokens",
    ] {
        schema.execute(statement);
        stats_match_the_rows(&schema, &store, &HAND_AT);
    }
    assert_eq!(store.stats(NOW).expect("stats").total_tokens, 0);
}

/// The same for rows updated by hand: a token's expiry moved (later, earlier, to never and
/// back), a token given to another user or to none.
#[test]
fn rows_updated_by_hand_keep_the_counts_exact() {
    let Some((schema, store)) = changed_by_hand(&[
        ("t1", "u1", Some(10)),
        ("t2", "u1", Some(60)),
        ("t3", "u2", Some(20)),
        ("t4", "u3", Some(30)),
    ]) else {
        return;
    };
    for (set, which) in [
        (format!("expires_at = {}", NOW + 80 * MIN), "'t3'"),
        (format!("expires_at = {}", NOW + 5 * MIN), "'t2'"),
        ("expires_at = NULL".to_owned(), "'t4'"),
        (format!("expires_at = {}", NOW + 30 * MIN), "'t4'"),
        ("user_id = 'u2'".to_owned(), "'t1'"),
        ("user_id = ''".to_owned(), "'t2'"),
        (format!("expires_at = expires_at + {}", 20 * MIN), "'t1', 't3', 't4'"),
    ] {
        schema.execute(&format!(
            "UPDATE {{s}}.access_tokens SET {set} WHERE token IN ({which})"
        ));
        stats_match_the_rows(&schema, &store, &HAND_AT);
    }
}

/// Sealed tokens' links (migration 11) leave with their tokens (a user's tokens, a
/// rotation, a revocation, cleanup), by the trigger the sealed mark brings; a store in
/// clear has no such trigger and writes no links.
#[test]
fn sealed_links_leave_with_their_tokens_and_clear_stores_have_no_trigger() {
    use crate::store::sealed::Sealed;
    use base64::Engine;
    use std::sync::Arc;
    let (Some(clear_schema), Some(sealed_schema)) = (TestSchema::new(), TestSchema::new()) else {
        return;
    };
    let trigger = |schema: &TestSchema| {
        schema.rows(
            "SELECT count(*) FROM pg_trigger
             WHERE tgrelid = '{s}.access_tokens'::regclass AND tgname = 'nts_token_links_deleted'",
        )[0][0]
    };
    let links = |schema: &TestSchema| schema.rows("SELECT count(*) FROM {s}.nts_token_links")[0][0];

    let clear = Sealed::new(Arc::new(clear_schema.store()), None);
    clear.store_access_token(&token("a", "u1", None), 0).unwrap();
    clear.delete_token("a").unwrap();
    clear.store_access_token(&token("b", "u1", None), 0).unwrap();
    assert_eq!((trigger(&clear_schema), links(&clear_schema)), (0, 0));

    let key = base64::engine::general_purpose::STANDARD.encode([3u8; 32]);
    let keys = Arc::new(crate::crypto::Keyring::parse(&format!("k1:{key}")).unwrap());
    let sealed = Sealed::new(Arc::new(sealed_schema.store()), Some(keys));
    let now = 1_800_000_000_000;
    for (i, user) in ["u1", "u1", "u2", "u3"].iter().enumerate() {
        sealed
            .store_access_token(&token(&format!("t{i}"), user, Some(now + 1000)), now)
            .unwrap();
    }
    assert_eq!((trigger(&sealed_schema), links(&sealed_schema)), (1, 4));
    sealed.delete_user_tokens("u1").unwrap();
    assert_eq!(links(&sealed_schema), 2);
    // A rotation: the old pair's links leave, the new pair's come.
    let crate::model::Rotation::Rotated(_) = sealed
        .rotate_refresh_token(
            &crate::model::RotateRequest {
                refresh_token: "r-t2".into(),
                new_access_token: "t2b".into(),
                new_refresh_token: "r-t2b".into(),
                expires_at: Some(now + 1000),
                grace_ms: 0,
                links: None,
            },
            now,
        )
        .unwrap()
    else {
        panic!("rotated");
    };
    assert_eq!(links(&sealed_schema), 2);
    assert_eq!(
        sealed.get_refresh_token("r-t2b", now).unwrap().unwrap().access_token,
        "t2b"
    );
    sealed.revoke_refresh_token("r-t3").unwrap();
    assert_eq!(links(&sealed_schema), 1);
    assert_eq!(sealed.cleanup_expired(now + 2000, 100).unwrap(), 1);
    assert_eq!(links(&sealed_schema), 0);
}

/// Issue 20: a schema at migration 11 (before the grant columns) migrates, keeps its tokens
/// (with none), and a new token keeps its resource and extra, also through a rotation.
#[test]
fn a_schema_at_migration_11_gets_the_grant_columns() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let mut sql = migrated_to(11);
    sql.push_str(
        "SELECT {s}.nts_store_access_tokens(ARRAY['old'], ARRAY['sk'], ARRAY['u'], ARRAY['c'],
            ARRAY['[]'], ARRAY['r-old'], ARRAY[NULL::int8], 1800000000000);",
    );
    schema.execute(&sql);
    let store = schema.store();
    let old = store.get_access_token("old", NOW).unwrap().expect("old");
    assert_eq!((old.resource, old.extra), (None, None));
    let mut t = token("new", "u", None);
    t.resource = Some("https://mcp.example/".into());
    t.extra = Some("{\"k\":1}".into());
    store.store_access_token(&t, NOW).unwrap();
    let rotated = store
        .rotate_refresh_token(
            &RotateRequest {
                refresh_token: "r-new".into(),
                new_access_token: "newer".into(),
                new_refresh_token: "r-newer".into(),
                expires_at: None,
                grace_ms: 0,
                links: None,
            },
            NOW,
        )
        .unwrap();
    assert!(matches!(rotated, Rotation::Rotated(_)), "{rotated:?}");
    let got = store.get_access_token("newer", NOW).unwrap().expect("newer");
    assert_eq!(got.resource.as_deref(), Some("https://mcp.example/"));
    assert_eq!(got.extra.as_deref(), Some("{\"k\":1}"));
    let versions = schema.rows("SELECT max(version) FROM {s}.nts_migrations");
    assert_eq!(versions, [[schema::MIGRATIONS.len() as i64]]);
}

/// A sealed schema refuses rows in clear by its triggers (`snapshot::refuse_clear_rows`): a
/// schema in clear has none (its writes pay nothing), a sealed one gets them with its mark,
/// and one sealed by a version before them gets them when a store first checks it.
#[test]
fn a_schema_sealed_before_gets_the_refusal_at_its_check() {
    use crate::store::sealed::Sealed;
    use std::sync::Arc;
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let triggers = || {
        schema.rows(
            "SELECT count(*) FROM pg_trigger t WHERE t.tgname LIKE 'nts_sealed_%'
             AND t.tgrelid IN ('{s}.access_tokens'::regclass,
                 '{s}.authorization_codes'::regclass, '{s}.nts_pending_authorizations'::regclass)",
        )[0][0]
    };
    let clear = Sealed::new(Arc::new(schema.store()), None);
    clear.open().unwrap();
    assert_eq!(triggers(), 0, "a schema in clear has none");
    clear.close().unwrap();
    schema.execute("DELETE FROM {s}.nts_meta WHERE name = 'seal'");

    let keys = crate::store::tests_sealed::keyring(&[("k1", 1)]);
    let first = Sealed::new(Arc::new(schema.store()), Some(keys.clone()));
    first
        .store_access_token(&token("at-1", "u", None), NOW)
        .unwrap();
    first.close().unwrap();
    assert_eq!(triggers(), 3, "with the mark");
    schema.execute(
        "DROP TRIGGER nts_sealed_access_tokens ON {s}.access_tokens;
         DROP TRIGGER nts_sealed_authorization_codes ON {s}.authorization_codes;
         DROP TRIGGER nts_sealed_pending ON {s}.nts_pending_authorizations;
         DROP FUNCTION {s}.nts_clear_row_refused()",
    );
    assert_eq!(triggers(), 0);
    let again = Sealed::new(Arc::new(schema.store()), Some(keys));
    again.open().unwrap();
    assert_eq!(triggers(), 3, "given back at the check");
    assert!(again.get_access_token("at-1", NOW).unwrap().is_some());
    again.close().unwrap();
}

/// What the refusal of clear rows costs a sealed schema's write, A/B in one process: tokens
/// stored through two sealed schemas, one with the triggers dropped (after its check, which
/// would give them back), rounds interleaved. Timing only:
/// `cargo test --release --lib clear_rows_refused_cost_pg -- --ignored --nocapture`.
#[test]
#[ignore]
fn clear_rows_refused_cost_pg() {
    use crate::store::sealed::Sealed;
    use std::sync::Arc;
    use std::time::Instant;
    let (Some(a), Some(b)) = (TestSchema::new(), TestSchema::new()) else {
        return;
    };
    let keys = crate::store::tests_sealed::keyring(&[("k1", 1)]);
    let open = |schema: &TestSchema| {
        let s = Sealed::new(Arc::new(schema.store()), Some(keys.clone()));
        s.open().unwrap();
        s
    };
    let (with, without) = (open(&a), open(&b));
    b.execute(
        "DROP TRIGGER nts_sealed_access_tokens ON {s}.access_tokens;
         DROP TRIGGER nts_sealed_authorization_codes ON {s}.authorization_codes;
         DROP TRIGGER nts_sealed_pending ON {s}.nts_pending_authorizations",
    );
    let n = 500;
    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 0..9 {
        for (i, s) in [&with, &without].into_iter().enumerate() {
            let start = Instant::now();
            for k in 0..n {
                let t = token(&format!("at-{round}-{k}"), "u", Some(NOW + 3_600_000));
                s.store_access_token(&t, NOW).unwrap();
            }
            times[i].push(start.elapsed().as_nanos() as f64 / n as f64);
        }
    }
    let mut ratios: Vec<f64> = times[0].iter().zip(&times[1]).map(|(w, o)| w / o).collect();
    ratios.sort_by(f64::total_cmp);
    let best = |v: &[f64]| v.iter().copied().fold(f64::MAX, f64::min);
    eprintln!(
        "storeAccessToken on a sealed PostgreSQL schema: with the refusal of clear rows {:.0} ns \
         (best round), without {:.0} ns; per-round ratios {:.2} to {:.2}, median {:.2}",
        best(&times[0]),
        best(&times[1]),
        ratios[0],
        ratios[ratios.len() - 1],
        ratios[ratios.len() / 2]
    );
}

/// The Promise API's calls on this store (`ops::run_later`: the store's part a task of the
/// I/O runtime, driven from the JS thread) check and answer as `ops::run` does: a bad
/// argument before anything runs, a batch counted by its distinct tokens, a code taken with
/// a wrong verifier used up; a large batch is left to the pool.
#[test]
fn calls_run_later_check_and_answer_as_run_does() {
    use crate::ops::{run_later, Answer, Call, Driven};
    use crate::store::tests::{code_with_pkce, VERIFIER};
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store: std::sync::Arc<dyn TokenStore> = std::sync::Arc::new(schema.store());
    let later = |call: Call| -> Answer {
        let Ok(Driven::Later(part)) = run_later(store.clone(), call, NOW) else {
            panic!("not run later");
        };
        runtime::runtime()
            .expect("the I/O runtime")
            .block_on(part)
            .expect("an answer")
    };
    let mut empty = token("", "u", None);
    empty.refresh_token = None;
    let refused = run_later(store.clone(), Call::StoreAccessTokens(vec![empty]), NOW);
    assert!(matches!(refused, Err(e) if e.code() == "ERR_TOKEN_STORAGE_INVALID_ARGUMENT"));
    let twice = vec![token("a", "u", None), token("a", "u", None)];
    assert!(matches!(later(Call::StoreAccessTokens(twice)), Answer::Count(1)));
    let many = (0..65).map(|i| token(&format!("m{i}"), "u", None)).collect();
    assert!(matches!(
        run_later(store.clone(), Call::StoreAccessTokens(many), NOW),
        Ok(Driven::Back(c)) if matches!(*c, Call::StoreAccessTokens(_))
    ));
    for (name, verifier, taken) in [("c1", "wrong", false), ("c2", VERIFIER, true)] {
        let code = code_with_pkce(NOW + 60_000);
        let stored = later(Call::StoreAuthorizationCode(name.into(), code));
        assert!(matches!(stored, Answer::Done));
        let consume = || Call::ConsumeAuthorizationCode {
            code: name.into(),
            verifier: Some(verifier.into()),
        };
        assert!(matches!(later(consume()), Answer::AuthorizationCode(c) if c.is_some() == taken));
        assert!(matches!(later(consume()), Answer::AuthorizationCode(None)), "{name} used up");
    }
    let got = later(Call::GetAccessToken {
        token: "a".into(),
        hold: false,
    });
    assert!(matches!(got, Answer::AccessTokenText(Some(_))));
}

/// A bulk write brings the tables' statistics up to date: right after 5,000 tokens are
/// stored in one call, a refresh token's read is planned with the keys' indexes, not as a
/// scan of the whole table (before: revokeRefreshToken 10 ms, getRefreshToken 1.2 ms at 10k
/// tokens until autovacuum's next round, up to a minute later). A small write leaves it to
/// autovacuum.
#[test]
fn a_bulk_write_brings_the_statistics_up_to_date() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let analyzed = || {
        schema.rows(&format!(
            "SELECT count(*) FROM pg_stat_user_tables WHERE schemaname = '{}'
             AND relname IN ('access_tokens', 'refresh_tokens') AND last_analyze IS NOT NULL",
            schema.name
        ))[0][0]
    };
    let store = schema.store();
    let few: Vec<_> = (0..10).map(|i| token(&format!("f{i}"), "u", None)).collect();
    store.store_access_tokens(&few, NOW).expect("stored");
    assert_eq!(analyzed(), 0, "after 10 tokens");
    let many: Vec<_> = (0..5000)
        .map(|i| token(&format!("t{i}"), &format!("u{}", i % 100), None))
        .collect();
    store.store_access_tokens(&many, NOW).expect("stored");
    assert_eq!(analyzed(), 2, "after 5,000 tokens");
    let s = quote(&schema.name);
    let sql = format!(
        "EXPLAIN SELECT r.user_id, a.expires_at FROM {s}.refresh_tokens r
         LEFT JOIN {s}.access_tokens a ON a.token = r.access_token WHERE r.refresh_token = 'r-t7'"
    );
    let plan = schema
        .raw()
        .call(true, async |c, _| {
            let rows = c.query_typed(&sql, &[]).await?;
            let lines: std::result::Result<Vec<String>, _> =
                rows.iter().map(|r| r.try_get::<_, String>(0)).collect();
            Ok(lines?.join("\n"))
        })
        .expect("a plan");
    assert!(!plan.contains("Seq Scan"), "{plan}");
}

/// The server ends every connection the store keeps (a restart, a failover) just before a
/// read: the read is tried again on each kept connection it finds dead, then on a new one,
/// and answers; it fails only when the server cannot be reached at all.
#[test]
fn a_read_answers_after_the_server_ended_every_kept_connection() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = std::sync::Arc::new(schema.store());
    store
        .store_access_token(&token("a", "u", None), NOW)
        .expect("store");
    // Four connections kept: four calls at once, each holding one for a moment.
    let pids: Vec<i32> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..TEST_POOL_SIZE)
            .map(|_| {
                s.spawn(|| {
                    store.call(true, async |c, _| {
                        let sql = "SELECT pg_backend_pid() FROM pg_sleep(0.2)";
                        Ok(c.query_typed_one(sql, &[]).await?.try_get::<_, i32>(0)?)
                    })
                })
            })
            .collect();
        calls
            .into_iter()
            .map(|h| h.join().expect("a call").expect("a pid"))
            .collect()
    });
    let mut distinct = pids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), TEST_POOL_SIZE, "{pids:?}");
    let list = pids
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    schema.execute(&format!(
        "SELECT pg_terminate_backend(pid) FROM unnest(ARRAY[{list}]) AS pid"
    ));
    for _ in 0..3 {
        let got = store.get_refresh_token("r-a", NOW).expect("a read");
        assert_eq!(got.map(|r| r.access_token).as_deref(), Some("a"));
    }
}

/// The statistics' update after a bulk write does not wait for a table another session
/// holds (autovacuum, a migration, another instance's ANALYZE): the write returns, the other
/// tables are analyzed, and the connection it used serves the next call.
#[test]
fn a_bulk_write_does_not_wait_for_a_table_another_session_holds() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store();
    store
        .store_access_tokens(&[token("first", "u", None)], NOW)
        .expect("stored");
    let holder = schema.raw();
    let lock = format!(
        "BEGIN; LOCK TABLE {}.nts_token_links IN SHARE UPDATE EXCLUSIVE MODE; \
         SELECT pg_sleep(2); COMMIT",
        quote(&schema.name)
    );
    std::thread::scope(|s| {
        let held = s.spawn(|| holder.call(false, async |c, _| Ok(c.batch_execute(&lock).await?)));
        std::thread::sleep(Duration::from_millis(300));
        let many: Vec<_> = (0..2000)
            .map(|i| token(&format!("t{i}"), &format!("u{}", i % 50), None))
            .collect();
        let started = std::time::Instant::now();
        store.store_access_tokens(&many, NOW).expect("stored");
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1500), "waited {took:?}");
        // Only the held table is left to autovacuum: the others have their statistics
        // (pg_stats, which a rolled-back ANALYZE leaves as it was).
        let with_stats = schema.rows(&format!(
            "SELECT count(DISTINCT tablename) FROM pg_stats WHERE schemaname = '{}'
             AND tablename IN ('access_tokens', 'refresh_tokens')",
            schema.name
        ))[0][0];
        assert_eq!(with_stats, 2, "tables analyzed beside the held one");
        for _ in 0..TEST_POOL_SIZE + 1 {
            let got = store.get_refresh_token("r-t7", NOW).expect("a read");
            assert_eq!(got.map(|r| r.access_token).as_deref(), Some("t7"));
        }
        held.join().expect("the holder").expect("its lock");
    });
}
