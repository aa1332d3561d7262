//! Rows decoded into the store's records, and a batch of `storeAccessTokens` resolved to
//! the rows it leaves.

use tokio_postgres::Row;

use crate::model::{AuthorizationCode, NewAccessToken};

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
        }
        out
    }
}

pub(super) fn scopes_json(scopes: &[String]) -> String {
    serde_json::to_string(scopes).unwrap_or_else(|_| "[]".into())
}

pub(super) fn scopes(
    row: &Row,
    i: usize,
) -> std::result::Result<Vec<String>, tokio_postgres::Error> {
    let text: Option<String> = row.try_get(i)?;
    Ok(text
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

pub(super) fn read_code(
    row: &Row,
) -> std::result::Result<AuthorizationCode, tokio_postgres::Error> {
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
    })
}
