//! Migration 7: the change feed of the access tokens, for the caches of the stores that
//! read them. Every row of `access_tokens` deleted or changed (a delete, a revocation, a
//! rotation, a family revoked, a user's tokens deleted, a token replaced, cleanup, and any
//! statement a person runs) sends, when its transaction commits, a notification on the
//! schema's channel (`nts_` and 24 hex digits of the SHA-256 of the schema's name) whose
//! payload is 32 hex digits of the SHA-256 of the token: never the token itself, since
//! notifications may be logged. Past 64 rows in one transaction (cleanup, a bulk store),
//! one `*` says "everything" instead of a notification per row. `TRUNCATE` sends `*`.
//! A write that skips triggers (`session_replication_role = replica`) is not seen.

pub const SQL: &str = "CREATE FUNCTION {s}.nts_channel(p_schema TEXT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE AS $nts$
        SELECT 'nts_' || left(encode(sha256(convert_to(p_schema, 'UTF8')), 'hex'), 24)
    $nts$;
    CREATE FUNCTION {s}.nts_access_changed() RETURNS trigger
    LANGUAGE plpgsql AS $nts$
    DECLARE
        n INTEGER := coalesce(nullif(current_setting('nts.notified', true), ''), '0')::INTEGER;
    BEGIN
        IF n < 64 THEN
            PERFORM pg_notify({s}.nts_channel(TG_TABLE_SCHEMA),
                left(encode(sha256(convert_to(OLD.token, 'UTF8')), 'hex'), 32));
        ELSIF n = 64 THEN
            PERFORM pg_notify({s}.nts_channel(TG_TABLE_SCHEMA), '*');
        END IF;
        IF n <= 64 THEN
            PERFORM set_config('nts.notified', (n + 1)::TEXT, true);
        END IF;
        RETURN NULL;
    END
    $nts$;
    CREATE FUNCTION {s}.nts_access_truncated() RETURNS trigger
    LANGUAGE plpgsql AS $nts$
    BEGIN
        PERFORM pg_notify({s}.nts_channel(TG_TABLE_SCHEMA), '*');
        RETURN NULL;
    END
    $nts$;
    CREATE TRIGGER nts_access_changed AFTER DELETE OR UPDATE ON {s}.access_tokens
        FOR EACH ROW EXECUTE FUNCTION {s}.nts_access_changed();
    CREATE TRIGGER nts_access_truncated AFTER TRUNCATE ON {s}.access_tokens
        FOR EACH STATEMENT EXECUTE FUNCTION {s}.nts_access_truncated();";
