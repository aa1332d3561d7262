//! Migration 15: a writing transaction claims its counters' shard among the writers of its
//! own schema only. Migration 5's `nts_shard` tried one advisory lock per shard,
//! `(hashtext('native-token-storage shard'), n)`, the same 16 for every schema on the
//! server, so the writers of two applications sharing a server took their shards from one
//! set of 16: a writer found its backend's shard held by a writer of another schema and
//! moved on, and with 16 writers elsewhere it took a shard beyond 16 (rows that only
//! cleanup's fold gathers again). The lock's first key now names the schema (the fold's
//! lock did the same, 5452f1a), and the shard claimed for the transaction is remembered
//! with that key, so a transaction that writes two schemas claims one in each.
//!
//! Nothing else changes: the same shards (the backend's own if free, the next free one,
//! beyond 16 only when 16 writers of this schema run at once), tried and never waited for.

pub const SQL: &str = "CREATE OR REPLACE FUNCTION {s}.nts_shard() RETURNS SMALLINT
    LANGUAGE plpgsql AS $nts$
    DECLARE
        claimed TEXT := current_setting('nts.shard', true);
        k INTEGER := hashtext('native-token-storage shard {s}');
        first INTEGER := pg_backend_pid() % 16;
        n INTEGER;
    BEGIN
        -- Claimed earlier in this transaction: 'n k', k this schema's key.
        IF claimed IS NOT NULL AND split_part(claimed, ' ', 2) = k::TEXT THEN
            RETURN split_part(claimed, ' ', 1)::SMALLINT;
        END IF;
        FOR i IN 0..1023 LOOP
            n := CASE WHEN i < 16 THEN (first + i) % 16 + 1 ELSE i + 1 END;
            IF pg_try_advisory_xact_lock(k, n) THEN
                PERFORM set_config('nts.shard', n || ' ' || k, true);
                RETURN n;
            END IF;
        END LOOP;
        n := first + 1;
        PERFORM pg_advisory_xact_lock(k, n);
        PERFORM set_config('nts.shard', n || ' ' || k, true);
        RETURN n;
    END
    $nts$;";
