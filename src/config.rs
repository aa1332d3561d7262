//! Which store to open: a typed configuration. The JS layer reads the environment (the only
//! place that knows the variables' names), checks the values, fills in what was left out
//! (every default is in `lib/defaults.js`), and passes them in: nothing here has a default.

use std::path::PathBuf;

#[cfg(not(feature = "postgres"))]
use crate::error::StoreError;

/// What asking for a PostgreSQL store gets from an addon built without the cargo feature
/// `postgres`: a configuration error, at the configuration check, before anything opens.
#[cfg(not(feature = "postgres"))]
pub fn without_postgres() -> StoreError {
    StoreError::Config(
        "this build of native-token-storage has no PostgreSQL store: its addon was built \
         without the cargo feature \"postgres\"; build it with the feature (`npm run build`, \
         the default) or use the memory or SQLite store"
            .into(),
    )
}

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
    /// Only with the cargo feature `postgres` (see `without_postgres`).
    #[cfg(feature = "postgres")]
    Postgres {
        /// A connection string, URL or key-value form (it may hold a password: never shown).
        url: String,
        /// What to call the connection string in messages (`TOKEN_DATABASE_URL`, …).
        url_name: String,
        /// The schema that holds the tables.
        schema: String,
        connect_timeout_ms: u32,
        query_timeout_ms: u32,
        pool_size: u32,
    },
}

impl StoreConfig {
    /// A key that is equal for configurations naming the same store.
    pub fn key(&self) -> String {
        match self {
            StoreConfig::Memory => "memory".into(),
            StoreConfig::Sqlite { path, .. } => format!("sqlite:{}", path.display()),
            // A digest, so that the password of the URL is not kept in one more place.
            #[cfg(feature = "postgres")]
            StoreConfig::Postgres { url, schema, .. } => {
                use sha2::{Digest, Sha256};
                let digest = Sha256::new()
                    .chain_update(url.as_bytes())
                    .chain_update([0])
                    .chain_update(schema.as_bytes())
                    .finalize();
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                format!("postgres:{hex}")
            }
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
            busy_timeout_ms: 1_000,
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
