//! Rows decoded into the store's records (every column the store reads is decoded here;
//! each `read_*` takes the columns of one statement of `sql.rs`, in its order), and a batch
//! of `storeAccessTokens` resolved to the rows it leaves.

use tokio_postgres::Row;

use crate::model::{
    AccessToken, AuthorizationCode, ClientRecord, NewAccessToken, RefreshToken, RotateRequest,
    Rotated, Rotation, Stats,
};

/// What decoding a row can fail with: a column of another type than the statement's.
type Decoded<T> = std::result::Result<T, tokio_postgres::Error>;

/// The rows a batch of `storeAccessTokens` leaves, by column.
#[derive(Default)]
pub(super) struct Columns {
    /// `None`: a row that only takes its refresh string from the token that has it (the
    /// string of a record that a later record of the same token replaced).
    pub(super) token: Vec<Option<String>>,
    pub(super) api_key: Vec<String>,
    pub(super) user_id: Vec<Option<String>>,
    pub(super) client_id: Vec<String>,
    pub(super) scopes: Vec<String>,
    pub(super) refresh_token: Vec<Option<String>>,
    pub(super) expires_at: Vec<Option<i64>>,
    /// Each token's `NewAccessToken::links` (sealed tokens only).
    pub(super) links: Vec<Option<String>>,
    /// Each token's `NewAccessToken::resource` and `extra`.
    pub(super) resource: Vec<Option<String>>,
    pub(super) extra: Vec<Option<String>>,
}

impl Columns {
    /// What storing `tokens` one after the other leaves: the last token of each string,
    /// each refresh string with the last token given it, and the refresh strings that end
    /// with no token (taken from whoever had them, and dropped).
    pub(super) fn resolve(tokens: &[NewAccessToken]) -> Columns {
        use std::collections::HashMap;
        let mut last: HashMap<&str, usize> = HashMap::new();
        let mut owner: HashMap<&str, usize> = HashMap::new();
        let mut refresh: Vec<Option<&str>> = Vec::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            if let Some(prev) = last.insert(&t.token, i) {
                if let Some(r) = refresh[prev] {
                    if owner.get(r) == Some(&prev) {
                        owner.remove(r);
                    }
                }
            }
            let r = t.refresh_token.as_deref().filter(|r| !r.is_empty());
            if let Some(r) = r {
                if let Some(prev) = owner.insert(r, i) {
                    refresh[prev] = None;
                }
            }
            refresh.push(r);
        }
        let mut out = Columns::default();
        for (i, t) in tokens.iter().enumerate() {
            if last.get(t.token.as_str()) != Some(&i) {
                continue;
            }
            out.token.push(Some(t.token.clone()));
            out.api_key.push(t.api_key.clone());
            out.user_id.push(t.user_id.clone());
            out.client_id.push(t.client_id.clone());
            out.scopes.push(scopes_json(&t.scopes));
            out.refresh_token.push(refresh[i].map(str::to_owned));
            out.expires_at.push(t.expires_at);
            out.links.push(t.links.clone());
            out.resource.push(t.resource.clone());
            out.extra.push(t.extra.clone());
        }
        let mut dropped: Vec<&str> = tokens
            .iter()
            .filter_map(|t| t.refresh_token.as_deref())
            .filter(|r| !r.is_empty() && !owner.contains_key(r))
            .collect();
        dropped.sort_unstable();
        dropped.dedup();
        for r in dropped {
            out.token.push(None);
            out.api_key.push(String::new());
            out.user_id.push(None);
            out.client_id.push(String::new());
            out.scopes.push(String::new());
            out.refresh_token.push(Some(r.to_owned()));
            out.expires_at.push(None);
            out.links.push(None);
            out.resource.push(None);
            out.extra.push(None);
        }
        out
    }
}

pub(super) fn scopes_json(scopes: &[String]) -> String {
    serde_json::to_string(scopes).unwrap_or_else(|_| "[]".into())
}

pub(super) fn scopes(row: &Row, i: usize) -> Decoded<Vec<String>> {
    let text: Option<String> = row.try_get(i)?;
    Ok(text
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

pub(super) fn read_code(row: &Row) -> Decoded<AuthorizationCode> {
    Ok(AuthorizationCode {
        user_id: row.try_get(0)?,
        api_key: row.try_get(1)?,
        client_id: row.try_get(2)?,
        redirect_uri: row.try_get(3)?,
        code_challenge: row.try_get(4)?,
        code_challenge_method: row.try_get(5)?,
        scopes: scopes(row, 6)?,
        expires_at: row.try_get(7)?,
        created_at: row.try_get(8)?,
        resource: row.try_get(9)?,
        extra: row.try_get(10)?,
    })
}

/// A user id: the empty string stored for "no user" reads as `None`.
fn user(row: &Row, i: usize) -> Decoded<Option<String>> {
    Ok(row
        .try_get::<_, Option<String>>(i)?
        .filter(|u| !u.is_empty()))
}

/// A token of `select_access`: api_key, user_id, client_id, scopes, refresh_token,
/// expires_at, created_at, resource, extra.
pub(super) fn read_access(row: &Row) -> Decoded<AccessToken> {
    Ok(AccessToken {
        api_key: row.try_get(0)?,
        user_id: user(row, 1)?,
        client_id: row.try_get(2)?,
        scopes: scopes(row, 3)?,
        refresh_token: row
            .try_get::<_, Option<String>>(4)?
            .filter(|s| !s.is_empty()),
        expires_at: row.try_get(5)?,
        created_at: row.try_get(6)?,
        resource: row.try_get(7)?,
        extra: row.try_get(8)?,
        links: None,
    })
}

/// A token of `select_access_linked`: `read_access`'s columns, then its links.
pub(super) fn read_access_linked(row: &Row) -> Decoded<AccessToken> {
    let mut t = read_access(row)?;
    t.links = row.try_get(9)?;
    Ok(t)
}

/// A refresh token of `select_refresh`: user_id, client_id, scopes, access_token,
/// created_at, then whether its access token exists and that one's `expires_at`. Returns
/// the token and, if its access token exists, that one's expiry.
pub(super) fn read_refresh(row: &Row) -> Decoded<(RefreshToken, Option<Option<i64>>)> {
    let token = RefreshToken {
        user_id: user(row, 0)?,
        client_id: row.try_get(1)?,
        scopes: scopes(row, 2)?,
        access_token: row.try_get(3)?,
        created_at: row.try_get(4)?,
        links: None,
    };
    let access = if row.try_get::<_, bool>(5)? {
        Some(row.try_get(6)?)
    } else {
        None
    };
    Ok((token, access))
}

/// A refresh token of `select_refresh_linked`: `read_refresh`'s, its access token's links
/// in the record.
pub(super) fn read_refresh_linked(row: &Row) -> Decoded<(RefreshToken, Option<Option<i64>>)> {
    let (mut token, access) = read_refresh(row)?;
    token.links = row.try_get(7)?;
    Ok((token, access))
}

/// The answer of `rotate` (`nts_rotate`): its outcome (1 rotated, 2 reused within the
/// grace period, 3 reused after it, else unknown), then the rotated grant's user_id,
/// client_id, scopes and api_key, and how many tokens a replay revoked.
pub(super) fn read_rotation(row: &Row, req: &RotateRequest) -> Decoded<Rotation> {
    Ok(match row.try_get::<_, i16>(0)? {
        1 => Rotation::Rotated(Rotated {
            user_id: user(row, 1)?,
            client_id: row.try_get(2)?,
            scopes: scopes(row, 3)?,
            api_key: row.try_get(4)?,
            access_token: req.new_access_token.clone(),
            refresh_token: req.new_refresh_token.clone(),
        }),
        2 => Rotation::Reused {
            within_grace: true,
            revoked: 0,
        },
        3 => Rotation::Reused {
            within_grace: false,
            revoked: usize::try_from(row.try_get::<_, i64>(5)?).unwrap_or(0),
        },
        _ => Rotation::Unknown,
    })
}

/// A registered client of `get_client`: client_id, secret_digest, metadata, created_at.
pub(super) fn read_client(row: &Row) -> Decoded<ClientRecord> {
    Ok(ClientRecord {
        client_id: row.try_get(0)?,
        secret_digest: row.try_get(1)?,
        metadata: row.try_get(2)?,
        created_at: row.try_get(3)?,
    })
}

/// A client's id (`client_ids`).
pub(super) fn read_client_id(row: &Row) -> Decoded<String> {
    row.try_get(0)
}

/// A pending authorization taken (`take_pending`): its data and `expires_at`.
pub(super) fn read_pending(row: &Row) -> Decoded<(String, i64)> {
    Ok((row.try_get(0)?, row.try_get(1)?))
}

/// The counts of `stats`: tokens and users (never below 0).
pub(super) fn read_stats(row: &Row) -> Decoded<Stats> {
    Ok(Stats {
        total_tokens: row.try_get::<_, i64>(0)?.max(0) as u64,
        unique_users: row.try_get::<_, i64>(1)?.max(0) as u64,
    })
}

/// How many rows `cleanup` removed.
pub(super) fn read_removed(row: &Row) -> Decoded<i64> {
    row.try_get(0)
}

/// Whether `nts_store_access_tokens` took its short path: only new rows written. Anything
/// else (an answer it cannot read) counts as no: the cache then waits for a ping.
pub(super) fn read_only_new(row: &Row) -> bool {
    row.try_get(0).unwrap_or(false)
}
