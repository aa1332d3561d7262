"use strict";
// Suite 6 of issue 3: hostile input. Seeded random sequences of all calls (random strings,
// ~1 MB strings, unicode, lone surrogates, NULs, SQL-looking text, wrong types, huge and
// negative numbers, NaN, invalid Dates) run against the memory store, the SQLite store and
// a pure-JS reference model of the contract (helpers/model.js); every result must match
// the model call by call, every wrong type must be a TypeError naming the function and the
// argument, and nothing may crash. Replay a failure with FUZZ_SEED=<seed>.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const fs = require("node:fs");
const { PKG, tempDir, integrityCheck } = require("./helpers/common");
const { Model } = require("./helpers/model");
const { generator, show } = require("./helpers/fuzz-gen");
process.env.TOKEN_STORAGE_LOG = "silent";
const { TokenStorage } = require(PKG);

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed2026);
const SEQUENCES = Number(process.env.FUZZ_SEQUENCES ?? 60);
const LENGTH = Number(process.env.FUZZ_LENGTH ?? 150);

const STORES = {
  memory: { open: () => new TokenStorage({ storage: "memory" }) },
  sqlite: { open: (file) => new TokenStorage({ storage: "db", path: file }) },
};

const within = (ms, call) => typeof ms === "number" && ms >= call.t0 - 1 && ms <= call.t1 + 1;
const dateMs = (d) => (d instanceof Date ? d.getTime() : d === null ? null : `not a Date: ${show(d)}`);

/** Compares a store's outcome with the model's; returns a description of the difference or null. */
function difference(name, outcome, want) {
  if (want.error) {
    if (!outcome.threw) return `expected ${want.error} for ${want.arg}, got a result ${show(outcome.value)}`;
    const e = outcome.threw;
    if (e?.constructor?.name !== want.error) return `expected ${want.error} for ${want.arg}, got ${e?.constructor?.name}: ${e?.message} (${e?.code})`;
    if (!e.message.includes(want.fn) || !e.message.includes(want.arg)) return `${want.error} does not name ${want.fn} and ${want.arg}: ${e.message}`;
    return null;
  }
  if (outcome.threw) return `expected a result, got ${outcome.threw?.constructor?.name}: ${outcome.threw?.message} (${outcome.threw?.code})`;
  const got = outcome.value;
  const w = want.value;
  if (w === null || w === undefined || typeof w === "number") return got === w ? null : `expected ${show(w)}, got ${show(got)}`;
  if (got === null || got === undefined) return `expected a result, got ${got}`;
  const fields = (o, keys) => JSON.stringify(keys.map((k) => o[k]));
  switch (name) {
    case "getAccessToken": {
      const keys = ["apiKey", "userId", "clientId", "scopes", "refreshToken"];
      if (fields(got, keys) !== fields(w, keys)) return `token fields: expected ${fields(w, keys).slice(0, 300)}, got ${fields(got, keys).slice(0, 300)}`;
      if (dateMs(got.expiresAt) !== w.expiresAt) return `expiresAt: expected ${w.expiresAt}, got ${show(got.expiresAt)}`;
      if (!(got.createdAt instanceof Date) || !within(got.createdAt.getTime(), w.created)) return `createdAt ${show(got.createdAt)} not in the store call's [${w.created.t0}, ${w.created.t1}]`;
      return null;
    }
    case "consumeAuthorizationCode": {
      const keys = ["userId", "apiKey", "clientId", "redirectUri", "codeChallenge", "codeChallengeMethod", "scopes"];
      if (fields(got, keys) !== fields(w, keys)) return `code fields: expected ${fields(w, keys).slice(0, 300)}, got ${fields(got, keys).slice(0, 300)}`;
      if (!within(got.createdAt, w.created)) return `createdAt ${show(got.createdAt)} not in [${w.created.t0}, ${w.created.t1}]`;
      if (got.expiresAt - got.createdAt !== w.ttl) return `expiresAt - createdAt = ${got.expiresAt - got.createdAt}, expected ${w.ttl}`;
      return null;
    }
    case "getRefreshToken": {
      const keys = ["userId", "clientId", "scopes", "accessToken"];
      if (fields(got, keys) !== fields(w, keys)) return `refresh fields: expected ${fields(w, keys).slice(0, 300)}, got ${fields(got, keys).slice(0, 300)}`;
      if (!(got.createdAt instanceof Date) || !within(got.createdAt.getTime(), w.created)) return `createdAt ${show(got.createdAt)} not in [${w.created.t0}, ${w.created.t1}]`;
      return null;
    }
    case "getStats":
      return got.totalTokens === w.totalTokens && got.uniqueUsers === w.uniqueUsers ? null : `stats: expected ${JSON.stringify(w)}, got ${JSON.stringify(got)}`;
    default:
      return `unexpected result ${show(got)}`;
  }
}

test(`fuzz: ${SEQUENCES} seeded sequences of ${LENGTH} hostile calls, memory and SQLite stores against the model`, async (t) => {
  const { dir, cleanup } = tempDir("nts-fuzz-");
  t.after(cleanup);
  const gen = generator(SEED);
  const counts = { calls: 0, typeErrors: 0, rangeErrors: 0, results: 0, mutations: 0 };
  const hits = {}; // non-null, non-zero results per call: the sequences do reach stored data
  for (let s = 0; s < SEQUENCES; s++) {
    const calls = gen.sequence(LENGTH);
    const file = path.join(dir, `seq-${s}.db`);
    const runs = Object.entries(STORES).map(([kind, def]) => ({ kind, store: def.open(file), model: new Model(def.model) }));
    // The final getStats of each sequence compares the counters too.
    calls.push(["getStats", []]);
    for (let i = 0; i < calls.length; i++) {
      const [name, argv] = calls[i];
      for (const { kind, store, model } of runs) {
        const call = { now: Date.now() };
        call.t0 = call.now;
        const want = name === "close" ? model.close() : model[name](call, ...argv);
        const outcome = {};
        try {
          outcome.value = store[name](...argv);
          if (outcome.value instanceof Promise) outcome.value = await outcome.value;
        } catch (err) {
          outcome.threw = err;
        }
        call.t1 = Date.now();
        counts.calls++;
        if (want.error === "TypeError") counts.typeErrors++;
        else if (want.error === "RangeError") counts.rangeErrors++;
        else counts.results++;
        if (!want.error && want.value !== null && want.value !== undefined && want.value !== 0) hits[name] = (hits[name] ?? 0) + 1;
        const diff = difference(name, outcome, want);
        if (diff !== null) {
          assert.fail(`seed ${SEED}, sequence ${s}, call ${i} on the ${kind} store: ${name}(${argv.map(show).join(", ")}): ${diff}\n` +
            `calls so far:\n${calls.slice(0, i + 1).map(([n, a], j) => `  ${j}: ${n}(${a.map(show).join(", ")})`).join("\n")}`);
        }
        // The result is a fresh object: changing it must not change the store.
        if (outcome.value && typeof outcome.value === "object" && Array.isArray(outcome.value.scopes) && gen.rnd.chance(0.3)) {
          outcome.value.scopes.push("MUTATED");
          outcome.value.apiKey = "MUTATED";
          if (outcome.value.expiresAt instanceof Date) outcome.value.expiresAt.setTime(0);
          counts.mutations++;
        }
      }
    }
    for (const { store } of runs) store.close();
    if (s % 10 === 0) assert.equal(integrityCheck(file), "ok", `sequence ${s}: integrity_check`);
    for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f), { force: true });
  }
  t.diagnostic(`seed=${SEED} sequences=${SEQUENCES} calls=${counts.calls} (per store ${counts.calls / 2}): results=${counts.results} TypeErrors=${counts.typeErrors} RangeErrors=${counts.rangeErrors} result objects mutated=${counts.mutations} hits=${JSON.stringify(hits)}`);
});
