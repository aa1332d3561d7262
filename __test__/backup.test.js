"use strict";
// `backup(destination, options)` on every store (issue 19): the file is a SQLite store of
// this package holding everything (tokens, refresh tokens and their rotation state, codes,
// clients, pending authorizations), made 0600, checked; an existing file is refused unless
// told; the Promise form does the same off the JS thread; arguments are checked; a sealed
// store's backup holds its rows as they are and opens with its keys only.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { KINDS, storeOptions, storesPerTest } = require("./helpers/setup");

const HOUR = 3600e3;

/** One of everything in `s`. */
function fill(s) {
  const later = Date.now() + HOUR;
  s.storeAccessToken("at-1", "rt-1", "sk-1", "user-1", "client-1", ["read"], later);
  s.storeAccessToken("at-2", null, "sk-2", null, "client-1", [], null);
  s.storeAccessToken("at-old", "rt-old", "sk-3", "user-2", "client-2", [], Date.now() - 1000);
  const rotated = s.rotateRefreshToken("rt-1", "at-1b", "rt-1b", later);
  assert.equal(rotated.accessToken, "at-1b");
  s.storeAuthorizationCode("code-1", "user-1", "sk-1", "client-1", "https://app.example/cb", null, null, ["read"], 600);
  s.storePendingAuthorization("state-1", { verifier: "v" }, 600);
  const client = s.registerClient({ redirect_uris: ["https://app.example/cb"] });
  return { clientId: client.client_id };
}

/** What `fill` left, read from `s`. */
function check(s, { clientId }) {
  const t = s.getAccessToken("at-1b");
  assert.equal(t.apiKey, "sk-1");
  assert.equal(t.refreshToken, "rt-1b");
  assert.equal(s.getAccessToken("at-2").userId, null);
  assert.equal(s.getRefreshToken("rt-1b").accessToken, "at-1b");
  assert.equal(s.getClient(clientId).client_id, clientId);
  assert.equal(s.consumeAuthorizationCode("code-1").userId, "user-1");
  assert.deepEqual(s.consumePendingAuthorization("state-1"), { verifier: "v" });
  assert.equal(s.getStats().totalTokens, 2);
}

for (const kind of KINDS) {
  describe(`backup, ${kind} store`, () => {
    const ctx = storesPerTest();

    it("writes a 0600 SQLite file of this package that holds everything, rotation state included", () => {
      const s = ctx.open(storeOptions(kind, path.join(ctx.dir, "tokens.db")));
      const filled = fill(s);
      const file = path.join(ctx.dir, "backup.db");
      const report = s.backup(file);
      assert.equal(report.path, file);
      assert.equal(report.counts.accessTokens, 3);
      assert.equal(report.counts.retiredRefreshTokens, 1);
      assert.equal(report.counts.clients, 1);
      assert.equal(report.bytes, fs.statSync(file).size);
      assert.ok(report.ms >= 0);
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      assert.deepEqual(fs.readdirSync(ctx.dir).filter((f) => f.startsWith("backup")), ["backup.db"], "no -wal, -shm or temporary file left");
      const restored = ctx.open({ storage: "db", path: file, refreshGracePeriod: 0 });
      check(restored, filled);
      // The rotated-away refresh token came along: presented again (no grace period), it
      // revokes the grant.
      const replay = restored.rotateRefreshToken("rt-1", "at-x", "rt-x");
      assert.equal(replay, null);
      assert.equal(restored.getAccessToken("at-1b"), null);
      check(s, filled); // the store itself is untouched
    });

    it("refuses a file already there unless told; the Promise form; relative paths", async () => {
      const s = ctx.open(storeOptions(kind, path.join(ctx.dir, "tokens.db")));
      const filled = fill(s);
      const file = path.join(ctx.dir, "backup.db");
      fs.writeFileSync(file, "keep");
      assert.throws(() => s.backup(file), (e) => e.code === "ERR_TOKEN_STORAGE_OPEN" && /already there/.test(e.message));
      await assert.rejects(s.promises.backup(file), { code: "ERR_TOKEN_STORAGE_OPEN" });
      assert.equal(fs.readFileSync(file, "utf8"), "keep");
      const report = await s.promises.backup(file, { overwrite: true, batchSize: 1 });
      assert.equal(report.counts.accessTokens, 3);
      check(ctx.open({ storage: "db", path: file }), filled);
      const cwd = process.cwd();
      process.chdir(ctx.dir);
      try {
        assert.equal(s.backup("relative.db").path, path.join(fs.realpathSync(ctx.dir), "relative.db").replace(fs.realpathSync(ctx.dir), ctx.dir));
      } finally {
        process.chdir(cwd);
      }
    });

    it("of a sealed store (encryption keys): its rows as they are with its mark; opens with the same keys only", () => {
      const keys = `k1:${Buffer.alloc(32, 7).toString("base64")}`;
      const other = `k1:${Buffer.alloc(32, 8).toString("base64")}`;
      const s = ctx.open({ ...storeOptions(kind, path.join(ctx.dir, "tokens.db")), encryptionKeys: keys });
      const later = Date.now() + HOUR;
      const secrets = ["access-4b1d9e0f7a", "refresh-c83e2a6b19", "rotated-5f0d7c1e93", "newrefresh-91a7e4d2", "sk-apikey-2e7c90b4f1", "code-77d1e0a9c3", "state-a90c3e7d15", "verifier-3c9e1f7b"];
      const [at, rt, at2, rt2, apiKey, code, state, verifier] = secrets;
      s.storeAccessToken(at, rt, apiKey, "user-1", "client-1", ["read"], later);
      assert.equal(s.rotateRefreshToken(rt, at2, rt2, later).accessToken, at2);
      s.storeAuthorizationCode(code, "user-1", apiKey, "client-1", "https://app.example/cb", null, null, ["read"], 600);
      s.storePendingAuthorization(state, { verifier }, 600);
      const file = path.join(ctx.dir, "backup.db");
      assert.equal(s.backup(file).counts.accessTokens, 1);
      // The file and its WAL, if one were left beside it (the memory store keeps its tokens
      // in clear under keys: they are sealed on their way out).
      const bytes = Buffer.concat([file, `${file}-wal`].filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f)));
      for (const secret of secrets) assert.equal(bytes.includes(secret), false, `${secret} is in the backup as bytes`);
      for (const refused of [{}, { encryptionKeys: other }]) {
        const wrong = ctx.open({ storage: "db", path: file, ...refused });
        assert.throws(() => wrong.getAccessToken(at2), { code: "ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH" });
        wrong.close();
      }
      const restored = ctx.open({ storage: "db", path: file, encryptionKeys: keys, refreshGracePeriod: 0 });
      assert.equal(restored.getAccessToken(at2).apiKey, apiKey);
      assert.equal(restored.getAccessToken(at2).refreshToken, rt2);
      assert.equal(restored.getRefreshToken(rt2).accessToken, at2);
      assert.equal(restored.consumeAuthorizationCode(code).apiKey, apiKey);
      assert.deepEqual(restored.consumePendingAuthorization(state), { verifier });
      // The rotated-away refresh token came along under its digest: a replay revokes the grant.
      assert.equal(restored.rotateRefreshToken(rt, "at-x", "rt-x"), null);
      assert.equal(restored.getAccessToken(at2), null);
      assert.equal(s.getAccessToken(at2).apiKey, apiKey, "the store itself is untouched");
    });

    it("checks its arguments", () => {
      const s = ctx.open(storeOptions(kind, path.join(ctx.dir, "tokens.db")));
      for (const bad of [undefined, null, "", 42, {}]) assert.throws(() => s.backup(bad), TypeError, String(bad));
      const file = path.join(ctx.dir, "b.db");
      assert.throws(() => s.backup(file, { overwrite: "yes" }), TypeError);
      assert.throws(() => s.backup(file, { batchSize: 0 }), TypeError);
      assert.throws(() => s.backup(file, []), TypeError);
      assert.throws(() => s.backup(ctx.dir), { code: "ERR_TOKEN_STORAGE_OPEN" });
      assert.throws(() => s.backup(path.join(ctx.dir, "no-such-folder", "b.db")), { code: "ERR_TOKEN_STORAGE_OPEN" });
      assert.equal(fs.existsSync(file), false);
    });
  });
}
