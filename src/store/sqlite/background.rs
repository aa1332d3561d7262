//! The checkpoint thread: WAL checkpoints off the caller's thread.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// WAL frames after which a commit asks for a checkpoint (SQLite's own default).
const CHECKPOINT_FRAMES: i32 = 1000;

/// Moves WAL checkpoints off the caller's thread. SQLite runs them inside the commit that
/// crosses the threshold, so now and then one `storeAccessToken` paid for copying
/// thousands of pages back into the file. Here that commit only wakes a thread with its own
/// connection, which runs a PASSIVE checkpoint (never blocking readers or writers). The
/// thread is not a libuv handle, so it never keeps Node's event loop alive; it ends when
/// the connection is dropped. If it cannot run, the commit checkpoints itself, as before.
pub(super) fn checkpoint_in_background(
    conn: &mut Connection,
    path: &Path,
    busy_timeout: Duration,
) -> rusqlite::Result<Option<std::thread::JoinHandle<()>>> {
    use std::sync::mpsc::{sync_channel, TrySendError};
    let (wake, woken) = sync_channel::<()>(1);
    let path = path.to_owned();
    let spawned = std::thread::Builder::new()
        .name("token-storage-checkpoint".into())
        .spawn(move || {
            yield_cpu_to_js_thread();
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let Ok(c) = Connection::open_with_flags(&path, flags) else {
                return;
            };
            let _ = c.busy_timeout(busy_timeout);
            while woken.recv().is_ok() {
                let _ = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            }
        });
    let Ok(thread) = spawned else {
        return Ok(None); // keep SQLite's own auto-checkpoint
    };
    conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, frames: i32| {
        // Under sustained writes the thread always lags a little, and SQLite can restart
        // the WAL only after a checkpoint that caught up: past 4x the threshold the commit
        // catches up itself (cheaply: the thread has copied most pages), so the WAL
        // stays bounded.
        let inline = frames >= 4 * CHECKPOINT_FRAMES
            || (frames >= CHECKPOINT_FRAMES
                && matches!(wake.try_send(()), Err(TrySendError::Disconnected(()))));
        if inline {
            let _ = wal.checkpoint();
        }
        Ok(())
    }))?;
    Ok(Some(thread))
}

/// Lowers the calling thread's scheduling priority (nice +10), so that on a busy machine
/// the checkpoint gives way to the JS thread: over 7 background cleanups of 100k expired
/// tokens at 1M on 2 cores, the longest event-loop gap went from 5-15 ms to 4-8 ms, and
/// cleanup throughput from ~19k to ~22k tokens/s. Linux only, where a thread has
/// a nice value of its own (elsewhere `setpriority` would apply to the whole process).
fn yield_cpu_to_js_thread() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority reads no memory of ours; who = 0 is the calling thread. A
    // failure leaves the priority as it was, which is harmless.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}
