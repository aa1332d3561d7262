//! Encryption at rest (issue 19), one layer above every store: `Sealed` wraps any
//! `TokenStore` (memory, SQLite, PostgreSQL) and is itself one, so each backend stores
//! opaque text and the digests and seals are made in this one place.
//!
//! - Without keys, it checks once (at open or the first call, again after `close`) that
//!   the store is not sealed, and then passes every call through.
//! - With a keyring (`TOKEN_ENCRYPTION_KEYS`, `crate::crypto`), it checks the store's mark
//!   (`TokenStore::seal_mark`): an empty store is marked sealed with a check of each key
//!   (`Keyring::key_checks`); a sealed one must share at least one key id with the keyring,
//!   under the same key (new ids of the keyring are added to the mark, for rotation); a
//!   store holding rows written in clear is refused. Then:
//!   - an authorization code is stored under the hex of its keyed digest (`Kind::Code`),
//!     its API key sealed (column `authorization_codes.api_key`, the digest as associated
//!     data); the other fields (user, client, redirect URI, PKCE challenge, scopes, times)
//!     stay in clear, as `deleteUserTokens`, cleanup and a client's revocation read them;
//!   - a grant's extra (issue 20: the caller's JSON, maybe an upstream key) is sealed as
//!     its API key is: a code's bound to its row (`authorization_codes.extra`), a token's
//!     to its user and client (`access_tokens.extra`, copied as it is by a rotation); its
//!     resource (an URL) stays in clear;
//!   - a pending authorization is stored under the hex of its state's digest
//!     (`Kind::PendingState`), its data (JSON text, the upstream PKCE verifier in it)
//!     sealed (column `nts_pending_authorizations.data`);
//!   - a code or state is found by its digest under each key of the keyring, active first;
//!     a value that does not open is `ERR_TOKEN_STORAGE_CANNOT_DECRYPT`, never served.
//!   - on a store that seals its tokens (`TokenStore::seals_tokens`: every backend but the
//!     memory store, below), an access
//!     token is stored under the hex of its digest (`Kind::AccessToken`), its refresh token
//!     under its digest (`Kind::RefreshToken`), so the store's joins, families and reuse
//!     detection work on digests unchanged; the API key is sealed bound to the token's user
//!     and client (`access_tokens.api_key`), which a rotation copies with it, so the store
//!     copies the sealed text as it is; the access and refresh token strings the API gives
//!     back (getAccessToken's refreshToken, getRefreshToken's accessToken) are sealed
//!     together, bound to the access row (`access_tokens.links`, `NewAccessToken::links`),
//!     made here for a rotation's new pair before the store's one atomic step. Token values
//!     are `nts2:` (AES-256-GCM) where AES runs in hardware, as they are opened on every
//!     get. The mark is `sealed v2`; a `sealed v1` store (the version before, tokens in
//!     clear) is taken on only while it holds no token;
//!   - the memory store holds nothing at rest: its rows are in the process's memory, where
//!     the keyring is too, so sealing them there would protect nothing (whoever reads the
//!     memory or a core dump reads the keys). It keeps its tokens in clear (a get or store
//!     costs what it does without keys) under a `sealed v1` mark (its codes and pending
//!     authorizations sealed as above), and what leaves it is sealed: its export (a backup,
//!     a copy: `RowStore::export_rows` below) seals the token rows as `encrypt` would
//!     (`convert::seal_rows`) under the `sealed v2` mark a sealed store has; a copy of a
//!     sealed store into it opens them on the way in (`convert::Opening`), what only a digest
//!     names kept as one (`convert::DIGEST_NAME`: a replay of a token rotated away before is
//!     looked up under it);
//!   - backups, restores and copies of the other stores carry the rows as they are (digests
//!     and sealed values, which stay bound to their rows) with the source's mark
//!     (`snapshot::Sink::counts`), which replaces the target's; the target's keys are
//!     checked against it before the commit (`RowStore::import_all` below): nothing is
//!     opened or sealed on the way.
//!
//! Every process sharing a store must be given the same keys: a process without keys that
//! checked an empty store before another sealed it (or the old module) still writes its
//! tokens, codes and pending logins in clear, which the sealed processes never find, and
//! which sit in clear beside the sealed rows. A sealed SQLite file refuses such rows itself
//! (`sqlite::schema::CLEAR_ROWS_REFUSED`, triggers created with the mark: the write fails
//! with ENCRYPTION_MISMATCH), and so does a sealed PostgreSQL schema (the triggers of
//! `postgres::snapshot::refuse_clear_rows`); the memory store (one process) needs none.

pub mod convert;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::snapshot::{Counts, Import, RowStore, Rows, Sink, TABLES};
use super::TokenStore;
use crate::crypto::{hex, DigestHex, Keyring, Kind};
use crate::error::{Result, StoreError};
use crate::model::{
    AccessToken, AuthorizationCode, ClientRecord, NewAccessToken, RefreshToken, RotateRequest,
    Rotation, Stats,
};
use crate::ops::{Call, Driven};
use crate::wire::AccessTokenRef;

/// The columns sealed values are bound to (associated data: a value moved to another column
/// does not open).
const CODE_API_KEY: &str = "authorization_codes.api_key";
const PENDING_DATA: &str = "nts_pending_authorizations.data";
/// An access token's API key, bound to its user and client (`grant_ad`).
const ACCESS_API_KEY: &str = "access_tokens.api_key";
/// An access token's links (its access and refresh token strings), bound to its row.
const ACCESS_LINKS: &str = "access_tokens.links";
/// A code's extra (issue 20), bound to its row as its API key is.
const CODE_EXTRA: &str = "authorization_codes.extra";
/// An access token's extra, bound to its user and client (`grant_ad`) as its API key is,
/// so that a rotation copies it as it is.
const ACCESS_EXTRA: &str = "access_tokens.extra";

/// What a sealed store's mark starts with; then `id=check` for each key, comma-separated.
/// `v1`: codes and pending authorizations sealed, tokens in clear (a store without
/// `TokenStore::seals_tokens`, or written by the version before); `v2`: tokens sealed too.
const MARK_V1: &str = "sealed v1 ";
const MARK_V2: &str = "sealed v2 ";

/// A store with encryption at rest checked and applied (see the module's comment).
pub struct Sealed {
    inner: Arc<dyn TokenStore>,
    keys: Option<Arc<Keyring>>,
    /// Whether the store's mark was found to match `keys` (until `close`).
    checked: AtomicBool,
}

/// A write in clear that a sealed store refused itself (SQLite's triggers, PostgreSQL's:
/// `CLEAR_ROWS_REFUSED`, `refuse_clear_rows`): the fix, no value.
pub fn clear_row_refused() -> StoreError {
    StoreError::EncryptionMismatch(
        "this token store was sealed (encrypted at rest) after this process opened it \
         without encryption keys: its write in clear was refused and nothing was \
         written; restart the process with TOKEN_ENCRYPTION_KEYS (the store's keys)"
            .into(),
    )
}

/// An SQL expression (SQLite and PostgreSQL), true when any table but the clients' holds a
/// row: what a store sealed only when empty must not hold. `prefix`: a schema and its dot.
pub fn holds_secrets_sql(prefix: &str) -> String {
    let each: Vec<String> = TABLES
        .iter()
        .filter(|t| **t != "nts_clients")
        .map(|t| format!("EXISTS (SELECT 1 FROM {prefix}{t})"))
        .collect();
    format!("({})", each.join(" OR "))
}

fn mark_of(prefix: &str, checks: &[(String, String)]) -> String {
    let each: Vec<String> = checks.iter().map(|(id, c)| format!("{id}={c}")).collect();
    format!("{prefix}{}", each.join(","))
}

/// The version's prefix and the (id, check) pairs of a mark; `None` if it is not one this
/// version writes.
fn parse_mark(mark: &str) -> Option<(&'static str, Vec<(String, String)>)> {
    let (prefix, rest) = match mark.strip_prefix(MARK_V2) {
        Some(rest) => (MARK_V2, rest),
        None => (MARK_V1, mark.strip_prefix(MARK_V1)?),
    };
    let checks = rest
        .split(',')
        .map(|e| {
            e.split_once('=')
                .map(|(id, c)| (id.to_owned(), c.to_owned()))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((prefix, checks))
}

fn ids(checks: &[(String, String)]) -> String {
    let ids: Vec<&str> = checks.iter().map(|(id, _)| id.as_str()).collect();
    ids.join(", ")
}

fn mismatch(msg: String) -> StoreError {
    StoreError::EncryptionMismatch(msg)
}

fn clear_store() -> StoreError {
    mismatch(
        "this token store holds data written in clear (without encryption keys), and \
         encryption keys are set (TOKEN_ENCRYPTION_KEYS or the encryptionKeys option): it is \
         not opened, so that clear and sealed data are never mixed. Convert it first: stop \
         the servers that use it, run `npx native-token-storage encrypt` with the same keys, \
         then start them with the keys; or open it without keys"
            .into(),
    )
}

fn sealed_without_keys(recorded: &str) -> StoreError {
    let recorded = parse_mark(recorded).map_or_else(|| "unknown".into(), |(_, c)| ids(&c));
    mismatch(format!(
        "this token store is sealed (encrypted at rest) with the key ids {recorded}, and no \
         encryption keys are set: set TOKEN_ENCRYPTION_KEYS (or the encryptionKeys option) to \
         a keyring holding one of them, or convert it back to clear with \
         `npx native-token-storage decrypt` (give it the keys)"
    ))
}

/// Sealed values are text: what opens must be UTF-8 (it was when sealed).
fn open_text(keys: &Keyring, column: &str, row: &[u8], sealed: &str) -> Result<String> {
    String::from_utf8(keys.open(column, row, sealed)?).map_err(|_| {
        StoreError::CannotDecrypt(format!(
            "the sealed value in column {column} opened to bytes that are not text"
        ))
    })
}

fn clear_tokens() -> StoreError {
    mismatch(
        "this token store was sealed by an earlier version of native-token-storage, which \
         sealed authorization codes and pending logins but kept access and refresh tokens in \
         clear, and it holds such tokens: it is not opened, so that clear and sealed tokens \
         are never mixed. Converting it (`npx native-token-storage encrypt`) is not available \
         yet: use the earlier version until its tokens have expired (cleanup removes them), \
         or a new, empty store"
            .into(),
    )
}

fn cannot(msg: &str) -> StoreError {
    StoreError::CannotDecrypt(msg.into())
}

/// What a token's API key is bound to (associated data): its user and client, which a
/// rotation copies with it, so that a backend's rotation copies the sealed text as it is.
/// A sealed API key moved to a token of another user or client does not open; moved
/// between two tokens of one user and client, it opens to that user's own key.
fn grant_ad(user: Option<&str>, client: &str) -> Vec<u8> {
    let user = user.unwrap_or_default();
    let mut ad = Vec::with_capacity(5 + user.len() + client.len());
    ad.push(u8::from(!user.is_empty()));
    ad.extend_from_slice(&(user.len() as u32).to_be_bytes());
    ad.extend_from_slice(user.as_bytes());
    ad.extend_from_slice(client.as_bytes());
    ad
}

/// An access token's links, sealed: its access token and refresh token (empty: none).
fn pack_links(access: &str, refresh: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + access.len() + refresh.len());
    out.extend_from_slice(&(access.len() as u32).to_be_bytes());
    out.extend_from_slice(access.as_bytes());
    out.extend_from_slice(refresh.as_bytes());
    out
}

fn bad_links() -> StoreError {
    cannot("the sealed value in column access_tokens.links is not two strings")
}

/// Opens the links of the access row `row` (the hex of its digest): the bytes and where the
/// refresh token starts in them (the access token is before it, after its length).
fn open_links_bytes(keys: &Keyring, row: &str, links: Option<&str>) -> Result<(Vec<u8>, usize)> {
    let links = links.ok_or_else(|| {
        cannot("the access token's sealed links (access_tokens.links) are missing")
    })?;
    let bytes = keys.open(ACCESS_LINKS, row.as_bytes(), links)?;
    let (len, rest) = bytes.split_first_chunk::<4>().ok_or_else(bad_links)?;
    let len = u32::from_be_bytes(*len) as usize;
    if rest.len() < len {
        return Err(bad_links());
    }
    Ok((bytes, 4 + len))
}

/// Opens the links of the access row `row` (the hex of its digest): (access, refresh).
fn open_links(keys: &Keyring, row: &str, links: Option<&str>) -> Result<(String, String)> {
    let (bytes, at) = open_links_bytes(keys, row, links)?;
    let (access, refresh) = bytes.split_at(at);
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| bad_links());
    Ok((text(&access[4..])?, text(refresh)?))
}

/// Opens only the refresh token of the links of the access row `row` (what a get answers),
/// in the buffer it was opened in; one that names none is refused (the row has one).
fn open_refresh(keys: &Keyring, row: &str, links: Option<&str>) -> Result<String> {
    let (mut bytes, at) = open_links_bytes(keys, row, links)?;
    if bytes.len() == at {
        return Err(cannot(
            "the access token's sealed links name no refresh token, and its row has one",
        ));
    }
    bytes.drain(..at);
    String::from_utf8(bytes).map_err(|_| bad_links())
}

/// `t` as a store with sealed tokens keeps it: under the digests of its strings, its API key
/// and links sealed.
fn seal_token(keys: &Keyring, t: &NewAccessToken) -> Result<NewAccessToken> {
    let row = hex(&keys.digest(Kind::AccessToken, t.token.as_bytes()).bytes);
    let refresh = t.refresh_token.as_deref().filter(|r| !r.is_empty());
    Ok(NewAccessToken {
        refresh_token: refresh.map(|r| hex(&keys.digest(Kind::RefreshToken, r.as_bytes()).bytes)),
        api_key: keys.seal_token(
            ACCESS_API_KEY,
            &grant_ad(t.user_id.as_deref(), &t.client_id),
            t.api_key.as_bytes(),
        )?,
        links: Some(keys.seal_token(
            ACCESS_LINKS,
            row.as_bytes(),
            &pack_links(&t.token, refresh.unwrap_or_default()),
        )?),
        extra: t
            .extra
            .as_deref()
            .map(|e| {
                keys.seal_token(
                    ACCESS_EXTRA,
                    &grant_ad(t.user_id.as_deref(), &t.client_id),
                    e.as_bytes(),
                )
            })
            .transpose()?,
        resource: t.resource.clone(),
        user_id: t.user_id.clone(),
        client_id: t.client_id.clone(),
        scopes: t.scopes.clone(),
        expires_at: t.expires_at,
        token: row,
    })
}

/// A token's API key, sealed for its user and client (`grant_ad`), opened.
fn open_api_key(keys: &Keyring, user: Option<&str>, client: &str, sealed: &str) -> Result<String> {
    open_text(keys, ACCESS_API_KEY, &grant_ad(user, client), sealed)
}

/// The sealed fields of an access token found under `row`, opened: its API key, extra and
/// refresh token.
struct Opened {
    api_key: String,
    extra: Option<String>,
    refresh_token: Option<String>,
}

fn open_fields(keys: &Keyring, row: &str, t: AccessTokenRef<'_>) -> Result<Opened> {
    let api_key = open_api_key(keys, t.user_id, t.client_id, t.api_key)?;
    let extra = t
        .extra
        .map(|e| open_text(keys, ACCESS_EXTRA, &grant_ad(t.user_id, t.client_id), e))
        .transpose()?;
    let refresh_token = t
        .refresh_token
        .map(|_| open_refresh(keys, row, t.links))
        .transpose()?;
    Ok(Opened {
        api_key,
        extra,
        refresh_token,
    })
}

/// An access token as the sealed store gave it (found under `row`), opened.
fn open_access(keys: &Keyring, row: &str, mut t: AccessToken) -> Result<AccessToken> {
    let opened = open_fields(keys, row, AccessTokenRef::of(&t))?;
    t.api_key = opened.api_key;
    t.extra = opened.extra;
    t.refresh_token = opened.refresh_token;
    t.links = None;
    Ok(t)
}

/// `get_access_token_text`'s answer for an access token found under `row`, its fields as
/// the store lends them (`TokenStore::with_access_token_linked`): opened, and written with
/// the fields in clear as they are, no record made.
fn open_access_text(keys: &Keyring, row: &str, t: AccessTokenRef<'_>) -> Result<String> {
    let opened = open_fields(keys, row, t)?;
    Ok(crate::wire::access_token_of(AccessTokenRef {
        api_key: &opened.api_key,
        refresh_token: opened.refresh_token.as_deref(),
        extra: opened.extra.as_deref(),
        links: None,
        ..t
    }))
}

impl Sealed {
    /// `inner` with encryption at rest under `keys`, or checked to be in clear without.
    pub fn new(inner: Arc<dyn TokenStore>, keys: Option<Arc<Keyring>>) -> Sealed {
        Sealed {
            inner,
            keys,
            checked: AtomicBool::new(false),
        }
    }

    /// Checks the store's mark against the keys, once (see the module's comment).
    fn ensure(&self) -> Result<()> {
        if self.checked.load(Ordering::Acquire) {
            return Ok(());
        }
        self.check()?;
        self.checked.store(true, Ordering::Release);
        Ok(())
    }

    fn check(&self) -> Result<()> {
        // The mark is set by compare-and-set: another process changing it meanwhile makes
        // this one read it again.
        for _ in 0..8 {
            let (mark, holds) = self.inner.seal_mark()?;
            let Some(wanted) = self.judge(mark.as_deref(), holds, || self.inner.row_counts())?
            else {
                return Ok(());
            };
            if self
                .inner
                .set_seal_mark(mark.as_deref(), &wanted, mark.is_none())?
            {
                return Ok(());
            }
        }
        Err(StoreError::Internal(
            "the store's encryption mark kept changing while it was checked",
        ))
    }

    /// Whether a store whose mark is `mark` (and which `holds` rows a keyring protects; its
    /// `counts`, asked only for a `sealed v1` mark) is one these keys open: an error if not,
    /// else the mark it must be given (`None`: right as it is).
    fn judge(
        &self,
        mark: Option<&str>,
        holds: bool,
        counts: impl FnOnce() -> Result<Counts>,
    ) -> Result<Option<String>> {
        let Some(keys) = &self.keys else {
            return match mark {
                None => Ok(None),
                Some(m) => Err(sealed_without_keys(m)),
            };
        };
        let ours: Vec<(String, String)> = keys
            .key_checks()
            .into_iter()
            .map(|(id, c)| (id.to_owned(), c))
            .collect();
        let version = if self.inner.seals_tokens() {
            MARK_V2
        } else {
            MARK_V1
        };
        let Some(m) = mark else {
            return if holds {
                Err(clear_store())
            } else {
                Ok(Some(mark_of(version, &ours)))
            };
        };
        let (found, recorded) = parse_mark(m)
            .filter(|(found, _)| *found == MARK_V1 || version == MARK_V2)
            .ok_or_else(|| {
                mismatch(
                    "this token store's encryption mark is not one this version of \
                     native-token-storage reads (written by a newer version?)"
                        .into(),
                )
            })?;
        let mut known = 0;
        for (id, check) in &ours {
            if let Some((_, c)) = recorded.iter().find(|(i, _)| i == id) {
                if c != check {
                    return Err(mismatch(format!(
                        "the key of id {id} in the keyring is not the key this token \
                         store was sealed with under that id: give the store's key \
                         for {id}"
                    )));
                }
                known += 1;
            }
        }
        if known == 0 {
            return Err(mismatch(format!(
                "the keyring (key ids {}) holds none of the keys this token store \
                 was sealed with (key ids {}): add one of them to \
                 TOKEN_ENCRYPTION_KEYS (then `npx native-token-storage \
                 rekey` re-seals it under the new one)",
                ids(&ours),
                ids(&recorded)
            )));
        }
        // A store sealed before tokens were (v1) is taken on (v2) only while it
        // holds no token: its tokens are in clear.
        if found != version {
            let c = counts()?;
            if c.access_tokens + c.refresh_tokens + c.refresh_families + c.retired_refresh_tokens
                > 0
            {
                return Err(clear_tokens());
            }
        } else if known == ours.len() {
            return Ok(None);
        }
        // New keys of the keyring are recorded, so that a later keyring holding
        // only them is still told from a wrong one.
        let mut all = recorded.clone();
        all.extend(
            ours.into_iter()
                .filter(|(id, _)| !recorded.iter().any(|(i, _)| i == id)),
        );
        Ok(Some(mark_of(version, &all)))
    }

    /// The keyring, once the store is checked (`None`: a store in clear).
    fn keys(&self) -> Result<Option<&Keyring>> {
        self.ensure()?;
        Ok(self.keys.as_deref())
    }

    /// The keyring if the store keeps its tokens in clear under it (keys, on a store that
    /// does not `seals_tokens`: the memory store), once the store is checked.
    fn keys_of_clear_tokens(&self) -> Result<Option<&Keyring>> {
        Ok(self.keys()?.filter(|_| !self.inner.seals_tokens()))
    }

    /// A rotation of a refresh token a store keeping its tokens in clear under `keys` did
    /// not find: looked for under its digest (`convert::DIGEST_NAME`: a token rotated away,
    /// or whose access token is gone, copied from a sealed store), under each key.
    fn rotate_digest_name(
        &self,
        keys: &Keyring,
        request: &RotateRequest,
        now: i64,
    ) -> Result<Rotation> {
        for digest in keys.digests_all(Kind::RefreshToken, request.refresh_token.as_bytes()) {
            let named = RotateRequest {
                refresh_token: convert::digest_name(&hex(&digest.bytes)),
                ..request.clone()
            };
            match self.inner.rotate_refresh_token(&named, now)? {
                Rotation::Unknown => continue,
                found => return Ok(found),
            }
        }
        Ok(Rotation::Unknown)
    }

    /// The keyring if tokens are sealed (keys, on a store that `seals_tokens`), once the
    /// store is checked; `None`: tokens in clear.
    fn token_keys(&self) -> Result<Option<&Keyring>> {
        self.ensure()?;
        Ok(self.keys.as_deref().filter(|_| self.inner.seals_tokens()))
    }

    /// `get_access_token_text` where the stored fields are sealed: opened where the store
    /// keeps them, and the answer written from them and the opened values.
    fn sealed_access_text(&self, keys: &Keyring, token: &str, now: i64) -> Result<Option<String>> {
        for digest in keys.digests_all(Kind::AccessToken, token.as_bytes()) {
            let row = DigestHex::of(&digest.bytes);
            let row = row.as_str();
            let found = self
                .inner
                .with_access_token_linked(row, now, &mut |t| open_access_text(keys, row, t))?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }
}

impl TokenStore for Sealed {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn location(&self) -> Option<String> {
        self.inner.location()
    }

    fn open(&self) -> Result<bool> {
        let opened = self.inner.open()?;
        self.ensure()?;
        Ok(opened)
    }

    fn close(&self) -> Result<()> {
        self.checked.store(false, Ordering::Release);
        self.inner.close()
    }

    fn take_warnings(&self) -> Vec<super::Warning> {
        self.inner.take_warnings()
    }

    fn store_access_tokens(&self, tokens: &[NewAccessToken], now: i64) -> Result<()> {
        let Some(keys) = self.token_keys()? else {
            return self.inner.store_access_tokens(tokens, now);
        };
        let sealed = tokens
            .iter()
            .map(|t| seal_token(keys, t))
            .collect::<Result<Vec<_>>>()?;
        self.inner.store_access_tokens(&sealed, now)
    }

    fn store_access_token(&self, token: &NewAccessToken, now: i64) -> Result<()> {
        let Some(keys) = self.token_keys()? else {
            return self.inner.store_access_token(token, now);
        };
        self.inner
            .store_access_token(&seal_token(keys, token)?, now)
    }

    fn get_access_token(&self, token: &str, now: i64) -> Result<Option<AccessToken>> {
        let Some(keys) = self.token_keys()? else {
            return self.inner.get_access_token(token, now);
        };
        for digest in keys.digests_all(Kind::AccessToken, token.as_bytes()) {
            let row = DigestHex::of(&digest.bytes);
            let row = row.as_str();
            if let Some(found) = self.inner.get_access_token_linked(row, now)? {
                return open_access(keys, row, found).map(Some);
            }
        }
        Ok(None)
    }

    fn get_access_token_text(&self, token: &str, now: i64) -> Result<Option<String>> {
        match self.token_keys()? {
            Some(keys) => self.sealed_access_text(keys, token, now),
            None => self.inner.get_access_token_text(token, now),
        }
    }

    /// Held by the inner store only where tokens are in clear (no keys).
    fn get_access_token_text_holding(&self, token: &str, now: i64) -> Result<Option<String>> {
        match self.token_keys()? {
            Some(keys) => self.sealed_access_text(keys, token, now),
            None => self.inner.get_access_token_text_holding(token, now),
        }
    }

    fn end_reads(&self) -> Result<()> {
        self.inner.end_reads()
    }

    /// Only where the store is in clear (no keys) and its mark was checked (the first call
    /// checks it, on the pool's thread): the inner store's future as it is.
    fn later(self: Arc<Self>, call: Call, now: i64) -> Driven {
        if !self.checked.load(Ordering::Acquire) || self.keys.is_some() {
            return Driven::Back(Box::new(call));
        }
        self.inner.clone().later(call, now)
    }

    fn get_access_token_at_hand(&self, token: &str, now: i64) -> Option<Option<String>> {
        if !self.checked.load(Ordering::Acquire)
            || (self.keys.is_some() && self.inner.seals_tokens())
        {
            return None;
        }
        self.inner.get_access_token_at_hand(token, now)
    }

    fn in_memory(&self) -> bool {
        self.inner.in_memory()
    }

    fn store_authorization_code(&self, code: &str, data: &AuthorizationCode) -> Result<()> {
        let Some(keys) = self.keys()? else {
            return self.inner.store_authorization_code(code, data);
        };
        let row = keys.digest(Kind::Code, code.as_bytes()).bytes;
        let mut sealed = data.clone();
        sealed.api_key = keys.seal(CODE_API_KEY, &row, data.api_key.as_bytes())?;
        sealed.extra = data
            .extra
            .as_deref()
            .map(|e| keys.seal(CODE_EXTRA, &row, e.as_bytes()))
            .transpose()?;
        self.inner.store_authorization_code(&hex(&row), &sealed)
    }

    fn take_authorization_code(&self, code: &str, now: i64) -> Result<Option<AuthorizationCode>> {
        let Some(keys) = self.keys()? else {
            return self.inner.take_authorization_code(code, now);
        };
        for digest in keys.digests_all(Kind::Code, code.as_bytes()) {
            if let Some(mut found) = self
                .inner
                .take_authorization_code(&hex(&digest.bytes), now)?
            {
                found.api_key = open_text(keys, CODE_API_KEY, &digest.bytes, &found.api_key)?;
                if let Some(extra) = found.extra.take() {
                    found.extra = Some(open_text(keys, CODE_EXTRA, &digest.bytes, &extra)?);
                }
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    fn get_refresh_token(&self, refresh_token: &str, now: i64) -> Result<Option<RefreshToken>> {
        let Some(keys) = self.token_keys()? else {
            return self.inner.get_refresh_token(refresh_token, now);
        };
        for digest in keys.digests_all(Kind::RefreshToken, refresh_token.as_bytes()) {
            if let Some(mut found) = self
                .inner
                .get_refresh_token_linked(&hex(&digest.bytes), now)?
            {
                let links = found.links.take();
                let (access, refresh) = open_links(keys, &found.access_token, links.as_deref())?;
                if refresh != refresh_token {
                    return Err(cannot(
                        "the refresh token's access token (access_tokens.links) names another \
                         refresh token: the rows were altered",
                    ));
                }
                found.access_token = access;
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    fn revoke_refresh_token(&self, refresh_token: &str) -> Result<()> {
        let Some(keys) = self.token_keys()? else {
            return self.inner.revoke_refresh_token(refresh_token);
        };
        for digest in keys.digests_all(Kind::RefreshToken, refresh_token.as_bytes()) {
            self.inner.revoke_refresh_token(&hex(&digest.bytes))?;
        }
        Ok(())
    }

    fn delete_token(&self, token: &str) -> Result<()> {
        let Some(keys) = self.token_keys()? else {
            return self.inner.delete_token(token);
        };
        for digest in keys.digests_all(Kind::AccessToken, token.as_bytes()) {
            self.inner.delete_token(&hex(&digest.bytes))?;
        }
        Ok(())
    }

    fn delete_user_tokens(&self, user_id: &str) -> Result<u64> {
        self.ensure()?;
        self.inner.delete_user_tokens(user_id)
    }

    fn cleanup_expired(&self, now: i64, limit: usize) -> Result<usize> {
        self.ensure()?;
        self.inner.cleanup_expired(now, limit)
    }

    fn cleanup_slice(&self) -> std::time::Duration {
        self.inner.cleanup_slice()
    }

    fn cleanup_expired_in_background(&self, now: i64, limit: usize) -> Result<usize> {
        self.ensure()?;
        self.inner.cleanup_expired_in_background(now, limit)
    }

    fn cleanup_expired_as(&self, now: i64, limit: usize, holder: i64) -> Result<Option<usize>> {
        self.ensure()?;
        self.inner.cleanup_expired_as(now, limit, holder)
    }

    fn cleanup_pause(&self, took: std::time::Duration) -> std::time::Duration {
        self.inner.cleanup_pause(took)
    }

    fn prepare_stats(&self, now: i64, until: i64) -> Result<()> {
        self.ensure()?;
        self.inner.prepare_stats(now, until)
    }

    fn stats(&self, now: i64) -> Result<Stats> {
        self.ensure()?;
        self.inner.stats(now)
    }

    fn rotate_refresh_token(&self, request: &RotateRequest, now: i64) -> Result<Rotation> {
        let Some(keys) = self.token_keys()? else {
            let rotation = self.inner.rotate_refresh_token(request, now)?;
            return match (&rotation, self.keys.as_deref()) {
                // Tokens in clear under keys (the memory store): one not found may have
                // come from a sealed store as a digest (`convert::DIGEST_NAME`).
                (Rotation::Unknown, Some(keys)) => self.rotate_digest_name(keys, request, now),
                _ => Ok(rotation),
            };
        };
        // The new pair's rows and links are made here (the store holds no key); the API key
        // is copied by the store as it is (bound to the user and client, not the row).
        let new_row = hex(&keys
            .digest(Kind::AccessToken, request.new_access_token.as_bytes())
            .bytes);
        let links = keys.seal_token(
            ACCESS_LINKS,
            new_row.as_bytes(),
            &pack_links(&request.new_access_token, &request.new_refresh_token),
        )?;
        let mut sealed = RotateRequest {
            refresh_token: String::new(),
            new_access_token: new_row,
            new_refresh_token: hex(&keys
                .digest(Kind::RefreshToken, request.new_refresh_token.as_bytes())
                .bytes),
            expires_at: request.expires_at,
            grace_ms: request.grace_ms,
            links: Some(links),
        };
        for digest in keys.digests_all(Kind::RefreshToken, request.refresh_token.as_bytes()) {
            sealed.refresh_token = hex(&digest.bytes);
            match self.inner.rotate_refresh_token(&sealed, now)? {
                Rotation::Unknown => continue,
                Rotation::Rotated(mut r) => {
                    r.api_key = open_api_key(keys, r.user_id.as_deref(), &r.client_id, &r.api_key)?;
                    r.access_token = request.new_access_token.clone();
                    r.refresh_token = request.new_refresh_token.clone();
                    return Ok(Rotation::Rotated(r));
                }
                reused => return Ok(reused),
            }
        }
        Ok(Rotation::Unknown)
    }

    fn put_client(&self, client: &ClientRecord) -> Result<()> {
        self.ensure()?;
        self.inner.put_client(client)
    }

    fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        self.ensure()?;
        self.inner.get_client(client_id)
    }

    fn client_ids(&self) -> Result<Vec<String>> {
        self.ensure()?;
        self.inner.client_ids()
    }

    fn store_pending_authorization(
        &self,
        state: &str,
        data: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<()> {
        let Some(keys) = self.keys()? else {
            return self
                .inner
                .store_pending_authorization(state, data, expires_at, now);
        };
        let row = keys.digest(Kind::PendingState, state.as_bytes()).bytes;
        let sealed = keys.seal(PENDING_DATA, &row, data.as_bytes())?;
        self.inner
            .store_pending_authorization(&hex(&row), &sealed, expires_at, now)
    }

    fn take_pending_authorization(&self, state: &str, now: i64) -> Result<Option<String>> {
        let Some(keys) = self.keys()? else {
            return self.inner.take_pending_authorization(state, now);
        };
        for digest in keys.digests_all(Kind::PendingState, state.as_bytes()) {
            if let Some(found) = self
                .inner
                .take_pending_authorization(&hex(&digest.bytes), now)?
            {
                return open_text(keys, PENDING_DATA, &digest.bytes, &found).map(Some);
            }
        }
        Ok(None)
    }

    fn seal_mark(&self) -> Result<(Option<String>, bool)> {
        self.inner.seal_mark()
    }

    fn seals_tokens(&self) -> bool {
        self.inner.seals_tokens()
    }

    fn set_seal_mark(&self, old: Option<&str>, new: &str, only_if_empty: bool) -> Result<bool> {
        self.inner.set_seal_mark(old, new, only_if_empty)
    }
}

impl RowStore for Sealed {
    /// Not checked against the keys: counts are no secret, and the copy commands count a
    /// target whatever its mark before they replace it (`import_all`).
    fn row_counts(&self) -> Result<Counts> {
        self.inner.row_counts()
    }

    /// The rows as they are, digests and sealed values, with the store's mark (`Sink::counts`):
    /// from a store these keys open (or one in clear, without keys), as every other call.
    /// A store keeping its tokens in clear under the keys (the memory store) hands them over
    /// as a sealed store keeps them (`convert::seal_rows`, what `encrypt` writes), under the
    /// `sealed v2` mark a sealed store would have: nothing leaves it in clear.
    fn export_rows(&self, batch: usize, sink: &mut dyn Sink) -> Result<Counts> {
        let Some(keys) = self.keys_of_clear_tokens()? else {
            return self.inner.export_rows(batch, sink);
        };
        struct Sealing<'a> {
            keys: &'a Keyring,
            sink: &'a mut dyn Sink,
        }
        impl Sink for Sealing<'_> {
            fn counts(&mut self, counts: &Counts, mark: Option<&str>) -> Result<()> {
                let v2 = mark.map(|m| m.strip_prefix(MARK_V1).map(|c| format!("{MARK_V2}{c}")));
                match v2 {
                    Some(Some(mark)) => self.sink.counts(counts, Some(&mark)),
                    _ => self.sink.counts(counts, mark),
                }
            }
            fn rows(&mut self, rows: Rows) -> Result<()> {
                for sealed in convert::seal_rows(self.keys, rows)? {
                    self.sink.rows(sealed)?;
                }
                Ok(())
            }
        }
        self.inner.export_rows(batch, &mut Sealing { keys, sink })
    }

    fn import_rows(&self, rows: &Rows) -> Result<()> {
        self.ensure()?;
        self.inner.import_rows(rows)
    }

    /// A copy into this store (`snapshot::copy`) replaces its rows and its mark with the
    /// source's, whatever they were: not checked first. The mark it brings is checked against
    /// these keys before the commit (`judge`): a copy never leaves a store that its own keys
    /// refuse (sealed rows without keys, clear ones with keys, other keys); then the store is
    /// checked again at its next call.
    fn import_all(
        &self,
        fill: &mut dyn FnMut(&mut dyn Import) -> Result<Counts>,
    ) -> Result<Counts> {
        let result = self.inner.import_all(&mut |tx| {
            let mut marked = Marked {
                tx,
                mark: None,
                layer: self,
                opening: None,
            };
            let counts = fill(&mut marked)?;
            marked.flush()?;
            if let Some(mark) = marked.mark {
                let holds = counts.total() > counts.clients;
                self.judge(mark.as_deref(), holds, || Ok(counts))?;
            }
            Ok(counts)
        });
        self.checked.store(false, Ordering::Release);
        result
    }

    fn exists(&self) -> Result<bool> {
        self.inner.exists()
    }

    fn identity(&self) -> Result<Option<String>> {
        self.inner.identity()
    }

    /// The snapshot as it is (SQLite's pages, the mark and its links trigger among them).
    fn snapshot_into(&self, path: &Path) -> Option<Result<Counts>> {
        if let Err(e) = self.ensure() {
            return Some(Err(e));
        }
        self.inner.snapshot_into(path)
    }

    fn clear_rows(&self) -> Result<()> {
        self.ensure()?;
        self.inner.clear_rows()
    }

    fn revoke_client(&self, client_id: &str) -> Result<u64> {
        self.ensure()?;
        self.inner.revoke_client(client_id)
    }
}

/// A copy's side of a store's transaction, the mark it sets remembered (`import_all`).
struct Marked<'a> {
    tx: &'a mut dyn Import,
    /// `Some(mark)` once the copy has set the mark (`Some(None)`: in clear).
    mark: Option<Option<String>>,
    layer: &'a Sealed,
    /// Sealed tokens coming into a store that keeps its tokens in clear under its keys (the
    /// memory store), opened before they are written (`flush`).
    opening: Option<convert::Opening>,
}

impl Marked<'_> {
    /// The tokens gathered so far (`opening`), opened and written.
    fn flush(&mut self) -> Result<()> {
        let (Some(opening), Some(keys)) = (&mut self.opening, self.layer.keys.as_deref()) else {
            return Ok(());
        };
        for rows in opening.open(keys)? {
            self.tx.rows(&rows)?;
        }
        Ok(())
    }
}

impl Import for Marked<'_> {
    fn counts(&mut self) -> Result<Counts> {
        self.flush()?;
        self.tx.counts()
    }
    fn clear(&mut self) -> Result<()> {
        self.tx.clear()
    }
    fn rows(&mut self, rows: &Rows) -> Result<()> {
        if let Some(opening) = &mut self.opening {
            if opening.take(rows)? {
                return Ok(());
            }
        }
        self.tx.rows(rows)
    }
    fn export(&mut self, batch: usize, sink: &mut dyn Sink) -> Result<()> {
        self.tx.export(batch, sink)
    }
    fn seal_mark(&mut self) -> Result<Option<String>> {
        self.tx.seal_mark()
    }
    /// Into a store keeping its tokens in clear under its keys (the memory store), a sealed
    /// store's rows: its mark as that store keeps it (`sealed v1`, same keys), checked
    /// against the keys before any row is opened, and its tokens opened on the way in.
    fn set_seal_mark(&mut self, mark: Option<&str>) -> Result<()> {
        let layer = self.layer;
        let clear = match mark.and_then(|m| m.strip_prefix(MARK_V2)) {
            Some(checks) if layer.keys.is_some() && !layer.inner.seals_tokens() => {
                let v1 = format!("{MARK_V1}{checks}");
                layer.judge(Some(&v1), false, || Ok(Counts::default()))?;
                self.opening = Some(convert::Opening::default());
                Some(v1)
            }
            _ => None,
        };
        let mark = clear.as_deref().or(mark);
        self.mark = Some(mark.map(str::to_owned));
        self.tx.set_seal_mark(mark)
    }
}
