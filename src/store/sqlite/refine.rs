//! Refined buckets (migration 8): the 4-second bucket getStats is in gets millisecond
//! counts once it holds many rows, so that the calls after it sum at most 64 + 64 counts
//! instead of visiting the bucket's expired rows (and probing each one's user). Counted
//! here from the rows once, in the write transaction that marks the bucket; kept by the
//! triggers from then on, whoever writes. The automatic cleanup refines the buckets due
//! before its next pass ahead of time (`Db::refine_ahead`), off the JavaScript thread, if
//! they hold many rows; getStats refines the current one itself when nothing did (no
//! automatic cleanup, a bucket of a few thousand rows at most, or one that grew since the
//! last pass).

use rusqlite::{params, Connection};

use super::connection::Db;
use crate::error::Result;

/// A current bucket holding more rows than this is refined by the next getStats (fewer
/// are visited: cheaper than counting them finely).
pub(super) const REFINE_ABOVE: i64 = 64;

/// A bucket ahead holding more rows than this is refined by the automatic cleanup (fewer
/// cost the getStats that refines them at most a few milliseconds, once).
pub(super) const AHEAD_ABOVE: i64 = 4096;

/// How far past the current bucket the automatic cleanup looks at most: 20 buckets (~82 s:
/// its default interval, 60 s, and some slack).
pub(super) const AHEAD_MAX_BUCKETS: i64 = 20;

/// How many buckets ahead one pass refines at most (the largest): while a refined bucket is
/// live every write pays a probe for each one (20 of them, +25 us an insert of ~230).
pub(super) const AHEAD_MAX_REFINED: i64 = 4;

/// The millisecond at or after `v` at which it has expired: `fine_key!` of migration 8.
macro_rules! fine_key {
    ($v:literal) => {
        concat!("(CAST(", $v, " AS INTEGER) + (", $v, " > CAST(", $v, " AS INTEGER)))")
    };
}

/// Whether a bucket listed in `nts_refined` is live: not more than `$behind` 4-second
/// buckets before the one the clock is in (SQLite's clock, the same for every process on
/// the file's host). Writers keep the fine counts while one is live within 4 buckets;
/// getStats reads a bucket's only while it is live within 1 (and only the bucket its `now`
/// is in, `?4`): so every write since the bucket was refined kept them, even across a
/// backward step of the clock of up to 12 s. With `now` far from the clock (tests),
/// getStats visits the rows as before.
macro_rules! live_refined {
    ($behind:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM nts_refined WHERE bucket >= ",
            clock_bucket!(),
            " - ",
            $behind,
            ")"
        )
    };
}

/// The 4-second bucket of SQLite's clock.
macro_rules! clock_bucket {
    () => {
        "(CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) >> 12)"
    };
}

/// Marks 4-second bucket `bucket` refined and counts its rows at the fine levels (as the
/// triggers of migration 8 would have counted them), unless it is marked already. Also
/// drops the marks and fine counts of the buckets before the one before `current` (the
/// caller's): never read again (getStats reads the current bucket's), and each mark
/// costs writes a probe.
pub(super) fn refine(c: &Connection, current: i64, bucket: i64) -> rusqlite::Result<()> {
    c.prepare_cached("DELETE FROM nts_refined WHERE bucket < ?1 - 1")?
        .execute([current])?;
    c.prepare_cached(
        "DELETE FROM nts_counts WHERE (level = 3 AND bucket < ((?1 - 1) << 6))
            OR (level = 4 AND bucket < ((?1 - 1) << 12))",
    )?
    .execute([current])?;
    let fresh = c
        .prepare_cached("INSERT OR IGNORE INTO nts_refined (bucket) VALUES (?1)")?
        .execute([bucket])?;
    if fresh == 0 {
        return Ok(());
    }
    // Fine counts left from an earlier mark of this bucket (since dropped) are stale.
    c.prepare_cached(
        "DELETE FROM nts_counts WHERE (level = 3 AND bucket >= (?1 << 6) AND bucket < ((?1 + 1) << 6))
            OR (level = 4 AND bucket >= (?1 << 12) AND bucket < ((?1 + 1) << 12))",
    )?
    .execute([bucket])?;
    // Milliseconds first (the rows in index order, grouped without a sort), then the
    // 64 ms buckets from them.
    c.prepare_cached(concat!(
        "INSERT INTO nts_counts (level, bucket, kind, n)
        SELECT 4, k, 0, SUM(c)
        FROM (SELECT ", fine_key!("expires_at"), " AS k, COUNT(*) AS c
              FROM access_tokens INDEXED BY idx_access_tokens_expires_at
              WHERE expires_at >= (?1 << 12) AND expires_at < ((?1 + 1) << 12)
              GROUP BY expires_at)
        WHERE (k >> 12) = ?1 GROUP BY k"
    ))?
    .execute([bucket])?;
    // Users by their until (as migration 3 defines it): those with a token in the bucket.
    c.prepare_cached(concat!(
        "INSERT INTO nts_counts (level, bucket, kind, n)
        SELECT 4, ", fine_key!("u.until"), ", 1, COUNT(*)
        FROM (SELECT CASE WHEN EXISTS (SELECT 1 FROM access_tokens
                    WHERE user_id = d.user_id AND expires_at IS NULL) THEN NULL
                ELSE (SELECT expires_at FROM access_tokens WHERE user_id = d.user_id
                    ORDER BY expires_at DESC LIMIT 1) END AS until
              FROM (SELECT DISTINCT user_id FROM access_tokens
                    INDEXED BY idx_access_tokens_expires_at
                    WHERE expires_at >= (?1 << 12) AND expires_at < ((?1 + 1) << 12)
                    AND COALESCE(user_id, '') <> '') d) u
        WHERE typeof(u.until) IN ('integer', 'real')
            AND u.until >= (?1 << 12) AND u.until < ((?1 + 1) << 12)
            AND (", fine_key!("u.until"), " >> 12) = ?1
        GROUP BY 2"
    ))?
    .execute([bucket])?;
    c.prepare_cached(
        "INSERT INTO nts_counts (level, bucket, kind, n)
        SELECT 3, bucket >> 6, kind, SUM(n) FROM nts_counts
        WHERE level = 4 AND bucket >= (?1 << 12) AND bucket < ((?1 + 1) << 12)
        GROUP BY 2, 3",
    )?
    .execute([bucket])?;
    Ok(())
}

/// Refining ahead of getStats.
impl Db {
    /// The automatic cleanup's last step (`until`: when its next pass is due): refines the
    /// 4-second buckets from `now`'s to `until`'s (and 2 more: the next pass may start late,
    /// and refines after its cleanup), at most `AHEAD_MAX_BUCKETS` past now's, that hold
    /// more than `AHEAD_ABOVE` rows and are not refined yet (the `AHEAD_MAX_REFINED`
    /// largest), each in a write transaction of its own, so that the getStats calls in
    /// those buckets find them refined and count nothing themselves; returns how many. Only buckets near SQLite's clock
    /// (as `live_refined!`): a caller's clock far from it (a test's) marks none.
    pub(super) fn refine_ahead(&self, now: i64, until: i64) -> Result<usize> {
        let current = now >> 12;
        let last = (until >> 12)
            .saturating_add(2)
            .min(current.saturating_add(AHEAD_MAX_BUCKETS));
        let due = self
            .conn
            .prepare_cached(concat!(
                "SELECT bucket FROM nts_counts
                 WHERE level = 0 AND kind = 0 AND bucket >= ?1 AND bucket <= ?2 AND n > ?3
                 AND bucket >= ",
                clock_bucket!(),
                " - 1 AND bucket <= ",
                clock_bucket!(),
                " + ?4
                 AND NOT EXISTS (SELECT 1 FROM nts_refined r WHERE r.bucket = nts_counts.bucket)
                 ORDER BY n DESC LIMIT ?5"
            ))
            .and_then(|mut s| {
                s.query_map(
                    params![
                        current,
                        last,
                        AHEAD_ABOVE,
                        AHEAD_MAX_BUCKETS + 1,
                        AHEAD_MAX_REFINED
                    ],
                    |r| r.get::<_, i64>(0),
                )?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| self.err(e))?;
        for &bucket in &due {
            self.write(|c| refine(c, current, bucket))?;
        }
        Ok(due.len())
    }
}
