//! Each operation's SQL, with the schema's name filled in once when the store is made.
//! A call's one statement is prepared once per connection where that is safe, else sent
//! unnamed with its parameters' types (see `pool::Session::run` and docs/postgresql.md,
//! "Poolers"); a transaction's statements are always sent unnamed.

/// The statements of one schema.
pub struct Sql {
    pub select_access: String,
    /// `select_access` with the token's links (migration 11): the sealed layer's read.
    pub select_access_linked: String,
    /// Removes an access token and the refresh token that points at it. $1 token.
    pub delete_access: String,
    /// `delete_access` if the token is expired at $2 (a read found it so), unless another
    /// session holds its row or its refresh token's: a read never waits on a lock, and
    /// leaves such a row to a later read or to cleanup.
    pub delete_access_if_expired: String,
    /// Arrays of the new tokens' columns: $1 tokens, $2 api keys, $3 users, $4 clients,
    /// $5 scopes, $6 refresh tokens (or NULLs), $7 expiries; $8 now (see
    /// `nts_store_access_tokens` in `schema`). Answers whether it only added rows.
    pub store_access_tokens: String,
    /// `store_access_tokens` and $9 the tokens' links (see `nts_store_linked_tokens`,
    /// migration 11): a sealed store's.
    pub store_linked_tokens: String,
    /// `store_linked_tokens` ($9 NULL: in clear) and $10, $11 the tokens' resources and
    /// extras (see `nts_store_granted_tokens`, migration 12): tokens that have either.
    pub store_granted_tokens: String,
    /// `store_code` and $11, $12 its resource and extra (`nts_store_granted_code`).
    pub store_granted_code: String,
    /// A code replaces one with the same string (see `nts_store_code` in `schema`).
    pub store_code: String,
    pub take_code: String,
    pub select_refresh: String,
    /// `select_refresh` with its access token's links (migration 11).
    pub select_refresh_linked: String,
    pub revoke_refresh: String,
    pub delete_user: String,
    /// $1 now, $2 limit: removes expired tokens (skipping rows another instance has
    /// locked) and then codes; answers how many.
    pub cleanup: String,
    /// $1 now's 4-second bucket: moves the counts of past buckets (of each level) into
    /// shard 0, then drops those at 0.
    pub fold_counts: String,
    pub drop_zero_counts: String,
    /// Family rows of refresh tokens that are gone. $1 limit.
    pub prune_families: String,
    /// Rotated-away refresh tokens of families with no live token left. $1 limit.
    pub prune_retired: String,
    /// $1 old refresh token, $2 new access token, $3 new refresh token, $4 expiry, $5 now,
    /// $6 grace period, $7 the new pair's links or NULL (see `nts_rotate`,
    /// `nts_rotate_linked` and `nts_rotate_grants`, which carries the grant's resource and
    /// extra, in `schema`).
    pub rotate: String,
    pub put_client: String,
    pub get_client: String,
    /// In registration order (`seq`, from a sequence).
    pub client_ids: String,
    pub store_pending: String,
    pub take_pending: String,
    /// $1 now (see `nts_stats` in `schema`, whose statement's plan the session keeps).
    pub stats: String,
    /// $1 now, $2 when the next automatic cleanup is due: the crowded buckets to refine
    /// before then (see `nts_due_refines` in `schema`).
    pub due_refines: String,
    /// $1 now's 4-second bucket, $2 the bucket to refine, $3 how long to wait for the
    /// locks, in ms (see `nts_refine` in `schema`). Answers whether it is refined.
    pub refine: String,
}

/// Whether this transaction is the one folding the counters of the quoted schema `s`
/// (re-entrant: true again for it). The lock is the schema's: a fold in another schema on
/// the same server (another application, a test running beside) does not make this one
/// skip. (It was one lock for the whole server until session 43.) `s` is a plain
/// identifier in double quotes, so it is also a valid string literal in single quotes.
pub(super) fn folding(s: &str) -> String {
    format!("pg_try_advisory_xact_lock(hashtext('native-token-storage fold'), hashtext('{s}'))")
}

const CODE_COLUMNS: &str = "user_id, api_key, client_id, redirect_uri, code_challenge, code_challenge_method, scopes, expires_at, created_at, resource, extra";

impl Sql {
    /// The statements for the quoted schema `s`.
    pub fn new(s: &str) -> Sql {
        let folding = folding(s);
        Sql {
            select_access: format!(
                "SELECT api_key, user_id, client_id, scopes, refresh_token, expires_at, created_at,
                    resource, extra
                 FROM {s}.access_tokens WHERE token = $1"
            ),
            select_access_linked: format!(
                "SELECT api_key, user_id, client_id, scopes, refresh_token, expires_at, created_at,
                    resource, extra,
                    (SELECT l.links FROM {s}.nts_token_links l WHERE l.token = $1)
                 FROM {s}.access_tokens WHERE token = $1"
            ),
            delete_access: format!(
                "WITH a AS (DELETE FROM {s}.access_tokens WHERE token = $1
                     RETURNING token, refresh_token)
                 DELETE FROM {s}.refresh_tokens r USING a
                 WHERE r.refresh_token = a.refresh_token AND r.access_token = a.token"
            ),
            delete_access_if_expired: format!(
                "WITH paired AS (SELECT a.token FROM {s}.access_tokens a
                     JOIN {s}.refresh_tokens r
                         ON r.refresh_token = a.refresh_token AND r.access_token = a.token
                     WHERE a.token = $1 AND a.expires_at <= $2
                     FOR UPDATE OF a, r SKIP LOCKED),
                 alone AS (SELECT a.token FROM {s}.access_tokens a
                     WHERE a.token = $1 AND a.expires_at <= $2 AND NOT EXISTS
                         (SELECT 1 FROM {s}.refresh_tokens r
                          WHERE r.refresh_token = a.refresh_token AND r.access_token = a.token)
                     FOR UPDATE OF a SKIP LOCKED),
                 a AS (DELETE FROM {s}.access_tokens x
                     WHERE x.token IN (SELECT token FROM paired UNION ALL SELECT token FROM alone)
                     RETURNING x.token, x.refresh_token)
                 DELETE FROM {s}.refresh_tokens r USING a
                 WHERE r.refresh_token = a.refresh_token AND r.access_token = a.token"
            ),
            store_access_tokens: format!(
                "SELECT {s}.nts_store_access_tokens($1, $2, $3, $4, $5, $6, $7, $8)"
            ),
            store_linked_tokens: format!(
                "SELECT {s}.nts_store_linked_tokens($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ),
            store_granted_tokens: format!(
                "SELECT {s}.nts_store_granted_tokens($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                 $11)"
            ),
            store_granted_code: format!(
                "SELECT {s}.nts_store_granted_code($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                 $11, $12)"
            ),
            store_code: format!(
                "SELECT {s}.nts_store_code($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ),
            take_code: format!(
                "DELETE FROM {s}.authorization_codes WHERE code = $1 RETURNING {CODE_COLUMNS}"
            ),
            select_refresh: format!(
                "SELECT r.user_id, r.client_id, r.scopes, r.access_token, r.created_at,
                        a.token IS NOT NULL, a.expires_at
                 FROM {s}.refresh_tokens r LEFT JOIN {s}.access_tokens a ON a.token = r.access_token
                 WHERE r.refresh_token = $1"
            ),
            select_refresh_linked: format!(
                "SELECT r.user_id, r.client_id, r.scopes, r.access_token, r.created_at,
                        a.token IS NOT NULL, a.expires_at,
                        (SELECT l.links FROM {s}.nts_token_links l WHERE l.token = r.access_token)
                 FROM {s}.refresh_tokens r LEFT JOIN {s}.access_tokens a ON a.token = r.access_token
                 WHERE r.refresh_token = $1"
            ),
            // The refresh token, its access token, and the refresh token that access token
            // names if it is another one (each row once: one statement cannot delete a row twice).
            // Its access token's row is locked first, as every other write locks an access
            // token before its refresh token (two writers of one pair never wait in a cycle).
            revoke_refresh: format!(
                "WITH held AS MATERIALIZED (SELECT a.token FROM {s}.access_tokens a
                     JOIN {s}.refresh_tokens t ON t.access_token = a.token
                     WHERE t.refresh_token = $1 FOR UPDATE OF a),
                 r AS (DELETE FROM {s}.refresh_tokens WHERE refresh_token = $1
                     AND (SELECT count(*) FROM held) >= 0
                     RETURNING access_token),
                 a AS (DELETE FROM {s}.access_tokens x USING r WHERE x.token = r.access_token
                     RETURNING x.token, x.refresh_token)
                 DELETE FROM {s}.refresh_tokens y USING a
                 WHERE y.refresh_token = a.refresh_token AND y.access_token = a.token
                     AND y.refresh_token <> $1"
            ),
            delete_user: format!(
                "WITH a AS (DELETE FROM {s}.access_tokens
                     WHERE hashtextextended(user_id, 0) = hashtextextended($1, 0) AND user_id = $1
                     RETURNING token, refresh_token),
                 r AS (DELETE FROM {s}.refresh_tokens x USING a
                     WHERE x.refresh_token = a.refresh_token RETURNING 1),
                 c AS (DELETE FROM {s}.authorization_codes WHERE user_id = $1 RETURNING 1)
                 SELECT count(*) FROM a"
            ),
            cleanup: format!(
                "WITH doomed AS (SELECT token FROM {s}.access_tokens WHERE expires_at <= $1
                     ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED),
                 gone AS (DELETE FROM {s}.access_tokens a USING doomed d WHERE a.token = d.token
                     RETURNING a.token, a.refresh_token),
                 refresh AS (DELETE FROM {s}.refresh_tokens r USING gone g
                     WHERE r.refresh_token = g.refresh_token AND r.access_token = g.token
                     RETURNING 1),
                 codes AS (DELETE FROM {s}.authorization_codes WHERE code IN
                     (SELECT code FROM {s}.authorization_codes WHERE expires_at <= $1
                      LIMIT greatest($2 - (SELECT count(*) FROM doomed), 0)
                      FOR UPDATE SKIP LOCKED)
                     RETURNING 1),
                 pending AS (DELETE FROM {s}.nts_pending_authorizations WHERE state IN
                     (SELECT state FROM {s}.nts_pending_authorizations WHERE expires_at <= $1
                      LIMIT greatest($2 - (SELECT count(*) FROM doomed)
                          - (SELECT count(*) FROM codes), 0)
                      FOR UPDATE SKIP LOCKED)
                     RETURNING 1)
                 SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM codes)
                     + (SELECT count(*) FROM pending)"
            ),
            // One instance folds at a time (the others skip it), and only the rows no
            // writer holds: a fold never waits, nor makes a writer wait in a cycle.
            fold_counts: format!(
                "WITH d AS (DELETE FROM {s}.nts_counts WHERE ctid IN
                     (SELECT ctid FROM {s}.nts_counts WHERE shard <> 0 AND level < 3
                      AND bucket < $1 >> (CASE level WHEN 0 THEN 0 WHEN 1 THEN 4 ELSE 8 END)
                      AND (SELECT {folding})
                      FOR UPDATE SKIP LOCKED)
                     RETURNING kind, level, bucket, n)
                 INSERT INTO {s}.nts_counts AS c (kind, level, bucket, shard, n)
                 SELECT kind, level, bucket, 0, sum(n) FROM d GROUP BY kind, level, bucket
                 ORDER BY kind, level, bucket
                 ON CONFLICT (kind, level, bucket, shard) DO UPDATE SET n = c.n + excluded.n"
            ),
            drop_zero_counts: format!(
                "DELETE FROM {s}.nts_counts WHERE ctid IN
                     (SELECT ctid FROM {s}.nts_counts WHERE shard = 0 AND n = 0 AND level < 3
                      AND bucket < $1 >> (CASE level WHEN 0 THEN 0 WHEN 1 THEN 4 ELSE 8 END)
                      AND (SELECT {folding})
                      FOR UPDATE SKIP LOCKED)"
            ),
            prune_families: format!(
                "DELETE FROM {s}.nts_refresh_families WHERE ctid IN
                 (SELECT f.ctid FROM {s}.nts_refresh_families f
                  WHERE NOT EXISTS (SELECT 1 FROM {s}.refresh_tokens r
                      WHERE r.refresh_token = f.refresh_token)
                  LIMIT $1 FOR UPDATE SKIP LOCKED)"
            ),
            prune_retired: format!(
                "DELETE FROM {s}.nts_retired_refresh_tokens WHERE ctid IN
                 (SELECT t.ctid FROM {s}.nts_retired_refresh_tokens t
                  WHERE NOT EXISTS (SELECT 1 FROM {s}.nts_refresh_families f
                      WHERE f.family = t.family)
                  LIMIT $1 FOR UPDATE SKIP LOCKED)"
            ),
            rotate: format!("SELECT * FROM {s}.nts_rotate_grants($1, $2, $3, $4, $5, $6, $7)"),
            put_client: format!(
                "INSERT INTO {s}.nts_clients (client_id, secret_digest, metadata, created_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (client_id) DO UPDATE SET secret_digest = excluded.secret_digest,
                     metadata = excluded.metadata"
            ),
            get_client: format!(
                "SELECT client_id, secret_digest, metadata, created_at FROM {s}.nts_clients
                 WHERE client_id = $1"
            ),
            client_ids: format!("SELECT client_id FROM {s}.nts_clients ORDER BY seq"),
            store_pending: format!(
                "INSERT INTO {s}.nts_pending_authorizations (state, data, expires_at)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (state) DO UPDATE SET data = excluded.data,
                     expires_at = excluded.expires_at"
            ),
            take_pending: format!(
                "DELETE FROM {s}.nts_pending_authorizations WHERE state = $1
                 RETURNING data, expires_at"
            ),
            stats: format!("SELECT tokens, users FROM {s}.nts_stats($1)"),
            due_refines: format!("SELECT {s}.nts_due_refines($1, $2)"),
            refine: format!("SELECT {s}.nts_refine($1, $2, $3)"),
        }
    }
}
