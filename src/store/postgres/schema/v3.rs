//! Migration 3: storeAccessTokens as its records stored in order: a refresh string given in the
//! batch to a record that a later one of the same token replaced is taken from the
//! token that had it, and dropped. Such strings come as rows with a NULL token, which
//! take their refresh string and are not inserted.

pub const SQL: &str =
    "CREATE OR REPLACE FUNCTION {s}.nts_store_access_tokens(p_token TEXT[], p_api_key TEXT[],
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
