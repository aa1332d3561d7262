#!/usr/bin/env node
"use strict";
// Where the PostgreSQL server's time goes in one storeAccessToken with a refresh token (issue
// 18's "store ≥ 1× the one-statement pg peer"), part by part, beside the `pg` peer's statement
// (benchmark/peers/pg.js), in one backend. Two schemas seeded alike (`--size` tokens of size/10
// users expiring in an hour): ours, made by this package, and the peer's. Each variant is a
// procedure of `--per` stores (a new token with a new refresh string, expiring in an hour, of a
// seeded user), each committed; the variants add the short path of migration 13's
// `nts_store_access_tokens` piece by piece, written out in the procedure:
//
//   peer     the peer's one statement on its own tables (B-tree keys, no triggers)
//   bare     ours' three writes (the token, the family row's delete, the refresh row) as one
//            statement on ours' tables, the triggers off (session_replication_role = replica)
//   trig     the same with the triggers on (the fine-count row trigger of the token; the
//            statement triggers' WHEN, skipped as the function skips them)
//   locks    + the two advisory locks and the refresh string's probe
//   head     + the shard, `set_config`, the user's key, the statement's answer read back
//   user     + the user's row moved forward (the `u` CTE and its fine-count trigger)
//   counts   + the counts (the `c` CTE): the function's short path, inline
//   ours     the function itself (`SELECT nts_store_access_tokens(…)`, as the package sends it)
//
// Rounds alternate the order (forward, then backward), and the backend's CPU time is read from
// /proc/<pid>/schedstat around each batch: it needs the server on this machine, readable by
// this user. Figures are medians over the rounds, µs per store. The inline variants copy
// migration 13's statement (src/store/postgres/schema/v13.rs); "ours" is what a store runs.
//
//   node benchmark/pg-store-parts.js [--size 10000] [--rounds 8] [--per 300]
// The server: BENCH_PG_URL or TOKEN_TEST_DATABASE_URL.
const { PACKAGE } = require("./peers/ours");
const { dropSchema, withClient } = require("./lib/postgres");
const { option, pgUrl, median } = require("./lib/ab");
const { cpuNs, seedRows, peerStore } = require("./lib/pg-cpu");

const SIZE = Number(option("size", "10000"));
const ROUNDS = Number(option("rounds", "8"));
const PER = Number(option("per", "300"));
const URL_ = pgUrl("pg-store-parts");
process.env.TOKEN_STORAGE_LOG ??= "silent";

const HOUR = 3_600_000;
const USERS = Math.max(1, SIZE / 10);

const tag = process.pid;
const S = `bench_parts_ours_${tag}`;
const P = `bench_parts_peer_${tag}`;

// A procedure of n committed stores; `body` sees tok, rt, uid, t (the clock) and ve (expiry).
const procedure = (schema, name, body, { decl = "", pre = "", post = "" } = {}) => `
  CREATE PROCEDURE ${schema}.${name}(n INTEGER, tag TEXT) LANGUAGE plpgsql AS $b$
  DECLARE t BIGINT; ve BIGINT; tok TEXT; rt TEXT; uid TEXT; v TEXT; ${decl}
  BEGIN ${pre}
    FOR i IN 1..n LOOP
      t := (date_part('epoch', clock_timestamp()) * 1000)::BIGINT;
      ve := t + ${HOUR};
      tok := 'parts-' || tag || i; rt := 'parts-r-' || tag || i; uid := 'user-' || (i % ${USERS});
      ${body}
      COMMIT;
    END LOOP; ${post}
  END $b$`;

// Migration 13's short path, its pieces as CTEs.
const a = `a AS (INSERT INTO ${S}.access_tokens (token, api_key, user_id, client_id, scopes,
      refresh_token, expires_at, created_at)
    VALUES (tok, 'sk', uid, 'c', '[]', rt, ve, t) ON CONFLICT DO NOTHING RETURNING 1),
  f AS (DELETE FROM ${S}.nts_refresh_families f WHERE f.refresh_token = rt
    AND EXISTS (SELECT 1 FROM a) RETURNING 1),
  r AS (INSERT INTO ${S}.refresh_tokens (refresh_token, user_id, client_id, scopes,
      access_token, created_at)
    SELECT rt, uid, 'c', '[]', tok, t FROM a RETURNING 1)`;
const u = `u AS (UPDATE ${S}.nts_users y SET prev_until = y.until, never = ve IS NULL, until = ve
    WHERE y.user_key = uk AND y.never IS FALSE AND (ve IS NULL OR (y.until < ve) IS TRUE)
      AND EXISTS (SELECT 1 FROM a) AND (SELECT count(*) FROM f) + (SELECT count(*) FROM r) >= 0
    RETURNING y.prev_until)`;
const c = `c AS (INSERT INTO ${S}.nts_counts AS c (kind, level, bucket, shard, n)
    SELECT m.k, l.level, CASE l.level WHEN 3 THEN 0 ELSE m.e >> l.bits END, sh, m.d
    FROM (SELECT 0::SMALLINT AS k, ve AS e, 1 AS d, false AS mv, NULL::BIGINT AS w FROM a
        UNION ALL SELECT 1::SMALLINT, u.prev_until, -1, true, u.prev_until FROM u
        UNION ALL SELECT 1::SMALLINT, ve, 1, true, u.prev_until FROM u) AS m,
      (VALUES (0::SMALLINT, 12), (1::SMALLINT, 16), (2::SMALLINT, 20), (3::SMALLINT, 0))
        AS l (level, bits)
    WHERE CASE WHEN l.level = 3 THEN m.k = 0 ELSE m.e IS NOT NULL
      AND NOT (m.mv AND ve IS NOT NULL AND m.w >> l.bits = ve >> l.bits) END
    ON CONFLICT (kind, level, bucket, shard) DO UPDATE SET n = c.n + excluded.n)`;
const locks = `k1 := hashtextextended('native-token-storage token:' || tok, 0);
  k2 := hashtextextended('native-token-storage token:' || rt, 0);
  v := pg_advisory_xact_lock(least(k1, k2)); v := pg_advisory_xact_lock(greatest(k1, k2));
  SELECT y.access_token INTO ta FROM ${S}.refresh_tokens y WHERE y.refresh_token = rt;`;
const head = `sh := ${S}.nts_shard(); uk := sha256(convert_to(uid, 'UTF8'));`;
const decl = "k1 BIGINT; k2 BIGINT; ta TEXT; sh SMALLINT; uk BYTEA; added BOOLEAN; moved BOOLEAN;";
const on = "v := set_config('nts.counted', 'on', true);";
const off = "v := set_config('nts.counted', '', true);";

const VARIANTS = [
  ["bare", `WITH ${a} SELECT 1 INTO added;`, {
    pre: "v := set_config('session_replication_role', 'replica', false);",
    post: "v := set_config('session_replication_role', 'origin', false);",
  }],
  ["trig", `${on} WITH ${a} SELECT 1 INTO added; ${off}`],
  ["locks", `${on} ${locks} WITH ${a} SELECT 1 INTO added; ${off}`],
  ["head", `${locks} ${head} ${on} WITH ${a} SELECT EXISTS (SELECT 1 FROM a) INTO added; ${off}`],
  ["user", `${locks} ${head} ${on} WITH ${a}, ${u}
    SELECT EXISTS (SELECT 1 FROM a), EXISTS (SELECT 1 FROM u) INTO added, moved; ${off}`],
  ["counts", `${locks} ${head} ${on} WITH ${a}, ${u}, ${c}
    SELECT EXISTS (SELECT 1 FROM a), EXISTS (SELECT 1 FROM u) INTO added, moved; ${off}`],
  ["ours", `PERFORM ${S}.nts_store_access_tokens(ARRAY[tok], ARRAY['sk'], ARRAY[uid], ARRAY['c'],
    ARRAY['[]'], ARRAY[rt], ARRAY[ve], t);`],
];

const rowsOf = (i, end, now) => seedRows(i, end, USERS, now + HOUR);

async function main() {
  await dropSchema(URL_, S);
  await dropSchema(URL_, P);
  try {
    const { TokenStorage } = require(PACKAGE);
    const store = new TokenStorage({ storage: "postgres", url: URL_, schema: S, cleanupInterval: 0 });
    const now = Date.now();
    for (let i = 0; i < SIZE; i += 5000) store.storeAccessTokens(rowsOf(i, Math.min(SIZE, i + 5000), now));
    store.close();
    const p = await require("./peers/pg").open({ url: URL_, schema: P });
    await p.seedTokens(rowsOf(0, SIZE, Date.now()));
    await p.close();
    const sides = [["peer", `${P}.parts`], ...VARIANTS.map(([name]) => [name, `${S}.parts_${name}`])];
    await withClient(URL_, async (db) => {
      await db.query(procedure(P, "parts", peerStore(P, "ve")));
      for (const [name, body, extra] of VARIANTS) await db.query(procedure(S, `parts_${name}`, body, { decl, ...extra }));
      await db.query(`VACUUM ANALYZE ${S}.access_tokens, ${S}.refresh_tokens, ${S}.nts_users, ${P}.access_tokens, ${P}.refresh_tokens`);
      const pid = (await db.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
      // Each variant writes tokens of its own (the tag), so none finds another's rows.
      for (const [name, proc] of sides) await db.query(`CALL ${proc}(50, 'w-${name}-')`);
      const times = new Map(sides.map(([name]) => [name, []]));
      for (let r = 0; r < ROUNDS; r++) {
        for (const [name, proc] of r % 2 === 0 ? sides : [...sides].reverse()) {
          const c0 = cpuNs(pid);
          await db.query(`CALL ${proc}(${PER}, '${r}-${name}-')`);
          times.get(name).push((cpuNs(pid) - c0) / 1e3 / PER);
        }
      }
      console.log(`server CPU per store at ${SIZE} tokens, ${ROUNDS} rounds of ${PER}, one backend (medians, µs):`);
      let before = null;
      for (const [name] of sides) {
        const m = median(times.get(name));
        const step = before === null || name === "bare" ? "" : ` (${m - before >= 0 ? "+" : ""}${(m - before).toFixed(1)})`;
        console.log(`  ${name.padEnd(7)} ${m.toFixed(1).padStart(7)}${step.padEnd(10)}  rounds: ${times.get(name).map((x) => x.toFixed(0)).join(" ")}`);
        before = m;
      }
    });
  } finally {
    await dropSchema(URL_, S);
    await dropSchema(URL_, P);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
