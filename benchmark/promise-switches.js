"use strict";
// What one awaited PostgreSQL call costs the process besides its round trip: N getAccessToken
// misses (never cached: every call goes to the server) through ours, synchronously or through
// the Promise API, or the same number of trivial named statements through pg (a Pool of one).
// Run each form under perf to count the thread hand-offs (PROFILE.md, "PostgreSQL /promises"):
//   export TOKEN_TEST_DATABASE_URL=postgres://...
//   for f in sync promise pg; do perf stat -e context-switches,task-clock -- node benchmark/promise-switches.js $f; done
// Prints µs per call (wall). Uses a schema of its own on the server given, dropped at the end.
const path = require("node:path");
const { dropSchema } = require("./lib/postgres");

const FORMS = ["sync", "promise", "pg"];
const form = process.argv[2];
const N = Number(process.argv[3] ?? 3000);
const url = process.env.TOKEN_TEST_DATABASE_URL;
if (!FORMS.includes(form) || !url) {
  console.error(`usage: TOKEN_TEST_DATABASE_URL=... node benchmark/promise-switches.js ${FORMS.join("|")} [calls]`);
  process.exit(2);
}

const perCall = (t0) => (Number(process.hrtime.bigint() - t0) / 1e3 / N).toFixed(1);

async function main() {
  if (form === "pg") {
    const { Pool } = require("pg");
    const pool = new Pool({ connectionString: url, max: 1 });
    await pool.query("SELECT 1");
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) await pool.query({ name: "q", text: "SELECT $1::text WHERE false", values: [`x${i}`] });
    console.log(`pg: ${perCall(t0)} µs per call`);
    await pool.end();
    return;
  }
  const { TokenStorage } = require(path.join(__dirname, ".."));
  const schema = `promise_switches_${process.pid}`;
  const store = new TokenStorage({ storage: "postgres", url, schema, cleanupInterval: 0 });
  try {
    store.getAccessToken("warm-up");
    const t0 = process.hrtime.bigint();
    if (form === "sync") for (let i = 0; i < N; i++) store.getAccessToken(`miss-${i}`);
    else for (let i = 0; i < N; i++) await store.promises.getAccessToken(`miss-${i}`);
    console.log(`ours ${form}: ${perCall(t0)} µs per call`);
  } finally {
    store.close();
    await dropSchema(url, `"${schema}"`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
