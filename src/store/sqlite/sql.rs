//! The statements shared by several operations (each operation's own are inline, beside
//! the code that binds them).

pub(super) const SELECT_ACCESS: &str =
    "SELECT api_key, user_id, client_id, scopes, refresh_token, expires_at, created_at
     FROM access_tokens WHERE token = ?1";

/// getStats: the counters, less the expired rows of past buckets (from their counts) and
/// of the current 4-second bucket (visited). ?1 now, ?2 its 17-minute bucket, ?3 that
/// bucket's first 4-second bucket, ?4 now's 4-second bucket, ?5 that bucket's first instant.
pub(super) const STATS: &str = "SELECT
     (SELECT n FROM nts_counts WHERE level = 2 AND bucket = 0 AND kind = 0)
        - (SELECT COALESCE(SUM(n), 0) FROM nts_counts WHERE level = 1 AND bucket < ?2 AND kind = 0)
        - (SELECT COALESCE(SUM(n), 0) FROM nts_counts
           WHERE level = 0 AND bucket >= ?3 AND bucket < ?4 AND kind = 0)
        - (SELECT COUNT(*) FROM access_tokens INDEXED BY idx_access_tokens_expires_at
           WHERE expires_at >= ?5 AND expires_at <= ?1),
     (SELECT n FROM nts_counts WHERE level = 2 AND bucket = 0 AND kind = 1)
        - (SELECT COALESCE(SUM(n), 0) FROM nts_counts WHERE level = 1 AND bucket < ?2 AND kind = 1)
        - (SELECT COALESCE(SUM(n), 0) FROM nts_counts
           WHERE level = 0 AND bucket >= ?3 AND bucket < ?4 AND kind = 1)
        - (SELECT COUNT(DISTINCT a.user_id)
           FROM access_tokens a INDEXED BY idx_access_tokens_expires_at
           WHERE a.expires_at >= ?5 AND a.expires_at <= ?1 AND a.user_id <> ''
           AND NOT EXISTS (SELECT 1 FROM access_tokens l
               WHERE l.user_id = a.user_id AND l.expires_at > ?1)
           AND NOT EXISTS (SELECT 1 FROM access_tokens l
               WHERE l.user_id = a.user_id AND l.expires_at IS NULL))";

pub(super) const CODE_COLUMNS: &str = "user_id, api_key, client_id, redirect_uri, code_challenge, code_challenge_method, scopes, expires_at, created_at";
