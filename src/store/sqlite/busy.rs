//! The connection's busy handler: how a call waits for a lock another connection holds.

use std::time::Duration;

use rusqlite::Connection;

/// How often a call waiting for the write lock tries again. SQLite's own busy handler
/// backs off to sleeps of 25, 50 and 100 ms, so a writer that found the lock taken slept
/// through every gap a cleanup left between its short transactions, and waited up to 2 s
/// behind a backlog's cleanup (issue 15, defect 4); polling every millisecond, it takes the
/// lock in the pause that follows each cleanup transaction (`SqliteStore::cleanup_pause`).
pub(super) const BUSY_POLL: Duration = Duration::from_millis(1);

/// The state of a connection's busy handler (see `busy_wait`): how long a call may wait
/// for a lock, and since when the current call has waited.
pub(super) struct BusyWait {
    pub(super) timeout: Duration,
    pub(super) base: std::time::Instant,
    /// Nanoseconds after `base` when the current wait began.
    pub(super) since: std::sync::atomic::AtomicU64,
}

/// SQLite's busy handler: `count` is how many times it was called for this wait. Sleeps
/// `BUSY_POLL` (less at the end) and asks SQLite to try again, until the timeout.
pub(super) unsafe extern "C" fn busy_wait(
    arg: *mut std::os::raw::c_void,
    count: std::os::raw::c_int,
) -> std::os::raw::c_int {
    use std::sync::atomic::Ordering;
    // SAFETY: `arg` is the `BusyWait` that `Db` owns in a Box, installed with this
    // handler and removed (by closing the connection) before the Box is dropped.
    let state = unsafe { &*(arg as *const BusyWait) };
    let now = u64::try_from(state.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
    if count == 0 {
        state.since.store(now, Ordering::Relaxed);
    }
    let waited = Duration::from_nanos(now.saturating_sub(state.since.load(Ordering::Relaxed)));
    if waited >= state.timeout {
        return 0;
    }
    std::thread::sleep(BUSY_POLL.min(state.timeout - waited));
    1
}

/// Runs `f` again while it fails with SQLITE_BUSY, every `BUSY_POLL`, until `timeout` has
/// passed. For what SQLite refuses at once, without the busy handler, so as not to
/// deadlock: switching a file to WAL reads its header and then writes it, and the
/// connection holding that read lock while another holds the write lock (several
/// processes opening a new file together) is answered SQLITE_BUSY.
pub(super) fn retry_while_busy<T>(
    timeout: Duration,
    mut f: impl FnMut() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let started = std::time::Instant::now();
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ffi::ErrorCode::DatabaseBusy
                    && started.elapsed() < timeout =>
            {
                std::thread::sleep(BUSY_POLL);
            }
            other => return other,
        }
    }
}

/// Installs `busy_wait` with `state` as the connection's busy handler, or none (a locked
/// database then fails at once with SQLITE_BUSY).
pub(super) fn set_busy_handler(
    conn: &Connection,
    state: Option<&BusyWait>,
) -> rusqlite::Result<()> {
    let (handler, arg) = match state {
        Some(s) => (
            Some(busy_wait as unsafe extern "C" fn(_, _) -> _),
            (s as *const BusyWait).cast_mut().cast(),
        ),
        None => (None, std::ptr::null_mut()),
    };
    // SAFETY: the handle is this open connection's; `arg` points at a `BusyWait` that lives
    // as long as the connection (see `Db::busy`).
    let rc = unsafe { rusqlite::ffi::sqlite3_busy_handler(conn.handle(), handler, arg) };
    if rc == rusqlite::ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rc),
            None,
        ))
    }
}
