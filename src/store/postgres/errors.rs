//! PostgreSQL's errors mapped to the store's backend-neutral kinds (`StoreError`). Only
//! SQLSTATEs and the client's own descriptions of I/O failures are shown: a server message
//! may quote a value.

use super::url::SslMode;
use super::PostgresStore;
use crate::error::StoreError;

impl PostgresStore {
    /// The store error for a PostgreSQL error. Only SQLSTATEs and the client's own
    /// descriptions of I/O failures are shown: a server message may quote a value.
    pub(super) fn error(&self, e: &tokio_postgres::Error) -> StoreError {
        let location = self.shown();
        let Some(db) = e.as_db_error() else {
            let reason = io_reason(e);
            // An sslmode the server cannot meet is the URL's to change: retrying never helps.
            if reason.contains("server does not support TLS") {
                let mode = match self.target().map(|t| t.ssl_mode) {
                    Ok(SslMode::VerifyCa) => "verify-ca",
                    Ok(SslMode::VerifyFull) => "verify-full",
                    _ => "require",
                };
                return StoreError::Config(format!(
                    "{}: sslmode={mode} but the server at {location} does not offer TLS; \
                     turn TLS on in the server (ssl = on), or, on a network you trust, use \
                     sslmode=prefer or sslmode=disable",
                    self.settings.url_name
                ));
            }
            // A certificate the sslmode refuses does not go away by retrying.
            if reason.contains("invalid peer certificate") {
                return StoreError::Open {
                    path: location,
                    reason,
                };
            }
            return StoreError::Unavailable { location, reason };
        };
        let code = db.code().code();
        let reason = |what: &str| format!("{what} (SQLSTATE {code})");
        match code {
            super::snapshot::CLEAR_ROW_REFUSED => crate::store::sealed::clear_row_refused(),
            "40001" | "40P01" | "55P03" => StoreError::Busy { path: location },
            "53100" => StoreError::Full { path: location },
            "25006" => StoreError::ReadOnly { path: location },
            // The store's own statement_timeout is told apart where it is set (`transaction`):
            // this one is the server's, the database's or the role's, or an administrator's
            // cancel. Rolled back, and not the query timeout the caller chose.
            "57014" => StoreError::Postgres {
                location,
                reason: reason(
                    "the server cancelled a statement: a statement_timeout set on the server, \
                     the database or the role (ALTER ROLE … SET statement_timeout), or in the \
                     connection string's options, or pg_cancel_backend; raise or reset it \
                     (this store's own limit is queryTimeout)",
                ),
            },
            "3D000" => StoreError::Open {
                path: location,
                reason: reason("the database does not exist"),
            },
            "42P07" => StoreError::Open {
                path: location,
                reason: format!(
                    "schema {} already has tables named as the token store's, which it did not \
                     create; choose another schema (the schema option, TOKEN_DB_SCHEMA)",
                    self.settings.schema
                ),
            },
            c if c.starts_with("28") => StoreError::Open {
                path: location,
                reason: reason("the server refused the login"),
            },
            c if c.starts_with("08") || c.starts_with("57P") || c == "53300" => {
                StoreError::Unavailable {
                    location,
                    reason: reason("the server refused or ended the connection"),
                }
            }
            "42501" => StoreError::Postgres {
                location,
                reason: reason("permission denied"),
            },
            _ => StoreError::Postgres {
                location,
                reason: reason("PostgreSQL reported an error"),
            },
        }
    }

    pub(super) fn unavailable(&self, reason: String) -> StoreError {
        StoreError::Unavailable {
            location: self.shown(),
            reason,
        }
    }
}

/// PostgreSQL's text cannot hold the NUL character: a value with one cannot be stored,
/// and no stored row has one.
pub(super) fn has_nul(values: &[&str]) -> bool {
    values.iter().any(|v| v.contains('\0'))
}

pub(super) fn nul_refused() -> StoreError {
    StoreError::InvalidArgument(
        "a PostgreSQL store cannot hold the NUL character (\\0) in a token, code, key or id".into(),
    )
}

/// What the client says of an I/O failure (refused, reset, closed, TLS): never a value.
pub(super) fn io_reason(e: &tokio_postgres::Error) -> String {
    if e.is_closed() {
        return "the connection was closed".into();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}
