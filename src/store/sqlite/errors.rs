//! SQLite's errors mapped to the store's backend-neutral kinds (`StoreError`), against
//! the file they came from. rusqlite's own message is kept only for codes whose text is
//! SQLite's fixed wording, never bound values.

use super::connection::Db;
use crate::error::StoreError;

/// Classifies a rusqlite error against the file it came from. rusqlite's own message
/// is kept only for codes whose text is SQLite's fixed wording, never bound values.
pub(super) fn from_sqlite(path: &str, err: &rusqlite::Error) -> StoreError {
    use rusqlite::ffi::ErrorCode;
    let path = path.to_owned();
    match err {
        rusqlite::Error::SqliteFailure(e, Some(message))
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_TRIGGER
                && message == super::schema::CLEAR_ROW_MESSAGE =>
        {
            crate::store::sealed::clear_row_refused()
        }
        rusqlite::Error::SqliteFailure(e, _) => match e.code {
            ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => {
                StoreError::NotADatabase { path }
            }
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Busy { path },
            ErrorCode::DiskFull => StoreError::Full { path },
            ErrorCode::ReadOnly if e.extended_code == rusqlite::ffi::SQLITE_READONLY_DBMOVED => {
                StoreError::Moved { path }
            }
            ErrorCode::ReadOnly => StoreError::ReadOnly { path },
            ErrorCode::CannotOpen | ErrorCode::PermissionDenied => StoreError::Open {
                path,
                reason: "SQLite cannot open the file".into(),
            },
            ErrorCode::SystemIoFailure
                if matches!(
                    e.extended_code,
                    rusqlite::ffi::SQLITE_IOERR_WRITE | rusqlite::ffi::SQLITE_IOERR_SHMSIZE
                ) =>
            {
                // A failed write or shared-memory growth: the disk or the file size
                // limit is full (the other causes, such as a failing disk, are rare).
                StoreError::Full { path }
            }
            other => StoreError::Sqlite {
                path,
                reason: format!("{other:?} (extended code {})", e.extended_code),
            },
        },
        other => StoreError::Sqlite {
            path,
            reason: sqlite_reason(other),
        },
    }
}

/// A description of a non-SQLite rusqlite error that cannot carry a bound value.
fn sqlite_reason(err: &rusqlite::Error) -> String {
    match err {
        rusqlite::Error::FromSqlConversionFailure(col, ty, _) => {
            format!("column {col} holds a value of the wrong type ({ty})")
        }
        rusqlite::Error::InvalidColumnType(col, name, ty) => {
            format!("column {col} ({name}) holds a value of type {ty}")
        }
        rusqlite::Error::IntegralValueOutOfRange(col, _) => {
            format!("column {col} holds an integer out of range")
        }
        rusqlite::Error::Utf8Error(..) => "a stored text value is not valid UTF-8".into(),
        _ => "unexpected SQLite error".into(),
    }
}

/// A failure inside a transaction: SQLite's, or the store's own (a moved file, a schema
/// this package did not write).
pub(super) enum TxError {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for TxError {
    fn from(e: rusqlite::Error) -> Self {
        TxError::Sql(e)
    }
}

pub(super) fn tx_error(shown: &str, e: TxError) -> StoreError {
    match e {
        TxError::Sql(e) => from_sqlite(shown, &e),
        TxError::Store(e) => e,
    }
}

impl Db {
    pub(super) fn err(&self, e: rusqlite::Error) -> StoreError {
        from_sqlite(&self.path, &e)
    }

    pub(super) fn tx_err(&self, e: TxError) -> StoreError {
        tx_error(&self.path, e)
    }
}
