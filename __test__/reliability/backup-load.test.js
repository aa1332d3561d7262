"use strict";
// Issue 19: a backup taken while 4 processes write at full speed restores to a store that
// holds every token acknowledged before the backup began (each writer reports how many of
// its stores had returned; the backup starts once every report is in), and the file passes
// its checks. On SQLite, PostgreSQL and Redis (memory lives in one process: backup.test.js).
// Redis is read in pages (not one snapshot): the writers' tokens never expire, so they
// all share one score in its index, and pages end among them while more are added.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const { fork } = require("node:child_process");
const path = require("node:path");
const { PKG, PG_URL, REDIS_URL, storeOptions, tempDir, removeDir, TokenStorage } = require("../helpers/setup");

const CHILD = path.join(__dirname, "children", "backup-writer.js");
const WRITERS = 4;

/** Forks the writers; `ask(type, reply)` sends `type` to each and resolves to their replies. */
function writers(options) {
  const children = [];
  for (let id = 0; id < WRITERS; id++) {
    const child = fork(CHILD, [String(id)], {
      env: { ...process.env, NTS_PKG: PKG, NTS_OPTIONS: JSON.stringify(options), TOKEN_STORAGE_LOG: "warn" },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    children.push(child);
  }
  const ask = (type, reply) =>
    Promise.all(
      children.map(
        (c) =>
          new Promise((resolve, reject) => {
            const on = (m) => {
              if (m.type !== reply) return;
              c.off("message", on);
              resolve(m);
            };
            c.on("message", on);
            c.once("exit", (code) => reject(new Error(`a writer exited (${code}) before answering ${type}`)));
            if (type) c.send({ type });
          }),
      ),
    );
  const kill = () => children.forEach((c) => c.connected && c.kill("SIGKILL"));
  return { ask, kill };
}

const KINDS = ["db", ...(PG_URL ? ["postgres"] : []), ...(REDIS_URL ? ["redis"] : [])];

for (const kind of KINDS) {
  test(`a backup during a ${WRITERS}-process write load holds every token acknowledged before it began, ${kind}`, { timeout: 120_000 }, async () => {
    const dir = tempDir("nts-backup-load-");
    const options = storeOptions(kind, path.join(dir, "tokens.db"));
    const storage = new TokenStorage(options);
    const w = writers(options);
    try {
      storage.open();
      await w.ask(null, "ready");
      await new Promise((r) => setTimeout(r, 300)); // under way
      const before = await w.ask("report", "acked");
      const file = path.join(dir, "backup.db");
      const report = await storage.promises.backup(file);
      const after = await w.ask("report", "acked");
      const done = await w.ask("stop", "done");
      const written = done.reduce((n, m) => n + m.acked, 0);
      const acked = before.reduce((n, m) => n + m.acked, 0);
      assert.ok(acked > 0 && after.some((m, i) => m.acked > before[i].acked), "the writers wrote before and during the backup");
      assert.ok(report.counts.accessTokens >= acked && report.counts.accessTokens <= written, `${report.counts.accessTokens} tokens in the backup, ${acked} acknowledged before it, ${written} in all`);
      const restored = new TokenStorage({ storage: "db", path: file });
      try {
        for (const { id, acked: n } of before) {
          for (let i = 0; i < n; i++) {
            const t = restored.getAccessToken(`w${id}-${i}`);
            assert.ok(t !== null && t.refreshToken === `r${id}-${i}`, `w${id}-${i} (of ${n} acknowledged before the backup) is in it`);
          }
        }
        assert.equal(restored.getStats().totalTokens, report.counts.accessTokens);
      } finally {
        restored.close();
      }
    } finally {
      w.kill();
      storage.close();
      removeDir(dir);
    }
  });
}
