//! A store's configuration as `lib/config.js` passes it (checked there), decoded into the
//! typed `StoreConfig`; the defaults of what it leaves out are `config.rs`'s.

use std::path::PathBuf;

use napi_derive::napi;

use crate::config::{
    StoreConfig, SyncMode, DEFAULT_BUSY_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_POOL_SIZE,
    DEFAULT_QUERY_TIMEOUT_MS,
};
use crate::error::StoreError;

#[napi(object)]
pub struct NativeConfig {
    /// `"memory"`, `"sqlite"` or `"postgres"`.
    pub kind: String,
    /// The SQLite file's absolute path.
    pub path: Option<String>,
    /// The PostgreSQL connection string, and what to call it in messages.
    pub url: Option<String>,
    pub url_name: Option<String>,
    /// The PostgreSQL schema (`public` by default).
    pub schema: Option<String>,
    pub connect_timeout_ms: Option<u32>,
    pub query_timeout_ms: Option<u32>,
    pub pool_size: Option<u32>,
    /// How long a refresh token rotated away is taken for a retry, not a replay.
    pub refresh_grace_ms: Option<u32>,
    /// `"normal"` or `"full"`.
    pub sync: Option<String>,
    pub busy_timeout_ms: Option<u32>,
    /// Use the process-wide store for this configuration (module-level functions).
    pub shared: bool,
}

impl NativeConfig {
    pub fn typed(&self) -> std::result::Result<StoreConfig, StoreError> {
        let unknown = |what: &str| StoreError::Config(format!("unknown {what}"));
        match (self.kind.as_str(), self.path.as_deref()) {
            ("memory", _) => Ok(StoreConfig::Memory),
            ("sqlite", Some(path)) => Ok(StoreConfig::Sqlite {
                path: PathBuf::from(path),
                sync: match self.sync.as_deref() {
                    None | Some("normal") => SyncMode::Normal,
                    Some("full") => SyncMode::Full,
                    Some(_) => return Err(unknown("sync mode")),
                },
                busy_timeout_ms: self.busy_timeout_ms.unwrap_or(DEFAULT_BUSY_TIMEOUT_MS),
            }),
            ("sqlite", None) => Err(StoreError::Config("a SQLite store needs a path".into())),
            ("postgres", _) => Ok(StoreConfig::Postgres {
                url: self
                    .url
                    .clone()
                    .ok_or_else(|| StoreError::Config("a PostgreSQL store needs a URL".into()))?,
                url_name: self
                    .url_name
                    .clone()
                    .unwrap_or_else(|| "the connection string".into()),
                schema: self.schema.clone().unwrap_or_else(|| "public".into()),
                connect_timeout_ms: self
                    .connect_timeout_ms
                    .unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS),
                query_timeout_ms: self.query_timeout_ms.unwrap_or(DEFAULT_QUERY_TIMEOUT_MS),
                pool_size: self.pool_size.unwrap_or(DEFAULT_POOL_SIZE),
            }),
            _ => Err(unknown("store kind")),
        }
    }
}
