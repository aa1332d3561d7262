//! Waiting for a server's answer without going to sleep, for a moment: a synchronous call
//! holds its thread until the answer is in, and a thread that sleeps on its socket is woken
//! by the kernel when the answer arrives, which on a virtual machine costs more than the
//! server's own work (measured here against a local Redis: a `GET` answered in ~100 µs to a
//! blocking read, ~30 µs to a thread that polls the socket meanwhile). So the thread polls
//! the socket, without sleeping, for up to `WINDOW`, then reads as before (blocking, with
//! the query timeout).
//!
//! The poll is spent CPU, worth it only when the answers come within the window (a server
//! on the same host or the same network). A connection whose answers came later than that
//! `MISSES` times in a row (a distant server) stops polling for its next `REST` calls,
//! then tries again: against a distant server about one call in seventeen polls in vain.
//! A call of the Promise API run on a thread of libuv's pool does not poll (`elsewhere`):
//! the JS thread is free meanwhile, and the CPU is better left to it.

use std::cell::Cell;
#[cfg(any(feature = "postgres", feature = "redis"))]
use std::time::{Duration, Instant};

/// How long a call polls for its answer before it sleeps on the socket.
#[cfg(any(feature = "postgres", feature = "redis"))]
const WINDOW: Duration = Duration::from_micros(100);
/// Answers later than the window in a row, after which the connection stops polling...
#[cfg(any(feature = "postgres", feature = "redis"))]
const MISSES: u8 = 4;
/// ...for this many calls.
#[cfg(any(feature = "postgres", feature = "redis"))]
const REST: u8 = 64;

thread_local! {
    /// Whether this thread's calls are another thread's wait (`elsewhere`).
    static ELSEWHERE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with no polling on this thread: a call of the Promise API on a thread of
/// libuv's pool, while the JS thread is free and may need the CPU it would spend.
/// The flag is put back as it was however `f` ends (an unwinding panic included).
pub(crate) fn elsewhere<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            ELSEWHERE.with(|e| e.set(self.0));
        }
    }
    let _restore = Restore(ELSEWHERE.with(|e| e.replace(true)));
    f()
}

/// A connection's polling state: whether its recent answers came within the window.
#[cfg(any(feature = "postgres", feature = "redis"))]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Spin {
    misses: u8,
    rest: u8,
}

#[cfg(any(feature = "postgres", feature = "redis"))]
impl Spin {
    /// Polls `fd` until it is readable (or hung up, or failed: the read that follows tells
    /// which), for up to `WINDOW`, unless this connection is resting; returns at once when
    /// it is. The caller reads next, as it would have without this.
    #[cfg(all(unix, feature = "redis"))]
    pub(crate) fn wait(&mut self, fd: std::os::fd::RawFd) {
        if self.polls() {
            self.answered(readable_within(fd, WINDOW));
        }
    }

    /// Whether this wait polls: not while resting, nor for another thread's call.
    fn polls(&mut self) -> bool {
        if self.rest > 0 {
            self.rest -= 1;
            return false;
        }
        !ELSEWHERE.with(Cell::get)
    }

    /// Counts a wait that polled: its answer came within the window or not.
    fn answered(&mut self, within: bool) {
        if within {
            self.misses = 0;
        } else {
            self.misses += 1;
            if self.misses >= MISSES {
                self.misses = 0;
                self.rest = REST;
            }
        }
    }
}

#[cfg(feature = "postgres")]
thread_local! {
    /// The polling state of this thread's waits on a runtime (`polled`).
    static ON_RUNTIME: Cell<Spin> = const { Cell::new(Spin { misses: 0, rest: 0 }) };
}

/// `f` awaited, polled again without sleeping for up to `WINDOW` while it is pending, on a
/// tokio runtime run by this thread (`block_on`): each `yield_now` lets the runtime read
/// its I/O without waiting (a park with no timeout) before `f` is polled again. Then `f`
/// is awaited as usual. The state is this thread's, for all its waits on a runtime.
#[cfg(feature = "postgres")]
pub(crate) async fn polled<F: std::future::Future>(f: F) -> F::Output {
    use std::task::Poll;
    let mut spin = ON_RUNTIME.with(Cell::get);
    let polls = spin.polls();
    ON_RUNTIME.with(|s| s.set(spin));
    let mut f = std::pin::pin!(f);
    if !polls {
        return f.await;
    }
    let start = Instant::now();
    let mut waited = false;
    loop {
        let now = std::future::poll_fn(|cx| Poll::Ready(f.as_mut().poll(cx))).await;
        if let Poll::Ready(v) = now {
            if waited {
                record(true);
            }
            return v;
        }
        if start.elapsed() >= WINDOW {
            record(false);
            return f.await;
        }
        waited = true;
        tokio::task::yield_now().await;
    }
}

#[cfg(feature = "postgres")]
fn record(within: bool) {
    ON_RUNTIME.with(|s| {
        let mut spin = s.get();
        spin.answered(within);
        s.set(spin);
    });
}

/// Whether `fd` turned readable within `window`, polled without sleeping.
#[cfg(all(unix, feature = "redis"))]
fn readable_within(fd: std::os::fd::RawFd, window: Duration) -> bool {
    let start = Instant::now();
    loop {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, and a zero timeout: the call does not block.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        if n != 0 {
            return true;
        }
        if start.elapsed() >= window {
            return false;
        }
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests;
