//! The Redis store's settings: the URL (and what messages call it), the key prefix, the
//! timeouts and the pool's size. The URL is checked at configuration (`check`), so a bad
//! one fails when the server starts, never echoed.

use std::sync::Arc;
use std::time::Duration;

use super::{tls, url, RedisStore};
use crate::error::Result;
use crate::store::backends::{Backend, Fields};
use crate::store::TokenStore;

/// The settings of a Redis store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    pub url: String,
    /// What to call the URL in messages (`TOKEN_REDIS_URL`, `options.url`).
    pub url_name: String,
    /// Put before every key of the store (`nts:`), so that one Redis holds several stores.
    pub prefix: String,
    pub connect_timeout: Duration,
    pub query_timeout: Duration,
    /// Connections kept open between calls.
    pub pool_size: usize,
}


impl Backend for RedisSettings {
    /// `{ url, urlName, prefix, connectTimeoutMs, queryTimeoutMs, poolSize }`.
    fn decode(settings: &Fields) -> Result<Self> {
        let (url, url_name) = settings.url_and_name("Redis")?;
        Ok(RedisSettings {
            url,
            url_name,
            prefix: settings.string("prefix")?,
            connect_timeout: settings.millis("connectTimeoutMs")?,
            query_timeout: settings.millis("queryTimeoutMs")?,
            pool_size: settings.u32("poolSize")? as usize,
        })
    }

    /// `{ url, urlName }`: parses the URL and builds its TLS configuration (the CA file it
    /// names read), as a store's first call would, without connecting.
    fn check(settings: &Fields) -> Result<()> {
        let (url, url_name) = settings.url_and_name("Redis")?;
        let t = url::parse(&url, &url_name)?;
        if t.tls {
            tls::config(t.ca_file.as_deref(), &url_name)?;
        }
        Ok(())
    }

    /// A digest of the URL and the prefix, so that the password of the URL is not kept in
    /// one more place.
    fn key(&self) -> String {
        crate::store::backends::digest_key(&[&self.url, &self.prefix])
    }

    fn open(&self) -> Arc<dyn TokenStore> {
        Arc::new(RedisStore::new(self.clone()))
    }

    /// A fresh prefix on the server `TOKEN_TEST_REDIS_URL` names (see `TestPrefix`).
    #[cfg(test)]
    fn test_store() -> Option<crate::store::backends::TestStore> {
        let prefix = super::tests::TestPrefix::new()?;
        Some(crate::store::backends::TestStore {
            store: Box::new(prefix.store()),
            _keep: Box::new(prefix),
        })
    }
}
