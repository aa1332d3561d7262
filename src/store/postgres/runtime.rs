//! The I/O thread every PostgreSQL store of the process shares, and ending connections on
//! it.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::runtime::Runtime;

use super::pool::Pooled;
use crate::error::{Result, StoreError};

/// The I/O thread every PostgreSQL store of the process shares.
pub(super) fn runtime() -> Result<&'static Runtime> {
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

/// How long ending a store's connections may take (a Terminate message and a close each).
pub(super) const END_WAIT: Duration = Duration::from_millis(500);

/// Ends connections: drops their clients and runs their tasks until the sockets are
/// closed. The I/O thread runs only while a call runs, so a connection merely dropped
/// stayed open until some later call of some store (issue 15, defect 8: dropped stores,
/// closed by the finalizer, kept their backends until the server ran out of connections).
pub(super) async fn end(conns: Vec<Pooled>) {
    let tasks: Vec<_> = conns.into_iter().map(|c| c.task).collect();
    let all = futures_util::future::join_all(tasks);
    let _ = tokio::time::timeout(END_WAIT, all).await;
}

/// `end`, from outside the I/O thread (`close`, `drop`).
pub(super) fn end_now(conns: Vec<Pooled>) {
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
