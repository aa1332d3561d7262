//! The Redis store's rows as they are (`snapshot::RowStore`): backups and copies.
//!
//! The export is paged (`export_paged`): one script (`EXPORT_PAGE`) per page of at most
//! `PAGE` entries of one index (`clients`, `exp`, `retired`, `codes`, `pend`), each entry's
//! record read in the same script (a token with its refresh token and family: never torn),
//! handed to the sink as it comes. Redis runs each script alone, so no page holds the
//! server for long (one script for the whole store held it about a second per 100,000
//! tokens, every other client waiting), and no more than a page of rows is held in memory
//! (with 16 bytes per row handed over: `Seen`).
//!
//! It is not a point-in-time snapshot across pages. A cursor (the score and member of the
//! last entry read) walks each index in Redis's own order, so an entry there with the same
//! score from the first page to the last is read exactly once: every token acknowledged
//! before the export began and not revoked or rotated during it is in it (issue 19's bound
//! for a backup under load). An entry whose score grew past the cursor meanwhile (a retired
//! refresh token the cleanup put back at the end of its queue, a token stored again with a
//! later expiry) is read again and handed over once (`Seen`); one added, removed or moved
//! back meanwhile may or may not be in it. The mark of encryption at rest is read first
//! and checked on every page: a store sealed, rekeyed or decrypted during the export fails
//! it, never rows under two marks. For one instant of the whole store: stop the writers,
//! or Redis's own `BGSAVE` or a replica.
//!
//! An import is row by row (scripts), not one transaction: Redis has none that spans calls,
//! so a copy into Redis that fails half-way leaves what it wrote (run it again with
//! overwrite), as a copy into the memory store does.

use super::conn::Args;
use super::resp::Reply;
use super::rows::{access, client, code, count, hash, packed, score};
use super::scripts as s;
use super::RedisStore;
use crate::error::{Result, StoreError};
use crate::model::RefreshToken;
use crate::store::snapshot::{
    batches, import_directly, Counts, Import, PendingRow, RefreshRow, RetiredRow, RowStore, Rows, Sink,
    TokenRow,
};

impl RedisStore {
    /// Every key under the store's prefix but `meta` (the mark of encryption at rest),
    /// removed a batch at a time (`SCAN`, `UNLINK`).
    pub(super) fn remove_all_keys(&self, keep_meta: bool) -> Result<()> {
        let pattern = format!("{}*", glob_escape(&self.settings.prefix));
        let meta = self.key("meta", "");
        let mut cursor = "0".to_string();
        loop {
            let reply = self.call(true, |c| {
                c.command(&[
                    b"SCAN",
                    cursor.as_bytes(),
                    b"MATCH",
                    pattern.as_bytes(),
                    b"COUNT",
                    b"1000",
                ])
            })?;
            let mut items = reply.items().into_iter();
            let next = items.next().and_then(Reply::text).unwrap_or_default();
            let keys: Vec<Vec<u8>> = items
                .next()
                .map(Reply::items)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|k| match k {
                    Reply::Bulk(b) if !(keep_meta && b == meta) => Some(b),
                    _ => None,
                })
                .collect();
            if !keys.is_empty() {
                let mut args: Vec<&[u8]> = Vec::with_capacity(keys.len() + 1);
                args.push(b"UNLINK");
                args.extend(keys.iter().map(Vec::as_slice));
                let done = self.call(false, |c| c.command(&args));
                self.written();
                done?;
            }
            if next == "0" || next.is_empty() {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Every row, read a page of one index at a time (`EXPORT_PAGE`, `page` entries per
    /// script; see the module's comment), handed to `sink` as each page comes, in batches of
    /// at most `batch`. Returns the counts of the rows handed over.
    pub(super) fn export_paged(
        &self,
        page: usize,
        batch: usize,
        sink: &mut dyn Sink,
    ) -> Result<Counts> {
        let page = page.max(1);
        let sizes = self.script(true, &s::EXPORT_SIZES, &self.args())?.items();
        let mark = sizes.get(5).cloned().and_then(Reply::text);
        let n = |i| count(&sizes, i);
        // For the progress only: what the indexes hold now (expired entries included). A
        // token of a rotation is in a family, and its predecessor retired while the family
        // lives: at most as many family rows as retired ones.
        let estimate = Counts {
            access_tokens: n(0),
            refresh_tokens: n(0),
            authorization_codes: n(1),
            clients: n(2),
            pending_authorizations: n(3),
            refresh_families: n(4).min(n(0)),
            retired_refresh_tokens: n(4),
        };
        sink.counts(&estimate, mark.as_deref())?;
        let mut out = Handed {
            sink,
            batch: batch.max(1),
            counts: Counts::default(),
            seen: Seen::default(),
        };

        self.pages("clients", page, &mark, &mut |entries| {
            let mut rows = Vec::new();
            for (id, _, fields) in entries {
                if let Some(c) = client(&id, &hash(fields))? {
                    if out.seen.first(CLIENTS, &id) {
                        rows.push(c);
                    }
                }
            }
            out.hand(Rows::Clients(rows))
        })?;

        self.pages("exp", page, &mark, &mut |entries| {
            let (mut tokens, mut refresh, mut families) = (Vec::new(), Vec::new(), Vec::new());
            for (token, _, fields) in entries {
                let fields = hash(fields);
                let Some(a) = access(&fields)? else { continue };
                if !out.seen.first(TOKENS, &token) {
                    continue;
                }
                if let Some(r) = &a.refresh_token {
                    refresh.push(RefreshRow {
                        refresh_token: r.clone(),
                        refresh: RefreshToken {
                            user_id: a.user_id.clone(),
                            client_id: a.client_id.clone(),
                            scopes: a.scopes.clone(),
                            access_token: token.clone(),
                            created_at: a.created_at,
                            links: a.links.clone(),
                        },
                    });
                    if let Some(f) = fields.get("f") {
                        families.push((r.clone(), f.clone()));
                    }
                }
                tokens.push(TokenRow { token, access: a });
            }
            // A page's refresh tokens and families after its access tokens (a target's
            // refresh row points at its access token's).
            out.hand(Rows::AccessTokens(tokens))?;
            out.hand(Rows::RefreshTokens(refresh))?;
            out.hand(Rows::RefreshFamilies(families))
        })?;

        self.pages("retired", page, &mark, &mut |entries| {
            let mut rows = Vec::new();
            for (rt, _, fa) in entries {
                let mut fa = fa.items().into_iter();
                let (Some(family), at) = (fa.next().and_then(Reply::text), fa.next()) else {
                    continue;
                };
                if out.seen.first(RETIRED, &rt) {
                    rows.push(RetiredRow {
                        refresh_token: rt,
                        family,
                        retired_at: at.and_then(|a| a.int()).unwrap_or(0),
                    });
                }
            }
            out.hand(Rows::RetiredRefreshTokens(rows))
        })?;

        self.pages("codes", page, &mark, &mut |entries| {
            let mut rows = Vec::new();
            for (c, _, d) in entries {
                let Some(d) = d.text() else { continue };
                if out.seen.first(CODES, &c) {
                    rows.push((c, code(&d)?));
                }
            }
            out.hand(Rows::AuthorizationCodes(rows))
        })?;

        self.pages("pend", page, &mark, &mut |entries| {
            let mut rows = Vec::new();
            for (state, e, d) in entries {
                let Some(data) = d.text() else { continue };
                if out.seen.first(PENDING, &state) {
                    rows.push(PendingRow {
                        state,
                        data,
                        expires_at: score(&e).unwrap_or(i64::MAX),
                    });
                }
            }
            out.hand(Rows::PendingAuthorizations(rows))
        })?;
        Ok(out.counts)
    }

    /// Runs `each` on every page of the index (`EXPORT_PAGE`): its entries (member, score,
    /// record), in order. Every page's mark of encryption at rest is checked against `mark`,
    /// the one read before the first.
    fn pages(
        &self,
        index: &str,
        page: usize,
        mark: &Option<String>,
        each: &mut dyn FnMut(Vec<(String, String, Reply)>) -> Result<()>,
    ) -> Result<()> {
        self.walk(index, page, &mut |a| {
            let mut parts = self
                .script(true, &s::EXPORT_PAGE, &a)?
                .items()
                .into_iter();
            let items = parts.next().map(Reply::items).unwrap_or_default();
            if parts.next().and_then(Reply::text) != *mark {
                return Err(StoreError::EncryptionMismatch(
                    "the store's encryption at rest changed during the export (it was sealed, \
                     rekeyed or decrypted): the export stops; run it again"
                        .into(),
                ));
            }
            let triples = items.len() / 3;
            let mut entries = Vec::with_capacity(triples);
            let mut cursor = None;
            let mut it = items.into_iter();
            while let (Some(Reply::Bulk(m)), Some(Reply::Bulk(s)), Some(d)) =
                (it.next(), it.next(), it.next())
            {
                entries.push((lossy(&m), lossy(&s), d));
                cursor = Some((s, m));
            }
            if entries.len() != triples || it.next().is_some() {
                return Err(StoreError::Internal(
                    "an export page is not (member, score, record) triples",
                ));
            }
            each(entries)?;
            Ok((triples, cursor))
        })
    }

    /// `row_counts`, `page` entries of an index a script (`COUNT_PAGE`): not one instant of
    /// the store while it is written, as the export.
    pub(super) fn counts_paged(&self, page: usize) -> Result<Counts> {
        let tokens = self.tally(&s::COUNT_PAGE, "exp", None, page)?;
        let [codes, pending, retired] =
            ["codes", "pend", "retired"].map(|index| self.tally(&s::COUNT_PAGE, index, None, page));
        let clients = self.key("clients", "");
        let clients = self.call(true, |c| c.command(&[b"ZCARD".as_slice(), clients.as_slice()]))?;
        let n = |t: &[u64], i: usize| t.get(i).copied().unwrap_or(0);
        let (codes, pending, retired) = (codes?, pending?, retired?);
        Ok(Counts {
            access_tokens: n(&tokens, 0),
            refresh_tokens: n(&tokens, 1),
            authorization_codes: n(&codes, 0),
            clients: clients.int().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
            pending_authorizations: n(&pending, 0),
            refresh_families: n(&tokens, 2),
            retired_refresh_tokens: n(&retired, 0),
        })
    }

    /// `revoke_client`, `page` entries a script (`REVOKE_CLIENT_PAGE`), tokens then codes,
    /// so that Redis is never held for long (one script over a million tokens held it for
    /// seconds): not one transaction, as on the other stores. Every token and code of the
    /// client stored before it began is removed; one stored while it runs may stay (the
    /// next run takes it).
    pub(super) fn revoke_client_paged(&self, client_id: &str, page: usize) -> Result<u64> {
        let tokens = self.tally(&s::REVOKE_CLIENT_PAGE, "exp", Some(client_id), page)?;
        self.tally(&s::REVOKE_CLIENT_PAGE, "codes", Some(client_id), page)?;
        Ok(tokens.first().copied().unwrap_or(0))
    }

    /// Runs `script` (`COUNT_PAGE`, or `REVOKE_CLIENT_PAGE` with `client`: a write) over
    /// every page of `index`, `page` entries each; returns its counts summed (`tallied` in
    /// the scripts).
    fn tally(
        &self,
        script: &s::Script,
        index: &str,
        client: Option<&str>,
        page: usize,
    ) -> Result<Vec<u64>> {
        let mut sums: Vec<u64> = Vec::new();
        self.walk(index, page, &mut |mut a| {
            if let Some(c) = client {
                a.push(c);
            }
            let done = self.script(client.is_none(), script, &a);
            if client.is_some() {
                self.written();
            }
            let items = done?.items();
            let read = usize::try_from(count(&items, 0)).unwrap_or(usize::MAX);
            for (i, sum) in (3..items.len()).map(|i| count(&items, i)).enumerate() {
                match sums.get_mut(i) {
                    Some(s) => *s += sum,
                    None => sums.push(sum),
                }
            }
            let mut cursor = items.into_iter().skip(1);
            match (cursor.next(), cursor.next()) {
                (Some(Reply::Bulk(s)), Some(Reply::Bulk(m))) => Ok((read, Some((s, m)))),
                _ => Ok((read, None)),
            }
        })?;
        Ok(sums)
    }

    /// Walks `index` a page of `page` entries a script: `run` gets the script's first
    /// arguments (the index, the cursor and the page's size; see `page_args`) and answers
    /// how many entries it read and the cursor it ended at, the score and member of the last
    /// one. A short page is the last; the first page starts from an empty cursor.
    fn walk(
        &self,
        index: &str,
        page: usize,
        run: &mut dyn FnMut(Args) -> Result<(usize, Option<Cursor>)>,
    ) -> Result<()> {
        let page = page.max(1);
        let (mut score, mut member) = (Vec::new(), Vec::new());
        loop {
            let (read, cursor) = run(self.page_args(index, &score, &member, page))?;
            if read < page {
                return Ok(());
            }
            (score, member) = cursor.ok_or(StoreError::Internal("a page gave no cursor"))?;
        }
    }

    /// A paged script's first arguments: the index, the cursor (the score and member of the
    /// last entry the previous page read, both empty for the first) and the page's size.
    fn page_args(&self, index: &str, score: &[u8], member: &[u8], page: usize) -> Args {
        let mut a = self.args();
        a.push(index).push(score).push(member).push(page.to_string());
        a
    }
}

/// Where a page ended: the score and member of the last entry it read.
type Cursor = (Vec<u8>, Vec<u8>);

/// Entries per script of the export. A page of 1,000 tokens held Redis 7.0 for 9 ms (the
/// median of a 200,000-token backup's 200 scripts, SLOWLOG, on a loaded 2-core machine;
/// the longest 58 to 100 ms there), where the one script of before held it 2.6 s.
const PAGE: usize = 1000;

/// Kinds of rows `Seen` keeps apart.
const TOKENS: usize = 0;
const CODES: usize = 1;
const CLIENTS: usize = 2;
const PENDING: usize = 3;
const RETIRED: usize = 4;

/// The keys an export handed over, by kind: an entry whose score grew past the cursor
/// during the export (a retired refresh token the cleanup put back at the end of its
/// queue, a token stored again with a later expiry) is read again, and handed over once.
/// A key is kept as a 128-bit digest under two hash keys drawn for this export (16 bytes
/// a row, not the row).
#[derive(Default)]
struct Seen {
    keys: [std::hash::RandomState; 2],
    sets: [std::collections::HashSet<u128>; 5],
}

impl Seen {
    /// Whether `key` of this kind is seen for the first time (it is remembered).
    fn first(&mut self, kind: usize, key: &str) -> bool {
        use std::hash::BuildHasher;
        let [a, b] = &self.keys;
        let digest = (u128::from(a.hash_one(key)) << 64) | u128::from(b.hash_one(key));
        self.sets[kind].insert(digest)
    }
}

/// Where an export's pages go: `sink`, in batches of at most `batch`, counted.
struct Handed<'a> {
    sink: &'a mut dyn Sink,
    batch: usize,
    counts: Counts,
    seen: Seen,
}

impl Handed<'_> {
    fn hand(&mut self, rows: Rows) -> Result<()> {
        let n = rows.len() as u64;
        let c = &mut self.counts;
        match &rows {
            Rows::AccessTokens(_) => c.access_tokens += n,
            Rows::RefreshTokens(_) => c.refresh_tokens += n,
            Rows::AuthorizationCodes(_) => c.authorization_codes += n,
            Rows::Clients(_) => c.clients += n,
            Rows::PendingAuthorizations(_) => c.pending_authorizations += n,
            Rows::RefreshFamilies(_) => c.refresh_families += n,
            Rows::RetiredRefreshTokens(_) => c.retired_refresh_tokens += n,
        }
        for b in batches(rows, self.batch) {
            self.sink.rows(b)?;
        }
        Ok(())
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// This machine's clock, in epoch ms: when an imported row is written.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `s` matched literally by `SCAN … MATCH`.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl RowStore for RedisStore {
    fn row_counts(&self) -> Result<Counts> {
        self.counts_paged(PAGE)
    }

    fn export_rows(&self, batch: usize, sink: &mut dyn Sink) -> Result<Counts> {
        self.export_paged(PAGE, batch, sink)
    }

    /// Rows as they are: tokens with their creation times, codes, clients in the order
    /// given, families and retired refresh tokens kept.
    fn import_rows(&self, rows: &Rows) -> Result<()> {
        match rows {
            Rows::AccessTokens(rows) => {
                let mut a = self.args();
                for r in rows {
                    a.push(packed(&r.to_new(), r.access.created_at));
                }
                let done = self.script(false, &s::STORE_TOKENS, &a);
                self.written();
                done?;
            }
            // A token's hash holds its refresh token.
            Rows::RefreshTokens(_) => {}
            Rows::AuthorizationCodes(rows) => {
                for (c, d) in rows {
                    crate::store::TokenStore::store_authorization_code(self, c, d)?;
                }
            }
            Rows::Clients(rows) => {
                for c in rows {
                    crate::store::TokenStore::put_client(self, c)?;
                }
            }
            Rows::PendingAuthorizations(rows) => {
                for p in rows {
                    crate::store::TokenStore::store_pending_authorization(
                        self,
                        &p.state,
                        &p.data,
                        p.expires_at,
                        now_ms(),
                    )?;
                }
            }
            Rows::RefreshFamilies(rows) => {
                for (r, f) in rows {
                    let mut a = self.args();
                    a.push(r).push(f);
                    let done = self.script(false, &s::IMPORT_FAMILY, &a);
                    self.written();
                    done?;
                }
            }
            Rows::RetiredRefreshTokens(rows) => {
                for r in rows {
                    let mut a = self.args();
                    a.push(&r.refresh_token)
                        .push(&r.family)
                        .push(r.retired_at.to_string());
                    self.script(false, &s::IMPORT_RETIRED, &a)?;
                }
            }
        }
        Ok(())
    }

    /// Redis has no transaction spanning calls: the rows are written as they come.
    fn import_all(
        &self,
        fill: &mut dyn FnMut(&mut dyn Import) -> Result<Counts>,
    ) -> Result<Counts> {
        let set_mark = |mark: Option<&str>| {
            let mut a = self.args();
            a.opt(mark);
            self.script(false, &s::PUT_SEAL_MARK, &a).map(|_| ())
        };
        import_directly(self, &set_mark, fill)
    }

    /// Every row goes; the encryption mark stays, as SQLite's and PostgreSQL's `nts_meta`.
    fn clear_rows(&self) -> Result<()> {
        self.remove_all_keys(true)
    }

    /// Whether any of the store's index keys is there (one `EXISTS`, no scan): a prefix
    /// nothing of this package wrote under, or whose rows have all expired and been cleaned
    /// up, has none. The command line reads this to refuse a mistyped prefix.
    fn exists(&self) -> Result<bool> {
        let keys: Vec<Vec<u8>> = s::INDEX_KEYS.iter().map(|k| self.key(k, "")).collect();
        let mut args: Vec<&[u8]> = Vec::with_capacity(keys.len() + 1);
        args.push(b"EXISTS");
        args.extend(keys.iter().map(Vec::as_slice));
        let n = self.call(true, |c| c.command(&args))?.int();
        n.map(|n| n > 0)
            .ok_or(StoreError::Internal("EXISTS gave no count"))
    }

    fn identity(&self) -> Result<Option<String>> {
        self.server_identity()
    }

    fn revoke_client(&self, client_id: &str) -> Result<u64> {
        self.revoke_client_paged(client_id, PAGE)
    }
}
