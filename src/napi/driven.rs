//! The Promise API's calls on a PostgreSQL store (those a request makes: tokens, codes,
//! refresh tokens, rotations, getStats, pending logins, clients), run from the JS thread
//! itself: no thread of libuv's pool in between (`task.rs`'s way costs two thread hand-offs
//! a call, JS → pool thread → JS, on top of the round trip; see benchmark/PROFILE.md).
//!
//! The call is `ops::run_later`'s future (the store's part, `TokenStore::later`, a task of
//! the PostgreSQL I/O runtime that the future awaits), polled on this thread by
//! `store::later::turn`, which runs the runtime here without ever waiting: the statement is
//! sent at once (unless another thread is running the runtime: then that thread sends it),
//! and the answer read when it comes. What says when to turn again: libuv watches the
//! runtime's epoll descriptor (readable when a socket of its has I/O, or the runtime's
//! wake-up was written: a task woken from another thread, or left woken by a `block_on`
//! that ended, see `postgres::runtime::Io`), and each call's waker (the read ran to its end
//! on another thread: a synchronous call on a worker thread, a call still on the pool);
//! both ask through one threadsafe function per JS thread, whose callback turns and settles
//! the finished calls' Promises (in node's callback scope, so their reactions run right
//! after); a timer every 10 ms while calls are in flight turns for the runtime's timers
//! (the query timeout). The threadsafe function is ref'd while calls are in flight and only
//! then: the process exits when the server does; its async resource says so to Jest's
//! `--detectOpenHandles` (`hasRef()`).
//!
//! Used where all of it is at hand (libuv's functions found in the process, the runtime's
//! epoll descriptor told apart, a store that gives such a future: not one with encryption
//! keys, nor before its first call; a call that is short work for this thread: not cleanup,
//! a backup, or a batch of more than 64 tokens); anywhere else the call goes to the pool.
//!
//! Known cost: while another thread holds the runtime and has not yet read its I/O, the
//! descriptor stays readable and every JS thread with calls in flight turns again and again
//! (each turn a few µs without the runtime) until that thread reads it.

use std::cell::{Cell, RefCell};
use std::ffi::{c_int, c_void};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

use napi::bindgen_prelude::{ToNapiValue, TypeName};
use napi::{sys, Env, ValueType};

use super::errors::{js_err, JsError, Result};
use super::reply::{reply, Reply};
use crate::error::StoreError;
use crate::ops::Answer;
use crate::store::later::{self, Later};

/// A Promise made here, returned to JS as it is.
pub struct Started(sys::napi_value);

impl ToNapiValue for Started {
    unsafe fn to_napi_value(_env: sys::napi_env, v: Self) -> napi::Result<sys::napi_value> {
        Ok(v.0)
    }
}

impl TypeName for Started {
    fn type_name() -> &'static str {
        "Promise"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

type PollCb = unsafe extern "C" fn(*mut c_void, c_int, c_int);
type TimerCb = unsafe extern "C" fn(*mut c_void);
type CloseCb = unsafe extern "C" fn(*mut c_void);

/// The libuv functions used, looked up in the process (Node's own libuv) rather than linked.
struct Uv {
    handle_size: HandleSize,
    poll_init: PollInit,
    poll_start: PollStart,
    poll_stop: Stop,
    timer_init: TimerInit,
    timer_start: TimerStart,
    timer_stop: Stop,
    unref: Unref,
    close: Close,
}

type HandleSize = unsafe extern "C" fn(c_int) -> usize;
type PollInit = unsafe extern "C" fn(*mut c_void, *mut c_void, c_int) -> c_int;
type PollStart = unsafe extern "C" fn(*mut c_void, c_int, PollCb) -> c_int;
type Stop = unsafe extern "C" fn(*mut c_void) -> c_int;
type TimerInit = unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int;
type TimerStart = unsafe extern "C" fn(*mut c_void, TimerCb, u64, u64) -> c_int;
type Unref = unsafe extern "C" fn(*mut c_void);
type Close = unsafe extern "C" fn(*mut c_void, Option<CloseCb>);

/// `uv_handle_type`'s values (uv.h: `UV_HANDLE_TYPE_MAP`, after `UV_UNKNOWN_HANDLE`).
const UV_POLL: c_int = 8;
const UV_TIMER: c_int = 13;
const UV_READABLE: c_int = 1;
/// How often the runtime is turned while calls are in flight, for its timers, in ms:
/// `TOKEN_STORAGE_TURN_TIMER_MS` or 10. The tests set it to a minute, so that a wake-up
/// lost elsewhere shows as a call that takes that long rather than as 10 ms of noise.
fn timer_ms() -> u64 {
    static MS: OnceLock<u64> = OnceLock::new();
    *MS.get_or_init(|| {
        std::env::var("TOKEN_STORAGE_TURN_TIMER_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&ms| ms > 0)
            .unwrap_or(10)
    })
}

fn uv() -> Option<&'static Uv> {
    static UV: OnceLock<Option<Uv>> = OnceLock::new();
    UV.get_or_init(|| {
        macro_rules! sym {
            ($name:literal as $ty:ty) => {{
                // SAFETY: a lookup by name in the process's global symbols.
                let p = unsafe {
                    libc::dlsym(libc::RTLD_DEFAULT, concat!($name, "\0").as_ptr().cast())
                };
                if p.is_null() {
                    return None;
                }
                // SAFETY: libuv's function of that name, whose C signature is the field's
                // (uv.h, libuv 1.x: stable across Node's versions).
                unsafe { std::mem::transmute::<*mut c_void, $ty>(p) }
            }};
        }
        Some(Uv {
            handle_size: sym!("uv_handle_size" as HandleSize),
            poll_init: sym!("uv_poll_init" as PollInit),
            poll_start: sym!("uv_poll_start" as PollStart),
            poll_stop: sym!("uv_poll_stop" as Stop),
            timer_init: sym!("uv_timer_init" as TimerInit),
            timer_start: sym!("uv_timer_start" as TimerStart),
            timer_stop: sym!("uv_timer_stop" as Stop),
            unref: sym!("uv_unref" as Unref),
            close: sym!("uv_close" as Close),
        })
    })
    .as_ref()
}

/// What wakers on any thread reach: the JS thread's threadsafe function.
struct Shared {
    /// `None` once the JS environment is going away.
    tsfn: Mutex<Option<usize>>,
    /// A turn was asked for and has not begun: one ask is enough.
    asked: AtomicBool,
}

impl Shared {
    fn ask(&self) {
        if self.asked.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Ok(tsfn) = self.tsfn.lock() {
            if let Some(t) = *tsfn {
                // SAFETY: the function is live while it is in `tsfn` (the finalizer and the
                // cleanup hook take it out under this lock); nonblocking never waits.
                unsafe {
                    sys::napi_call_threadsafe_function(
                        t as sys::napi_threadsafe_function,
                        null_mut(),
                        sys::ThreadsafeFunctionCallMode::nonblocking,
                    );
                }
            }
        }
    }
}

/// A call's waker: marks it to be polled, and asks for a turn unless this thread is turning.
struct CallWake {
    woken: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for CallWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let here = TURNING
            .try_with(|t| t.get() == Arc::as_ptr(&self.shared))
            .unwrap_or(false);
        if !here {
            self.shared.ask();
        }
    }
}

struct InFlight {
    later: Later<Answer>,
    deferred: sys::napi_deferred,
    wake: Arc<CallWake>,
}

/// One JS thread's calls in flight and what drives them.
struct Driver {
    tsfn: sys::napi_threadsafe_function,
    shared: Arc<Shared>,
    poll: *mut c_void,
    timer: *mut c_void,
    calls: Vec<InFlight>,
    /// The poll and the timer started, the threadsafe function ref'd.
    active: bool,
}

enum Slot {
    Unavailable,
    Ready(Driver),
}

thread_local! {
    static DRIVER: RefCell<Option<Slot>> = const { RefCell::new(None) };
    /// Which driver this thread is turning (its `Shared`), while it does.
    static TURNING: Cell<*const Shared> = const { Cell::new(std::ptr::null()) };
}

/// Whether calls can be driven from this JS thread (the driver made on first use).
pub fn available(env: &Env) -> bool {
    DRIVER
        .try_with(|slot| {
            let Ok(mut slot) = slot.try_borrow_mut() else {
                return false;
            };
            if slot.is_none() {
                // SAFETY: `env` is this thread's live environment (a napi call's).
                *slot = Some(match unsafe { make(env.raw()) } {
                    Some(d) => Slot::Ready(d),
                    None => Slot::Unavailable,
                });
            }
            matches!(*slot, Some(Slot::Ready(_)))
        })
        .unwrap_or(false)
}

/// Starts `later` from this JS thread (where `available`): its Promise.
pub fn start(env: &Env, later: Later<Answer>) -> Result<Started> {
    let raw = env.raw();
    let mut deferred = null_mut();
    let mut promise = null_mut();
    // SAFETY: a napi call's environment, on its thread.
    check(unsafe { sys::napi_create_promise(raw, &mut deferred, &mut promise) })?;
    DRIVER.with(|slot| {
        let mut slot = slot
            .try_borrow_mut()
            .map_err(|_| js_err(StoreError::Internal("the call driver is in use")))?;
        let Some(Slot::Ready(d)) = slot.as_mut() else {
            return Err(js_err(StoreError::Internal(
                "no call driver on this thread",
            )));
        };
        // SAFETY: as above.
        unsafe { d.activate(raw) };
        d.calls.push(InFlight {
            later,
            deferred,
            wake: Arc::new(CallWake {
                woken: AtomicBool::new(true),
                shared: d.shared.clone(),
            }),
        });
        // SAFETY: as above.
        unsafe { d.pump(raw) };
        Ok(Started(promise))
    })
}

fn check(status: sys::napi_status) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(js_err(StoreError::Internal("a Promise could not be made")))
    }
}

/// Makes this thread's driver, or `None` where a part is missing.
unsafe fn make(env: sys::napi_env) -> Option<Driver> {
    let uv = uv()?;
    let fd = later::io_fd()?;
    let mut uv_loop = null_mut();
    if sys::napi_get_uv_event_loop(env, &mut uv_loop) != sys::Status::napi_ok || uv_loop.is_null() {
        return None;
    }
    let uv_loop = uv_loop.cast::<c_void>();
    let tsfn = threadsafe_function(env)?;
    let handle = |kind| libc::calloc(1, (uv.handle_size)(kind).max(1));
    let poll = handle(UV_POLL);
    let timer = handle(UV_TIMER);
    let made = !poll.is_null()
        && !timer.is_null()
        && (uv.poll_init)(uv_loop, poll, fd) == 0
        && (uv.timer_init)(uv_loop, timer) == 0;
    if !made {
        // A handle that was initialised stays (closing needs the loop to turn); never seen.
        sys::napi_release_threadsafe_function(tsfn, sys::ThreadsafeFunctionReleaseMode::abort);
        return None;
    }
    (uv.unref)(poll);
    (uv.unref)(timer);
    sys::napi_add_env_cleanup_hook(env, Some(cleanup), null_mut());
    Some(Driver {
        tsfn,
        shared: Arc::new(Shared {
            tsfn: Mutex::new(Some(tsfn as usize)),
            asked: AtomicBool::new(false),
        }),
        poll,
        timer,
        calls: Vec::new(),
        active: false,
    })
}

impl Driver {
    /// From the first call in flight: watched, timed, and keeping the loop alive.
    unsafe fn activate(&mut self, env: sys::napi_env) {
        let Some(uv) = uv() else { return };
        if self.active {
            return;
        }
        self.active = true;
        (uv.poll_start)(self.poll, UV_READABLE, on_readable);
        (uv.timer_start)(self.timer, on_timer, timer_ms(), timer_ms());
        sys::napi_ref_threadsafe_function(env, self.tsfn);
    }

    /// Once none is in flight: nothing watched, and the loop free to end.
    unsafe fn deactivate(&mut self, env: sys::napi_env) {
        let Some(uv) = uv() else { return };
        if !self.active {
            return;
        }
        self.active = false;
        (uv.poll_stop)(self.poll);
        (uv.timer_stop)(self.timer);
        sys::napi_unref_threadsafe_function(env, self.tsfn);
    }

    /// Turns the runtime for the calls in flight and settles those that finished.
    unsafe fn pump(&mut self, env: sys::napi_env) {
        let mut done = Vec::new();
        let calls = &mut self.calls;
        let _ = TURNING.try_with(|t| t.set(Arc::as_ptr(&self.shared)));
        let turned = later::turn(&mut || {
            let mut polled = false;
            let mut i = 0;
            while i < calls.len() {
                if calls[i].wake.woken.swap(false, Ordering::AcqRel) {
                    polled = true;
                    let waker = Waker::from(calls[i].wake.clone());
                    let mut cx = Context::from_waker(&waker);
                    if let Poll::Ready(answer) = calls[i].later.as_mut().poll(&mut cx) {
                        done.push((calls.swap_remove(i).deferred, answer));
                        continue;
                    }
                }
                i += 1;
            }
            polled
        });
        let _ = TURNING.try_with(|t| t.set(std::ptr::null()));
        if let Err(e) = turned {
            let calls = std::mem::take(&mut self.calls);
            for c in &calls {
                done.push((c.deferred, Err(StoreError::Internal(internal(&e)))));
            }
            later::discard(calls);
        }
        for (deferred, answer) in done {
            settle(env, deferred, answer);
        }
        if self.calls.is_empty() {
            self.deactivate(env);
        } else if self
            .calls
            .iter()
            .any(|c| c.wake.woken.load(Ordering::Acquire))
        {
            // Woken and not polled (the turn's rounds ran out): the next turn, once the
            // loop has run what else is waiting.
            self.shared.ask();
        }
    }
}

fn internal(e: &StoreError) -> &'static str {
    match e {
        StoreError::Internal(what) => what,
        _ => "the PostgreSQL I/O thread failed",
    }
}

/// Resolves or rejects a call's Promise, as `task.rs` would its task's.
unsafe fn settle(
    env: sys::napi_env,
    deferred: sys::napi_deferred,
    answer: crate::error::Result<Answer>,
) {
    let value = match answer.and_then(reply) {
        Ok(r) => match Reply::to_napi_value(env, r) {
            Ok(v) => {
                sys::napi_resolve_deferred(env, deferred, v);
                return;
            }
            Err(_) => js_err(StoreError::Internal("the answer could not be made")),
        },
        Err(e) => js_err(e),
    };
    if let Ok(v) = <JsError as ToNapiValue>::to_napi_value(env, value) {
        sys::napi_reject_deferred(env, deferred, v);
    }
}

/// libuv: the runtime's descriptor is readable.
unsafe extern "C" fn on_readable(_handle: *mut c_void, _status: c_int, _events: c_int) {
    ask_here();
}

/// libuv: the timer while calls are in flight.
unsafe extern "C" fn on_timer(_handle: *mut c_void) {
    ask_here();
}

fn ask_here() {
    let _ = DRIVER.try_with(|slot| {
        if let Ok(slot) = slot.try_borrow() {
            if let Some(Slot::Ready(d)) = slot.as_ref() {
                d.shared.ask();
            }
        }
    });
}

/// The threadsafe function's callback, on the JS thread: a turn.
unsafe extern "C" fn on_asked(
    env: sys::napi_env,
    _js_callback: sys::napi_value,
    _context: *mut c_void,
    _data: *mut c_void,
) {
    if env.is_null() {
        return;
    }
    let _ = DRIVER.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            if let Some(Slot::Ready(d)) = slot.as_mut() {
                d.shared.asked.store(false, Ordering::Release);
                d.pump(env);
            }
        }
    });
}

/// The threadsafe function is gone (the environment is ending).
unsafe extern "C" fn finalized(_env: sys::napi_env, _data: *mut c_void, _hint: *mut c_void) {
    let _ = DRIVER.try_with(|slot| {
        if let Ok(slot) = slot.try_borrow() {
            if let Some(Slot::Ready(d)) = slot.as_ref() {
                if let Ok(mut t) = d.shared.tsfn.lock() {
                    *t = None;
                }
            }
        }
    });
}

/// This thread's threadsafe function, unref'd. Its async resource answers `hasRef()` as
/// node's own handles do (whether it keeps the loop alive: while calls are in flight), which
/// is how Jest's `--detectOpenHandles` tells a handle that is open from one that is not.
unsafe fn threadsafe_function(env: sys::napi_env) -> Option<sys::napi_threadsafe_function> {
    let ok = |status| status == sys::Status::napi_ok;
    let mut resource = null_mut();
    let mut has_ref_fn = null_mut();
    let mut name = null_mut();
    let label = "native-token-storage";
    let made = ok(sys::napi_create_object(env, &mut resource))
        && ok(sys::napi_create_function(
            env,
            c"hasRef".as_ptr(),
            6,
            Some(has_ref),
            null_mut(),
            &mut has_ref_fn,
        ))
        && ok(sys::napi_set_named_property(
            env,
            resource,
            c"hasRef".as_ptr(),
            has_ref_fn,
        ))
        && ok(sys::napi_create_string_utf8(
            env,
            label.as_ptr().cast(),
            label.len() as isize,
            &mut name,
        ));
    if !made {
        return None;
    }
    let mut tsfn = null_mut();
    if !ok(sys::napi_create_threadsafe_function(
        env,
        null_mut(),
        resource,
        name,
        0,
        1,
        null_mut(),
        Some(finalized),
        null_mut(),
        Some(on_asked),
        &mut tsfn,
    )) {
        return None;
    }
    sys::napi_unref_threadsafe_function(env, tsfn);
    Some(tsfn)
}

/// The async resource's `hasRef()`: whether calls are in flight on this thread.
unsafe extern "C" fn has_ref(
    env: sys::napi_env,
    _info: sys::napi_callback_info,
) -> sys::napi_value {
    let active = DRIVER
        .try_with(|slot| {
            slot.try_borrow()
                .ok()
                .is_some_and(|s| matches!(s.as_ref(), Some(Slot::Ready(d)) if d.active))
        })
        .unwrap_or(false);
    let mut value = null_mut();
    sys::napi_get_boolean(env, active, &mut value);
    value
}

unsafe extern "C" fn closed(handle: *mut c_void) {
    libc::free(handle);
}

/// The JS environment of this thread is ending: its calls are dropped unsettled, and
/// nothing is driven here again.
unsafe extern "C" fn cleanup(_arg: *mut c_void) {
    let taken = DRIVER
        .try_with(|slot| {
            slot.try_borrow_mut()
                .ok()
                .and_then(|mut s| s.replace(Slot::Unavailable))
        })
        .ok()
        .flatten();
    let Some(Slot::Ready(d)) = taken else { return };
    if let Ok(mut t) = d.shared.tsfn.lock() {
        *t = None;
    }
    if let Some(uv) = uv() {
        (uv.poll_stop)(d.poll);
        (uv.timer_stop)(d.timer);
        (uv.close)(d.poll, Some(closed));
        (uv.close)(d.timer, Some(closed));
    }
    later::discard(d.calls);
}
