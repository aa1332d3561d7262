"use strict";
// Suite 5 of issue 3: a script that uses both stores and returns exits on its own (no
// timer, thread or handle of the addon keeps it alive), and the JS entry loads twice.
// The time bounds are hang detectors only; the measured times are reported.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { tempDir, runNode } = require("./helpers/common");

const fixture = (name) => path.join(__dirname, "children", name);
const env = () => ({ ...process.env, TOKEN_STORAGE: "", TOKEN_STORAGE_LOG: "warn" });

test("a script that uses both stores and returns exits on its own", async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const r = await runNode(fixture("clean-exit.js"), [path.join(dir, "exit.db")], { env: env(), timeoutMs: 10_000 });
  const exitedAt = Date.now();
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.code, 0, r.stderr);
  const returnedAt = Number(r.stdout.trim());
  assert.ok(Number.isFinite(returnedAt), `the script reached its end: ${r.stdout} ${r.stderr}`);
  t.diagnostic(`process lifetime ${Math.round(r.ms)} ms; exit ${exitedAt - returnedAt} ms after the script returned`);
});

for (const which of ["js", "all"]) {
  const what = which === "js" ? "the JS files" : "the JS files and the .node addon";
  test(`the package loads twice (require.cache of ${what} deleted in between); both copies work, each with its own memory store`, async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const r = await runNode(fixture("double-load.js"), [path.join(dir, "twice.db"), which], { env: env(), timeoutMs: 10_000 });
    assert.equal(r.signal, null, r.stderr);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.ok(out.forgotten.includes("index.js") && out.forgotten.includes(path.join("lib", "storage.js")), JSON.stringify(out.forgotten));
    assert.equal(out.forgotten.includes("native_token_storage.node"), which === "all");
    assert.equal(out.distinctCopies, true);
    // The default memory store is one per loaded copy, as the old module's Maps were; a
    // SQLite file is one file whichever copy opens it.
    assert.equal(out.firstSeesSecond, false);
    assert.equal(out.secondSeesFirst, false);
    assert.equal(out.firstSeesOwn, true);
    assert.equal(out.dbFirstSeesSecond, true);
    assert.equal(out.dbSecondSeesFirst, true);
    assert.equal(out.secondStats.totalTokens, 1);
    t.diagnostic(`exited 0 after ${Math.round(r.ms)} ms`);
  });
}
