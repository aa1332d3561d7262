"use strict";
// The operator's commands of bin/native-token-storage.js (issue 19), each run end to end in
// a child process: stats, cleanup, revoke, backup, restore, copy, their --help, --json and
// exit codes, failures included (missing file, non-empty target, bad URL, bad flags), and
// no token or connection string ever printed.
const { describe, it, beforeEach, afterEach } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { PG_URL, TokenStorage, tempDir, removeDir, freshSchema } = require("./helpers/setup");
const { EXIT, COMMANDS } = require("../lib/cli");
const { runCli: cli } = require("./helpers/cli");

const HOUR = 3600e3;

// The PostgreSQL URL of the tests by another name for the same server: its Unix socket
// folder with "/." after it (`?host=DIR` or a host of `%2F…`), a TCP host named otherwise.
function otherName(url) {
  if (/[?&]host=/.test(url)) return url.replace(/([?&]host=[^&]*)/, "$1%2F.");
  if (/@%2F[^:/?]*/.test(url)) return url.replace(/(@%2F[^:/?]*)/, "$1%2F.");
  return /localhost/.test(url) ? url.replace("localhost", "127.0.0.1") : url.replace("127.0.0.1", "localhost");
}

/** A SQLite store with tokens of two clients and users, a rotation, an expired token. */
function seed(file) {
  const s = new TokenStorage({ storage: "db", path: file });
  const later = Date.now() + HOUR;
  s.storeAccessToken("secret-at-1", "secret-rt-1", "sk-secret", "alice", "app", ["read"], later);
  s.storeAccessToken("secret-at-2", "secret-rt-2", "sk-secret", "bob", "app", ["read"], later);
  s.storeAccessToken("secret-at-3", "secret-rt-3", "sk-secret", "bob", "other", ["read"], later);
  s.storeAccessToken("secret-old", null, "sk-secret", "carol", "app", [], Date.now() - 1000);
  s.rotateRefreshToken("secret-rt-1", "secret-at-1b", "secret-rt-1b", later);
  s.close();
}

function noSecrets(r) {
  for (const out of [r.stdout, r.stderr]) {
    assert.doesNotMatch(out, /secret-|sk-secret|s3cret/, "no token, key or password printed");
  }
}

describe("native-token-storage commands", () => {
  let dir;
  let db;
  let env;
  beforeEach(() => {
    dir = tempDir("nts-cli-");
    db = path.join(dir, "tokens.db");
    seed(db);
    env = { TOKEN_STORAGE: "db", TOKEN_DB_PATH: db };
  });
  afterEach(() => removeDir(dir));

  it("--help for the program and each command; usage errors exit 2", () => {
    const top = cli(["--help"]);
    assert.equal(top.status, EXIT.OK);
    for (const name of [...Object.keys(COMMANDS), "doctor"]) assert.match(top.stdout, new RegExp(`^  ${name} `, "m"));
    assert.match(top.stdout, /Exit codes: 0/);
    for (const name of Object.keys(COMMANDS)) {
      const r = cli([name, "--help"]);
      assert.equal(r.status, EXIT.OK, name);
      assert.match(r.stdout, new RegExp(`^Usage: native-token-storage ${name}`), name);
    }
    for (const args of [[], ["stat"], ["stats", "--bogus"], ["stats", "extra"], ["backup"], ["copy", "a.db"], ["cleanup", "--batch-size", "0"], ["revoke"], ["revoke", "--user", "a", "--client", "b"]]) {
      const r = cli(args, { env });
      assert.equal(r.status, EXIT.USAGE, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /native-token-storage/);
    }
  });

  it("stats: the live counts and the rows, as text and --json; a missing file exits 3, no store 2", () => {
    const r = cli(["stats"], { env });
    assert.equal(r.status, EXIT.OK, r.stderr);
    assert.match(r.stdout, /^sqlite \(.*tokens\.db\)$/m);
    assert.match(r.stdout, /^ +3 +live access tokens$/m);
    assert.equal(r.stderr, "", "the store's info lines stay out of a command's output");
    const j = cli(["stats", "--json"], { env }).json();
    assert.equal(j.totalTokens, 3);
    assert.equal(j.uniqueUsers, 2);
    assert.equal(j.rows.accessTokens, 4);
    assert.equal(j.rows.retiredRefreshTokens, 1);
    // The flags set the store as the environment does.
    assert.equal(cli(["stats", "--json", "--storage", "db", "--path", db]).json().totalTokens, 3);
    // --path alone means the SQLite store, --url alone PostgreSQL (TOKEN_STORAGE unset).
    assert.equal(cli(["stats", "--json", "--path", db]).json().totalTokens, 3);
    const noServer = cli(["stats", "--url", "postgres://u:s3cret@127.0.0.1:1/db?connect_timeout=1"]);
    assert.equal(noServer.status, EXIT.FAILED, noServer.stderr);
    assert.match(noServer.stderr, /unavailable/);
    noSecrets(noServer);
    const missing = cli(["stats"], { env: { ...env, TOKEN_DB_PATH: path.join(dir, "nope.db") } });
    assert.equal(missing.status, EXIT.NOT_FOUND);
    assert.match(missing.stderr, /no such file/);
    assert.equal(fs.existsSync(path.join(dir, "nope.db")), false, "nothing created");
    assert.equal(cli(["stats"]).status, EXIT.USAGE, "the memory store (no configuration) is refused");
    noSecrets(r);
  });

  it("a sealed store: refused without its keys; stats and cleanup with them (backup, restore and copy: cli-sealed-copies.test.js)", () => {
    const sealedDb = path.join(dir, "sealed.db");
    const keys = `k1:${Buffer.alloc(32, 4).toString("base64")}`;
    const s = new TokenStorage({ storage: "db", path: sealedDb, encryptionKeys: keys });
    s.storeAuthorizationCode("secret-code", "alice", "sk-secret", "app", "https://app/cb", null, null, ["read"]);
    s.close();
    const sealedEnv = { TOKEN_STORAGE: "db", TOKEN_DB_PATH: sealedDb };
    const without = cli(["stats", "--json"], { env: sealedEnv });
    assert.equal(without.status, EXIT.FAILED, without.stderr);
    assert.equal(JSON.parse(without.stdout).error.code, "ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH");
    const withKeys = cli(["stats", "--json"], { env: { ...sealedEnv, TOKEN_ENCRYPTION_KEYS: keys } });
    assert.equal(withKeys.status, EXIT.OK, withKeys.stderr);
    assert.equal(withKeys.json().rows.authorizationCodes, 1);
    assert.equal(cli(["cleanup"], { env: { ...sealedEnv, TOKEN_ENCRYPTION_KEYS: keys } }).status, EXIT.OK);
    for (const r of [without, withKeys]) {
      noSecrets(r);
      assert.equal((r.stdout + r.stderr).includes(keys.slice(3)), false, "no key printed");
    }
  });

  it("cleanup removes what expired", () => {
    const r = cli(["cleanup", "--json"], { env });
    assert.equal(r.status, EXIT.OK, r.stderr);
    assert.equal(r.json().removed, 1);
    assert.equal(cli(["stats", "--json"], { env }).json().rows.accessTokens, 3);
  });

  it("revoke: a user's, a client's, one grant's tokens (a token from stdin); never printing a token", () => {
    let r = cli(["revoke", "--user", "alice", "--json"], { env });
    assert.equal(r.status, EXIT.OK, r.stderr);
    assert.equal(r.json().revoked, 1);
    r = cli(["revoke", "--client", "other", "--json"], { env });
    assert.equal(r.json().revoked, 1);
    r = cli(["revoke", "--token", "-"], { env, input: "secret-at-2\n" });
    assert.equal(r.status, EXIT.OK, r.stderr);
    assert.match(r.stdout, /revoked the access token/);
    noSecrets(r);
    r = cli(["revoke", "--refresh-token", "secret-rt-2", "--json"], { env });
    assert.equal(r.json().refreshToken, "not found", "already gone: not an error");
    noSecrets(r);
    const s = new TokenStorage({ storage: "db", path: db });
    try {
      assert.equal(s.getStats().totalTokens, 0);
    } finally {
      s.close();
    }
  });

  it("backup, then restore and copy from it; refusals exit 4, missing files 3, bad URLs 2", () => {
    const file = path.join(dir, "backup.db");
    let r = cli(["backup", file, "--json"], { env });
    assert.equal(r.status, EXIT.OK, r.stderr);
    assert.equal(r.json().counts.accessTokens, 4);
    assert.match(r.stderr, /^backup: \d+ rows of \d+ \(100 %\)/m, "plain progress lines off a terminal");
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    r = cli(["backup", file], { env });
    assert.equal(r.status, EXIT.REFUSED);
    assert.equal(cli(["backup", file, "--force", "--quiet"], { env }).status, EXIT.OK);

    // Restore into the (non-empty) store: refused, then forced after a revocation.
    assert.equal(cli(["revoke", "--user", "bob"], { env }).status, EXIT.OK);
    r = cli(["restore", file], { env });
    assert.equal(r.status, EXIT.REFUSED, r.stderr);
    assert.match(r.stderr, /not empty/);
    r = cli(["restore", file, "--force", "--json", "--batch-size", "2"], { env });
    assert.equal(r.status, EXIT.OK, r.stderr);
    assert.equal(r.json().counts.accessTokens, 4);
    assert.equal(cli(["stats", "--json"], { env }).json().totalTokens, 3, "bob's tokens are back");
    assert.equal(cli(["restore", path.join(dir, "nope.db")], { env }).status, EXIT.NOT_FOUND);

    // Copy into a new file: everything, rotation state included.
    const copied = path.join(dir, "copied.db");
    r = cli(["copy", file, copied], {});
    assert.equal(r.status, EXIT.OK, r.stderr);
    const s = new TokenStorage({ storage: "db", path: copied, refreshGracePeriod: 0 });
    try {
      assert.equal(s.getAccessToken("secret-at-1b").refreshToken, "secret-rt-1b");
      assert.equal(s.rotateRefreshToken("secret-rt-1", "x", "y"), null);
      assert.equal(s.getAccessToken("secret-at-1b"), null, "the replay revoked the grant");
    } finally {
      s.close();
    }
    assert.equal(cli(["copy", file, copied]).status, EXIT.REFUSED);
    assert.equal(cli(["copy", path.join(dir, "nope.db"), copied]).status, EXIT.NOT_FOUND);
    assert.equal(cli(["copy", file, file]).status, EXIT.USAGE);
    r = cli(["copy", file, "postgres://u:s3cret@db.invalid:notaport/d"]);
    assert.equal(r.status, EXIT.USAGE, r.stderr);
    noSecrets(r);
  });

  it("a store that cannot be reached exits 1, saying so without the password", () => {
    const r = cli(["stats"], { env: { TOKEN_STORAGE: "postgres", TOKEN_DATABASE_URL: "postgres://u:s3cret@127.0.0.1:1/d?connect_timeout=2" } });
    assert.equal(r.status, EXIT.FAILED, r.stderr);
    assert.match(r.stderr, /ERR_TOKEN_STORAGE_UNAVAILABLE/);
    noSecrets(r);
  });

  it("copy from a SQLite file to PostgreSQL and back, nobody logged out", { skip: PG_URL ? false : "TOKEN_TEST_DATABASE_URL not set" }, () => {
    const schema = freshSchema();
    const pgEnv = { TOKEN_DB_SCHEMA: schema };
    let r = cli(["copy", db, PG_URL, "--json"], { env: pgEnv });
    assert.equal(r.status, EXIT.OK, r.stderr);
    assert.equal(r.json().counts.accessTokens, 4);
    assert.equal(r.json().to.storage, "postgres");
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(PG_URL.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    r = cli(["stats", "--json"], { env: { TOKEN_STORAGE: "postgres", TOKEN_DATABASE_URL: PG_URL, TOKEN_DB_SCHEMA: schema } });
    assert.equal(r.json().totalTokens, 3, r.stderr);
    assert.equal(cli(["copy", db, PG_URL], { env: pgEnv }).status, EXIT.REFUSED);
    // One database and schema on both sides: refused, even with --force (it would empty FROM).
    r = cli(["copy", PG_URL, PG_URL, "--force"], { env: pgEnv });
    assert.equal(r.status, EXIT.USAGE, r.stderr);
    assert.match(r.stderr, /the same store/);
    // The same server by another name (its socket folder spelled with a trailing "/."):
    // still the same store, known by what the server says it is.
    r = cli(["copy", PG_URL, otherName(PG_URL), "--force"], { env: pgEnv });
    assert.equal(r.status, EXIT.USAGE, r.stderr);
    assert.match(r.stderr, /the same store/);
    assert.equal(cli(["stats", "--json"], { env: { TOKEN_STORAGE: "postgres", TOKEN_DATABASE_URL: PG_URL, TOKEN_DB_SCHEMA: schema } }).json().totalTokens, 3);
    const back = path.join(dir, "back.db");
    r = cli(["backup", back], { env: { TOKEN_STORAGE: "postgres", TOKEN_DATABASE_URL: PG_URL, TOKEN_DB_SCHEMA: schema } });
    assert.equal(r.status, EXIT.OK, r.stderr);
    const s = new TokenStorage({ storage: "db", path: back });
    try {
      assert.equal(s.getAccessToken("secret-at-1b").apiKey, "sk-secret");
      assert.equal(s.getRefreshToken("secret-rt-3").accessToken, "secret-at-3");
    } finally {
      s.close();
    }
  });
});
