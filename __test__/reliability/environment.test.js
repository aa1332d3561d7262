"use strict";
// Suite 7 of issue 3: a broken environment. An unwritable folder or file (a child running
// as uid/gid 65534), a path that is a directory or under a file or in /proc, a garbage or
// truncated file, a file another process holds an exclusive lock on for longer than the
// busy timeout, a full disk (RLIMIT_FSIZE set on a child with prlimit): each gives an Error
// with a stable code, no crash, no partial row, and the same store works again once the
// cause is gone.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const { fork, spawn, execFileSync } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const readline = require("node:readline");
const { PKG, tempDir, integrityCheck, py, expectCode } = require("./helpers/common");
process.env.TOKEN_STORAGE_LOG = "silent";
const { TokenStorage } = require(PKG);

const { readableCopy } = require("../helpers/setup");

const ENV_CHILD = path.join(__dirname, "children", "env-child.js");
const NOBODY = 65534;

/** Starts env-child.js (as `uid`, or under bash with SIGXFSZ ignored); `call(op)` resolves its answer. */
async function startChild({ uid, ignoreXfsz = false, tmpfs } = {}) {
  const options = { stdio: ["ignore", "inherit", "pipe", "ipc"], env: { ...process.env } };
  const node = `exec "${process.execPath}" "${ENV_CHILD}"`;
  const child = tmpfs
    ? // A mount namespace of its own with a small tmpfs: gone when the child ends.
      spawn("unshare", ["-m", "--propagation", "private", "bash", "-c", `mount -t tmpfs -o size=${tmpfs.size} tmpfs "${tmpfs.dir}" && ${node}`], options)
    : ignoreXfsz
      ? spawn("bash", ["-c", `trap '' XFSZ; ${node}`], options)
      : uid === undefined
        ? fork(ENV_CHILD, [], options)
        : // Another user may not be able to enter the checkout: it runs from a readable copy.
          fork(path.join(readableCopy(), "__test__", "reliability", "children", "env-child.js"), [], { ...options, cwd: readableCopy(), uid, gid: uid });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
  const pending = new Map();
  let next = 1;
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => {
    for (const p of pending.values()) p.reject(new Error(`env child ended (${code ?? signal}): ${stderr}`));
    resolve({ code, signal });
  }));
  child.on("message", (m) => {
    const p = pending.get(m.id);
    pending.delete(m.id);
    p?.resolve(m);
  });
  const call = (msg, id = next++) => new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    if (id !== 0) child.send({ id, ...msg });
  });
  const hello = await call({}, 0);
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000); // hang detector
  return {
    pid: hello.pid,
    uid: hello.uid,
    call,
    async stop() {
      if (child.connected) child.disconnect();
      const r = await exited;
      clearTimeout(timer);
      assert.equal(r.signal, null, `env child was killed by ${r.signal}: ${stderr}`);
      assert.equal(r.code, 0, stderr);
    },
  };
}

const assertError = (answer, code) => {
  assert.equal(answer.ok, false, `expected ${code}, the call succeeded`);
  assert.equal(answer.error.name, "TokenStorageError");
  assert.equal(answer.error.code, code, answer.error.message);
};

const rows = (dbPath, token) =>
  py(
    "import sqlite3,sys,json\nc=sqlite3.connect(sys.argv[1])\n" +
      "print(json.dumps([c.execute('SELECT COUNT(*) FROM access_tokens WHERE token=?',(sys.argv[2],)).fetchone()[0], c.execute('SELECT COUNT(*) FROM refresh_tokens WHERE access_token=?',(sys.argv[2],)).fetchone()[0]]))",
    dbPath,
    token,
  );

test("unwritable folder (uid 65534): ERR_TOKEN_STORAGE_OPEN, then works once the folder is writable", async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  fs.chmodSync(dir, 0o755);
  const folder = path.join(dir, "locked");
  fs.mkdirSync(folder, { mode: 0o755 });
  const dbPath = path.join(folder, "sub", "tokens.db");
  const child = await startChild({ uid: NOBODY });
  try {
    assert.equal(child.uid, NOBODY);
    await child.call({ op: "open", path: dbPath });
    const failed = await child.call({ op: "store", token: "t1" });
    assertError(failed, "ERR_TOKEN_STORAGE_OPEN");
    assert.match(failed.error.message, /permission denied/);
    assertError(await child.call({ op: "get", token: "t1" }), "ERR_TOKEN_STORAGE_OPEN");
    assert.equal(fs.existsSync(path.join(folder, "sub")), false, "nothing was created");

    fs.chmodSync(folder, 0o777); // the cause is gone
    assert.equal((await child.call({ op: "store", token: "t1" })).ok, true);
    const got = await child.call({ op: "get", token: "t1" });
    assert.deepEqual([got.ok, got.found, got.refresh], [true, true, "t1"]);
    const st = fs.statSync(dbPath);
    assert.equal(st.uid, NOBODY);
    assert.equal(st.mode & 0o777, 0o600, "the file is readable by its owner only");
  } finally {
    await child.stop();
  }
  assert.equal(integrityCheck(dbPath), "ok");
});

test("read-only database file (uid 65534): ERR_TOKEN_STORAGE_READONLY or _OPEN, nothing written, then works", async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  fs.chmodSync(dir, 0o755);
  const cases = { "owner-only": 0o600, "read-only": 0o644, "writable file, read-only folder": 0o666 };
  const expected = { "owner-only": "ERR_TOKEN_STORAGE_OPEN", "read-only": "ERR_TOKEN_STORAGE_READONLY", "writable file, read-only folder": "ERR_TOKEN_STORAGE_READONLY" };
  const child = await startChild({ uid: NOBODY });
  try {
    for (const [name, mode] of Object.entries(cases)) {
      const folder = path.join(dir, name.replace(/\W+/g, "-"));
      fs.mkdirSync(folder, { mode: 0o755 });
      const dbPath = path.join(folder, "tokens.db");
      const root = new TokenStorage({ storage: "db", path: dbPath });
      root.storeAccessToken("existing", null, "key", "user", "client", [], null);
      root.close();
      fs.chmodSync(dbPath, mode);
      const before = fs.readFileSync(dbPath);

      await child.call({ op: "open", path: dbPath });
      assertError(await child.call({ op: "store", token: "new" }), expected[name]);
      assertError(await child.call({ op: "get", token: "existing" }), expected[name]);
      assert.ok(before.equals(fs.readFileSync(dbPath)), `${name}: the file is unchanged`);

      fs.chownSync(dbPath, NOBODY, NOBODY); // the cause is gone
      fs.chmodSync(folder, 0o777);
      assert.equal((await child.call({ op: "store", token: "new" })).ok, true, name);
      const got = await child.call({ op: "get", token: "existing" });
      assert.deepEqual([got.ok, got.found], [true, true], name);
    }
  } finally {
    await child.stop();
  }
});

test("path that is a directory, under a file, or in /proc: ERR_TOKEN_STORAGE_OPEN, then works", (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const asDir = path.join(dir, "tokens.db");
  fs.mkdirSync(asDir);
  const a = new TokenStorage({ storage: "db", path: asDir });
  assert.match(expectCode(assert, () => a.storeAccessToken("t", null, "k", "u", "c"), "ERR_TOKEN_STORAGE_OPEN").message, /directory/);
  expectCode(assert, () => a.getAccessToken("t"), "ERR_TOKEN_STORAGE_OPEN");
  fs.rmdirSync(asDir);
  a.storeAccessToken("t", null, "k", "u", "c");
  assert.equal(a.getAccessToken("t").apiKey, "k");
  a.close();

  const blocker = path.join(dir, "not-a-folder");
  fs.writeFileSync(blocker, "x");
  const b = new TokenStorage({ storage: "db", path: path.join(blocker, "tokens.db") });
  expectCode(assert, () => b.storeAccessToken("t", null, "k", "u", "c"), "ERR_TOKEN_STORAGE_OPEN");
  assert.equal(fs.readFileSync(blocker, "utf8"), "x");
  fs.rmSync(blocker);
  b.storeAccessToken("t", null, "k", "u", "c");
  assert.equal(b.getAccessToken("t").apiKey, "k");
  b.close();

  for (const p of ["/proc/nts-no-such-folder/tokens.db", "/proc/self/status", "/proc/version"]) {
    const c = new TokenStorage({ storage: "db", path: p });
    expectCode(assert, () => c.getAccessToken("t"), "ERR_TOKEN_STORAGE_OPEN");
  }
});

test("garbage file: ERR_TOKEN_STORAGE_NOT_A_DATABASE, the file is left alone, then works once it is moved away", (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const dbPath = path.join(dir, "tokens.db");
  for (const garbage of [crypto.randomBytes(16384), Buffer.from("SQLite format 3\0".padEnd(4096, "\u0001")), Buffer.from("not a database\n")]) {
    fs.writeFileSync(dbPath, garbage);
    const s = new TokenStorage({ storage: "db", path: dbPath });
    expectCode(assert, () => s.getAccessToken("t"), "ERR_TOKEN_STORAGE_NOT_A_DATABASE");
    expectCode(assert, () => s.storeAccessToken("t", null, "k", "u", "c"), "ERR_TOKEN_STORAGE_NOT_A_DATABASE");
    expectCode(assert, () => s.consumeAuthorizationCode("c"), "ERR_TOKEN_STORAGE_NOT_A_DATABASE");
    expectCode(assert, () => s.getStats(), "ERR_TOKEN_STORAGE_NOT_A_DATABASE");
    assert.ok(fs.readFileSync(dbPath).equals(garbage), "the garbage file was not written to");
    fs.renameSync(dbPath, `${dbPath}.bad`); // the cause is gone
    s.storeAccessToken("t", null, "k", "u", "c");
    assert.equal(s.getAccessToken("t").apiKey, "k");
    s.close();
    assert.equal(integrityCheck(dbPath), "ok");
    for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f));
  }
});

test("truncated file: ERR_TOKEN_STORAGE_NOT_A_DATABASE, nothing written, then works once the backup is restored", (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const dbPath = path.join(dir, "tokens.db");
  const backup = path.join(dir, "backup.db");
  const s0 = new TokenStorage({ storage: "db", path: dbPath });
  for (let i = 0; i < 1500; i++) s0.storeAccessToken(`t${i}`, `r${i}`, "k".repeat(200), `u${i % 40}`, "client", ["read"], null);
  s0.close();
  fs.copyFileSync(dbPath, backup);
  const size = fs.statSync(dbPath).size;
  for (const cut of [Math.floor(size / 2), 4096 * 3, 100]) {
    fs.truncateSync(dbPath, cut);
    const s = new TokenStorage({ storage: "db", path: dbPath });
    for (const [name, call] of Object.entries({
      getAccessToken: () => s.getAccessToken("t1"),
      storeAccessToken: () => s.storeAccessToken("new", "new-r", "k", "u", "c"),
      consumeAuthorizationCode: () => s.consumeAuthorizationCode("code"),
      deleteUserTokens: () => s.deleteUserTokens("u3"),
      cleanupExpiredTokens: () => s.cleanupExpiredTokens(),
      getStats: () => s.getStats(),
    })) {
      const err = expectCode(assert, call, "ERR_TOKEN_STORAGE_NOT_A_DATABASE");
      assert.ok(err.message.includes(dbPath), `${name}: the message names the file`);
    }
    assert.equal(fs.statSync(dbPath).size, cut, `cut at ${cut}: the damaged file was not written to`);
    fs.copyFileSync(backup, dbPath); // the cause is gone
    assert.equal(s.getAccessToken("t1499").userId, "u19");
    assert.equal(s.getStats().totalTokens, 1500);
    assert.equal(s.getAccessToken("new"), null, "no partial row of the failed store");
    s.close();
    assert.equal(integrityCheck(dbPath), "ok");
  }
});

/** python3 holding a lock on the file until told to let go; resolves once it holds it. */
async function holdLock(dbPath, mode) {
  const code =
    "import sqlite3,sys\n" +
    "c=sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)\n" +
    "if sys.argv[2]=='exclusive-mode': c.execute('PRAGMA locking_mode=EXCLUSIVE')\n" +
    "c.execute('BEGIN EXCLUSIVE')\n" +
    // A write of its own inside the lock, rolled back later: nobody may ever see it.
    "c.execute(\"INSERT INTO access_tokens (token, api_key, user_id, client_id, scopes, created_at) VALUES ('partial','k','u','c','[]',0)\")\n" +
    "print('locked', flush=True)\n" +
    "sys.stdin.readline()\n" +
    "c.execute('ROLLBACK')\n" +
    "c.close()\n" +
    "print('released', flush=True)\n";
  const child = spawn("python3", ["-c", code, dbPath, mode], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000); // hang detector
  assert.equal((await lines.next()).value, "locked");
  return {
    async release() {
      child.stdin.write("\n");
      assert.equal((await lines.next()).value, "released");
      assert.equal(await exited, 0);
      clearTimeout(timer);
    },
  };
}

for (const mode of ["write-lock", "exclusive-mode"]) {
  test(`another process holds the file locked (${mode}) longer than the busy timeout: ERR_TOKEN_STORAGE_BUSY, then works`, async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const dbPath = path.join(dir, "tokens.db");
    const s = new TokenStorage({ storage: "db", path: dbPath, busyTimeout: 200 });
    s.storeAccessToken("kept", "kept-r", "key", "user", "client", ["read"], null);
    s.storeAuthorizationCode("code", "user", "key", "client", "http://127.0.0.1/cb", null, null, [], 600);
    // In exclusive locking mode the other process must be the only connection.
    if (mode === "exclusive-mode") s.close();
    const lock = await holdLock(dbPath, mode);
    try {
      for (const call of [
        () => s.storeAccessToken("new", "new-r", "key", "user", "client", [], null),
        () => s.consumeAuthorizationCode("code"),
        () => s.deleteToken("kept"),
        () => s.revokeRefreshToken("kept-r"),
        () => s.deleteUserTokens("user"),
        () => s.cleanupExpiredTokens(),
      ]) {
        expectCode(assert, call, "ERR_TOKEN_STORAGE_BUSY");
      }
      if (mode === "write-lock") {
        // WAL: readers go on while a writer holds the lock, and see no uncommitted row.
        assert.equal(s.getAccessToken("kept").apiKey, "key");
        assert.equal(s.getAccessToken("partial"), null);
      } else {
        expectCode(assert, () => s.getAccessToken("kept"), "ERR_TOKEN_STORAGE_BUSY");
      }
    } finally {
      await lock.release(); // the cause is gone
    }
    assert.equal(s.getAccessToken("partial"), null, "the other process's rolled-back row");
    assert.equal(s.getAccessToken("new"), null, "no partial row of the failed store");
    assert.equal(s.getAccessToken("kept").refreshToken, "kept-r", "the failed deletes removed nothing");
    assert.equal(s.consumeAuthorizationCode("code").clientId, "client", "the failed consume did not use the code up");
    s.storeAccessToken("new", "new-r", "key", "user", "client", [], null);
    assert.equal(s.getRefreshToken("new-r").accessToken, "new");
    assert.deepEqual(s.getStats(), { totalTokens: 2, uniqueUsers: 1, storage: "sqlite" });
    s.close();
    assert.equal(integrityCheck(dbPath), "ok");
  });
}

test("disk full (RLIMIT_FSIZE via prlimit on the child): ERR_TOKEN_STORAGE_FULL, no partial row, then works", async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const dbPath = path.join(dir, "tokens.db");
  const child = await startChild({ ignoreXfsz: true });
  let stored;
  try {
    await child.call({ op: "open", path: dbPath });
    for (let i = 0; i < 3; i++) assert.equal((await child.call({ op: "store", token: `small-${i}` })).ok, true);
    execFileSync("prlimit", ["--pid", String(child.pid), "--fsize=2097152:"]);
    const fill = await child.call({ op: "fill", prefix: "big", size: 100_000 });
    assert.equal(fill.ok, true);
    assert.notEqual(fill.failed, null, "the file size limit was reached");
    assert.equal(fill.failure.name, "TokenStorageError");
    assert.equal(fill.failure.code, "ERR_TOKEN_STORAGE_FULL", fill.failure.message);
    assert.ok(fill.stored.length > 0);
    // No partial row: neither the access token nor its refresh token of the failed call.
    const failed = await child.call({ op: "get", token: fill.failed });
    assert.deepEqual([failed.ok, failed.found, failed.refresh], [true, false, null]);
    assert.deepEqual(rows(dbPath, fill.failed), [0, 0]);
    for (const token of [fill.stored[0], fill.stored[fill.stored.length - 1]]) {
      const got = await child.call({ op: "get", token });
      assert.deepEqual([got.found, got.apiKeyLength, got.refresh], [true, 100_001 + token.length, token]);
    }

    execFileSync("prlimit", ["--pid", String(child.pid), "--fsize=unlimited:"]); // the cause is gone
    assert.equal((await child.call({ op: "store", token: fill.failed, size: 100_000 })).ok, true);
    const more = await child.call({ op: "fill", prefix: "after", size: 100_000, max: 30 });
    assert.equal(more.failed, null, JSON.stringify(more.failure));
    stored = 3 + fill.stored.length + 1 + 30;
    assert.equal((await child.call({ op: "stats" })).totalTokens, stored);
  } finally {
    await child.stop();
  }
  assert.equal(integrityCheck(dbPath), "ok");
  assert.deepEqual(rows(dbPath, "after-29"), [1, 1]);
});

test("during another process's write lock, a read of an expired token returns null (it needs no write to answer)", async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const dbPath = path.join(dir, "tokens.db");
  const s = new TokenStorage({ storage: "db", path: dbPath, busyTimeout: 200 });
  s.storeAccessToken("live", null, "key", "user", "client", [], null);
  s.storeAccessToken("expired", "expired-r", "key", "user", "client", [], Date.now() - 60_000);
  const lock = await holdLock(dbPath, "write-lock");
  let outcome;
  try {
    assert.equal(s.getAccessToken("live").apiKey, "key", "a live token reads during the lock");
    assert.equal(s.getRefreshToken("expired-r"), null, "so does the refresh token of an expired one");
    try {
      outcome = s.getAccessToken("expired");
    } catch (err) {
      outcome = err;
    }
  } finally {
    await lock.release();
  }
  assert.equal(outcome, null, `getAccessToken(expired token) during the lock: ${outcome?.code ?? ""} ${outcome?.message ?? outcome}`);
  assert.equal(s.getAccessToken("expired"), null);
  s.close();
});

test("disk full at the first open of a fresh file (the -shm file cannot grow): ERR_TOKEN_STORAGE_FULL, then works", async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const dbPath = path.join(dir, "fresh.db");
  const child = await startChild({ ignoreXfsz: true });
  const codes = {};
  try {
    // 8 KiB: room for the empty database file, not for the 32 KiB shared-memory index.
    execFileSync("prlimit", ["--pid", String(child.pid), "--fsize=8192:"]);
    await child.call({ op: "open", path: dbPath });
    const failed = await child.call({ op: "store", token: "t1" });
    codes.failed = failed.error?.code;
    execFileSync("prlimit", ["--pid", String(child.pid), "--fsize=unlimited:"]); // the cause is gone
    const retried = await child.call({ op: "store", token: "t1" });
    const got = await child.call({ op: "get", token: "t1" });
    assert.deepEqual([retried.ok, got.found], [true, true], JSON.stringify(retried.error));
    assertError(failed, "ERR_TOKEN_STORAGE_FULL");
  } finally {
    await child.stop();
  }
  assert.equal(integrityCheck(dbPath), "ok");
});

/** Runs a command in the mount namespace of process `pid`. */
const inNamespace = (pid, cmd, ...argv) => execFileSync("nsenter", ["-t", String(pid), "-m", cmd, ...argv], { encoding: "utf8" });

for (const size of ["512k", "16k"]) {
  test(`disk full (a ${size} tmpfs, ENOSPC): ERR_TOKEN_STORAGE_FULL, no partial row, then works after it grows`, async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const dbPath = path.join(dir, "tokens.db");
    const child = await startChild({ tmpfs: { dir, size } });
    try {
      await child.call({ op: "open", path: dbPath });
      const fill = await child.call({ op: "fill", prefix: "big", size: 20_000 });
      assert.equal(fill.ok, true);
      assert.notEqual(fill.failed, null, "the tmpfs filled up");
      assert.equal(fill.failure.code, "ERR_TOKEN_STORAGE_FULL", fill.failure.message);
      const failed = await child.call({ op: "get", token: fill.failed });
      if (fill.stored.length > 0) {
        assert.deepEqual([failed.ok, failed.found, failed.refresh], [true, false, null], "no partial row");
        const last = await child.call({ op: "get", token: fill.stored[fill.stored.length - 1] });
        assert.equal(last.found, true);
      }
      inNamespace(child.pid, "mount", "-o", "remount,size=8m", dir); // the cause is gone
      assert.equal((await child.call({ op: "store", token: fill.failed, size: 20_000 })).ok, true);
      const more = await child.call({ op: "fill", prefix: "after", size: 20_000, max: 50 });
      assert.equal(more.failed, null, JSON.stringify(more.failure));
      assert.equal((await child.call({ op: "stats" })).totalTokens, fill.stored.length + 1 + 50);
      const check = inNamespace(child.pid, "python3", "-c", "import sqlite3,sys;print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])", dbPath);
      assert.equal(check.trim(), "ok");
      t.diagnostic(`${size} tmpfs: ${fill.stored.length} tokens of 20 KB fit before ${fill.failure.code}`);
    } finally {
      await child.stop();
    }
  });
}
