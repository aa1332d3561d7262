//! A store's configuration as `lib/config.js` passes it (checked there), decoded into the
//! typed `StoreConfig`; the defaults of what it leaves out are `config.rs`'s.

use std::path::PathBuf;

use napi_derive::napi;

use crate::config::{StoreConfig, SyncMode, DEFAULT_BUSY_TIMEOUT_MS};
#[cfg(feature = "postgres")]
use crate::config::{DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_POOL_SIZE, DEFAULT_QUERY_TIMEOUT_MS};
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
            #[cfg(not(feature = "postgres"))]
            ("postgres", _) => Err(crate::config::without_postgres()),
            #[cfg(feature = "postgres")]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn postgres() -> NativeConfig {
        NativeConfig {
            kind: "postgres".into(),
            path: None,
            url: Some("postgres://tokens@db.internal/tokens".into()),
            url_name: Some("TOKEN_DATABASE_URL".into()),
            schema: None,
            connect_timeout_ms: None,
            query_timeout_ms: None,
            pool_size: None,
            refresh_grace_ms: None,
            sync: None,
            busy_timeout_ms: None,
            shared: false,
        }
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_is_a_store_with_the_feature() {
        assert!(matches!(
            postgres().typed(),
            Ok(StoreConfig::Postgres { schema, pool_size: DEFAULT_POOL_SIZE, .. }) if schema == "public"
        ));
        assert_eq!(
            crate::store::check_postgres_url(
                "postgres://tokens@db.internal/tokens",
                "TOKEN_DATABASE_URL"
            ),
            Ok(())
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
