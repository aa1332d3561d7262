//! What a backend gives the rest of the addon, and what the list of backends in `mod.rs`
//! makes of it.
//!
//! Each backend's folder has a `settings.rs` whose settings type implements `Backend`: it
//! reads the settings `lib/config.js` passes (a plain object, every setting given: the
//! defaults are `lib/defaults.js`'s), checks at configuration what only it can check,
//! says which settings name the same data (the process-wide store's key) and opens the
//! store. The `backends!` list in `mod.rs` names each backend once; from it come the
//! typed configuration `StoreConfig` (one variant per backend, named by its kind), its
//! decoding, `check_settings`, `open`, `StoreConfig::key`, and the suite every store runs
//! (`tests.rs`).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::TokenStore;
use crate::error::{Result, StoreError};

/// A backend, through its settings.
pub trait Backend: Sized {
    /// The settings as `lib/config.js` passes them.
    fn decode(settings: &Fields) -> Result<Self>;

    /// What the configuration can check before anything opens (a connection string's
    /// form), called by `lib/config.js` with the settings checked so far; a store's
    /// construction does not repeat it (its first call fails instead).
    fn check(_settings: &Fields) -> Result<()> {
        Ok(())
    }

    /// Equal for settings that name the same data (after the kind, in the key of the
    /// process-wide store); never a secret in clear.
    fn key(&self) -> String;

    /// The store, not yet opened.
    fn open(&self) -> Arc<dyn TokenStore>;

    /// A fresh store for the suite every store runs (`tests.rs`), and what keeps it alive
    /// (dropped after it); `None` skips the suite (a server the tests were not given).
    #[cfg(test)]
    fn test_store() -> Option<TestStore>;
}

/// A store for the tests, and what must outlive it (a temp folder, a test schema).
#[cfg(test)]
pub struct TestStore {
    pub store: Box<dyn TokenStore>,
    pub _keep: Box<dyn std::any::Any>,
}

/// A `Backend::key` that keeps no secret in clear: the hex SHA-256 of `parts` (a connection
/// string with its password, and what else names the data), each ended by a NUL.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub fn digest_key(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    for p in parts {
        digest.update(p.as_bytes());
        digest.update([0]);
    }
    digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What asking for a store of a backend this addon was built without gets: a
/// configuration error, at the configuration check, before anything opens.
#[cfg_attr(all(feature = "postgres", feature = "redis"), allow(dead_code))]
pub fn without_feature(name: &str, feature: &str) -> StoreError {
    StoreError::Config(format!(
        "this build of native-token-storage has no {name} store: its addon was built \
         without the cargo feature \"{feature}\"; build it with the feature (`npm run build`, \
         the default) or use the memory or SQLite store"
    ))
}

/// A backend's settings, read by name. Messages name the setting, never its value (a
/// connection string may hold a password).
pub struct Fields<'a>(pub &'a Map<String, Value>);

impl Fields<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn missing(name: &str) -> StoreError {
        StoreError::Config(format!("Missing field `{name}`"))
    }

    /// A string, or `None` if it is not there.
    pub fn optional_string(&self, name: &str) -> Result<Option<String>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(StoreError::Config(format!("`{name}` must be a string"))),
        }
    }

    pub fn string(&self, name: &str) -> Result<String> {
        self.optional_string(name)?
            .ok_or_else(|| Self::missing(name))
    }

    /// A server's URL and what to call it in messages (`url`, `urlName`): both required,
    /// neither has a default. `store` names the kind of store in the message.
    #[cfg_attr(not(any(feature = "postgres", feature = "redis")), allow(dead_code))]
    pub fn url_and_name(&self, store: &str) -> Result<(String, String)> {
        match (
            self.optional_string("url")?,
            self.optional_string("urlName")?,
        ) {
            (Some(url), Some(name)) => Ok((url, name)),
            _ => Err(StoreError::Config(format!(
                "a {store} store needs a URL and what to call it in messages"
            ))),
        }
    }

    /// A duration in whole milliseconds (`u32`).
    #[cfg_attr(not(any(feature = "postgres", feature = "redis")), allow(dead_code))]
    pub fn millis(&self, name: &str) -> Result<std::time::Duration> {
        Ok(std::time::Duration::from_millis(u64::from(self.u32(name)?)))
    }

    /// A whole number from 0 to `u32::MAX`.
    pub fn u32(&self, name: &str) -> Result<u32> {
        let value = self.get(name).ok_or_else(|| Self::missing(name))?;
        let n = value.as_u64().or_else(|| {
            value
                .as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        });
        n.and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
            StoreError::Config(format!(
                "`{name}` must be a whole number from 0 to {}",
                u32::MAX
            ))
        })
    }
}

/// Makes, from the list of backends (`backend_list!` in `mod.rs`), the module of each,
/// `StoreConfig`, `check_settings` and `open`.
macro_rules! backends {
    ([] $( $(#[doc = $doc:literal])* $kind:ident :: $Settings:ident $(if feature $feature:literal else $name:literal)? ; )*) => {
        $( $(#[doc = $doc])* $(#[cfg(feature = $feature)])? mod $kind; )*

        /// Which store to open: its kind and its settings, typed by its folder. Made from the
        /// list of backends; a variant is named by its kind (`"sqlite"`: `StoreConfig::sqlite`).
        #[derive(Debug, Clone, PartialEq)]
        #[allow(non_camel_case_types)]
        pub enum StoreConfig {
            $( $(#[cfg(feature = $feature)])? $kind($kind::$Settings), )*
        }

        impl StoreConfig {
            /// The configuration of a store of `kind` from its settings as `lib/config.js`
            /// passes them.
            pub fn decode(kind: &str, settings: &serde_json::Map<String, serde_json::Value>) -> Result<StoreConfig> {
                let fields = backends::Fields(settings);
                $(
                    $(#[cfg(feature = $feature)])?
                    if kind == stringify!($kind) {
                        return <$kind::$Settings as backends::Backend>::decode(&fields).map(StoreConfig::$kind);
                    }
                    $(
                        #[cfg(not(feature = $feature))]
                        if kind == stringify!($kind) {
                            return Err(backends::without_feature($name, $feature));
                        }
                    )?
                )*
                Err(StoreError::Config("unknown store kind".into()))
            }

            /// `"memory"`, `"sqlite"`, …
            pub fn kind(&self) -> &'static str {
                match self {
                    $( $(#[cfg(feature = $feature)])? StoreConfig::$kind(_) => stringify!($kind), )*
                }
            }

            /// A key that is equal for configurations naming the same store.
            pub fn key(&self) -> String {
                match self {
                    $(
                        $(#[cfg(feature = $feature)])?
                        StoreConfig::$kind(s) => format!("{}:{}", stringify!($kind), backends::Backend::key(s)),
                    )*
                }
            }
        }

        /// Checks the settings of a store of `kind` as far as they can be checked before
        /// anything opens (`Backend::check`).
        pub fn check_settings(kind: &str, settings: &serde_json::Map<String, serde_json::Value>) -> Result<()> {
            let fields = backends::Fields(settings);
            $(
                $(#[cfg(feature = $feature)])?
                if kind == stringify!($kind) {
                    return <$kind::$Settings as backends::Backend>::check(&fields);
                }
                $(
                    #[cfg(not(feature = $feature))]
                    if kind == stringify!($kind) {
                        return Err(backends::without_feature($name, $feature));
                    }
                )?
            )*
            Err(StoreError::Config("unknown store kind".into()))
        }

        /// The store a configuration names, not yet opened.
        pub fn open(config: &StoreConfig) -> Arc<dyn TokenStore> {
            match config {
                $( $(#[cfg(feature = $feature)])? StoreConfig::$kind(s) => backends::Backend::open(s), )*
            }
        }
    };
}
