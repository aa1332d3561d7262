//! The Promise form of an operation: its `Call` run on a thread of libuv's pool by the same
//! `ops::run` as the synchronous form, the answer or the error delivered on the JS thread.

use std::sync::Arc;

use napi::{Env, Task};

use super::errors::rejection;
use super::reply::{reply, Reply};
use crate::error::StoreError;
use crate::ops::{self, BackgroundCleanup, Call};
use crate::store::{spin, TokenStore};

/// A call run off the JS thread.
pub struct Later {
    pub(super) store: Arc<dyn TokenStore>,
    pub(super) cleanup: Arc<BackgroundCleanup>,
    pub(super) call: Option<Call>,
    /// The caller's clock when it made the call.
    pub(super) now: i64,
}

impl Task for Later {
    type Output = std::result::Result<Reply, StoreError>;
    type JsValue = Reply;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let call = self.call.take();
        // On libuv's pool: the JS thread is free meanwhile, so no polling for the answer.
        spin::elsewhere(|| {
            Ok(call
                .ok_or(StoreError::Internal("a call ran twice"))
                .and_then(|call| ops::run(&*self.store, &self.cleanup, call, self.now))
                .and_then(reply))
        })
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Reply> {
        output.map_err(|e| rejection(&env, e))
    }
}
