//! Errors of the store layer, each with a stable code that the JS layer puts on `err.code`.
//!
//! The kinds are backend-neutral: each backend maps its own errors into them, in its own
//! folder (`store/<backend>/errors.rs`). `Sqlite` and `Postgres` keep their names (and
//! codes) for the failures of those backends that fit no other kind.
//!
//! Messages never contain a secret (token, code, API key, verifier); at most a path.

use std::fmt;

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A configuration value (storage kind, sync mode, path) is not accepted.
    Config(String),
    /// An argument broke a rule the JS layer should already have checked.
    InvalidArgument(String),
    /// The database file or its folder cannot be created or opened.
    Open { path: String, reason: String },
    /// The file is not a SQLite database, or is damaged.
    NotADatabase { path: String },
    /// Another connection held a lock for longer than the busy timeout.
    Busy { path: String },
    /// The disk (or the file size limit) is full.
    Full { path: String },
    /// The file or folder is read-only.
    ReadOnly { path: String },
    /// The open file was deleted, renamed or replaced; the next call opens the path again.
    Moved { path: String },
    /// Any other SQLite failure.
    Sqlite { path: String, reason: String },
    /// A database server cannot be reached, refused or dropped the connection, or did not
    /// answer in time. The store reconnects by itself at a later call.
    Unavailable { location: String, reason: String },
    /// Any other PostgreSQL failure (`reason` holds its SQLSTATE, never a value).
    Postgres { location: String, reason: String },
    /// Any other Redis failure (`reason` holds the error's first word, never a value).
    Redis { location: String, reason: String },
    /// `TOKEN_ENCRYPTION_KEYS` (the keyring) is malformed: the message names the entry by its
    /// position and id, never its key.
    BadEncryptionKey(String),
    /// A sealed value does not open: its key id is not in the keyring, or it was altered, or
    /// moved to another row or column. The message names the column and key id, never a key
    /// or a value.
    CannotDecrypt(String),
    /// The store's encryption at rest does not match the configuration: keys given for a
    /// store written in clear, none for a sealed one, or a keyring that holds none of the
    /// keys the store was sealed with (or another key under one of their ids). The message
    /// names the key ids and the command that converts the store, never a key.
    EncryptionMismatch(String),
    /// A lock was poisoned by a panic in another thread.
    Poisoned,
    /// Something that cannot happen did (a record that cannot be encoded).
    Internal(&'static str),
}

impl StoreError {
    /// The stable code a caller can switch on (`err.code` in JS).
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Config(_) => "ERR_TOKEN_STORAGE_CONFIG",
            StoreError::InvalidArgument(_) => "ERR_TOKEN_STORAGE_INVALID_ARGUMENT",
            StoreError::Open { .. } => "ERR_TOKEN_STORAGE_OPEN",
            StoreError::NotADatabase { .. } => "ERR_TOKEN_STORAGE_NOT_A_DATABASE",
            StoreError::Busy { .. } => "ERR_TOKEN_STORAGE_BUSY",
            StoreError::Full { .. } => "ERR_TOKEN_STORAGE_FULL",
            StoreError::ReadOnly { .. } => "ERR_TOKEN_STORAGE_READONLY",
            StoreError::Moved { .. } => "ERR_TOKEN_STORAGE_MOVED",
            StoreError::Sqlite { .. } => "ERR_TOKEN_STORAGE_SQLITE",
            StoreError::Unavailable { .. } => "ERR_TOKEN_STORAGE_UNAVAILABLE",
            StoreError::Postgres { .. } => "ERR_TOKEN_STORAGE_POSTGRES",
            StoreError::Redis { .. } => "ERR_TOKEN_STORAGE_REDIS",
            StoreError::BadEncryptionKey(_) => "ERR_TOKEN_STORAGE_BAD_ENCRYPTION_KEY",
            StoreError::CannotDecrypt(_) => "ERR_TOKEN_STORAGE_CANNOT_DECRYPT",
            StoreError::EncryptionMismatch(_) => "ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH",
            StoreError::Poisoned | StoreError::Internal(_) => "ERR_TOKEN_STORAGE_INTERNAL",
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Config(msg)
            | StoreError::InvalidArgument(msg)
            | StoreError::BadEncryptionKey(msg)
            | StoreError::CannotDecrypt(msg)
            | StoreError::EncryptionMismatch(msg) => f.write_str(msg),
            StoreError::Open { path, reason } => {
                write!(f, "cannot open token database {path}: {reason}")
            }
            StoreError::NotADatabase { path } => write!(
                f,
                "{path} is not a SQLite database, or it is damaged; move it away or set TOKEN_DB_PATH to another file"
            ),
            StoreError::Busy { path } => write!(
                f,
                "token database {path} stayed locked by another connection for longer than the busy timeout"
            ),
            StoreError::Full { path } => write!(
                f,
                "cannot write token database {path}: the disk or the file size limit is full"
            ),
            StoreError::ReadOnly { path } => {
                write!(f, "cannot write token database {path}: it is read-only")
            }
            StoreError::Moved { path } => write!(
                f,
                "token database {path} was deleted, moved or replaced while it was open; \
                 this call did nothing, and the next call opens {path} again"
            ),
            StoreError::Sqlite { path, reason } => {
                write!(f, "token database {path} failed: {reason}")
            }
            StoreError::Unavailable { location, reason } => write!(
                f,
                "token database {location} is unavailable: {reason}; \
                 the store reconnects by itself at a later call"
            ),
            StoreError::Postgres { location, reason } | StoreError::Redis { location, reason } => {
                write!(f, "token database {location} failed: {reason}")
            }
            StoreError::Poisoned => f.write_str(
                "the token store was left in an unknown state by a panic in another thread",
            ),
            StoreError::Internal(what) => write!(f, "internal error: {what}"),
        }
    }
}

impl std::error::Error for StoreError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// `lib/errors.js` holds the one list of codes (the README and index.d.ts are checked
    /// against it by the JS suite): every code the store can raise must be on it.
    #[test]
    fn every_code_is_on_the_one_list() {
        let list = include_str!("../lib/errors.js");
        let p = || "p".to_string();
        let all = [
            StoreError::Config(p()),
            StoreError::InvalidArgument(p()),
            StoreError::Open {
                path: p(),
                reason: p(),
            },
            StoreError::NotADatabase { path: p() },
            StoreError::Busy { path: p() },
            StoreError::Full { path: p() },
            StoreError::ReadOnly { path: p() },
            StoreError::Moved { path: p() },
            StoreError::Sqlite {
                path: p(),
                reason: p(),
            },
            StoreError::Unavailable {
                location: p(),
                reason: p(),
            },
            StoreError::Postgres {
                location: p(),
                reason: p(),
            },
            StoreError::Redis {
                location: p(),
                reason: p(),
            },
            StoreError::BadEncryptionKey(p()),
            StoreError::CannotDecrypt(p()),
            StoreError::Poisoned,
            StoreError::Internal("x"),
        ];
        for e in all {
            assert!(
                list.contains(&format!("\n  {}: ", e.code())),
                "{} is not in lib/errors.js",
                e.code()
            );
        }
    }
}
