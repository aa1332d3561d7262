//! The records as the scripts write them, and read back: an access token's hash (see
//! `scripts`), a code's JSON, a client's hash.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::resp::Reply;
use crate::error::StoreError;
use crate::model::{AccessToken, AuthorizationCode, ClientRecord, NewAccessToken};

fn damaged(what: &'static str) -> StoreError {
    StoreError::Internal(what)
}

/// A hash (`HGETALL`'s field, value, field, value, …) by field.
pub(super) fn hash(reply: Reply) -> HashMap<String, String> {
    let mut items = reply.items().into_iter();
    let mut out = HashMap::new();
    while let (Some(k), Some(v)) = (items.next(), items.next()) {
        if let (Some(k), Some(v)) = (k.text(), v.text()) {
            out.insert(k, v);
        }
    }
    out
}

fn number(h: &HashMap<String, String>, field: &str) -> Result<Option<i64>, StoreError> {
    h.get(field)
        .map(|v| v.parse().map_err(|_| damaged("a Redis record holds a time that is not a number")))
        .transpose()
}

pub(super) fn scopes_json(scopes: &[String]) -> String {
    serde_json::to_string(scopes).unwrap_or_else(|_| "[]".into())
}

fn scopes(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|_| damaged("a Redis record holds scopes that are not JSON"))
}

/// An access token's hash; `None` for an empty one (no such key).
pub(super) fn access(h: &HashMap<String, String>) -> Result<Option<AccessToken>, StoreError> {
    if h.is_empty() {
        return Ok(None);
    }
    let field = |f: &str| h.get(f).cloned();
    let need = |f: &str| field(f).ok_or(damaged("a Redis token record lacks a field"));
    Ok(Some(AccessToken {
        api_key: need("k")?,
        user_id: field("u"),
        client_id: need("c")?,
        scopes: scopes(&need("s")?)?,
        refresh_token: field("r"),
        expires_at: number(h, "e")?,
        created_at: number(h, "t")?.ok_or(damaged("a Redis token record lacks a field"))?,
        resource: field("p"),
        extra: field("x"),
        links: field("l"),
    }))
}

/// One field of a token packed for `STORE_TOKENS`: `-:` for none, else its length in
/// bytes, `:` and the bytes.
fn pack(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        None => out.extend_from_slice(b"-:"),
        Some(v) => {
            out.extend_from_slice(v.len().to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(v.as_bytes());
        }
    }
}

/// A token as `STORE_TOKENS` takes it: one argument, its fields in the script's order.
pub(super) fn packed(t: &NewAccessToken, created_at: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(t.token.len() + t.api_key.len() + 64);
    let refresh = t.refresh_token.as_deref().filter(|r| !r.is_empty());
    let expires = t.expires_at.map(|e| e.to_string());
    let scopes = scopes_json(&t.scopes);
    pack(&mut out, Some(&t.token));
    pack(&mut out, refresh);
    pack(&mut out, Some(&t.api_key));
    pack(&mut out, t.user_id.as_deref());
    pack(&mut out, Some(&t.client_id));
    pack(&mut out, Some(&scopes));
    pack(&mut out, expires.as_deref());
    pack(&mut out, t.resource.as_deref());
    pack(&mut out, t.extra.as_deref());
    pack(&mut out, t.links.as_deref());
    pack(&mut out, Some(&created_at.to_string()));
    out
}

/// A code's record as stored (JSON; its user is also a field of its own, for
/// `deleteUserTokens`).
pub(super) fn code_json(d: &AuthorizationCode) -> String {
    json!({
        "u": d.user_id, "k": d.api_key, "c": d.client_id, "ru": d.redirect_uri,
        "cc": d.code_challenge, "cm": d.code_challenge_method, "s": d.scopes,
        "e": d.expires_at, "t": d.created_at, "p": d.resource, "x": d.extra,
    })
    .to_string()
}

pub(super) fn code(text: &str) -> Result<AuthorizationCode, StoreError> {
    let bad = || damaged("a Redis code record is not the JSON this store writes");
    let v: Value = serde_json::from_str(text).map_err(|_| bad())?;
    let opt = |f: &str| v.get(f).and_then(Value::as_str).map(str::to_owned);
    let need = |f: &str| opt(f).ok_or_else(bad);
    let int = |f: &str| v.get(f).and_then(Value::as_i64).ok_or_else(bad);
    let scopes = v
        .get("s")
        .and_then(Value::as_array)
        .ok_or_else(bad)?
        .iter()
        .map(|s| s.as_str().map(str::to_owned).ok_or_else(bad))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AuthorizationCode {
        user_id: opt("u"),
        api_key: need("k")?,
        client_id: need("c")?,
        redirect_uri: need("ru")?,
        code_challenge: opt("cc"),
        code_challenge_method: opt("cm"),
        scopes,
        expires_at: int("e")?,
        created_at: int("t")?,
        resource: opt("p"),
        extra: opt("x"),
    })
}

/// A client's hash; `None` for an empty one.
pub(super) fn client(
    client_id: &str,
    h: &HashMap<String, String>,
) -> Result<Option<ClientRecord>, StoreError> {
    if h.is_empty() {
        return Ok(None);
    }
    Ok(Some(ClientRecord {
        client_id: client_id.to_owned(),
        secret_digest: h.get("d").cloned(),
        metadata: h
            .get("m")
            .cloned()
            .ok_or(damaged("a Redis client record lacks its metadata"))?,
        created_at: number(h, "t")?.unwrap_or(0),
    }))
}

/// A sorted set's score as Redis writes it (`1800000000000`, `inf`): a time in ms, or
/// `None` for `inf` or an empty answer.
pub(super) fn score(text: &str) -> Option<i64> {
    let f: f64 = text.parse().ok()?;
    f.is_finite().then_some(f as i64)
}

/// Item `i` of an array reply of counts, as a count (0 if missing).
pub(super) fn count(items: &[Reply], i: usize) -> u64 {
    items
        .get(i)
        .and_then(Reply::int)
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0)
}
