//! The PostgreSQL store's settings: the connection string (and what messages call it), the
//! schema, the timeouts and the pool's size. The connection string is checked at
//! configuration (`check`), so a bad one fails when the server starts, never echoed.

use std::sync::Arc;
use std::time::Duration;

use super::{tls, url, PostgresStore};
use crate::error::{Result, StoreError};
use crate::store::backends::{Backend, Fields};
use crate::store::TokenStore;

/// The settings of a PostgreSQL store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    pub url: String,
    /// What to call the URL in messages (`TOKEN_DATABASE_URL`, `options.url`).
    pub url_name: String,
    pub schema: String,
    pub connect_timeout: Duration,
    pub query_timeout: Duration,
    pub pool_size: usize,
}

/// `schema` if it is a name the store's SQL may hold as it is: a letter or `_`, then up to 62
/// letters, digits or `_` (`lib/config.js` checks the same first). The store quotes it as an
/// identifier, and its triggers and functions also put it inside string literals, where a
/// quote would end the literal.
fn schema_name(schema: String) -> Result<String> {
    let mut chars = schema.chars();
    let first = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if first && rest && schema.len() <= 63 {
        Ok(schema)
    } else {
        Err(StoreError::Config(format!(
            "the PostgreSQL schema {schema:?} is not a letter or _ then up to 62 letters, digits or _"
        )))
    }
}

impl Backend for PostgresSettings {
    /// `{ url, urlName, schema, connectTimeoutMs, queryTimeoutMs, poolSize }`.
    fn decode(settings: &Fields) -> Result<Self> {
        let (url, url_name) = settings.url_and_name("PostgreSQL")?;
        Ok(PostgresSettings {
            url,
            url_name,
            schema: schema_name(settings.string("schema")?)?,
            connect_timeout: settings.millis("connectTimeoutMs")?,
            query_timeout: settings.millis("queryTimeoutMs")?,
            pool_size: settings.u32("poolSize")? as usize,
        })
    }

    /// `{ url, urlName }`: parses the connection string and builds its TLS configuration
    /// (the CA file it names read), as a store's first call would, without connecting.
    fn check(settings: &Fields) -> Result<()> {
        let (url, url_name) = settings.url_and_name("PostgreSQL")?;
        let t = url::parse(&url, &url_name, Duration::from_secs(5))?;
        tls::connector(t.ssl_mode, t.root_cert.as_deref(), &url_name).map(|_| ())
    }

    /// A digest of the connection string and the schema, so that the password of the URL
    /// is not kept in one more place.
    fn key(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(self.url.as_bytes())
            .chain_update([0])
            .chain_update(self.schema.as_bytes())
            .finalize();
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn open(&self) -> Arc<dyn TokenStore> {
        Arc::new(PostgresStore::new(self.clone()))
    }

    /// A fresh schema of the server `TOKEN_TEST_DATABASE_URL` names (see `TestSchema`).
    #[cfg(test)]
    fn test_store() -> Option<crate::store::backends::TestStore> {
        let schema = super::TestSchema::new()?;
        Some(crate::store::backends::TestStore {
            store: Box::new(schema.store()),
            _keep: Box::new(schema),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::{check_settings, StoreConfig};

    /// A PostgreSQL store's settings as `lib/config.js` passes them (test values, none of
    /// them a default: the defaults are `lib/defaults.js`'s).
    fn given() -> serde_json::Map<String, serde_json::Value> {
        json!({
            "url": "postgres://tokens@db.internal/tokens",
            "urlName": "TOKEN_DATABASE_URL",
            "schema": "tokens",
            "connectTimeoutMs": 1_500,
            "queryTimeoutMs": 2_500,
            "poolSize": 3,
        })
        .as_object()
        .cloned()
        .expect("an object")
    }

    /// The settings reach the typed configuration as they were passed: nothing is
    /// defaulted or replaced on the way.
    #[test]
    fn takes_its_settings_as_passed() {
        assert_eq!(
            StoreConfig::decode("postgres", &given()),
            Ok(StoreConfig::postgres(PostgresSettings {
                url: "postgres://tokens@db.internal/tokens".into(),
                url_name: "TOKEN_DATABASE_URL".into(),
                schema: "tokens".into(),
                connect_timeout: Duration::from_millis(1_500),
                query_timeout: Duration::from_millis(2_500),
                pool_size: 3,
            }))
        );
        assert_eq!(check_settings("postgres", &given()), Ok(()));
    }

    /// A PostgreSQL store without its URL, or without what to call it, is refused: neither
    /// has a default.
    #[test]
    fn needs_its_url_and_its_name() {
        for left_out in ["url", "urlName"] {
            let mut settings = given();
            settings.remove(left_out);
            for err in [
                StoreConfig::decode("postgres", &settings).expect_err("refused"),
                check_settings("postgres", &settings).expect_err("refused"),
            ] {
                assert_eq!(err.code(), "ERR_TOKEN_STORAGE_CONFIG");
                assert!(err.to_string().contains("needs a URL"), "{err}");
            }
        }
    }

    /// A connection string that cannot be read fails the check, named, not shown.
    #[test]
    fn a_bad_url_fails_the_check_without_being_shown() {
        let mut settings = given();
        settings.insert("url".into(), json!("postgres://user:s3cret@db:notaport/x"));
        let err = check_settings("postgres", &settings).expect_err("refused");
        assert_eq!(err.code(), "ERR_TOKEN_STORAGE_CONFIG");
        assert!(err.to_string().contains("TOKEN_DATABASE_URL"), "{err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    /// A schema name that is not a plain identifier is refused before anything opens, as
    /// `lib/config.js` refuses it, whoever passes it.
    #[test]
    fn a_schema_name_is_a_plain_identifier() {
        for (schema, ok) in [
            ("tokens", true),
            ("_t0", true),
            (&"s".repeat(63)[..], true),
            (&"s".repeat(64)[..], false),
            ("", false),
            ("0tokens", false),
            ("tok'ens", false),
            ("tok\"ens", false),
            ("tökens", false),
            ("a b", false),
        ] {
            let mut settings = given();
            settings.insert("schema".into(), json!(schema));
            match StoreConfig::decode("postgres", &settings) {
                Ok(_) => assert!(ok, "{schema:?} taken"),
                Err(err) => {
                    assert!(!ok, "{schema:?} refused: {err}");
                    assert_eq!(err.code(), "ERR_TOKEN_STORAGE_CONFIG");
                }
            }
        }
    }

    #[test]
    fn one_key_per_database_and_schema_never_the_password() {
        let config = |url: &str, schema: &str, pool: u32| {
            let mut s = given();
            s.insert("url".into(), json!(url));
            s.insert("schema".into(), json!(schema));
            s.insert("poolSize".into(), json!(pool));
            StoreConfig::decode("postgres", &s).expect("decodes")
        };
        let a = config("postgres://u:pw@db/t", "tokens", 3);
        assert_eq!(a.key(), config("postgres://u:pw@db/t", "tokens", 9).key());
        assert_ne!(a.key(), config("postgres://u:pw@db/t", "other", 3).key());
        assert_ne!(a.key(), config("postgres://u:pw@db2/t", "tokens", 3).key());
        assert!(a.key().starts_with("postgres:") && !a.key().contains("pw"));
    }
}
