"use strict";
// The SQLite file: legacy files of the old module, what the package writes, file modes,
// WAL and indexes, and failures (directory, not a database, unwritable folder).
const { describe, it, beforeEach, afterEach } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { TokenStorage, tempDir, removeDir, runNode } = require("./helpers/setup");
const { writeLegacyFile, inspectFile, execSql } = require("./helpers/legacy");

const VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const API_KEY = "sk-or-v1-secret-api-key-0123456789";
const TOKEN = "at-secret-token-0123456789";
const HOUR = 3600e3;

let dir;
let stores;
/** A SQLite TokenStorage on `file`, closed after the test. */
const open = (file) => {
  const s = new TokenStorage({ storage: "db", path: file });
  stores.push(s);
  return s;
};
beforeEach(() => {
  dir = tempDir();
  stores = [];
});
afterEach(() => {
  for (const s of stores) s.close();
  removeDir(dir);
});

/** Rows of one table from inspectFile, as plain values keyed by column. */
const values = (info, table) =>
  info.tables[table].rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.value])));

describe("a tokens.db written by the old module", () => {
  function legacy() {
    const file = path.join(dir, "tokens.db");
    const now = Date.now();
    writeLegacyFile(file, {
      access_tokens: [
        ["at-live", "sk-live", "user-1", "client-1", '["mcp","read"]', "rt-live", now + HOUR, now - 5000],
        ["at-forever", "sk-forever", "user-2", "client-2", "[]", null, null, now - 4000],
        ["at-expired", "sk-expired", "user-3", "client-1", '["mcp"]', "rt-expired", now - 1000, now - HOUR],
        ["at-user1-b", "sk-live-b", "user-1", "client-1", '["mcp"]', null, now + HOUR, now - 3000],
      ],
      refresh_tokens: [
        ["rt-live", "user-1", "client-1", '["mcp","read"]', "at-live", now - 5000],
        ["rt-expired", "user-3", "client-1", '["mcp"]', "at-expired", now - HOUR],
      ],
      authorization_codes: [
        ["code-live", "user-1", "sk-code", "client-1", "https://app.example/cb", CHALLENGE, "S256", '["mcp"]', now + 600e3, now - 100],
        ["code-old", "user-1", "sk-code", "client-1", "https://app.example/cb", "", "", '["mcp"]', now - 1000, now - 700e3],
        ["code-plain", "user-1", "sk-code", "client-1", "https://app.example/cb", "", "", null, now + 600e3, now - 100],
      ],
    });
    return { file, now };
  }

  it("opens and reads its tokens, refresh tokens and codes back right", () => {
    const { file, now } = legacy();
    const s = open(file);
    const t = s.getAccessToken("at-live");
    assert.deepEqual(t, {
      apiKey: "sk-live",
      userId: "user-1",
      clientId: "client-1",
      scopes: ["mcp", "read"],
      refreshToken: "rt-live",
      expiresAt: new Date(now + HOUR),
      createdAt: new Date(now - 5000),
    });
    const forever = s.getAccessToken("at-forever");
    assert.equal(forever.expiresAt, null);
    assert.equal(forever.refreshToken, null);
    assert.deepEqual(forever.scopes, []);
    assert.deepEqual(s.getRefreshToken("rt-live"), {
      userId: "user-1",
      clientId: "client-1",
      scopes: ["mcp", "read"],
      accessToken: "at-live",
      createdAt: new Date(now - 5000),
    });
    assert.equal(s.getRefreshToken("rt-expired"), null);
    assert.equal(s.getAccessToken("at-expired"), null);
    const c = s.consumeAuthorizationCode("code-live", VERIFIER);
    assert.equal(c.expiresAt, now + 600e3);
    assert.equal(c.createdAt, now - 100);
    assert.equal(c.redirectUri, "https://app.example/cb");
    assert.equal(s.consumeAuthorizationCode("code-old"), null);
    // The old module's "no PKCE" ('' in its NOT NULL columns) and NULL scopes.
    const plain = s.consumeAuthorizationCode("code-plain");
    assert.deepEqual([plain.codeChallenge, plain.codeChallengeMethod, plain.scopes], [null, null, []]);
  });

  it("getStats counts its live tokens and users", () => {
    const { file } = legacy();
    const s = open(file);
    assert.equal(s.getStats().totalTokens, 3);
    assert.equal(s.getStats().uniqueUsers, 2);
  });

  it("cleanup removes its expired rows and counts them", () => {
    const { file } = legacy();
    const s = open(file);
    assert.equal(s.cleanupExpiredTokens(), 2); // at-expired and code-old
    const info = inspectFile(file);
    assert.deepEqual(values(info, "refresh_tokens").map((r) => r.refresh_token), ["rt-live"]);
  });

  it("gets the indexes and WAL, and the old module's rows stay as they were", () => {
    const { file } = legacy();
    open(file).getStats();
    const info = inspectFile(file);
    assert.equal(info.journal_mode, "wal");
    const firstCols = info.tables.access_tokens.indexes.map((cols) => cols[0]);
    assert.ok(firstCols.includes("user_id") && firstCols.includes("expires_at"), JSON.stringify(firstCols));
    const live = values(info, "access_tokens").find((r) => r.token === "at-live");
    assert.equal(live.scopes, '["mcp","read"]');
    assert.equal(live.api_key, "sk-live");
  });

  it("what the old module writes after the package opened the file is read and counted", () => {
    const { file } = legacy();
    const s = open(file);
    assert.equal(s.getStats().totalTokens, 3);
    const now = Date.now();
    execSql(file, "INSERT INTO access_tokens VALUES (?,?,?,?,?,?,?,?)", ["at-old-module", "sk-x", "user-9", "client-9", '["mcp"]', null, now + HOUR, now]);
    assert.equal(s.getAccessToken("at-old-module").userId, "user-9");
    assert.equal(s.getStats().totalTokens, 4);
    assert.equal(s.getStats().uniqueUsers, 3);
    execSql(file, "DELETE FROM access_tokens WHERE user_id = ?", ["user-1"]);
    assert.equal(s.getStats().totalTokens, 2);
    assert.equal(s.getStats().uniqueUsers, 2);
  });
});

describe("what the package writes", () => {
  function written(file) {
    const s = open(file);
    const exp = Date.now() + HOUR;
    s.storeAccessToken("at-full", "rt-full", "sk-full", "user-1", "client-1", ["mcp", "read"], new Date(exp));
    s.storeAccessToken("at-bare", null, "sk-bare", null, "client-2", [], null);
    s.storeAuthorizationCode("code-bare", null, "sk-code", "client-1", "https://app.example/cb", null, null, ["mcp"]);
    s.storeAuthorizationCode("code-pkce", "user-1", "sk-code", "client-1", "https://app.example/cb", CHALLENGE, "S256", [], 60);
    s.close();
    return { info: inspectFile(file), exp };
  }

  it("has the old module's columns, no NULL where the old module said NOT NULL, ms integers and JSON scopes", () => {
    const file = path.join(dir, "tokens.db");
    const { info, exp } = written(file);
    assert.deepEqual(info.tables.access_tokens.columns, ["token", "api_key", "user_id", "client_id", "scopes", "refresh_token", "expires_at", "created_at"]);
    assert.deepEqual(info.tables.refresh_tokens.columns, ["refresh_token", "user_id", "client_id", "scopes", "access_token", "created_at"]);
    assert.deepEqual(info.tables.authorization_codes.columns, [
      "code", "user_id", "api_key", "client_id", "redirect_uri", "code_challenge", "code_challenge_method", "scopes", "expires_at", "created_at",
    ]);
    const oldNotNull = {
      access_tokens: ["token", "api_key", "user_id", "client_id", "scopes", "created_at"],
      refresh_tokens: ["refresh_token", "user_id", "client_id", "scopes", "access_token", "created_at"],
      authorization_codes: ["code", "user_id", "api_key", "client_id", "redirect_uri", "code_challenge", "code_challenge_method", "scopes", "expires_at", "created_at"],
    };
    const times = { access_tokens: ["created_at"], refresh_tokens: ["created_at"], authorization_codes: ["expires_at", "created_at"] };
    for (const [table, cols] of Object.entries(oldNotNull)) {
      assert.ok(info.tables[table].rows.length > 0, table);
      for (const row of info.tables[table].rows) {
        for (const c of cols) assert.notEqual(row[c].value, null, `${table}.${c} is NULL`);
        for (const c of times[table]) assert.equal(row[c].type, "int", `${table}.${c} is ${row[c].type}`);
        assert.ok(Array.isArray(JSON.parse(row.scopes.value)), `${table}.scopes is JSON`);
      }
    }
    const full = values(info, "access_tokens").find((r) => r.token === "at-full");
    assert.equal(full.expires_at, exp);
    assert.deepEqual(JSON.parse(full.scopes), ["mcp", "read"]);
    assert.equal(full.refresh_token, "rt-full");
    const bare = info.tables.access_tokens.rows.find((r) => r.token.value === "at-bare");
    assert.equal(bare.expires_at.value, null);
    assert.equal(bare.refresh_token.value, null);
    const rt = values(info, "refresh_tokens")[0];
    assert.equal(rt.access_token, "at-full");
    const pkce = values(info, "authorization_codes").find((r) => r.code === "code-pkce");
    assert.equal(pkce.code_challenge, CHALLENGE);
    assert.equal(pkce.code_challenge_method, "S256");
    assert.equal(pkce.expires_at - pkce.created_at, 60e3);
  });

  it("can be written into a file with the old module's exact schema (its NOT NULL constraints hold)", () => {
    const file = path.join(dir, "tokens.db");
    writeLegacyFile(file, {});
    const { info } = written(file);
    assert.equal(info.tables.access_tokens.rows.length, 2);
    assert.equal(info.tables.authorization_codes.rows.length, 2);
    assert.deepEqual(info.tables.authorization_codes.notnull.sort(), [
      "api_key", "client_id", "code_challenge", "code_challenge_method", "created_at", "expires_at", "redirect_uri", "user_id",
    ]);
    // A code stored without PKCE is '' in the file and null when consumed.
    const bare = values(info, "authorization_codes").find((r) => r.code === "code-bare");
    assert.deepEqual([bare.code_challenge, bare.code_challenge_method], ["", ""]);
    const c = open(file).consumeAuthorizationCode("code-bare");
    assert.deepEqual([c.codeChallenge, c.codeChallengeMethod], [null, null]);
  });

  it("is in WAL mode with indexes on user_id and expires_at", () => {
    const file = path.join(dir, "tokens.db");
    const { info } = written(file);
    assert.equal(info.journal_mode, "wal");
    const indexed = (t) => info.tables[t].indexes.map((cols) => cols[0]);
    assert.ok(indexed("access_tokens").includes("user_id"), JSON.stringify(info.tables.access_tokens.indexes));
    assert.ok(indexed("access_tokens").includes("expires_at"));
    // Codes are consumed within minutes, so their table stays small and carries no
    // secondary index (each index would be one more page written per code).
    assert.ok(info.user_version >= 1);
  });

  it("creates missing folders 0700 and the file (and its WAL files) 0600", () => {
    const file = path.join(dir, "a", "b", "tokens.db");
    const s = open(file);
    s.storeAccessToken(TOKEN, null, API_KEY, "u", "c", [], null);
    assert.equal(s.path, file);
    assert.equal(fs.statSync(path.join(dir, "a")).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(dir, "a", "b")).mode & 0o777, 0o700);
    for (const f of fs.readdirSync(path.join(dir, "a", "b"))) {
      assert.equal(fs.statSync(path.join(dir, "a", "b", f)).mode & 0o777, 0o600, f);
    }
  });
});

describe("SQLite failures", () => {
  /** Asserts every kind of call on a store at `file` throws Error `code` naming the path, no secret. */
  function assertFails(file, code) {
    const s = open(file);
    const calls = [
      () => s.getStats(),
      () => s.storeAccessToken(TOKEN, "rt-secret-refresh-0123", API_KEY, "u", "c", ["mcp"], null),
      () => s.getAccessToken(TOKEN),
      () => s.storeAuthorizationCode("code-secret-0123456789", "u", API_KEY, "c", "https://x/cb", CHALLENGE, "S256", []),
    ];
    for (const call of calls) {
      assert.throws(call, (e) => {
        assert.ok(e instanceof Error && !(e instanceof TypeError), String(e));
        assert.equal(e.code, code, e.message);
        assert.ok(e.message.includes(file), `names the path: ${e.message}`);
        for (const secret of [TOKEN, API_KEY, "rt-secret-refresh-0123", "code-secret-0123456789", CHALLENGE]) {
          assert.ok(!e.message.includes(secret), `no secret: ${e.message}`);
        }
        return true;
      });
    }
  }

  it("a path that is a directory: ERR_TOKEN_STORAGE_OPEN naming it", () => {
    assertFails(dir, "ERR_TOKEN_STORAGE_OPEN");
  });

  it("a file that is not a database: ERR_TOKEN_STORAGE_NOT_A_DATABASE, and the file is left alone", () => {
    const file = path.join(dir, "tokens.db");
    const garbage = Buffer.alloc(8192);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) % 251;
    fs.writeFileSync(file, garbage);
    assertFails(file, "ERR_TOKEN_STORAGE_NOT_A_DATABASE");
    assert.deepEqual(fs.readFileSync(file), garbage);
  });

  it("a text file is not a database either", () => {
    const file = path.join(dir, "notes.txt");
    fs.writeFileSync(file, "these are not the tokens you are looking for\n".repeat(200));
    assertFails(file, "ERR_TOKEN_STORAGE_NOT_A_DATABASE");
  });

  it("a folder that cannot be created (under /proc): ERR_TOKEN_STORAGE_OPEN naming the path", () => {
    assertFails("/proc/nts-no-such-dir/tokens.db", "ERR_TOKEN_STORAGE_OPEN");
  });

  it("an unwritable folder or read-only file: an Error with a stable code naming the path, the process goes on", () => {
    // Root ignores permissions, so the calls run in a child as nobody (65534) when we are root.
    const asRoot = process.getuid() === 0;
    fs.chmodSync(dir, 0o755);
    const locked = path.join(dir, "locked");
    fs.mkdirSync(locked, { mode: 0o755 });
    const readOnly = path.join(locked, "readonly.db");
    const s = open(readOnly);
    s.storeAccessToken("at-existing", null, API_KEY, "u", "c");
    s.close();
    fs.chmodSync(readOnly, asRoot ? 0o644 : 0o444);
    if (!asRoot) fs.chmodSync(locked, 0o555);
    const cases = [
      [path.join(locked, "tokens.db"), "ERR_TOKEN_STORAGE_OPEN"],
      [path.join(locked, "sub", "tokens.db"), "ERR_TOKEN_STORAGE_OPEN"],
      [readOnly, "ERR_TOKEN_STORAGE_READONLY"],
    ];
    const r = runNode(
      `
const { TokenStorage } = require(PKG);
const out = [];
for (const [file] of ${JSON.stringify(cases)}) {
  const s = new TokenStorage({ storage: "db", path: file });
  for (const call of [() => s.getStats(), () => s.storeAccessToken(${JSON.stringify(TOKEN)}, null, ${JSON.stringify(API_KEY)}, "u", "c")]) {
    try { call(); out.push({ file, ok: true }); }
    catch (e) { out.push({ file, name: e.constructor.name, code: e.code, message: e.message }); }
  }
}
out.push({ alive: true });
console.log(JSON.stringify(out));
`,
      { env: { TOKEN_STORAGE_LOG: "silent" }, ...(asRoot ? { uid: 65534, gid: 65534 } : {}) },
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.pop(), { alive: true });
    assert.equal(out.length, 2 * cases.length);
    for (const e of out) {
      const code = cases.find(([file]) => file === e.file)[1];
      assert.equal(e.name, "TokenStorageError", JSON.stringify(e));
      assert.equal(e.code, code, JSON.stringify(e));
      assert.ok(e.message.includes(e.file), e.message);
      assert.ok(!e.message.includes(TOKEN) && !e.message.includes(API_KEY), e.message);
    }
    assert.deepEqual(fs.readdirSync(locked), ["readonly.db"]);
    const back = open(readOnly);
    assert.equal(back.getStats().totalTokens, 1, "the read-only file was not changed");
  });

  it("after the cause is fixed, the same store opens on its next call", () => {
    const file = path.join(dir, "tokens.db");
    fs.writeFileSync(file, "garbage ".repeat(1000));
    const s = open(file);
    assert.throws(() => s.getStats(), { code: "ERR_TOKEN_STORAGE_NOT_A_DATABASE" });
    fs.unlinkSync(file);
    s.storeAccessToken(TOKEN, null, API_KEY, "u", "c");
    assert.equal(s.getAccessToken(TOKEN).apiKey, API_KEY);
  });
});

describe("choosing the store in new TokenStorage", () => {
  it("an unknown storage value is an Error naming it and the accepted ones, never a memory store", () => {
    for (const value of ["mongodb", "mysql", "sqlite3", "mem"]) {
      assert.throws(
        () => new TokenStorage({ storage: value, path: path.join(dir, "t.db") }).getStats(),
        (err) => {
          assert.ok(err instanceof Error, `${value}: ${err}`);
          assert.equal(err.code, "ERR_TOKEN_STORAGE_CONFIG");
          assert.ok(err.message.includes(`"${value}"`), err.message);
          for (const accepted of ["memory", "db", "sqlite", "postgres", "redis", "valkey"]) assert.ok(err.message.includes(accepted), err.message);
          return true;
        },
      );
    }
  });

  it("storage names are compared without regard to case", () => {
    for (const [value, kind] of [["MEMORY", "memory"], ["Memory", "memory"], ["DB", "sqlite"], ["SQLite", "sqlite"], ["sqlite", "sqlite"], ["", "memory"]]) {
      const t = new TokenStorage({ storage: value, path: path.join(dir, `${value || "empty"}.db`) });
      stores.push(t);
      assert.equal(t.storage, kind, value);
      t.storeAccessToken(TOKEN, null, API_KEY, "u", "c");
      assert.equal(t.getAccessToken(TOKEN).apiKey, API_KEY);
    }
  });

  it("a relative path resolves against the working directory", () => {
    const s = new TokenStorage({ storage: "db", path: path.relative(process.cwd(), path.join(dir, "rel.db")) });
    stores.push(s);
    assert.equal(path.resolve(s.path), path.join(dir, "rel.db"));
    s.getStats();
    assert.ok(fs.existsSync(path.join(dir, "rel.db")));
  });
});
