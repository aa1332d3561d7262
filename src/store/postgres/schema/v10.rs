//! Migration 10: getStats in constant time in the seconds after a burst of expiries (issue
//! 18; the SQLite store's migration 8, `sqlite/refine.rs`). Migration 1's getStats counts
//! the rows of the current 4-second bucket that have expired by now: 100,000 of them after
//! a burst. Now a 4-second bucket listed in `nts_refined` also gets millisecond counts
//! (`bits` 0) and 64 ms counts (`bits` 6) in `nts_fine`, of its tokens by expiry (kind 0)
//! and of its users by until (kind 1, the rows of `nts_users` that getStats counts), and
//! getStats sums at most 64 + 64 of them per shard instead of visiting the rows.
//!
//! What getStats reads: the current bucket's expired rows are its count (migration 1's,
//! kept for every row) less its live part, the fine counts of the milliseconds after
//! `at_ms`. So only the fine counts of the milliseconds a getStats may still find live are
//! kept: a row that expired 3 s ago or more by the server's clock is never counted finely
//! when written, deleted or moved, and the automatic cleanup of a burst that just expired
//! pays a comparison per row (the count of a past millisecond is left stale, never read,
//! and dropped with its bucket's mark).
//!
//! Who keeps them: row triggers on `access_tokens` and `nts_users` whose `WHEN` fires only
//! for a row whose expiry (until) is near the server's clock (`near!`: from 3 s before it to
//! 22.5 buckets after; tokens seldom expire within seconds of being written, and the
//! cleanup deletes rows already expired), so every other write pays a comparison and no
//! call; the function then probes `nts_refined` and counts only rows in a listed bucket.
//! getStats reads a bucket's fine counts only while it is listed, from 21 buckets after
//! the server's clock down to an `at_ms` 1 s behind it (an instance's clock and its call's
//! wait; further behind, it visits the rows as before), deciding on the clock read after
//! its statement's snapshot, so every write it sees was written with an earlier clock and
//! kept the fine counts of every millisecond after its `at_ms`. The 2 s between the two
//! (3 s less 1 s) is how far the server's clock may step back (a leap second, an NTP step)
//! without a getStats counting a row deleted in the meantime; a larger step could make
//! getStats off by the rows written or deleted within it, until its bucket is past.
//!
//! Who lists a bucket (`nts_refine`): getStats, when its current bucket holds more than
//! 64 tokens and it would read its fine counts (and it is at most 1 after the clock's), and
//! the automatic cleanup, ahead of time, for crowded buckets due before its next pass
//! (`nts_refine_ahead`). Listing counts the bucket's rows not yet 3 s past (after a
//! burst's expiry: only its live rest) under `SHARE` locks of both tables: every writer
//! that did not see the listing has committed before the count, every later one sees it. The lock is waited
//! for a bounded time (getStats: 20 ms), else the caller visits the rows as before; its
//! error is caught, so it leaves nothing in the server's log. Listing also drops the
//! marks and fine counts of buckets before the one before the caller's.

/// Whether expiry `$v` may be counted in a listed bucket that getStats still reads: later
/// than 3 s before the server's clock (what getStats' `at_ms` may lag it, 1 s, plus a 2 s
/// backward step of the clock) and earlier than 22.5 buckets after it (the last bucket
/// listed, 21 after the clock's, plus the same 2 s), in milliseconds.
macro_rules! near {
    ($v:literal) => {
        concat!(
            "(", $v, " > (date_part('epoch', clock_timestamp()) * 1000)::BIGINT - 3000 AND ",
            $v, " < (date_part('epoch', clock_timestamp()) * 1000)::BIGINT + 92160)"
        )
    };
}

/// getStats' count of kind `$k` live at `at_ms` (migration 1's): its total less its past
/// buckets, less the current bucket's expired ones. When `f.fine` those are the bucket's
/// count less its live part, summed from the fine counts of the milliseconds after `at_ms`
/// (at most 63 of 64 ms and 63 of 1 ms), else they are counted from `$rows` (the rows of
/// kind `$k` expired in the current bucket).
macro_rules! live_of {
    ($k:literal, $rows:literal) => {
        concat!(
            "(({s}.nts_sum(", $k, "::SMALLINT, 3::SMALLINT, 0, 1)
              - {s}.nts_sum(", $k, "::SMALLINT, 2::SMALLINT, -9223372036854775807, at_ms >> 20)
              - {s}.nts_sum(", $k, "::SMALLINT, 1::SMALLINT, (at_ms >> 20) << 4, at_ms >> 16)
              - {s}.nts_sum(", $k, "::SMALLINT, 0::SMALLINT, (at_ms >> 16) << 4, at_ms >> 12)
              - CASE WHEN f.fine THEN
                    {s}.nts_sum(", $k, "::SMALLINT, 0::SMALLINT, at_ms >> 12, (at_ms >> 12) + 1)
                  - (SELECT coalesce(sum(n), 0) FROM {s}.nts_fine
                    WHERE kind = ", $k, " AND bits = 6 AND bucket > at_ms >> 6
                        AND bucket < ((at_ms >> 12) + 1) << 6)
                  - (SELECT coalesce(sum(n), 0) FROM {s}.nts_fine
                    WHERE kind = ", $k, " AND bits = 0 AND bucket > at_ms
                        AND bucket < ((at_ms >> 6) + 1) << 6)
                ELSE (SELECT count(*) ", $rows, ") END))::BIGINT"
        )
    };
}

pub const SQL: &str = concat!(
    "CREATE TABLE {s}.nts_refined (bucket BIGINT PRIMARY KEY);
    CREATE TABLE {s}.nts_fine (
        kind SMALLINT NOT NULL,
        bits SMALLINT NOT NULL,
        bucket BIGINT NOT NULL,
        shard SMALLINT NOT NULL,
        n BIGINT NOT NULL,
        PRIMARY KEY (kind, bits, bucket, shard)
    );
    -- The server's clock, in epoch milliseconds (the same for every instance).
    CREATE FUNCTION {s}.nts_clock_ms() RETURNS BIGINT
    LANGUAGE sql VOLATILE AS $nts$
        SELECT (date_part('epoch', clock_timestamp()) * 1000)::BIGINT
    $nts$;
    -- A row of kind k leaves expiry o and comes to expiry e (NULL: none): counted where
    -- either is in a listed bucket and not yet 3 s past (no getStats reads that one).
    CREATE FUNCTION {s}.nts_fine_move(k SMALLINT, o BIGINT, e BIGINT) RETURNS void
    LANGUAGE plpgsql AS $nts$
    DECLARE
        sh SMALLINT;
        past BIGINT := {s}.nts_clock_ms() - 3000;
    BEGIN
        IF o IS NOT DISTINCT FROM e THEN
            RETURN;
        END IF;
        IF o <= past THEN
            o := NULL;
        END IF;
        IF e <= past THEN
            e := NULL;
        END IF;
        IF o IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {s}.nts_refined WHERE bucket = o >> 12) THEN
            o := NULL;
        END IF;
        IF e IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {s}.nts_refined WHERE bucket = e >> 12) THEN
            e := NULL;
        END IF;
        IF o IS NULL AND e IS NULL THEN
            RETURN;
        END IF;
        sh := {s}.nts_shard();
        INSERT INTO {s}.nts_fine AS c (kind, bits, bucket, shard, n)
        SELECT k, l.bits, m.v >> l.bits, sh, sum(m.d)
        FROM (VALUES (o, -1), (e, 1)) AS m (v, d), (VALUES (0::SMALLINT), (6::SMALLINT)) AS l (bits)
        WHERE m.v IS NOT NULL
        GROUP BY 2, 3
        HAVING sum(m.d) <> 0
        ON CONFLICT (kind, bits, bucket, shard) DO UPDATE SET n = c.n + excluded.n;
    END
    $nts$;
    CREATE FUNCTION {s}.nts_fine_tokens() RETURNS trigger
    LANGUAGE plpgsql AS $nts$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            PERFORM {s}.nts_fine_move(0::SMALLINT, NULL, NEW.expires_at);
        ELSIF TG_OP = 'DELETE' THEN
            PERFORM {s}.nts_fine_move(0::SMALLINT, OLD.expires_at, NULL);
        ELSE
            PERFORM {s}.nts_fine_move(0::SMALLINT, OLD.expires_at, NEW.expires_at);
        END IF;
        RETURN NULL;
    END
    $nts$;
    CREATE FUNCTION {s}.nts_fine_users() RETURNS trigger
    LANGUAGE plpgsql AS $nts$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            PERFORM {s}.nts_fine_move(1::SMALLINT, NULL,
                CASE WHEN NEW.never IS FALSE THEN NEW.until END);
        ELSIF TG_OP = 'DELETE' THEN
            PERFORM {s}.nts_fine_move(1::SMALLINT,
                CASE WHEN OLD.never IS FALSE THEN OLD.until END, NULL);
        ELSE
            PERFORM {s}.nts_fine_move(1::SMALLINT,
                CASE WHEN OLD.never IS FALSE THEN OLD.until END,
                CASE WHEN NEW.never IS FALSE THEN NEW.until END);
        END IF;
        RETURN NULL;
    END
    $nts$;
    CREATE TRIGGER nts_access_fine_inserted AFTER INSERT ON {s}.access_tokens
        FOR EACH ROW WHEN (", near!("NEW.expires_at"), ")
        EXECUTE FUNCTION {s}.nts_fine_tokens();
    CREATE TRIGGER nts_access_fine_deleted AFTER DELETE ON {s}.access_tokens
        FOR EACH ROW WHEN (", near!("OLD.expires_at"), ")
        EXECUTE FUNCTION {s}.nts_fine_tokens();
    CREATE TRIGGER nts_access_fine_updated AFTER UPDATE OF expires_at ON {s}.access_tokens
        FOR EACH ROW WHEN (OLD.expires_at IS DISTINCT FROM NEW.expires_at
            AND (", near!("OLD.expires_at"), " OR ", near!("NEW.expires_at"), "))
        EXECUTE FUNCTION {s}.nts_fine_tokens();
    CREATE TRIGGER nts_users_fine_inserted AFTER INSERT ON {s}.nts_users
        FOR EACH ROW WHEN (NEW.never IS FALSE AND ", near!("NEW.until"), ")
        EXECUTE FUNCTION {s}.nts_fine_users();
    CREATE TRIGGER nts_users_fine_deleted AFTER DELETE ON {s}.nts_users
        FOR EACH ROW WHEN (OLD.never IS FALSE AND ", near!("OLD.until"), ")
        EXECUTE FUNCTION {s}.nts_fine_users();
    CREATE TRIGGER nts_users_fine_updated AFTER UPDATE OF never, until ON {s}.nts_users
        FOR EACH ROW WHEN ((OLD.never IS FALSE AND ", near!("OLD.until"), ")
            OR (NEW.never IS FALSE AND ", near!("NEW.until"), "))
        EXECUTE FUNCTION {s}.nts_fine_users();
    -- Lists 4-second bucket p_bucket and counts its rows finely, unless it is listed
    -- already; drops the marks and fine counts of the buckets before the one before
    -- p_current (the caller's). Waits at most wait_ms for the locks; false if it did not
    -- list it (the locks were busy, or the transaction is read-only).
    CREATE FUNCTION {s}.nts_refine(p_current BIGINT, p_bucket BIGINT, wait_ms INTEGER)
        RETURNS BOOLEAN
    LANGUAGE plpgsql SET enable_seqscan = off AS $nts$
    DECLARE
        was TEXT := current_setting('lock_timeout');
        past BIGINT;
    BEGIN
        BEGIN
            PERFORM set_config('lock_timeout', greatest(wait_ms, 1) || 'ms', true);
            -- In the writers' order: access tokens, then users.
            LOCK TABLE {s}.access_tokens, {s}.nts_users IN SHARE MODE;
            PERFORM set_config('lock_timeout', was, true);
            DELETE FROM {s}.nts_refined WHERE bucket < p_current - 1;
            DELETE FROM {s}.nts_fine WHERE (bits = 0 AND bucket < (p_current - 1) << 12)
                OR (bits = 6 AND bucket < (p_current - 1) << 6);
            INSERT INTO {s}.nts_refined (bucket) VALUES (p_bucket) ON CONFLICT DO NOTHING;
            IF NOT FOUND THEN
                RETURN true;
            END IF;
            -- Fine counts left from an earlier mark of this bucket (since dropped) are stale.
            DELETE FROM {s}.nts_fine
            WHERE (bits = 0 AND bucket >= p_bucket << 12 AND bucket < (p_bucket + 1) << 12)
                OR (bits = 6 AND bucket >= p_bucket << 6 AND bucket < (p_bucket + 1) << 6);
            -- Only what is not yet 3 s past: getStats reads the milliseconds after its at_ms,
            -- and no later than 3 s before the clock (a burst that just expired is not visited).
            past := greatest((p_bucket << 12) - 1, {s}.nts_clock_ms() - 3000);
            INSERT INTO {s}.nts_fine (kind, bits, bucket, shard, n)
            SELECT 0, 0, expires_at, 0, count(*) FROM {s}.access_tokens
            WHERE expires_at > past AND expires_at < (p_bucket + 1) << 12
            GROUP BY expires_at;
            INSERT INTO {s}.nts_fine (kind, bits, bucket, shard, n)
            SELECT 1, 0, until, 0, count(*) FROM {s}.nts_users
            WHERE NOT never AND until > past AND until < (p_bucket + 1) << 12
            GROUP BY until;
            INSERT INTO {s}.nts_fine (kind, bits, bucket, shard, n)
            SELECT kind, 6, bucket >> 6, 0, sum(n) FROM {s}.nts_fine
            WHERE bits = 0 AND bucket >= p_bucket << 12 AND bucket < (p_bucket + 1) << 12
            GROUP BY kind, bucket >> 6;
            RETURN true;
        EXCEPTION WHEN lock_not_available OR deadlock_detected OR read_only_sql_transaction THEN
            RETURN false;
        END;
    END
    $nts$;
    -- The automatic cleanup's last step (`PostgresStore::prepare_stats`): the buckets from
    -- now's to until's (and 2 more), at most 20 past now's and 21 past the clock's, holding
    -- more than 4,096 tokens and not listed yet: the 4 largest.
    CREATE FUNCTION {s}.nts_due_refines(now_ms BIGINT, until_ms BIGINT) RETURNS SETOF BIGINT
    LANGUAGE sql VOLATILE AS $nts$
        SELECT c.bucket FROM {s}.nts_counts c
        WHERE c.kind = 0 AND c.level = 0 AND c.bucket >= now_ms >> 12
            AND c.bucket <= least((until_ms >> 12) + 2, (now_ms >> 12) + 20)
            AND c.bucket >= ({s}.nts_clock_ms() >> 12) - 1
            AND c.bucket <= ({s}.nts_clock_ms() >> 12) + 21
            AND NOT EXISTS (SELECT 1 FROM {s}.nts_refined r WHERE r.bucket = c.bucket)
        GROUP BY c.bucket HAVING sum(c.n) > 4096
        ORDER BY sum(c.n) DESC LIMIT 4
    $nts$;
    -- getStats: migration 1's, with the current bucket's expired rows counted from the fine
    -- counts when it is listed, at_ms lags the server's clock by at most 1 s and is at most
    -- 21 buckets ahead of it (decided in the one statement that reads the counts, on the
    -- clock read after its snapshot: every write it sees read the clock before); lists it
    -- first when it holds more than 64 tokens.
    CREATE OR REPLACE FUNCTION {s}.nts_stats(at_ms BIGINT) RETURNS TABLE (tokens BIGINT, users BIGINT)
    LANGUAGE plpgsql VOLATILE SET enable_seqscan = off AS $nts$
    DECLARE
        b BIGINT := at_ms >> 12;
        clock BIGINT := {s}.nts_clock_ms();
    BEGIN
        IF at_ms >= clock - 1000 AND b <= (clock >> 12) + 1
            AND NOT EXISTS (SELECT 1 FROM {s}.nts_refined WHERE bucket = b)
            AND (SELECT sum(n) FROM {s}.nts_counts WHERE kind = 0 AND level = 0 AND bucket = b) > 64
        THEN
            PERFORM {s}.nts_refine(b, b, 20);
        END IF;
        RETURN QUERY SELECT
            ", live_of!("0", "FROM {s}.access_tokens
                      WHERE expires_at >= (at_ms >> 12) << 12 AND expires_at <= at_ms"), ",
            ", live_of!("1", "FROM {s}.nts_users
                      WHERE NOT never AND until >= (at_ms >> 12) << 12 AND until <= at_ms"), "
        FROM (SELECT at_ms >= c.ms - 1000 AND b <= (c.ms >> 12) + 21
                AND EXISTS (SELECT 1 FROM {s}.nts_refined WHERE bucket = b) AS fine
            FROM (SELECT {s}.nts_clock_ms() AS ms) c) f;
    END
    $nts$;"
);
