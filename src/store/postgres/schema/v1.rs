//! Migration 1: The tables, and the counters that make getStats constant-time.
//!
//! `nts_users` has a row for each user with at least one token (keyed by the SHA-256
//! of the id): their "until" (when
//! their last token expires; `never` while one never expires). Locking that row
//! serialises the writes of one user's tokens, nobody else's.
//!
//! `nts_counts` counts access tokens (kind 0) and users by their until (kind 1): in
//! total (level 3, bucket 0), and by the 4-second (level 0, expires_at >> 12), 65-second
//! (level 1, >> 16) and 17-minute (level 2, >> 20) bucket in which they expire.
//! getStats subtracts from the totals the past 17-minute buckets, the past 65-second
//! buckets of the current 17 minutes and the past 4-second buckets of the current
//! 65 seconds (at most 16 of each, times the shards), and counts only the current
//! 4 seconds' rows. A writer adds
//! to the rows of its own shard (1 to 16, by its backend's pid), so there is no single
//! row that every insert updates; cleanup folds past buckets into shard 0.
//!
//! The functions that run statements of their own keep those statements' plans for the
//! session: made when the tables were small, a plan could scan a whole table once they
//! are large. `enable_seqscan = off` makes them use the indexes whatever the size.
//!
//! A B-tree entry holds at most about 2.7 kB, and tokens, codes and user ids may be
//! longer (a signed JWT, say): the strings are indexed by hash, uniqueness kept by
//! exclusion constraints over hash indexes, and the one ordered index per user by a
//! hash of the id (`hashtextextended`, which the statements repeat to use it).

pub const SQL: &str = "CREATE TABLE {s}.access_tokens (
        token TEXT NOT NULL,
        api_key TEXT NOT NULL,
        user_id TEXT,
        client_id TEXT NOT NULL,
        scopes TEXT NOT NULL,
        refresh_token TEXT,
        expires_at BIGINT,
        created_at BIGINT NOT NULL,
        CONSTRAINT access_tokens_token EXCLUDE USING hash (token WITH =)
    );
    CREATE TABLE {s}.refresh_tokens (
        refresh_token TEXT NOT NULL,
        user_id TEXT,
        client_id TEXT NOT NULL,
        scopes TEXT NOT NULL,
        access_token TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        CONSTRAINT refresh_tokens_refresh_token EXCLUDE USING hash (refresh_token WITH =)
    );
    CREATE TABLE {s}.authorization_codes (
        code TEXT NOT NULL,
        user_id TEXT,
        api_key TEXT NOT NULL,
        client_id TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        code_challenge TEXT,
        code_challenge_method TEXT,
        scopes TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        CONSTRAINT authorization_codes_code EXCLUDE USING hash (code WITH =)
    );
    CREATE INDEX idx_access_tokens_user_id
        ON {s}.access_tokens (hashtextextended(user_id, 0), expires_at);
    CREATE INDEX idx_access_tokens_expires_at ON {s}.access_tokens (expires_at);
    CREATE INDEX idx_authorization_codes_user_id ON {s}.authorization_codes USING hash (user_id);
    CREATE INDEX idx_authorization_codes_expires_at ON {s}.authorization_codes (expires_at);
    CREATE TABLE {s}.nts_users (
        user_key BYTEA PRIMARY KEY,
        never BOOLEAN,
        until BIGINT
    );
    CREATE INDEX nts_users_until ON {s}.nts_users (until) WHERE NOT never;
    CREATE TABLE {s}.nts_counts (
        kind SMALLINT NOT NULL,
        level SMALLINT NOT NULL,
        bucket BIGINT NOT NULL,
        shard SMALLINT NOT NULL,
        n BIGINT NOT NULL,
        PRIMARY KEY (kind, level, bucket, shard)
    );
    -- Adds to the counts of kind k for rows leaving (d = -1) or coming (d = 1), by expiry.
    -- The levels of the counts and the bits of an expiry that each drops: 4 seconds,
    -- 65 seconds, 17 minutes, and the totals.
    CREATE FUNCTION {s}.nts_levels() RETURNS TABLE (level SMALLINT, bits INTEGER)
    LANGUAGE sql IMMUTABLE AS $nts$
        VALUES (0::SMALLINT, 12), (1::SMALLINT, 16), (2::SMALLINT, 20), (3::SMALLINT, 0)
    $nts$;
    -- (plpgsql, not sql: plpgsql keeps its statements' plans for the session.)
    CREATE FUNCTION {s}.nts_count(k SMALLINT, e BIGINT[], d BIGINT) RETURNS void
    LANGUAGE plpgsql AS $nts$
    BEGIN
        INSERT INTO {s}.nts_counts AS c (kind, level, bucket, shard, n)
        SELECT k, l.level, CASE l.level WHEN 3 THEN 0 ELSE r.e >> l.bits END,
            (pg_backend_pid() % 16 + 1)::SMALLINT, count(*) * d
        FROM unnest(e) AS r (e), {s}.nts_levels() AS l (level, bits)
        WHERE l.level = 3 OR r.e IS NOT NULL
        GROUP BY 1, 2, 3, 4
        ON CONFLICT (kind, level, bucket, shard) DO UPDATE SET n = c.n + excluded.n;
    END
    $nts$;
    -- Brings the rows and counts of the users u up to date with their tokens. Their rows
    -- are locked first, in one order (so that two writers never wait on each other in a
    -- cycle), then their tokens are read: a writer that changed them meanwhile waits for
    -- this transaction, and reads them after it.
    CREATE FUNCTION {s}.nts_users_changed(u TEXT[]) RETURNS void
    LANGUAGE plpgsql SET enable_seqscan = off AS $nts$
    DECLARE
        keys BYTEA[];
        ids TEXT[];
        nevers BOOLEAN[];
        untils BIGINT[];
        done BIGINT;
        one TEXT;
        one_key BYTEA;
        one_was_never BOOLEAN;
        one_was_until BIGINT;
        one_is_never BOOLEAN;
        one_is_until BIGINT;
    BEGIN
        -- One user (every write but a bulk one): plain statements, cheap to run.
        IF cardinality(u) = 1 THEN
            one := u[1];
            IF one IS NULL OR one = '' THEN
                RETURN;
            END IF;
            one_key := sha256(convert_to(one, 'UTF8'));
            INSERT INTO {s}.nts_users AS y (user_key, never, until) VALUES (one_key, NULL, NULL)
            ON CONFLICT (user_key) DO UPDATE SET user_key = y.user_key
            RETURNING y.never, y.until INTO one_was_never, one_was_until;
            one_is_never := EXISTS (SELECT 1 FROM {s}.access_tokens
                WHERE hashtextextended(user_id, 0) = hashtextextended(one, 0)
                    AND user_id = one AND expires_at IS NULL);
            IF NOT one_is_never THEN
                SELECT max(expires_at) INTO one_is_until FROM {s}.access_tokens
                WHERE hashtextextended(user_id, 0) = hashtextextended(one, 0) AND user_id = one;
                IF one_is_until IS NULL THEN
                    one_is_never := NULL;
                END IF;
            END IF;
            IF one_was_never IS DISTINCT FROM one_is_never OR one_was_until IS DISTINCT FROM one_is_until THEN
                IF one_was_never IS NOT NULL THEN
                    PERFORM {s}.nts_count(1::SMALLINT, ARRAY[one_was_until], -1);
                END IF;
                IF one_is_never IS NOT NULL THEN
                    PERFORM {s}.nts_count(1::SMALLINT, ARRAY[one_is_until], 1);
                    UPDATE {s}.nts_users SET never = one_is_never, until = one_is_until
                    WHERE user_key = one_key;
                END IF;
            END IF;
            IF one_is_never IS NULL THEN
                DELETE FROM {s}.nts_users WHERE user_key = one_key;
            END IF;
            RETURN;
        END IF;
        WITH k AS (
            SELECT DISTINCT x AS id, sha256(convert_to(x, 'UTF8')) AS key
            FROM unnest(u) AS x WHERE x <> ''
        ),
        locked AS (
            INSERT INTO {s}.nts_users AS y (user_key, never, until)
            SELECT key, NULL, NULL FROM k ORDER BY key
            ON CONFLICT (user_key) DO UPDATE SET user_key = y.user_key
            RETURNING y.user_key, y.never, y.until
        )
        SELECT array_agg(l.user_key), array_agg(k.id), array_agg(l.never), array_agg(l.until)
        INTO keys, ids, nevers, untils
        FROM locked l JOIN k ON k.key = l.user_key;
        IF keys IS NULL THEN
            RETURN;
        END IF;
        WITH was AS (
            SELECT * FROM unnest(keys, ids, nevers, untils) AS w (key, id, never, until)
        ),
        now_ AS (
            SELECT w.key, w.never AS was_never, w.until AS was_until,
                CASE WHEN n.any_never THEN true WHEN m.latest IS NULL THEN NULL ELSE false END
                    AS is_never,
                CASE WHEN n.any_never THEN NULL ELSE m.latest END AS is_until
            FROM was w,
            LATERAL (SELECT EXISTS (SELECT 1 FROM {s}.access_tokens a
                WHERE hashtextextended(a.user_id, 0) = hashtextextended(w.id, 0)
                    AND a.user_id = w.id AND a.expires_at IS NULL) AS any_never) n,
            LATERAL (SELECT max(a.expires_at) AS latest FROM {s}.access_tokens a
                WHERE hashtextextended(a.user_id, 0) = hashtextextended(w.id, 0)
                    AND a.user_id = w.id) m
        ),
        changed AS (
            SELECT * FROM now_
            WHERE was_never IS DISTINCT FROM is_never OR was_until IS DISTINCT FROM is_until
        ),
        moves AS (
            SELECT was_until AS e, -1 AS d FROM changed WHERE was_never IS NOT NULL
            UNION ALL
            SELECT is_until, 1 FROM changed WHERE is_never IS NOT NULL
        ),
        counted AS (
            INSERT INTO {s}.nts_counts AS c (kind, level, bucket, shard, n)
            SELECT 1, l.level, CASE l.level WHEN 3 THEN 0 ELSE m.e >> l.bits END,
                (pg_backend_pid() % 16 + 1)::SMALLINT, sum(m.d)
            FROM moves m, {s}.nts_levels() AS l (level, bits)
            WHERE l.level = 3 OR m.e IS NOT NULL
            GROUP BY 1, 2, 3, 4
            ON CONFLICT (kind, level, bucket, shard) DO UPDATE SET n = c.n + excluded.n
            RETURNING 1
        ),
        gone AS (
            DELETE FROM {s}.nts_users y USING now_ c
            WHERE y.user_key = c.key AND c.is_never IS NULL
            RETURNING 1
        ),
        kept AS (
            UPDATE {s}.nts_users y SET never = c.is_never, until = c.is_until
            FROM changed c WHERE y.user_key = c.key AND c.is_never IS NOT NULL
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM counted) + (SELECT count(*) FROM gone)
            + (SELECT count(*) FROM kept) INTO done;
    END
    $nts$;
    -- storeAccessTokens, for rows already resolved (each token and refresh string once):
    -- the tokens' old rows and refresh tokens go, the refresh strings leave the tokens
    -- that had them, then the rows and their refresh tokens are inserted.
    CREATE FUNCTION {s}.nts_store_access_tokens(p_token TEXT[], p_api_key TEXT[],
        p_user_id TEXT[], p_client_id TEXT[], p_scopes TEXT[], p_refresh TEXT[],
        p_expires BIGINT[], p_now BIGINT) RETURNS void
    LANGUAGE plpgsql SET enable_seqscan = off AS $nts$
    BEGIN
        WITH gone AS (
            DELETE FROM {s}.access_tokens x USING unnest(p_token) AS n (tok)
            WHERE x.token = n.tok RETURNING x.token, x.refresh_token
        )
        DELETE FROM {s}.refresh_tokens y USING gone
        WHERE y.refresh_token = gone.refresh_token AND y.access_token = gone.token;
        -- A refresh string given by storeAccessToken starts a grant of its own.
        DELETE FROM {s}.nts_refresh_families f USING unnest(p_refresh) AS n (rt)
        WHERE f.refresh_token = n.rt;
        WITH taken AS (
            DELETE FROM {s}.refresh_tokens y USING unnest(p_refresh) AS n (rt)
            WHERE y.refresh_token = n.rt RETURNING y.refresh_token, y.access_token
        )
        UPDATE {s}.access_tokens x SET refresh_token = NULL FROM taken
        WHERE x.token = taken.access_token AND x.refresh_token = taken.refresh_token;
        WITH added AS (
            INSERT INTO {s}.access_tokens (token, api_key, user_id, client_id, scopes,
                refresh_token, expires_at, created_at)
            SELECT n.tok, n.key, n.uid, n.cid, n.sc, n.rt, n.exp, p_now
            FROM unnest(p_token, p_api_key, p_user_id, p_client_id, p_scopes, p_refresh,
                p_expires) AS n (tok, key, uid, cid, sc, rt, exp)
            RETURNING token, user_id, client_id, scopes, refresh_token
        )
        INSERT INTO {s}.refresh_tokens (refresh_token, user_id, client_id, scopes,
            access_token, created_at)
        SELECT added.refresh_token, added.user_id, added.client_id, added.scopes, added.token,
            p_now
        FROM added WHERE added.refresh_token IS NOT NULL;
    END
    $nts$;
    -- storeAuthorizationCode: replaces a code with the same string (a function, so that
    -- the delete and the insert are one statement of one round trip, plans kept).
    CREATE FUNCTION {s}.nts_store_code(p_code TEXT, p_user_id TEXT, p_api_key TEXT,
        p_client_id TEXT, p_redirect_uri TEXT, p_challenge TEXT, p_method TEXT, p_scopes TEXT,
        p_expires BIGINT, p_created BIGINT) RETURNS void
    LANGUAGE plpgsql SET enable_seqscan = off AS $nts$
    BEGIN
        DELETE FROM {s}.authorization_codes c WHERE c.code = p_code;
        INSERT INTO {s}.authorization_codes (code, user_id, api_key, client_id, redirect_uri,
            code_challenge, code_challenge_method, scopes, expires_at, created_at)
        VALUES (p_code, p_user_id, p_api_key, p_client_id, p_redirect_uri, p_challenge,
            p_method, p_scopes, p_expires, p_created);
    END
    $nts$;
    -- The counts of kind k at level l in the buckets [b0, b1): one range of the key.
    CREATE FUNCTION {s}.nts_sum(k SMALLINT, l SMALLINT, b0 BIGINT, b1 BIGINT) RETURNS BIGINT
    LANGUAGE sql STABLE AS $nts$
        SELECT coalesce(sum(n), 0)::BIGINT FROM {s}.nts_counts
        WHERE kind = k AND level = l AND bucket >= b0 AND bucket < b1
    $nts$;
    -- getStats (see the counts above): a function, so that the session keeps the plan.
    CREATE FUNCTION {s}.nts_stats(at_ms BIGINT) RETURNS TABLE (tokens BIGINT, users BIGINT)
    LANGUAGE plpgsql STABLE SET enable_seqscan = off AS $nts$
    BEGIN
        RETURN QUERY SELECT
            (({s}.nts_sum(0::SMALLINT, 3::SMALLINT, 0, 1)
              - {s}.nts_sum(0::SMALLINT, 2::SMALLINT, -9223372036854775807, at_ms >> 20)
              - {s}.nts_sum(0::SMALLINT, 1::SMALLINT, (at_ms >> 20) << 4, at_ms >> 16)
              - {s}.nts_sum(0::SMALLINT, 0::SMALLINT, (at_ms >> 16) << 4, at_ms >> 12)
              - (SELECT count(*) FROM {s}.access_tokens
                 WHERE expires_at >= (at_ms >> 12) << 12 AND expires_at <= at_ms)))::BIGINT,
            (({s}.nts_sum(1::SMALLINT, 3::SMALLINT, 0, 1)
              - {s}.nts_sum(1::SMALLINT, 2::SMALLINT, -9223372036854775807, at_ms >> 20)
              - {s}.nts_sum(1::SMALLINT, 1::SMALLINT, (at_ms >> 20) << 4, at_ms >> 16)
              - {s}.nts_sum(1::SMALLINT, 0::SMALLINT, (at_ms >> 16) << 4, at_ms >> 12)
              - (SELECT count(*) FROM {s}.nts_users
                 WHERE NOT never AND until >= (at_ms >> 12) << 12 AND until <= at_ms)))::BIGINT;
    END
    $nts$;
    -- Statement-level triggers: a statement that writes many rows counts them in a few
    -- set-based statements, not one function call per row.
    CREATE FUNCTION {s}.nts_access_inserted() RETURNS trigger
    LANGUAGE plpgsql AS $nts$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM nts_new) THEN
            RETURN NULL;
        END IF;
        PERFORM {s}.nts_count(0::SMALLINT, ARRAY(SELECT expires_at FROM nts_new), 1);
        PERFORM {s}.nts_users_changed(ARRAY(SELECT DISTINCT user_id FROM nts_new));
        RETURN NULL;
    END
    $nts$;
    CREATE FUNCTION {s}.nts_access_deleted() RETURNS trigger
    LANGUAGE plpgsql AS $nts$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM nts_old) THEN
            RETURN NULL;
        END IF;
        PERFORM {s}.nts_count(0::SMALLINT, ARRAY(SELECT expires_at FROM nts_old), -1);
        PERFORM {s}.nts_users_changed(ARRAY(SELECT DISTINCT user_id FROM nts_old));
        RETURN NULL;
    END
    $nts$;
    CREATE FUNCTION {s}.nts_access_updated() RETURNS trigger
    LANGUAGE plpgsql AS $nts$
    BEGIN
        -- Only a change of a token, its user or its expiry changes a count.
        IF NOT EXISTS (SELECT 1 FROM nts_old o FULL JOIN nts_new n ON o.token = n.token
                WHERE o.token IS NULL OR n.token IS NULL
                    OR o.user_id IS DISTINCT FROM n.user_id
                    OR o.expires_at IS DISTINCT FROM n.expires_at) THEN
            RETURN NULL;
        END IF;
        PERFORM {s}.nts_count(0::SMALLINT, ARRAY(SELECT expires_at FROM nts_old), -1);
        PERFORM {s}.nts_count(0::SMALLINT, ARRAY(SELECT expires_at FROM nts_new), 1);
        PERFORM {s}.nts_users_changed(
            ARRAY(SELECT user_id FROM nts_old UNION SELECT user_id FROM nts_new));
        RETURN NULL;
    END
    $nts$;
    CREATE TRIGGER nts_access_inserted AFTER INSERT ON {s}.access_tokens
        REFERENCING NEW TABLE AS nts_new
        FOR EACH STATEMENT EXECUTE FUNCTION {s}.nts_access_inserted();
    CREATE TRIGGER nts_access_deleted AFTER DELETE ON {s}.access_tokens
        REFERENCING OLD TABLE AS nts_old
        FOR EACH STATEMENT EXECUTE FUNCTION {s}.nts_access_deleted();
    CREATE TRIGGER nts_access_updated AFTER UPDATE ON {s}.access_tokens
        REFERENCING OLD TABLE AS nts_old NEW TABLE AS nts_new
        FOR EACH STATEMENT EXECUTE FUNCTION {s}.nts_access_updated();";
