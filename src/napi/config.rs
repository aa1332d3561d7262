//! A store's configuration as `lib/config.js` passes it (checked there, every setting
//! filled: the defaults are `lib/defaults.js`'s), decoded into the typed `StoreConfig`.

use std::path::PathBuf;

use napi_derive::napi;

use crate::config::{StoreConfig, SyncMode};
use crate::error::StoreError;

/// Every setting is required but those that belong to one kind of store and have no
/// default (the SQLite file, the PostgreSQL connection string and its name), which that
/// kind requires. A memory store is passed the other kinds' settings, unused.
#[napi(object)]
pub struct NativeConfig {
    /// `"memory"`, `"sqlite"` or `"postgres"`.
    pub kind: String,
    /// The SQLite file's absolute path.
    pub path: Option<String>,
    /// The PostgreSQL connection string, and what to call it in messages.
    pub url: Option<String>,
    pub url_name: Option<String>,
    /// The PostgreSQL schema.
    pub schema: String,
    pub connect_timeout_ms: u32,
    pub query_timeout_ms: u32,
    pub pool_size: u32,
    /// How long a refresh token rotated away is taken for a retry, not a replay.
    pub refresh_grace_ms: u32,
    /// `"normal"` or `"full"`.
    pub sync: String,
    pub busy_timeout_ms: u32,
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
                sync: match self.sync.as_str() {
                    "normal" => SyncMode::Normal,
                    "full" => SyncMode::Full,
                    _ => return Err(unknown("sync mode")),
                },
                busy_timeout_ms: self.busy_timeout_ms,
            }),
            ("sqlite", None) => Err(StoreError::Config("a SQLite store needs a path".into())),
            #[cfg(not(feature = "postgres"))]
            ("postgres", _) => Err(crate::config::without_postgres()),
            #[cfg(feature = "postgres")]
            ("postgres", _) => {
                let (Some(url), Some(url_name)) = (&self.url, &self.url_name) else {
                    return Err(StoreError::Config(
                        "a PostgreSQL store needs a URL and what to call it in messages".into(),
                    ));
                };
                Ok(StoreConfig::Postgres {
                    url: url.clone(),
                    url_name: url_name.clone(),
                    schema: self.schema.clone(),
                    connect_timeout_ms: self.connect_timeout_ms,
                    query_timeout_ms: self.query_timeout_ms,
                    pool_size: self.pool_size,
                })
            }
            _ => Err(unknown("store kind")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PostgreSQL configuration as `lib/config.js` passes it, every setting given (test
    /// values, none of them a default: the defaults are `lib/defaults.js`'s).
    fn postgres() -> NativeConfig {
        NativeConfig {
            kind: "postgres".into(),
            path: None,
            url: Some("postgres://tokens@db.internal/tokens".into()),
            url_name: Some("TOKEN_DATABASE_URL".into()),
            schema: "tokens".into(),
            connect_timeout_ms: 1_500,
            query_timeout_ms: 2_500,
            pool_size: 3,
            refresh_grace_ms: 7_000,
            sync: "normal".into(),
            busy_timeout_ms: 900,
            shared: false,
        }
    }

    /// The settings reach the typed configuration as they were passed: nothing is
    /// defaulted or replaced on the way.
    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_is_a_store_with_the_feature() {
        assert_eq!(
            postgres().typed(),
            Ok(StoreConfig::Postgres {
                url: "postgres://tokens@db.internal/tokens".into(),
                url_name: "TOKEN_DATABASE_URL".into(),
                schema: "tokens".into(),
                connect_timeout_ms: 1_500,
                query_timeout_ms: 2_500,
                pool_size: 3,
            })
        );
        assert_eq!(
            crate::store::check_postgres_url(
                "postgres://tokens@db.internal/tokens",
                "TOKEN_DATABASE_URL"
            ),
            Ok(())
        );
    }

    /// A PostgreSQL store without its URL, or without what to call it, is refused: neither
    /// has a default.
    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_needs_its_url_and_its_name() {
        for config in [
            NativeConfig {
                url: None,
                ..postgres()
            },
            NativeConfig {
                url_name: None,
                ..postgres()
            },
        ] {
            let err = config.typed().expect_err("refused");
            assert_eq!(err.code(), "ERR_TOKEN_STORAGE_CONFIG");
            assert!(err.to_string().contains("needs a URL"), "{err}");
        }
    }

    #[test]
    fn sqlite_takes_its_settings_as_passed() {
        let sqlite = |sync: &str| NativeConfig {
            kind: "sqlite".into(),
            path: Some("/srv/tokens.db".into()),
            url: None,
            url_name: None,
            sync: sync.into(),
            ..postgres()
        };
        assert_eq!(
            sqlite("full").typed(),
            Ok(StoreConfig::Sqlite {
                path: PathBuf::from("/srv/tokens.db"),
                sync: SyncMode::Full,
                busy_timeout_ms: 900,
            })
        );
        assert_eq!(
            sqlite("").typed().map_err(|e| e.to_string()),
            Err("unknown sync mode".into())
        );
        let no_path = NativeConfig {
            path: None,
            ..sqlite("normal")
        };
        assert_eq!(
            no_path.typed().map_err(|e| e.code()),
            Err("ERR_TOKEN_STORAGE_CONFIG")
        );
    }

    /// An addon built without PostgreSQL refuses a PostgreSQL configuration at the check of
    /// the configuration and at the store's construction, with the configuration's code and
    /// a message that says why and what to do.
    #[cfg(not(feature = "postgres"))]
    #[test]
    fn postgres_without_the_feature_is_a_config_error() {
        let from_config = postgres()
            .typed()
            .expect_err("no PostgreSQL store in this build");
        let from_check = crate::store::check_postgres_url(
            "postgres://tokens@db.internal/tokens",
            "TOKEN_DATABASE_URL",
        )
        .expect_err("no PostgreSQL store in this build");
        for err in [from_config, from_check] {
            assert_eq!(err.code(), "ERR_TOKEN_STORAGE_CONFIG");
            let message = err.to_string();
            assert!(message.contains("no PostgreSQL store"), "{message}");
            assert!(message.contains("cargo feature \"postgres\""), "{message}");
        }
    }
}
