//! The PostgreSQL store: any number of processes on any number of hosts share one
//! database.
//!
//! The client is rust-postgres's async core (`tokio-postgres`) on one I/O thread shared by
//! every PostgreSQL store of the process, so that each call has a deadline of its own: a
//! dead server or a dropped network fails the call with `ERR_TOKEN_STORAGE_UNAVAILABLE`
//! after the query timeout, never hangs it. Calls block their own thread (the JavaScript
//! thread for the synchronous functions, one of libuv's for the Promise API) until the
//! answer or the deadline.
//!
//! - `url`: connection strings (URL and key-value forms, `sslmode`, `sslrootcert`);
//! - `tls`: rustls, one configuration per `sslmode`;
//! - `schema`: the migrations and the advisory lock they run under;
//! - `sql`: each operation's statements.
//!
//! A write is one transaction sent in one round trip (its statements pipelined), or one
//! statement. A failed connection is dropped and the next call opens another. A read that
//! fails on a connection the pool had kept is tried once more on a fresh one; a write is
//! retried only when PostgreSQL says it rolled it back (a deadlock or serialization
//! failure), never when its outcome is unknown.

mod schema;
mod sql;
mod tls;
mod url;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::TokenStore;
use crate::error::{Result, StoreError};
use crate::model::{
    is_expired, AccessToken, AuthorizationCode, ClientRecord, NewAccessToken, RefreshToken,
    RotateRequest, Rotated, Rotation, Stats,
};
use schema::{migrate, quote, MigrateError};
use sql::Sql;

pub use url::SslMode;

/// Expiry buckets of 2^12 ms (4 s), the finest of the counts (see `schema`).
const FINE_BUCKET_BITS: u32 = 12;

/// How often a write is tried when PostgreSQL rolls it back for a deadlock or a
/// serialization failure.
const WRITE_ATTEMPTS: usize = 4;

/// The settings of a PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresSettings {
    pub url: String,
    /// What to call the URL in messages (`TOKEN_DATABASE_URL`, `options.url`).
    pub url_name: String,
    pub schema: String,
    pub connect_timeout: Duration,
    pub query_timeout: Duration,
    pub pool_size: usize,
}

/// One database (and schema). Connections open at first use.
pub struct PostgresStore {
    settings: PostgresSettings,
    /// Parsed at the first call, so a bad URL fails calls, not the constructor.
    target: OnceLock<std::result::Result<Target, StoreError>>,
    sql: Sql,
    idle: Mutex<Vec<Pooled>>,
    permits: Semaphore,
    /// Bumped by `close`: connections of an older epoch are not put back.
    epoch: AtomicU64,
    /// Whether the schema was checked since the store was made or closed.
    migrated: AtomicBool,
    /// Whether a connection was made since the store was made or closed (for `open`).
    opened: AtomicBool,
}

struct Target {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    ssl_mode: SslMode,
    shown: String,
}

struct Pooled {
    client: Client,
    epoch: u64,
    /// The task that drives the connection's socket: it says goodbye to the server and
    /// closes the socket once the client is dropped, but only when it runs (see `end`).
    task: tokio::task::JoinHandle<()>,
}

/// How long ending a store's connections may take (a Terminate message and a close each).
const END_WAIT: Duration = Duration::from_millis(500);

/// Ends connections: drops their clients and runs their tasks until the sockets are
/// closed. The I/O thread runs only while a call runs, so a connection merely dropped
/// stayed open until some later call of some store (issue 15, defect 8: dropped stores,
/// closed by the finalizer, kept their backends until the server ran out of connections).
async fn end(conns: Vec<Pooled>) {
    let tasks: Vec<_> = conns.into_iter().map(|c| c.task).collect();
    let all = futures_util::future::join_all(tasks);
    let _ = tokio::time::timeout(END_WAIT, all).await;
}

/// `end`, from outside the I/O thread (`close`, `drop`).
fn end_now(conns: Vec<Pooled>) {
    if conns.is_empty() {
        return;
    }
    if tokio::runtime::Handle::try_current().is_ok() {
        // Inside the runtime (cannot block on it): its next turn ends them.
        drop(conns);
        return;
    }
    if let Ok(rt) = runtime() {
        rt.block_on(end(conns));
    }
}

/// Why one attempt failed: PostgreSQL's error, with whether the connection was a kept one
/// (so a read may try once more), or the store's own.
enum Failure {
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

/// Parses a connection string and builds its TLS configuration, as a store's first call
/// would, so that a bad one fails when the server starts.
pub fn check_url(url: &str, url_name: &str) -> Result<()> {
    let t = url::parse(url, url_name, Duration::from_secs(5))?;
    tls::connector(t.ssl_mode, t.root_cert.as_deref(), url_name).map(|_| ())
}

/// The I/O thread every PostgreSQL store of the process shares.
fn runtime() -> Result<&'static Runtime> {
    static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()
        })
        .as_ref()
        .ok_or(StoreError::Internal(
            "the PostgreSQL I/O thread cannot start",
        ))
}

impl PostgresStore {
    pub fn new(settings: PostgresSettings) -> Self {
        let sql = Sql::new(&quote(&settings.schema));
        let pool_size = settings.pool_size.max(1);
        PostgresStore {
            settings,
            target: OnceLock::new(),
            sql,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(pool_size),
            epoch: AtomicU64::new(0),
            migrated: AtomicBool::new(false),
            opened: AtomicBool::new(false),
        }
    }

    fn target(&self) -> Result<&Target> {
        self.target
            .get_or_init(|| {
                let s = &self.settings;
                let t = url::parse(&s.url, &s.url_name, s.connect_timeout)?;
                let tls = tls::connector(t.ssl_mode, t.root_cert.as_deref(), &s.url_name)?;
                let mut config = t.config;
                config.ssl_mode(match t.ssl_mode {
                    SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                    SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                    _ => tokio_postgres::config::SslMode::Require,
                });
                Ok(Target {
                    config,
                    tls,
                    ssl_mode: t.ssl_mode,
                    shown: t.shown,
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn shown(&self) -> String {
        match self.target() {
            Ok(t) => t.shown.clone(),
            Err(_) => "(PostgreSQL)".into(),
        }
    }

    /// The store error for a PostgreSQL error. Only SQLSTATEs and the client's own
    /// descriptions of I/O failures are shown: a server message may quote a value.
    fn error(&self, e: &tokio_postgres::Error) -> StoreError {
        let location = self.shown();
        let Some(db) = e.as_db_error() else {
            let reason = io_reason(e);
            // An sslmode the server cannot meet is the URL's to change: retrying never helps.
            if reason.contains("server does not support TLS") {
                let mode = match self.target().map(|t| t.ssl_mode) {
                    Ok(SslMode::VerifyCa) => "verify-ca",
                    Ok(SslMode::VerifyFull) => "verify-full",
                    _ => "require",
                };
                return StoreError::Config(format!(
                    "{}: sslmode={mode} but the server at {location} does not offer TLS; \
                     turn TLS on in the server (ssl = on), or, on a network you trust, use \
                     sslmode=prefer or sslmode=disable",
                    self.settings.url_name
                ));
            }
            // A certificate the sslmode refuses does not go away by retrying.
            if reason.contains("invalid peer certificate") {
                return StoreError::Open {
                    path: location,
                    reason,
                };
            }
            return StoreError::Unavailable { location, reason };
        };
        let code = db.code().code();
        let reason = |what: &str| format!("{what} (SQLSTATE {code})");
        match code {
            "40001" | "40P01" | "55P03" => StoreError::Busy { path: location },
            "53100" => StoreError::Full { path: location },
            "25006" => StoreError::ReadOnly { path: location },
            // The store's own statement_timeout is told apart where it is set (`transaction`):
            // this one is the server's, the database's or the role's, or an administrator's
            // cancel. Rolled back, and not the query timeout the caller chose.
            "57014" => StoreError::Postgres {
                location,
                reason: reason(
                    "the server cancelled a statement: a statement_timeout set on the server, \
                     the database or the role (ALTER ROLE … SET statement_timeout), or in the \
                     connection string's options, or pg_cancel_backend; raise or reset it \
                     (this store's own limit is queryTimeout)",
                ),
            },
            "3D000" => StoreError::Open {
                path: location,
                reason: reason("the database does not exist"),
            },
            "42P07" => StoreError::Open {
                path: location,
                reason: format!(
                    "schema {} already has tables named as the token store's, which it did not \
                     create; choose another schema (the schema option, TOKEN_DB_SCHEMA)",
                    self.settings.schema
                ),
            },
            c if c.starts_with("28") => StoreError::Open {
                path: location,
                reason: reason("the server refused the login"),
            },
            c if c.starts_with("08") || c.starts_with("57P") || c == "53300" => {
                StoreError::Unavailable {
                    location,
                    reason: reason("the server refused or ended the connection"),
                }
            }
            "42501" => StoreError::Postgres {
                location,
                reason: reason("permission denied"),
            },
            _ => StoreError::Postgres {
                location,
                reason: reason("PostgreSQL reported an error"),
            },
        }
    }

    fn unavailable(&self, reason: String) -> StoreError {
        StoreError::Unavailable {
            location: self.shown(),
            reason,
        }
    }

    /// A connection: a kept one if any is open, else a new one (the schema brought up to
    /// date on the first). Returns it with whether it was kept.
    async fn checkout(&self) -> std::result::Result<(Pooled, bool), Failure> {
        let epoch = self.epoch.load(Ordering::Acquire);
        // The connections' tasks run only while a call runs (one I/O thread, driven by the
        // calls): let them read what the server sent meanwhile, so that a connection it
        // closed while idle (a restart, an idle timeout, pg_terminate_backend) is seen
        // closed here, not when a write whose outcome would be unknown is sent on it.
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        loop {
            let kept = self.idle.lock().map_err(|_| StoreError::Poisoned)?.pop();
            match kept {
                Some(c) if !c.client.is_closed() && c.epoch == epoch => return Ok((c, true)),
                Some(c) => end(vec![c]).await,
                None => break,
            }
        }
        let target = self.target()?;
        let (mut client, connection) = target.config.connect(target.tls.clone()).await?;
        let task = tokio::spawn(async move {
            // Ends when the client is dropped or the server goes; errors reach the calls.
            let _ = connection.await;
        });
        if !self.migrated.load(Ordering::Acquire) {
            match migrate(&mut client, &self.settings.schema).await {
                Ok(()) => self.migrated.store(true, Ordering::Release),
                Err(MigrateError::Pg(e)) => return Err(Failure::Pg(e)),
                Err(MigrateError::Newer(found, ours)) => {
                    return Err(Failure::Store(StoreError::Open {
                        path: target.shown.clone(),
                        reason: format!(
                            "schema {} is at version {found}, newer than this package's {ours}; \
                             upgrade native-token-storage",
                            self.settings.schema
                        ),
                    }))
                }
            }
        }
        self.opened.store(true, Ordering::Release);
        Ok((
            Pooled {
                client,
                epoch,
                task,
            },
            false,
        ))
    }

    /// Puts a healthy connection back for the next call; ends one of a closed store.
    async fn checkin(&self, c: Pooled) {
        if c.client.is_closed() || c.epoch != self.epoch.load(Ordering::Acquire) {
            return end(vec![c]).await;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(c);
        }
    }

    /// Runs `op` on a connection, within the query timeout, on the I/O thread; `read`
    /// says whether it may be tried again after a failure of a kept connection.
    fn call<T>(
        &self,
        read: bool,
        op: impl AsyncFn(&Client, &Sql) -> std::result::Result<T, Failure>,
    ) -> Result<T> {
        let rt = runtime()?;
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
                        let broken = e.as_db_error().is_none() || conn.client.is_closed();
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
                        let again = (read && broken && kept && attempt == 1)
                            || (rolled_back && attempt < WRITE_ATTEMPTS);
                        if !again {
                            return Err(self.error(&e));
                        }
                    }
                }
            }
        };
        rt.block_on(async {
            match tokio::time::timeout(deadline, work).await {
                Ok(r) => r,
                // The connection in use is dropped with the future: its outcome is unknown.
                Err(_) => Err(self.past_query_timeout()),
            }
        })
    }

    fn past_query_timeout(&self) -> StoreError {
        self.unavailable(format!(
            "no answer within the query timeout ({} ms)",
            self.settings.query_timeout.as_millis()
        ))
    }
}

impl Drop for PostgresStore {
    /// A store dropped unclosed (its JavaScript object collected) closes its sockets too.
    fn drop(&mut self) {
        if let Ok(idle) = self.idle.get_mut() {
            end_now(std::mem::take(idle));
        }
    }
}

/// One statement of a transaction, not yet sent.
type Step<'c> =
    Pin<Box<dyn Future<Output = std::result::Result<Vec<Row>, tokio_postgres::Error>> + 'c>>;

fn step<'c>(
    f: impl Future<Output = std::result::Result<Vec<Row>, tokio_postgres::Error>> + 'c,
) -> Step<'c> {
    Box::pin(f)
}

/// Runs a transaction's statements in one round trip: `BEGIN`, the statements
/// pipelined, `COMMIT`. A failed statement makes PostgreSQL roll it all back (its
/// `COMMIT` then answers `ROLLBACK`).
async fn transaction(
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

/// PostgreSQL's text cannot hold the NUL character: a value with one cannot be stored,
/// and no stored row has one.
fn has_nul(values: &[&str]) -> bool {
    values.iter().any(|v| v.contains('\0'))
}

fn nul_refused() -> StoreError {
    StoreError::InvalidArgument(
        "a PostgreSQL store cannot hold the NUL character (\\0) in a token, code, key or id".into(),
    )
}

/// What the client says of an I/O failure (refused, reset, closed, TLS): never a value.
fn io_reason(e: &tokio_postgres::Error) -> String {
    if e.is_closed() {
        return "the connection was closed".into();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// The rows a batch of `storeAccessTokens` leaves, by column.
#[derive(Default)]
struct Columns {
    /// `None`: a row that only takes its refresh string from the token that has it (the
    /// string of a record that a later record of the same token replaced).
    token: Vec<Option<String>>,
    api_key: Vec<String>,
    user_id: Vec<Option<String>>,
    client_id: Vec<String>,
    scopes: Vec<String>,
    refresh_token: Vec<Option<String>>,
    expires_at: Vec<Option<i64>>,
}

impl Columns {
    /// What storing `tokens` one after the other leaves: the last token of each string,
    /// each refresh string with the last token given it, and the refresh strings that end
    /// with no token (taken from whoever had them, and dropped).
    fn resolve(tokens: &[NewAccessToken]) -> Columns {
        use std::collections::HashMap;
        let mut last: HashMap<&str, usize> = HashMap::new();
        let mut owner: HashMap<&str, usize> = HashMap::new();
        let mut refresh: Vec<Option<&str>> = Vec::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            if let Some(prev) = last.insert(&t.token, i) {
                if let Some(r) = refresh[prev] {
                    if owner.get(r) == Some(&prev) {
                        owner.remove(r);
                    }
                }
            }
            let r = t.refresh_token.as_deref().filter(|r| !r.is_empty());
            if let Some(r) = r {
                if let Some(prev) = owner.insert(r, i) {
                    refresh[prev] = None;
                }
            }
            refresh.push(r);
        }
        let mut out = Columns::default();
        for (i, t) in tokens.iter().enumerate() {
            if last.get(t.token.as_str()) != Some(&i) {
                continue;
            }
            out.token.push(Some(t.token.clone()));
            out.api_key.push(t.api_key.clone());
            out.user_id.push(t.user_id.clone());
            out.client_id.push(t.client_id.clone());
            out.scopes.push(scopes_json(&t.scopes));
            out.refresh_token.push(refresh[i].map(str::to_owned));
            out.expires_at.push(t.expires_at);
        }
        let mut dropped: Vec<&str> = tokens
            .iter()
            .filter_map(|t| t.refresh_token.as_deref())
            .filter(|r| !r.is_empty() && !owner.contains_key(r))
            .collect();
        dropped.sort_unstable();
        dropped.dedup();
        for r in dropped {
            out.token.push(None);
            out.api_key.push(String::new());
            out.user_id.push(None);
            out.client_id.push(String::new());
            out.scopes.push(String::new());
            out.refresh_token.push(Some(r.to_owned()));
            out.expires_at.push(None);
        }
        out
    }
}

fn scopes_json(scopes: &[String]) -> String {
    serde_json::to_string(scopes).unwrap_or_else(|_| "[]".into())
}

fn scopes(row: &Row, i: usize) -> std::result::Result<Vec<String>, tokio_postgres::Error> {
    let text: Option<String> = row.try_get(i)?;
    Ok(text
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

fn read_code(row: &Row) -> std::result::Result<AuthorizationCode, tokio_postgres::Error> {
    Ok(AuthorizationCode {
        user_id: row.try_get(0)?,
        api_key: row.try_get(1)?,
        client_id: row.try_get(2)?,
        redirect_uri: row.try_get(3)?,
        code_challenge: row.try_get(4)?,
        code_challenge_method: row.try_get(5)?,
        scopes: scopes(row, 6)?,
        expires_at: row.try_get(7)?,
        created_at: row.try_get(8)?,
    })
}

/// A statement to run: its SQL and its parameters with their types.
macro_rules! q {
    ($client:expr, $sql:expr $(, $v:expr => $t:ident)* $(,)?) => {
        async move { $client.query_typed(&$sql, &[$((&$v as &(dyn ToSql + Sync), Type::$t)),*]).await }
    };
}

impl TokenStore for PostgresStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn location(&self) -> Option<String> {
        self.target().ok().map(|t| t.shown.clone())
    }

    fn open(&self) -> Result<bool> {
        self.call(true, async |_, _| Ok(()))?;
        Ok(self.opened.swap(false, Ordering::AcqRel))
    }

    /// Closes every kept connection, its socket closed before this returns (those in use
    /// close when their call ends); the next call connects again.
    fn close(&self) -> Result<()> {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.migrated.store(false, Ordering::Release);
        let kept = std::mem::take(&mut *self.idle.lock().map_err(|_| StoreError::Poisoned)?);
        end_now(kept);
        Ok(())
    }

    /// One round trip: the batch is first resolved here to the rows it leaves (a later
    /// token replaces an earlier one with its string; a refresh string given again leaves
    /// the earlier token), then written by one call of `nts_store_access_tokens` (one
    /// statement, so one transaction), whose set-based statements keep their plans.
    fn store_access_tokens(&self, tokens: &[NewAccessToken], now: i64) -> Result<()> {
        for t in tokens {
            let refresh = t.refresh_token.as_deref().unwrap_or("");
            let user = t.user_id.as_deref().unwrap_or("");
            if has_nul(&[&t.token, refresh, &t.api_key, user, &t.client_id]) {
                return Err(nul_refused());
            }
        }
        let rows = Columns::resolve(tokens);
        self.call(false, async |c, sql| {
            let r = &rows;
            // One statement: the function's writes commit together.
            q!(c, sql.store_access_tokens,
                r.token => TEXT_ARRAY, r.api_key => TEXT_ARRAY, r.user_id => TEXT_ARRAY,
                r.client_id => TEXT_ARRAY, r.scopes => TEXT_ARRAY, r.refresh_token => TEXT_ARRAY,
                r.expires_at => INT8_ARRAY, now => INT8)
            .await?;
            Ok(())
        })
    }

    fn get_access_token(&self, token: &str, now: i64) -> Result<Option<AccessToken>> {
        if has_nul(&[token]) {
            return Ok(None);
        }
        let found = self.call(true, async |c, sql| {
            let rows = q!(c, sql.select_access, token => TEXT).await?;
            let Some(r) = rows.first() else {
                return Ok(None);
            };
            Ok(Some(AccessToken {
                api_key: r.try_get(0)?,
                user_id: r.try_get::<_, Option<String>>(1)?.filter(|u| !u.is_empty()),
                client_id: r.try_get(2)?,
                scopes: scopes(r, 3)?,
                refresh_token: r.try_get::<_, Option<String>>(4)?.filter(|s| !s.is_empty()),
                expires_at: r.try_get(5)?,
                created_at: r.try_get(6)?,
            }))
        })?;
        match found {
            Some(t) if is_expired(t.expires_at, now) => {
                self.remove_if_expired(token, now);
                Ok(None)
            }
            other => Ok(other),
        }
    }

    fn store_authorization_code(&self, code: &str, d: &AuthorizationCode) -> Result<()> {
        let optional = |v: &Option<String>| v.clone().unwrap_or_default();
        if has_nul(&[
            code,
            &optional(&d.user_id),
            &d.api_key,
            &d.client_id,
            &d.redirect_uri,
            &optional(&d.code_challenge),
            &optional(&d.code_challenge_method),
        ]) {
            return Err(nul_refused());
        }
        let scopes = scopes_json(&d.scopes);
        let scopes = scopes.as_str();
        self.call(false, async |c, sql| {
            // One statement: the function's delete and insert commit together.
            q!(c, sql.store_code, code => TEXT, d.user_id => TEXT, d.api_key => TEXT,
                d.client_id => TEXT, d.redirect_uri => TEXT, d.code_challenge => TEXT,
                d.code_challenge_method => TEXT, scopes => TEXT, d.expires_at => INT8,
                d.created_at => INT8)
            .await?;
            Ok(())
        })
    }

    /// One statement that deletes and returns: of any number of concurrent takes, on any
    /// number of hosts, one gets the row. Never retried: its outcome may be unknown.
    fn take_authorization_code(&self, code: &str, now: i64) -> Result<Option<AuthorizationCode>> {
        if has_nul(&[code]) {
            return Ok(None);
        }
        let taken = self.call(false, async |c, sql| {
            let rows = q!(c, sql.take_code, code => TEXT).await?;
            rows.first().map(read_code).transpose().map_err(Failure::Pg)
        })?;
        Ok(taken.filter(|d| !is_expired(Some(d.expires_at), now)))
    }

    fn get_refresh_token(&self, refresh_token: &str, now: i64) -> Result<Option<RefreshToken>> {
        if has_nul(&[refresh_token]) {
            return Ok(None);
        }
        let found = self.call(true, async |c, sql| {
            let rows = q!(c, sql.select_refresh, refresh_token => TEXT).await?;
            let Some(r) = rows.first() else {
                return Ok(None);
            };
            let live = r.try_get::<_, bool>(5)? && !is_expired(r.try_get(6)?, now);
            Ok(Some((
                live,
                RefreshToken {
                    user_id: r.try_get::<_, Option<String>>(0)?.filter(|u| !u.is_empty()),
                    client_id: r.try_get(1)?,
                    scopes: scopes(r, 2)?,
                    access_token: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                },
            )))
        })?;
        match found {
            Some((true, r)) => Ok(Some(r)),
            Some((false, r)) => {
                self.remove_if_expired(&r.access_token, now);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    fn revoke_refresh_token(&self, refresh_token: &str) -> Result<()> {
        if has_nul(&[refresh_token]) {
            return Ok(());
        }
        self.call(false, async |c, sql| {
            q!(c, sql.revoke_refresh, refresh_token => TEXT).await?;
            Ok(())
        })
    }

    fn delete_token(&self, token: &str) -> Result<()> {
        if has_nul(&[token]) {
            return Ok(());
        }
        self.call(false, async |c, sql| {
            q!(c, sql.delete_access, token => TEXT).await?;
            Ok(())
        })
    }

    fn delete_user_tokens(&self, user_id: &str) -> Result<()> {
        if user_id.is_empty() || has_nul(&[user_id]) {
            return Ok(());
        }
        self.call(false, async |c, sql| {
            q!(c, sql.delete_user, user_id => TEXT).await?;
            Ok(())
        })
    }

    /// The expired rows first; the counters' past buckets are folded and the family records
    /// of gone tokens pruned once nothing expired is left (each scans its whole table).
    fn cleanup_expired(&self, now: i64, limit: usize) -> Result<usize> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let fine = now >> FINE_BUCKET_BITS;
        let removed = self.call(false, async |c, sql| {
            let steps: Vec<Step> = vec![step(q!(c, sql.cleanup, now => INT8, limit => INT8))];
            let results = transaction(c, self.settings.query_timeout, steps).await?;
            let removed: i64 = match results.first().and_then(|rows| rows.first()) {
                Some(r) => r.try_get(0)?,
                None => 0,
            };
            Ok(removed)
        })?;
        if removed < limit {
            self.call(false, async |c, sql| {
                let steps: Vec<Step> = vec![
                    step(q!(c, sql.fold_counts, fine => INT8)),
                    step(q!(c, sql.drop_zero_counts, fine => INT8)),
                    step(q!(c, sql.prune_families, limit => INT8)),
                    step(q!(c, sql.prune_retired, limit => INT8)),
                ];
                transaction(c, self.settings.query_timeout, steps).await?;
                Ok(())
            })?;
        }
        Ok(usize::try_from(removed).unwrap_or(0))
    }

    /// A transaction costs a round trip or more, and holds only the rows it removes (which
    /// other instances' cleanups skip): longer slices than SQLite's.
    fn cleanup_slice(&self) -> Duration {
        Duration::from_millis(100)
    }

    fn rotate_refresh_token(&self, request: &RotateRequest, now: i64) -> Result<Rotation> {
        self.rotate(request, now)
    }

    fn put_client(&self, client: &ClientRecord) -> Result<()> {
        if has_nul(&[&client.client_id]) {
            return Err(nul_refused());
        }
        self.call(false, async |c, sql| {
            q!(c, sql.put_client, client.client_id => TEXT, client.secret_digest => TEXT,
                client.metadata => TEXT, client.created_at => INT8)
            .await?;
            Ok(())
        })
    }

    fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        if has_nul(&[client_id]) {
            return Ok(None);
        }
        self.call(true, async |c, sql| {
            let rows = q!(c, sql.get_client, client_id => TEXT).await?;
            let Some(r) = rows.first() else {
                return Ok(None);
            };
            Ok(Some(ClientRecord {
                client_id: r.try_get(0)?,
                secret_digest: r.try_get(1)?,
                metadata: r.try_get(2)?,
                created_at: r.try_get(3)?,
            }))
        })
    }

    fn client_ids(&self) -> Result<Vec<String>> {
        self.call(true, async |c, sql| {
            let rows = q!(c, sql.client_ids).await?;
            rows.iter()
                .map(|r| r.try_get(0).map_err(Failure::Pg))
                .collect()
        })
    }

    fn store_pending_authorization(
        &self,
        state: &str,
        data: &str,
        expires_at: i64,
        _now: i64,
    ) -> Result<()> {
        if has_nul(&[state]) {
            return Err(nul_refused());
        }
        self.call(false, async |c, sql| {
            q!(c, sql.store_pending, state => TEXT, data => TEXT, expires_at => INT8).await?;
            Ok(())
        })
    }

    fn take_pending_authorization(&self, state: &str, now: i64) -> Result<Option<String>> {
        if has_nul(&[state]) {
            return Ok(None);
        }
        let taken = self.call(false, async |c, sql| {
            let rows = q!(c, sql.take_pending, state => TEXT).await?;
            let Some(r) = rows.first() else {
                return Ok(None);
            };
            Ok(Some((r.try_get::<_, String>(0)?, r.try_get::<_, i64>(1)?)))
        })?;
        Ok(taken
            .filter(|(_, at)| !is_expired(Some(*at), now))
            .map(|(d, _)| d))
    }

    fn stats(&self, now: i64) -> Result<Stats> {
        self.call(true, async |c, sql| {
            let rows = q!(c, sql.stats, now => INT8).await?;
            let r = rows
                .first()
                .ok_or(StoreError::Internal("getStats returned no row"))?;
            // One statement: the counters and the rows are one snapshot.
            Ok(Stats {
                total_tokens: r.try_get::<_, i64>(0)?.max(0) as u64,
                unique_users: r.try_get::<_, i64>(1)?.max(0) as u64,
            })
        })
    }
}

impl PostgresStore {
    fn rotate(&self, req: &RotateRequest, now: i64) -> Result<Rotation> {
        if has_nul(&[&req.refresh_token]) {
            return Ok(Rotation::Unknown);
        }
        if has_nul(&[&req.new_access_token, &req.new_refresh_token]) {
            return Err(nul_refused());
        }
        self.call(false, async |c, sql| {
            let rows = q!(c, sql.rotate, req.refresh_token => TEXT,
                req.new_access_token => TEXT, req.new_refresh_token => TEXT,
                req.expires_at => INT8, now => INT8, req.grace_ms => INT8)
            .await?;
            let r = rows
                .first()
                .ok_or(StoreError::Internal("nts_rotate returned no row"))?;
            Ok(match r.try_get::<_, i16>(0)? {
                1 => Rotation::Rotated(Rotated {
                    user_id: r.try_get::<_, Option<String>>(1)?.filter(|u| !u.is_empty()),
                    client_id: r.try_get(2)?,
                    scopes: scopes(r, 3)?,
                    api_key: r.try_get(4)?,
                    access_token: req.new_access_token.clone(),
                    refresh_token: req.new_refresh_token.clone(),
                }),
                2 => Rotation::Reused {
                    within_grace: true,
                    revoked: 0,
                },
                3 => Rotation::Reused {
                    within_grace: false,
                    revoked: usize::try_from(r.try_get::<_, i64>(5)?).unwrap_or(0),
                },
                _ => Rotation::Unknown,
            })
        })
    }

    /// Removes an access token that a read found expired, unless it was replaced since.
    /// The read's answer does not depend on it: a failure is left for cleanup.
    fn remove_if_expired(&self, token: &str, now: i64) {
        let _ = self.call(false, async |c, sql| {
            q!(c, sql.delete_access_if_expired, token => TEXT, now => INT8).await?;
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
pub use tests::TestSchema;
