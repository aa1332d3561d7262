//! The checkpoint thread: WAL checkpoints off the caller's thread.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

/// WAL frames after which a commit asks for a checkpoint (SQLite's own default).
const CHECKPOINT_FRAMES: i32 = 1000;
/// A commit finishes the thread's checkpoint itself when at most this many frames are left
/// to copy: a few pages and the file's `fsync`, after which the next write starts the WAL
/// over (see `Progress`), while that has been cheap (see `Pacing`).
const FINISH_FRAMES: i32 = 256;
/// A catch-up on the caller that took longer than this is dear (see `Pacing`).
const FINISH_BUDGET: Duration = Duration::from_millis(8);

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
    let progress = Arc::new(Progress::default());
    let thread_progress = Arc::clone(&progress);
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
                let generation = thread_progress.generation();
                // (busy, frames in the WAL, frames copied back): a busy checkpoint copied
                // what it could, so what it says is still how far the file is.
                let copied = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    r.get::<_, i64>(2)
                });
                if let Ok(copied) = copied {
                    thread_progress.copied(generation, copied);
                }
            }
        });
    let Ok(thread) = spawned else {
        return Ok(None); // keep SQLite's own auto-checkpoint
    };
    let mut last_frames = 0;
    let mut pacing = Pacing::default();
    conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, frames: i32| {
        if frames < last_frames {
            progress.restarted(); // the WAL was started over: the thread's count is old
        }
        last_frames = frames;
        // Under sustained writes the thread always lags: it copies what was there when it
        // began, while new frames arrive, and SQLite can start the WAL over only after a
        // checkpoint that copied every frame. So a commit catches up itself when the thread
        // left little to copy, and in any case past 4x the threshold (cheaply: the thread
        // has copied most pages), so the WAL stays short and bounded. A WAL kept short
        // matters beyond its size: every version of a page written again and again (a
        // code's leaf, the counters) sits in one run of the WAL index's hash table, which
        // each later lookup and append walks.
        let inline = frames >= 4 * CHECKPOINT_FRAMES
            || (frames >= CHECKPOINT_FRAMES
                && pacing.early()
                && progress.left(frames) <= FINISH_FRAMES)
            || (frames >= CHECKPOINT_FRAMES
                && matches!(wake.try_send(()), Err(TrySendError::Disconnected(()))));
        if inline {
            let started = Instant::now();
            // Busy: the thread is checkpointing; nothing was learnt of the cost.
            if wal.checkpoint().is_ok() {
                pacing.caught_up(started.elapsed());
            }
        }
        Ok(())
    }))?;
    Ok(Some(thread))
}

/// How far the thread's last checkpoint got, in the WAL as it was then. A commit that sees
/// the WAL shorter than at its previous commit knows it was started over (by this
/// connection or another) and moves `generation` on, so that a count of frames copied from
/// an earlier WAL is never taken for the current one. (A WAL started over and written past
/// its old length by other processes between two commits of this connection goes unseen:
/// the commit then catches up with more frames than it meant to, which the 4x bound does
/// anyway.)
#[derive(Default)]
struct Progress {
    generation: AtomicU64,
    /// The generation of the last checkpoint (high 32 bits) and the frames it copied.
    copied: AtomicU64,
}

impl Progress {
    fn generation(&self) -> u32 {
        self.generation.load(Ordering::Acquire) as u32
    }

    fn restarted(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn copied(&self, generation: u32, frames: i64) {
        let frames = u32::try_from(frames.max(0)).unwrap_or(u32::MAX);
        let packed = (u64::from(generation) << 32) | u64::from(frames);
        self.copied.store(packed, Ordering::Release);
    }

    /// Frames of a WAL of `frames` frames that no checkpoint copied yet, as far as known
    /// (all of them when the last checkpoint was of another WAL, or none was made).
    fn left(&self, frames: i32) -> i32 {
        let packed = self.copied.load(Ordering::Acquire);
        if (packed >> 32) as u32 != self.generation() {
            return frames;
        }
        let copied = i64::from(packed as u32);
        i32::try_from((i64::from(frames) - copied).max(0)).unwrap_or(i32::MAX)
    }
}

/// Whether commits finish the thread's checkpoint early (`FINISH_FRAMES`), by what the
/// caller's own catch-ups cost. Finishing early keeps the WAL near 1,000 frames, which pays
/// where commits rewrite the same pages (a code's leaf, the counters: every version of a
/// page sits in one run of the WAL index's hash table that each lookup walks) and the file
/// syncs quickly: at 10k tokens the catch-ups took 0.1-6 ms and code store+consume went
/// from ~49 to ~35 us. In a file whose writes land on scattered pages (a million tokens)
/// each catch-up is an `fsync` of ~200 random pages, 11-23 ms here: finishing early then
/// doubles how often the caller pays one (every ~1,500 frames instead of 4,000), and a store
/// at 1M was ~30 % faster without it. So two dear catch-ups in a row turn it off; the next
/// catch-up (at the 4x bound) that is cheap turns it on again.
#[derive(Default)]
struct Pacing {
    /// Dear catch-ups in a row (saturating).
    dear_in_a_row: u8,
}

impl Pacing {
    fn early(&self) -> bool {
        self.dear_in_a_row < 2
    }

    fn caught_up(&mut self, took: Duration) {
        self.dear_in_a_row = if took > FINISH_BUDGET {
            self.dear_in_a_row.saturating_add(1)
        } else {
            0
        };
    }
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

#[cfg(test)]
mod tests {
    use super::{Pacing, Progress, FINISH_BUDGET};
    use std::time::Duration;

    #[test]
    fn two_dear_catch_ups_in_a_row_stop_early_finishing_and_a_cheap_one_restarts_it() {
        let cheap = Duration::from_millis(1);
        let dear = FINISH_BUDGET + Duration::from_millis(1);
        let mut p = Pacing::default();
        assert!(p.early(), "on until catch-ups show they are dear");
        p.caught_up(dear);
        assert!(p.early(), "one dear catch-up may be the machine's hiccup");
        p.caught_up(cheap);
        p.caught_up(dear);
        assert!(p.early(), "not two in a row");
        p.caught_up(dear);
        assert!(!p.early());
        p.caught_up(dear);
        assert!(!p.early());
        p.caught_up(FINISH_BUDGET);
        assert!(p.early(), "at the budget is cheap");
    }

    #[test]
    fn frames_left_count_only_a_checkpoint_of_the_wal_as_it_is() {
        let p = Progress::default();
        assert_eq!(p.left(1200), 1200, "no checkpoint yet: all of it");
        let generation = p.generation();
        p.copied(generation, 1000);
        assert_eq!(p.left(1200), 200);
        assert_eq!(p.left(900), 0, "never below none");
        // A checkpoint that began before the WAL was started over counts for nothing.
        p.restarted();
        assert_eq!(p.left(1200), 1200);
        p.copied(generation, 1000);
        assert_eq!(p.left(1200), 1200);
        p.copied(p.generation(), 1100);
        assert_eq!(p.left(1200), 100);
        p.copied(p.generation(), -1); // busy: it copied nothing known
        assert_eq!(p.left(1200), 1200);
    }
}
