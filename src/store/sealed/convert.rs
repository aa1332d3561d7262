//! `encrypt` and `decrypt` of a whole store (issue 19; the command line's
//! `native-token-storage encrypt|decrypt`): every row a sealed store seals, converted in
//! one transaction of the store's own (`RowStore::import_all`: SQLite's `BEGIN IMMEDIATE`,
//! PostgreSQL's table locks (`Import::lock_for_conversion`), so servers writing meanwhile
//! wait on the lock), then read back and checked before the commit, the mark last. A
//! failure or a kill at any point leaves the store as it was.
//!
//! - `encrypt` writes what the sealed layer (`super`) writes for the same records: access
//!   and refresh tokens under their keyed digests (active key), API keys and links sealed,
//!   codes and pending authorizations under their digests with their values sealed,
//!   families and rotated-away tokens under their digests; clients as they are.
//! - `decrypt` writes what a store without keys (and the old module) reads: tokens under
//!   their strings (opened from their links). What only a digest names cannot be given
//!   back: authorization codes and pending authorizations are dropped (short-lived: those
//!   logins start again), rotated-away refresh tokens and families keep their digests as
//!   opaque names (a replay of a token rotated away before is then an unknown token, no
//!   longer the reuse that revokes its family), and a refresh token whose access token is
//!   gone (never usable) is dropped. The report says how many.

use std::collections::HashMap;

use super::{
    grant_ad, hex, mark_of, mismatch, open_api_key, open_links, open_text, parse_mark, seal_token,
    Keyring, Kind, ACCESS_EXTRA, CODE_API_KEY, CODE_EXTRA, MARK_V2, PENDING_DATA,
};
use crate::error::{Result, StoreError};
use crate::model::{AccessToken, AuthorizationCode, ClientRecord, NewAccessToken, RefreshToken};
use crate::store::snapshot::{Counts, Import, PendingRow, RefreshRow, RetiredRow, Rows, Sink};
use crate::store::snapshot::{TokenRow, DEFAULT_BATCH};
use crate::store::TokenStore;

/// Which way a store is converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Clear to sealed, under the keyring's active key.
    Encrypt,
    /// Sealed to clear.
    Decrypt,
    /// Sealed to sealed under the keyring's active key (`resealed`).
    Rekey,
}

/// What a conversion did: the rows the store holds now, and those it could not keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Converted {
    pub counts: Counts,
    /// `decrypt`: authorization codes and pending authorizations dropped (only their
    /// digests were stored), and refresh tokens whose access token was gone.
    pub dropped_codes: u64,
    pub dropped_pending: u64,
    pub dropped_refresh: u64,
}

/// Every row of a store, gathered in memory (one transaction reads and rewrites them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct All {
    clients: Vec<ClientRecord>,
    access: Vec<TokenRow>,
    refresh: Vec<RefreshRow>,
    families: Vec<(String, String)>,
    retired: Vec<RetiredRow>,
    codes: Vec<(String, AuthorizationCode)>,
    pending: Vec<PendingRow>,
}

impl Sink for All {
    fn counts(&mut self, _: &Counts, _: Option<&str>) -> Result<()> {
        Ok(())
    }

    fn rows(&mut self, rows: Rows) -> Result<()> {
        match rows {
            Rows::Clients(r) => self.clients.extend(r),
            Rows::AccessTokens(r) => self.access.extend(r),
            Rows::RefreshTokens(r) => self.refresh.extend(r),
            Rows::RefreshFamilies(r) => self.families.extend(r),
            Rows::RetiredRefreshTokens(r) => self.retired.extend(r),
            Rows::AuthorizationCodes(r) => self.codes.extend(r),
            Rows::PendingAuthorizations(r) => self.pending.extend(r),
        }
        Ok(())
    }
}

impl All {
    fn read(tx: &mut dyn Import) -> Result<All> {
        let mut all = All::default();
        tx.export(DEFAULT_BATCH, &mut all)?;
        Ok(all)
    }

    fn counts(&self) -> Counts {
        let n = |l: usize| l as u64;
        Counts {
            access_tokens: n(self.access.len()),
            refresh_tokens: n(self.refresh.len()),
            authorization_codes: n(self.codes.len()),
            clients: n(self.clients.len()),
            pending_authorizations: n(self.pending.len()),
            refresh_families: n(self.families.len()),
            retired_refresh_tokens: n(self.retired.len()),
        }
    }

    /// Writes every row (the store emptied first), clients first, in registration order;
    /// each other kind in the order of its key (an append to each b-tree, not inserts
    /// scattered across it).
    fn write(self, tx: &mut dyn Import) -> Result<()> {
        tx.clear()?;
        for rows in self.sorted().into_rows() {
            tx.rows(&rows)?;
        }
        Ok(())
    }

    /// Each kind's rows, in the order a store takes them: clients first (a token may name
    /// one), then tokens, families, tokens rotated away, codes, pending authorizations.
    fn into_rows(self) -> [Rows; 7] {
        [
            Rows::Clients(self.clients),
            Rows::AccessTokens(self.access),
            Rows::RefreshTokens(self.refresh),
            Rows::RefreshFamilies(self.families),
            Rows::RetiredRefreshTokens(self.retired),
            Rows::AuthorizationCodes(self.codes),
            Rows::PendingAuthorizations(self.pending),
        ]
    }

    /// Each kind in the order of its key (clients keep theirs), to compare two reads.
    fn sorted(mut self) -> All {
        self.access.sort_by(|a, b| a.token.cmp(&b.token));
        self.refresh
            .sort_by(|a, b| a.refresh_token.cmp(&b.refresh_token));
        self.families.sort();
        self.retired
            .sort_by(|a, b| a.refresh_token.cmp(&b.refresh_token));
        self.codes.sort_by(|a, b| a.0.cmp(&b.0));
        self.pending.sort_by(|a, b| a.state.cmp(&b.state));
        self
    }
}

fn digest_hex(keys: &Keyring, kind: Kind, value: &str) -> String {
    hex(&keys.digest(kind, value.as_bytes()).bytes)
}

/// Whether `row` is the digest of `value` under one of the keyring's keys.
fn digest_of(keys: &Keyring, kind: Kind, value: &str, row: &str) -> bool {
    keys.digests_all(kind, value.as_bytes())
        .any(|d| hex(&d.bytes) == row)
}

/// The bytes of a digest's hex (a sealed code's or state's associated data).
fn unhex(text: &str) -> Result<Vec<u8>> {
    let bad = || super::cannot("a sealed row's key is not a digest");
    if !text.len().is_multiple_of(2) {
        return Err(bad());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(bad)
        })
        .collect()
}

/// A refresh token with no empty string: `None` for none (as the stores keep it).
fn some_refresh(r: &Option<String>) -> Option<&str> {
    r.as_deref().filter(|r| !r.is_empty())
}

/// The families and refresh tokens rotated away of clear rows, under their digests.
fn digested_rotations(keys: &Keyring, clear: &All) -> (Vec<(String, String)>, Vec<RetiredRow>) {
    let refresh = |r: &str| name_digest(keys, Kind::RefreshToken, r);
    renamed_rotations(clear, refresh, refresh)
}

/// The families and refresh tokens rotated away of `all`, renamed: a family's refresh token
/// by `live`, every other name (families, tokens rotated away) by `other`.
fn renamed_rotations(
    all: &All,
    live: impl Fn(&str) -> String,
    other: impl Fn(&str) -> String,
) -> (Vec<(String, String)>, Vec<RetiredRow>) {
    let families = all
        .families
        .iter()
        .map(|(r, f)| (live(r), other(f)))
        .collect();
    let retired = all
        .retired
        .iter()
        .map(|r| RetiredRow {
            refresh_token: other(&r.refresh_token),
            family: other(&r.family),
            retired_at: r.retired_at,
        })
        .collect();
    (families, retired)
}

/// Clear rows as a sealed store keeps them (`super`'s writes, row by row).
fn seal_all(keys: &Keyring, all: &All) -> Result<All> {
    let mut out = All {
        clients: all.clients.clone(),
        ..All::default()
    };
    for row in &all.access {
        let a = &row.access;
        let t = seal_token(
            keys,
            &NewAccessToken {
                links: None,
                ..row.to_new()
            },
        )?;
        out.access.push(TokenRow {
            token: t.token,
            access: AccessToken {
                api_key: t.api_key,
                refresh_token: t.refresh_token,
                links: t.links,
                extra: t.extra,
                ..a.clone()
            },
        });
    }
    for RefreshRow {
        refresh_token,
        refresh: r,
    } in &all.refresh
    {
        out.refresh.push(RefreshRow {
            refresh_token: name_digest(keys, Kind::RefreshToken, refresh_token),
            refresh: RefreshToken {
                access_token: name_digest(keys, Kind::AccessToken, &r.access_token),
                links: None,
                ..r.clone()
            },
        });
    }
    (out.families, out.retired) = digested_rotations(keys, all);
    for (code, d) in &all.codes {
        let row = keys.digest(Kind::Code, code.as_bytes()).bytes;
        let mut sealed = d.clone();
        sealed.api_key = keys.seal(CODE_API_KEY, &row, d.api_key.as_bytes())?;
        sealed.extra = seal_code_extra(keys, &row, d)?;
        out.codes.push((hex(&row), sealed));
    }
    for p in &all.pending {
        let row = keys.digest(Kind::PendingState, p.state.as_bytes()).bytes;
        out.pending.push(PendingRow {
            state: hex(&row),
            data: keys.seal(PENDING_DATA, &row, p.data.as_bytes())?,
            expires_at: p.expires_at,
        });
    }
    Ok(out)
}

/// A code's extra (issue 20) sealed as the sealed store seals it, bound to its row.
fn seal_code_extra(keys: &Keyring, row: &[u8], d: &AuthorizationCode) -> Result<Option<String>> {
    d.extra
        .as_deref()
        .map(|e| keys.seal(CODE_EXTRA, row, e.as_bytes()))
        .transpose()
}

/// Sealed rows opened: tokens under their strings; what only a digest names (codes' and
/// states' keys, families, tokens rotated away, a refresh token whose access token is gone)
/// keeps its digest. Any value that does not open, or a row whose links name another
/// token, is an error: nothing is converted.
fn open_all(keys: &Keyring, all: &All) -> Result<All> {
    let mut out = All {
        clients: all.clients.clone(),
        families: all.families.clone(),
        retired: all.retired.clone(),
        ..All::default()
    };
    // An access row's digest: its token's and refresh token's strings.
    let mut strings: HashMap<&str, (String, String)> = HashMap::with_capacity(all.access.len());
    for TokenRow {
        token: row,
        access: a,
    } in &all.access
    {
        let (access, refresh) = open_links(keys, row, a.links.as_deref())?;
        let refresh_row = a.refresh_token.as_deref();
        if !digest_of(keys, Kind::AccessToken, &access, row)
            || refresh_row.is_some() == refresh.is_empty()
            || refresh_row.is_some_and(|r| !digest_of(keys, Kind::RefreshToken, &refresh, r))
        {
            return Err(super::cannot(
                "an access token's sealed links (access_tokens.links) name other tokens than \
                 its row: the rows were altered",
            ));
        }
        out.access.push(TokenRow {
            token: access.clone(),
            access: AccessToken {
                api_key: open_api_key(keys, a.user_id.as_deref(), &a.client_id, &a.api_key)?,
                refresh_token: refresh_row.map(|_| refresh.clone()),
                links: None,
                extra: a
                    .extra
                    .as_deref()
                    .map(|e| {
                        let ad = grant_ad(a.user_id.as_deref(), &a.client_id);
                        open_text(keys, ACCESS_EXTRA, &ad, e)
                    })
                    .transpose()?,
                ..a.clone()
            },
        });
        strings.insert(row, (access, refresh));
    }
    for RefreshRow {
        refresh_token: row,
        refresh: r,
    } in &all.refresh
    {
        match strings.get(r.access_token.as_str()) {
            Some((access, refresh))
                if !refresh.is_empty() && digest_of(keys, Kind::RefreshToken, refresh, row) =>
            {
                out.refresh.push(RefreshRow {
                    refresh_token: refresh.clone(),
                    refresh: RefreshToken {
                        access_token: access.clone(),
                        ..r.clone()
                    },
                });
            }
            // Its access token is gone (or names another refresh token): never usable.
            _ => out.refresh.push(RefreshRow {
                refresh_token: row.clone(),
                refresh: r.clone(),
            }),
        }
    }
    for (row, d) in &all.codes {
        let mut opened = d.clone();
        opened.api_key = open_text(keys, CODE_API_KEY, &unhex(row)?, &d.api_key)?;
        opened.extra = d
            .extra
            .as_deref()
            .map(|e| open_text(keys, CODE_EXTRA, &unhex(row)?, e))
            .transpose()?;
        out.codes.push((row.clone(), opened));
    }
    for p in &all.pending {
        out.pending.push(PendingRow {
            data: open_text(keys, PENDING_DATA, &unhex(&p.state)?, &p.data)?,
            ..p.clone()
        });
    }
    Ok(out)
}

/// What `open_all` gives back of the sealed rows `seal_all` makes of `clear`: what only a
/// digest names under its digest, an empty refresh token as none.
fn expected_open(keys: &Keyring, clear: &All) -> All {
    let refresh = |r: &str| digest_hex(keys, Kind::RefreshToken, r);
    let (families, retired) = digested_rotations(keys, clear);
    // A refresh row is usable when its access token names it back.
    let names: HashMap<&str, Option<&str>> = clear
        .access
        .iter()
        .map(|t| (t.token.as_str(), some_refresh(&t.access.refresh_token)))
        .collect();
    All {
        clients: clear.clients.clone(),
        access: clear
            .access
            .iter()
            .map(|t| TokenRow {
                token: t.token.clone(),
                access: AccessToken {
                    refresh_token: some_refresh(&t.access.refresh_token).map(str::to_owned),
                    ..t.access.clone()
                },
            })
            .collect(),
        refresh: clear
            .refresh
            .iter()
            .map(|r| {
                if names.get(r.refresh.access_token.as_str()) == Some(&Some(&r.refresh_token)) {
                    r.clone()
                } else {
                    RefreshRow {
                        refresh_token: refresh(&r.refresh_token),
                        refresh: RefreshToken {
                            access_token: digest_hex(
                                keys,
                                Kind::AccessToken,
                                &r.refresh.access_token,
                            ),
                            ..r.refresh.clone()
                        },
                    }
                }
            })
            .collect(),
        families,
        retired,
        codes: clear
            .codes
            .iter()
            .map(|(c, d)| (digest_hex(keys, Kind::Code, c), d.clone()))
            .collect(),
        pending: clear
            .pending
            .iter()
            .map(|p| PendingRow {
                state: digest_hex(keys, Kind::PendingState, &p.state),
                ..p.clone()
            })
            .collect(),
    }
}

/// The clear rows `decrypt` writes of `opened` (`open_all` of `sealed`): codes and pending
/// authorizations dropped, refresh tokens that kept their digest dropped, families under
/// their live refresh token's string.
fn decrypted(mut opened: All, sealed: &All, out: &mut Converted) -> All {
    out.dropped_codes = opened.codes.len() as u64;
    out.dropped_pending = opened.pending.len() as u64;
    opened.codes.clear();
    opened.pending.clear();
    // `open_all` gives one refresh row for each, in order: those it could not open kept
    // their key.
    let mut names: HashMap<&str, String> = HashMap::with_capacity(sealed.refresh.len());
    let mut kept = Vec::with_capacity(sealed.refresh.len());
    for (s, o) in sealed
        .refresh
        .iter()
        .zip(std::mem::take(&mut opened.refresh))
    {
        if s.refresh_token == o.refresh_token {
            out.dropped_refresh += 1;
        } else {
            names.insert(s.refresh_token.as_str(), o.refresh_token.clone());
            kept.push(o);
        }
    }
    opened.refresh = kept;
    for (r, _) in &mut opened.families {
        if let Some(clear) = names.get(r.as_str()) {
            *r = clear.clone();
        }
    }
    opened
}

/// What a store that keeps its tokens in clear under a keyring (the memory store:
/// `TokenStore::seals_tokens`) writes in place of a name it was given only as a digest (a
/// copy from a sealed store: tokens rotated away, families, a refresh token whose access
/// token is gone): the digest's hex after this prefix, which no token a server issues
/// starts with. What leaves the store gives it back as the digest it was (`name_digest`),
/// and a rotation's refresh token not found in clear is looked for under it
/// (`Sealed::rotate_refresh_token`), so a replay of a token rotated away before the copy is
/// still caught.
pub const DIGEST_NAME: &str = "\u{0}digest:";

/// `digest` (a digest's hex) as a name a clear store keeps (`DIGEST_NAME`).
pub fn digest_name(digest: &str) -> String {
    format!("{DIGEST_NAME}{digest}")
}

/// The hex of `name`'s keyed digest, as a sealed store names it: a name that is a digest
/// already (`DIGEST_NAME`) is that digest.
fn name_digest(keys: &Keyring, kind: Kind, name: &str) -> String {
    match name.strip_prefix(DIGEST_NAME) {
        Some(digest) => digest.to_owned(),
        None => digest_hex(keys, kind, name),
    }
}

/// One batch of rows of a store that keeps its tokens in clear under `keys` (the memory
/// store), as a sealed store keeps them (`seal_all`, what `encrypt` writes): what leaves it
/// (a backup, a copy), in as many batches. Codes and pending authorizations are sealed in it
/// already: as they are, as clients.
pub fn seal_rows(keys: &Keyring, rows: Rows) -> Result<Vec<Rows>> {
    if !is_token_rows(&rows) {
        return Ok(vec![rows]);
    }
    let mut all = All::default();
    all.rows(rows)?;
    Ok(seal_all(keys, &all)?
        .into_rows()
        .into_iter()
        .filter(|r| !r.is_empty())
        .collect())
}

/// Whether `rows` are of a kind a store keeps in clear under a keyring, if it does
/// (`TokenStore::seals_tokens`): access and refresh tokens, families, tokens rotated away.
fn is_token_rows(rows: &Rows) -> bool {
    !matches!(
        rows,
        Rows::Clients(_) | Rows::AuthorizationCodes(_) | Rows::PendingAuthorizations(_)
    )
}

/// A copy's sealed token rows gathered for a store that keeps its tokens in clear under the
/// keyring (the memory store), opened once all are there (a refresh token is opened from
/// its access token's links, which may come in another batch); codes and pending
/// authorizations are not taken (the store keeps them sealed, as they come).
#[derive(Default)]
pub struct Opening(All);

impl Opening {
    /// Keeps `rows` if they are token rows, to be opened by `open`; whether it did.
    pub fn take(&mut self, rows: &Rows) -> Result<bool> {
        if !is_token_rows(rows) {
            return Ok(false);
        }
        self.0.rows(rows.clone())?;
        Ok(true)
    }

    /// The rows kept so far, opened (`open_all`: access and refresh tokens under their
    /// strings, families under their refresh token's), in the order a store takes them; what
    /// only a digest names stays one, under `DIGEST_NAME` (nothing dropped: a copy's counts
    /// check out). A value that does not open, or links naming other tokens, is an error.
    pub fn open(&mut self, keys: &Keyring) -> Result<Vec<Rows>> {
        let sealed = std::mem::take(&mut self.0);
        let opened = open_all(keys, &sealed)?;
        let mut names: HashMap<&str, String> = HashMap::with_capacity(sealed.refresh.len());
        let mut refresh = Vec::with_capacity(sealed.refresh.len());
        for (s, o) in sealed.refresh.iter().zip(opened.refresh) {
            if s.refresh_token == o.refresh_token {
                refresh.push(RefreshRow {
                    refresh_token: digest_name(&s.refresh_token),
                    refresh: RefreshToken {
                        access_token: digest_name(&s.refresh.access_token),
                        ..o.refresh
                    },
                });
            } else {
                names.insert(s.refresh_token.as_str(), o.refresh_token.clone());
                refresh.push(o);
            }
        }
        let renamed = |r: &str| names.get(r).cloned().unwrap_or_else(|| digest_name(r));
        let (families, retired) = renamed_rotations(&sealed, renamed, digest_name);
        let all = All {
            access: opened.access,
            refresh,
            families,
            retired,
            ..All::default()
        };
        Ok(all
            .into_rows()
            .into_iter()
            .filter(|r| !r.is_empty())
            .collect())
    }
}

/// `rekey`: sealed rows re-sealed under the active key, and what `open_all` gives of them.
/// Access and refresh tokens go under their active digests, their values sealed anew, and
/// families follow their refresh tokens; codes' and pending authorizations' values are
/// sealed anew under their digests, which stay those of the key that made them (their
/// strings were never stored), as do tokens rotated away: those are found while that key
/// is in the keyring (codes and pending logins expire within minutes).
fn resealed(keys: &Keyring, sealed: &All) -> Result<(All, All)> {
    let mut clear = open_all(keys, sealed)?;
    // The refresh rows `open_all` opened (the others kept their key: as they are).
    let opened: Vec<bool> = sealed
        .refresh
        .iter()
        .zip(&clear.refresh)
        .map(|(s, o)| s.refresh_token != o.refresh_token)
        .collect();
    let tokens = All {
        access: clear.access.clone(),
        refresh: clear
            .refresh
            .iter()
            .zip(&opened)
            .filter(|(_, o)| **o)
            .map(|(r, _)| r.clone())
            .collect(),
        ..All::default()
    };
    let tokens = seal_all(keys, &tokens)?;
    let mut names: HashMap<&str, String> = HashMap::new();
    let mut refresh = tokens.refresh.into_iter();
    let mut out = All {
        clients: sealed.clients.clone(),
        access: tokens.access,
        retired: sealed.retired.clone(),
        ..All::default()
    };
    for (s, o) in sealed.refresh.iter().zip(&opened) {
        match refresh.next().filter(|_| *o) {
            Some(r) => {
                names.insert(s.refresh_token.as_str(), r.refresh_token.clone());
                out.refresh.push(r);
            }
            None => out.refresh.push(s.clone()),
        }
    }
    let renamed = |r: &String| names.get(r.as_str()).cloned().unwrap_or_else(|| r.clone());
    out.families = sealed
        .families
        .iter()
        .map(|(r, f)| (renamed(r), f.clone()))
        .collect();
    for ((row, _), (_, d)) in sealed.codes.iter().zip(&clear.codes) {
        let mut c = d.clone();
        c.api_key = keys.seal(CODE_API_KEY, &unhex(row)?, d.api_key.as_bytes())?;
        c.extra = seal_code_extra(keys, &unhex(row)?, d)?;
        out.codes.push((row.clone(), c));
    }
    for (p, o) in sealed.pending.iter().zip(&clear.pending) {
        out.pending.push(PendingRow {
            data: keys.seal(PENDING_DATA, &unhex(&p.state)?, o.data.as_bytes())?,
            ..p.clone()
        });
    }
    for (r, _) in &mut clear.families {
        *r = renamed(r);
    }
    Ok((out, clear))
}

/// The mark with the keyring's ids not yet in it added (as the sealed layer adds them).
fn merged_mark(keys: &Keyring, mark: &str) -> String {
    let mut all = parse_mark(mark).map(|(_, c)| c).unwrap_or_default();
    for (id, check) in key_checks(keys) {
        if !all.iter().any(|(i, _)| *i == id) {
            all.push((id, check));
        }
    }
    mark_of(MARK_V2, &all)
}

/// The store's mark, checked against the keys as the sealed layer checks it: a `sealed v2`
/// mark sharing a key id with the keyring under the same key.
fn check_mark(keys: &Keyring, mark: &str) -> Result<()> {
    let (version, recorded) = parse_mark(mark).ok_or_else(|| {
        mismatch(
            "this token store's encryption mark is not one this version of \
             native-token-storage reads (written by a newer version?)"
                .into(),
        )
    })?;
    if version != MARK_V2 {
        return Err(mismatch(
            "this token store was sealed by an earlier version of native-token-storage \
             (tokens in clear, codes sealed): decrypt converts only stores sealed by this \
             version"
                .into(),
        ));
    }
    let mut known = 0;
    for (id, check) in keys.key_checks() {
        match recorded.iter().find(|(i, _)| i == id) {
            Some((_, c)) if *c == check => known += 1,
            Some(_) => {
                return Err(StoreError::CannotDecrypt(format!(
                    "the key of id {id} in the keyring is not the key this token store was \
                     sealed with under that id: nothing was converted"
                )))
            }
            None => {}
        }
    }
    if known == 0 {
        return Err(StoreError::CannotDecrypt(format!(
            "the keyring (key ids {}) holds none of the keys this token store was sealed with \
             (key ids {}): nothing was converted",
            keys.ids().collect::<Vec<_>>().join(", "),
            super::ids(&recorded)
        )));
    }
    Ok(())
}

fn did_not_check_out() -> StoreError {
    StoreError::Internal(
        "the converted rows, read back, do not match the rows converted: nothing was \
         converted (the transaction was rolled back)",
    )
}

/// Converts `store` (a backend, not the sealed layer) in one transaction: see the module's
/// comment. `fail_verify`: a test's way to see a failed check roll everything back.
pub fn convert(
    store: &dyn TokenStore,
    direction: Direction,
    keys: &Keyring,
    fail_verify: bool,
) -> Result<Converted> {
    let mut report = Converted::default();
    store.import_all(&mut |tx| {
        tx.lock_for_conversion(direction == Direction::Decrypt)?;
        let mark = tx.seal_mark()?;
        let before = All::read(tx)?;
        let (expected, check) = match direction {
            Direction::Encrypt => {
                if mark.is_some() {
                    return Err(mismatch(
                        "this token store is already sealed (encrypted at rest): nothing was \
                         converted (rekey re-seals it under another key)"
                            .into(),
                    ));
                }
                let sealed = seal_all(keys, &before)?;
                sealed.write(tx)?;
                tx.set_seal_mark(Some(&mark_of(MARK_V2, &key_checks(keys))))?;
                (expected_open(keys, &before), Direction::Encrypt)
            }
            Direction::Decrypt | Direction::Rekey => {
                let Some(mark) = mark else {
                    return Err(mismatch(
                        "this token store is not sealed (it is in clear): nothing was \
                         converted (encrypt seals it)"
                            .into(),
                    ));
                };
                check_mark(keys, &mark)?;
                if direction == Direction::Rekey {
                    let (sealed, clear) = resealed(keys, &before)?;
                    sealed.write(tx)?;
                    tx.set_seal_mark(Some(&merged_mark(keys, &mark)))?;
                    (clear, Direction::Encrypt)
                } else {
                    let clear = decrypted(open_all(keys, &before)?, &before, &mut report);
                    // The mark first: a sealed store refuses rows in clear (SQLite's triggers).
                    tx.set_seal_mark(None)?;
                    clear.clone().write(tx)?;
                    (clear, Direction::Decrypt)
                }
            }
        };
        // Read back in the same transaction: every row opens (encrypt) and equals what was
        // meant, and each kind holds as many rows.
        let after = All::read(tx)?;
        let counts = tx.counts()?;
        let mut expected = expected.sorted();
        if fail_verify {
            expected.clients.clear();
            expected.access.clear();
        }
        let got = match check {
            Direction::Decrypt => after,
            _ => {
                let opened = open_all(keys, &after)?;
                // Every token under its active digest (what encrypt and rekey write).
                let active = |kind, value: &str, row: &str| digest_hex(keys, kind, value) == row;
                let tokens = after.access.iter().zip(&opened.access);
                if !tokens
                    .into_iter()
                    .all(|(s, o)| active(Kind::AccessToken, &o.token, &s.token))
                {
                    return Err(did_not_check_out());
                }
                opened
            }
        }
        .sorted();
        if got != expected || counts != expected.counts() {
            return Err(did_not_check_out());
        }
        if tx.seal_mark()?.is_some() != (direction != Direction::Decrypt) {
            return Err(did_not_check_out());
        }
        report.counts = counts;
        Ok(counts)
    })?;
    Ok(report)
}

fn key_checks(keys: &Keyring) -> Vec<(String, String)> {
    keys.key_checks()
        .into_iter()
        .map(|(id, c)| (id.to_owned(), c))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{RotateRequest, Rotation};
    use crate::store::backends::TestStore;
    use crate::store::sealed::Sealed;
    use crate::store::{SqliteStore, SyncMode};

    use crate::store::tests_sealed::{code_data as code, keyring, API_KEY, NOW};

    /// Every row of the store, as stored.
    fn rows(store: &dyn TokenStore) -> All {
        let mut all = All::default();
        store.export_rows(100, &mut all).unwrap();
        all
    }

    fn token(n: usize, refresh: bool) -> NewAccessToken {
        NewAccessToken {
            token: format!("at-secret-{n}"),
            refresh_token: refresh.then(|| format!("rt-secret-{n}")),
            api_key: format!("sk-secret-{n}"),
            user_id: (!n.is_multiple_of(3)).then(|| format!("user-{}", n % 5)),
            client_id: "client".into(),
            scopes: vec!["read".into()],
            expires_at: Some(NOW + 3_600_000),
            // Every other token with grant fields (issue 20), its extra a secret.
            resource: n.is_multiple_of(2).then(|| "https://mcp.example/".into()),
            extra: n
                .is_multiple_of(2)
                .then(|| format!("{{\"apiKey\":\"sk-extra-secret-{n}\"}}")),
            links: None,
        }
    }

    fn rotate(store: &dyn TokenStore, old: &str, new: usize) -> Rotation {
        let request = RotateRequest {
            refresh_token: old.into(),
            new_access_token: format!("at-secret-{new}"),
            new_refresh_token: format!("rt-secret-{new}"),
            expires_at: Some(NOW + 3_600_000),
            grace_ms: 0,
            links: None,
        };
        store.rotate_refresh_token(&request, NOW).expect("rotate")
    }

    /// A code with grant fields (issue 20), its extra a secret.
    fn code_with_grant() -> AuthorizationCode {
        AuthorizationCode {
            resource: Some("https://mcp.example/".into()),
            extra: Some("{\"apiKey\":\"sk-code-extra-secret\"}".into()),
            ..code()
        }
    }

    /// A store of the test's backend (SQLite, PostgreSQL), and what keeps it alive
    /// (dropped after it).
    struct Fixture {
        store: Arc<dyn TokenStore>,
        _keep: Box<dyn std::any::Any>,
    }

    /// The fresh store in clear with tokens (one rotated), codes and a pending authorization.
    fn clear_store(fresh: TestStore) -> Fixture {
        let store: Arc<dyn TokenStore> = Arc::from(fresh.store);
        let clear = Sealed::new(store.clone(), None);
        clear.open().unwrap();
        for n in 0..20 {
            clear
                .store_access_token(&token(n, !n.is_multiple_of(4)), NOW)
                .unwrap();
        }
        assert!(matches!(
            rotate(&clear, "rt-secret-1", 100),
            Rotation::Rotated(_)
        ));
        clear
            .store_authorization_code("code-secret", &code())
            .unwrap();
        clear
            .store_authorization_code("code-2-secret", &code_with_grant())
            .unwrap();
        clear
            .store_pending_authorization(
                "state-secret",
                "{\"v\":\"verifier-secret\"}",
                NOW + 1000,
                NOW,
            )
            .unwrap();
        Fixture {
            store,
            _keep: fresh._keep,
        }
    }

    fn encrypt_then_decrypt_keeps_every_token(fresh: TestStore) {
        let fixture = clear_store(fresh);
        let store = fixture.store.clone();
        let keys = keyring(&[("k1", 1)]);
        let report = convert(&*store, Direction::Encrypt, &keys, false).expect("encrypt");
        assert_eq!(report.counts.access_tokens, 20);
        assert!(store.seal_mark().unwrap().0.is_some());

        let sealed = Sealed::new(store.clone(), Some(keyring(&[("k1", 1)])));
        sealed.open().unwrap();
        for n in (0..20).filter(|n| *n != 1) {
            let t = sealed
                .get_access_token(&format!("at-secret-{n}"), NOW)
                .unwrap();
            let t = t.expect("a token");
            let want = token(n, !n.is_multiple_of(4));
            assert_eq!(t.api_key, want.api_key);
            assert_eq!((t.resource, t.extra), (want.resource, want.extra));
            assert_eq!(t.refresh_token, want.refresh_token);
            if let Some(rt) = &want.refresh_token {
                let r = sealed.get_refresh_token(rt, NOW).unwrap().expect("refresh");
                assert_eq!(r.access_token, want.token);
            }
        }
        // The rotated-away token is a replay; the new pair rotates again.
        assert!(matches!(
            rotate(&sealed, "rt-secret-1", 101),
            Rotation::Reused { .. }
        ));
        let code = sealed.take_authorization_code("code-secret", NOW).unwrap();
        assert_eq!(code.expect("the code").api_key, API_KEY);
        assert_eq!(
            sealed
                .take_pending_authorization("state-secret", NOW)
                .unwrap()
                .as_deref(),
            Some("{\"v\":\"verifier-secret\"}")
        );
        // Nothing of the secrets in the rows.
        let text = format!("{:?}", rows(&*store));
        assert!(!text.contains("secret"), "{text}");
        let code = sealed
            .take_authorization_code("code-2-secret", NOW)
            .unwrap();
        assert_eq!(code, Some(code_with_grant()));
        sealed.close().unwrap();

        convert(&*store, Direction::Decrypt, &keys, false).expect("decrypt");
        assert_eq!(store.seal_mark().unwrap().0, None);
        let clear = Sealed::new(store.clone(), None);
        clear.open().unwrap();
        let t = clear
            .get_access_token("at-secret-2", NOW)
            .unwrap()
            .expect("token");
        assert_eq!(t.api_key, "sk-secret-2");
        let r = clear
            .get_refresh_token("rt-secret-2", NOW)
            .unwrap()
            .expect("refresh");
        assert_eq!(r.access_token, "at-secret-2");
        assert!(matches!(
            rotate(&clear, "rt-secret-2", 102),
            Rotation::Rotated(_)
        ));
    }

    /// A process without keys that checked the store in clear before `encrypt` sealed it:
    /// its next write is refused by the store itself (SQLite's or PostgreSQL's triggers:
    /// ENCRYPTION_MISMATCH, nothing written), its reads find nothing; `decrypt` takes the
    /// refusal away with the mark.
    fn a_process_without_keys_cannot_write_in_clear_into_a_store_sealed_since(fresh: TestStore) {
        let keys = keyring(&[("k1", 1)]);
        let fixture = clear_store(fresh);
        let store = fixture.store.clone();
        let keyless = Sealed::new(store.clone(), None);
        keyless.open().unwrap();
        convert(&*store, Direction::Encrypt, &keys, false).expect("encrypt");
        let before = rows(&*store);
        let mut t = token(50, true);
        let refused = [
            keyless.store_access_token(&t, NOW),
            keyless.store_access_tokens(std::slice::from_ref(&t), NOW),
            keyless.store_authorization_code("code-late-secret", &code()),
            keyless.store_pending_authorization("state-late", "{}", NOW + 1000, NOW),
        ];
        for r in refused {
            let e = r.expect_err("refused");
            assert_eq!(e.code(), "ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH", "{e}");
            assert!(!e.to_string().contains("secret"), "{e}");
        }
        assert_eq!(rows(&*store), before, "nothing written");
        assert_eq!(keyless.get_access_token("at-secret-2", NOW).unwrap(), None);
        assert_eq!(
            keyless.take_authorization_code("code-secret", NOW).unwrap(),
            None
        );
        let sealed = Sealed::new(store.clone(), Some(keys.clone()));
        assert!(sealed
            .get_access_token("at-secret-2", NOW)
            .unwrap()
            .is_some());
        // The sealed store's own writes go on.
        t.token = "at-sealed-51".into();
        t.refresh_token = Some("rt-sealed-51".into());
        sealed.store_access_token(&t, NOW).expect("sealed");
        sealed
            .store_pending_authorization("state-sealed", "{}", NOW + 1000, NOW)
            .expect("sealed");
        assert!(matches!(
            rotate(&sealed, "rt-sealed-51", 52),
            Rotation::Rotated(_)
        ));

        convert(&*store, Direction::Decrypt, &keys, false).expect("decrypt");
        keyless
            .store_access_token(&token(50, true), NOW)
            .expect("in clear again");
    }

    /// A file sealed by a version before the refusal of clear rows (no triggers) gets it
    /// when a store first checks it.
    #[test]
    fn a_file_sealed_before_gets_the_refusal_at_its_check() {
        let dir = tempfile::tempdir().unwrap();
        let keys = keyring(&[("k1", 1)]);
        let path = dir.path().join("t.db");
        let sqlite = || -> Arc<dyn TokenStore> {
            Arc::new(SqliteStore::new(path.clone(), SyncMode::Normal, 5000))
        };
        let first = Sealed::new(sqlite(), Some(keys.clone()));
        first.store_access_token(&token(1, true), NOW).unwrap();
        first.close().unwrap();
        let triggers = || {
            let c = rusqlite::Connection::open(&path).unwrap();
            let n: i64 = c
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name LIKE 'nts_sealed_%'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            (c, n)
        };
        let (c, n) = triggers();
        assert_eq!(n, 3);
        c.execute_batch(
            "DROP TRIGGER nts_sealed_access_tokens; DROP TRIGGER nts_sealed_authorization_codes;
             DROP TRIGGER nts_sealed_pending;",
        )
        .unwrap();
        drop(c);
        let again = Sealed::new(sqlite(), Some(keys.clone()));
        again.open().unwrap();
        assert_eq!(triggers().1, 3, "given back at the check");
        assert!(again
            .get_access_token("at-secret-1", NOW)
            .unwrap()
            .is_some());
    }

    /// What the refusal costs a sealed SQLite store's write, A/B in one process: tokens
    /// stored through two sealed files, one with the triggers dropped. Timing only:
    /// `cargo test --release --lib clear_rows_refused_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn clear_rows_refused_cost() {
        use std::time::Instant;
        let dir = tempfile::tempdir().unwrap();
        let keys = keyring(&[("k1", 1)]);
        let open = |name: &str| {
            let inner: Arc<dyn TokenStore> = Arc::new(SqliteStore::new(
                dir.path().join(name),
                SyncMode::Normal,
                5000,
            ));
            let s = Sealed::new(inner, Some(keys.clone()));
            s.open().unwrap();
            s
        };
        let (with, without) = (open("with.db"), open("without.db"));
        let c = rusqlite::Connection::open(dir.path().join("without.db")).unwrap();
        c.execute_batch(
            "DROP TRIGGER nts_sealed_access_tokens; DROP TRIGGER nts_sealed_authorization_codes;
             DROP TRIGGER nts_sealed_pending;",
        )
        .unwrap();
        drop(c);
        let n = 2000;
        let mut best = [f64::MAX; 2];
        for round in 0..7 {
            for (i, s) in [&with, &without].into_iter().enumerate() {
                let start = Instant::now();
                for k in 0..n {
                    let mut t = token(k, true);
                    t.token = format!("at-{round}-{k}");
                    t.refresh_token = Some(format!("rt-{round}-{k}"));
                    s.store_access_token(&t, NOW).unwrap();
                }
                best[i] = best[i].min(start.elapsed().as_nanos() as f64 / n as f64);
            }
        }
        eprintln!(
            "storeAccessToken on a sealed SQLite file: with the refusal of clear rows {:.0} ns, without {:.0} ns",
            best[0], best[1]
        );
    }

    fn refusals_and_a_failed_check_leave_the_store_as_it_was(fresh: TestStore) {
        let fixture = clear_store(fresh);
        let store = fixture.store.clone();
        let keys = keyring(&[("k1", 1)]);
        let before = rows(&*store);
        let err = convert(&*store, Direction::Encrypt, &keys, true).expect_err("fails");
        assert_eq!(err.code(), "ERR_TOKEN_STORAGE_INTERNAL");
        let err = convert(&*store, Direction::Decrypt, &keys, false).expect_err("clear");
        assert_eq!(err.code(), "ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH");
        assert_eq!(before, rows(&*store));
        assert_eq!(store.seal_mark().unwrap().0, None);

        convert(&*store, Direction::Encrypt, &keys, false).expect("encrypt");
        let sealed = rows(&*store);
        let err = convert(&*store, Direction::Encrypt, &keys, false).expect_err("sealed");
        assert_eq!(err.code(), "ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH");
        for wrong in [keyring(&[("k2", 2)]), keyring(&[("k1", 2)])] {
            let err = convert(&*store, Direction::Decrypt, &wrong, false).expect_err("wrong");
            assert_eq!(err.code(), "ERR_TOKEN_STORAGE_CANNOT_DECRYPT");
        }
        let err = convert(&*store, Direction::Decrypt, &keys, true).expect_err("fails");
        assert_eq!(err.code(), "ERR_TOKEN_STORAGE_INTERNAL");
        assert_eq!(sealed, rows(&*store));
        assert!(store.seal_mark().unwrap().0.is_some());
    }

    fn rekey_lets_an_old_key_be_retired(fresh: TestStore) {
        let fixture = clear_store(fresh);
        let store = fixture.store.clone();
        let err = convert(&*store, Direction::Rekey, &keyring(&[("k1", 1)]), false);
        assert_eq!(
            err.expect_err("clear").code(),
            "ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH"
        );
        convert(&*store, Direction::Encrypt, &keyring(&[("k1", 1)]), false).expect("encrypt");
        let both = keyring(&[("k2", 2), ("k1", 1)]);
        let err = convert(&*store, Direction::Rekey, &both, true).expect_err("fails");
        assert_eq!(err.code(), "ERR_TOKEN_STORAGE_INTERNAL");
        convert(&*store, Direction::Rekey, &both, false).expect("rekey");
        let mark = store.seal_mark().unwrap().0.expect("sealed");
        assert!(mark.contains("k1=") && mark.contains("k2="), "{mark}");

        // The code and pending login keep their k1 digests (found with both keys), their
        // values sealed under k2.
        let sealed = Sealed::new(store.clone(), Some(both.clone()));
        sealed.open().unwrap();
        let code = sealed.take_authorization_code("code-secret", NOW).unwrap();
        assert_eq!(code.expect("the code").api_key, API_KEY);
        sealed.close().unwrap();

        // Tokens: with k2 alone.
        let k2 = keyring(&[("k2", 2)]);
        let sealed = Sealed::new(store.clone(), Some(k2.clone()));
        sealed.open().unwrap();
        for n in [2usize, 3, 4] {
            let t = sealed
                .get_access_token(&format!("at-secret-{n}"), NOW)
                .unwrap();
            assert_eq!(t.expect("token").api_key, format!("sk-secret-{n}"));
        }
        let r = sealed.get_refresh_token("rt-secret-2", NOW).unwrap();
        assert_eq!(r.expect("refresh").access_token, "at-secret-2");
        assert!(matches!(
            rotate(&sealed, "rt-secret-100", 103),
            Rotation::Rotated(_)
        ));
        assert!(matches!(
            rotate(&sealed, "rt-secret-2", 104),
            Rotation::Rotated(_)
        ));
        // Nothing sealed under k1 is left among the tokens: k1's keyring finds none.
        let k1 = Sealed::new(store.clone(), Some(keyring(&[("k1", 1)])));
        k1.open().unwrap();
        assert_eq!(k1.get_access_token("at-secret-3", NOW).unwrap(), None);
    }

    /// The memory store goes with its process: nothing to convert, refused.
    #[test]
    fn the_memory_store_is_refused() {
        use crate::store::backends::Backend;
        let fresh = crate::store::MemorySettings::test_store().expect("a memory store");
        let err = convert(
            &*fresh.store,
            Direction::Encrypt,
            &keyring(&[("k1", 1)]),
            false,
        );
        assert_eq!(err.expect_err("refused").code(), "ERR_TOKEN_STORAGE_CONFIG");
    }

    /// Each case on each backend that converts (PostgreSQL: skipped without a test server).
    macro_rules! on_each_backend {
        ($($case:ident),* $(,)?) => {
            mod sqlite {
                use crate::store::backends::Backend;
                type Settings = crate::store::SqliteSettings;
                $(#[test] fn $case() { super::$case(Settings::test_store().expect("a SQLite file")) })*
            }
            #[cfg(feature = "postgres")]
            mod postgres {
                use crate::store::backends::Backend;
                type Settings = crate::store::PostgresSettings;
                $(#[test] fn $case() { if let Some(f) = Settings::test_store() { super::$case(f) } })*
            }
        };
    }

    on_each_backend!(
        a_process_without_keys_cannot_write_in_clear_into_a_store_sealed_since,
        encrypt_then_decrypt_keeps_every_token,
        refusals_and_a_failed_check_leave_the_store_as_it_was,
        rekey_lets_an_old_key_be_retired,
    );
}
