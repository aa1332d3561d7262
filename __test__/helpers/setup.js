"use strict";
// Shared helpers for the JS suites: fresh stores on fresh temp files, child processes
// with a clean environment, and python3's sqlite3 for reading and writing files directly.
const { spawn, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { beforeEach, afterEach } = require("node:test");

/** The package folder (what `require("native-token-storage")` resolves to). */
const PKG = path.resolve(__dirname, "..", "..");
// In-process stores log "opened" per test; the log tests check the lines in children.
process.env.TOKEN_STORAGE_LOG ??= "silent";
const { TokenStorage } = require(PKG);

/**
 * The PostgreSQL server of the tests (`npm test` starts a throwaway one), or null: the
 * PostgreSQL suites are then skipped, said once (in CI that is a failure instead).
 */
const PG_URL = process.env.TOKEN_TEST_DATABASE_URL?.trim() || null;
if (PG_URL === null && process.env.CI) {
  throw new Error("CI runs the PostgreSQL suites: TOKEN_TEST_DATABASE_URL is not set (npm test sets it)");
}

/** The Redis server of the tests (`npm test` starts a throwaway one), or null: skipped. */
const REDIS_URL = process.env.TOKEN_TEST_REDIS_URL?.trim() || null;
if (REDIS_URL === null && process.env.CI) {
  throw new Error("CI runs the Redis suites: TOKEN_TEST_REDIS_URL is not set (npm test sets it)");
}

/** The stores every behaviour test runs on (`storage` option values). */
const KINDS = ["memory", "db", ...(PG_URL ? ["postgres"] : []), ...(REDIS_URL ? ["redis"] : [])];

let schemas = 0;

/** A schema name no other test (in this or another process) uses. */
function freshSchema() {
  schemas += 1;
  return `nts_js_${process.pid}_${schemas}_${Date.now() % 1e6}`;
}

/** The options of a new, empty store of `kind` (`path` for SQLite). */
function storeOptions(kind, path) {
  // Some tests store 100,000 tokens in one call: more than the default query timeout.
  if (kind === "postgres") return { storage: "postgres", url: PG_URL, schema: freshSchema(), queryTimeout: 60_000 };
  if (kind === "redis") return { storage: "redis", url: REDIS_URL, prefix: `${freshSchema()}:`, queryTimeout: 60_000 };
  return { storage: kind, path };
}

/** A new temp folder; the caller removes it with `removeDir`. */
function tempDir(prefix = "nts-test-") {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

function removeDir(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * Inside a describe: a fresh store of `kind` on a fresh temp file before each test,
 * closed and removed after it. Returns a context whose `store`, `dir` and `file` are
 * the current test's.
 */
function freshStore(kind) {
  const ctx = { store: null, dir: null, file: null, reopen: null };
  beforeEach(() => {
    ctx.dir = tempDir();
    ctx.file = path.join(ctx.dir, "tokens.db");
    const options = storeOptions(kind, ctx.file);
    ctx.reopen = () => new TokenStorage(options);
    ctx.store = ctx.reopen();
  });
  afterEach(() => {
    try {
      ctx.store.close();
    } finally {
      removeDir(ctx.dir);
    }
  });
  return ctx;
}

/**
 * Inside a test file or describe: a fresh temp folder before each test (`ctx.dir`), and
 * `ctx.open(options)`, a TokenStorage closed after the test, before the folder is removed.
 */
function storesPerTest() {
  const ctx = { dir: null, open: null };
  let stores = [];
  ctx.open = (options) => {
    const s = new TokenStorage(options);
    stores.push(s);
    return s;
  };
  beforeEach(() => {
    ctx.dir = tempDir();
    stores = [];
  });
  afterEach(() => {
    try {
      for (const s of stores) s.close();
    } finally {
      removeDir(ctx.dir);
    }
  });
  return ctx;
}

/** process.env without any variable this package reads, plus `extra`. */
function cleanEnv(extra = {}) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith("TOKEN_")) delete env[k];
  // node --test sets these in the children it runs; a child of a test is a plain script.
  delete env.NODE_TEST_CONTEXT;
  return { ...env, ...extra };
}

let copy = null;

/**
 * A copy of the package's runtime files and the test helpers and child programs that any
 * user can read, for children that run as another user (uid 65534): the checkout itself may
 * sit in a folder they cannot enter (a clone under a 0700 temp folder, or under /root). Made
 * once per process, removed at exit.
 */
function readableCopy() {
  if (copy !== null) return copy;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "nts-pkg-"));
  process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));
  const files = ["package.json", "index.js", "bin", "lib", "node_modules/acorn", "__test__/helpers", "__test__/reliability/helpers", "__test__/reliability/children"];
  for (const name of fs.readdirSync(PKG)) if (name.endsWith(".node")) files.push(name);
  for (const rel of files) fs.cpSync(path.join(PKG, rel), path.join(root, rel), { recursive: true });
  const open = (p) => {
    const st = fs.statSync(p);
    fs.chmodSync(p, st.isDirectory() ? 0o755 : 0o644);
    if (st.isDirectory()) for (const name of fs.readdirSync(p)) open(path.join(p, name));
  };
  open(root);
  copy = root;
  return copy;
}

/**
 * Runs `code` (CommonJS) in a new node process. `PKG` in the code is the package path (a
 * readable copy of it when the child runs as another `uid`). Returns { status, signal,
 * stdout, stderr }.
 */
function runNode(code, { env = {}, cwd, uid, gid, timeout = 20000 } = {}) {
  const pkg = uid === undefined ? PKG : readableCopy();
  cwd ??= pkg;
  const prelude = `const PKG = ${JSON.stringify(pkg)};\n`;
  const r = spawnSync(process.execPath, ["-e", prelude + code], {
    env: cleanEnv(env),
    cwd,
    uid,
    gid,
    timeout,
    encoding: "utf8",
  });
  if (r.error) throw r.error;
  return r;
}

/**
 * `runNode` without blocking, for children that must run at the same time: resolves
 * `{ status, signal, stdout, stderr }`.
 */
function runNodeAsync(code, { env = {}, cwd = PKG } = {}) {
  const prelude = `const PKG = ${JSON.stringify(PKG)};\n`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", prelude + code], { env: cleanEnv(env), cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

/** Runs a node child that prints one JSON value on stdout; returns it parsed. */
function nodeJson(code, opts) {
  const r = runNode(code, opts);
  if (r.status !== 0) {
    throw new Error(`child exited ${r.status} ${r.signal ?? ""}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return JSON.parse(r.stdout);
}

/**
 * Runs a python3 script with `db` (a file path) and `args` (any JSON value) defined and
 * the sqlite3 and json modules imported; the script prints one JSON value. Returns it.
 */
function python(script, db, args = null) {
  const prelude = "import sqlite3, json, sys\ndb = sys.argv[1]\nargs = json.loads(sys.argv[2])\n";
  const r = spawnSync("python3", ["-c", prelude + script, db, JSON.stringify(args)], {
    encoding: "utf8",
    timeout: 20000,
  });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`python3 failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/**
 * `processes` children (PKG defined), each making a store on `options` and, from the same
 * instant, running `body` (a function's source, called with the store and `i`) `calls`
 * times at once; resolves with their results, flattened (a race across processes).
 */
async function race(options, body, { processes = 2, calls = 10 } = {}) {
  const startAt = Date.now() + 1000;
  const code = `
    const { TokenStorage } = require(PKG);
    const s = new TokenStorage(${JSON.stringify(options)});
    s.open();
    (async () => {
      while (Date.now() < ${startAt}) {}
      const results = await Promise.all(Array.from({ length: ${calls} }, (_, i) => (${body})(s, i)));
      s.close();
      console.log(JSON.stringify(results));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const runs = await Promise.all(Array.from({ length: processes }, () => runNodeAsync(code, { env: { TOKEN_STORAGE_LOG: "error" } })));
  return runs.flatMap((r) => {
    if (r.status !== 0) throw new Error(`a racer failed (${r.status}): ${r.stderr}`);
    return JSON.parse(r.stdout);
  });
}

/** Asserts that `fn` throws an error of `Type` whose message names `fnName` and `arg`. */
function namesCall(err, Type, fnName, arg) {
  return err instanceof Type && err.message.includes(fnName) && err.message.includes(arg);
}

module.exports = { PKG, PG_URL, REDIS_URL, storeOptions, freshSchema, readableCopy, TokenStorage, KINDS, tempDir, removeDir, freshStore, storesPerTest, cleanEnv, runNode, runNodeAsync, nodeJson, python, namesCall, race };
