"use strict";
const path = require("node:path");
// What the A/B scripts (ab-sqlite.js, ab-postgres.js, ab-pg-roundtrip.js, pg-server-cpu.js, pg-write-only.js) share: `--name value` options, and the
// settings every one of them takes.

// The value after `--name` on the command line, else `fallback`.
function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
}

// --baseline DIR (required: `usage` is printed without it; given back as the folder's
// absolute path ending in a separator), --size, --rounds.
function common(usage) {
  const baseline = option("baseline", null);
  if (!baseline) {
    console.error(usage);
    process.exit(2);
  }
  // The folder itself, with its trailing separator: `require` then loads the package in it,
  // never a `DIR.js` or `DIR.json` beside it (a report that run.js --out wrote there, say).
  return { baseline: path.resolve(baseline) + path.sep, size: Number(option("size", "10000")), rounds: Number(option("rounds", "21")) };
}

// The PostgreSQL server of the A/B scripts that need one: BENCH_PG_URL, else
// TOKEN_TEST_DATABASE_URL; without either, `script` says so and the process exits 2.
function pgUrl(script) {
  const url = process.env.BENCH_PG_URL || process.env.TOKEN_TEST_DATABASE_URL;
  if (!url) {
    console.error(`${script}: set BENCH_PG_URL (or TOKEN_TEST_DATABASE_URL) to a server's URL`);
    process.exit(2);
  }
  return url;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// `size` live tokens ("at" rows of benchmark/lib/data.js, each with a refresh token) stored
// into `store` in batches of 20,000.
function seed(store, size) {
  const data = require("./data");
  const users = data.usersFor(size);
  const expiresAt = data.liveUntil();
  let slice = [];
  for (const row of data.tokenRows("at", 0, size, users, expiresAt)) {
    slice.push(row);
    if (slice.length === 20_000) {
      store.storeAccessTokens(slice);
      slice = [];
    }
  }
  if (slice.length) store.storeAccessTokens(slice);
}

// The two sides of a PostgreSQL A/B script, each a store of ours (cleanup off) on an empty
// schema of its own on `url`: A the package in `baseline`, B this one.
async function pgSides(baseline, url, tag) {
  const { dropSchema } = require("./postgres");
  const { PACKAGE } = require("../peers/ours");
  const sides = [
    { name: "A (baseline)", pkg: baseline, schema: `bench_ab_${tag}_a_${process.pid}` },
    { name: "B (this)", pkg: PACKAGE, schema: `bench_ab_${tag}_b_${process.pid}` },
  ];
  for (const s of sides) {
    await dropSchema(url, s.schema);
    const { TokenStorage } = require(s.pkg);
    s.store = new TokenStorage({ storage: "postgres", url, schema: s.schema, cleanupInterval: 0 });
  }
  return sides;
}

// Closes the stores of `pgSides` and drops their schemas.
async function closePgSides(sides, url) {
  const { dropSchema } = require("./postgres");
  for (const s of sides) {
    s.store.close();
    await dropSchema(url, s.schema);
  }
}

module.exports = { option, common, pgUrl, median, seed, pgSides, closePgSides };
