//! The SQLite store's settings: the file, how it syncs, how long a write waits for a lock.

use std::path::PathBuf;
use std::sync::Arc;

use super::SqliteStore;
use crate::error::{Result, StoreError};
use crate::store::backends::{Backend, Fields};
use crate::store::TokenStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// `synchronous=NORMAL`: in WAL mode a power loss can undo the last commits, never corrupt.
    Normal,
    /// `synchronous=FULL`: every commit is on disk before the call returns.
    Full,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteSettings {
    /// An absolute path.
    pub path: PathBuf,
    pub sync: SyncMode,
    pub busy_timeout_ms: u32,
}

impl Backend for SqliteSettings {
    /// `{ path, sync: "normal" | "full", busyTimeoutMs }`.
    fn decode(settings: &Fields) -> Result<Self> {
        let Some(path) = settings.optional_string("path")? else {
            return Err(StoreError::Config("a SQLite store needs a path".into()));
        };
        Ok(SqliteSettings {
            path: PathBuf::from(path),
            sync: match settings.string("sync")?.as_str() {
                "normal" => SyncMode::Normal,
                "full" => SyncMode::Full,
                _ => return Err(StoreError::Config("unknown sync mode".into())),
            },
            busy_timeout_ms: settings.u32("busyTimeoutMs")?,
        })
    }

    /// The file: one store per path, whatever its other settings.
    fn key(&self) -> String {
        self.path.display().to_string()
    }

    fn open(&self) -> Arc<dyn TokenStore> {
        Arc::new(SqliteStore::new(
            self.path.clone(),
            self.sync,
            self.busy_timeout_ms,
        ))
    }

    #[cfg(test)]
    fn test_store() -> Option<crate::store::backends::TestStore> {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::new(dir.path().join("tokens.db"), SyncMode::Normal, 1000);
        Some(crate::store::backends::TestStore {
            store: Box::new(store),
            _keep: Box::new(dir),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::StoreConfig;

    fn decode(value: serde_json::Value) -> Result<StoreConfig> {
        StoreConfig::decode("sqlite", value.as_object().expect("an object"))
    }

    #[test]
    fn takes_its_settings_as_passed() {
        let given = |sync: &str| json!({ "path": "/srv/tokens.db", "sync": sync, "busyTimeoutMs": 900 });
        assert_eq!(
            decode(given("full")),
            Ok(StoreConfig::sqlite(SqliteSettings {
                path: PathBuf::from("/srv/tokens.db"),
                sync: SyncMode::Full,
                busy_timeout_ms: 900,
            }))
        );
        assert_eq!(
            decode(given("")).map_err(|e| e.to_string()),
            Err("unknown sync mode".into())
        );
        let no_path = json!({ "sync": "normal", "busyTimeoutMs": 900 });
        let err = decode(no_path).expect_err("refused");
        assert_eq!(err.code(), "ERR_TOKEN_STORAGE_CONFIG");
        assert!(err.to_string().contains("needs a path"), "{err}");
        let no_timeout = json!({ "path": "/srv/tokens.db", "sync": "normal" });
        assert_eq!(
            decode(no_timeout).map_err(|e| e.to_string()),
            Err("Missing field `busyTimeoutMs`".into())
        );
    }

    #[test]
    fn one_key_per_file() {
        let file = |p: &str, sync| StoreConfig::sqlite(SqliteSettings {
            path: PathBuf::from(p),
            sync,
            busy_timeout_ms: 1_000,
        });
        assert_eq!(
            file("/srv/t.db", SyncMode::Normal).key(),
            file("/srv/t.db", SyncMode::Full).key()
        );
        assert_ne!(
            file("/srv/t.db", SyncMode::Normal).key(),
            file("/srv/u.db", SyncMode::Normal).key()
        );
        assert_ne!(
            file("memory", SyncMode::Normal).key(),
            StoreConfig::memory(crate::store::MemorySettings).key()
        );
    }
}
