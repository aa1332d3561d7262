//! Migration 2: The rest of the server's OAuth state: registered clients (secrets as digests),
//! pending authorizations, and refresh-token families for rotation with reuse
//! detection, as in the SQLite store: a refresh token a rotation issued has a row in
//! `nts_refresh_families` naming its family (the family's first refresh token); one
//! without starts its own. Tokens rotated away are remembered with their family.

pub const SQL: &str = "CREATE TABLE {s}.nts_clients (
        client_id TEXT PRIMARY KEY,
        secret_digest TEXT,
        metadata TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE {s}.nts_pending_authorizations (
        state TEXT PRIMARY KEY,
        data TEXT NOT NULL,
        expires_at BIGINT NOT NULL
    );
    CREATE INDEX nts_pending_authorizations_expires_at
        ON {s}.nts_pending_authorizations (expires_at);
    CREATE TABLE {s}.nts_refresh_families (
        refresh_token TEXT NOT NULL,
        family TEXT NOT NULL,
        CONSTRAINT nts_refresh_families_refresh_token EXCLUDE USING hash (refresh_token WITH =)
    );
    CREATE INDEX nts_refresh_families_family ON {s}.nts_refresh_families USING hash (family);
    CREATE TABLE {s}.nts_retired_refresh_tokens (
        refresh_token TEXT NOT NULL,
        family TEXT NOT NULL,
        retired_at BIGINT NOT NULL,
        CONSTRAINT nts_retired_refresh_tokens_refresh_token
            EXCLUDE USING hash (refresh_token WITH =)
    );
    CREATE INDEX nts_retired_refresh_tokens_family
        ON {s}.nts_retired_refresh_tokens USING hash (family);
    -- rotateRefreshToken. The DELETE of the old refresh token decides: of concurrent
    -- rotations one deletes it; the others wait for it, find it gone, and read (in a new
    -- snapshot) that it was rotated away. o_outcome: 0 unknown, 1 rotated, 2 reused within
    -- the grace period, 3 reused after it (the family revoked, o_revoked tokens).
    CREATE FUNCTION {s}.nts_rotate(p_old TEXT, p_access TEXT, p_refresh TEXT,
        p_expires BIGINT, p_now BIGINT, p_grace BIGINT)
        RETURNS TABLE (o_outcome SMALLINT, o_user_id TEXT, o_client_id TEXT, o_scopes TEXT,
            o_api_key TEXT, o_revoked BIGINT)
    LANGUAGE plpgsql SET enable_seqscan = off AS $nts$
    DECLARE
        v_access TEXT;
        v_family TEXT;
        v_api TEXT;
        v_user TEXT;
        v_client TEXT;
        v_scopes TEXT;
        v_exp BIGINT;
        v_at BIGINT;
        v_n BIGINT;
    BEGIN
        -- A grant's rotations and its revocation take turns (a replay racing a rotation
        -- must see the pair the rotation issues): one lock per grant, taken first.
        SELECT COALESCE(
            (SELECT f.family FROM {s}.nts_refresh_families f WHERE f.refresh_token = p_old),
            (SELECT t.family FROM {s}.nts_retired_refresh_tokens t WHERE t.refresh_token = p_old),
            p_old) INTO v_family;
        PERFORM pg_advisory_xact_lock(hashtextextended('native-token-storage grant:' || v_family, 0));
        DELETE FROM {s}.refresh_tokens r WHERE r.refresh_token = p_old
        RETURNING r.access_token INTO v_access;
        IF FOUND THEN
            DELETE FROM {s}.nts_refresh_families f WHERE f.refresh_token = p_old
            RETURNING f.family INTO v_family;
            v_family := COALESCE(v_family, p_old);
            DELETE FROM {s}.access_tokens a WHERE a.token = v_access
            RETURNING a.api_key, a.user_id, a.client_id, a.scopes, a.expires_at
            INTO v_api, v_user, v_client, v_scopes, v_exp;
            IF NOT FOUND OR v_exp <= p_now THEN
                RETURN QUERY SELECT 0::SMALLINT, NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT,
                    0::BIGINT;
                RETURN;
            END IF;
            DELETE FROM {s}.nts_retired_refresh_tokens t WHERE t.refresh_token = p_old;
            INSERT INTO {s}.nts_retired_refresh_tokens (refresh_token, family, retired_at)
            VALUES (p_old, v_family, p_now);
            PERFORM {s}.nts_store_access_tokens(ARRAY[p_access], ARRAY[v_api], ARRAY[v_user],
                ARRAY[v_client], ARRAY[v_scopes], ARRAY[p_refresh], ARRAY[p_expires], p_now);
            DELETE FROM {s}.nts_refresh_families f WHERE f.refresh_token = p_refresh;
            INSERT INTO {s}.nts_refresh_families (refresh_token, family) VALUES (p_refresh, v_family);
            RETURN QUERY SELECT 1::SMALLINT, v_user, v_client, v_scopes, v_api, 0::BIGINT;
            RETURN;
        END IF;
        SELECT t.family, t.retired_at INTO v_family, v_at
        FROM {s}.nts_retired_refresh_tokens t WHERE t.refresh_token = p_old;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 0::SMALLINT, NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT,
                0::BIGINT;
            RETURN;
        END IF;
        IF p_now - v_at < p_grace THEN
            RETURN QUERY SELECT 2::SMALLINT, NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT,
                0::BIGINT;
            RETURN;
        END IF;
        WITH f AS (
            DELETE FROM {s}.nts_refresh_families g WHERE g.family = v_family
            RETURNING g.refresh_token
        ),
        r AS (
            DELETE FROM {s}.refresh_tokens x USING f WHERE x.refresh_token = f.refresh_token
            RETURNING x.access_token
        ),
        a AS (
            DELETE FROM {s}.access_tokens y USING r WHERE y.token = r.access_token RETURNING 1
        )
        SELECT count(*) INTO v_n FROM r;
        RETURN QUERY SELECT 3::SMALLINT, NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT, v_n;
    END
    $nts$;";
