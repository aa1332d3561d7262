//! The schema: migrations, only ever appended, and the marker that says a file's schema
//! is this package's.

use rusqlite::Connection;

use super::connection::transaction;
use super::errors::{tx_error, TxError};
use crate::error::{Result, StoreError};

// The trigger statements of migration 3 (released text: never edited).
//
// A user's "until" is when their last token expires: the latest expires_at of their
// tokens, or 'never' while one of them never expires (NULL, or not a number, as the reader
// treats it). It is not stored: the (user_id, expires_at) index gives it in three probes of
// the pages the write itself touches. A user is counted in the buckets of their until.

/// The until of user `$user` over their tokens other than `$token` and `$also` (the row an
/// UPDATE wrote, which may carry a new token): a number, 'never', or NULL when they have
/// no other token.
macro_rules! until_without {
    ($user:literal, $token:literal, $also:literal) => {
        concat!(
            "(SELECT CASE
                WHEN EXISTS (SELECT 1 FROM access_tokens WHERE user_id = ",
            $user,
            "
                    AND expires_at IS NULL AND token NOT IN (",
            $token,
            ", ",
            $also,
            ")) THEN 'never'
                WHEN EXISTS (SELECT 1 FROM access_tokens WHERE user_id = ",
            $user,
            "
                    AND expires_at >= '' AND token NOT IN (",
            $token,
            ", ",
            $also,
            ")) THEN 'never'
                ELSE (SELECT expires_at FROM access_tokens WHERE user_id = ",
            $user,
            "
                    AND expires_at < '' AND token NOT IN (",
            $token,
            ", ",
            $also,
            ")
                    ORDER BY expires_at DESC LIMIT 1) END)"
        )
    };
}

/// Counts the user of row `$row` (NEW or OLD) in or out (`$sign` 1 or -1) as that row comes
/// or goes: `o` is their until over their other tokens, `e` the row's expires_at. The user
/// is counted (total) when `o` is NULL; their until moves between buckets when the row's
/// expiry is, or stops being, the latest. Buckets left at 0 stay until cleanup removes them.
macro_rules! count_user {
    ($user:literal, $token:literal, $also:literal, $expires:literal, $sign:literal) => {
        concat!(
            "
        UPDATE nts_counts SET n = n + (", $sign, ") WHERE level = 2 AND bucket = 0 AND kind = 1
            AND COALESCE(", $user, ", '') <> ''
            AND NOT EXISTS (SELECT 1 FROM access_tokens
                WHERE user_id = ", $user, " AND token NOT IN (", $token, ", ", $also, "));
        INSERT INTO nts_counts (level, bucket, kind, n)
            SELECT l.level, CAST(CASE w.side WHEN 1 THEN u.e ELSE u.o END AS INTEGER) >> l.bits,
                1, CASE w.side WHEN 1 THEN (", $sign, ") ELSE -(", $sign, ") END
            FROM (SELECT ", until_without!($user, $token, $also), " AS o, ", $expires, " AS e
                  WHERE COALESCE(", $user, ", '') <> '' LIMIT 1) u,
                (SELECT 1 AS side UNION ALL SELECT 2) w,
                (SELECT 0 AS level, 12 AS bits UNION ALL SELECT 1, 20) l
            WHERE CASE w.side
                WHEN 1 THEN typeof(u.e) IN ('integer', 'real') AND (u.o IS NULL
                    OR (typeof(u.o) IN ('integer', 'real') AND u.e > u.o
                        AND (CAST(u.e AS INTEGER) >> 12) <> (CAST(u.o AS INTEGER) >> 12)))
                ELSE typeof(u.o) IN ('integer', 'real') AND (typeof(u.e) NOT IN ('integer', 'real')
                    OR (u.e > u.o AND (CAST(u.e AS INTEGER) >> 12) <> (CAST(u.o AS INTEGER) >> 12)))
                END
            ON CONFLICT (level, bucket, kind) DO UPDATE SET n = n + excluded.n;
        "
        )
    };
}

/// Trigger statements that count the access token `NEW` in: the total, its buckets, its user.
macro_rules! count_in_new {
    () => {
        "
        UPDATE nts_counts SET n = n + 1 WHERE level = 2 AND bucket = 0 AND kind = 0;
        INSERT INTO nts_counts (level, bucket, kind, n)
            SELECT l.level, CAST(NEW.expires_at AS INTEGER) >> l.bits, 0, 1
            FROM (SELECT 0 AS level, 12 AS bits UNION ALL SELECT 1, 20) l
            WHERE typeof(NEW.expires_at) IN ('integer', 'real')
            ON CONFLICT (level, bucket, kind) DO UPDATE SET n = n + 1;
        "
    };
}

/// Trigger statements that count the access token `OLD` out: the total and its buckets.
macro_rules! count_out_old {
    () => {
        "
        UPDATE nts_counts SET n = n - 1 WHERE level = 2 AND bucket = 0 AND kind = 0;
        UPDATE nts_counts SET n = n - 1
            WHERE kind = 0 AND typeof(OLD.expires_at) IN ('integer', 'real')
            AND ((level = 0 AND bucket = CAST(OLD.expires_at AS INTEGER) >> 12)
                OR (level = 1 AND bucket = CAST(OLD.expires_at AS INTEGER) >> 20));
        "
    };
}

// Migration 8: millisecond counts kept only inside "refined" 4-second buckets, those with a
// row in `nts_refined` (see `refine.rs`). A token or a until at `v` is counted at level 4 in
// bucket `k`, the first millisecond at which it has expired (`v` rounded up: `v <= now`
// exactly when `k <= now`), and at level 3 in `k >> 6` (64 ms); when rounding up takes `k`
// into the next 4-second bucket (a fraction in the bucket's last millisecond) it is not
// counted finely: it never expires inside its own bucket. Levels 3 and 4 of a bucket are
// read only while it is refined and current (`live_refined!`).
//
// The work is done by the INSTEAD OF trigger of the view `nts_fine_moves`, which small
// triggers insert into only when the write touches a refined bucket (`touches_refined!`):
// SQLite sets up a trigger's registers at each call, so the big program costs the other
// writes nothing (holding it in the gated trigger itself cost an insert ~+10 %).

/// Whether `v` (any value) gets fine counts: a number, in a refined bucket, whose
/// `fine_key!` stays in that bucket.
macro_rules! refined {
    ($v:literal) => {
        concat!(
            "typeof(", $v, ") IN ('integer', 'real') AND (", fine_key!($v), " >> 12) = (CAST(",
            $v, " AS INTEGER) >> 12) AND EXISTS (SELECT 1 FROM nts_refined
                WHERE bucket = CAST(", $v, " AS INTEGER) >> 12)"
        )
    };
}

/// Whether a write of the row of user `$user` expiring at `$expires` may change fine counts:
/// a refined bucket is live (`live_refined!`), and the row's expiry is in a refined bucket
/// or one of the user's tokens is (the one their until may be, before or after).
macro_rules! touches_refined {
    ($user:literal, $expires:literal) => {
        concat!(
            live_refined!(4),
            " AND ((",
            refined!($expires),
            ") OR EXISTS (SELECT 1 FROM nts_refined m WHERE EXISTS (SELECT 1 FROM access_tokens a
                WHERE a.user_id = ",
            $user,
            " AND a.expires_at >= (m.bucket << 12)
                AND a.expires_at < ((m.bucket + 1) << 12))))"
        )
    };
}

/// Counts the access token expiring at `$expires` in (`$sign` 1) or out (-1) of the fine
/// counts of its refined bucket.
macro_rules! count_fine {
    ($expires:literal, $sign:literal) => {
        concat!(
            "
        INSERT INTO nts_counts (level, bucket, kind, n)
            SELECT l.level, ", fine_key!($expires), " >> l.bits, 0, (", $sign, ")
            FROM (SELECT 3 AS level, 6 AS bits UNION ALL SELECT 4, 0) l
            WHERE ", refined!($expires), "
            ON CONFLICT (level, bucket, kind) DO UPDATE SET n = n + excluded.n;
        "
        )
    };
}

/// `count_user!` for the fine counts: the user's until moves from `o` (over their other
/// tokens) to the row's `e` as the row comes (`$sign` 1), back as it goes (-1), when `e`
/// becomes their until; counted where that until is in a refined bucket.
macro_rules! count_user_fine {
    ($user:literal, $token:literal, $also:literal, $expires:literal, $sign:literal) => {
        concat!(
            "
        INSERT INTO nts_counts (level, bucket, kind, n)
            SELECT l.level, ", fine_key!("v.u"), " >> l.bits, 1, v.n
            FROM (SELECT CASE w.side WHEN 1 THEN x.e ELSE x.o END AS u,
                    CASE w.side WHEN 1 THEN (", $sign, ") ELSE -(", $sign, ") END AS n
                FROM (SELECT ", until_without!($user, $token, $also), " AS o, ", $expires, " AS e
                      WHERE COALESCE(", $user, ", '') <> '' LIMIT 1) x,
                    (SELECT 1 AS side UNION ALL SELECT 2) w
                WHERE x.o IS NULL OR (typeof(x.o) IN ('integer', 'real')
                    AND (typeof(x.e) NOT IN ('integer', 'real') OR x.e > x.o))) v,
                (SELECT 3 AS level, 6 AS bits UNION ALL SELECT 4, 0) l
            WHERE ", refined!("v.u"), "
            ON CONFLICT (level, bucket, kind) DO UPDATE SET n = n + excluded.n;
        "
        )
    };
}

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
/// Append only: a released entry is never edited.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1. The old module's tables and columns (so it can still open the file) and indexes.
    //    A new file gets them WITHOUT ROWID: the row lives in the primary-key b-tree, so a
    //    write dirties one page less per table (a legacy file keeps its rowid tables).
    //    Codes are few and short-lived: no secondary indexes, one page per write.
    //    Each index carries the other column, so that getStats can tell, from the indexes
    //    alone, which users have only expired tokens left.
    "CREATE TABLE IF NOT EXISTS access_tokens (
        token TEXT PRIMARY KEY,
        api_key TEXT NOT NULL,
        user_id TEXT NOT NULL,
        client_id TEXT NOT NULL,
        scopes TEXT NOT NULL,
        refresh_token TEXT,
        expires_at INTEGER,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS refresh_tokens (
        refresh_token TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        client_id TEXT NOT NULL,
        scopes TEXT NOT NULL,
        access_token TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS authorization_codes (
        code TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        api_key TEXT NOT NULL,
        client_id TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        code_challenge TEXT,
        code_challenge_method TEXT,
        scopes TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS idx_access_tokens_user_id ON access_tokens(user_id, expires_at);
    CREATE INDEX IF NOT EXISTS idx_access_tokens_expires_at ON access_tokens(expires_at, user_id);",
    // 2. Counters kept by triggers, so getStats is O(1) and right across processes (and
    //    stays right when the old module writes the file: its writes fire them too).
    //    Whether a user has another token is answered by the user_id index, so a write
    //    dirties one counter page, nothing more. A user id of '' means "none".
    "CREATE TABLE nts_stats (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        tokens INTEGER NOT NULL,
        users INTEGER NOT NULL
    );
    INSERT INTO nts_stats (id, tokens, users) VALUES (1,
        (SELECT COUNT(*) FROM access_tokens),
        (SELECT COUNT(DISTINCT user_id) FROM access_tokens WHERE user_id <> ''));
    CREATE TRIGGER nts_access_insert AFTER INSERT ON access_tokens BEGIN
        UPDATE nts_stats SET tokens = tokens + 1,
            users = users + (COALESCE(NEW.user_id, '') <> '' AND NOT EXISTS (
                SELECT 1 FROM access_tokens WHERE user_id = NEW.user_id AND token <> NEW.token))
        WHERE id = 1;
    END;
    CREATE TRIGGER nts_access_delete AFTER DELETE ON access_tokens BEGIN
        UPDATE nts_stats SET tokens = tokens - 1,
            users = users - (COALESCE(OLD.user_id, '') <> '' AND NOT EXISTS (
                SELECT 1 FROM access_tokens WHERE user_id = OLD.user_id))
        WHERE id = 1;
    END;
    CREATE TRIGGER nts_access_update_user AFTER UPDATE OF user_id ON access_tokens
    WHEN OLD.user_id IS NOT NEW.user_id BEGIN
        UPDATE nts_stats SET
            users = users
                - (COALESCE(OLD.user_id, '') <> '' AND NOT EXISTS (
                    SELECT 1 FROM access_tokens WHERE user_id = OLD.user_id))
                + (COALESCE(NEW.user_id, '') <> '' AND NOT EXISTS (
                    SELECT 1 FROM access_tokens WHERE user_id = NEW.user_id AND token <> NEW.token))
        WHERE id = 1;
    END;",
    // 3. getStats in constant time however many expired rows wait for cleanup, and counts
    //    that stay right whoever writes. `nts_counts` holds, for access tokens (kind 0) and
    //    for users by their until (kind 1, see `until_without!`): the totals (level 2), and
    //    how many expire in each 4-second bucket (level 0, expires_at >> 12) and each
    //    17-minute one (level 1, >> 20). getStats subtracts the past 17-minute buckets, then
    //    the past 4-second buckets of the current 17 minutes, and counts only the current 4
    //    seconds' rows. Keyed (level, bucket, kind), the rows a write touches sit on one or
    //    two pages: a token's bucket and its user's are usually the same.
    //    `INSERT OR REPLACE` (the old module's way of writing) deletes the old row without
    //    firing delete triggers, so `nts_access_replace` deletes it first, as a DELETE.
    concat!(
        "DROP TRIGGER IF EXISTS nts_access_insert;
    DROP TRIGGER IF EXISTS nts_access_delete;
    DROP TRIGGER IF EXISTS nts_access_update_user;
    DROP TABLE IF EXISTS nts_stats;
    CREATE TABLE nts_counts (
        level INTEGER NOT NULL,
        bucket INTEGER NOT NULL,
        kind INTEGER NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (level, bucket, kind)
    ) WITHOUT ROWID;
    INSERT INTO nts_counts (level, bucket, kind, n)
        SELECT l.level, CAST(a.expires_at AS INTEGER) >> l.bits, 0, COUNT(*)
        FROM access_tokens a, (SELECT 0 AS level, 12 AS bits UNION ALL SELECT 1, 20) l
        WHERE typeof(a.expires_at) IN ('integer', 'real') GROUP BY 1, 2;
    INSERT INTO nts_counts (level, bucket, kind, n)
        SELECT l.level, CAST(u.until AS INTEGER) >> l.bits, 1, COUNT(*)
        FROM (SELECT CASE WHEN SUM(typeof(expires_at) NOT IN ('integer', 'real')) > 0
                THEN NULL ELSE MAX(expires_at) END AS until
              FROM access_tokens WHERE COALESCE(user_id, '') <> '' GROUP BY user_id) u,
            (SELECT 0 AS level, 12 AS bits UNION ALL SELECT 1, 20) l
        WHERE u.until IS NOT NULL GROUP BY 1, 2;
    INSERT INTO nts_counts (level, bucket, kind, n) VALUES
        (2, 0, 0, (SELECT COUNT(*) FROM access_tokens)),
        (2, 0, 1, (SELECT COUNT(DISTINCT user_id) FROM access_tokens
            WHERE COALESCE(user_id, '') <> ''));
    CREATE TRIGGER nts_access_replace BEFORE INSERT ON access_tokens
    WHEN EXISTS (SELECT 1 FROM access_tokens WHERE token = NEW.token) BEGIN
        DELETE FROM access_tokens WHERE token = NEW.token;
    END;
    CREATE TRIGGER nts_access_insert AFTER INSERT ON access_tokens BEGIN",
        count_in_new!(),
        count_user!(
            "NEW.user_id",
            "NEW.token",
            "NEW.token",
            "NEW.expires_at",
            "1"
        ),
        "END;
    CREATE TRIGGER nts_access_delete AFTER DELETE ON access_tokens BEGIN",
        count_out_old!(),
        count_user!(
            "OLD.user_id",
            "OLD.token",
            "OLD.token",
            "OLD.expires_at",
            "-1"
        ),
        "END;
    CREATE TRIGGER nts_access_update AFTER UPDATE OF user_id, expires_at ON access_tokens
    WHEN OLD.user_id IS NOT NEW.user_id OR OLD.expires_at IS NOT NEW.expires_at BEGIN",
        count_out_old!(),
        count_user!(
            "OLD.user_id",
            "OLD.token",
            "NEW.token",
            "OLD.expires_at",
            "-1"
        ),
        count_in_new!(),
        count_user!(
            "NEW.user_id",
            "NEW.token",
            "NEW.token",
            "NEW.expires_at",
            "1"
        ),
        "END;"
    ),
    // 4. The rest of the server's OAuth state: registered clients (secrets as digests),
    //    pending authorizations, and refresh-token families for rotation with reuse
    //    detection, in tables of their own (the old module's keep their columns). A
    //    refresh token a rotation issued has a row in `nts_refresh_families` naming its
    //    family (the family's first refresh token); one without starts its own (every
    //    token storeAccessToken or the old module wrote). Tokens rotated away are
    //    remembered with their family.
    "CREATE TABLE nts_clients (
        client_id TEXT PRIMARY KEY,
        secret_digest TEXT,
        metadata TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE nts_pending_authorizations (
        state TEXT PRIMARY KEY,
        data TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX nts_pending_authorizations_expires_at
        ON nts_pending_authorizations (expires_at);
    CREATE TABLE nts_refresh_families (
        refresh_token TEXT PRIMARY KEY,
        family TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX nts_refresh_families_family ON nts_refresh_families (family);
    CREATE TABLE nts_retired_refresh_tokens (
        refresh_token TEXT PRIMARY KEY,
        family TEXT NOT NULL,
        retired_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX nts_retired_refresh_tokens_family ON nts_retired_refresh_tokens (family);",
    // 5. getAllClients in registration order: `created_at` is a millisecond, shared by the
    //    clients registered within it, so each client gets a sequence number when first
    //    stored (kept when it is registered again). Existing clients are numbered in the
    //    order they were listed until now.
    "ALTER TABLE nts_clients ADD COLUMN seq INTEGER;
    UPDATE nts_clients SET seq = (SELECT COUNT(*) FROM nts_clients o
        WHERE o.created_at < nts_clients.created_at
           OR (o.created_at = nts_clients.created_at AND o.client_id <= nts_clients.client_id));
    CREATE INDEX nts_clients_seq ON nts_clients (seq);",
    // 6. Which process's automatic cleanup works on the file (one at a time), until when:
    //    two cleaning a backlog by turns left a writer of a third process almost no gap
    //    to take the write lock in.
    "CREATE TABLE nts_cleaner (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        holder INTEGER NOT NULL,
        until INTEGER NOT NULL
    );",
    // 7. Facts about the store itself, by name: `seal` is the mark of encryption at rest
    //    (issue 19, `store::sealed`), absent in a store written in clear.
    "CREATE TABLE nts_meta (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );",
    // 8. getStats in constant time in the seconds after a burst of expiries: migration 3
    //    visits the expired rows of the current 4-second bucket. Millisecond counts (levels
    //    4 and 3) are now kept inside the buckets listed in `nts_refined` (see above the
    //    migrations): getStats lists the current bucket when it holds many rows, counting
    //    them once (`refine.rs`), then sums at most 64 + 64 fine counts. Migration 3's
    //    triggers stay; a write pays one probe while no bucket is refined and current, two
    //    or three more while one is, and the fine counting only when the row or its
    //    user's until is in that bucket.
    concat!(
        "CREATE TABLE nts_refined (bucket INTEGER PRIMARY KEY);
    CREATE VIEW nts_fine_moves (user_id, token, also, expires_at, sign) AS
        SELECT NULL, NULL, NULL, NULL, NULL WHERE 0;
    CREATE TRIGGER nts_fine_move INSTEAD OF INSERT ON nts_fine_moves BEGIN",
        count_fine!("NEW.expires_at", "NEW.sign"),
        count_user_fine!(
            "NEW.user_id",
            "NEW.token",
            "NEW.also",
            "NEW.expires_at",
            "NEW.sign"
        ),
        "END;
    CREATE TRIGGER nts_access_insert_fine AFTER INSERT ON access_tokens
    WHEN ", touches_refined!("NEW.user_id", "NEW.expires_at"), " BEGIN
        INSERT INTO nts_fine_moves VALUES (NEW.user_id, NEW.token, NEW.token, NEW.expires_at, 1);
    END;
    CREATE TRIGGER nts_access_delete_fine AFTER DELETE ON access_tokens
    WHEN ", touches_refined!("OLD.user_id", "OLD.expires_at"), " BEGIN
        INSERT INTO nts_fine_moves VALUES (OLD.user_id, OLD.token, OLD.token, OLD.expires_at, -1);
    END;
    CREATE TRIGGER nts_access_update_fine AFTER UPDATE OF user_id, expires_at ON access_tokens
    WHEN (OLD.user_id IS NOT NEW.user_id OR OLD.expires_at IS NOT NEW.expires_at)
        AND ((", touches_refined!("OLD.user_id", "OLD.expires_at"), ")
            OR (", touches_refined!("NEW.user_id", "NEW.expires_at"), ")) BEGIN
        INSERT INTO nts_fine_moves VALUES (OLD.user_id, OLD.token, NEW.token, OLD.expires_at, -1);
        INSERT INTO nts_fine_moves VALUES (NEW.user_id, NEW.token, NEW.token, NEW.expires_at, 1);
    END;"
    ),
    // 9. Sealed tokens (issue 19, `store::sealed`): with a keyring, an access token's
    //    sealed copy of its access and refresh token strings (its `token` and
    //    `refresh_token` being their digests), which the layer opens for getAccessToken and
    //    getRefreshToken. A table of its own, not a column: the old module inserts rows of
    //    `access_tokens` by position. Empty in a store in clear; in a sealed one a row leaves
    //    with its token by `LINKS_TRIGGER`, created with the store's mark (not here: a store
    //    in clear pays no trigger on its deletes).
    "CREATE TABLE nts_token_links (
        token TEXT PRIMARY KEY,
        links TEXT NOT NULL
    ) WITHOUT ROWID;",
    // 10. A grant's resource (RFC 8707) and extra (the caller's JSON text, sealed under a
    //    keyring) of an access token and of an authorization code (issue 20): tables of
    //    their own, not columns, for the reason of migration 9; a row only for a token or
    //    code that has either. A row leaves with its token or code by `GRANTS_TRIGGERS`,
    //    created by the first write of such a row (a store that never has one pays no
    //    trigger on its deletes).
    "CREATE TABLE nts_token_grants (
        token TEXT PRIMARY KEY,
        resource TEXT,
        extra TEXT
    ) WITHOUT ROWID;
    CREATE TABLE nts_code_grants (
        code TEXT PRIMARY KEY,
        resource TEXT,
        extra TEXT
    ) WITHOUT ROWID;",
];

/// The grant rows of migration 10 leave with their access token or code: created in the
/// transaction that writes the first such row (`tokens::insert_token_grant`).
pub(super) const GRANTS_TRIGGERS: &str =
    "CREATE TRIGGER IF NOT EXISTS nts_token_grants_delete AFTER DELETE ON access_tokens BEGIN
        DELETE FROM nts_token_grants WHERE token = OLD.token;
    END;
    CREATE TRIGGER IF NOT EXISTS nts_code_grants_delete AFTER DELETE ON authorization_codes BEGIN
        DELETE FROM nts_code_grants WHERE code = OLD.code;
    END;";

/// A sealed token's links (migration 9) leave with its access token: created by
/// `set_seal_mark`, in the transaction that marks the store sealed.
pub(super) const LINKS_TRIGGER: &str =
    "CREATE TRIGGER IF NOT EXISTS nts_token_links_delete AFTER DELETE ON access_tokens BEGIN
        DELETE FROM nts_token_links WHERE token = OLD.token;
    END;";

/// What the SQLite file's errors carry when a sealed store refuses a row in clear
/// (`CLEAR_ROWS_REFUSED`; `errors::from_sqlite` makes it ENCRYPTION_MISMATCH).
pub(super) const CLEAR_ROW_MESSAGE: &str = "nts: a row in clear refused by a sealed token store";

/// A sealed store refuses, in the database itself, a row written in clear (its API key or
/// pending data not sealed): what a process without keys that checked the file before it
/// was sealed writes. Created with the mark (`set_seal_mark`, `encrypt`), dropped with it
/// (`decrypt`): a store in clear has no such trigger, and pays nothing. Refresh tokens are
/// written only with their access token (one transaction), which the first trigger refuses.
pub(super) const CLEAR_ROWS_REFUSED: &str =
    "CREATE TRIGGER IF NOT EXISTS nts_sealed_access_tokens BEFORE INSERT ON access_tokens
        WHEN NEW.api_key NOT GLOB 'nts[12]:*'
        BEGIN SELECT RAISE(ABORT, 'nts: a row in clear refused by a sealed token store'); END;
    CREATE TRIGGER IF NOT EXISTS nts_sealed_authorization_codes BEFORE INSERT ON authorization_codes
        WHEN NEW.api_key NOT GLOB 'nts[12]:*'
        BEGIN SELECT RAISE(ABORT, 'nts: a row in clear refused by a sealed token store'); END;
    CREATE TRIGGER IF NOT EXISTS nts_sealed_pending BEFORE INSERT ON nts_pending_authorizations
        WHEN NEW.data NOT GLOB 'nts[12]:*'
        BEGIN SELECT RAISE(ABORT, 'nts: a row in clear refused by a sealed token store'); END;";

/// `CLEAR_ROWS_REFUSED` dropped (a store back in clear).
pub(super) const CLEAR_ROWS_ALLOWED: &str = "DROP TRIGGER IF EXISTS nts_sealed_access_tokens;
    DROP TRIGGER IF EXISTS nts_sealed_authorization_codes;
    DROP TRIGGER IF EXISTS nts_sealed_pending;";

/// `PRAGMA application_id` of a file whose schema this package wrote ("nts1"): together
/// with `user_version`, the marker that tells our schema versions from another program's.
pub(super) const APPLICATION_ID: i32 = 0x6e74_7331;

/// Brings the schema up to date. An up-to-date file (every open but the first) is only
/// read: no write lock is taken, so a process starts while another holds the lock for a
/// long import. Only a migration takes it, and checks the version again under it, as
/// another process may have migrated meanwhile.
pub(super) fn migrate(conn: &mut Connection, shown: &str) -> Result<()> {
    let latest = MIGRATIONS.len() as i64;
    // In one read transaction: its two header fields (and the tables, for a file without
    // them) as one commit left them, not torn by another process's migration in between.
    let applied = transaction(conn, "BEGIN", |c| applied_migrations(c, shown));
    if applied.map_err(|e| tx_error(shown, e))? == latest {
        return Ok(());
    }
    transaction(conn, "BEGIN IMMEDIATE", |c| {
        let from = applied_migrations(c, shown)?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
            c.execute_batch(sql)?;
            c.pragma_update(None, "user_version", i as i64 + 1)?;
        }
        c.pragma_update(None, "application_id", APPLICATION_ID)?;
        Ok(())
    })
    .map_err(|e| tx_error(shown, e))
}

/// How many of `MIGRATIONS` the file has, from its header; an error for a file whose
/// marker this package never wrote (another program's `user_version`) or a newer schema.
fn applied_migrations(c: &Connection, shown: &str) -> std::result::Result<i64, TxError> {
    let latest = MIGRATIONS.len() as i64;
    let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let app: i32 = c.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let refuse = |reason: String| {
        TxError::Store(StoreError::Open {
            path: shown.to_owned(),
            reason,
        })
    };
    match (app, version) {
        (APPLICATION_ID, v) if v > latest => Err(refuse(format!(
            "its schema version {v} is newer than this package's {latest}; upgrade native-token-storage"
        ))),
        (APPLICATION_ID, v) if v >= 1 => Ok(v),
        // A new file, or one the old JavaScript module made: its tables are kept. Another
        // program's file may hold tables of the same names with other columns.
        (0, 0) => match missing_columns(c)?.as_slice() {
            [] => Ok(0),
            missing => Err(refuse(format!(
                "it has tables named as the token store's without their columns (missing: {}), \
                 so it is not a token store of native-token-storage or of the module it \
                 replaces; set TOKEN_DB_PATH to a file of the token store's own",
                missing.join(", ")
            ))),
        },
        // A file of version 0.1 of this package, which did not set application_id.
        (0, 2) if has_v01_schema(c)? => Ok(2),
        _ => Err(refuse(format!(
            "its user_version ({version}) and application_id ({app}) were not written by \
             native-token-storage, so another program may use this file; \
             set TOKEN_DB_PATH to a file of the token store's own"
        ))),
    }
}

/// The old module's tables and the columns this package reads and writes in them.
const OLD_TABLES: &[(&str, &[&str])] = &[
    (
        "access_tokens",
        &[
            "token",
            "api_key",
            "user_id",
            "client_id",
            "scopes",
            "refresh_token",
            "expires_at",
            "created_at",
        ],
    ),
    (
        "refresh_tokens",
        &[
            "refresh_token",
            "user_id",
            "client_id",
            "scopes",
            "access_token",
            "created_at",
        ],
    ),
    (
        "authorization_codes",
        &[
            "code",
            "user_id",
            "api_key",
            "client_id",
            "redirect_uri",
            "code_challenge",
            "code_challenge_method",
            "scopes",
            "expires_at",
            "created_at",
        ],
    ),
];

/// The columns (`table.column`) missing from those of the old module's tables the file has.
fn missing_columns(c: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut missing = Vec::new();
    let mut columns = c.prepare("SELECT name FROM pragma_table_info(?1)")?;
    for (table, wanted) in OLD_TABLES {
        let have: Vec<String> = columns
            .query_map([table], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if have.is_empty() {
            continue; // not there: migration 1 creates it
        }
        for column in *wanted {
            if !have.iter().any(|h| h.eq_ignore_ascii_case(column)) {
                missing.push(format!("{table}.{column}"));
            }
        }
    }
    Ok(missing)
}

/// Whether the file has the counters table and trigger that version 0.1 created.
fn has_v01_schema(c: &Connection) -> rusqlite::Result<bool> {
    c.query_row(
        "SELECT COUNT(*) = 2 FROM sqlite_master
         WHERE (type = 'table' AND name = 'nts_stats')
            OR (type = 'trigger' AND name = 'nts_access_insert')",
        [],
        |r| r.get(0),
    )
}
