//! Which store to open, parsed from the values of `TOKEN_STORAGE`, `TOKEN_DB_PATH` and
//! `TOKEN_DB_SYNC` (or the options of `new TokenStorage`). The JS layer reads the
//! environment and passes the values in, since worker threads keep their own copy.

use std::path::{Path, PathBuf};

use crate::error::{Result, StoreError};

/// The default database file, relative to the working directory.
pub const DEFAULT_DB_PATH: &str = "data/tokens.db";
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
        path: PathBuf,
        sync: SyncMode,
        busy_timeout_ms: u32,
    },
}

impl StoreConfig {
    /// Parses the configuration. `storage`, `sync`: case-insensitive, unset or empty means
    /// the default. A relative `path` resolves against `cwd`.
    pub fn parse(
        storage: Option<&str>,
        path: Option<&str>,
        sync: Option<&str>,
        busy_timeout_ms: Option<u32>,
        cwd: &Path,
    ) -> Result<StoreConfig> {
        let kind = storage.unwrap_or("").trim().to_ascii_lowercase();
        match kind.as_str() {
            "" | "memory" => Ok(StoreConfig::Memory),
            "db" | "sqlite" => {
                let raw = path.filter(|p| !p.is_empty()).unwrap_or(DEFAULT_DB_PATH);
                let path = normalize(&cwd.join(raw));
                Ok(StoreConfig::Sqlite {
                    path,
                    sync: parse_sync(sync)?,
                    busy_timeout_ms: busy_timeout_ms.unwrap_or(DEFAULT_BUSY_TIMEOUT_MS),
                })
            }
            _ => Err(StoreError::Config(format!(
                "TOKEN_STORAGE is {:?}; accepted values are \"memory\" (or unset), \"db\" and \"sqlite\"",
                storage.unwrap_or("")
            ))),
        }
    }

    /// `"memory"` or `"sqlite"`.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreConfig::Memory => "memory",
            StoreConfig::Sqlite { .. } => "sqlite",
        }
    }

    /// A key that is equal for configurations naming the same store.
    pub fn key(&self) -> String {
        match self {
            StoreConfig::Memory => "memory".into(),
            StoreConfig::Sqlite { path, .. } => format!("sqlite:{}", path.display()),
        }
    }
}

/// Removes `.` and resolves `..` lexically, so two spellings of one file are one store.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn parse_sync(sync: Option<&str>) -> Result<SyncMode> {
    match sync.unwrap_or("").trim().to_ascii_lowercase().as_str() {
        "" | "normal" => Ok(SyncMode::Normal),
        "full" => Ok(SyncMode::Full),
        _ => Err(StoreError::Config(format!(
            "TOKEN_DB_SYNC is {:?}; accepted values are \"normal\" (the default) and \"full\"",
            sync.unwrap_or("")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(storage: Option<&str>, path: Option<&str>) -> Result<StoreConfig> {
        StoreConfig::parse(storage, path, None, None, Path::new("/srv/app"))
    }

    #[test]
    fn unset_empty_and_memory_choose_memory() {
        for v in [
            None,
            Some(""),
            Some("memory"),
            Some("MEMORY"),
            Some(" Memory "),
        ] {
            assert_eq!(parse(v, None), Ok(StoreConfig::Memory), "{v:?}");
        }
    }

    #[test]
    fn db_and_sqlite_choose_sqlite_with_default_path() {
        for v in ["db", "DB", "sqlite", "SQLite"] {
            let cfg = parse(Some(v), None).unwrap();
            assert_eq!(
                cfg,
                StoreConfig::Sqlite {
                    path: PathBuf::from("/srv/app/data/tokens.db"),
                    sync: SyncMode::Normal,
                    busy_timeout_ms: DEFAULT_BUSY_TIMEOUT_MS
                }
            );
        }
    }

    #[test]
    fn paths_resolve_against_cwd() {
        let rel = parse(Some("db"), Some("x/t.db")).unwrap();
        assert_eq!(rel.key(), "sqlite:/srv/app/x/t.db");
        let abs = parse(Some("db"), Some("/var/t.db")).unwrap();
        assert_eq!(abs.key(), "sqlite:/var/t.db");
        let dots = parse(Some("db"), Some("./a/../../x/./t.db")).unwrap();
        assert_eq!(dots.key(), "sqlite:/srv/x/t.db");
    }

    #[test]
    fn unknown_storage_is_an_error_naming_value_and_choices() {
        let err = parse(Some("redis"), None).unwrap_err();
        assert_eq!(err.code(), "ERR_TOKEN_STORAGE_CONFIG");
        let msg = err.to_string();
        assert!(msg.contains("\"redis\"") && msg.contains("memory") && msg.contains("sqlite"));
    }

    #[test]
    fn sync_mode() {
        let p = Path::new("/");
        let full = StoreConfig::parse(Some("db"), None, Some("FULL"), None, p).unwrap();
        assert!(matches!(
            full,
            StoreConfig::Sqlite {
                sync: SyncMode::Full,
                ..
            }
        ));
        let err = StoreConfig::parse(Some("db"), None, Some("off"), None, p).unwrap_err();
        assert_eq!(err.code(), "ERR_TOKEN_STORAGE_CONFIG");
    }
}
