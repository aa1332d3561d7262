//! Migration 13: storeAccessToken of a new token (and a rotation's new pair) costs less
//! server time (issue 18; first tried as branch `pg-store-perf`'s migration 12). Measured on
//! the shared cluster (10k tokens of 1,000 users, CPU time of the backend per store, see
//! benchmark/PROFILE.md): migration 8's function spent ~300 µs where the `pg` peer's one
//! statement spends ~60; most of it is not the rows written but the per-statement work
//! around them:
//!
//! - A row trigger's `WHEN` is read back from its stored text, planned and compiled once
//!   per statement that fires it (`TriggerEnabled`), which for migration 10's `near!`
//!   conditions cost more than the rows (~25 % of a store). The fine-count triggers of the
//!   two writes every store makes (`INSERT` on `access_tokens`, `UPDATE OF never, until` on
//!   `nts_users`) now have no `WHEN`: their functions make the same check first thing (a
//!   few µs a row), on the clock read when the statement's triggers fire (a little later
//!   than the row's write, and still before its commit: a later clock can only count more
//!   rows ahead and skip only milliseconds that no getStats reads, see migration 10). The
//!   other fine-count triggers keep their `WHEN`: deletes come in bulk (cleanup), where a
//!   call per row would cost more than one compiled condition.
//! - The short path of `nts_store_access_tokens` (migration 8) ran ten statements; the
//!   token, its refresh token, the family row, the user's row and the counts are now one
//!   statement, and `set_config` and the advisory locks are plain expressions (no
//!   executor). A user whose row does not move forward (a token expiring no later than the
//!   user's until, or a user without a row) takes migration 8's loop after it, then writes
//!   the user's counts.
//!
//! Nothing else changes: the same advisory locks, the rows written in migration 8's order
//! (the access row, the family row's delete and the refresh row, and only then the user's
//! row locked: its `UPDATE` waits for the first three by a one-time filter on their
//! counts), the same rows and counts, the same answer, the general function for everything
//! else.

pub const SQL: &str = "-- Migration 10's `near!` check, made by the function rather than by a WHEN.
    CREATE FUNCTION {s}.nts_fine_tokens_added() RETURNS trigger
    LANGUAGE plpgsql AS $nts$
    DECLARE
        clock BIGINT;
    BEGIN
        IF NEW.expires_at IS NOT NULL THEN
            clock := (date_part('epoch', clock_timestamp()) * 1000)::BIGINT;
            IF NEW.expires_at > clock - 3000 AND NEW.expires_at < clock + 92160 THEN
                PERFORM {s}.nts_fine_move(0::SMALLINT, NULL, NEW.expires_at);
            END IF;
        END IF;
        RETURN NULL;
    END
    $nts$;
    CREATE FUNCTION {s}.nts_fine_users_moved() RETURNS trigger
    LANGUAGE plpgsql AS $nts$
    DECLARE
        clock BIGINT;
        o BIGINT;
        e BIGINT;
    BEGIN
        IF OLD.never IS FALSE THEN
            o := OLD.until;
        END IF;
        IF NEW.never IS FALSE THEN
            e := NEW.until;
        END IF;
        IF o IS NOT DISTINCT FROM e THEN
            RETURN NULL;
        END IF;
        clock := (date_part('epoch', clock_timestamp()) * 1000)::BIGINT;
        IF (o > clock - 3000 AND o < clock + 92160) OR (e > clock - 3000 AND e < clock + 92160) THEN
            PERFORM {s}.nts_fine_move(1::SMALLINT, o, e);
        END IF;
        RETURN NULL;
    END
    $nts$;
    DROP TRIGGER nts_access_fine_inserted ON {s}.access_tokens;
    CREATE TRIGGER nts_access_fine_inserted AFTER INSERT ON {s}.access_tokens
        FOR EACH ROW EXECUTE FUNCTION {s}.nts_fine_tokens_added();
    DROP TRIGGER nts_users_fine_updated ON {s}.nts_users;
    CREATE TRIGGER nts_users_fine_updated AFTER UPDATE OF never, until ON {s}.nts_users
        FOR EACH ROW EXECUTE FUNCTION {s}.nts_fine_users_moved();
    CREATE OR REPLACE FUNCTION {s}.nts_store_access_tokens(p_token TEXT[], p_api_key TEXT[],
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
        v_added BOOLEAN;
        v_shard SMALLINT;
        v_void TEXT;
    BEGIN
        IF cardinality(p_token) = 1 AND p_token[1] IS NOT NULL THEN
            v_token := p_token[1];
            v_refresh := p_refresh[1];
            v_exp := p_expires[1];
            v_user := NULLIF(p_user_id[1], '');
            -- The general function's locks, in its order (it takes them again: they nest).
            k1 := hashtextextended('native-token-storage token:' || v_token, 0);
            IF v_refresh IS NULL THEN
                v_void := pg_advisory_xact_lock(k1);
            ELSE
                k2 := hashtextextended('native-token-storage token:' || v_refresh, 0);
                v_void := pg_advisory_xact_lock(least(k1, k2));
                v_void := pg_advisory_xact_lock(greatest(k1, k2));
                SELECT y.access_token INTO t_access FROM {s}.refresh_tokens y
                WHERE y.refresh_token = v_refresh;
            END IF;
            IF t_access IS NULL THEN
                v_shard := {s}.nts_shard();
                v_void := set_config('nts.counted', 'on', true);
                IF v_user IS NOT NULL THEN
                    u_key := sha256(convert_to(v_user, 'UTF8'));
                END IF;
                -- One statement: the token (if its string is new), its refresh token (a
                -- refresh string given by storeAccessToken starts a grant of its own), the
                -- user's row moved forward (if the token outlasts its until) and the counts
                -- (see migration 8: the token added, and the user moved from prev_until to
                -- v_exp in the buckets where that moves it).
                WITH a AS (
                    INSERT INTO {s}.access_tokens (token, api_key, user_id, client_id, scopes,
                        refresh_token, expires_at, created_at)
                    VALUES (v_token, p_api_key[1], p_user_id[1], p_client_id[1], p_scopes[1],
                        v_refresh, v_exp, p_now)
                    ON CONFLICT DO NOTHING
                    RETURNING 1
                ),
                f AS (
                    DELETE FROM {s}.nts_refresh_families f WHERE f.refresh_token = v_refresh
                        AND EXISTS (SELECT 1 FROM a)
                    RETURNING 1
                ),
                r AS (
                    INSERT INTO {s}.refresh_tokens (refresh_token, user_id, client_id,
                        scopes, access_token, created_at)
                    SELECT v_refresh, p_user_id[1], p_client_id[1], p_scopes[1], v_token, p_now
                    FROM a WHERE v_refresh IS NOT NULL
                    RETURNING 1
                ),
                u AS (
                    UPDATE {s}.nts_users y SET prev_until = y.until,
                        never = v_exp IS NULL, until = v_exp
                    WHERE y.user_key = u_key AND y.never IS FALSE
                        AND (v_exp IS NULL OR (y.until < v_exp) IS TRUE)
                        AND EXISTS (SELECT 1 FROM a)
                        AND (SELECT count(*) FROM f) + (SELECT count(*) FROM r) >= 0
                    RETURNING y.prev_until
                ),
                c AS (
                    INSERT INTO {s}.nts_counts AS c (kind, level, bucket, shard, n)
                    SELECT m.k, l.level, CASE l.level WHEN 3 THEN 0 ELSE m.e >> l.bits END,
                        v_shard, m.d
                    FROM (SELECT 0::SMALLINT AS k, v_exp AS e, 1 AS d, false AS mv,
                                NULL::BIGINT AS w FROM a
                            UNION ALL SELECT 1::SMALLINT, u.prev_until, -1, true, u.prev_until
                                FROM u
                            UNION ALL SELECT 1::SMALLINT, v_exp, 1, true, u.prev_until
                                FROM u) AS m,
                        (VALUES (0::SMALLINT, 12), (1::SMALLINT, 16), (2::SMALLINT, 20),
                            (3::SMALLINT, 0)) AS l (level, bits)
                    WHERE CASE WHEN l.level = 3 THEN m.k = 0
                        ELSE m.e IS NOT NULL AND NOT (m.mv AND v_exp IS NOT NULL
                            AND m.w >> l.bits = v_exp >> l.bits) END
                    ON CONFLICT (kind, level, bucket, shard) DO UPDATE SET n = c.n + excluded.n
                )
                SELECT EXISTS (SELECT 1 FROM a), EXISTS (SELECT 1 FROM u) INTO v_added, u_moved;
                v_void := set_config('nts.counted', '', true);
                IF v_added THEN
                    IF v_user IS NOT NULL AND NOT u_moved THEN
                        -- The user's row was not moved: added if it has none, else locked
                        -- (as the general function does: a writer reading the user's tokens
                        -- again waits for this one). Tried again if a concurrent writer
                        -- changed it.
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
                        -- The user's counts (the token's were written above).
                        INSERT INTO {s}.nts_counts AS c (kind, level, bucket, shard, n)
                        SELECT 1::SMALLINT, l.level,
                            CASE l.level WHEN 3 THEN 0 ELSE m.e >> l.bits END, v_shard, m.d
                        FROM (VALUES (w_until, -1, u_moved),
                                (v_exp, 1, u_moved OR u_added)) AS m (e, d, used),
                            (VALUES (0::SMALLINT, 12), (1::SMALLINT, 16), (2::SMALLINT, 20),
                                (3::SMALLINT, 0)) AS l (level, bits)
                        WHERE m.used AND CASE WHEN l.level = 3 THEN u_added
                            ELSE m.e IS NOT NULL AND NOT (u_moved AND v_exp IS NOT NULL
                                AND w_until >> l.bits = v_exp >> l.bits) END
                        ON CONFLICT (kind, level, bucket, shard) DO UPDATE SET n = c.n + excluded.n;
                    END IF;
                    RETURN true;
                END IF;
            END IF;
        END IF;
        PERFORM {s}.nts_store_tokens_general(p_token, p_api_key, p_user_id, p_client_id,
            p_scopes, p_refresh, p_expires, p_now);
        RETURN false;
    END
    $nts$;";
