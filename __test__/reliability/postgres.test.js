"use strict";
// The PostgreSQL store under the failures a network database has: several processes
// racing for the same codes, a client SIGKILLed mid-write, the server stopped and started
// under a running process. The first two use the test server (TOKEN_TEST_DATABASE_URL);
// the last starts a cluster of its own, since it stops it.
const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const net = require("node:net");
const { spawn } = require("node:child_process");

const { PKG, PG_URL, TokenStorage, freshSchema, cleanEnv, runNodeAsync } = require("../helpers/setup");
const { startCluster, findBinaries } = require("../../scripts/postgres");

const skip = PG_URL ? false : "no PostgreSQL server (set TOKEN_TEST_DATABASE_URL, or run npm test)";

/** Runs `code` in a child node (PKG defined) with `env` and logging off; resolves with its output. */
const child = (code, env) => runNodeAsync(code, { env: { TOKEN_STORAGE_LOG: "silent", ...env } });

describe("PostgreSQL: several processes", { skip }, () => {
  it("4 processes race to consume the same 300 codes: each code is consumed exactly once", async () => {
    const schema = freshSchema();
    const s = new TokenStorage({ storage: "postgres", url: PG_URL, schema });
    const codes = Array.from({ length: 300 }, (_, i) => `race-code-${i}`);
    for (const c of codes) s.storeAuthorizationCode(c, "u", "sk-key", "client", "https://app.example/cb", null, null, ["mcp"], 600);
    const racer = `
      const { TokenStorage } = require(PKG);
      const s = new TokenStorage({ storage: "postgres", url: process.env.URL, schema: process.env.SCHEMA });
      const won = [];
      for (let i = 0; i < 300; i++) if (s.consumeAuthorizationCode("race-code-" + i) !== null) won.push(i);
      s.close();
      console.log(JSON.stringify(won));`;
    const runs = await Promise.all(Array.from({ length: 4 }, () => child(racer, { URL: PG_URL, SCHEMA: schema })));
    const won = runs.flatMap((r) => {
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout);
    });
    assert.equal(won.length, codes.length, "every code consumed once in all");
    assert.equal(new Set(won).size, codes.length, "no code consumed twice");
    s.close();
  });

  it("a client SIGKILLed while writing leaves whole tokens and right counts; the others go on", async () => {
    const schema = freshSchema();
    const s = new TokenStorage({ storage: "postgres", url: PG_URL, schema });
    s.open();
    const writer = `
      const { TokenStorage } = require(PKG);
      const s = new TokenStorage({ storage: "postgres", url: process.env.URL, schema: process.env.SCHEMA });
      for (let i = 0; ; i++) {
        s.storeAccessTokens(Array.from({ length: 20 }, (_, j) => ({
          accessToken: "kill-" + i + "-" + j, refreshToken: "kill-r-" + i + "-" + j,
          apiKey: "sk", userId: "user-" + (j % 5), clientId: "c" })));
        if (i === 5) console.log("writing");
      }`;
    const p = spawn(process.execPath, ["-e", `const PKG = ${JSON.stringify(PKG)};\n${writer}`], {
      env: cleanEnv({ TOKEN_STORAGE_LOG: "silent", URL: PG_URL, SCHEMA: schema }),
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise((resolve) => p.stdout.once("data", resolve));
    await new Promise((resolve) => setTimeout(resolve, 300));
    p.kill("SIGKILL");
    await new Promise((resolve) => p.on("exit", resolve));
    // The server may still commit the batch the child had sent when it was killed (it only
    // sees the dead connection when it answers): wait until the counts stop moving.
    let stats = s.getStats();
    for (let tries = 0; tries < 20; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      const again = s.getStats();
      if (again.totalTokens === stats.totalTokens) break;
      stats = again;
    }
    // Batches are all or nothing: a whole number of them, each readable with its refresh token.
    const { totalTokens, uniqueUsers } = stats;
    assert.equal(totalTokens % 20, 0, `${totalTokens} tokens: a batch was half written`);
    assert.equal(uniqueUsers, 5);
    for (let i = 0; i < totalTokens / 20; i++) {
      for (let j = 0; j < 20; j++) {
        assert.equal(s.getAccessToken(`kill-${i}-${j}`)?.refreshToken, `kill-r-${i}-${j}`);
      }
    }
    assert.equal(s.getAccessToken(`kill-${totalTokens / 20}-0`), null);
    s.storeAccessToken("after", null, "sk", "u", "c", [], null);
    assert.notEqual(s.getAccessToken("after"), null);
    s.close();
  });
});

const noBinaries = findBinaries() ? false : "no PostgreSQL binaries to start a server of this test's own";

describe("PostgreSQL: the server stopped and started under a running process", { skip: skip || (process.env.CI ? false : noBinaries) }, () => {
  let cluster;
  before(() => {
    cluster = startCluster();
  });
  after(() => cluster?.stop());

  it("calls fail with ERR_TOKEN_STORAGE_UNAVAILABLE while it is down, then work again without a new process", () => {
    const s = new TokenStorage({ storage: "postgres", url: cluster.url, connectTimeout: 1000, queryTimeout: 2000 });
    s.storeAccessToken("before-restart", "before-r", "sk-key", "u", "c", ["a"], null);
    cluster.stopServer();
    for (const call of [() => s.getAccessToken("before-restart"), () => s.storeAccessToken("x", null, "k", "u", "c", [], null), () => s.consumeAuthorizationCode("c")]) {
      const t0 = Date.now();
      assert.throws(call, (e) => e.code === "ERR_TOKEN_STORAGE_UNAVAILABLE" && e.name === "TokenStorageError" && !e.message.includes("sk-key"));
      assert.ok(Date.now() - t0 < 2500, "never a hang: within the timeouts");
    }
    cluster.startServer();
    assert.equal(s.getAccessToken("before-restart").apiKey, "sk-key");
    assert.equal(s.getRefreshToken("before-r").accessToken, "before-restart");
    s.storeAccessToken("after-restart", null, "sk", "u2", "c", [], null);
    assert.deepEqual(s.getStats(), { ...s.getStats(), totalTokens: 2, uniqueUsers: 2 });
    s.close();
  });
});

describe("PostgreSQL: TLS, each sslmode against a server that accepts only TLS on TCP", { skip: process.env.CI ? false : noBinaries }, () => {
  let cluster;
  let taken;
  before(async () => {
    // Its first port already taken (as by another process's server or connection): the
    // throwaway server starts on another one.
    taken = net.createServer();
    await new Promise((resolve) => taken.listen(0, "127.0.0.1", resolve));
    cluster = startCluster({ tls: true, firstPort: taken.address().port });
  });
  after(() => {
    cluster?.stop();
    taken?.close();
  });

  it("starts on another port when its first is taken", () => {
    assert.notEqual(cluster.port, taken.address().port);
    assert.equal(attempt("127.0.0.1", "sslmode=require"), "ok");
  });

  /** The code of the error a store on this URL throws, or "ok". */
  const attempt = (host, query) => {
    const s = new TokenStorage({ storage: "postgres", url: `postgres://postgres:hunter2@${host}:${cluster.port}/postgres?${query}`, connectTimeout: 3000 });
    try {
      s.storeAccessToken("tls-token", null, "sk", "u", "c", [], null);
      return s.getAccessToken("tls-token") ? "ok" : "lost";
    } catch (e) {
      assert.ok(!e.message.includes("hunter2"), e.message);
      return `${e.code}: ${e.message}`;
    } finally {
      s.close();
    }
  };

  it("disable is refused by the server; prefer and require encrypt without checking the certificate", () => {
    assert.match(attempt("localhost", "sslmode=disable"), /^ERR_TOKEN_STORAGE_OPEN: .*refused the login/);
    assert.equal(attempt("localhost", "sslmode=prefer"), "ok");
    assert.equal(attempt("localhost", "sslmode=require"), "ok");
  });

  it("verify-full checks the CA and the host name; verify-ca only the CA", () => {
    const ca = `sslrootcert=${encodeURIComponent(cluster.ca)}`;
    assert.equal(attempt("localhost", `sslmode=verify-full&${ca}`), "ok");
    assert.equal(attempt("localhost", `sslmode=verify-ca&${ca}`), "ok");
    assert.match(attempt("127.0.0.1", `sslmode=verify-full&${ca}`), /^ERR_TOKEN_STORAGE_OPEN: .*not valid for name/);
    assert.equal(attempt("127.0.0.1", `sslmode=verify-ca&${ca}`), "ok");
    // The system's CAs do not include the test CA.
    assert.match(attempt("localhost", "sslmode=verify-full"), /^ERR_TOKEN_STORAGE_OPEN: .*UnknownIssuer/);
    assert.match(attempt("localhost", "sslmode=verify-ca"), /^ERR_TOKEN_STORAGE_OPEN: .*UnknownIssuer/);
  });
});

describe("PostgreSQL: configuration", () => {
  const run = (env) =>
    child(`try { const t = require(PKG); t.getStats(); console.log("ok"); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`, env);

  it("TOKEN_STORAGE=postgres with neither URL set fails at require, naming both variables", async () => {
    for (const value of ["postgres", "PG", "postgresql"]) {
      const r = await run({ TOKEN_STORAGE: value });
      const out = JSON.parse(r.stdout);
      assert.equal(out.code, "ERR_TOKEN_STORAGE_CONFIG");
      assert.match(out.message, /TOKEN_DATABASE_URL/);
      assert.match(out.message, /DATABASE_URL/);
    }
  });

  it("a bad URL fails at require, an unreachable one at the first call, with a coded error that never shows its password", async () => {
    const cases = [
      ["postgres://app:hunter2@127.0.0.1:1/tokens?sslmode=disable", "ERR_TOKEN_STORAGE_UNAVAILABLE", /127\.0\.0\.1:1\/tokens/],
      ["postgres://app:hunter2@db.example/tokens?sslmode=sometimes", "ERR_TOKEN_STORAGE_CONFIG", /TOKEN_DATABASE_URL: sslmode/],
      ["host=db.example password=hunter2", "ERR_TOKEN_STORAGE_CONFIG", /names no user/],
      ["pgsql://app:hunter2@db.example/tokens", "ERR_TOKEN_STORAGE_CONFIG", /not a postgres:\/\/ or postgresql:\/\/ URL/],
      ["app:hunter2@db.example/tokens", "ERR_TOKEN_STORAGE_CONFIG", /key-value pair 1 is malformed/],
      ["host=db.example user=app password=hun ter2", "ERR_TOKEN_STORAGE_CONFIG", /key-value pair 4 is malformed/],
    ];
    for (const [url, code, says] of cases) {
      const r = await run({ TOKEN_STORAGE: "postgres", TOKEN_DATABASE_URL: url, DATABASE_URL: "postgres://other:x@h/d" });
      const out = JSON.parse(r.stdout);
      assert.equal(out.code, code, out.message);
      assert.match(out.message, says);
      assert.ok(!r.stdout.includes("hunter2") && !r.stderr.includes("hunter2"), r.stdout + r.stderr);
    }
  });

  it("DATABASE_URL is used when TOKEN_DATABASE_URL is unset; the open log line names host and database only", { skip }, async () => {
    const r = await child(
      `const t = require(PKG); t.storeAccessToken("a", null, "k", "u", "c", [], null); console.log(JSON.stringify(t.getStats())); t.closeDB();`,
      { TOKEN_STORAGE: "postgres", DATABASE_URL: PG_URL, TOKEN_DB_SCHEMA: freshSchema(), TOKEN_STORAGE_LOG: "info" },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).totalTokens, 1);
    const line = JSON.parse(r.stderr.split("\n").find((l) => l.includes("token store opened")));
    assert.equal(line.storage, "postgres");
    assert.match(line.database, /\/postgres$/);
  });
});


