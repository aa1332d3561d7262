//! A store's configuration as `lib/config.js` passes it (checked there, every setting
//! filled: the defaults are `lib/defaults.js`'s), decoded into the typed `StoreConfig` by
//! the backend's folder (`store/<kind>/settings.rs`).

use napi_derive::napi;
use serde_json::{Map, Value};

use crate::crypto::Keyring;
use crate::error::StoreError;
use crate::store::StoreConfig;

/// Every field is required: the store has no defaults of its own.
#[napi(object)]
pub struct NativeConfig {
    /// A backend of `backend_list!` (`store/mod.rs`): `"memory"`, `"sqlite"`, `"postgres"`.
    pub kind: String,
    /// The backend's own settings, a plain object its folder decodes.
    pub settings: Map<String, Value>,
    /// How long a refresh token rotated away is taken for a retry, not a replay.
    pub refresh_grace_ms: u32,
    /// Use the process-wide store for this configuration (module-level functions).
    pub shared: bool,
    /// The keyring (`TOKEN_ENCRYPTION_KEYS` or the `encryptionKeys` option, `id:key,…`):
    /// secrets at rest sealed (`store::sealed`); absent for a store in clear.
    pub encryption_keys: Option<String>,
}

impl NativeConfig {
    pub fn typed(&self) -> std::result::Result<StoreConfig, StoreError> {
        StoreConfig::decode(&self.kind, &self.settings)
    }

    /// The keyring, parsed: a malformed one is `ERR_TOKEN_STORAGE_BAD_ENCRYPTION_KEY` here,
    /// at the store's construction, never a fallback to clear text.
    pub fn keyring(&self) -> std::result::Result<Option<Keyring>, StoreError> {
        self.encryption_keys
            .as_deref()
            .map(Keyring::parse)
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config(kind: &str, settings: Value) -> NativeConfig {
        NativeConfig {
            kind: kind.into(),
            settings: settings.as_object().cloned().expect("an object"),
            refresh_grace_ms: 7_000,
            shared: false,
            encryption_keys: None,
        }
    }

    #[test]
    fn a_kind_no_backend_has_is_refused() {
        let err = config("mongodb", json!({})).typed().expect_err("refused");
        assert_eq!(err.code(), "ERR_TOKEN_STORAGE_CONFIG");
        assert_eq!(err.to_string(), "unknown store kind");
        let err = crate::store::check_settings("mongodb", &Map::new()).expect_err("refused");
        assert_eq!(err.code(), "ERR_TOKEN_STORAGE_CONFIG");
    }

    #[test]
    fn a_memory_store_has_no_settings() {
        assert_eq!(
            config("memory", json!({})).typed(),
            Ok(StoreConfig::memory(crate::store::MemorySettings))
        );
    }

    /// A setting of the wrong type is refused by name, its value never shown (it may be a
    /// connection string with its password).
    #[test]
    fn a_setting_of_the_wrong_type_is_named_not_shown() {
        let settings =
            json!({ "path": "/srv/t.db", "sync": "normal", "busyTimeoutMs": "p4ssw0rd" });
        let err = config("sqlite", settings).typed().expect_err("refused");
        assert_eq!(err.code(), "ERR_TOKEN_STORAGE_CONFIG");
        assert!(err.to_string().contains("busyTimeoutMs"), "{err}");
        assert!(!err.to_string().contains("p4ssw0rd"), "{err}");
    }

    /// An addon built without PostgreSQL refuses a PostgreSQL configuration at the check of
    /// the configuration and at the store's construction, with the configuration's code and
    /// a message that says why and what to do.
    #[cfg(not(feature = "postgres"))]
    #[test]
    fn postgres_without_the_feature_is_a_config_error() {
        let settings = json!({ "url": "postgres://tokens@db.internal/tokens", "urlName": "TOKEN_DATABASE_URL" });
        let from_config = config("postgres", settings.clone())
            .typed()
            .expect_err("no PostgreSQL store in this build");
        let from_check =
            crate::store::check_settings("postgres", settings.as_object().expect("an object"))
                .expect_err("no PostgreSQL store in this build");
        for err in [from_config, from_check] {
            assert_eq!(err.code(), "ERR_TOKEN_STORAGE_CONFIG");
            assert_eq!(
                err.to_string(),
                "this build of native-token-storage has no PostgreSQL store: its addon was built \
                 without the cargo feature \"postgres\"; build it with the feature (`npm run \
                 build`, the default) or use the memory or SQLite store"
            );
        }
    }
}
