"use strict";
// A --schema (or TOKEN_DB_SCHEMA) naming a PostgreSQL schema that holds no store of this
// package (issue 19): the read-only and maintenance commands (stats, cleanup, revoke,
// backup, the FROM of copy) refuse it, exit 3, and create nothing; restore and the TO of
// copy create it as before.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { PG_URL, TokenStorage, tempDir, removeDir, freshSchema } = require("./helpers/setup");
const { EXIT } = require("../lib/cli");
const { runCli } = require("./helpers/cli");

const cli = (args, env = {}) => runCli(args, { env });

/** Whether the schema holds a store, asked without creating it. */
function exists(schema) {
  const s = new TokenStorage({ storage: "postgres", url: PG_URL, schema, cleanupInterval: 0 });
  try {
    return s._native.storeExists();
  } finally {
    s.close();
  }
}

describe("a PostgreSQL schema that does not exist", { skip: PG_URL ? false : "TOKEN_TEST_DATABASE_URL not set" }, () => {
  it("is refused by stats, cleanup, revoke, backup and copy's FROM (exit 3), and not created", () => {
    const dir = tempDir("nts-schema-");
    try {
      const typo = freshSchema();
      const env = { TOKEN_STORAGE: "postgres", TOKEN_DATABASE_URL: PG_URL };
      const file = path.join(dir, "backup.db");
      for (const args of [["stats"], ["cleanup"], ["revoke", "--user", "alice"], ["backup", file], ["copy", PG_URL, path.join(dir, "copy.db")]]) {
        const r = cli([...args, "--schema", typo, "--json"], env);
        assert.equal(r.status, EXIT.NOT_FOUND, `${args[0]}: ${r.stderr}`);
        assert.match(r.stderr, new RegExp(`no token store in schema "${typo}"`), args[0]);
        assert.equal(r.json().error.exit, EXIT.NOT_FOUND);
        assert.equal(r.stdout.includes(PG_URL) || r.stderr.includes(PG_URL), false, "no connection string printed");
      }
      // The environment's schema too.
      assert.equal(cli(["stats"], { ...env, TOKEN_DB_SCHEMA: typo }).status, EXIT.NOT_FOUND);
      assert.equal(exists(typo), false, "nothing created");
      assert.equal(fs.existsSync(file), false);
      assert.equal(fs.existsSync(path.join(dir, "copy.db")), false);

      // A store that is there: the commands work; restore and copy's TO create a new one.
      const db = path.join(dir, "tokens.db");
      const s = new TokenStorage({ storage: "db", path: db });
      s.storeAccessToken("secret-at", "secret-rt", "sk-secret", "alice", "app", [], null);
      s.close();
      const restored = freshSchema();
      let r = cli(["restore", db, "--schema", restored, "--quiet"], env);
      assert.equal(r.status, EXIT.OK, r.stderr);
      assert.equal(exists(restored), true);
      r = cli(["stats", "--schema", restored, "--json"], env);
      assert.equal(r.status, EXIT.OK, r.stderr);
      assert.equal(r.json().totalTokens, 1);
      const copied = freshSchema();
      assert.equal(cli(["copy", db, PG_URL, "--quiet"], { TOKEN_DB_SCHEMA: copied }).status, EXIT.OK);
      assert.equal(cli(["revoke", "--user", "alice", "--schema", copied, "--json"], env).json().revoked, 1);
    } finally {
      removeDir(dir);
    }
  });
});
