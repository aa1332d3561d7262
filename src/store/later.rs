//! Calls a caller drives on its own thread: a future of a store's (`TokenStore::later`,
//! wrapped by `ops::run_later`) polled by `turn`, which runs the PostgreSQL I/O thread's
//! runtime from the caller's thread for as long as there is work at hand and never waits.
//! The Promise API polls its calls this way from the JS thread, woken by libuv when the
//! runtime's descriptor (`io_fd`) is readable and by the calls' own wakers, so that a
//! round trip to the server has no thread of libuv's pool in between (see `napi/driven.rs`).
//! The PostgreSQL store's part of a call is a task of the runtime's, which the future
//! awaits: any thread running the runtime runs it, a synchronous call on the same thread
//! included (which may be waiting for the connection the call holds).

use std::future::Future;
use std::pin::Pin;

use crate::error::Result;

/// A store's call as a future; not `Send`: it stays on the thread that drives it.
pub type Later<T> = Pin<Box<dyn Future<Output = Result<T>>>>;

/// The descriptor that is readable when the runtime has I/O or a wake-up to handle (an
/// epoll instance on Linux), or `None` when it is not known (then the Promise API sends its
/// calls to libuv's pool instead).
pub fn io_fd() -> Option<i32> {
    #[cfg(feature = "postgres")]
    {
        super::postgres::io_fd()
    }
    #[cfg(not(feature = "postgres"))]
    {
        None
    }
}

/// Runs the runtime on this thread without waiting: `poll` polls the calls that were woken
/// (and says whether there were any); the runtime's tasks that are ready run, its I/O is
/// read without blocking, and again, until neither a call nor a task is left ready (or a
/// bound on the rounds is reached: then calls may be left woken, for the next turn). Where
/// another thread is running the runtime meanwhile, that thread does the work and the
/// calls' wakers say when to turn again. A call is polled outside tokio's cooperative
/// budget (`tokio::task::unconstrained`, see `PostgresStore::later`): a
/// budget spent would defer its wake-up to a park that may come only in another turn.
pub fn turn(poll: &mut dyn FnMut() -> bool) -> Result<()> {
    #[cfg(feature = "postgres")]
    {
        super::postgres::turn(poll)
    }
    #[cfg(not(feature = "postgres"))]
    {
        poll();
        Ok(())
    }
}

/// Drops `calls` where their I/O resources can deregister (inside the runtime's context).
pub fn discard<T>(calls: T) {
    #[cfg(feature = "postgres")]
    {
        super::postgres::discard(calls)
    }
    #[cfg(not(feature = "postgres"))]
    {
        drop(calls)
    }
}
