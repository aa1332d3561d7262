//! Migration 11: sealed tokens (issue 19, `store::sealed`), as the SQLite store's
//! migration 9. With a keyring, an access token's `token` and `refresh_token` are the
//! digests of its strings, and `nts_token_links` keeps the layer's sealed copy of those
//! strings (`NewAccessToken::links`), which it opens for getAccessToken and
//! getRefreshToken. A table of its own, not a column of `access_tokens`, so that a store in
//! clear reads and writes exactly what it did: the table is written only by
//! `nts_store_linked_tokens` and `nts_rotate_linked` (called only with links, that is by a
//! sealed store; they call the functions of the store in clear and then add the links), and
//! read only by the sealed layer's linked reads.
//!
//! A row leaves with its access token (delete, revocation, rotation, family revoked, a
//! user's tokens, a token replaced, cleanup, a client's revocation: every statement that
//! deletes access rows) by the statement trigger `nts_token_links_deleted`, created by
//! `nts_seal_links` in the transaction that writes a sealed mark (not here: the deletes of
//! a store in clear pay no trigger). A rotation's new pair gets the links the layer made for
//! it; the old pair's leave with its access row.

pub const SQL: &str = "CREATE TABLE {s}.nts_token_links (
        token TEXT PRIMARY KEY,
        links TEXT NOT NULL
    );
    CREATE FUNCTION {s}.nts_links_gone() RETURNS trigger
    LANGUAGE plpgsql AS $nts$
    BEGIN
        DELETE FROM {s}.nts_token_links l USING gone g WHERE l.token = g.token;
        RETURN NULL;
    END
    $nts$;
    CREATE FUNCTION {s}.nts_seal_links() RETURNS void
    LANGUAGE plpgsql AS $nts$
    BEGIN
        IF (SELECT m.value FROM {s}.nts_meta m WHERE m.name = 'seal') LIKE 'sealed %'
            AND NOT EXISTS (SELECT 1 FROM pg_trigger t
                WHERE t.tgrelid = '{s}.access_tokens'::regclass
                    AND t.tgname = 'nts_token_links_deleted') THEN
            -- Writers of the mark take turns on its row; a trigger made meanwhile by
            -- another session (that waited for the table) is the one wanted.
            BEGIN
                CREATE TRIGGER nts_token_links_deleted AFTER DELETE ON {s}.access_tokens
                    REFERENCING OLD TABLE AS gone
                    FOR EACH STATEMENT EXECUTE FUNCTION {s}.nts_links_gone();
            EXCEPTION WHEN duplicate_object THEN
                NULL;
            END;
        END IF;
    END
    $nts$;
    CREATE FUNCTION {s}.nts_store_linked_tokens(p_token TEXT[], p_api_key TEXT[],
        p_user_id TEXT[], p_client_id TEXT[], p_scopes TEXT[], p_refresh TEXT[],
        p_expires BIGINT[], p_now BIGINT, p_links TEXT[]) RETURNS BOOLEAN
    LANGUAGE plpgsql AS $nts$
    DECLARE
        only_new BOOLEAN;
    BEGIN
        only_new := {s}.nts_store_access_tokens(p_token, p_api_key, p_user_id, p_client_id,
            p_scopes, p_refresh, p_expires, p_now);
        INSERT INTO {s}.nts_token_links AS l (token, links)
        SELECT n.tok, n.lk FROM unnest(p_token, p_links) AS n (tok, lk)
        WHERE n.tok IS NOT NULL AND n.lk IS NOT NULL
        ON CONFLICT (token) DO UPDATE SET links = excluded.links;
        RETURN only_new;
    END
    $nts$;
    CREATE FUNCTION {s}.nts_rotate_linked(p_old TEXT, p_access TEXT, p_refresh TEXT,
        p_expires BIGINT, p_now BIGINT, p_grace BIGINT, p_links TEXT)
        RETURNS TABLE (o_outcome SMALLINT, o_user_id TEXT, o_client_id TEXT, o_scopes TEXT,
            o_api_key TEXT, o_revoked BIGINT)
    LANGUAGE plpgsql AS $nts$
    DECLARE
        r RECORD;
    BEGIN
        SELECT * INTO r FROM {s}.nts_rotate(p_old, p_access, p_refresh, p_expires, p_now,
            p_grace) AS x;
        IF r.o_outcome = 1 THEN
            INSERT INTO {s}.nts_token_links AS l (token, links) VALUES (p_access, p_links)
            ON CONFLICT (token) DO UPDATE SET links = excluded.links;
        END IF;
        RETURN QUERY SELECT r.o_outcome, r.o_user_id, r.o_client_id, r.o_scopes, r.o_api_key,
            r.o_revoked;
    END
    $nts$;";
