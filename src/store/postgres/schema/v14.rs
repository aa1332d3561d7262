//! Migration 14: getStats is planned once per connection (issue 18). Migration 10's
//! `nts_stats` read the counts through `nts_sum`, a function in SQL, which PostgreSQL
//! cannot write into the calling statement (its body is an aggregate) and so parses and
//! plans again, at every call site, in every statement that calls it: ten plans per
//! getStats. The statement around them was planned again for its first five calls in each
//! connection too (a custom plan for every `at_ms`), and planning a range over an index
//! looks up the index's ends, which a table with many dead rows at an end makes slower.
//! Measured on the shared cluster (the benchmark's data, one connection, µs per
//! getStats from Node): 650-830 at 10k tokens and 800-1,070 at 1M before; with the sums
//! written into the statement 330-440 at 10k; with one generic plan too 270-400 at 10k and
//! 270-380 at 1M.
//!
//! So `nts_stats` is migration 10's with each `nts_sum` written out as a subquery (a plan
//! that plpgsql keeps for the connection) and `plan_cache_mode = force_generic_plan`: its
//! statements are planned once, at the first call, for any `at_ms`. Every subquery
//! probes one index by its leading columns whatever the plan's parameters, and
//! `enable_seqscan = off` (migration 1's) keeps those probes when the tables are small.
//! Nothing else changes: the same counts, the same decision to read the fine counts, the
//! same refine. `nts_sum` stays (an instance of an older version may still be running).

/// The counts of kind `$k` at level `$l` in buckets `$b0` to `$b1` (excluded), summed:
/// migration 1's `nts_sum`, as a subquery.
macro_rules! sum {
    ($k:literal, $l:literal, $b0:literal, $b1:literal) => {
        concat!(
            "(SELECT coalesce(sum(n), 0)::BIGINT FROM {s}.nts_counts
                WHERE kind = ", $k, " AND level = ", $l,
            " AND bucket >= (", $b0, ") AND bucket < (", $b1, "))"
        )
    };
}

/// getStats' count of kind `$k` live at `at_ms`: migration 10's `live_of!` (its total less
/// its past buckets, less the current bucket's expired ones, from the fine counts when
/// `f.fine`, else from `$rows`), with the sums as subqueries.
macro_rules! live {
    ($k:literal, $rows:literal) => {
        concat!(
            "((", sum!($k, "3", "0", "1"),
            " - ", sum!($k, "2", "-9223372036854775807", "at_ms >> 20"),
            " - ", sum!($k, "1", "(at_ms >> 20) << 4", "at_ms >> 16"),
            " - ", sum!($k, "0", "(at_ms >> 16) << 4", "at_ms >> 12"),
            " - CASE WHEN f.fine THEN ", sum!($k, "0", "at_ms >> 12", "(at_ms >> 12) + 1"), "
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
    "CREATE OR REPLACE FUNCTION {s}.nts_stats(at_ms BIGINT) RETURNS TABLE (tokens BIGINT, users BIGINT)
    LANGUAGE plpgsql VOLATILE
    SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $nts$
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
            ", live!("0", "FROM {s}.access_tokens
                      WHERE expires_at >= (at_ms >> 12) << 12 AND expires_at <= at_ms"), ",
            ", live!("1", "FROM {s}.nts_users
                      WHERE NOT never AND until >= (at_ms >> 12) << 12 AND until <= at_ms"), "
        FROM (SELECT at_ms >= c.ms - 1000 AND b <= (c.ms >> 12) + 21
                AND EXISTS (SELECT 1 FROM {s}.nts_refined WHERE bucket = b) AS fine
            FROM (SELECT {s}.nts_clock_ms() AS ms) c) f;
    END
    $nts$;"
);
