//! `NativeStore`, the handle `TokenStorage` (in `lib/`) wraps: which store it is, its
//! lifecycle, and the two ways to run an operation on it (`run`, `later`). The operations
//! themselves are the table in `operations.rs`.

use std::sync::Arc;

use napi::bindgen_prelude::{AsyncTask, Either3};
use napi::Env;
use napi_derive::napi;

use super::args::clock;
use super::config::NativeConfig;
use super::driven::{self, Started};
use super::errors::{js_err, Result};
use super::reply::{reply, Reply};
use super::task::Later;
use crate::default_stores;
use crate::ops::{self, BackgroundCleanup, Call, Driven};
use crate::store::sealed::Sealed;
use crate::store::snapshot::Progress;
use crate::store::{self, TokenStore};

/// One store: memory, a SQLite file or a PostgreSQL database.
#[napi]
pub struct NativeStore {
    pub(super) store: Arc<dyn TokenStore>,
    cleanup: Arc<BackgroundCleanup>,
    /// `rotateRefreshToken`'s grace period (see `RotateRequest`).
    pub(super) refresh_grace_ms: i64,
    /// How far this store's latest backup or copy is (see `copy.rs`).
    pub(super) progress: Arc<Progress>,
}

#[napi]
impl NativeStore {
    #[napi(constructor)]
    pub fn new(options: NativeConfig) -> Result<Self> {
        let config = options.typed().map_err(js_err)?;
        let keys = options.keyring().map_err(js_err)?.map(Arc::new);
        let backend = if options.shared {
            default_stores::shared(&config).map_err(js_err)?
        } else {
            store::open(&config)
        };
        // Every store behind the one layer of encryption at rest (checked in clear without keys).
        let store: Arc<dyn TokenStore> = Arc::new(Sealed::new(backend, keys));
        Ok(NativeStore {
            store,
            cleanup: Arc::default(),
            refresh_grace_ms: i64::from(options.refresh_grace_ms),
            progress: Arc::default(),
        })
    }

    /// `"memory"`, `"sqlite"` or `"postgres"`.
    #[napi(getter)]
    pub fn storage(&self) -> String {
        self.store.kind().to_owned()
    }

    /// Where the store keeps its data (the database file's absolute path), or `null`.
    #[napi(getter)]
    pub fn path(&self) -> Option<String> {
        self.store.location()
    }

    /// Opens the store if it is closed; returns whether it opened it now.
    #[napi]
    pub fn open(&self) -> Result<bool> {
        self.store.open().map_err(js_err)
    }

    /// Ends what the synchronous gets held (a SQLite read transaction); the JS layer calls
    /// it at the end of the turn of their first.
    #[napi]
    pub fn end_reads(&self) -> Result<()> {
        self.store.end_reads().map_err(js_err)
    }

    #[napi]
    pub fn close(&self) -> Result<()> {
        self.store.close().map_err(js_err)
    }

    /// What the store found worth a warning when it opened, each given once (`lib/` logs it).
    #[napi]
    pub fn take_warnings(&self) -> Vec<NativeWarning> {
        self.store
            .take_warnings()
            .into_iter()
            .map(|w| NativeWarning {
                message: w.message.to_owned(),
                fields: w
                    .fields
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
            })
            .collect()
    }
}

/// A store's warning: its message and fields, for the `warn` log line.
#[napi(object)]
pub struct NativeWarning {
    pub message: String,
    pub fields: std::collections::HashMap<String, String>,
}

impl NativeStore {
    /// Runs `call` on the calling thread at `now`: the caller's clock (`Date.now()`), so
    /// that fake timers drive expiry as they drove the old module's `Map`s.
    pub(super) fn run(&self, call: Call, now: f64) -> Result<Reply> {
        ops::run(&*self.store, &self.cleanup, call, clock(now)?)
            .and_then(reply)
            .map_err(js_err)
    }

    /// Runs `call` on a thread of libuv's pool at `now`, the caller's clock when it called;
    /// or, when the store has the answer at hand without I/O (`ops::at_hand`: a PostgreSQL
    /// store's trusted cache) or the call is short in-memory work (`ops::at_once`: a memory
    /// store), gives the answer (or throws the error) at once, on this thread, which the JS
    /// layer awaits (or catches) as it awaits the task's Promise. A PostgreSQL store's calls
    /// that need the server are driven from this thread (`driven.rs`, `ops::run_later`).
    pub(super) fn later(
        &self,
        env: &Env,
        call: Call,
        now: f64,
    ) -> Result<Either3<Reply, AsyncTask<Later>, Started>> {
        let now = clock(now)?;
        if ops::at_once(&*self.store, &call) {
            return ops::run(&*self.store, &self.cleanup, call, now)
                .and_then(reply)
                .map(Either3::A)
                .map_err(js_err);
        }
        if let Some(answer) = ops::at_hand(&*self.store, &call, now) {
            return reply(answer).map(Either3::A).map_err(js_err);
        }
        // A PostgreSQL store's call, run from this thread (`driven.rs`; the kind asked
        // first: another store's call makes no driver). Its arguments are checked here.
        let call = if self.store.kind() == "postgres" && driven::available(env) {
            match ops::run_later(self.store.clone(), call, now).map_err(js_err)? {
                Driven::Later(later) => return driven::start(env, later).map(Either3::C),
                Driven::Back(call) => *call,
            }
        } else {
            call
        };
        Ok(Either3::B(AsyncTask::new(Later {
            store: self.store.clone(),
            cleanup: self.cleanup.clone(),
            call: Some(call),
            now,
        })))
    }
}
