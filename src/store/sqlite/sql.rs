//! The statements shared by several operations (each operation's own are inline, beside
//! the code that binds them).

/// An access token, its links NULL: a store in clear has none (measured: the subquery of
/// `SELECT_ACCESS_LINKED` is not free, even on its empty table); its grant's resource and
/// extra (migration 10), NULL without a row. Scalar subqueries, not a LEFT JOIN: SQLite is
/// built with STAT4, and the join made it prepare the statement again for every new token
/// bound (the parser on every read: 7.8 -> 29 µs a read not served from `recent`, 10k).
pub(super) const SELECT_ACCESS: &str =
    "SELECT api_key, user_id, client_id, scopes, refresh_token, expires_at, created_at, NULL,
        (SELECT resource FROM nts_token_grants WHERE token = ?1),
        (SELECT extra FROM nts_token_grants WHERE token = ?1)
     FROM access_tokens WHERE token = ?1";

/// An access token with its links (migration 9): the sealed layer's read.
pub(super) const SELECT_ACCESS_LINKED: &str =
    "SELECT api_key, user_id, client_id, scopes, refresh_token, expires_at, created_at,
        (SELECT links FROM nts_token_links WHERE token = ?1),
        (SELECT resource FROM nts_token_grants WHERE token = ?1),
        (SELECT extra FROM nts_token_grants WHERE token = ?1)
     FROM access_tokens WHERE token = ?1";

/// getStats: the counters, less the expired rows of past buckets (from their counts) and
/// of the current 4-second bucket: from its fine counts if it is refined (migration 8: at
/// most 64 + 64 rows), else visited. ?1 now, ?2 its 17-minute bucket, ?3 that bucket's
/// first 4-second bucket, ?4 now's 4-second bucket, ?5 that bucket's first instant, ?6
/// now's 64 ms bucket, ?7 how many rows the current bucket may hold and still be visited:
/// above that, both counts are NULL (the bucket is to be refined first, see `refine.rs`).
/// A bucket is read from its fine counts only while it is live (`live_refined!`).
pub(super) const STATS: &str = concat!(
    "SELECT
     CASE m.mode WHEN 1 THEN t.n - (SELECT COALESCE(SUM(n), 0) FROM nts_counts
            WHERE level = 3 AND bucket >= (?4 << 6) AND bucket < ?6 AND kind = 0)
        - (SELECT COALESCE(SUM(n), 0) FROM nts_counts
            WHERE level = 4 AND bucket >= (?6 << 6) AND bucket <= ?1 AND kind = 0)
     WHEN 0 THEN t.n - (SELECT COUNT(*) FROM access_tokens INDEXED BY idx_access_tokens_expires_at
           WHERE expires_at >= ?5 AND expires_at <= ?1) END,
     CASE m.mode WHEN 1 THEN u.n - (SELECT COALESCE(SUM(n), 0) FROM nts_counts
            WHERE level = 3 AND bucket >= (?4 << 6) AND bucket < ?6 AND kind = 1)
        - (SELECT COALESCE(SUM(n), 0) FROM nts_counts
            WHERE level = 4 AND bucket >= (?6 << 6) AND bucket <= ?1 AND kind = 1)
     WHEN 0 THEN u.n - (SELECT COUNT(DISTINCT a.user_id)
           FROM access_tokens a INDEXED BY idx_access_tokens_expires_at
           WHERE a.expires_at >= ?5 AND a.expires_at <= ?1 AND a.user_id <> ''
           AND NOT EXISTS (SELECT 1 FROM access_tokens l
               WHERE l.user_id = a.user_id AND l.expires_at > ?1)
           AND NOT EXISTS (SELECT 1 FROM access_tokens l
               WHERE l.user_id = a.user_id AND l.expires_at IS NULL)) END
     FROM (SELECT CASE
            WHEN ?4 < c.bucket - 1 THEN 0
            WHEN EXISTS (SELECT 1 FROM nts_refined WHERE bucket = ?4) THEN 1
            WHEN (SELECT COALESCE(SUM(n), 0) FROM nts_counts
                WHERE level = 0 AND bucket = ?4 AND kind = 0) > ?7 THEN NULL
            ELSE 0 END AS mode
            FROM (SELECT ", clock_bucket!(), " AS bucket) c) m,
        (SELECT (SELECT n FROM nts_counts WHERE level = 2 AND bucket = 0 AND kind = 0)
            - (SELECT COALESCE(SUM(n), 0) FROM nts_counts WHERE level = 1 AND bucket < ?2 AND kind = 0)
            - (SELECT COALESCE(SUM(n), 0) FROM nts_counts
               WHERE level = 0 AND bucket >= ?3 AND bucket < ?4 AND kind = 0) AS n) t,
        (SELECT (SELECT n FROM nts_counts WHERE level = 2 AND bucket = 0 AND kind = 1)
            - (SELECT COALESCE(SUM(n), 0) FROM nts_counts WHERE level = 1 AND bucket < ?2 AND kind = 1)
            - (SELECT COALESCE(SUM(n), 0) FROM nts_counts
               WHERE level = 0 AND bucket >= ?3 AND bucket < ?4 AND kind = 1) AS n) u"
);

pub(super) const CODE_COLUMNS: &str = "user_id, api_key, client_id, redirect_uri, code_challenge, code_challenge_method, scopes, expires_at, created_at";

/// A code's columns for `read_code` (`CODE_COLUMNS` and its grant's resource and extra),
/// from `authorization_codes c LEFT JOIN nts_code_grants g ON g.code = c.code`.
pub(super) const CODE_SELECT: &str = "c.user_id, c.api_key, c.client_id, c.redirect_uri, c.code_challenge, c.code_challenge_method, c.scopes, c.expires_at, c.created_at, g.resource, g.extra";

/// A code's columns for `read_code` by its string (?1), its grant's resource and extra by
/// scalar subqueries (see `SELECT_ACCESS`: a join is prepared again at every new code).
/// Read before the code's `DELETE`, whose trigger (`GRANTS_TRIGGERS`) removes the grant.
/// One `DELETE ... RETURNING` with these subqueries measured slower than this read and a
/// plain `DELETE` (PROFILE.md, 2026-12-05 `sqlite-perf2`).
pub(super) const CODE_SELECT_ONE: &str = "SELECT user_id, api_key, client_id, redirect_uri, code_challenge, code_challenge_method, scopes, expires_at, created_at, (SELECT resource FROM nts_code_grants WHERE code = ?1), (SELECT extra FROM nts_code_grants WHERE code = ?1) FROM authorization_codes WHERE code = ?1";
