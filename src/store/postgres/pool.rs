//! The pool: connections kept open between calls, handed out (a new one brings the schema
//! up to date first) and taken back, and closed with the store.

use std::sync::atomic::{AtomicBool, Ordering};

use std::collections::HashMap;
use std::sync::Mutex;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row, Statement};

use super::call::Failure;
use super::runtime::{end, end_now, runs_the_runtime, spawn_noted};
use super::schema::{migrate, MigrateError};
use super::PostgresStore;
use crate::error::StoreError;

pub(super) struct Pooled {
    pub(super) client: Session,
    pub(super) epoch: u64,
    /// The task that drives the connection's socket: it says goodbye to the server and
    /// closes the socket once the client is dropped, but only when it runs (see `end`).
    pub(super) task: tokio::task::JoinHandle<()>,
}

impl PostgresStore {
    /// A connection: a kept one if any is open, else a new one (the schema brought up to
    /// date on the first). Returns it with whether it was kept.
    pub(super) async fn checkout(&self) -> std::result::Result<(Pooled, bool), Failure> {
        let epoch = self.epoch.load(Ordering::Acquire);
        if !self.idle.lock().map_err(|_| StoreError::Poisoned)?.is_empty() {
            settle().await;
        }
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
        let task = spawn_noted(async move {
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
                client: Session {
                    client,
                    statements: Mutex::new(HashMap::new()),
                    named: AtomicBool::new(false),
                },
                epoch,
                task,
            },
            false,
        ))
    }

    /// Puts a healthy connection back for the next call; ends one of a closed store.
    pub(super) async fn checkin(&self, c: Pooled) {
        if c.client.is_closed() || c.epoch != self.epoch.load(Ordering::Acquire) {
            return end(vec![c]).await;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(c);
        }
    }
}

/// Lets the kept connections' tasks read what the server sent them meanwhile, so that one
/// it closed while idle (a restart, an idle timeout, pg_terminate_backend) is seen closed
/// by `checkout`, not when a write whose outcome would be unknown is sent on it. Those
/// tasks run only while some call runs the runtime (one I/O thread, driven by the calls).
/// On the thread that runs it, each `yield_now` reads the I/O without blocking and runs the
/// tasks it woke before this call goes on; the second lets a task that one of those woke
/// in turn run too. A call on another thread (a Promise call on libuv's pool, a cleanup,
/// while the JS thread runs the runtime) waits instead for a task of the runtime's own that
/// does the same where the runtime runs (its yields there would return at once).
async fn settle() {
    async fn twice() {
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
    }
    if runs_the_runtime() {
        twice().await;
    } else {
        let _ = spawn_noted(twice()).await;
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

/// A connection and the statements prepared on it. A statement of one call is prepared
/// once per connection (named: the server parses and plans it once, not at every call)
/// when `named` says so; otherwise, and in transactions, statements go unnamed.
pub(super) struct Session {
    client: Client,
    /// By their text.
    statements: Mutex<HashMap<Box<str>, Statement>>,
    named: AtomicBool,
}

impl std::ops::Deref for Session {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Session {
    /// Whether this call may use (and prepare) named statements.
    pub(super) fn use_named(&self, named: bool) {
        self.named.store(named, Ordering::Relaxed);
    }

    /// Forgets the statements prepared here (the server no longer has them, or their
    /// plans no longer fit): they are prepared again when next used.
    pub(super) fn forget(&self) {
        if let Ok(mut m) = self.statements.lock() {
            m.clear();
        }
    }

    /// Runs `sql`: named and prepared once on this connection if allowed, else unnamed
    /// with its parameters' types. Not within `transaction` (a statement prepared there
    /// would be sent after its `COMMIT`).
    pub(super) async fn run(
        &self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        if !self.named.load(Ordering::Relaxed) {
            return self.client.query_typed(sql, params).await;
        }
        let kept = self
            .statements
            .lock()
            .ok()
            .and_then(|m| m.get(sql).cloned());
        let statement = match kept {
            Some(s) => s,
            None => {
                let types: Vec<Type> = params.iter().map(|(_, t)| t.clone()).collect();
                let s = self.client.prepare_typed(sql, &types).await?;
                if let Ok(mut m) = self.statements.lock() {
                    m.insert(sql.into(), s.clone());
                }
                s
            }
        };
        let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(v, _)| *v).collect();
        self.client.query(&statement, &values).await
    }
}
