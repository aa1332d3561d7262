"use strict";
// Suite 4 of issue 3: the addon in 4 worker_threads plus the main thread, all using the
// module-level functions. No crash, no lost write, a clean exit of the process; and what
// the threads share: a database is one per process, so a token one thread stores is
// visible to every other thread; the memory store is one per thread, as the old module's
// Maps were, unless TOKEN_MEMORY_SCOPE=process asks for one per process.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { tempDir, runNode } = require("./helpers/common");
const { PG_URL, freshSchema } = require("../helpers/setup");

const SCRIPT = path.join(__dirname, "children", "threads-main.js");

const CASES = [
  { storage: "memory", scope: "module" },
  { storage: "memory", scope: "process" },
  { storage: "db", scope: "module" },
  ...(PG_URL ? [{ storage: "postgres", scope: "module" }] : []),
];

for (const { storage, scope } of CASES) {
  const shared = storage !== "memory" || scope === "process";
  const what = storage === "memory" ? `${storage} (TOKEN_MEMORY_SCOPE=${scope})` : storage;
  test(`${what} default store in main thread + 4 workers: no crash, no lost write, ${shared ? "shared" : "one per thread"}, clean exit`, async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const perThread = storage === "memory" ? 2000 : 600;
    const env = { ...process.env, TOKEN_STORAGE: storage, TOKEN_DB_PATH: path.join(dir, "threads.db"), TOKEN_STORAGE_LOG: "warn", TOKEN_MEMORY_SCOPE: scope, PER_THREAD: String(perThread) };
    if (storage === "postgres") Object.assign(env, { TOKEN_DATABASE_URL: PG_URL, TOKEN_DB_SCHEMA: freshSchema() });
    // 30 s: a hang detector only.
    const r = await runNode(SCRIPT, [], { env, timeoutMs: 30_000 });
    assert.equal(r.signal, null, `the process was killed by ${r.signal}: ${r.stderr}`);
    assert.equal(r.code, 0, `exit code: ${r.stderr}`);
    const out = JSON.parse(r.stdout);
    assert.equal(out.storage, storage === "db" ? "sqlite" : storage);
    assert.deepEqual(Object.values(out.lost), [0, 0, 0, 0, 0], "writes that did not read back");
    // Shared: every thread sees the tokens of all five threads; else each its own.
    const expected = shared ? out.expectedSeen : perThread;
    for (const [thread, seen] of Object.entries(out.seen)) {
      assert.equal(seen, expected, `${thread} sees ${seen} of the ${out.expectedSeen} tokens the threads stored`);
    }
    assert.deepEqual(out.workerExitCodes, [0, 0, 0, 0]);
    assert.equal(out.victimExit, 1, "worker.terminate() ends a worker in the middle of its calls with exit code 1");
    assert.equal(out.afterTerminate, true, "the store works after a worker was terminated mid-call");
    assert.ok(out.totalTokens >= expected + 1);
    t.diagnostic(`${what}: threads=5 tokens=${out.expectedSeen} codes=${out.expectedSeen / 4} each visible in ${shared ? "every thread" : "its own thread"}; process exited 0 after ${Math.round(r.ms)} ms`);
  });
}
