"use strict";
// Suites 1 and 2 of issue 3: several processes on one SQLite file.
//  1. 4 processes store/get/delete tokens and store/consume codes at full speed for ~3 s;
//     afterwards no call threw, every kept token is readable from every process, getStats
//     agrees with the rows and the file passes PRAGMA integrity_check. Again while a fifth
//     writer is SIGKILLed over and over: a dead process never wedges the others.
//  2. N codes; 4 processes race to consume all of them: each code is consumed exactly once.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const { fork, spawn } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { PKG, tempDir, dbEnv, integrityCheck, tableCounts, s256, newVerifier } = require("./helpers/common");
process.env.TOKEN_STORAGE_LOG = "warn";
const { TokenStorage } = require(PKG);

const CHILD = path.join(__dirname, "children", "mp-child.js");
const CRASH_CHILD = path.join(__dirname, "children", "crash-child.js");
const PROCESSES = 4;

/** Forks the children and collects their messages; kills them all after `timeoutMs`. */
function startChildren(argvOf, dbPath, timeoutMs) {
  const children = [];
  const waiters = new Map(); // type -> { n, msgs, resolve, reject }
  const expect = (type) =>
    new Promise((resolve, reject) => waiters.set(type, { msgs: [], resolve, reject }));
  const exits = [];
  for (let id = 0; id < PROCESSES; id++) {
    const child = fork(CHILD, argvOf(id), { env: dbEnv(dbPath), stdio: ["ignore", "inherit", "pipe", "ipc"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    child.on("message", (msg) => {
      const w = waiters.get(msg.type);
      if (!w) return;
      w.msgs[msg.id] = msg;
      if (Object.keys(w.msgs).length === PROCESSES) w.resolve(w.msgs);
    });
    exits.push(
      new Promise((resolve) =>
        child.on("exit", (code, signal) => {
          for (const w of waiters.values()) w.reject(new Error(`child ${id} exited early (${code ?? signal}): ${stderr}`));
          resolve({ code, signal, stderr });
        }),
      ),
    );
    children.push(child);
  }
  const timer = setTimeout(() => {
    for (const c of children) c.kill("SIGKILL");
  }, timeoutMs);
  return {
    children,
    expect,
    send: (msg) => children.forEach((c) => c.send(msg)),
    async finish() {
      for (const c of children) if (c.connected) c.send({ type: "exit" });
      const results = await Promise.all(exits);
      clearTimeout(timer);
      return results;
    },
  };
}

/**
 * Checks the loaders' reports (no call threw, no wrong result), then has every process read
 * every token any process kept, on its own connection; returns the kept tokens.
 * `expectTotal`: what getStats().totalTokens must say in every process afterwards.
 */
async function checkLoad(group, results, dir, expectTotal = false) {
  for (const r of results) {
    assert.equal(r.errorCount, 0, `process ${r.id}: calls threw: ${JSON.stringify(r.errors)}`);
    assert.deepEqual(r.mismatches, [], `process ${r.id}: wrong results`);
  }
  const kept = results.flatMap((r) => r.kept);
  const keptFile = path.join(dir, "kept.json");
  fs.writeFileSync(keptFile, JSON.stringify(kept));
  const verified = group.expect("verified");
  group.send({ type: "verify", file: keptFile });
  for (const v of await verified) {
    assert.equal(v.errorCount, 0, `process ${v.id}: calls threw while verifying: ${JSON.stringify(v.errors)}`);
    assert.equal(v.missing, 0, `process ${v.id}: ${v.missing} kept tokens are missing: ${JSON.stringify(v.examples)}`);
    assert.equal(v.wrong, 0, `process ${v.id}: ${v.wrong} kept tokens read back wrong: ${JSON.stringify(v.examples)}`);
    if (expectTotal) assert.equal(v.stats.totalTokens, kept.length, `process ${v.id}: getStats().totalTokens`);
  }
  return kept;
}

test("4 processes on one file at full speed: no error, nothing lost, stats and integrity hold", async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const dbPath = path.join(dir, "shared.db");
  const group = startChildren((id) => ["load", String(id), "3000"], dbPath, 60_000);
  try {
    await group.expect("ready");
    const done = group.expect("done");
    group.send({ type: "go" });
    const results = await done;

    const ops = {};
    for (const r of results) for (const [op, n] of Object.entries(r.ops)) ops[op] = (ops[op] ?? 0) + n;
    const totalOps = Object.values(ops).reduce((a, b) => a + b, 0);
    const kept = await checkLoad(group, results, dir, true);
    const exits = await group.finish();
    for (const e of exits) assert.equal(e.code, 0, `child exit: ${e.signal ?? e.code} ${e.stderr}`);

    // The rows, counted by another SQLite (python3), against getStats and the kept set.
    const store = new TokenStorage({ storage: "db", path: dbPath });
    store.cleanupExpiredTokens();
    const stats = store.getStats();
    store.close();
    const rows = tableCounts(dbPath);
    const users = new Set(kept.map((k) => k.userId).filter((u) => u !== null));
    assert.equal(rows.tokens, kept.length, "access_tokens rows = tokens kept");
    assert.equal(stats.totalTokens, rows.tokens, "getStats().totalTokens = rows");
    assert.equal(rows.users, users.size, "distinct users in rows = users of kept tokens");
    assert.equal(stats.uniqueUsers, rows.users, "getStats().uniqueUsers = distinct users in rows");
    assert.equal(rows.refresh, kept.filter((k) => k.refreshToken !== null).length, "refresh_tokens rows");
    assert.equal(rows.danglingRefresh, 0, "no refresh token points at a missing access token");
    assert.equal(rows.codes, 0, "every code was consumed");
    assert.equal(integrityCheck(dbPath), "ok");
    t.diagnostic(`processes=${PROCESSES} operations=${totalOps} kept=${kept.length} ${JSON.stringify(ops)}`);
  } finally {
    await group.finish();
  }
});

test("a writer SIGKILLed again and again on the same file never wedges the 4 others", async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const dbPath = path.join(dir, "killed.db");
  const group = startChildren((id) => ["load", String(id), "2500"], dbPath, 60_000);
  const KILLS = 6;
  let killed = 0;
  try {
    await group.expect("ready");
    const done = group.expect("done");
    group.send({ type: "go" });
    // Meanwhile: a writer (the crash suite's child) started and SIGKILLed at random moments,
    // so it dies holding the write lock or in the middle of a WAL append now and then.
    for (let k = 0; k < KILLS; k++) {
      const child = spawn(process.execPath, [CRASH_CHILD, `killed${k}`], { env: dbEnv(dbPath), stdio: ["ignore", "pipe", "ignore"] });
      await new Promise((resolve) => child.stdout.once("data", resolve));
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.floor(Math.random() * 150)));
      child.kill("SIGKILL");
      await new Promise((resolve) => child.on("close", resolve));
      killed++;
    }
    const results = await done;
    await checkLoad(group, results, dir);
    await group.finish();
    const store = new TokenStorage({ storage: "db", path: dbPath });
    // A read removes an expired token only when the write lock is free at once, so an expired
    // row may wait for cleanup: getStats counts live tokens, the table every row.
    store.cleanupExpiredTokens();
    const stats = store.getStats();
    store.close();
    assert.equal(stats.totalTokens, tableCounts(dbPath).tokens, "getStats agrees with the rows");
    assert.equal(integrityCheck(dbPath), "ok");
    const ops = results.reduce((n, r) => n + Object.values(r.ops).reduce((a, b) => a + b, 0), 0);
    t.diagnostic(`processes=${PROCESSES} operations=${ops} writer kills=${killed}`);
  } finally {
    await group.finish();
  }
});

test("4 processes race to consume the same codes: each is consumed exactly once", async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const dbPath = path.join(dir, "codes.db");
  const N = 6000;
  const store = new TokenStorage({ storage: "db", path: dbPath });
  const codes = [];
  for (let i = 0; i < N; i++) {
    const code = `code-${i}-${newVerifier().slice(0, 8)}`;
    const verifier = newVerifier();
    store.storeAuthorizationCode(code, `user-${code}`, "key", "client", "http://127.0.0.1/cb", s256(verifier), "S256", ["read"], 600);
    codes.push({ code, verifier });
  }
  store.close();
  const codesFile = path.join(dir, "codes.json");
  fs.writeFileSync(codesFile, JSON.stringify(codes));

  const group = startChildren((id) => ["race", String(id), codesFile], dbPath, 60_000);
  try {
    await group.expect("ready");
    const done = group.expect("done");
    group.send({ type: "go" });
    const results = await done;
    const by = new Map();
    for (const r of results) {
      assert.equal(r.errorCount, 0, `process ${r.id}: calls threw: ${JSON.stringify(r.errors)}`);
      assert.deepEqual(r.mismatches, [], `process ${r.id}: a consumed code returned another code's data`);
      for (const c of r.consumed) by.set(c, [...(by.get(c) ?? []), r.id]);
    }
    const twice = [...by].filter(([, ids]) => ids.length > 1);
    assert.deepEqual(twice, [], "codes consumed by more than one process");
    const lost = codes.filter(({ code }) => !by.has(code)).map(({ code }) => code);
    assert.deepEqual(lost, [], "codes consumed by no process");
    assert.equal(tableCounts(dbPath).codes, 0);
    assert.equal(integrityCheck(dbPath), "ok");
    t.diagnostic(`codes=${N} consumed per process=${results.map((r) => r.consumed.length).join("/")} attempts=${N * PROCESSES}`);
  } finally {
    await group.finish();
  }
});
