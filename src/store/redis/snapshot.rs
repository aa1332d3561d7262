//! The Redis store's rows as they are (`snapshot::RowStore`): backups and copies.
//!
//! The export is one script (`EXPORT`): Redis runs it alone, so it is a consistent
//! snapshot of the rows and the mark of encryption at rest, but it holds the server for as long as it reads (about a second per
//! 100,000 tokens) and answers every row at once; a paged export is left for later. An
//! import is row by row (scripts), not one transaction: Redis has none that spans calls,
//! so a copy into Redis that fails half-way leaves what it wrote (run it again with
//! overwrite), as a copy into the memory store does.

use super::resp::Reply;
use super::rows::{access, client, code, count, hash, packed, score};
use super::scripts as s;
use super::RedisStore;
use crate::error::{Result, StoreError};
use crate::model::RefreshToken;
use crate::store::snapshot::{
    hand_over, import_directly, Counts, Import, PendingRow, RefreshRow, RetiredRow, RowStore, Rows, Sink,
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

    /// The mark of encryption at rest and every row, read in one snapshot, the rows in the
    /// order a target takes them.
    fn rows(&self) -> Result<(Option<String>, Vec<Rows>)> {
        let mut parts = self
            .script(true, &s::EXPORT, &self.args())?
            .items()
            .into_iter();
        let mut part = || parts.next().map(Reply::items).unwrap_or_default().into_iter();
        let (mut tokens, mut codes, mut clients, mut pend, mut retired) =
            (part(), part(), part(), part(), part());
        let mark = parts.next().and_then(Reply::text);
        let text = |r: Option<Reply>| r.and_then(Reply::text).unwrap_or_default();

        let (mut token_rows, mut refresh_rows, mut families) = (Vec::new(), Vec::new(), Vec::new());
        while let (Some(t), Some(fields)) = (tokens.next(), tokens.next()) {
            let token = text(Some(t));
            let fields = hash(fields);
            let Some(a) = access(&fields)? else { continue };
            if let Some(r) = &a.refresh_token {
                refresh_rows.push(RefreshRow {
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
            token_rows.push(TokenRow { token, access: a });
        }
        let mut code_rows = Vec::new();
        while let (Some(c), Some(d)) = (codes.next(), codes.next()) {
            code_rows.push((text(Some(c)), code(&text(Some(d)))?));
        }
        let mut client_rows = Vec::new();
        while let (Some(id), Some(fields)) = (clients.next(), clients.next()) {
            let id = text(Some(id));
            if let Some(c) = client(&id, &hash(fields))? {
                client_rows.push(c);
            }
        }
        let mut pending = Vec::new();
        while let (Some(st), Some(d), Some(e)) = (pend.next(), pend.next(), pend.next()) {
            pending.push(PendingRow {
                state: text(Some(st)),
                data: text(Some(d)),
                expires_at: score(&text(Some(e))).unwrap_or(i64::MAX),
            });
        }
        let mut retired_rows = Vec::new();
        while let (Some(rt), Some(f), Some(at)) = (retired.next(), retired.next(), retired.next())
        {
            retired_rows.push(RetiredRow {
                refresh_token: text(Some(rt)),
                family: text(Some(f)),
                retired_at: text(Some(at)).parse().unwrap_or(0),
            });
        }
        let rows = vec![
            Rows::Clients(client_rows),
            Rows::AccessTokens(token_rows),
            Rows::RefreshTokens(refresh_rows),
            Rows::RefreshFamilies(families),
            Rows::RetiredRefreshTokens(retired_rows),
            Rows::AuthorizationCodes(code_rows),
            Rows::PendingAuthorizations(pending),
        ];
        Ok((mark, rows))
    }
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

/// The counts of the rows an export gives.
fn counts_of(rows: &[Rows]) -> Counts {
    let mut c = Counts::default();
    for r in rows {
        let n = r.len() as u64;
        match r {
            Rows::AccessTokens(_) => c.access_tokens = n,
            Rows::RefreshTokens(_) => c.refresh_tokens = n,
            Rows::AuthorizationCodes(_) => c.authorization_codes = n,
            Rows::Clients(_) => c.clients = n,
            Rows::PendingAuthorizations(_) => c.pending_authorizations = n,
            Rows::RefreshFamilies(_) => c.refresh_families = n,
            Rows::RetiredRefreshTokens(_) => c.retired_refresh_tokens = n,
        }
    }
    c
}

impl RowStore for RedisStore {
    fn row_counts(&self) -> Result<Counts> {
        let items = self.script(true, &s::COUNTS, &self.args())?.items();
        let n = |i| count(&items, i);
        Ok(Counts {
            access_tokens: n(0),
            refresh_tokens: n(1),
            authorization_codes: n(2),
            clients: n(3),
            pending_authorizations: n(4),
            refresh_families: n(5),
            retired_refresh_tokens: n(6),
        })
    }

    fn export_rows(&self, batch: usize, sink: &mut dyn Sink) -> Result<Counts> {
        // The mark with the rows, in the same script: one consistent read of both.
        let (mark, rows) = self.rows()?;
        hand_over(counts_of(&rows), mark.as_deref(), rows, batch, sink)
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
        let mut a = self.args();
        a.push(client_id);
        let n = self.script(false, &s::REVOKE_CLIENT, &a);
        self.written();
        n?.int()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or(StoreError::Internal("revoke_client gave no count"))
    }
}
