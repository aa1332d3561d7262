//! Module-level functions that need no store.

use napi_derive::napi;

use super::errors::{js_err, Result};
use crate::store;

/// The version of the bundled SQLite library.
#[napi]
pub fn sqlite_version() -> String {
    rusqlite::version().to_owned()
}

/// Checks a PostgreSQL connection string as the store will read it (and the CA file it
/// names), without connecting; `url_name` is what messages call it.
#[napi]
pub fn check_postgres_url(url: String, url_name: String) -> Result<()> {
    store::check_postgres_url(&url, &url_name).map_err(js_err)
}
