"use strict";
// An interrupted copy or restore (issue 19): the command's process is killed (SIGKILL)
// mid-copy, after some batches were written, and the target holds nothing of it (a copy is
// one transaction of the target: SQLite ignores the uncommitted pages of its WAL, PostgreSQL
// rolls back the transaction of a connection that is gone); a forced copy killed mid-way
// leaves the rows it was to replace; the same command run again copies everything, counts
// compared with the source's.
const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const path = require("node:path");
const { PG_URL, TokenStorage, tempDir, removeDir, cleanEnv, freshSchema } = require("./helpers/setup");
const { EXIT } = require("../lib/cli");
const { BIN, runCli, seedTokens } = require("./helpers/cli");

/** Tokens in the source: enough for a copy to take a few seconds (SQLite to SQLite: 3-4 s), so the first progress line (after a second) comes mid-way. */
const TOKENS = 100_000;
const BATCH = "10";

const cli = (args, env = {}) => runCli(args, { env, timeout: 120_000 });

/**
 * Runs the command and kills it (SIGKILL) once its progress shows some rows written and
 * not all of them; resolves to the rows written by then.
 */
function killMidway(args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    let killed = null;
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      err += chunk;
      for (const m of err.matchAll(/: (\d+) rows of (\d+)/g)) {
        const [done, total] = [Number(m[1]), Number(m[2])];
        if (killed === null && done > 0 && done < total) {
          killed = done;
          child.kill("SIGKILL");
        }
      }
    });
    child.on("exit", (code, signal) => {
      if (signal === "SIGKILL" && killed !== null) resolve(killed);
      else reject(new Error(`the copy was not killed mid-way (exit ${code}, ${signal}): ${err}`));
    });
  });
}

function rowsOf(options) {
  const s = new TokenStorage({ ...options, cleanupInterval: 0 });
  try {
    return JSON.parse(s._native.rowCounts());
  } finally {
    s.close();
  }
}

const total = (counts) => Object.values(counts).reduce((a, b) => a + b, 0);

describe("an interrupted copy", () => {
  let dir;
  let source;
  let sourceRows;
  before(() => {
    dir = tempDir("nts-interrupted-");
    source = path.join(dir, "source.db");
    seedTokens(source, TOKENS, { user: (i) => `user-${i % 97}`, scopes: ["read"] });
    sourceRows = rowsOf({ storage: "db", path: source });
    assert.equal(sourceRows.accessTokens, TOKENS);
  });
  after(() => removeDir(dir));

  it("into a new SQLite file: killed mid-way, nothing of it in the file; run again, everything", async () => {
    const target = path.join(dir, "target.db");
    const written = await killMidway(["copy", source, target, "--batch-size", BATCH]);
    assert.ok(written > 0);
    assert.equal(total(rowsOf({ storage: "db", path: target })), 0, "no half-written rows");
    const r = cli(["copy", source, target, "--batch-size", "500", "--json"]);
    assert.equal(r.status, EXIT.OK, r.stderr);
    assert.deepEqual(r.json().counts, sourceRows);
    assert.deepEqual(rowsOf({ storage: "db", path: target }), sourceRows);
  });

  it("a forced restore killed mid-way leaves the store as it was; run again, it is replaced", async () => {
    const store = path.join(dir, "store.db");
    const s = new TokenStorage({ storage: "db", path: store });
    s.storeAccessToken("keep-at", "keep-rt", "sk-keep", "dora", "app", [], null);
    s.close();
    const before = rowsOf({ storage: "db", path: store });
    const env = { TOKEN_STORAGE: "db", TOKEN_DB_PATH: store };
    await killMidway(["restore", source, "--force", "--batch-size", BATCH], env);
    assert.deepEqual(rowsOf({ storage: "db", path: store }), before, "the rows it was to replace, and only them");
    const r = cli(["restore", source, "--force", "--json"], env);
    assert.equal(r.status, EXIT.OK, r.stderr);
    assert.deepEqual(rowsOf({ storage: "db", path: store }), sourceRows);
    const check = new TokenStorage({ storage: "db", path: store });
    try {
      assert.equal(check.getAccessToken("keep-at"), null);
      assert.equal(check.getAccessToken(`secret-at-${TOKENS - 1}`).refreshToken, `secret-rt-${TOKENS - 1}`);
    } finally {
      check.close();
    }
  });

  it("into PostgreSQL: killed mid-way, nothing of it in the schema; run again, everything", { skip: PG_URL ? false : "TOKEN_TEST_DATABASE_URL not set" }, async () => {
    const schema = freshSchema();
    const env = { TOKEN_DB_SCHEMA: schema };
    const target = { storage: "postgres", url: PG_URL, schema };
    const written = await killMidway(["copy", source, PG_URL, "--batch-size", BATCH], env);
    assert.ok(written > 0);
    assert.equal(total(rowsOf(target)), 0, "the server rolled the copy back");
    const r = cli(["copy", source, PG_URL, "--batch-size", "1000", "--json"], env);
    assert.equal(r.status, EXIT.OK, r.stderr);
    assert.deepEqual(r.json().counts, sourceRows);
    assert.deepEqual(rowsOf(target), sourceRows);
  });
});
