//! Migration 8: storeAccessToken of a new token (and a rotation's new pair) in fewer
//! statements. The common case (neither the token nor its refresh string stored yet) is
//! tried first: the access row inserted `ON CONFLICT DO NOTHING` (no delete looked for
//! first), the user's row moved forward by one `UPDATE` that keeps the until it had in
//! `prev_until` (so `RETURNING` gives the old until: no locking upsert and then an update,
//! two row versions), and the counts written by one statement without an aggregate, the
//! shard claimed once. Anything else (a token or refresh string stored before, a batch)
//! goes to migration 6's function, kept as `nts_store_tokens_general`. It answers whether
//! the short path was taken: only new rows written, none that a cache may hold changed. Measured with
//! pgbench on 10,000 tokens, interleaved runs: about 0.29 ms of server time per store,
//! 0.35 ms before (see docs/postgresql.md, "Same semantics as SQLite").

pub const SQL: &str = "ALTER TABLE {s}.nts_users ADD COLUMN prev_until BIGINT;
    ALTER FUNCTION {s}.nts_store_access_tokens(TEXT[], TEXT[], TEXT[], TEXT[], TEXT[],
        TEXT[], BIGINT[], BIGINT) RENAME TO nts_store_tokens_general;
    CREATE FUNCTION {s}.nts_store_access_tokens(p_token TEXT[], p_api_key TEXT[],
        p_user_id TEXT[], p_client_id TEXT[], p_scopes TEXT[], p_refresh TEXT[],
        p_expires BIGINT[], p_now BIGINT) RETURNS BOOLEAN
    LANGUAGE plpgsql SET enable_seqscan = off AS $nts$
    DECLARE
        v_token TEXT;
        v_refresh TEXT;
        v_user TEXT;
        v_exp BIGINT;
        k1 BIGINT;
        k2 BIGINT;
        t_access TEXT;
        u_key BYTEA;
        w_until BIGINT;
        u_moved BOOLEAN := false;
        u_added BOOLEAN := false;
        v_shard SMALLINT;
    BEGIN
        IF cardinality(p_token) = 1 AND p_token[1] IS NOT NULL THEN
            v_token := p_token[1];
            v_refresh := p_refresh[1];
            v_exp := p_expires[1];
            -- The general function's locks, in its order (it takes them again: they nest).
            k1 := hashtextextended('native-token-storage token:' || v_token, 0);
            IF v_refresh IS NULL THEN
                PERFORM pg_advisory_xact_lock(k1);
            ELSE
                k2 := hashtextextended('native-token-storage token:' || v_refresh, 0);
                PERFORM pg_advisory_xact_lock(least(k1, k2)), pg_advisory_xact_lock(greatest(k1, k2));
                SELECT y.access_token INTO t_access FROM {s}.refresh_tokens y
                WHERE y.refresh_token = v_refresh;
            END IF;
            IF t_access IS NULL THEN
                PERFORM set_config('nts.counted', 'on', true);
                INSERT INTO {s}.access_tokens (token, api_key, user_id, client_id, scopes,
                    refresh_token, expires_at, created_at)
                VALUES (v_token, p_api_key[1], p_user_id[1], p_client_id[1], p_scopes[1],
                    v_refresh, v_exp, p_now)
                ON CONFLICT DO NOTHING;
                IF FOUND THEN
                    IF v_refresh IS NOT NULL THEN
                        -- A refresh string given by storeAccessToken starts a grant of its own.
                        DELETE FROM {s}.nts_refresh_families f WHERE f.refresh_token = v_refresh;
                        INSERT INTO {s}.refresh_tokens (refresh_token, user_id, client_id,
                            scopes, access_token, created_at)
                        VALUES (v_refresh, p_user_id[1], p_client_id[1], p_scopes[1], v_token,
                            p_now);
                    END IF;
                    PERFORM set_config('nts.counted', '', true);
                    v_user := NULLIF(p_user_id[1], '');
                    IF v_user IS NOT NULL THEN
                        u_key := sha256(convert_to(v_user, 'UTF8'));
                        -- The user's row, locked: moved forward (to never) if the new token
                        -- outlasts its until, added if it has none, else only locked (as the
                        -- general function does: a writer reading the user's tokens again
                        -- waits for this one). Tried again if a concurrent writer changed it.
                        LOOP
                            UPDATE {s}.nts_users y SET prev_until = y.until,
                                never = v_exp IS NULL, until = v_exp
                            WHERE y.user_key = u_key AND y.never IS FALSE
                                AND (v_exp IS NULL OR (y.until < v_exp) IS TRUE)
                            RETURNING y.prev_until INTO w_until;
                            IF FOUND THEN
                                u_moved := true;
                                EXIT;
                            END IF;
                            INSERT INTO {s}.nts_users (user_key, never, until)
                            VALUES (u_key, v_exp IS NULL, v_exp) ON CONFLICT DO NOTHING;
                            IF FOUND THEN
                                u_added := true;
                                EXIT;
                            END IF;
                            PERFORM 1 FROM {s}.nts_users y
                            WHERE y.user_key = u_key AND (y.never IS NOT FALSE
                                OR (v_exp IS NOT NULL AND (y.until < v_exp) IS NOT TRUE))
                            FOR UPDATE;
                            EXIT WHEN FOUND;
                        END LOOP;
                    END IF;
                    -- The counts (see migration 1): the token added, and the user added or
                    -- moved from w_until to v_exp (in the buckets where that moves it). No
                    -- two rows share a key, so no aggregate is needed.
                    v_shard := {s}.nts_shard();
                    INSERT INTO {s}.nts_counts AS c (kind, level, bucket, shard, n)
                    SELECT m.k, l.level, CASE l.level WHEN 3 THEN 0 ELSE m.e >> l.bits END,
                        v_shard, m.d
                    FROM (VALUES (0::SMALLINT, v_exp, 1, true),
                            (1::SMALLINT, w_until, -1, u_moved),
                            (1::SMALLINT, v_exp, 1, u_moved OR u_added)) AS m (k, e, d, used),
                        (VALUES (0::SMALLINT, 12), (1::SMALLINT, 16), (2::SMALLINT, 20),
                            (3::SMALLINT, 0)) AS l (level, bits)
                    WHERE m.used AND CASE WHEN l.level = 3 THEN m.k = 0 OR u_added
                        ELSE m.e IS NOT NULL AND NOT (u_moved AND m.k = 1 AND v_exp IS NOT NULL
                            AND w_until >> l.bits = v_exp >> l.bits) END
                    ON CONFLICT (kind, level, bucket, shard) DO UPDATE SET n = c.n + excluded.n;
                    RETURN true;
                END IF;
                PERFORM set_config('nts.counted', '', true);
            END IF;
        END IF;
        PERFORM {s}.nts_store_tokens_general(p_token, p_api_key, p_user_id, p_client_id,
            p_scopes, p_refresh, p_expires, p_now);
        RETURN false;
    END
    $nts$;";
