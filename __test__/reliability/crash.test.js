"use strict";
// Suite 3 of issue 3: crash safety. A child stores tokens in a loop and prints each one
// after the call returned; we SIGKILL it at a random moment, several times on one file.
// After each kill, every printed token must read back intact and the file must pass
// PRAGMA integrity_check. Run with the default synchronous mode and with TOKEN_DB_SYNC=full.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const path = require("node:path");
const { PKG, tempDir, dbEnv, integrityCheck, tableCounts, prng } = require("./helpers/common");
const { expected, BULK } = require("./children/crash-child");
process.env.TOKEN_STORAGE_LOG = "warn";
const { TokenStorage } = require(PKG);

const CHILD = path.join(__dirname, "children", "crash-child.js");
const KILLS = 5;
const BULK_KILLS = 8;
const SEED = Number(process.env.CRASH_SEED ?? 20261127);

/** Starts the child, kills it `delayMs` after its first printed token; resolves the printed indexes. */
function runAndKill(env, prefix, delayMs, mode = "tokens") {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, prefix, mode], { env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let timer = null;
    const hang = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`crash child printed nothing within 20 s: ${err}`));
    }, 20_000);
    child.stdout.setEncoding("utf8").on("data", (d) => {
      out += d;
      if (timer !== null) return;
      if (mode === "tokens") timer = setTimeout(() => child.kill("SIGKILL"), delayMs);
      else if (out.includes("stored ")) {
        // Bulk mode: let deleteUserTokens begin, then kill within `delayMs` ms (busy wait:
        // timers are too coarse for a transaction of a few milliseconds).
        timer = true;
        child.stdin.write("g");
        const until = process.hrtime.bigint() + BigInt(Math.round(delayMs * 1e6));
        while (process.hrtime.bigint() < until);
        child.kill("SIGKILL");
      }
    });
    child.stderr.setEncoding("utf8").on("data", (d) => (err += d));
    child.on("close", (code, signal) => {
      clearTimeout(hang);
      clearTimeout(timer);
      if (signal !== "SIGKILL") return reject(new Error(`crash child ended by itself (${code}): ${err}`));
      // Only complete lines: a line cut by the kill was not fully printed.
      const lines = out.split("\n").slice(0, -1);
      resolve(mode === "tokens" ? lines.map(Number) : lines);
    });
  });
}

for (const sync of ["normal (default)", "full"]) {
  test(`SIGKILL during writes, ${KILLS} times, synchronous=${sync}: every printed token survives`, async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const dbPath = path.join(dir, "crash.db");
    const env = dbEnv(dbPath, sync === "full" ? { TOKEN_DB_SYNC: "full" } : {});
    const rnd = prng(SEED + (sync === "full" ? 1 : 0));
    let total = 0;
    const printed = [];
    for (let round = 0; round < KILLS; round++) {
      const prefix = `r${round}`;
      const delay = rnd.int(20, 400);
      const indexes = await runAndKill(env, prefix, delay);
      assert.ok(indexes.length > 0, "the child stored something before the kill");
      printed.push(...indexes.map((i) => expected(prefix, i)));
      total += indexes.length;

      // Reopen (a new connection recovers the WAL) and read every token printed so far.
      const store = new TokenStorage({ storage: "db", path: dbPath, synchronous: sync === "full" ? "full" : undefined });
      const bad = [];
      for (const e of printed) {
        const got = store.getAccessToken(e.token);
        const want = { apiKey: e.apiKey, userId: e.userId, clientId: e.clientId, scopes: e.scopes, refreshToken: e.refreshToken, expiresAt: e.expiresAt };
        const have = got && { apiKey: got.apiKey, userId: got.userId, clientId: got.clientId, scopes: got.scopes, refreshToken: got.refreshToken, expiresAt: got.expiresAt && got.expiresAt.getTime() };
        if (JSON.stringify(have) !== JSON.stringify(want)) bad.push({ token: e.token, found: got !== null });
        else if (e.refreshToken !== null && store.getRefreshToken(e.refreshToken)?.accessToken !== e.token) {
          bad.push({ token: e.token, refresh: "missing" });
        }
      }
      const stats = store.getStats();
      store.close();
      assert.deepEqual(bad.slice(0, 5), [], `round ${round} (kill after ${delay} ms): ${bad.length} printed tokens lost or damaged`);
      assert.equal(integrityCheck(dbPath), "ok", `round ${round}: integrity_check`);
      const rows = tableCounts(dbPath);
      assert.equal(stats.totalTokens, rows.tokens, `round ${round}: getStats agrees with the rows`);
      // At most the one token whose call was running at the kill may be there unprinted.
      assert.ok(rows.tokens - printed.length <= round + 1, `round ${round}: ${rows.tokens} rows for ${printed.length} printed tokens`);
      assert.equal(rows.danglingRefresh, 0);
    }
    t.diagnostic(`sync=${sync} kills=${KILLS} printed tokens checked=${total}`);
  });
}

test(`SIGKILL inside deleteUserTokens of ${BULK} tokens, ${BULK_KILLS} times: all of them or none, counters right`, async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const dbPath = path.join(dir, "bulk.db");
  const rnd = prng(SEED + 2);
  const outcomes = [];
  for (let round = 0; round < BULK_KILLS; round++) {
    const prefix = `b${round}`;
    const lines = await runAndKill(dbEnv(dbPath), prefix, rnd.next() * 1.5, "bulk");
    const stored = lines.filter((l) => l.startsWith("stored ")).length;
    const deleted = lines.filter((l) => l.startsWith("deleted ")).length;
    const store = new TokenStorage({ storage: "db", path: dbPath });
    const count = (k) => {
      let n = 0;
      for (let i = 0; i < BULK; i++) if (store.getAccessToken(`${prefix}-${k}-${i}`)) n++;
      return n;
    };
    for (let k = 0; k < deleted; k++) assert.equal(count(k), 0, `round ${round}: user ${k} was deleted before the kill`);
    if (stored > deleted) {
      // The kill came after "stored k": deleteUserTokens was running or had not begun.
      const left = count(deleted);
      assert.ok(left === 0 || left === BULK, `round ${round}: ${left} of the ${BULK} tokens of the user being deleted are left`);
      outcomes.push(left === 0 ? "deleted" : "kept");
    } else {
      outcomes.push("storing");
    }
    const stats = store.getStats();
    store.close();
    const rows = tableCounts(dbPath);
    assert.equal(stats.totalTokens, rows.tokens, `round ${round}: getStats agrees with the rows`);
    assert.equal(stats.uniqueUsers, rows.users, `round ${round}: uniqueUsers agrees with the rows`);
    assert.equal(rows.danglingRefresh, 0);
    assert.equal(integrityCheck(dbPath), "ok", `round ${round}: integrity_check`);
  }
  t.diagnostic(`bulk kills=${BULK_KILLS} where the kill landed: ${outcomes.join(",")}`);
});
