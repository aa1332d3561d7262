//! The token operations on a connection: access and refresh tokens, authorization codes,
//! getStats.

use std::cell::Cell;

use rusqlite::{params, Connection, OptionalExtension};

use super::connection::{transaction, Db};
use super::rows::{
    read_access, read_code, read_refresh, read_stats, required_text, scopes_json, text,
    NO_CHALLENGE, NO_USER,
};
use super::refine::{refine, REFINE_ABOVE};
use super::schema::GRANTS_TRIGGERS;
use super::sql::{CODE_COLUMNS, CODE_SELECT_ONE, SELECT_ACCESS, SELECT_ACCESS_LINKED, STATS};
use crate::error::Result;
use crate::model::{
    is_expired, AccessToken, AuthorizationCode, NewAccessToken, RefreshToken, Stats,
};
use crate::store::buckets::{COARSE_BUCKET_BITS, FINE_BUCKET_BITS};
use crate::wire;

/// Deletes an access token and the refresh token that points at it.
pub(super) fn delete_access(c: &Connection, token: &str) -> rusqlite::Result<bool> {
    let refresh: Option<Option<String>> = c
        .prepare_cached("DELETE FROM access_tokens WHERE token = ?1 RETURNING refresh_token")?
        .query_row([token], |r| text(r, 0))
        .optional()?;
    let Some(refresh) = refresh else {
        return Ok(false);
    };
    if let Some(rt) = refresh {
        c.prepare_cached(
            "DELETE FROM refresh_tokens WHERE refresh_token = ?1 AND access_token = ?2",
        )?
        .execute([rt.as_str(), token])?;
    }
    Ok(true)
}

/// Stores an access token (and its refresh token), replacing any token with the same
/// string; the caller's transaction makes it atomic.
pub(super) fn insert_access(
    c: &Connection,
    t: &NewAccessToken,
    now: i64,
    triggers: &GrantTriggers,
) -> rusqlite::Result<()> {
    let refresh = t.refresh_token.as_deref().filter(|r| !r.is_empty());
    let scopes = scopes_json(&t.scopes);
    let user_id = t.user_id.as_deref().unwrap_or(NO_USER);
    // What this store replaces, in one read: usually nothing (a new token and a new refresh
    // string), and then none of the deletes below runs. Inside the caller's write
    // transaction, so nothing changes between this read and the writes.
    let (token_taken, refresh_taken, in_family): (bool, bool, bool) = c
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM access_tokens WHERE token = ?1),
                EXISTS (SELECT 1 FROM refresh_tokens WHERE refresh_token = ?2),
                EXISTS (SELECT 1 FROM nts_refresh_families WHERE refresh_token = ?2)",
        )?
        .query_row(params![t.token, refresh], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    if token_taken {
        delete_access(c, &t.token)?;
    }
    if let Some(rt) = refresh {
        // A refresh string given by storeAccessToken starts a grant of its own.
        if in_family {
            c.prepare_cached("DELETE FROM nts_refresh_families WHERE refresh_token = ?1")?
                .execute([rt])?;
        }
        // A refresh token string re-used for a new access token leaves the old one.
        let prev: Option<String> = if refresh_taken {
            c.prepare_cached(
                "DELETE FROM refresh_tokens WHERE refresh_token = ?1 RETURNING access_token",
            )?
            .query_row([rt], |r| required_text(r, 0))
            .optional()?
        } else {
            None
        };
        if let Some(prev) = prev {
            c.prepare_cached(
                "UPDATE access_tokens SET refresh_token = NULL WHERE token = ?1 AND refresh_token = ?2",
            )?
            .execute([prev.as_str(), rt])?;
        }
    }
    c.prepare_cached(
        "INSERT INTO access_tokens
         (token, api_key, user_id, client_id, scopes, refresh_token, expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        t.token,
        t.api_key,
        user_id,
        t.client_id,
        scopes,
        refresh,
        t.expires_at,
        now
    ])?;
    insert_links(c, &t.token, t.links.as_deref())?;
    insert_grant(c, Grants::Token, &t.token, t.resource.as_deref(), t.extra.as_deref(), triggers)?;
    if let Some(rt) = refresh {
        c.prepare_cached(
            "INSERT INTO refresh_tokens
             (refresh_token, user_id, client_id, scopes, access_token, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![rt, user_id, t.client_id, scopes, t.token, now])?;
    }
    Ok(())
}

/// Which grant table of migration 10.
#[derive(Clone, Copy)]
pub(super) enum Grants {
    Token,
    Code,
}

/// Whether the grant rows' delete triggers (`GRANTS_TRIGGERS`) are known to be in the file
/// of a connection. The first write of a grant row creates them (`CREATE TRIGGER IF NOT
/// EXISTS`, parsed again at each call); once committed, nothing drops them, so a connection
/// that saw them committed skips that for its later writes.
#[derive(Default)]
pub(super) struct GrantTriggers {
    /// In the file: made or found by a transaction of this connection that committed.
    known: Cell<bool>,
    /// Made or found by the transaction under way.
    pending: Cell<bool>,
}

impl GrantTriggers {
    /// The triggers, created unless known to be there, in the caller's write transaction.
    fn ensure(&self, c: &Connection) -> rusqlite::Result<()> {
        if !self.known.get() && !self.pending.get() {
            c.execute_batch(GRANTS_TRIGGERS)?;
            self.pending.set(true);
        }
        Ok(())
    }

    /// At the end of each write transaction: what it made is known if it committed.
    pub(super) fn settle(&self, committed: bool) {
        if self.pending.replace(false) && committed {
            self.known.set(true);
        }
    }
}

/// Keeps a token's or code's resource and extra (migration 10) when it has either, with the
/// triggers that remove them with it. The caller has removed any earlier token of the
/// string (its row left with it); a code is replaced in place (`INSERT OR REPLACE`, whose
/// delete fires no trigger), so a code's old row is removed here.
pub(super) fn insert_grant(
    c: &Connection,
    table: Grants,
    key: &str,
    resource: Option<&str>,
    extra: Option<&str>,
    triggers: &GrantTriggers,
) -> rusqlite::Result<()> {
    let (insert, delete) = match table {
        Grants::Token => (
            "INSERT OR REPLACE INTO nts_token_grants (token, resource, extra) VALUES (?1, ?2, ?3)",
            "DELETE FROM nts_token_grants WHERE token = ?1",
        ),
        Grants::Code => (
            "INSERT OR REPLACE INTO nts_code_grants (code, resource, extra) VALUES (?1, ?2, ?3)",
            "DELETE FROM nts_code_grants WHERE code = ?1",
        ),
    };
    if resource.is_none() && extra.is_none() {
        if let Grants::Code = table {
            c.prepare_cached(delete)?.execute([key])?;
        }
        return Ok(());
    }
    triggers.ensure(c)?;
    c.prepare_cached(insert)?
        .execute(params![key, resource, extra])?;
    Ok(())
}

/// Keeps a sealed token's links (migration 9) beside its access token; nothing in clear.
pub(super) fn insert_links(c: &Connection, token: &str, links: Option<&str>) -> rusqlite::Result<()> {
    if let Some(links) = links {
        c.prepare_cached("INSERT OR REPLACE INTO nts_token_links (token, links) VALUES (?1, ?2)")?
            .execute([token, links])?;
    }
    Ok(())
}

/// The store operations on this connection (see `TokenStore` for what each promises).
impl Db {
    /// Removes an access token that a read found expired (see `tidy`). Checked again
    /// inside the transaction: another process may have replaced it since.
    pub(super) fn remove_if_expired(&self, token: &str, now: i64) {
        self.tidy(|c| {
            let still = c
                .prepare_cached(
                    "SELECT 1 FROM access_tokens
                     WHERE token = ?1 AND (expires_at <= ?2 OR expires_at >= '')",
                )?
                .exists(params![token, now])?;
            if still {
                delete_access(c, token)?;
            }
            Ok(())
        });
    }

    /// One token (the tests' shorthand).
    #[cfg(test)]
    pub(super) fn store_access_token(&self, t: NewAccessToken, now: i64) -> Result<()> {
        self.store_access_tokens(std::slice::from_ref(&t), now)
    }

    pub(super) fn store_access_tokens(&self, tokens: &[NewAccessToken], now: i64) -> Result<()> {
        self.write(|c| {
            tokens
                .iter()
                .try_for_each(|t| insert_access(c, t, now, &self.grants))
        })
    }

    /// The token's reply (`wire::access_token`): served from `recent` if this connection
    /// read it since the last commit to the file (by anyone) and it has not expired; else
    /// read, and kept there.
    pub(super) fn get_access_token_text(&self, token: &str, now: i64) -> Result<Option<String>> {
        self.get_access_token_text_as(token, now, false)
    }

    /// The same; `hold`: a read of the file is made in the held read transaction (see
    /// `held`), begun if none is held or a commit was seen since it began. An answer from
    /// `recent` begins none (after a commit seen, `recent` has none).
    pub(super) fn get_access_token_text_as(
        &self,
        token: &str,
        now: i64,
        hold: bool,
    ) -> Result<Option<String>> {
        self.ensure_in_place()?;
        let mut recent = self.recent.borrow_mut();
        let epoch = recent.epoch();
        let current = recent.sync(&self.conn);
        let hold = hold && current;
        if !hold {
            self.end_read()?;
        }
        if current {
            if let Some(text) = recent.get(token, now) {
                return Ok(Some(text));
            }
        }
        if hold {
            self.hold_read(recent.epoch() != epoch)?;
        }
        let Some(t) = self.read_access_token(token, now, false)? else {
            return Ok(None);
        };
        let text = wire::access_token(&t);
        if current {
            recent.keep(token, t.expires_at, &text);
        }
        Ok(Some(text))
    }

    /// The token's record, read from the file (`recent` keeps replies, not records).
    /// `linked`: with its links (`TokenStore::get_access_token_linked`).
    pub(super) fn get_access_token(
        &self,
        token: &str,
        now: i64,
        linked: bool,
    ) -> Result<Option<AccessToken>> {
        self.ensure_in_place()?;
        self.read_access_token(token, now, linked)
    }

    /// The token read from the file if live at `now`; removed if found expired.
    fn read_access_token(
        &self,
        token: &str,
        now: i64,
        linked: bool,
    ) -> Result<Option<AccessToken>> {
        let sql = if linked {
            SELECT_ACCESS_LINKED
        } else {
            SELECT_ACCESS
        };
        let found = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut s| s.query_row([token], read_access).optional())
            .map_err(|e| self.err(e))?;
        match found {
            Some(t) if is_expired(t.expires_at, now) => {
                self.remove_if_expired(token, now);
                Ok(None)
            }
            found => Ok(found),
        }
    }

    pub(super) fn store_authorization_code(&self, code: &str, d: &AuthorizationCode) -> Result<()> {
        let scopes = scopes_json(&d.scopes);
        let user_id = d.user_id.as_deref().unwrap_or(NO_USER);
        self.write(|c| {
            c.prepare_cached(&format!(
                "INSERT OR REPLACE INTO authorization_codes (code, {CODE_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ))?
            .execute(params![
                code,
                user_id,
                d.api_key,
                d.client_id,
                d.redirect_uri,
                d.code_challenge.as_deref().unwrap_or(NO_CHALLENGE),
                d.code_challenge_method.as_deref().unwrap_or(NO_CHALLENGE),
                scopes,
                d.expires_at,
                d.created_at
            ])?;
            insert_grant(
                c,
                Grants::Code,
                code,
                d.resource.as_deref(),
                d.extra.as_deref(),
                &self.grants,
            )
        })
    }

    pub(super) fn take_authorization_code(
        &self,
        code: &str,
        now: i64,
    ) -> Result<Option<AuthorizationCode>> {
        let taken = self.write(|c| {
            // Read with its grant before the delete, whose trigger removes the grant (a file
            // without that trigger has no grant row: the first one written creates it).
            let found = c
                .prepare_cached(CODE_SELECT_ONE)?
                .query_row([code], read_code)
                .optional()?;
            if found.is_some() {
                c.prepare_cached("DELETE FROM authorization_codes WHERE code = ?1")?
                    .execute([code])?;
            }
            Ok(found)
        })?;
        Ok(taken.filter(|d| !is_expired(Some(d.expires_at), now)))
    }

    /// `linked`: with its access token's links (`TokenStore::get_refresh_token_linked`).
    pub(super) fn get_refresh_token(
        &self,
        refresh_token: &str,
        now: i64,
        linked: bool,
    ) -> Result<Option<RefreshToken>> {
        self.ensure_in_place()?;
        // Its access token by scalar subqueries, not a LEFT JOIN: the join was prepared again
        // for every new refresh string bound (see `SELECT_ACCESS`).
        let sql = if linked {
            "SELECT user_id, client_id, scopes, access_token, created_at,
                    EXISTS (SELECT 1 FROM access_tokens WHERE token = r.access_token),
                    (SELECT expires_at FROM access_tokens WHERE token = r.access_token),
                    (SELECT links FROM nts_token_links WHERE token = r.access_token)
             FROM refresh_tokens r WHERE refresh_token = ?1"
        } else {
            "SELECT user_id, client_id, scopes, access_token, created_at,
                    EXISTS (SELECT 1 FROM access_tokens WHERE token = r.access_token),
                    (SELECT expires_at FROM access_tokens WHERE token = r.access_token), NULL
             FROM refresh_tokens r WHERE refresh_token = ?1"
        };
        let found = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut s| s.query_row([refresh_token], read_refresh).optional())
            .map_err(|e| self.err(e))?
            .map(|(r, access)| (access.is_some_and(|at| !is_expired(at, now)), r));
        match found {
            Some((true, r)) => Ok(Some(r)),
            Some((false, r)) => {
                // Its access token is expired (or gone): remove it, as getAccessToken would.
                self.remove_if_expired(&r.access_token, now);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    pub(super) fn revoke_refresh_token(&self, refresh_token: &str) -> Result<()> {
        self.write(|c| {
            let access: Option<String> = c
                .prepare_cached(
                    "DELETE FROM refresh_tokens WHERE refresh_token = ?1 RETURNING access_token",
                )?
                .query_row([refresh_token], |r| required_text(r, 0))
                .optional()?;
            if let Some(a) = access {
                delete_access(c, &a)?;
            }
            Ok(())
        })
    }

    pub(super) fn delete_token(&self, token: &str) -> Result<()> {
        self.write(|c| delete_access(c, token).map(|_| ()))
    }

    pub(super) fn delete_user_tokens(&self, user_id: &str) -> Result<u64> {
        if user_id == NO_USER {
            return Ok(0);
        }
        self.write(|c| {
            c.prepare_cached(
                "DELETE FROM refresh_tokens WHERE refresh_token IN
                 (SELECT refresh_token FROM access_tokens WHERE user_id = ?1)",
            )?
            .execute([user_id])?;
            let removed = c
                .prepare_cached("DELETE FROM access_tokens WHERE user_id = ?1")?
                .execute([user_id])?;
            c.prepare_cached("DELETE FROM authorization_codes WHERE user_id = ?1")?
                .execute([user_id])?;
            Ok(removed as u64)
        })
    }

    pub(super) fn stats(&self, now: i64) -> Result<Stats> {
        self.ensure_in_place()?;
        // The counters include expired rows that nothing has removed yet. Those of past
        // buckets are subtracted by their counts (17-minute, then 4-second ones; migration
        // 3), those of the current 4 seconds by its millisecond counts once it is refined
        // (migration 8), else visited: the cost does not grow with the expired rows, and a
        // read never takes the write lock to remove them (only, once, to refine a bucket).
        let fine = now >> FINE_BUCKET_BITS;
        let coarse = now >> COARSE_BUCKET_BITS;
        let read = |visit_up_to: i64| {
            move |c: &Connection| -> rusqlite::Result<Option<Stats>> {
                c.prepare_cached(STATS)?.query_row(
                    params![
                        now,
                        coarse,
                        coarse << (COARSE_BUCKET_BITS - FINE_BUCKET_BITS),
                        fine,
                        fine << FINE_BUCKET_BITS,
                        now >> 6,
                        visit_up_to
                    ],
                    read_stats,
                )
            }
        };
        // One read transaction, so the counters and the rows are one snapshot.
        let once = |visit_up_to| {
            transaction(&self.conn, "BEGIN DEFERRED", read(visit_up_to)).map_err(|e| self.err(e))
        };
        if let Some(stats) = once(REFINE_ABOVE)? {
            return Ok(stats);
        }
        // The current bucket holds many rows and nothing refined it ahead (the automatic
        // cleanup's pass, `Db::refine_ahead`): refined now (if the write lock is free),
        // then read from its fine counts, or else visited this once.
        self.tidy(|c| refine(c, fine, fine));
        Ok(once(i64::MAX)?.unwrap_or_default())
    }
}
