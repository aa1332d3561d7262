//! The SQLite store's rows as they are (see `store::snapshot`): read in one read
//! transaction of a connection of their own (WAL: a snapshot that writers of every process
//! go on committing past, and that holds no lock they wait on), written in one
//! `BEGIN IMMEDIATE` transaction per batch (`import_rows`) or for a whole copy
//! (`import_all`); and the check of a finished backup file.

use std::path::Path;

use rusqlite::{params, Connection, OpenFlags, Row};

use super::connection::{transaction, Db};
use super::errors::{from_sqlite, TxError};
use super::rows::{read_access, read_client, read_code, read_pending, read_refresh};
use super::rows::{read_retired, required_text, scopes_json, NO_CHALLENGE, NO_USER};
use super::sql::CODE_SELECT;
use super::tokens::{insert_grant, insert_links, GrantTriggers, Grants};
use super::SqliteStore;
use crate::error::{Result, StoreError};
use crate::store::snapshot::{counts_sql, Counts, PendingRow, RefreshRow, RetiredRow};
use crate::store::snapshot::{Import, RowStore, Rows, Sink, TokenRow, TABLES};

fn counts(c: &Connection) -> rusqlite::Result<Counts> {
    c.query_row(&counts_sql(""), [], |r| Counts::from_row(|i| r.get::<_, i64>(i)))
}

/// The mark of encryption at rest (`TokenStore::seal_mark`), and whether any row but a
/// client's is stored, in one read.
fn seal_mark(c: &Connection) -> rusqlite::Result<(Option<String>, bool)> {
    c.prepare_cached(&format!(
        "SELECT (SELECT value FROM nts_meta WHERE name = 'seal'), {}",
        super::super::sealed::holds_secrets_sql("")
    ))?
    .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
}

impl Db {
    /// The mark, read at each check of the store (its opening); a file sealed by a version
    /// before the refusal of clear rows is given it then (the mark read again in the write:
    /// a `decrypt` meanwhile leaves the file in clear, without it). Best effort: a file that
    /// cannot be written now (read-only, busy) is served as before.
    pub(super) fn seal_mark(&self) -> Result<(Option<String>, bool)> {
        let (mark, holds) = seal_mark(&self.conn).map_err(|e| self.err(e))?;
        if mark.as_deref().is_some_and(|m| m.starts_with("sealed v2 "))
            && !refuses_clear_rows(&self.conn).map_err(|e| self.err(e))?
        {
            let _ = self.write(|c| match seal_mark(c)?.0 {
                Some(m) => refuse_clear_rows(c, &m),
                None => Ok(()),
            });
        }
        Ok((mark, holds))
    }

    pub(super) fn set_seal_mark(
        &self,
        old: Option<&str>,
        new: &str,
        only_if_empty: bool,
    ) -> Result<bool> {
        self.write(|c| {
            let (mark, holds) = seal_mark(c)?;
            if mark.as_deref() != old || (only_if_empty && holds) {
                return Ok(false);
            }
            c.prepare_cached("INSERT OR REPLACE INTO nts_meta (name, value) VALUES ('seal', ?1)")?
                .execute([new])?;
            c.execute_batch(super::schema::LINKS_TRIGGER)?;
            refuse_clear_rows(c, new)?;
            Ok(true)
        })
    }
}

/// A store sealed by this version (`sealed v2`: tokens sealed too) refuses rows in clear
/// (`schema::CLEAR_ROWS_REFUSED`); one of the version before (`sealed v1`) keeps its tokens
/// in clear.
fn refuse_clear_rows(c: &Connection, mark: &str) -> rusqlite::Result<()> {
    if mark.starts_with("sealed v2 ") {
        c.execute_batch(super::schema::CLEAR_ROWS_REFUSED)?;
    }
    Ok(())
}

/// Whether the file has `schema::CLEAR_ROWS_REFUSED`.
fn refuses_clear_rows(c: &Connection) -> rusqlite::Result<bool> {
    c.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master
         WHERE type = 'trigger' AND name = 'nts_sealed_access_tokens')",
    )?
    .query_row([], |r| r.get(0))
}

/// Each kind's statement selects the columns its reader of `rows` reads, then its key.
fn read_token(r: &Row) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        token: required_text(r, 10)?,
        access: read_access(r)?,
    })
}

/// `read_refresh` reads, after the record, whether the access token exists and its
/// expiry: selected as constants here (the row is copied as it is, whatever those are).
fn read_refresh_row(r: &Row) -> rusqlite::Result<RefreshRow> {
    Ok(RefreshRow {
        refresh_token: required_text(r, 8)?,
        refresh: read_refresh(r)?.0,
    })
}

/// Reads the rows of `sql` and hands them to `sink` in batches of `batch`.
fn stream<T>(
    c: &Connection,
    shown: &str,
    sql: &str,
    batch: usize,
    read: fn(&Row) -> rusqlite::Result<T>,
    wrap: fn(Vec<T>) -> Rows,
    sink: &mut dyn Sink,
) -> Result<()> {
    let e = |e: rusqlite::Error| from_sqlite(shown, &e);
    let mut statement = c.prepare(sql).map_err(e)?;
    let mut rows = statement.query([]).map_err(e)?;
    let mut out = Vec::with_capacity(batch);
    while let Some(row) = rows.next().map_err(e)? {
        out.push(read(row).map_err(e)?);
        if out.len() >= batch {
            sink.rows(wrap(std::mem::replace(&mut out, Vec::with_capacity(batch))))?;
        }
    }
    if !out.is_empty() {
        sink.rows(wrap(out))?;
    }
    Ok(())
}

/// Every row of the file as the transaction open on `c` sees it (see `export_rows`).
fn export(c: &Connection, shown: &str, batch: usize, sink: &mut dyn Sink) -> Result<Counts> {
    let e = |e: rusqlite::Error| from_sqlite(shown, &e);
    // The first read starts the snapshot every later read of the transaction sees.
    let snapshot = counts(c).map_err(e)?;
    let (mark, _) = seal_mark(c).map_err(e)?;
    sink.counts(&snapshot, mark.as_deref())?;
    stream(
        c,
        shown,
        "SELECT client_id, secret_digest, metadata, created_at FROM nts_clients
         ORDER BY seq",
        batch,
        read_client,
        Rows::Clients,
        sink,
    )?;
    stream(
        c,
        shown,
        "SELECT a.api_key, a.user_id, a.client_id, a.scopes, a.refresh_token,
         a.expires_at, a.created_at,
         (SELECT links FROM nts_token_links l WHERE l.token = a.token),
         g.resource, g.extra, a.token
         FROM access_tokens a LEFT JOIN nts_token_grants g ON g.token = a.token",
        batch,
        read_token,
        Rows::AccessTokens,
        sink,
    )?;
    stream(
        c,
        shown,
        "SELECT user_id, client_id, scopes, access_token, created_at, 0, NULL, NULL,
         refresh_token FROM refresh_tokens",
        batch,
        read_refresh_row,
        Rows::RefreshTokens,
        sink,
    )?;
    stream(
        c,
        shown,
        "SELECT refresh_token, family FROM nts_refresh_families",
        batch,
        |r| Ok((required_text(r, 0)?, required_text(r, 1)?)),
        Rows::RefreshFamilies,
        sink,
    )?;
    stream(
        c,
        shown,
        "SELECT family, retired_at, refresh_token FROM nts_retired_refresh_tokens",
        batch,
        |r| {
            let (family, retired_at) = read_retired(r)?;
            Ok(RetiredRow {
                refresh_token: required_text(r, 2)?,
                family,
                retired_at,
            })
        },
        Rows::RetiredRefreshTokens,
        sink,
    )?;
    stream(
        c,
        shown,
        &format!(
            "SELECT {CODE_SELECT}, c.code FROM authorization_codes c
             LEFT JOIN nts_code_grants g ON g.code = c.code"
        ),
        batch,
        |r| Ok((required_text(r, 11)?, read_code(r)?)),
        Rows::AuthorizationCodes,
        sink,
    )?;
    stream(
        c,
        shown,
        "SELECT data, expires_at, state FROM nts_pending_authorizations",
        batch,
        |r| {
            let (data, expires_at) = read_pending(r)?;
            Ok(PendingRow {
                state: required_text(r, 2)?,
                data,
                expires_at,
            })
        },
        Rows::PendingAuthorizations,
        sink,
    )?;
    Ok(snapshot)
}

impl SqliteStore {
    fn shown(&self) -> String {
        self.path.display().to_string()
    }

    /// A connection of its own to the file (no schema work: the store's own opened it).
    fn reader(&self) -> Result<Connection> {
        let shown = self.shown();
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| from_sqlite(&shown, &e))?;
        c.busy_timeout(std::time::Duration::from_millis(u64::from(
            self.busy_timeout_ms,
        )))
        .map_err(|e| from_sqlite(&shown, &e))?;
        Ok(c)
    }
}

impl RowStore for SqliteStore {
    fn row_counts(&self) -> Result<Counts> {
        self.main(|db| counts(&db.conn).map_err(|e| db.err(e)))
    }

    fn export_rows(&self, batch: usize, sink: &mut dyn Sink) -> Result<Counts> {
        // Opened (and migrated) by the store's own connection first.
        self.main(|_| Ok(()))?;
        let shown = self.shown();
        let c = self.reader()?;
        let e = |e: rusqlite::Error| from_sqlite(&shown, &e);
        c.execute_batch("BEGIN").map_err(e)?;
        let result = export(&c, &shown, batch, sink);
        let _ = c.execute_batch("COMMIT");
        result
    }

    fn snapshot_into(&self, path: &Path) -> Option<Result<Counts>> {
        let shown = self.shown();
        let copied = self.main(|_| Ok(())).and_then(|()| {
            let c = self.reader()?;
            let target = path.to_str().ok_or_else(|| StoreError::Open {
                path: path.display().to_string(),
                reason: "the path is not UTF-8".into(),
            })?;
            // One read transaction: the copy is of one snapshot, as of its first read.
            c.execute("VACUUM INTO ?1", [target])
                .map_err(|e| from_sqlite(&shown, &e))?;
            let out = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .and_then(|out| counts(&out))
                .map_err(|e| from_sqlite(&path.display().to_string(), &e))?;
            Ok(out)
        });
        Some(copied)
    }

    fn import_rows(&self, rows: &Rows) -> Result<()> {
        self.main(|db| db.write(|c| import(c, rows)))
    }

    /// One `BEGIN IMMEDIATE` transaction of the store's connection for all of it: other
    /// writers (of every process) wait for it, up to their busy timeout.
    fn import_all(
        &self,
        fill: &mut dyn FnMut(&mut dyn Import) -> Result<Counts>,
    ) -> Result<Counts> {
        struct Within<'c> {
            c: &'c Connection,
            shown: String,
        }
        impl Import for Within<'_> {
            fn counts(&mut self) -> Result<Counts> {
                counts(self.c).map_err(|e| from_sqlite(&self.shown, &e))
            }
            fn clear(&mut self) -> Result<()> {
                TABLES
                    .iter()
                    .try_for_each(|t| self.c.execute(&format!("DELETE FROM {t}"), []).map(|_| ()))
                    .map_err(|e| from_sqlite(&self.shown, &e))
            }
            fn rows(&mut self, rows: &Rows) -> Result<()> {
                import(self.c, rows).map_err(|e| from_sqlite(&self.shown, &e))
            }
            fn export(&mut self, batch: usize, sink: &mut dyn Sink) -> Result<()> {
                export(self.c, &self.shown, batch, sink).map(|_| ())
            }
            fn seal_mark(&mut self) -> Result<Option<String>> {
                seal_mark(self.c)
                    .map(|(mark, _)| mark)
                    .map_err(|e| from_sqlite(&self.shown, &e))
            }
            fn set_seal_mark(&mut self, mark: Option<&str>) -> Result<()> {
                let c = self.c;
                match mark {
                    Some(mark) => c
                        .execute(
                            "INSERT OR REPLACE INTO nts_meta (name, value) VALUES ('seal', ?1)",
                            [mark],
                        )
                        .and_then(|_| c.execute_batch(super::schema::LINKS_TRIGGER))
                        .and_then(|_| refuse_clear_rows(c, mark)),
                    None => c
                        .execute_batch(
                            "DELETE FROM nts_meta WHERE name = 'seal';
                             DROP TRIGGER IF EXISTS nts_token_links_delete;
                             DELETE FROM nts_token_links;",
                        )
                        .and_then(|_| c.execute_batch(super::schema::CLEAR_ROWS_ALLOWED)),
                }
                .map_err(|e| from_sqlite(&self.shown, &e))
            }
        }
        let shown = self.shown();
        self.main(|db| {
            transaction(&db.conn, "BEGIN IMMEDIATE", |c| {
                let counts = fill(&mut Within { c, shown }).map_err(TxError::Store)?;
                db.ensure_in_place().map_err(TxError::Store)?;
                Ok(counts)
            })
            .map_err(|e| db.tx_err(e))
        })
    }

    fn revoke_client(&self, client_id: &str) -> Result<u64> {
        self.main(|db| {
            db.write(|c| {
                c.execute("DELETE FROM refresh_tokens WHERE client_id = ?1", [client_id])?;
                c.execute("DELETE FROM authorization_codes WHERE client_id = ?1", [client_id])?;
                c.execute("DELETE FROM access_tokens WHERE client_id = ?1", [client_id])
                    .map(|n| n as u64)
            })
        })
    }

    fn clear_rows(&self) -> Result<()> {
        self.main(|db| {
            db.write(|c| {
                TABLES
                    .iter()
                    .try_for_each(|t| c.execute(&format!("DELETE FROM {t}"), []).map(|_| ()))
            })
        })
    }
}

fn import(c: &Connection, rows: &Rows) -> rusqlite::Result<()> {
    // The grant triggers created if not there at each import (rare: no state kept across them).
    let triggers = GrantTriggers::default();
    let grant = |table, key: &str, resource: &Option<String>, extra: &Option<String>| {
        insert_grant(c, table, key, resource.as_deref(), extra.as_deref(), &triggers)
    };
    match rows {
        Rows::AccessTokens(rows) => {
            // The schema's BEFORE INSERT trigger replaces a token of the same string,
            // and its counters follow every insert.
            let mut s = c.prepare_cached(
                "INSERT INTO access_tokens (token, api_key, user_id, client_id, scopes,
                 refresh_token, expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for TokenRow { token, access: a } in rows {
                s.execute(params![
                    token,
                    a.api_key,
                    a.user_id.as_deref().unwrap_or(NO_USER),
                    a.client_id,
                    scopes_json(&a.scopes),
                    a.refresh_token,
                    a.expires_at,
                    a.created_at
                ])?;
                insert_links(c, token, a.links.as_deref())?;
                grant(Grants::Token, token, &a.resource, &a.extra)?;
            }
        }
        Rows::RefreshTokens(rows) => {
            let mut s = c.prepare_cached(
                "INSERT OR REPLACE INTO refresh_tokens (refresh_token, user_id, client_id,
                 scopes, access_token, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for RefreshRow { refresh_token, refresh: r } in rows {
                s.execute(params![
                    refresh_token,
                    r.user_id.as_deref().unwrap_or(NO_USER),
                    r.client_id,
                    scopes_json(&r.scopes),
                    r.access_token,
                    r.created_at
                ])?;
            }
        }
        Rows::AuthorizationCodes(rows) => {
            let mut s = c.prepare_cached(
                "INSERT OR REPLACE INTO authorization_codes (code, user_id, api_key, client_id,
                 redirect_uri, code_challenge, code_challenge_method, scopes, expires_at,
                 created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for (code, d) in rows {
                s.execute(params![
                    code,
                    d.user_id.as_deref().unwrap_or(NO_USER),
                    d.api_key,
                    d.client_id,
                    d.redirect_uri,
                    d.code_challenge.as_deref().unwrap_or(NO_CHALLENGE),
                    d.code_challenge_method.as_deref().unwrap_or(NO_CHALLENGE),
                    scopes_json(&d.scopes),
                    d.expires_at,
                    d.created_at
                ])?;
                grant(Grants::Code, code, &d.resource, &d.extra)?;
            }
        }
        Rows::Clients(rows) => {
            let mut s = c.prepare_cached(
                "INSERT INTO nts_clients (client_id, secret_digest, metadata, created_at, seq)
                 VALUES (?1, ?2, ?3, ?4, (SELECT COALESCE(MAX(seq), 0) + 1 FROM nts_clients))
                 ON CONFLICT (client_id) DO UPDATE SET secret_digest = excluded.secret_digest,
                     metadata = excluded.metadata, created_at = excluded.created_at",
            )?;
            for r in rows {
                s.execute(params![r.client_id, r.secret_digest, r.metadata, r.created_at])?;
            }
        }
        Rows::PendingAuthorizations(rows) => {
            let mut s = c.prepare_cached(
                "INSERT OR REPLACE INTO nts_pending_authorizations (state, data, expires_at)
                 VALUES (?1, ?2, ?3)",
            )?;
            for r in rows {
                s.execute(params![r.state, r.data, r.expires_at])?;
            }
        }
        Rows::RefreshFamilies(rows) => {
            let mut s = c.prepare_cached(
                "INSERT OR REPLACE INTO nts_refresh_families (refresh_token, family)
                 VALUES (?1, ?2)",
            )?;
            for (r, f) in rows {
                s.execute(params![r, f])?;
            }
        }
        Rows::RetiredRefreshTokens(rows) => {
            let mut s = c.prepare_cached(
                "INSERT OR REPLACE INTO nts_retired_refresh_tokens (refresh_token, family,
                 retired_at) VALUES (?1, ?2, ?3)",
            )?;
            for r in rows {
                s.execute(params![r.refresh_token, r.family, r.retired_at])?;
            }
        }
    }
    Ok(())
}

/// Finishes a backup file (closed by its store): its WAL folded in and removed (one
/// self-contained file, to copy anywhere), then checked: SQLite's `integrity_check`
/// finds nothing, and every table holds as many rows as the snapshot it was written from.
pub(crate) fn verify_backup(path: &Path, expected: &Counts) -> Result<()> {
    let shown = path.display().to_string();
    let e = |e: rusqlite::Error| from_sqlite(&shown, &e);
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(e)?;
    c.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
        .map_err(e)?;
    let check: Vec<String> = c
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(e)?;
    if check != ["ok"] {
        return Err(StoreError::NotADatabase { path: shown });
    }
    let found = counts(&c).map_err(e)?;
    if &found != expected {
        return Err(StoreError::Open {
            path: shown,
            reason: "the backup does not hold as many rows as the snapshot it was written from"
                .into(),
        });
    }
    Ok(())
}
