//! One call: a connection from the pool, the query timeout as its deadline, the retries a
//! read or a rolled-back write may have; and a transaction's statements in one round trip.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use std::sync::atomic::Ordering;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Row};

use super::runtime::runtime;
use super::pool::Session;
use super::sql::Sql;
use super::PostgresStore;
use crate::error::{Result, StoreError};

/// How often a write is tried when PostgreSQL rolls it back for a deadlock or a
/// serialization failure.
pub(super) const WRITE_ATTEMPTS: usize = 4;

/// Calls sent unnamed, before the session is proved, after which a store that has not read
/// yet starts its listener to prove it (see `named_ok`).
pub(super) const PROVE_AFTER: u32 = 64;

/// Why one attempt failed: PostgreSQL's error (on a kept connection, a read may try
/// again), or the store's own.
pub(super) enum Failure {
    Pg(tokio_postgres::Error),
    Store(StoreError),
    /// A statement ran past the `statement_timeout` the store set itself (the query
    /// timeout), as opposed to one set on the server, database or role.
    QueryTimeout,
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Failure::Pg(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl PostgresStore {
    /// Runs `op` on a connection, within the query timeout, on the I/O thread; `read`
    /// says whether it may be tried again after a failure of a kept connection.
    pub(super) fn call<T>(
        &self,
        read: bool,
        op: impl AsyncFn(&Session, &Sql) -> std::result::Result<T, Failure>,
    ) -> Result<T> {
        runtime()?.block_on(self.call_async(read, op))
    }

    /// `call` as a future, for a caller that drives the I/O thread's runtime itself (the
    /// Promise API's calls, `later`) or is already on it.
    pub(super) async fn call_async<T>(
        &self,
        read: bool,
        op: impl AsyncFn(&Session, &Sql) -> std::result::Result<T, Failure>,
    ) -> Result<T> {
        let deadline = self.settings.query_timeout;
        let work = async {
            let _permit = self
                .permits
                .acquire()
                .await
                .map_err(|_| StoreError::Internal("the connection pool was closed"))?;
            let mut attempt = 0;
            loop {
                attempt += 1;
                let (conn, kept) = match self.checkout().await {
                    Ok(c) => c,
                    Err(Failure::Pg(e)) => return Err(self.error(&e)),
                    Err(Failure::Store(e)) => return Err(e),
                    Err(Failure::QueryTimeout) => return Err(self.past_query_timeout()),
                };
                let named = self.named_ok();
                conn.client.use_named(named);
                let result = op(&conn.client, &self.sql).await;
                match result {
                    Ok(v) => {
                        self.checkin(conn).await;
                        return Ok(v);
                    }
                    Err(Failure::Store(e)) => {
                        self.checkin(conn).await;
                        return Err(e);
                    }
                    Err(Failure::QueryTimeout) => {
                        self.checkin(conn).await;
                        return Err(self.past_query_timeout());
                    }
                    Err(Failure::Pg(e)) => {
                        // The connection is gone: the client saw it close, or the server
                        // said it ends the session (SQLSTATE 57P01-57P05: a shutdown, a
                        // restart, pg_terminate_backend, an idle timeout; class 08: a
                        // connection exception), which may come before the close is seen.
                        let ended = e
                            .code()
                            .is_some_and(|c| c.code().starts_with("57P") || c.code().starts_with("08"));
                        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
                        let gone = ended || io || e.is_closed() || conn.client.is_closed();
                        let broken = e.as_db_error().is_none() || gone;
                        // A named statement the server did not have (or had another of
                        // that name: a transaction-mode pooler, which moves a connection's
                        // calls between server connections), or whose plan no longer fits
                        // (a migration replaced what it reads): refused before it ran.
                        let pooler = matches!(e.code(),
                            Some(c) if *c == SqlState::INVALID_SQL_STATEMENT_NAME
                                || *c == SqlState::DUPLICATE_PSTATEMENT);
                        let replan = pooler
                            || e.code() == Some(&SqlState::FEATURE_NOT_SUPPORTED);
                        if named && replan {
                            conn.client.forget();
                            if pooler {
                                self.named.store(false, Ordering::Release);
                            }
                        }
                        if !broken {
                            self.checkin(conn).await;
                        }
                        // A deadlock, a serialization failure, or a row of the same key
                        // inserted by a concurrent transaction: PostgreSQL rolled it back.
                        let rolled_back = !read
                            && matches!(
                                e.as_db_error().map(|d| d.code().code()),
                                Some("40001" | "40P01" | "23P01" | "23505")
                            );
                        // A read that met a dead kept connection goes on to the next (the
                        // server may have ended them all: a restart), then to a new one; a
                        // failure of the client's own (a row it could not decode) once only.
                        let again = (read
                            && broken
                            && kept
                            && (attempt == 1 || (gone && attempt <= self.settings.pool_size)))
                            || (rolled_back && attempt < WRITE_ATTEMPTS)
                            || (named && replan && attempt == 1);
                        if !again {
                            return Err(self.error(&e));
                        }
                    }
                }
            }
        };
        match tokio::time::timeout(deadline, work).await {
            Ok(r) => r,
            // The connection in use is dropped with the future: its outcome is unknown.
            Err(_) => Err(self.past_query_timeout()),
        }
    }

    /// Whether a call may send named statements (prepared once per connection): unless
    /// the URL says a pooler keeps none, or one was not found; and only once the change
    /// feed's ping came back, which a transaction-mode pooler never shows. A store that
    /// only writes starts the feed's listener for that ping after `PROVE_AFTER` calls sent
    /// unnamed (a read starts it at once); a short-lived one (a command, a script of a few
    /// calls) opens no more connections than its calls need.
    fn named_ok(&self) -> bool {
        if !self.named.load(Ordering::Acquire) || !self.target().is_ok_and(|t| !t.unnamed) {
            return false;
        }
        if self.cache.session_proved() {
            return true;
        }
        if self.unproved_calls.load(Ordering::Relaxed) >= PROVE_AFTER {
            self.ensure_listener();
        } else {
            self.unproved_calls.fetch_add(1, Ordering::Relaxed);
        }
        false
    }

    pub(super) fn past_query_timeout(&self) -> StoreError {
        self.unavailable(format!(
            "no answer within the query timeout ({} ms)",
            self.settings.query_timeout.as_millis()
        ))
    }
}

/// One statement of a transaction, not yet sent.
pub(super) type Step<'c> =
    Pin<Box<dyn Future<Output = std::result::Result<Vec<Row>, tokio_postgres::Error>> + 'c>>;

pub(super) fn step<'c>(
    f: impl Future<Output = std::result::Result<Vec<Row>, tokio_postgres::Error>> + 'c,
) -> Step<'c> {
    Box::pin(f)
}

/// Runs a transaction's statements in one round trip: `BEGIN`, the statements
/// pipelined, `COMMIT`. A failed statement makes PostgreSQL roll it all back (its
/// `COMMIT` then answers `ROLLBACK`).
pub(super) async fn transaction(
    client: &Client,
    timeout: Duration,
    steps: Vec<Step<'_>>,
) -> std::result::Result<Vec<Vec<Row>>, Failure> {
    let begin = format!(
        "BEGIN; SET LOCAL statement_timeout = {}",
        timeout.as_millis().max(1)
    );
    let (began, results, committed) = tokio::join!(
        client.batch_execute(&begin),
        futures_util::future::join_all(steps),
        client.batch_execute("COMMIT"),
    );
    let own_timeout = |e: tokio_postgres::Error| match e.code() {
        // The statement_timeout set above: this call's query timeout.
        Some(c) if *c == tokio_postgres::error::SqlState::QUERY_CANCELED => Failure::QueryTimeout,
        _ => Failure::Pg(e),
    };
    began?;
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        // A statement after a failed one fails "in failed transaction": the first
        // failure is the one to report.
        out.push(r.map_err(own_timeout)?);
    }
    committed?;
    Ok(out)
}
