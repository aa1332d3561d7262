//! Reading rows back: tolerant of what the old module (or another tool) may have written
//! (numbers in text columns, reals and numeric text in time columns, NULLs, bad JSON).

use rusqlite::types::ValueRef;
use rusqlite::Row;

use crate::model::AuthorizationCode;

/// The stored text for "no user id" in the NOT NULL `user_id` columns.
pub(super) const NO_USER: &str = "";
/// The stored text for "no PKCE challenge" (and method): the old module declared both
/// columns NOT NULL.
pub(super) const NO_CHALLENGE: &str = "";

/// A text column, tolerating numbers (a legacy file may hold them) and NULL.
pub(super) fn text(row: &Row, i: usize) -> rusqlite::Result<Option<String>> {
    Ok(match row.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
    })
}

/// A time column (epoch milliseconds), tolerating reals and numeric text.
pub(super) fn time(row: &Row, i: usize) -> rusqlite::Result<Option<i64>> {
    Ok(match row.get_ref(i)? {
        ValueRef::Integer(n) => Some(n),
        ValueRef::Real(f) if f.is_finite() => Some(f as i64),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.trim().parse().ok()),
        _ => None,
    })
}

/// An `expires_at` column: `None` for NULL (a token that never expires), the time for a
/// number. Anything else another program may have written (text such as '2020-01-01', a
/// blob) reads as long past: such a row fails closed, and cleanup removes it (its
/// statements match it with `expires_at >= ''`, true for text and blobs only).
pub(super) fn expiry(row: &Row, i: usize) -> rusqlite::Result<Option<i64>> {
    Ok(match row.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n),
        // Saturating: +inf reads as never, as SQL compares it; NaN is never stored.
        ValueRef::Real(f) => Some(f as i64),
        ValueRef::Text(_) | ValueRef::Blob(_) => Some(i64::MIN),
    })
}

pub(super) fn required_text(row: &Row, i: usize) -> rusqlite::Result<String> {
    Ok(text(row, i)?.unwrap_or_default())
}

pub(super) fn user(row: &Row, i: usize) -> rusqlite::Result<Option<String>> {
    Ok(text(row, i)?.filter(|u| u != NO_USER))
}

/// `scopes` is JSON text; anything else reads as no scopes (never more rights).
pub(super) fn scopes(row: &Row, i: usize) -> rusqlite::Result<Vec<String>> {
    Ok(text(row, i)?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

pub(super) fn scopes_json(scopes: &[String]) -> String {
    serde_json::to_string(scopes).unwrap_or_else(|_| "[]".into())
}

pub(super) fn read_code(row: &Row) -> rusqlite::Result<AuthorizationCode> {
    Ok(AuthorizationCode {
        user_id: user(row, 0)?,
        api_key: required_text(row, 1)?,
        client_id: required_text(row, 2)?,
        redirect_uri: required_text(row, 3)?,
        code_challenge: text(row, 4)?.filter(|c| c != NO_CHALLENGE),
        code_challenge_method: text(row, 5)?.filter(|m| m != NO_CHALLENGE),
        scopes: scopes(row, 6)?,
        expires_at: expiry(row, 7)?.unwrap_or(i64::MIN),
        created_at: time(row, 8)?.unwrap_or(0),
    })
}
