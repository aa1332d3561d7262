//! Migration 12: a grant's resource (RFC 8707) and extra (the caller's JSON text, sealed by
//! the sealed layer under a keyring) on access tokens and authorization codes (issue 20),
//! as the SQLite store's migration 10. Columns here (no older program reads these tables),
//! NULL for every token and code without them, so a store that never has them writes
//! exactly what it did: the functions below are called only for tokens and codes that have
//! either (they call the functions written before and then set the columns, in the same
//! statement), and a rotation (`nts_rotate_grants`, every rotation) carries the old access
//! token's to the new one.

pub const SQL: &str = "ALTER TABLE {s}.access_tokens ADD COLUMN resource TEXT,
        ADD COLUMN extra TEXT;
    ALTER TABLE {s}.authorization_codes ADD COLUMN resource TEXT, ADD COLUMN extra TEXT;
    CREATE FUNCTION {s}.nts_store_granted_tokens(p_token TEXT[], p_api_key TEXT[],
        p_user_id TEXT[], p_client_id TEXT[], p_scopes TEXT[], p_refresh TEXT[],
        p_expires BIGINT[], p_now BIGINT, p_links TEXT[], p_resource TEXT[], p_extra TEXT[])
        RETURNS BOOLEAN
    LANGUAGE plpgsql AS $nts$
    DECLARE
        only_new BOOLEAN;
    BEGIN
        IF p_links IS NULL THEN
            only_new := {s}.nts_store_access_tokens(p_token, p_api_key, p_user_id,
                p_client_id, p_scopes, p_refresh, p_expires, p_now);
        ELSE
            only_new := {s}.nts_store_linked_tokens(p_token, p_api_key, p_user_id,
                p_client_id, p_scopes, p_refresh, p_expires, p_now, p_links);
        END IF;
        UPDATE {s}.access_tokens a SET resource = n.res, extra = n.ext
        FROM unnest(p_token, p_resource, p_extra) AS n (tok, res, ext)
        WHERE a.token = n.tok AND (n.res IS NOT NULL OR n.ext IS NOT NULL);
        RETURN only_new;
    END
    $nts$;
    CREATE FUNCTION {s}.nts_store_granted_code(p_code TEXT, p_user_id TEXT, p_api_key TEXT,
        p_client_id TEXT, p_redirect_uri TEXT, p_challenge TEXT, p_method TEXT,
        p_scopes TEXT, p_expires BIGINT, p_created BIGINT, p_resource TEXT, p_extra TEXT)
        RETURNS void
    LANGUAGE plpgsql AS $nts$
    BEGIN
        PERFORM {s}.nts_store_code(p_code, p_user_id, p_api_key, p_client_id, p_redirect_uri,
            p_challenge, p_method, p_scopes, p_expires, p_created);
        UPDATE {s}.authorization_codes SET resource = p_resource, extra = p_extra
        WHERE code = p_code;
    END
    $nts$;
    CREATE FUNCTION {s}.nts_rotate_grants(p_old TEXT, p_access TEXT, p_refresh TEXT,
        p_expires BIGINT, p_now BIGINT, p_grace BIGINT, p_links TEXT)
        RETURNS TABLE (o_outcome SMALLINT, o_user_id TEXT, o_client_id TEXT, o_scopes TEXT,
            o_api_key TEXT, o_revoked BIGINT)
    LANGUAGE plpgsql AS $nts$
    DECLARE
        g RECORD;
        r RECORD;
    BEGIN
        -- The old access token's grant, read before the rotation removes it (a rotation
        -- that does not win sets nothing).
        SELECT a.resource, a.extra INTO g FROM {s}.refresh_tokens t
        JOIN {s}.access_tokens a ON a.token = t.access_token WHERE t.refresh_token = p_old;
        IF p_links IS NULL THEN
            SELECT * INTO r FROM {s}.nts_rotate(p_old, p_access, p_refresh, p_expires, p_now,
                p_grace) AS x;
        ELSE
            SELECT * INTO r FROM {s}.nts_rotate_linked(p_old, p_access, p_refresh, p_expires,
                p_now, p_grace, p_links) AS x;
        END IF;
        IF r.o_outcome = 1 AND (g.resource IS NOT NULL OR g.extra IS NOT NULL) THEN
            UPDATE {s}.access_tokens SET resource = g.resource, extra = g.extra
            WHERE token = p_access;
        END IF;
        RETURN QUERY SELECT r.o_outcome, r.o_user_id, r.o_client_id, r.o_scopes, r.o_api_key,
            r.o_revoked;
    END
    $nts$;";
