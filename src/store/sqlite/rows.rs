//! Reading rows back, every column the store reads decoded here: tolerant of what the old
//! module (or another tool) may have written (numbers in text columns, reals and numeric
//! text in time columns, NULLs, bad JSON). Each `read_*` decodes the columns of one
//! statement, in its order (the statement is named on it).

use rusqlite::types::ValueRef;
use rusqlite::Row;

use crate::model::{AccessToken, AuthorizationCode, ClientRecord, RefreshToken, Stats};

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

/// A code of `CODE_SELECT` or `CODE_SELECT_ONE`.
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
        resource: text(row, 9)?,
        extra: text(row, 10)?,
    })
}

/// A token of `SELECT_ACCESS`: api_key, user_id, client_id, scopes, refresh_token,
/// expires_at, created_at, links, resource, extra.
pub(super) fn read_access(row: &Row) -> rusqlite::Result<AccessToken> {
    Ok(AccessToken {
        api_key: required_text(row, 0)?,
        user_id: user(row, 1)?,
        client_id: required_text(row, 2)?,
        scopes: scopes(row, 3)?,
        refresh_token: text(row, 4)?.filter(|s| !s.is_empty()),
        expires_at: expiry(row, 5)?,
        created_at: time(row, 6)?.unwrap_or(0),
        links: text(row, 7)?,
        resource: text(row, 8)?,
        extra: text(row, 9)?,
    })
}

/// A refresh token with its access token (getRefreshToken): user_id, client_id,
/// scopes, access_token, created_at, then whether the access token exists, its
/// `expires_at` and its links. Returns the token and, if its access token exists, that one's expiry.
pub(super) fn read_refresh(row: &Row) -> rusqlite::Result<(RefreshToken, Option<Option<i64>>)> {
    let token = RefreshToken {
        user_id: user(row, 0)?,
        client_id: required_text(row, 1)?,
        scopes: scopes(row, 2)?,
        access_token: required_text(row, 3)?,
        created_at: time(row, 4)?.unwrap_or(0),
        links: text(row, 7)?,
    };
    let access = if row.get::<_, bool>(5)? {
        Some(expiry(row, 6)?)
    } else {
        None
    };
    Ok((token, access))
}

/// The token a rotation retires (rotateRefreshToken): its access token's token, api_key,
/// user_id, client_id, scopes, expires_at, then the family of the refresh token, then its
/// grant's resource and extra.
pub(super) fn read_rotated(row: &Row) -> rusqlite::Result<(String, AccessToken, String)> {
    Ok((
        required_text(row, 0)?,
        AccessToken {
            api_key: required_text(row, 1)?,
            user_id: user(row, 2)?,
            client_id: required_text(row, 3)?,
            scopes: scopes(row, 4)?,
            refresh_token: None,
            expires_at: expiry(row, 5)?,
            created_at: 0,
            links: None,
            resource: text(row, 7)?,
            extra: text(row, 8)?,
        },
        required_text(row, 6)?,
    ))
}

/// A retired refresh token: its family and when it was retired (`nts_retired_refresh_tokens`).
pub(super) fn read_retired(row: &Row) -> rusqlite::Result<(String, i64)> {
    Ok((row.get(0)?, row.get(1)?))
}

/// A registered client: client_id, secret_digest, metadata, created_at (`nts_clients`).
pub(super) fn read_client(row: &Row) -> rusqlite::Result<ClientRecord> {
    Ok(ClientRecord {
        client_id: row.get(0)?,
        secret_digest: row.get(1)?,
        metadata: row.get(2)?,
        created_at: time(row, 3)?.unwrap_or(0),
    })
}

/// A client's id (clientIds).
pub(super) fn read_client_id(row: &Row) -> rusqlite::Result<String> {
    row.get(0)
}

/// A pending authorization taken: its data and `expires_at` (anything but a number reads
/// as long past).
pub(super) fn read_pending(row: &Row) -> rusqlite::Result<(String, i64)> {
    Ok((required_text(row, 0)?, expiry(row, 1)?.unwrap_or(i64::MIN)))
}

/// The counts of `STATS`: tokens and users (never below 0), or None when the current
/// bucket is to be refined first.
pub(super) fn read_stats(row: &Row) -> rusqlite::Result<Option<Stats>> {
    let (Some(tokens), Some(users)) = (row.get::<_, Option<i64>>(0)?, row.get::<_, Option<i64>>(1)?)
    else {
        return Ok(None);
    };
    Ok(Some(Stats {
        total_tokens: tokens.max(0) as u64,
        unique_users: users.max(0) as u64,
    }))
}

/// The cleaner's lease (`nts_cleaner`): its holder and until when.
pub(super) fn read_lease(row: &Row) -> rusqlite::Result<(i64, i64)> {
    Ok((row.get(0)?, row.get(1)?))
}
