//! Which store to open: a typed configuration. The JS layer reads the environment (the only
//! place that knows the variables' names), checks the values, and passes them in.

use std::path::PathBuf;

/// How long a write waits for another connection's lock before `ERR_TOKEN_STORAGE_BUSY`.
pub const DEFAULT_BUSY_TIMEOUT_MS: u32 = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// `synchronous=NORMAL`: in WAL mode a power loss can undo the last commits, never corrupt.
    Normal,
    /// `synchronous=FULL`: every commit is on disk before the call returns.
    Full,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    Memory,
    Sqlite {
        /// An absolute path.
        path: PathBuf,
        sync: SyncMode,
        busy_timeout_ms: u32,
    },
}

impl StoreConfig {
    /// A key that is equal for configurations naming the same store.
    pub fn key(&self) -> String {
        match self {
            StoreConfig::Memory => "memory".into(),
            StoreConfig::Sqlite { path, .. } => format!("sqlite:{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_per_store() {
        let file = |p: &str, sync| StoreConfig::Sqlite {
            path: PathBuf::from(p),
            sync,
            busy_timeout_ms: DEFAULT_BUSY_TIMEOUT_MS,
        };
        assert_eq!(StoreConfig::Memory.key(), "memory");
        assert_eq!(
            file("/srv/t.db", SyncMode::Normal).key(),
            file("/srv/t.db", SyncMode::Full).key()
        );
        assert_ne!(
            file("/srv/t.db", SyncMode::Normal).key(),
            file("/srv/u.db", SyncMode::Normal).key()
        );
    }
}
