//! The pool: connections kept open between calls, handed out (a new one brings the schema
//! up to date first) and taken back, and closed with the store.

use std::sync::atomic::Ordering;

use tokio_postgres::Client;

use super::call::Failure;
use super::runtime::{end, end_now};
use super::schema::{migrate, MigrateError};
use super::PostgresStore;
use crate::error::StoreError;

pub(super) struct Pooled {
    pub(super) client: Client,
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
    pub(super) async fn checkin(&self, c: Pooled) {
        if c.client.is_closed() || c.epoch != self.epoch.load(Ordering::Acquire) {
            return end(vec![c]).await;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(c);
        }
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
