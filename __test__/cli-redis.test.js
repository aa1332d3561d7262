"use strict";
// The operator's command line on a Redis store (issue 21): TOKEN_STORAGE=redis with
// TOKEN_REDIS_URL (or REDIS_URL) and TOKEN_REDIS_PREFIX, or --url and --prefix; `copy` from
// and to a redis:// URL, so a deployment moves between SQLite, PostgreSQL and Redis without
// logging anyone out; a prefix nothing was written under refused as a typo (exit 3).
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { REDIS_URL, PG_URL, TokenStorage, tempDir, removeDir, freshSchema } = require("./helpers/setup");
const { EXIT } = require("../lib/cli");
const { runCli, seedTokens } = require("./helpers/cli");

const cli = (args, env = {}) => runCli(args, { env });
const skip = REDIS_URL ? false : "TOKEN_TEST_REDIS_URL not set";

/** The access tokens a Redis store under `prefix` serves, of `secret-at-0..n-1`. */
function served(prefix, n) {
  const s = new TokenStorage({ storage: "redis", url: REDIS_URL, prefix, cleanupInterval: 0 });
  try {
    let found = 0;
    for (let i = 0; i < n; i++) if (s.getAccessToken(`secret-at-${i}`)?.refreshToken === `secret-rt-${i}`) found++;
    return found;
  } finally {
    s.close();
  }
}

/** What the output and errors must never hold: a token, the API key, a URL's password. */
function noSecrets(r) {
  for (const text of [r.stdout, r.stderr]) {
    assert.ok(!/secret-(at|rt)|sk-secret|hunter2/.test(text), text);
  }
}

describe("the command line on a Redis store", { skip }, () => {
  it("copies a SQLite file into Redis and back, counts checked, every token served", () => {
    const dir = tempDir("nts-cli-redis-");
    try {
      const db = path.join(dir, "tokens.db");
      seedTokens(db, 25, { user: (i) => `user-${i % 5}`, scopes: ["mcp"] });
      const prefix = `${freshSchema()}:`;
      let r = cli(["copy", db, REDIS_URL, "--prefix", prefix, "--json", "--quiet"]);
      assert.equal(r.status, EXIT.OK, r.stderr);
      noSecrets(r);
      assert.equal(r.json().to.storage, "redis");
      assert.equal(r.json().counts.accessTokens, 25);
      assert.equal(r.json().counts.refreshTokens, 25);
      assert.equal(served(prefix, 25), 25, "every token copied into Redis is served there");

      // Stats, configured through the environment as the library's default store is.
      r = cli(["stats", "--json"], { TOKEN_STORAGE: "redis", TOKEN_REDIS_URL: REDIS_URL, TOKEN_REDIS_PREFIX: prefix });
      assert.equal(r.status, EXIT.OK, r.stderr);
      assert.equal(r.json().totalTokens, 25);
      // REDIS_URL too; TOKEN_DATABASE_URL (PostgreSQL's) is not taken for Redis's.
      r = cli(["stats", "--json", "--prefix", prefix], { TOKEN_STORAGE: "redis", REDIS_URL, TOKEN_DATABASE_URL: "postgres://u:hunter2@nowhere.invalid/x" });
      assert.equal(r.status, EXIT.OK, r.stderr);
      assert.equal(r.json().totalTokens, 25);
      // --url alone with a redis:// URL means Redis.
      r = cli(["stats", "--json", "--url", REDIS_URL, "--prefix", prefix]);
      assert.equal(r.status, EXIT.OK, r.stderr);
      assert.equal(r.json().totalTokens, 25);

      // Back to a new SQLite file.
      const back = path.join(dir, "back.db");
      r = cli(["copy", REDIS_URL, back, "--prefix", prefix, "--quiet"]);
      assert.equal(r.status, EXIT.OK, r.stderr);
      const s = new TokenStorage({ storage: "db", path: back });
      try {
        assert.equal(s.getStats().totalTokens, 25);
        assert.equal(s.getAccessToken("secret-at-7").refreshToken, "secret-rt-7");
      } finally {
        s.close();
      }
    } finally {
      removeDir(dir);
    }
  });

  it("refuses a Redis target that holds rows unless --force, and the same store as FROM and TO", () => {
    const dir = tempDir("nts-cli-redis-");
    try {
      const db = path.join(dir, "tokens.db");
      seedTokens(db, 5, { user: (i) => `user-${i}`, scopes: [] });
      const prefix = `${freshSchema()}:`;
      assert.equal(cli(["copy", db, REDIS_URL, "--prefix", prefix, "--quiet"]).status, EXIT.OK);
      let r = cli(["copy", db, REDIS_URL, "--prefix", prefix, "--quiet"]);
      assert.equal(r.status, EXIT.REFUSED, r.stderr);
      r = cli(["copy", db, REDIS_URL, "--prefix", prefix, "--quiet", "--force"]);
      assert.equal(r.status, EXIT.OK, r.stderr);
      assert.equal(served(prefix, 5), 5);
      r = cli(["copy", REDIS_URL, REDIS_URL, "--prefix", prefix, "--quiet", "--force"]);
      assert.equal(r.status, EXIT.USAGE, r.stderr);
      assert.equal(served(prefix, 5), 5, "a copy onto itself removed nothing");
      // The same server by another name: still the same store (it used to be emptied, the
      // copy reporting 0 rows copied and exit 0), known by the server's run_id.
      const other = /127\.0\.0\.1/.test(REDIS_URL) ? REDIS_URL.replace("127.0.0.1", "localhost") : REDIS_URL.replace("localhost", "127.0.0.1");
      assert.notEqual(other, REDIS_URL);
      r = cli(["copy", REDIS_URL, other, "--prefix", prefix, "--quiet", "--force"]);
      assert.equal(r.status, EXIT.USAGE, r.stderr);
      assert.match(r.stderr, /the same store/);
      assert.equal(served(prefix, 5), 5, "a copy onto itself by another name removed nothing");
    } finally {
      removeDir(dir);
    }
  });

  it("refuses a prefix nothing was written under (a typo) with exit 3, for every command that reads", () => {
    const dir = tempDir("nts-cli-redis-");
    try {
      const typo = `${freshSchema()}:`;
      const env = { TOKEN_STORAGE: "redis", TOKEN_REDIS_URL: REDIS_URL };
      const file = path.join(dir, "backup.db");
      for (const args of [["stats"], ["cleanup"], ["revoke", "--user", "alice"], ["backup", file], ["copy", REDIS_URL, path.join(dir, "copy.db")]]) {
        const r = cli([...args, "--prefix", typo, "--json"], env);
        assert.equal(r.status, EXIT.NOT_FOUND, `${args[0]}: ${r.stderr}`);
        assert.ok(r.stderr.includes(`no token store under the prefix ${JSON.stringify(typo)}`), r.stderr);
      }
      assert.equal(fs.existsSync(file), false);
      assert.equal(fs.existsSync(path.join(dir, "copy.db")), false);
    } finally {
      removeDir(dir);
    }
  });

  it("encrypt, decrypt and rekey refuse a Redis store, saying how to convert it through a file", () => {
    const env = { TOKEN_STORAGE: "redis", TOKEN_REDIS_URL: REDIS_URL, TOKEN_REDIS_PREFIX: `${freshSchema()}:`, TOKEN_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 1).toString("base64")}` };
    for (const command of ["encrypt", "decrypt", "rekey"]) {
      const r = cli([command], env);
      assert.equal(r.status, EXIT.USAGE, r.stderr);
      assert.match(r.stderr, new RegExp(`${command} does not convert a Redis store in place: copy it to a SQLite file`));
    }
  });

  it("moves a PostgreSQL schema to Redis", { skip: PG_URL ? false : "TOKEN_TEST_DATABASE_URL not set" }, () => {
    const dir = tempDir("nts-cli-redis-");
    try {
      const db = path.join(dir, "tokens.db");
      seedTokens(db, 10, { user: (i) => `user-${i}`, scopes: ["mcp"] });
      const schema = freshSchema();
      assert.equal(cli(["copy", db, PG_URL, "--schema", schema, "--quiet"]).status, EXIT.OK);
      const prefix = `${freshSchema()}:`;
      const r = cli(["copy", PG_URL, REDIS_URL, "--schema", schema, "--prefix", prefix, "--quiet"]);
      assert.equal(r.status, EXIT.OK, r.stderr);
      assert.equal(served(prefix, 10), 10);
    } finally {
      removeDir(dir);
    }
  });
});
