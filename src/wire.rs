//! Records as the text `lib/operations.js` turns into the contract's objects: token and code
//! records in the fields format (see `fields`), the others (a rotation, a client, a list
//! of ids) as JSON arrays. Positional, so the JS side builds each object with one literal
//! (one hidden class).

use crate::error::StoreError;
use crate::model::{AccessToken, AuthorizationCode, ClientRecord, RefreshToken, Rotation};

/// JSON of `value`, into a buffer sized from `text_len` (the record's string bytes) so
/// that it is written without reallocating in the common case.
fn encode<T: serde::Serialize>(value: &T, text_len: usize) -> Result<String, StoreError> {
    let mut out = Vec::with_capacity(text_len + text_len / 8 + 96);
    serde_json::to_writer(&mut out, value).map_err(|_| encoding_failed())?;
    // serde_json writes valid UTF-8 only.
    String::from_utf8(out).map_err(|_| encoding_failed())
}

fn encoding_failed() -> StoreError {
    StoreError::Internal("a stored record could not be encoded")
}

/// One field of a record in the fields format.
enum Field<'a> {
    Str(Option<&'a str>),
    Int(Option<i64>),
    Strs(&'a [String]),
}

/// A record in the fields format (read by `lib/wire.js`): a header of integers, each one
/// followed by `,` (empty for null), then `;`, then the record's strings end to end. A
/// string is its length in the header (in UTF-16 code units, as JS counts) and its text in
/// the body; a list of strings is its count, then each string. JS reads the header with a
/// loop over digits and takes each string with one `slice`, where `JSON.parse` scans every
/// character of every string (measured: ~0.15 µs against ~0.6 µs for an access token with
/// JWT-sized strings, benchmark/profile-call.js).
fn fields(fields: &[Field]) -> String {
    let text_len: usize = fields
        .iter()
        .map(|f| match f {
            Field::Str(s) => s.map_or(0, str::len),
            Field::Int(_) => 0,
            Field::Strs(v) => v.iter().map(String::len).sum(),
        })
        .sum();
    let mut out = String::with_capacity(text_len + 16 * fields.len() + 32);
    let int = |out: &mut String, n: Option<i64>| {
        if let Some(n) = n {
            let mut digits = [0u8; 20];
            let mut at = digits.len();
            let mut v = n.unsigned_abs();
            loop {
                at -= 1;
                digits[at] = b'0' + (v % 10) as u8;
                v /= 10;
                if v == 0 {
                    break;
                }
            }
            if n < 0 {
                out.push('-');
            }
            // ASCII digits only.
            out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
        }
        out.push(',');
    };
    let units = |s: &str| -> i64 {
        let n = if s.is_ascii() {
            s.len()
        } else {
            s.encode_utf16().count()
        };
        i64::try_from(n).unwrap_or(i64::MAX)
    };
    for f in fields {
        match f {
            Field::Str(s) => int(&mut out, s.map(units)),
            Field::Int(n) => int(&mut out, *n),
            Field::Strs(v) => {
                int(&mut out, i64::try_from(v.len()).ok());
                for s in v.iter() {
                    int(&mut out, Some(units(s)));
                }
            }
        }
    }
    out.push(';');
    for f in fields {
        match f {
            Field::Str(s) => out.push_str(s.unwrap_or_default()),
            Field::Int(_) => {}
            Field::Strs(v) => v.iter().for_each(|s| out.push_str(s)),
        }
    }
    out
}

/// `apiKey, userId, clientId, scopes, refreshToken, expiresAt, createdAt, resource, extra`
/// (fields format).
pub fn access_token(t: &AccessToken) -> String {
    access_token_of(AccessTokenRef::of(t))
}

/// An access token's fields, borrowed from where a store keeps them.
#[derive(Clone, Copy)]
pub struct AccessTokenRef<'a> {
    pub api_key: &'a str,
    pub user_id: Option<&'a str>,
    pub client_id: &'a str,
    pub scopes: &'a [String],
    pub refresh_token: Option<&'a str>,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub resource: Option<&'a str>,
    pub extra: Option<&'a str>,
    /// `AccessToken::links` (not written: the sealed layer opens it).
    pub links: Option<&'a str>,
}

impl<'a> AccessTokenRef<'a> {
    pub fn of(t: &'a AccessToken) -> AccessTokenRef<'a> {
        AccessTokenRef {
            api_key: &t.api_key,
            user_id: t.user_id.as_deref(),
            client_id: &t.client_id,
            scopes: &t.scopes,
            refresh_token: t.refresh_token.as_deref(),
            expires_at: t.expires_at,
            created_at: t.created_at,
            resource: t.resource.as_deref(),
            extra: t.extra.as_deref(),
            links: t.links.as_deref(),
        }
    }
}

/// `access_token` of borrowed fields (no `AccessToken` made first).
pub fn access_token_of(t: AccessTokenRef<'_>) -> String {
    fields(&[
        Field::Str(Some(t.api_key)),
        Field::Str(t.user_id),
        Field::Str(Some(t.client_id)),
        Field::Strs(t.scopes),
        Field::Str(t.refresh_token),
        Field::Int(t.expires_at),
        Field::Int(Some(t.created_at)),
        Field::Str(t.resource),
        Field::Str(t.extra),
    ])
}

/// `userId, clientId, scopes, accessToken, createdAt` (fields format).
pub fn refresh_token(r: &RefreshToken) -> String {
    fields(&[
        Field::Str(r.user_id.as_deref()),
        Field::Str(Some(&r.client_id)),
        Field::Strs(&r.scopes),
        Field::Str(Some(&r.access_token)),
        Field::Int(Some(r.created_at)),
    ])
}

/// `userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes,
/// expiresAt, createdAt, resource, extra` (fields format).
pub fn authorization_code(c: &AuthorizationCode) -> String {
    fields(&[
        Field::Str(c.user_id.as_deref()),
        Field::Str(Some(&c.api_key)),
        Field::Str(Some(&c.client_id)),
        Field::Str(Some(&c.redirect_uri)),
        Field::Str(c.code_challenge.as_deref()),
        Field::Str(c.code_challenge_method.as_deref()),
        Field::Strs(&c.scopes),
        Field::Int(Some(c.expires_at)),
        Field::Int(Some(c.created_at)),
        Field::Str(c.resource.as_deref()),
        Field::Str(c.extra.as_deref()),
    ])
}

/// `[outcome, userId, clientId, scopes, apiKey, accessToken, refreshToken, revoked]`;
/// outcome `"rotated"`, `"unknown"`, `"retry"` (reused within the grace period) or
/// `"reused"` (after it: the family revoked).
pub fn rotation(r: &Rotation) -> Result<String, StoreError> {
    let none: Option<&str> = None;
    match r {
        Rotation::Rotated(n) => encode(
            &(
                "rotated",
                &n.user_id,
                &n.client_id,
                &n.scopes,
                &n.api_key,
                &n.access_token,
                &n.refresh_token,
                0,
            ),
            n.api_key.len() + n.access_token.len() + n.refresh_token.len() + 64,
        ),
        Rotation::Unknown => encode(&("unknown", none, none, none, none, none, none, 0), 64),
        Rotation::Reused {
            within_grace,
            revoked,
        } => encode(
            &(
                if *within_grace { "retry" } else { "reused" },
                none,
                none,
                none,
                none,
                none,
                none,
                revoked,
            ),
            64,
        ),
    }
}

/// `[clientId, secretDigest, metadata, createdAt]`, the metadata as JSON text in a string.
pub fn client(c: &ClientRecord) -> Result<String, StoreError> {
    encode(
        &(&c.client_id, &c.secret_digest, &c.metadata, c.created_at),
        c.client_id.len() + c.metadata.len() + 96,
    )
}

pub fn ids(ids: &[String]) -> Result<String, StoreError> {
    encode(&ids, ids.iter().map(|i| i.len() + 3).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_format_counts_utf16_units_and_writes_nulls_and_negatives() {
        let scopes = vec![String::new(), "é😀".to_owned(), ";,".to_owned()];
        let text = fields(&[
            Field::Str(Some("ab")),
            Field::Str(None),
            Field::Strs(&scopes),
            Field::Int(Some(-1_700_000_000_123)),
            Field::Int(None),
            Field::Int(Some(0)),
        ]);
        // "é😀" is 3 UTF-16 code units (é, and 😀 as a surrogate pair), 6 bytes.
        assert_eq!(text, "2,,3,0,3,2,-1700000000123,,0,;abé😀;,");
    }

    #[test]
    fn an_access_token_record() {
        let t = AccessToken {
            links: None,
            api_key: "sk".into(),
            user_id: None,
            client_id: "c".into(),
            scopes: vec!["mcp".into()],
            refresh_token: Some("rt".into()),
            expires_at: None,
            created_at: 5,
            resource: None,
            extra: None,
        };
        assert_eq!(access_token(&t), "2,,1,1,3,2,,5,,,;skcmcprt");
    }
}
