//! The I/O thread every PostgreSQL store of the process shares, and ending connections on
//! it; and its runtime turned from a caller's thread (`turn`, for `store::later`).

use std::collections::HashSet;
use std::future::Future;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use super::pool::Pooled;
use crate::error::{Result, StoreError};

/// The shared runtime and its epoll descriptor, when it was told apart (`io_fd`).
struct Shared {
    rt: Runtime,
    fd: Option<RawFd>,
}

fn shared() -> Result<&'static Shared> {
    static SHARED: OnceLock<Option<Shared>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let _one = BUILDING.lock().ok();
            let before = eventpolls();
            let rt = build_now()?;
            let after = eventpolls();
            // The one epoll instance that appeared while it was built (tokio keeps a
            // duplicate of its descriptor: descriptors with the same registrations are one
            // instance). `BUILDING` keeps the listeners' runtimes from being built
            // meanwhile; another library's, made on another thread in the same moment,
            // makes it two instances: then none is taken.
            let new: Vec<RawFd> = after.difference(&before).copied().collect();
            let watched: Vec<Option<String>> = new.iter().map(|&fd| registrations(fd)).collect();
            let one = watched.first().is_some_and(Option::is_some)
                && watched.iter().all(|w| *w == watched[0]);
            let fd = new.iter().min().copied().filter(|_| one);
            Some(Shared { rt, fd })
        })
        .as_ref()
        .ok_or(StoreError::Internal(
            "the PostgreSQL I/O thread cannot start",
        ))
}

/// The I/O thread every PostgreSQL store of the process shares.
pub(super) fn runtime() -> Result<Io> {
    shared().map(|s| Io(&s.rt))
}

/// The shared runtime, run from the calling thread by `block_on`.
#[derive(Clone, Copy)]
pub(super) struct Io(&'static Runtime);

impl Io {
    /// Runs `f` to its end on this thread, the runtime's tasks with it. A task left woken
    /// when it returns (tokio queues a task woken while a thread runs the runtime on that
    /// thread's own list, with no wake-up written) would wait for the next thread to run
    /// the runtime; a task spawned from outside writes the runtime's wake-up, which a JS
    /// thread with calls in flight is watching (`store::later`).
    pub(super) fn block_on<F: Future>(self, f: F) -> F::Output {
        let out = self.0.block_on(crate::store::spin::polled(f));
        if READY_TASKS.load(Ordering::Acquire) > 0 {
            drop(self.0.spawn(async {}));
        }
        out
    }

    pub(super) fn enter(self) -> tokio::runtime::EnterGuard<'static> {
        self.0.enter()
    }
}

/// A current-thread runtime with I/O and timers: the shared one, and each listener's. One
/// is built at a time, so that the shared one's epoll descriptor can be told apart.
pub(super) fn build() -> Option<Runtime> {
    let _one = BUILDING.lock().ok();
    build_now()
}

static BUILDING: Mutex<()> = Mutex::new(());

fn build_now() -> Option<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()
}

/// This process's open epoll descriptors.
fn eventpolls() -> HashSet<RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return HashSet::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let fd = e.file_name().to_str()?.parse().ok()?;
        let to = std::fs::read_link(e.path()).ok()?;
        (to.as_os_str() == "anon_inode:[eventpoll]").then_some(fd)
    })
    .collect()
}

/// The descriptors an epoll descriptor watches (the `tfd:` lines of its fdinfo).
fn registrations(fd: RawFd) -> Option<String> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
    let tfds: Vec<&str> = info.lines().filter(|l| l.starts_with("tfd:")).collect();
    (!tfds.is_empty()).then(|| tfds.join("\n"))
}

/// The shared runtime's epoll descriptor: readable when a socket of its has I/O for it, or
/// a task was woken from another thread (see `store::later`).
pub(crate) fn io_fd() -> Option<RawFd> {
    shared().ok().and_then(|s| s.fd)
}

/// Whether this thread runs a runtime now (holds its core: in its `block_on`, or in one of
/// its tasks). There `yield_now` puts its wake-up off until the runtime has read its I/O;
/// on a thread that waits in `block_on` while another runs the runtime, or outside any,
/// it wakes at once, which the probe sees. Were tokio to wake at once everywhere, every
/// thread would seem not to run it: its callers' slower way, still correct.
pub(super) fn runs_the_runtime() -> bool {
    struct Woken(std::sync::atomic::AtomicBool);
    impl Wake for Woken {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::Release);
        }
    }
    let woken = Arc::new(Woken(std::sync::atomic::AtomicBool::new(false)));
    let waker = Waker::from(woken.clone());
    let mut probe = std::pin::pin!(tokio::task::yield_now());
    let _ = probe.as_mut().poll(&mut Context::from_waker(&waker));
    !woken.0.load(Ordering::Acquire)
}

/// How many of the tasks spawned by `spawn_noted` were woken and have not run since.
static READY_TASKS: AtomicUsize = AtomicUsize::new(0);

/// Spawns `task` on the shared runtime (from inside it), counted in `READY_TASKS` while it
/// waits to run (from its spawn to its first poll, and whenever it is woken until it runs):
/// what tells `turn` that the runtime still has work at hand.
pub(super) fn spawn_noted<F>(task: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(Noted::new(task, &READY_TASKS))
}

/// A task that counts itself in `count` while it is woken and has not run since, and from
/// its making to its first poll (a task spawned from inside the runtime is queued with no
/// wake-up written: left uncounted, one spawned in `turn`'s last round waited for the next).
struct Noted<F> {
    task: Pin<Box<F>>,
    note: Option<Arc<Note>>,
    /// Counted as made, not polled yet.
    fresh: bool,
    count: &'static AtomicUsize,
}

/// The waker a noted task's futures get: the runtime's, and the count.
struct Note {
    woken: std::sync::atomic::AtomicBool,
    waker: Waker,
    count: &'static AtomicUsize,
}

impl Note {
    /// The task runs now: no longer counted, until the next wake.
    fn taken(&self) {
        if self.woken.swap(false, Ordering::AcqRel) {
            self.uncount();
        }
    }

    /// No longer the task's waker (the task ended, or it was polled with another waker),
    /// yet it may still be called (a channel whose sender goes later wakes the task that
    /// read it): marked woken for good, so that such a wake counts nothing.
    fn retire(&self) {
        if self.woken.swap(true, Ordering::AcqRel) {
            self.uncount();
        }
    }

    fn uncount(&self) {
        uncount(self.count);
    }
}

/// One task fewer in `count` (never below none).
fn uncount(count: &AtomicUsize) {
    let _ = count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
}

impl Wake for Note {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.woken.swap(true, Ordering::AcqRel) {
            self.count.fetch_add(1, Ordering::AcqRel);
        }
        self.waker.wake_by_ref();
    }
}

impl<F> Noted<F> {
    fn new(task: F, count: &'static AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Noted {
            task: Box::pin(task),
            note: None,
            fresh: true,
            count,
        }
    }

    /// Its count as made, taken back (at its first poll, or when it is dropped unpolled).
    fn unfresh(&mut self) {
        if std::mem::take(&mut self.fresh) {
            uncount(self.count);
        }
    }
}

impl<F: Future> Future for Noted<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.unfresh();
        let note = match &self.note {
            Some(n) if n.waker.will_wake(cx.waker()) => n.clone(),
            old => {
                if let Some(old) = old {
                    old.retire();
                }
                let n = Arc::new(Note {
                    woken: std::sync::atomic::AtomicBool::new(false),
                    waker: cx.waker().clone(),
                    count: self.count,
                });
                self.note = Some(n.clone());
                n
            }
        };
        note.taken();
        let waker = Waker::from(note);
        self.task.as_mut().poll(&mut Context::from_waker(&waker))
    }
}

impl<F> Drop for Noted<F> {
    fn drop(&mut self) {
        self.unfresh();
        if let Some(n) = &self.note {
            n.retire();
        }
    }
}

#[cfg(test)]
#[test]
fn a_thread_runs_the_runtime_only_while_it_holds_it() {
    assert!(!runs_the_runtime(), "outside any runtime");
    let rt = build().expect("a runtime");
    assert!(rt.block_on(async { runs_the_runtime() }), "in its block_on");
    assert!(
        rt.block_on(async { tokio::spawn(async { runs_the_runtime() }).await })
            .expect("the task"),
        "in one of its tasks"
    );
    let holding = std::sync::Barrier::new(2);
    let asked = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            rt.block_on(async {
                holding.wait();
                asked.wait();
            })
        });
        holding.wait();
        let answer = rt.block_on(async { runs_the_runtime() });
        asked.wait();
        assert!(!answer, "in its block_on while another thread runs it");
    });
}

#[cfg(test)]
mod noted_tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    /// A waker that does nothing but tell whether it was called.
    struct Flag(std::sync::atomic::AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// A task that keeps the waker of each poll, and never ends.
    fn keeper(kept: Kept) -> impl Future<Output = ()> {
        std::future::poll_fn(move |cx| {
            kept.lock().unwrap().push(cx.waker().clone());
            Poll::Pending
        })
    }

    fn waker() -> (Waker, Arc<Flag>) {
        let f = Arc::new(Flag(std::sync::atomic::AtomicBool::new(false)));
        (Waker::from(f.clone()), f)
    }

    type Kept = Arc<StdMutex<Vec<Waker>>>;

    /// A noted `keeper` counted in `count`, and the wakers its polls were given.
    fn noted(count: &'static AtomicUsize) -> (Pin<Box<impl Future<Output = ()>>>, Kept) {
        let kept: Kept = Arc::new(StdMutex::new(Vec::new()));
        (Box::pin(Noted::new(keeper(kept.clone()), count)), kept)
    }

    #[test]
    fn a_wake_counts_until_the_task_runs() {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let (mut task, kept) = noted(&COUNT);
        let (w, flag) = waker();
        assert!(task.as_mut().poll(&mut Context::from_waker(&w)).is_pending());
        let inner = kept.lock().unwrap()[0].clone();
        inner.wake_by_ref();
        inner.wake_by_ref();
        assert_eq!(COUNT.load(Ordering::SeqCst), 1, "woken twice, one task ready");
        assert!(flag.0.load(Ordering::SeqCst), "the runtime's waker was called");
        assert!(task.as_mut().poll(&mut Context::from_waker(&w)).is_pending());
        assert_eq!(COUNT.load(Ordering::SeqCst), 0, "ran: no longer counted");
        inner.wake_by_ref();
        assert_eq!(COUNT.load(Ordering::SeqCst), 1);
        drop(task);
        assert_eq!(COUNT.load(Ordering::SeqCst), 0, "dropped while woken: uncounted");
        inner.wake_by_ref();
        assert_eq!(COUNT.load(Ordering::SeqCst), 0, "a wake after the end counts nothing");
    }

    #[test]
    fn a_task_counts_from_its_making_to_its_first_poll() {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let (mut task, _) = noted(&COUNT);
        assert_eq!(COUNT.load(Ordering::SeqCst), 1, "made: it waits to run");
        let (w, _) = waker();
        assert!(task.as_mut().poll(&mut Context::from_waker(&w)).is_pending());
        assert_eq!(COUNT.load(Ordering::SeqCst), 0, "ran: no longer counted");
        assert!(task.as_mut().poll(&mut Context::from_waker(&w)).is_pending());
        assert_eq!(COUNT.load(Ordering::SeqCst), 0, "counted as made once only");
        drop(task);
        let (unpolled, _) = noted(&COUNT);
        assert_eq!(COUNT.load(Ordering::SeqCst), 1);
        drop(unpolled);
        assert_eq!(COUNT.load(Ordering::SeqCst), 0, "dropped before it ran: uncounted");
    }

    #[test]
    fn a_replaced_waker_counts_nothing_later() {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let (mut task, kept) = noted(&COUNT);
        let (first, _) = waker();
        let (second, _) = waker();
        assert!(task.as_mut().poll(&mut Context::from_waker(&first)).is_pending());
        let old = kept.lock().unwrap()[0].clone();
        old.wake_by_ref();
        assert_eq!(COUNT.load(Ordering::SeqCst), 1);
        // Polled with another waker: the old one is retired, its count taken back.
        assert!(task.as_mut().poll(&mut Context::from_waker(&second)).is_pending());
        assert_eq!(COUNT.load(Ordering::SeqCst), 0);
        old.wake_by_ref();
        assert_eq!(COUNT.load(Ordering::SeqCst), 0, "a wake through the old waker counts nothing");
        let new = kept.lock().unwrap()[1].clone();
        new.wake_by_ref();
        assert_eq!(COUNT.load(Ordering::SeqCst), 1);
        drop(task);
        assert_eq!(COUNT.load(Ordering::SeqCst), 0);
    }
}

/// A future that is `Send` although the compiler cannot prove it: one that awaits an async
/// closure taking references (`call_async`'s `op`) meets rustc's known limit on proving
/// auto traits of such futures ("implementation of `Send` is not general enough",
/// rust-lang/rust#110338).
pub(super) struct AssertSend<T>(Pin<Box<dyn Future<Output = T>>>);

impl<T> AssertSend<T> {
    /// # Safety
    /// Every value `f` holds across an await is `Send` (see the `unsafe impl` below).
    pub(super) unsafe fn new(f: Pin<Box<dyn Future<Output = T>>>) -> Self {
        AssertSend(f)
    }
}

// SAFETY: used only for the store's part of a call in `PostgresStore::later`, whose state
// across its awaits is: an `Arc<PostgresStore>` (the store is `Send + Sync`, as `TokenStore`
// requires), the call's owned arguments (strings, `NewAccessToken`s, an `AuthorizationCode`,
// a `RotateRequest`, a `ClientRecord`) and what the bodies make of them before the round
// trip (`Columns`, borrowed strings) or keep across a later await (an `AccessToken` or a
// `RefreshToken` read, held across `remove_if_expired`; `analyze_after`'s statements), a
// cache `Ticket` (integers), and `call_async`'s: a semaphore
// permit, a pooled connection (`Pooled`: a tokio-postgres client, a `Mutex` and an atomic,
// the connection's `JoinHandle`) and tokio-postgres's own futures, all `Send`; no lock
// guard is held across an await (the pool's and the statements' locks are taken and
// released within one statement). `its_parts_are_send` checks the parts it can name,
// futures included.
unsafe impl<T> Send for AssertSend<T> {}

impl<T> Future for AssertSend<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        self.0.as_mut().poll(cx)
    }
}

#[cfg(test)]
#[test]
fn its_parts_are_send() {
    fn send<T: Send>(_: &T) {}
    fn send_type<T: Send>() {}
    send_type::<std::sync::Arc<super::PostgresStore>>();
    send_type::<Pooled>();
    send_type::<super::cache::Ticket>();
    send_type::<crate::ops::Call>();
    send_type::<crate::ops::Answer>();
    send_type::<super::rows::Columns>();
    send_type::<crate::model::AccessToken>();
    send_type::<crate::model::RefreshToken>();
    send_type::<tokio::sync::SemaphorePermit<'static>>();
    // Type-checked, never run: the futures `call_async` awaits.
    let _ = |store: &super::PostgresStore, c: Pooled, client: &mut tokio_postgres::Client| {
        send(&store.permits.acquire());
        send(&store.checkout());
        send(&c.client.run("", &[]));
        send(&super::schema::migrate(client, ""));
        send(&store.checkin(c));
        send(&end(Vec::new()));
    };
}

/// How many rounds one `turn` makes at most (each: the calls woken, the tasks ready, the
/// I/O read without blocking): a bound for when another thread holds the runtime.
const TURN_ROUNDS: usize = 32;

/// See `store::later::turn`.
pub(crate) fn turn(poll: &mut dyn FnMut() -> bool) -> Result<()> {
    runtime()?.block_on(async {
        poll();
        for _ in 0..TURN_ROUNDS {
            // Runs the tasks that are ready, then reads the I/O without blocking, and wakes
            // what was deferred to then (`yield_now`'s wakers).
            tokio::task::yield_now().await;
            let polled = poll();
            if !polled && READY_TASKS.load(Ordering::Acquire) == 0 {
                return;
            }
        }
        // Out of rounds: what the last polls deferred is woken now (each `block_on` keeps
        // its own list of deferred wakers, dropped when it returns): a call so woken asks
        // for the next turn (`napi/driven.rs`), a task so woken is seen by `block_on`.
        tokio::task::yield_now().await;
    });
    Ok(())
}

/// See `store::later::discard`.
pub(crate) fn discard<T>(calls: T) {
    match runtime() {
        Ok(rt) => {
            let _inside = rt.enter();
            drop(calls);
        }
        Err(_) => drop(calls),
    }
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
