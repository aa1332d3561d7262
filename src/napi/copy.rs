//! A copy of every row of one store into another (`store::snapshot::copy`), synchronous or
//! on a thread of libuv's pool, and how far the latest copy or backup of a store is (not a
//! `Call` of `operations.rs`: it works on two stores); and the other calls only the
//! command line makes (`bin/native-token-storage.js`): the rows' counts, a client revoked.

use std::sync::Arc;

use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Task};
use napi_derive::napi;

use super::errors::{js_err, rejection, Result};
use super::store::NativeStore;
use crate::error::StoreError;
use crate::store::snapshot::{copy, CopyOptions, Progress, DEFAULT_BATCH};
use crate::store::TokenStore;

/// A copy run off the JS thread.
pub struct CopyTask {
    from: Arc<dyn TokenStore>,
    to: Arc<dyn TokenStore>,
    options: CopyOptions,
    progress: Arc<Progress>,
}

impl CopyTask {
    fn run(&self) -> std::result::Result<String, StoreError> {
        self.progress.reset();
        copy(&*self.from, &*self.to, self.options, &self.progress)
            .map(|counts| counts.to_json().to_string())
    }
}

impl Task for CopyTask {
    type Output = std::result::Result<String, StoreError>;
    type JsValue = String;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(self.run())
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<String> {
        output.map_err(|e| rejection(&env, e))
    }
}

#[napi]
impl NativeStore {
    fn copy_task(&self, target: &NativeStore, overwrite: bool, batch_size: u32) -> CopyTask {
        CopyTask {
            from: self.store.clone(),
            to: target.store.clone(),
            options: CopyOptions {
                batch: match batch_size {
                    0 => DEFAULT_BATCH,
                    n => n as usize,
                },
                overwrite,
            },
            progress: self.progress.clone(),
        }
    }

    /// Copies every row of this store into `target` (refused if it holds rows, unless
    /// `overwrite`); answers the counts copied as JSON text. Its progress: `copyProgress()`.
    #[napi]
    pub fn copy_to(
        &self,
        target: &NativeStore,
        overwrite: bool,
        batch_size: u32,
    ) -> Result<String> {
        self.copy_task(target, overwrite, batch_size)
            .run()
            .map_err(js_err)
    }

    /// `copyTo` on a thread of libuv's pool.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn copy_to_async(
        &self,
        target: &NativeStore,
        overwrite: bool,
        batch_size: u32,
    ) -> AsyncTask<CopyTask> {
        AsyncTask::new(self.copy_task(target, overwrite, batch_size))
    }

    /// How many rows of each kind the store holds (expired ones included), as JSON text.
    #[napi]
    pub fn row_counts(&self) -> Result<String> {
        self.store
            .row_counts()
            .map(|c| c.to_json().to_string())
            .map_err(js_err)
    }

    /// Removes every access token (with its refresh token) and code of the client; returns
    /// how many access tokens it removed (the command line's `revoke --client`).
    #[napi]
    pub fn revoke_client_tokens(&self, client_id: String) -> Result<f64> {
        if client_id.is_empty() {
            return Ok(0.0);
        }
        self.store
            .revoke_client(&client_id)
            .map(|n| n as f64)
            .map_err(js_err)
    }

    /// Whether a store of this package is already there (a PostgreSQL schema with its
    /// tables), asked without creating one: the command line's read-only commands' check.
    #[napi]
    pub fn store_exists(&self) -> Result<bool> {
        self.store.exists().map_err(js_err)
    }

    /// What names the store whatever the URL that reached it (`RowStore::identity`), or
    /// null: the command line's check that a copy's source and target are not one store.
    #[napi]
    pub fn store_identity(&self) -> Result<Option<String>> {
        self.store.identity().map_err(js_err)
    }

    /// `[rows done, rows in all]` of this store's latest backup or copy (0 of 0 until its
    /// snapshot's counts are known).
    #[napi]
    pub fn copy_progress(&self) -> Vec<f64> {
        let (done, total) = self.progress.get();
        vec![done as f64, total as f64]
    }
}
