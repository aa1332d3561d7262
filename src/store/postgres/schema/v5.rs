//! Migration 5: Normal use leaves no ERROR in the server's log. Counters: each transaction claims a
//! shard no other running transaction holds (a transaction-scoped advisory lock,
//! tried, never waited for), so two writers never update one counter row at once.
//! storeAccessTokens: writers of one string take turns instead of failing on the
//! exclusion constraint and retrying.

pub const SQL: &str = "CREATE FUNCTION {s}.nts_shard() RETURNS SMALLINT
    LANGUAGE plpgsql AS $nts$
    DECLARE
        claimed TEXT := current_setting('nts.shard', true);
        first INTEGER := pg_backend_pid() % 16;
        n INTEGER;
    BEGIN
        IF claimed IS NOT NULL AND claimed <> '' THEN
            RETURN claimed::SMALLINT;
        END IF;
        -- The backend's own shard if free, else the next free one (beyond 16 only when more
        -- than 16 transactions write at once; cleanup folds them into shard 0).
        FOR i IN 0..1023 LOOP
            n := CASE WHEN i < 16 THEN (first + i) % 16 + 1 ELSE i + 1 END;
            IF pg_try_advisory_xact_lock(hashtext('native-token-storage shard'), n) THEN
                PERFORM set_config('nts.shard', n::TEXT, true);
                RETURN n;
            END IF;
        END LOOP;
        n := first + 1;
        PERFORM pg_advisory_xact_lock(hashtext('native-token-storage shard'), n);
        PERFORM set_config('nts.shard', n::TEXT, true);
        RETURN n;
    END
    $nts$;
    CREATE OR REPLACE FUNCTION {s}.nts_count(k SMALLINT, e BIGINT[], d BIGINT) RETURNS void
    LANGUAGE plpgsql AS $nts$
    BEGIN
        INSERT INTO {s}.nts_counts AS c (kind, level, bucket, shard, n)
        SELECT k, l.level, CASE l.level WHEN 3 THEN 0 ELSE r.e >> l.bits END,
            {s}.nts_shard(), count(*) * d
        FROM unnest(e) AS r (e), {s}.nts_levels() AS l (level, bits)
        WHERE l.level = 3 OR r.e IS NOT NULL
        GROUP BY 1, 2, 3, 4
        ON CONFLICT (kind, level, bucket, shard) DO UPDATE SET n = c.n + excluded.n;
    END
    $nts$;
    CREATE OR REPLACE FUNCTION {s}.nts_users_changed(u TEXT[]) RETURNS void
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
                {s}.nts_shard(), sum(m.d)
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
    CREATE OR REPLACE FUNCTION {s}.nts_store_access_tokens(p_token TEXT[], p_api_key TEXT[],
        p_user_id TEXT[], p_client_id TEXT[], p_scopes TEXT[], p_refresh TEXT[],
        p_expires BIGINT[], p_now BIGINT) RETURNS void
    LANGUAGE plpgsql SET enable_seqscan = off AS $nts$
    BEGIN
        -- Writers of one token or refresh string take turns, in one order, so that none
        -- inserts a row another is inserting (and fails on the exclusion constraint). One
        -- lock per string: shared locks would make unrelated writers wait on each other,
        -- and a rotation (which holds rows when it stores) deadlock with them. A batch of
        -- more than 512 strings (a migration, a seed) takes none, since it would fill the
        -- server's lock table (100,000 tokens ran it out of shared memory); a writer of one
        -- of its strings at the same moment fails on the constraint and is tried again.
        IF cardinality(p_token) + cardinality(p_refresh) <= 512 THEN
            PERFORM pg_advisory_xact_lock(k)
            FROM (SELECT DISTINCT hashtextextended('native-token-storage token:' || t, 0) AS k
                  FROM unnest(p_token || p_refresh) AS t WHERE t IS NOT NULL) AS keys
            ORDER BY k;
        END IF;
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
            WHERE n.tok IS NOT NULL
            RETURNING token, user_id, client_id, scopes, refresh_token
        )
        INSERT INTO {s}.refresh_tokens (refresh_token, user_id, client_id, scopes,
            access_token, created_at)
        SELECT added.refresh_token, added.user_id, added.client_id, added.scopes, added.token,
            p_now
        FROM added WHERE added.refresh_token IS NOT NULL;
    END
    $nts$;";
