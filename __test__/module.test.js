"use strict";
// The module-level functions and their environment (TOKEN_STORAGE, TOKEN_DB_PATH,
// TOKEN_STORAGE_LOG), each in a child process: the default store is built once per process.
const { describe, it, beforeEach, afterEach } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { tempDir, removeDir, runNode, nodeJson } = require("./helpers/setup");

const SECRETS = {
  token: "at-SECRET-TOKEN-aaaaaaaaaaaaaaaa",
  refresh: "rt-SECRET-REFRESH-bbbbbbbbbbbbbbbb",
  apiKey: "sk-or-v1-SECRET-KEY-cccccccccccccccc",
  code: "code-SECRET-CODE-dddddddddddddddd",
  verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
  challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
};

let cwd;
beforeEach(() => {
  cwd = tempDir("nts-module-");
});
afterEach(() => removeDir(cwd));

/** A child script that uses every module-level function once with the secrets above. */
const FLOW = `
const t = require(PKG);
const S = ${JSON.stringify(SECRETS)};
t.storeAccessToken(S.token, S.refresh, S.apiKey, "user-1", "client-1", ["mcp"], Date.now() + 3600e3);
t.getAccessToken(S.token);
t.getRefreshToken(S.refresh);
t.storeAuthorizationCode(S.code, "user-1", S.apiKey, "client-1", "https://app.example/cb", S.challenge, "S256", ["mcp"]);
const consumed = t.consumeAuthorizationCode(S.code, S.verifier) !== null;
t.storeAccessToken(S.token + "-expired", S.refresh + "-expired", S.apiKey, "user-2", "client-1", [], Date.now() - 1000);
const removed = t.cleanupExpiredTokens();
t.revokeRefreshToken(S.refresh);
t.deleteToken(S.token);
t.deleteUserTokens("user-1");
const stats = t.getStats();
t.closeDB();
`;

describe("the exports", () => {
  it("are the ten synchronous functions, closeDB and TokenStorage, with the documented defaults", () => {
    const out = nodeJson(
      `
const t = require(PKG);
const names = ["storeAccessToken", "getAccessToken", "storeAuthorizationCode", "consumeAuthorizationCode", "getRefreshToken",
  "revokeRefreshToken", "deleteToken", "deleteUserTokens", "cleanupExpiredTokens", "getStats", "closeDB", "TokenStorage"];
const types = Object.fromEntries(names.map((n) => [n, typeof t[n]]));
const results = [
  t.storeAccessToken("a", "r", "k", "u", "c"),
  t.getAccessToken("a"),
  t.storeAuthorizationCode("code", "u", "k", "c", "https://x/cb", null, null, ["mcp"]),
  t.consumeAuthorizationCode("code"),
  t.getRefreshToken("r"),
  t.revokeRefreshToken("r"),
  t.deleteToken("a"),
  t.deleteUserTokens("u"),
  t.cleanupExpiredTokens(),
  t.getStats(),
  t.closeDB(),
];
const anyPromise = results.some((r) => r instanceof Promise);
t.storeAccessToken("d", null, "k", "u", "c");
const d = t.getAccessToken("d");
t.storeAuthorizationCode("code2", "u", "k", "c", "https://x/cb", null, null, []);
const c = t.consumeAuthorizationCode("code2");
let typeErr = null;
try { t.storeAccessToken("x", null, 42, "u", "c"); } catch (e) { typeErr = { name: e.constructor.name, message: e.message }; }
console.log(JSON.stringify({ types, anyPromise, results: results.map((r) => r === undefined ? "undefined" : r), d, codeTtl: c.expiresAt - c.createdAt, typeErr, left: t.getAccessToken("x") }));
`,
      { cwd },
    );
    for (const [name, type] of Object.entries(out.types)) assert.equal(type, "function", name);
    assert.equal(out.anyPromise, false);
    assert.equal(out.results[0], "undefined");
    assert.equal(out.results[1].apiKey, "k");
    assert.deepEqual(out.results[1].scopes, []);
    assert.equal(out.results[1].expiresAt, null);
    assert.equal(out.results[3].redirectUri, "https://x/cb");
    assert.equal(out.results[4].accessToken, "a");
    assert.equal(out.results[8], 0);
    assert.equal(out.results[9].totalTokens, 0);
    assert.equal(out.results[10], "undefined");
    assert.deepEqual(out.d.scopes, []);
    assert.equal(out.d.refreshToken, null);
    assert.equal(out.codeTtl, 600e3);
    assert.equal(out.typeErr.name, "TypeError");
    assert.match(out.typeErr.message, /storeAccessToken.*apiKey/);
    assert.equal(out.left, null);
  });
});

describe("TOKEN_STORAGE", () => {
  for (const value of [undefined, "", "memory", "MEMORY"]) {
    it(`${JSON.stringify(value)} gives the memory store (nothing written to disk)`, () => {
      const env = value === undefined ? {} : { TOKEN_STORAGE: value };
      const out = nodeJson(`${FLOW}\nconsole.log(JSON.stringify({ consumed, removed, stats }));`, { cwd, env: { ...env, TOKEN_STORAGE_LOG: "silent" } });
      assert.equal(out.consumed, true);
      assert.equal(out.removed, 1);
      assert.equal(out.stats.totalTokens, 0);
      assert.equal(out.stats.storage, "memory");
      assert.deepEqual(fs.readdirSync(cwd), []);
    });
  }

  it("an unknown value: require throws an Error naming it and the accepted ones (the server fails at start); never memory", () => {
    const r = runNode(`require(PKG); console.log("loaded");`, { cwd, env: { TOKEN_STORAGE: "mongodb", TOKEN_STORAGE_LOG: "silent" } });
    assert.notEqual(r.status, 0, "the package loaded with an unknown store");
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /ERR_TOKEN_STORAGE_CONFIG/);
    for (const word of ["TOKEN_STORAGE", "mongodb", "memory", "db", "sqlite", "redis"]) assert.ok(r.stderr.includes(word), r.stderr);
    assert.deepEqual(fs.readdirSync(cwd), []);
  });

  it("a value set after require (a late dotenv) is the one used at first use, and checked then", () => {
    const out = nodeJson(
      `const t = require(PKG);
       process.env.TOKEN_STORAGE = "db"; process.env.TOKEN_DB_PATH = "late.db";
       t.storeAccessToken("a", null, "k", "u", "c");
       console.log(JSON.stringify(t.getStats().storage));`,
      { cwd, env: { TOKEN_STORAGE_LOG: "silent" } },
    );
    assert.equal(out, "sqlite");
    assert.ok(fs.existsSync(path.join(cwd, "late.db")));
    const bad = nodeJson(
      `const t = require(PKG); process.env.TOKEN_STORAGE = "redis";
       try { t.getStats(); console.log("null"); } catch (e) { console.log(JSON.stringify(e.code)); }`,
      { cwd, env: { TOKEN_STORAGE_LOG: "silent" } },
    );
    assert.equal(bad, "ERR_TOKEN_STORAGE_CONFIG");
  });

  it("db without TOKEN_DB_PATH: data/tokens.db under the working directory, 0600 in a 0700 folder, kept across processes", () => {
    const env = { TOKEN_STORAGE: "db", TOKEN_STORAGE_LOG: "silent" };
    nodeJson(
      `const t = require(PKG); t.storeAccessToken("kept", "kept-r", "k", "user-1", "c", ["mcp"], null); console.log("true");`,
      { cwd, env },
    );
    const file = path.join(cwd, "data", "tokens.db");
    assert.ok(fs.existsSync(file), fs.readdirSync(cwd).join(","));
    assert.equal(fs.statSync(path.join(cwd, "data")).mode & 0o777, 0o700);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const out = nodeJson(
      `const t = require(PKG); console.log(JSON.stringify({ t: t.getAccessToken("kept"), r: t.getRefreshToken("kept-r"), s: t.getStats() }));`,
      { cwd, env: { ...env, TOKEN_STORAGE: "sqlite" } },
    );
    assert.equal(out.t.apiKey, "k");
    assert.equal(out.r.accessToken, "kept");
    assert.equal(out.s.totalTokens, 1);
    assert.equal(out.s.storage, "sqlite");
  });

  it("a relative TOKEN_DB_PATH resolves against the working directory; missing folders are created", () => {
    const out = nodeJson(`${FLOW}\nconsole.log(JSON.stringify({ consumed, removed }));`, {
      cwd,
      env: { TOKEN_STORAGE: "SQLite", TOKEN_DB_PATH: "var/lib/my-tokens.db", TOKEN_STORAGE_LOG: "silent" },
    });
    assert.deepEqual(out, { consumed: true, removed: 1 });
    assert.ok(fs.existsSync(path.join(cwd, "var", "lib", "my-tokens.db")));
    assert.ok(!fs.existsSync(path.join(cwd, "data")));
  });

  it("TOKEN_DB_SYNC=full works; an unknown value is an Error at require naming it, not a silent default", () => {
    const file = path.join(cwd, "t.db");
    const env = { TOKEN_STORAGE: "db", TOKEN_DB_PATH: file, TOKEN_STORAGE_LOG: "silent" };
    const ok = nodeJson(`const t = require(PKG); t.storeAccessToken("a", null, "k", "u", "c"); console.log(JSON.stringify(t.getAccessToken("a").apiKey));`, {
      cwd,
      env: { ...env, TOKEN_DB_SYNC: "FULL" },
    });
    assert.equal(ok, "k");
    const bad = nodeJson(`try { require(PKG); console.log("null"); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`, {
      cwd,
      env: { ...env, TOKEN_DB_SYNC: "off" },
    });
    assert.equal(bad.code, "ERR_TOKEN_STORAGE_CONFIG");
    assert.ok(bad.message.includes("off") && bad.message.includes("full"), bad.message);
  });

  it("closeDB() closes the file and the next call reopens it with its data", () => {
    const file = path.join(cwd, "t.db");
    const out = nodeJson(
      `const t = require(PKG); t.storeAccessToken("a", null, "k", "u", "c"); t.closeDB(); t.closeDB();
       console.log(JSON.stringify(t.getAccessToken("a")));`,
      { cwd, env: { TOKEN_STORAGE: "db", TOKEN_DB_PATH: file, TOKEN_STORAGE_LOG: "silent" } },
    );
    assert.equal(out.apiKey, "k");
  });

  it("an unusable TOKEN_DB_PATH: each call throws an Error with a code naming the path; the process goes on", () => {
    const out = nodeJson(
      `const t = require(PKG); const out = [];
       for (let i = 0; i < 2; i++) { try { t.getAccessToken("a"); } catch (e) { out.push({ code: e.code, message: e.message }); } }
       console.log(JSON.stringify(out));`,
      { cwd, env: { TOKEN_STORAGE: "db", TOKEN_DB_PATH: cwd, TOKEN_STORAGE_LOG: "silent" } },
    );
    assert.equal(out.length, 2);
    for (const e of out) {
      assert.equal(e.code, "ERR_TOKEN_STORAGE_OPEN");
      assert.ok(e.message.includes(cwd), e.message);
    }
  });
});

describe("logging", () => {
  /** Parses every stderr line as JSON; fails on any line that is not. */
  function jsonLines(stderr) {
    return stderr
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => {
        try {
          return JSON.parse(l);
        } catch {
          assert.fail(`not a JSON line: ${l}`);
        }
      });
  }

  /** No secret, nor any 9 characters in a row of one (a log may show the first 8). */
  function assertNoSecret(text) {
    for (const [name, value] of Object.entries(SECRETS)) {
      for (let i = 0; i + 9 <= value.length; i++) {
        const part = value.slice(i, i + 9);
        assert.ok(!text.includes(part), `9 characters of the ${name} (${part}) appear in the output`);
      }
    }
  }

  it("debug with a db store: JSON lines with timestamp, level and message; an opened line; no secret", () => {
    const file = path.join(cwd, "tokens.db");
    const broken = path.join(cwd, "not-a-db.db");
    fs.writeFileSync(broken, "x".repeat(4096));
    const r = runNode(
      `${FLOW}
const other = new t.TokenStorage({ storage: "db", path: ${JSON.stringify(broken)} });
try { other.storeAccessToken(S.token, S.refresh, S.apiKey, "u", "c"); } catch (e) { console.log(JSON.stringify(e.message)); }
try { t.storeAccessToken(S.token, S.refresh, 12345, "u", "c"); } catch (e) { console.log(JSON.stringify(e.message)); }
console.log(JSON.stringify({ consumed, removed }));`,
      { cwd, env: { TOKEN_STORAGE: "db", TOKEN_DB_PATH: file, TOKEN_STORAGE_LOG: "debug" } },
    );
    assert.equal(r.status, 0, r.stderr);
    const lines = jsonLines(r.stderr);
    assert.ok(lines.length >= 2, r.stderr);
    for (const l of lines) {
      assert.equal(typeof l.timestamp, "string");
      assert.ok(!Number.isNaN(Date.parse(l.timestamp)), l.timestamp);
      assert.ok(["debug", "info", "warn", "error"].includes(l.level), l.level);
      assert.equal(typeof l.message, "string");
    }
    const opened = lines.filter((l) => /open/i.test(l.message) && l.level === "info");
    assert.ok(opened.some((l) => l.storage === "sqlite" && l.path === file), JSON.stringify(opened));
    assert.ok(lines.some((l) => l.level === "debug"), "debug lines appear at level debug");
    assert.ok(lines.some((l) => l.level === "error" && JSON.stringify(l).includes(broken)), "the failed open is logged with its path");
    assertNoSecret(r.stderr);
    assertNoSecret(r.stdout);
  });

  it("the default level logs which store opened, for memory too", () => {
    const r = runNode(`require(PKG).getStats();`, { cwd });
    assert.equal(r.status, 0, r.stderr);
    const lines = jsonLines(r.stderr);
    assert.equal(lines.length, 1, r.stderr);
    assert.equal(lines[0].level, "info");
    assert.equal(lines[0].storage, "memory");
  });

  it("warns when the database file is readable by others", () => {
    const file = path.join(cwd, "shared.db");
    nodeJson(`require(PKG).getStats(); console.log(1);`, { cwd, env: { TOKEN_STORAGE: "db", TOKEN_DB_PATH: file, TOKEN_STORAGE_LOG: "silent" } });
    fs.chmodSync(file, 0o644);
    const r = runNode(`require(PKG).getStats();`, { cwd, env: { TOKEN_STORAGE: "db", TOKEN_DB_PATH: file, TOKEN_STORAGE_LOG: "warn" } });
    const lines = jsonLines(r.stderr);
    assert.ok(lines.some((l) => l.level === "warn" && l.path === file), r.stderr);
  });

  it("silent: no output at all, not even for a failure", () => {
    const broken = path.join(cwd, "not-a-db.db");
    fs.writeFileSync(broken, "x".repeat(4096));
    const r = runNode(
      `${FLOW}
try { new t.TokenStorage({ storage: "db", path: ${JSON.stringify(broken)} }).getStats(); } catch {}`,
      { cwd, env: { TOKEN_STORAGE: "db", TOKEN_DB_PATH: path.join(cwd, "t.db"), TOKEN_STORAGE_LOG: "silent" } },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.equal(r.stdout, "");
  });
});

describe("process lifetime", () => {
  it("a script that uses both stores and never closes them exits on its own", () => {
    const r = runNode(
      `${FLOW}
const mem = new t.TokenStorage({ storage: "memory" });
const db = new t.TokenStorage({ storage: "db", path: ${JSON.stringify(path.join(cwd, "second.db"))} });
for (const s of [mem, db]) {
  s.storeAccessToken("a", "r", "k", "u", "c", [], Date.now() + 3600e3);
  for (let i = 0; i < 50; i++) s.storeAuthorizationCode("code" + i, "u", "k", "c", "https://x/cb", null, null, []);
  s.cleanupExpiredTokensAsync(10).then((n) => process.stdout.write("async " + n + "\\n"));
}
t.getStats();
process.on("exit", () => process.stdout.write("exited\\n"));`,
      { cwd, env: { TOKEN_STORAGE: "db", TOKEN_DB_PATH: path.join(cwd, "t.db"), TOKEN_STORAGE_LOG: "silent" }, timeout: 15000 },
    );
    assert.equal(r.signal, null, "the child had to be killed: something kept it alive");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "async 0\nasync 0\nexited\n");
  });
});
