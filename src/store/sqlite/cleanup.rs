//! Cleanup on a connection: a batch of expired rows removed in one transaction, and the
//! lease that lets one process's automatic cleanup work on a file at a time.

use rusqlite::{params, Connection, OptionalExtension};

use super::connection::Db;
use super::rows::read_lease;
use crate::error::Result;

/// How long an automatic cleanup's lease on the file lasts after its last batch.
pub(super) const CLEANER_LEASE_MS: i64 = 10_000;

pub(super) fn cleanup_batch(c: &Connection, now: i64, limit: usize) -> rusqlite::Result<usize> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // The batch's tokens go into a per-connection temp table once, then each table is
    // cleared of them in one statement: set-based, and both statements name the same
    // rows. A refresh token goes only if it still points at its access token.
    c.prepare_cached("DELETE FROM temp.nts_batch")?
        .execute([])?;
    // Rows whose expiry is not a number (text or a blob another program wrote) first:
    // they read as expired. Both selects are ranges of the expires_at index.
    let mut removed = c
        .prepare_cached(
            "INSERT INTO temp.nts_batch (token, refresh_token)
             SELECT token, refresh_token FROM access_tokens WHERE expires_at >= '' LIMIT ?1",
        )?
        .execute([limit])?;
    removed += c
        .prepare_cached(
            "INSERT INTO temp.nts_batch (token, refresh_token)
             SELECT token, refresh_token FROM access_tokens
             WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
        )?
        .execute(params![now, limit - removed as i64])?;
    if removed > 0 {
        c.prepare_cached(
            "DELETE FROM refresh_tokens
             WHERE refresh_token IN (SELECT refresh_token FROM temp.nts_batch)
             AND access_token IN (SELECT token FROM temp.nts_batch)",
        )?
        .execute([])?;
        c.prepare_cached(
            "DELETE FROM access_tokens WHERE token IN (SELECT token FROM temp.nts_batch)",
        )?
        .execute([])?;
    }
    // Buckets whose count went to 0 (the triggers leave them): few, and never summed
    // beyond the current 17 minutes, but not kept forever; fine counts of refined buckets
    // (migration 8) alike.
    c.prepare_cached("DELETE FROM nts_counts WHERE (level < 2 OR level IN (3, 4)) AND n = 0")?
        .execute([])?;
    let left = limit - removed as i64;
    if left > 0 {
        removed += c
            .prepare_cached(
                "DELETE FROM authorization_codes WHERE code IN
                 (SELECT code FROM authorization_codes
                  WHERE expires_at <= ?1 OR expires_at >= '' LIMIT ?2)",
            )?
            .execute(params![now, left])?;
    }
    let left = limit - removed as i64;
    if left > 0 {
        removed += c
            .prepare_cached(
                "DELETE FROM nts_pending_authorizations WHERE state IN
                 (SELECT state FROM nts_pending_authorizations WHERE expires_at <= ?1
                  UNION ALL
                  SELECT state FROM nts_pending_authorizations WHERE expires_at >= ''
                  LIMIT ?2)",
            )?
            .execute(params![now, left])?;
    }
    if (removed as i64) < limit {
        // Family rows of refresh tokens that are gone, then tokens rotated away from a
        // family with no live token left: a replay of one could revoke nothing.
        c.prepare_cached(
            "DELETE FROM nts_refresh_families WHERE refresh_token IN
             (SELECT f.refresh_token FROM nts_refresh_families f
              WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens r
                  WHERE r.refresh_token = f.refresh_token)
              LIMIT ?1)",
        )?
        .execute([limit])?;
        c.prepare_cached(
            "DELETE FROM nts_retired_refresh_tokens WHERE refresh_token IN
             (SELECT t.refresh_token FROM nts_retired_refresh_tokens t
              WHERE NOT EXISTS (SELECT 1 FROM nts_refresh_families f WHERE f.family = t.family)
              LIMIT ?1)",
        )?
        .execute([limit])?;
    }
    Ok(removed)
}

/// The cleanup operations on this connection.
impl Db {
    pub(super) fn cleanup_expired(&self, now: i64, limit: usize) -> Result<usize> {
        self.write(|c| cleanup_batch(c, now, limit))
    }

    /// `cleanup_expired` by the automatic cleanup of `holder`: only one process cleans a
    /// file at a time, the one holding the lease in `nts_cleaner` (renewed by each batch,
    /// given back when nothing expired is left, lapsing after `CLEANER_LEASE_MS` if its
    /// process died). Returns None, removing nothing, while another holder has it: two
    /// cleaners alternating would hold the write lock nearly all the time between them.
    pub(super) fn cleanup_expired_as(
        &self,
        now: i64,
        limit: usize,
        holder: i64,
    ) -> Result<Option<usize>> {
        let held_by_other = |c: &Connection| -> rusqlite::Result<bool> {
            let lease: Option<(i64, i64)> = c
                .prepare_cached("SELECT holder, until FROM nts_cleaner WHERE id = 1")?
                .query_row([], read_lease)
                .optional()?;
            Ok(matches!(lease, Some((h, until)) if h != holder && until > now))
        };
        // Read first, without the write lock: a cleaner that is not the holder never
        // takes it from the writers.
        if held_by_other(&self.conn).map_err(|e| self.err(e))? {
            return Ok(None);
        }
        self.write(|c| {
            if held_by_other(c)? {
                return Ok(None);
            }
            let n = cleanup_batch(c, now, limit)?;
            if n < limit {
                c.prepare_cached("DELETE FROM nts_cleaner WHERE id = 1")?
                    .execute([])?;
            } else {
                c.prepare_cached(
                    "INSERT OR REPLACE INTO nts_cleaner (id, holder, until) VALUES (1, ?1, ?2)",
                )?
                .execute(params![holder, now.saturating_add(CLEANER_LEASE_MS)])?;
            }
            Ok(Some(n))
        })
    }
}
