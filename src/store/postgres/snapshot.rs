//! The PostgreSQL store's rows as they are (see `store::snapshot`): read in one
//! REPEATABLE READ, READ ONLY transaction (one snapshot, while other sessions keep
//! writing), a cursor per table fetched in batches; written one transaction per batch
//! (`import_rows`) or one for a whole copy (`import_all`), each row replacing one of the
//! same key. The statement-level triggers keep the counters. The same transaction of
//! `import_all` also reads every row and the mark for `encrypt`, `decrypt` and `rekey`
//! (`sealed::convert`), under the locks of `Within::lock_for_conversion`.

use tokio::sync::mpsc::Sender;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row};

use super::call::{step, transaction, Failure};
use super::schema::quote;
use super::PostgresStore;
use crate::error::{Result, StoreError};
use super::rows::{read_access_linked, read_client, read_code, read_pending, read_refresh};
use crate::store::snapshot::{counts_sql, Counts, PendingRow, RefreshRow, RetiredRow};
use crate::store::snapshot::{Import, RowStore, Rows, Sink, TokenRow, DEFAULT_BATCH, TABLES};

type Decoded<T> = std::result::Result<T, tokio_postgres::Error>;

fn scopes_json(scopes: &[String]) -> String {
    serde_json::to_string(scopes).unwrap_or_else(|_| "[]".into())
}

fn read_counts(row: &Row) -> Decoded<Counts> {
    Counts::from_row(|i| row.try_get::<_, i64>(i))
}

impl PostgresStore {
    /// `TokenStore::seal_mark`: the mark and whether any row but a client's is stored, in
    /// one statement.
    ///
    /// A schema sealed by a version before the refusal of clear rows (`refuse_clear_rows`)
    /// is given it then (the mark read again in that write: a `decrypt` meanwhile leaves
    /// the schema in clear, without it). Best effort: a schema that cannot be changed now
    /// (a role without the right, a lock timeout) is served as before.
    pub(super) fn read_seal_mark(&self) -> Result<(Option<String>, bool)> {
        let s = self.quoted();
        let sql = format!(
            "SELECT (SELECT value FROM {s}.nts_meta WHERE name = 'seal'), {},
                EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = '{s}.access_tokens'::regclass
                    AND t.tgname = 'nts_sealed_access_tokens')",
            crate::store::sealed::holds_secrets_sql(&format!("{s}."))
        );
        let (mark, holds, refuses) = self.call(true, async |c, _| {
            let r = c.query_one(&sql, &[]).await?;
            Ok((r.try_get::<_, Option<String>>(0)?, r.try_get(1)?, r.try_get::<_, bool>(2)?))
        })?;
        if !refuses && mark.as_deref().is_some_and(|m| m.starts_with(SEALED_V2)) {
            let refuse = refuse_clear_rows(&s);
            let timeout = self.settings.query_timeout;
            let _ = self.call(false, async |c, _| {
                transaction(c, timeout, vec![step(c.query_typed(&refuse, &[]))]).await
            });
        }
        Ok((mark, holds))
    }

    /// `TokenStore::set_seal_mark`: a compare-and-set in one statement (a concurrent
    /// writer of the mark makes it change nothing, and the caller reads the mark again).
    pub(super) fn swap_seal_mark(
        &self,
        old: Option<&str>,
        new: &str,
        only_if_empty: bool,
    ) -> Result<bool> {
        let s = self.quoted();
        let sql = format!(
            "INSERT INTO {s}.nts_meta AS m (name, value)
             SELECT 'seal', $2::TEXT
             WHERE (SELECT value FROM {s}.nts_meta WHERE name = 'seal') IS NOT DISTINCT FROM $1::TEXT
               AND NOT ($3::BOOLEAN AND {})
             ON CONFLICT (name) DO UPDATE SET value = excluded.value
             WHERE m.value IS NOT DISTINCT FROM $1::TEXT
             RETURNING 1",
            crate::store::sealed::holds_secrets_sql(&format!("{s}."))
        );
        // The links trigger (migration 11) and the refusal of clear rows come with a sealed
        // mark, in its transaction: a store in clear pays nothing for them.
        let links = format!("SELECT {s}.nts_seal_links()");
        let refuse = refuse_clear_rows(&s);
        let timeout = self.settings.query_timeout;
        self.call(false, async |c, _| {
            let params: [(&(dyn ToSql + Sync), Type); 3] = [
                (&old, Type::TEXT),
                (&new, Type::TEXT),
                (&only_if_empty, Type::BOOL),
            ];
            let steps = vec![
                step(c.query_typed(&sql, &params)),
                step(c.query_typed(&links, &[])),
                step(c.query_typed(&refuse, &[])),
            ];
            let results = transaction(c, timeout, steps).await?;
            Ok(results.first().is_some_and(|rows| !rows.is_empty()))
        })
    }
}

/// The mark of a store whose tokens are sealed too (`sealed::MARK_V2`), which refuses rows
/// in clear.
const SEALED_V2: &str = "sealed v2 ";

/// The SQLSTATE a sealed schema raises when it refuses a row in clear (`errors.rs` makes
/// it ENCRYPTION_MISMATCH).
pub(super) const CLEAR_ROW_REFUSED: &str = "NTS01";

/// The triggers of a sealed schema refusing a row written in clear (its API key or pending
/// data not sealed, `nts1:`/`nts2:`): what a process without keys that checked the schema
/// before it was sealed writes (as the SQLite file's `CLEAR_ROWS_REFUSED`). Every write of
/// the store's functions (tokens stored, a rotation's pair, codes, pending logins, an
/// import) inserts through them; refresh tokens are written only with their access token
/// (one transaction). Created when the mark, read in the same transaction, is `sealed v2`
/// (`set_seal_mark`, `encrypt`, `rekey`, a copy; at the check of a schema sealed before),
/// each only if missing (two sessions: the one that waited finds it made); dropped with
/// the mark (`allow_clear_rows`). A schema in clear has none, and pays nothing. No
/// migration: the function is created with the first trigger.
fn refuse_clear_rows(s: &str) -> String {
    format!(
        "DO $nts$
        DECLARE
            t RECORD;
        BEGIN
            IF (SELECT m.value FROM {s}.nts_meta m WHERE m.name = 'seal') LIKE '{SEALED_V2}%' THEN
                IF to_regprocedure('{s}.nts_clear_row_refused()') IS NULL THEN
                    BEGIN
                        CREATE FUNCTION {s}.nts_clear_row_refused() RETURNS trigger
                        LANGUAGE plpgsql AS $f$
                        BEGIN
                            RAISE EXCEPTION 'nts: a row in clear refused by a sealed token store'
                                USING ERRCODE = '{CLEAR_ROW_REFUSED}';
                        END
                        $f$;
                    EXCEPTION WHEN duplicate_function OR unique_violation THEN
                        NULL;
                    END;
                END IF;
                FOR t IN SELECT * FROM (VALUES
                    ('nts_sealed_access_tokens', 'access_tokens', 'api_key'),
                    ('nts_sealed_authorization_codes', 'authorization_codes', 'api_key'),
                    ('nts_sealed_pending', 'nts_pending_authorizations', 'data')) AS v (name, tab, col)
                LOOP
                    IF NOT EXISTS (SELECT 1 FROM pg_trigger g
                        WHERE g.tgrelid = ('{s}.' || t.tab)::regclass AND g.tgname = t.name) THEN
                        BEGIN
                            EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE OF %I
                                ON {s}.%I FOR EACH ROW
                                WHEN (NEW.%I NOT LIKE ''nts1:%%'' AND NEW.%I NOT LIKE ''nts2:%%'')
                                EXECUTE FUNCTION {s}.nts_clear_row_refused()',
                                t.name, t.col, t.tab, t.col, t.col);
                        EXCEPTION WHEN duplicate_object THEN
                            NULL;
                        END;
                    END IF;
                END LOOP;
            END IF;
        END
        $nts$"
    )
}

/// `refuse_clear_rows` undone (a store back in clear): its tables locked ACCESS EXCLUSIVE
/// first (`lock_for_conversion`).
fn allow_clear_rows(s: &str) -> String {
    format!(
        "DROP TRIGGER IF EXISTS nts_sealed_access_tokens ON {s}.access_tokens;
         DROP TRIGGER IF EXISTS nts_sealed_authorization_codes ON {s}.authorization_codes;
         DROP TRIGGER IF EXISTS nts_sealed_pending ON {s}.nts_pending_authorizations"
    )
}

/// The tables in the order a target takes them, with what to select and how to read it.
type Reader = fn(&[Row]) -> Decoded<Rows>;

/// Each kind's statement selects the columns its reader of `rows` reads, then its key
/// (`read_refresh` reads, after the record, whether the access token exists and its
/// expiry: selected as constants here, the row is copied as it is). An access token's
/// links (migration 11; NULL in a store in clear) come with it.
fn tables(s: &str) -> Vec<(String, Reader)> {
    vec![
        (
            format!("SELECT client_id, secret_digest, metadata, created_at FROM {s}.nts_clients ORDER BY seq"),
            |rows| rows.iter().map(read_client).collect::<Decoded<_>>().map(Rows::Clients),
        ),
        (
            format!("SELECT api_key, user_id, client_id, scopes, refresh_token, expires_at, created_at, resource, extra, (SELECT l.links FROM {s}.nts_token_links l WHERE l.token = a.token), token FROM {s}.access_tokens a"),
            |rows| {
                rows.iter()
                    .map(|r| Ok(TokenRow { token: r.try_get(10)?, access: read_access_linked(r)? }))
                    .collect::<Decoded<_>>()
                    .map(Rows::AccessTokens)
            },
        ),
        (
            format!("SELECT user_id, client_id, scopes, access_token, created_at, false, NULL::int8, refresh_token FROM {s}.refresh_tokens"),
            |rows| {
                rows.iter()
                    .map(|r| Ok(RefreshRow { refresh_token: r.try_get(7)?, refresh: read_refresh(r)?.0 }))
                    .collect::<Decoded<_>>()
                    .map(Rows::RefreshTokens)
            },
        ),
        (
            format!("SELECT refresh_token, family FROM {s}.nts_refresh_families"),
            |rows| {
                rows.iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                    .collect::<Decoded<_>>()
                    .map(Rows::RefreshFamilies)
            },
        ),
        (
            format!("SELECT refresh_token, family, retired_at FROM {s}.nts_retired_refresh_tokens"),
            |rows| {
                rows.iter()
                    .map(|r| Ok(RetiredRow { refresh_token: r.try_get(0)?, family: r.try_get(1)?, retired_at: r.try_get(2)? }))
                    .collect::<Decoded<_>>()
                    .map(Rows::RetiredRefreshTokens)
            },
        ),
        (
            format!("SELECT user_id, api_key, client_id, redirect_uri, code_challenge, code_challenge_method, scopes, expires_at, created_at, resource, extra, code FROM {s}.authorization_codes"),
            |rows| {
                rows.iter()
                    .map(|r| Ok((r.try_get(11)?, read_code(r)?)))
                    .collect::<Decoded<_>>()
                    .map(Rows::AuthorizationCodes)
            },
        ),
        (
            format!("SELECT data, expires_at, state FROM {s}.nts_pending_authorizations"),
            |rows| {
                rows.iter()
                    .map(|r| {
                        let (data, expires_at) = read_pending(r)?;
                        Ok(PendingRow { state: r.try_get(2)?, data, expires_at })
                    })
                    .collect::<Decoded<_>>()
                    .map(Rows::PendingAuthorizations)
            },
        ),
    ]
}

impl PostgresStore {
    fn quoted(&self) -> String {
        quote(&self.settings.schema)
    }

    /// The snapshot: its counts, then every table's rows in batches, read on one
    /// connection in one transaction and sent to `out` as they come (at most two batches
    /// wait there: the memory an export takes does not grow with the store). A closed `out`
    /// (the reader stopped) ends it.
    async fn send_snapshot(
        &self,
        client: &Client,
        batch: usize,
        out: &Sender<Piece>,
    ) -> std::result::Result<Counts, Failure> {
        let s = self.quoted();
        let timeout = self.settings.query_timeout.as_millis().max(1);
        client
            .batch_execute(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
                 SET LOCAL statement_timeout = {timeout}"
            ))
            .await?;
        let stopped = || Failure::Store(StoreError::Internal("the export's reader stopped"));
        let result = async {
            let counts = read_counts(&client.query_one(&counts_sql(&format!("{s}.")), &[]).await?)?;
            let mark: Option<String> = client
                .query_one(&format!("SELECT (SELECT value FROM {s}.nts_meta WHERE name = 'seal')"), &[])
                .await?
                .try_get(0)?;
            out.send(Piece::Counts(counts, mark)).await.map_err(|_| stopped())?;
            for (i, (sql, read)) in tables(&s).into_iter().enumerate() {
                client
                    .batch_execute(&format!("DECLARE nts_copy_{i} NO SCROLL CURSOR FOR {sql}"))
                    .await?;
                loop {
                    let rows = client
                        .query(&format!("FETCH {batch} FROM nts_copy_{i}"), &[])
                        .await?;
                    if rows.is_empty() {
                        break;
                    }
                    let done = rows.len() < batch;
                    out.send(Piece::Rows(read(&rows)?)).await.map_err(|_| stopped())?;
                    if done {
                        break;
                    }
                }
            }
            Ok::<_, Failure>(counts)
        }
        .await;
        let _ = client.batch_execute("COMMIT").await;
        result
    }

    fn as_store(&self, f: Failure) -> StoreError {
        match f {
            Failure::Pg(e) => self.error(&e),
            Failure::Store(e) => e,
            Failure::QueryTimeout => self.past_query_timeout(),
        }
    }

    /// `send_snapshot` on a connection of the pool, its failures as the store's errors.
    async fn export(&self, batch: usize, out: Sender<Piece>) -> Result<Counts> {
        let (conn, _) = self.checkout().await.map_err(|f| self.as_store(f))?;
        let result = self.send_snapshot(&conn.client, batch, &out).await;
        self.checkin(conn).await;
        result.map_err(|f| self.as_store(f))
    }
}

/// A PostgreSQL store's side of a copy (`import_all`): its transaction's connection.
struct Within<'a> {
    store: &'a PostgresStore,
    rt: super::runtime::Io,
    client: &'a Client,
    s: String,
}

impl Within<'_> {
    /// Runs `op` on the transaction's connection, on the I/O thread, within the query
    /// timeout (past it, the connection's state is unknown: the transaction fails).
    fn run<T>(
        &self,
        op: impl AsyncFnOnce(&Client) -> std::result::Result<T, Failure>,
    ) -> Result<T> {
        let deadline = self.store.settings.query_timeout;
        self.rt
            .block_on(async { tokio::time::timeout(deadline, op(self.client)).await })
            .unwrap_or(Err(Failure::QueryTimeout))
            .map_err(|f| self.store.as_store(f))
    }
}

/// The tables a conversion locks besides those of the rows (`TABLES`): every other table a
/// store's write changes (the counters' too, so that no writer holds a row of them while it
/// waits).
const ALSO_LOCKED: [&str; 6] = [
    "nts_token_links",
    "nts_meta",
    "nts_users",
    "nts_counts",
    "nts_fine",
    "nts_refined",
];

/// The tables with a trigger refusing rows in clear (`refuse_clear_rows`), locked first,
/// `access_tokens` before the others.
const REFUSING: [&str; 3] = [
    "access_tokens",
    "authorization_codes",
    "nts_pending_authorizations",
];

/// How often a conversion tries to take its locks when PostgreSQL picks it to break a
/// deadlock with a writer (nothing is done yet: it only tries again).
const LOCK_ATTEMPTS: usize = 8;

impl Import for Within<'_> {
    /// Locks the tables for the rest of the transaction, writers first in line waiting for
    /// the commit and then finding the converted rows (as SQLite's `BEGIN IMMEDIATE` makes
    /// them wait), readers going on with the rows as they were: `SHARE ROW EXCLUSIVE`
    /// conflicts with every write and with itself (two conversions take turns), not with a
    /// read. Not SERIALIZABLE: a conversion reads every row, so any write committed
    /// meanwhile would abort it, and under load it would never finish. In READ COMMITTED
    /// with the locks, each statement sees the same rows, as nothing else can change them.
    /// `decrypt` takes `access_tokens` in ACCESS EXCLUSIVE mode (readers wait too): it drops
    /// the links trigger, which needs that lock, and asking for it only then would deadlock
    /// with a writer that read the table before waiting on another of the locks (and
    /// PostgreSQL would abort the conversion, the later waiter). `access_tokens` first, as
    /// the store's writers and `nts_refine` take it. The same for the other two tables whose
    /// refusal of clear rows `decrypt` drops (`allow_clear_rows`), right after it.
    fn lock_for_conversion(&mut self, removes_mark: bool) -> Result<()> {
        let s = &self.s;
        let mode = if removes_mark {
            "ACCESS EXCLUSIVE"
        } else {
            "SHARE ROW EXCLUSIVE"
        };
        let others: Vec<String> = TABLES
            .iter()
            .chain(&ALSO_LOCKED)
            .filter(|t| !REFUSING.contains(t))
            .map(|t| format!("{s}.{t}"))
            .collect();
        let sql = format!(
            "SAVEPOINT nts_locks; LOCK TABLE {s}.access_tokens IN {mode} MODE; \
             LOCK TABLE {s}.authorization_codes, {s}.nts_pending_authorizations IN {mode} MODE; \
             LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE; RELEASE SAVEPOINT nts_locks",
            others.join(", ")
        );
        self.run(async |c: &Client| {
            let mut attempt = 0;
            loop {
                attempt += 1;
                match c.batch_execute(&sql).await {
                    Ok(()) => return Ok(()),
                    Err(e)
                        if attempt < LOCK_ATTEMPTS
                            && e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED) =>
                    {
                        c.batch_execute("ROLLBACK TO SAVEPOINT nts_locks; RELEASE SAVEPOINT nts_locks")
                            .await?;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        })
    }

    fn export(&mut self, batch: usize, sink: &mut dyn Sink) -> Result<()> {
        let batch = batch.max(1);
        let mark = self.seal_mark()?;
        sink.counts(&self.counts()?, mark.as_deref())?;
        for (i, (sql, read)) in tables(&self.s).into_iter().enumerate() {
            let declare = format!("DECLARE nts_convert_{i} NO SCROLL CURSOR FOR {sql}");
            self.run(async |c: &Client| Ok(c.batch_execute(&declare).await?))?;
            let fetch = format!("FETCH {batch} FROM nts_convert_{i}");
            loop {
                let rows = self.run(async |c: &Client| Ok(read(&c.query(&fetch, &[]).await?)?))?;
                let last = rows.len() < batch;
                if !rows.is_empty() {
                    sink.rows(rows)?;
                }
                if last {
                    break;
                }
            }
            let close = format!("CLOSE nts_convert_{i}");
            self.run(async |c: &Client| Ok(c.batch_execute(&close).await?))?;
        }
        Ok(())
    }

    fn seal_mark(&mut self) -> Result<Option<String>> {
        let sql = format!("SELECT value FROM {}.nts_meta WHERE name = 'seal'", self.s);
        self.run(async |c: &Client| {
            Ok(match c.query_opt(&sql, &[]).await? {
                Some(row) => row.try_get(0)?,
                None => None,
            })
        })
    }

    /// A sealed mark comes with the links trigger (`nts_seal_links`, as the store's own
    /// `swap_seal_mark`) and the refusal of clear rows (`refuse_clear_rows`); the mark
    /// removed, the triggers and the links go (a store in clear pays nothing for them).
    fn set_seal_mark(&mut self, mark: Option<&str>) -> Result<()> {
        let s = &self.s;
        match mark {
            Some(mark) => {
                let upsert = format!(
                    "INSERT INTO {s}.nts_meta (name, value) VALUES ('seal', $1::TEXT)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value"
                );
                let links = format!("SELECT {s}.nts_seal_links(); {}", refuse_clear_rows(s));
                self.run(async |c: &Client| {
                    c.execute(&upsert, &[&mark]).await?;
                    Ok(c.batch_execute(&links).await?)
                })
            }
            None => {
                let sql = format!(
                    "DELETE FROM {s}.nts_meta WHERE name = 'seal';
                     DROP TRIGGER IF EXISTS nts_token_links_deleted ON {s}.access_tokens;
                     DELETE FROM {s}.nts_token_links; {}",
                    allow_clear_rows(s)
                );
                self.run(async |c: &Client| Ok(c.batch_execute(&sql).await?))
            }
        }
    }

    fn counts(&mut self) -> Result<Counts> {
        let sql = counts_sql(&format!("{}.", self.s));
        self.run(async |c: &Client| Ok(read_counts(&c.query_one(&sql, &[]).await?)?))
    }

    fn clear(&mut self) -> Result<()> {
        let sql: Vec<String> = TABLES.iter().map(|t| format!("DELETE FROM {}.{t}", self.s)).collect();
        self.run(async |c: &Client| Ok(c.batch_execute(&sql.join("; ")).await?))
    }

    /// A batch larger than `DEFAULT_BATCH` (a conversion writes each kind at once) goes in
    /// pieces of that size, each a round trip under the query timeout of its own.
    fn rows(&mut self, rows: &Rows) -> Result<()> {
        let s = self.s.clone();
        let write = |rows: &Rows| {
            self.run(async |c: &Client| {
                for r in futures_util::future::join_all(import_steps(c, &s, rows)).await {
                    r?;
                }
                Ok(())
            })
        };
        if rows.len() <= DEFAULT_BATCH {
            return write(rows);
        }
        rows.chunks(DEFAULT_BATCH).iter().try_for_each(write)
    }
}

/// What an export sends its reader: the snapshot's counts and mark first, then its rows.
enum Piece {
    Counts(Counts, Option<String>),
    Rows(Rows),
}

impl PostgresStore {
    /// One query's first column, on a connection of its own (the pool's first connection
    /// would run the migrations, creating the schema), within the connect and query timeouts.
    fn ask_alone<T>(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<T>
    where
        T: for<'a> tokio_postgres::types::FromSql<'a>,
    {
        let rt = super::runtime::runtime()?;
        let target = self.target()?;
        let deadline = self.settings.connect_timeout + self.settings.query_timeout;
        let asked = rt.block_on(async {
            let work = async {
                let (client, connection) = target.config.connect(target.tls.clone()).await?;
                let task = super::runtime::spawn_noted(async move {
                    let _ = connection.await;
                });
                let row = client.query_one(sql, params).await;
                drop(client);
                let _ = task.await;
                row?.try_get::<_, T>(0)
            };
            tokio::time::timeout(deadline, work).await
        });
        match asked {
            Ok(answer) => answer.map_err(|e| self.error(&e)),
            Err(_) => Err(self.past_query_timeout()),
        }
    }
}

impl RowStore for PostgresStore {
    fn row_counts(&self) -> Result<Counts> {
        let sql = counts_sql(&format!("{}.", self.quoted()));
        self.call(true, async |c, _| {
            Ok(read_counts(&c.query_one(&sql, &[]).await?)?)
        })
    }

    /// The snapshot is read on a thread of its own, on the I/O thread's runtime, and handed
    /// to `sink` on this one as it comes: a `sink` writing to a PostgreSQL store (this
    /// runtime too) is never called from inside the runtime.
    fn export_rows(&self, batch: usize, sink: &mut dyn Sink) -> Result<Counts> {
        let rt = super::runtime::runtime()?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Piece>(2);
        std::thread::scope(|scope| {
            let reader = scope.spawn(move || rt.block_on(self.export(batch.max(1), tx)));
            let mut given = Ok(());
            while let Some(piece) = rx.blocking_recv() {
                given = match piece {
                    Piece::Counts(c, mark) => sink.counts(&c, mark.as_deref()),
                    Piece::Rows(r) => sink.rows(r),
                };
                if given.is_err() {
                    break;
                }
            }
            drop(rx); // a reader still sending stops
            let read = reader
                .join()
                .unwrap_or(Err(StoreError::Internal("the export's thread panicked")));
            given?;
            read
        })
    }

    fn import_rows(&self, rows: &Rows) -> Result<()> {
        let s = self.quoted();
        let timeout = self.settings.query_timeout;
        let done = self.call(false, async |c, _| {
            let steps = import_steps(c, &s, rows);
            transaction(c, timeout, steps).await.map(|_| ())
        });
        self.cache.barrier();
        done
    }

    /// One transaction on one connection of the pool, held for all of it (and one permit of
    /// the pool's): each batch one round trip in it, each under the query timeout.
    fn import_all(
        &self,
        fill: &mut dyn FnMut(&mut dyn Import) -> Result<Counts>,
    ) -> Result<Counts> {
        let rt = super::runtime::runtime()?;
        let permit = rt
            .block_on(self.permits.acquire())
            .map_err(|_| StoreError::Internal("the connection pool was closed"))?;
        let (conn, _) = rt.block_on(self.checkout()).map_err(|f| self.as_store(f))?;
        let mut within = Within {
            store: self,
            rt,
            client: &conn.client,
            s: self.quoted(),
        };
        let timeout = self.settings.query_timeout.as_millis().max(1);
        let result = within
            .run(async |c: &Client| {
                c.batch_execute(&format!("BEGIN; SET LOCAL statement_timeout = {timeout}"))
                    .await?;
                Ok(())
            })
            .and_then(|()| fill(&mut within))
            .and_then(|counts| {
                within.run(async |c: &Client| Ok(c.batch_execute("COMMIT").await?))?;
                Ok(counts)
            });
        match &result {
            // Back to the pool only when it is known to be out of the transaction.
            Ok(_) => rt.block_on(self.checkin(conn)),
            Err(_) => {
                let rolled_back = !conn.client.is_closed()
                    && rt
                        .block_on(async {
                            let rollback = conn.client.batch_execute("ROLLBACK");
                            tokio::time::timeout(self.settings.query_timeout, rollback).await
                        })
                        .is_ok_and(|r| r.is_ok());
                if rolled_back {
                    rt.block_on(self.checkin(conn));
                } else {
                    rt.block_on(super::runtime::end(vec![conn]));
                }
            }
        }
        self.cache.barrier();
        drop(permit);
        if let Ok(counts) = &result {
            let rows = counts.access_tokens.max(counts.refresh_tokens);
            rt.block_on(self.analyze_after(usize::try_from(rows).unwrap_or(usize::MAX)));
        }
        result
    }

    fn revoke_client(&self, client_id: &str) -> Result<u64> {
        let s = self.quoted();
        let timeout = self.settings.query_timeout;
        let sql = [
            format!("DELETE FROM {s}.refresh_tokens WHERE client_id = $1"),
            format!("DELETE FROM {s}.authorization_codes WHERE client_id = $1"),
            format!(
                "WITH d AS (DELETE FROM {s}.access_tokens WHERE client_id = $1 RETURNING 1)
                 SELECT count(*) FROM d"
            ),
        ];
        let done = self.call(false, async |c, _| {
            let id: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 1] =
                [(&client_id, Type::TEXT)];
            let steps = sql.iter().map(|q| step(c.query_typed(q, &id))).collect();
            let out = transaction(c, timeout, steps).await?;
            let n = match out.last().and_then(|rows| rows.first()) {
                Some(row) => row.try_get::<_, i64>(0)?,
                None => 0,
            };
            Ok(n.max(0) as u64)
        });
        self.cache.barrier();
        done
    }

    /// Whether the schema holds this package's `nts_migrations`.
    fn exists(&self) -> Result<bool> {
        let table = format!("{}.nts_migrations", self.quoted());
        self.ask_alone(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)
                AND to_regclass($2) IS NOT NULL",
            &[&self.settings.schema, &table],
        )
    }

    /// The server (when its postmaster started, to the microsecond, and its port: what
    /// any user may read, the same through a socket, TCP or a pooler), the database's oid
    /// and the schema.
    fn identity(&self) -> Result<Option<String>> {
        let named: String = self.ask_alone(
            "SELECT 'postgres ' || pg_postmaster_start_time()::text || ' ' || current_setting('port')
                || ' ' || (SELECT oid FROM pg_database WHERE datname = current_database())::text
                || ' ' || $1",
            &[&self.settings.schema],
        )?;
        Ok(Some(named))
    }

    fn clear_rows(&self) -> Result<()> {
        let s = self.quoted();
        let timeout = self.settings.query_timeout;
        let done = self.call(false, async |c, _| {
            let sql: Vec<String> = TABLES
                .iter()
                .map(|t| format!("DELETE FROM {s}.{t}"))
                .collect();
            let steps = sql
                .iter()
                .map(|q| step(c.query_typed(q, &[])))
                .collect();
            transaction(c, timeout, steps).await.map(|_| ())
        });
        self.cache.barrier();
        done
    }
}

/// The statements writing one batch: the rows of the same keys removed, then the rows
/// inserted from arrays (one round trip whatever the batch's size).
fn import_steps<'c>(c: &'c Client, s: &str, rows: &'c Rows) -> Vec<super::call::Step<'c>> {
    use Type as T;
    // Each statement's text lives as long as the transaction's futures: leaked-free by
    // owning them in the steps' closures.
    macro_rules! run {
        ($sql:expr, $params:expr) => {{
            let sql: String = $sql;
            let params: Vec<(Box<dyn tokio_postgres::types::ToSql + Sync + Send>, Type)> = $params;
            step(async move {
                let refs: Vec<(&(dyn tokio_postgres::types::ToSql + Sync), Type)> = params
                    .iter()
                    .map(|(p, t)| (&**p as &(dyn tokio_postgres::types::ToSql + Sync), t.clone()))
                    .collect();
                c.query_typed(&sql, &refs).await
            })
        }};
    }
    fn b<P: tokio_postgres::types::ToSql + Sync + Send + 'static>(
        p: P,
        t: Type,
    ) -> (Box<dyn tokio_postgres::types::ToSql + Sync + Send>, Type) {
        (Box::new(p), t)
    }
    // The rows of these keys removed, then the batch inserted (its first column the keys).
    macro_rules! replace {
        ($table:literal, $key:literal, $keys:expr, $insert:expr, [$($param:expr),* $(,)?]) => {{
            let keys: Vec<String> = $keys;
            vec![
                run!(
                    format!(concat!("DELETE FROM {}.", $table, " WHERE ", $key, " = ANY($1)"), s),
                    vec![b(keys.clone(), T::TEXT_ARRAY)]
                ),
                run!($insert, vec![b(keys, T::TEXT_ARRAY), $($param),*]),
            ]
        }};
    }
    match rows {
        Rows::AccessTokens(r) => {
            let mut steps = replace!(
                "access_tokens",
                "token",
                r.iter().map(|t| t.token.clone()).collect(),
                format!(
                    "INSERT INTO {s}.access_tokens (token, api_key, user_id, client_id, scopes,
                     refresh_token, expires_at, created_at, resource, extra)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                     $5::text[], $6::text[], $7::int8[], $8::int8[], $9::text[], $10::text[])"
                ),
                [
                    b(r.iter().map(|t| t.access.api_key.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                    b(r.iter().map(|t| t.access.user_id.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                    b(r.iter().map(|t| t.access.client_id.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                    b(r.iter().map(|t| scopes_json(&t.access.scopes)).collect::<Vec<_>>(), T::TEXT_ARRAY),
                    b(r.iter().map(|t| t.access.refresh_token.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                    b(r.iter().map(|t| t.access.expires_at).collect::<Vec<_>>(), T::INT8_ARRAY),
                    b(r.iter().map(|t| t.access.created_at).collect::<Vec<_>>(), T::INT8_ARRAY),
                    b(r.iter().map(|t| t.access.resource.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                    b(r.iter().map(|t| t.access.extra.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                ]
            );
            // The links of a sealed store's tokens (migration 11), where there are any.
            if r.iter().any(|t| t.access.links.is_some()) {
                steps.push(run!(
                    format!(
                        "INSERT INTO {s}.nts_token_links AS l (token, links)
                         SELECT * FROM unnest($1::text[], $2::text[]) AS n (t, k)
                         WHERE n.k IS NOT NULL
                         ON CONFLICT (token) DO UPDATE SET links = excluded.links"
                    ),
                    vec![
                        b(r.iter().map(|t| t.token.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                        b(r.iter().map(|t| t.access.links.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                    ]
                ));
            }
            steps
        }
        Rows::RefreshTokens(r) => replace!(
            "refresh_tokens",
            "refresh_token",
            r.iter().map(|t| t.refresh_token.clone()).collect(),
            format!(
                "INSERT INTO {s}.refresh_tokens (refresh_token, user_id, client_id, scopes,
                 access_token, created_at)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                 $5::text[], $6::int8[])"
            ),
            [
                b(r.iter().map(|t| t.refresh.user_id.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                b(r.iter().map(|t| t.refresh.client_id.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                b(r.iter().map(|t| scopes_json(&t.refresh.scopes)).collect::<Vec<_>>(), T::TEXT_ARRAY),
                b(r.iter().map(|t| t.refresh.access_token.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                b(r.iter().map(|t| t.refresh.created_at).collect::<Vec<_>>(), T::INT8_ARRAY),
            ]
        ),
        Rows::AuthorizationCodes(r) => replace!(
            "authorization_codes",
            "code",
            r.iter().map(|(k, _)| k.clone()).collect(),
            format!(
                "INSERT INTO {s}.authorization_codes (code, user_id, api_key, client_id,
                 redirect_uri, code_challenge, code_challenge_method, scopes, expires_at,
                 created_at, resource, extra)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                 $5::text[], $6::text[], $7::text[], $8::text[], $9::int8[], $10::int8[],
                 $11::text[], $12::text[])"
            ),
            [
                b(r.iter().map(|(_, d)| d.user_id.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                b(r.iter().map(|(_, d)| d.api_key.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                b(r.iter().map(|(_, d)| d.client_id.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                b(r.iter().map(|(_, d)| d.redirect_uri.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                b(r.iter().map(|(_, d)| d.code_challenge.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                b(r.iter().map(|(_, d)| d.code_challenge_method.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                b(r.iter().map(|(_, d)| scopes_json(&d.scopes)).collect::<Vec<_>>(), T::TEXT_ARRAY),
                b(r.iter().map(|(_, d)| d.expires_at).collect::<Vec<_>>(), T::INT8_ARRAY),
                b(r.iter().map(|(_, d)| d.created_at).collect::<Vec<_>>(), T::INT8_ARRAY),
                b(r.iter().map(|(_, d)| d.resource.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                b(r.iter().map(|(_, d)| d.extra.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
            ]
        ),
        Rows::Clients(r) => vec![run!(
            format!(
                "INSERT INTO {s}.nts_clients (client_id, secret_digest, metadata, created_at)
                 SELECT c, d, m, t FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[])
                 WITH ORDINALITY AS u(c, d, m, t, n) ORDER BY n
                 ON CONFLICT (client_id) DO UPDATE SET secret_digest = excluded.secret_digest,
                     metadata = excluded.metadata, created_at = excluded.created_at"
            ),
            vec![
                b(r.iter().map(|c| c.client_id.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                b(r.iter().map(|c| c.secret_digest.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                b(r.iter().map(|c| c.metadata.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                b(r.iter().map(|c| c.created_at).collect::<Vec<_>>(), T::INT8_ARRAY),
            ]
        )],
        Rows::PendingAuthorizations(r) => vec![run!(
            format!(
                "INSERT INTO {s}.nts_pending_authorizations (state, data, expires_at)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::int8[])
                 ON CONFLICT (state) DO UPDATE SET data = excluded.data,
                     expires_at = excluded.expires_at"
            ),
            vec![
                b(r.iter().map(|p| p.state.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                b(r.iter().map(|p| p.data.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                b(r.iter().map(|p| p.expires_at).collect::<Vec<_>>(), T::INT8_ARRAY),
            ]
        )],
        Rows::RefreshFamilies(r) => replace!(
            "nts_refresh_families",
            "refresh_token",
            r.iter().map(|(k, _)| k.clone()).collect(),
            format!(
                "INSERT INTO {s}.nts_refresh_families (refresh_token, family)
                 SELECT * FROM unnest($1::text[], $2::text[])"
            ),
            [
                b(r.iter().map(|(_, f)| f.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
            ]
        ),
        Rows::RetiredRefreshTokens(r) => replace!(
            "nts_retired_refresh_tokens",
            "refresh_token",
            r.iter().map(|t| t.refresh_token.clone()).collect(),
            format!(
                "INSERT INTO {s}.nts_retired_refresh_tokens (refresh_token, family, retired_at)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::int8[])"
            ),
            [
                b(r.iter().map(|t| t.family.clone()).collect::<Vec<_>>(), T::TEXT_ARRAY),
                b(r.iter().map(|t| t.retired_at).collect::<Vec<_>>(), T::INT8_ARRAY),
            ]
        ),
    }
}
