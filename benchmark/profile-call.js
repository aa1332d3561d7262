#!/usr/bin/env node
"use strict";
// Where the time of one synchronous call goes, JS → napi → store → JS (issue 18): a get hit
// and a store, cut into parts, on the memory store (10k and 1M tokens) and SQLite (10k),
// beside the original Map module (benchmark/peers/map.js) in the same process.
//
//   node benchmark/profile-call.js [--sizes 10000,1000000] [--sqlite 10000] [--rounds 41]
//                                  [--batch 500] [--baseline DIR] [--json FILE]
//
// Tokens are JWT-sized (about 400 characters, access and refresh alike) and read in a
// uniformly random order. Every variant runs `--batch` calls per round, the variants of a
// round one after another (their order rotating from round to round), and each figure is
// the median over the rounds: on a shared 2-core machine only figures taken side by side
// in one process compare.
//
// `--baseline DIR`: another copy of the package (e.g. `git worktree add /tmp/base HEAD~3`
// or a `git archive` with its built .node), run in the same rounds: before and after.
//
// The parts (ns per call):
//   map            the Map module's getAccessToken / storeAccessToken
//   full           storage.getAccessToken(token) / storage.storeAccessToken(...)
//   native         the addon's method alone (arguments already checked), with its reply
//   decode         what the JS layer does to the native reply (op.output)
//   js layer       full - native - decode: argument checks, defaults, clock, dispatch
//   napi trivial   a napi method with no arguments and a boolean reply (NativeStore.open)
//   miss 1B        the native get of an unknown 1-byte token: napi + clock + a look-up
//   miss 400B      the same with a 400-byte token; minus `miss 1B`: taking a 400-byte string
//   hit - miss     native hit - native miss 400B: the record found, copied and made a JS value
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const crypto = require("node:crypto");

const ROOT = path.join(__dirname, "..");

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
}

const SIZES = option("sizes", "10000,1000000").split(",").filter(Boolean).map(Number);
const SQLITE_SIZES = option("sqlite", "10000").split(",").filter(Boolean).map(Number);
const ROUNDS = Number(option("rounds", "41"));
const BATCH = Number(option("batch", "500"));
const BASELINE = option("baseline", null);
const JSON_OUT = option("json", null);

// ---- data: JWT-sized tokens, made from an index (the harness holds no per-token strings) ----

const HEADER = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IjIwMjYtMTEifQ";
const USERS = (size) => Math.max(1, Math.floor(size / 10));

/** A flat one-byte string of about 400 characters, distinct for each (kind, i). */
function jwt(kind, i) {
  const h = crypto.createHash("sha256").update(`${kind}:${i}`).digest("base64url"); // 43
  const payload = Buffer.from(
    JSON.stringify({ iss: "https://auth.example.test", sub: `user-${i % 1000}`, aud: "mcp", jti: h, iat: 1764000000, exp: 1764003600, scope: "mcp read write", pad: h.slice(0, 30) }),
  ).toString("base64url");
  // Through a Buffer, so the string is flat, as one parsed from a request is.
  return Buffer.from(`${HEADER}.${payload}.${h}${h}`, "latin1").toString("latin1");
}

const row = (kind, i, users, expiresAt) => ({
  accessToken: jwt(kind, i),
  refreshToken: jwt(`r${kind}`, i),
  apiKey: `sk-or-v1-${crypto.createHash("sha256").update(`key${i % users}`).digest("hex")}`,
  userId: `user-${i % users}`,
  clientId: `client-${i % 16}`,
  scopes: ["mcp"],
  expiresAt,
});

/** Uniformly random indexes below `size` (a fixed seed: every run reads the same order). */
function randomIndexes(size, count, seed) {
  let s = seed >>> 0 || 1;
  const out = new Array(count);
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = (s >>> 0) % size;
  }
  return out;
}

// ---- timing ----

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Runs each variant `ROUNDS` times over `BATCH` inputs, interleaved, and returns the median
 * ns per call of each. `variants`: { name: { prepare(round) → inputs, run(inputs), after?(inputs) } }.
 */
function interleave(variants) {
  const names = Object.keys(variants);
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  // A warm-up round (not counted): every function optimised before it is timed.
  for (let round = -2; round < ROUNDS; round++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(k + Math.max(round, 0)) % names.length];
      const v = variants[name];
      const inputs = v.prepare(round);
      const t = process.hrtime.bigint();
      v.run(inputs);
      const ns = Number(process.hrtime.bigint() - t) / inputs.length;
      v.after?.(inputs);
      if (round >= 0) samples[name].push(ns);
    }
  }
  return Object.fromEntries(names.map((n) => [n, median(samples[n])]));
}

// Results land here (so that no call is optimised away).
let sink = 0;
const keep = (v) => {
  if (v == null) sink++;
  else sink += typeof v === "object" ? 1 : 2;
};

// ---- the packages under test ----

function loadPackage(dir) {
  const pkg = require(path.resolve(dir) + path.sep); // the folder's package, not a DIR.js beside it
  const { OPERATIONS } = require(path.join(path.resolve(dir), "lib", "operations.js"));
  return { pkg, OPERATIONS };
}

function openStore(lib, kind, file) {
  const options = kind === "sqlite" ? { storage: "sqlite", path: file } : { storage: "memory" };
  const s = new lib.pkg.TokenStorage({ cleanupInterval: 0, ...options });
  s.open();
  return s;
}

function seedOurs(store, size, expiresAt) {
  const users = USERS(size);
  for (let from = 0; from < size; from += 20_000) {
    const slice = [];
    for (let i = from; i < Math.min(size, from + 20_000); i++) slice.push(row("at", i, users, expiresAt));
    store.storeAccessTokens(slice);
  }
}

function seedMap(map, size, expiresAt) {
  const users = USERS(size);
  for (let i = 0; i < size; i++) {
    const r = row("at", i, users, expiresAt);
    map.storeAccessToken(r.accessToken, r.refreshToken, r.apiKey, r.userId, r.clientId, r.scopes, r.expiresAt);
  }
}

// ---- the measurements ----

function getHit(size, libs, stores, map) {
  const order = randomIndexes(size, BATCH * (ROUNDS + 2) * 4, 0x9e3779b9 ^ size);
  let cursor = 0;
  /** The next BATCH random stored tokens. */
  const hits = () => {
    const out = new Array(BATCH);
    for (let i = 0; i < BATCH; i++) out[i] = jwt("at", order[cursor++ % order.length]);
    return out;
  };
  const misses = (round) => Array.from({ length: BATCH }, (_, i) => jwt("miss", round * BATCH + i));
  const ones = () => Array.from({ length: BATCH }, (_, i) => String.fromCharCode(0x61 + (i % 26)));
  const now = () => Date.now();
  const variants = {};
  if (map) {
    variants.map = {
      prepare: hits,
      run(ts) {
        for (let i = 0; i < ts.length; i++) keep(map.getAccessToken(ts[i]));
      },
    };
  }
  for (const [label, lib] of Object.entries(libs)) {
    const store = stores[label];
    const native = store._native;
    const output = lib.OPERATIONS.getAccessToken.output;
    const kind = store.storage;
    variants[`${label} full`] = {
      prepare: hits,
      run(ts) {
        for (let i = 0; i < ts.length; i++) keep(store.getAccessToken(ts[i]));
      },
    };
    variants[`${label} native`] = {
      prepare: hits,
      run(ts) {
        for (let i = 0; i < ts.length; i++) keep(native.getAccessToken(ts[i], now()));
      },
    };
    variants[`${label} decode`] = {
      // The native replies of BATCH hits, made untimed.
      prepare: () => hits().map((t) => native.getAccessToken(t, now())),
      run(replies) {
        for (let i = 0; i < replies.length; i++) keep(output(replies[i], kind));
      },
    };
    variants[`${label} napi trivial`] = {
      prepare: ones,
      run(ts) {
        for (let i = 0; i < ts.length; i++) keep(native.open());
      },
    };
    variants[`${label} miss 1B`] = {
      prepare: ones,
      run(ts) {
        for (let i = 0; i < ts.length; i++) keep(native.getAccessToken(ts[i], now()));
      },
    };
    variants[`${label} miss 400B`] = {
      prepare: misses,
      run(ts) {
        for (let i = 0; i < ts.length; i++) keep(native.getAccessToken(ts[i], now()));
      },
    };
  }
  return interleave(variants);
}

function store(size, libs, stores, map) {
  let next = 0;
  const users = USERS(size);
  const expiresAt = new Date(Date.now() + 30 * 86_400_000);
  /** BATCH new tokens (never stored before: each round stores new ones, deleted after). */
  const fresh = () => Array.from({ length: BATCH }, () => row("st", size + next++, users, expiresAt));
  const variants = {};
  if (map) {
    variants.map = {
      prepare: fresh,
      run(rs) {
        for (const r of rs) map.storeAccessToken(r.accessToken, r.refreshToken, r.apiKey, r.userId, r.clientId, r.scopes, r.expiresAt);
      },
      after: (rs) => rs.forEach((r) => map.deleteToken(r.accessToken)),
    };
  }
  for (const [label] of Object.entries(libs)) {
    const s = stores[label];
    const native = s._native;
    const after = (rs) => rs.forEach((r) => s.deleteToken(r.accessToken));
    variants[`${label} full`] = {
      prepare: fresh,
      run(rs) {
        for (const r of rs) s.storeAccessToken(r.accessToken, r.refreshToken, r.apiKey, r.userId, r.clientId, r.scopes, r.expiresAt);
      },
      after,
    };
    variants[`${label} native`] = {
      prepare: () => fresh().map((r) => ({ ...r, expiresAt: r.expiresAt.getTime() })),
      run(rs) {
        for (const r of rs) native.storeAccessToken(r.accessToken, r.refreshToken, r.apiKey, r.userId, r.clientId, r.scopes, r.expiresAt, undefined, Date.now());
      },
      after,
    };
  }
  return interleave(variants);
}

/** The parts of each package's call, from the medians. */
function parts(medians, libs, op) {
  const out = {};
  if (medians.map !== undefined) out.map = medians.map;
  for (const label of Object.keys(libs)) {
    const m = (p) => medians[`${label} ${p}`];
    out[`${label} full`] = m("full");
    out[`${label} native`] = m("native");
    if (op === "get") {
      out[`${label} decode`] = m("decode");
      out[`${label} js layer`] = m("full") - m("native") - m("decode");
      out[`${label} napi trivial`] = m("napi trivial");
      out[`${label} miss 1B`] = m("miss 1B");
      out[`${label} 400B string in`] = m("miss 400B") - m("miss 1B");
      out[`${label} hit - miss`] = m("native") - m("miss 400B");
    } else {
      out[`${label} js layer`] = m("full") - m("native");
    }
    if (out.map !== undefined) out[`${label} full / map`] = m("full") / out.map;
  }
  return out;
}

function print(title, table) {
  console.log(`\n${title}`);
  for (const [k, v] of Object.entries(table)) {
    console.log(`  ${k.padEnd(28)} ${k.endsWith("/ map") ? `${v.toFixed(2)}×` : `${(v / 1000).toFixed(3)} µs`}`);
  }
}

function main() {
  const libs = { ours: loadPackage(ROOT) };
  if (BASELINE) libs.base = loadPackage(BASELINE);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nts-profile-call-"));
  const results = { when: new Date().toISOString(), rounds: ROUNDS, batch: BATCH, load: os.loadavg(), runs: [] };
  console.log(`rounds ${ROUNDS} × ${BATCH} calls per variant, medians; load ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  const jobs = [...SIZES.map((size) => ["memory", size]), ...SQLITE_SIZES.map((size) => ["sqlite", size])];
  for (const [kind, size] of jobs) {
    const expiresAt = new Date(Date.now() + 30 * 86_400_000);
    const t0 = Date.now();
    const stores = {};
    for (const [label, lib] of Object.entries(libs)) {
      stores[label] = openStore(lib, kind, path.join(dir, `${label}-${size}.db`));
      seedOurs(stores[label], size, expiresAt);
    }
    let map = require("./peers/map").open();
    seedMap(map, size, expiresAt);
    console.error(`${kind} ${size}: seeded in ${((Date.now() - t0) / 1e3).toFixed(1)} s`);
    for (const [op, fn] of [["get", getHit], ["store", store]]) {
      const table = parts(fn(size, libs, stores, map), libs, op);
      print(`${kind}, ${size} tokens, ${op === "get" ? "get hit" : "store with refresh token"} (ns → µs per call)`, table);
      results.runs.push({ kind, size, op, table });
    }
    for (const s of Object.values(stores)) s.close();
    map = null;
  }
  fs.rmSync(dir, { recursive: true, force: true });
  if (JSON_OUT) fs.writeFileSync(JSON_OUT, `${JSON.stringify(results, null, 2)}\n`);
  if (sink === -1) console.log(sink);
}

main();
