"use strict";
// Encryption at rest (issue 19) on every store: the keyring checked at start, the store's
// mark (sealed or clear) checked at open, authorization codes and pending authorizations
// sealed, and none of their secrets in the SQLite file, its WAL, or a PostgreSQL dump;
// access and refresh tokens and their API keys sealed on every store (none of them in the
// SQLite file, its WAL, or a PostgreSQL dump).
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const { spawnSync } = require("node:child_process");
const { KINDS, PG_URL, storeOptions, storesPerTest, runNode, TokenStorage } = require("./helpers/setup");

const key = (seed) => Buffer.alloc(32, seed).toString("base64");
const K1 = `k1:${key(1)}`;
const K2 = `k2:${key(2)}`;

/** Tokens and their API keys, random likewise. */
function tokenSecrets() {
  const r = () => crypto.randomBytes(12).toString("hex");
  return { at: `at-${r()}`, rt: `rt-${r()}`, at2: `at-${r()}`, at3: `at-${r()}`, rt3: `rt-${r()}`, apiKey: `sk-${r()}`, apiKey2: `sk-${r()}` };
}

/**
 * What a store holds, as bytes: a SQLite file and its WAL, or a PostgreSQL schema's
 * `pg_dump` (which must hold `table`).
 */
function storedBytes(opts, table) {
  if (opts.storage === "redis") return redisBytes(opts);
  if (opts.path) {
    const file = opts.path;
    assert.ok(fs.existsSync(`${file}-wal`), "the WAL is read too");
    return Buffer.concat([fs.readFileSync(file), fs.readFileSync(`${file}-wal`)]);
  }
  // pg_dump comes with psql, which the PostgreSQL suites use already.
  const dump = spawnSync("pg_dump", ["--data-only", `--schema=${opts.schema}`, PG_URL], { encoding: "buffer" });
  assert.equal(dump.error, undefined);
  assert.equal(dump.status, 0, String(dump.stderr));
  assert.ok(dump.stdout.includes(Buffer.from(table)), `the dump holds the table ${table}`);
  return dump.stdout;
}

/**
 * What a Redis store holds, as bytes: every key under its prefix, with its value (a
 * string, or a hash's, set's or sorted set's members), read with redis-cli.
 */
function redisBytes(opts) {
  const cli = (...a) => {
    const out = spawnSync("redis-cli", ["-u", opts.url, "--raw", ...a], { encoding: "buffer" });
    assert.equal(out.status, 0, String(out.stderr));
    return out.stdout;
  };
  const keys = cli("--scan", "--pattern", `${opts.prefix}*`).toString().split("\n").filter(Boolean);
  assert.ok(keys.length > 0, "the store holds keys");
  const read = { string: ["GET"], hash: ["HGETALL"], set: ["SMEMBERS"], zset: ["ZRANGE", "0", "-1"] };
  return Buffer.concat(keys.flatMap((k) => [Buffer.from(k), cli(...read[cli("TYPE", k).toString().trim()], k)]));
}

/** Secrets as a server would have them: random, so a match in the bytes is no accident. */
function secrets() {
  const r = () => crypto.randomBytes(12).toString("hex");
  return { code: `code-${r()}`, state: `state-${r()}`, verifier: `verifier-${r()}`, apiKey: `sk-${r()}` };
}

describe("the keyring is checked at start", () => {
  it("a malformed keyring is ERR_TOKEN_STORAGE_BAD_ENCRYPTION_KEY from new TokenStorage, never its key", () => {
    const short = Buffer.alloc(16, 7).toString("base64");
    for (const keys of [`k1:${short}`, "k1", `k1:${key(1)},`, `k1:${key(1)},k1:${key(2)}`, "k1:not base64!"]) {
      assert.throws(
        () => new TokenStorage({ encryptionKeys: keys }),
        (err) => err.code === "ERR_TOKEN_STORAGE_BAD_ENCRYPTION_KEY" && !err.message.includes(short) && !err.message.includes(key(2)),
        keys,
      );
    }
    assert.throws(() => new TokenStorage({ encryptionKeys: 5 }), TypeError);
  });

  it("a malformed TOKEN_ENCRYPTION_KEYS makes require throw; an empty one is no encryption", () => {
    const bad = runNode(`try { require(PKG); console.log("loaded"); } catch (e) { console.log(e.code); }`, {
      env: { TOKEN_ENCRYPTION_KEYS: "k1:c2hvcnQ=" },
    });
    assert.equal(bad.stdout.trim(), "ERR_TOKEN_STORAGE_BAD_ENCRYPTION_KEY", bad.stderr);
    const empty = runNode(`const t = require(PKG); t.storePendingAuthorization("s", { a: 1 }); console.log(JSON.stringify(t.consumePendingAuthorization("s")));`, {
      env: { TOKEN_ENCRYPTION_KEYS: " " },
    });
    assert.equal(empty.stdout.trim(), '{"a":1}', empty.stderr);
  });

  it("the module-level store reads TOKEN_ENCRYPTION_KEYS", () => {
    const r = runNode(
      `const t = require(PKG);
       t.storeAuthorizationCode("c-1", "u", "sk-1", "client", "https://a/cb", null, null, ["r"]);
       console.log(t.consumeAuthorizationCode("c-1").apiKey);`,
      { env: { TOKEN_ENCRYPTION_KEYS: K1, TOKEN_STORAGE: "memory" } },
    );
    assert.equal(r.stdout.trim(), "sk-1", r.stderr);
  });
});

for (const kind of KINDS) {
  describe(`${kind} store: secrets at rest`, () => {
    const ctx = storesPerTest();
    const options = () => storeOptions(kind, path.join(ctx.dir, "tokens.db"));

    it("codes and pending authorizations round-trip sealed, once, through both APIs", async () => {
      const s = ctx.open({ ...options(), encryptionKeys: K1 });
      const x = secrets();
      s.storeAuthorizationCode(x.code, "u1", x.apiKey, "client", "https://app/cb", null, null, ["read"]);
      s.storePendingAuthorization(x.state, { codeVerifier: x.verifier });
      const c = s.consumeAuthorizationCode(x.code);
      assert.equal(c.apiKey, x.apiKey);
      assert.equal(c.userId, "u1");
      assert.equal(s.consumeAuthorizationCode(x.code), null);
      assert.deepEqual(s.consumePendingAuthorization(x.state), { codeVerifier: x.verifier });
      assert.equal(s.consumePendingAuthorization(x.state), null);
      const y = secrets();
      await s.promises.storeAuthorizationCode(y.code, "u2", y.apiKey, "client", "https://app/cb", null, null, ["read"]);
      assert.equal((await s.promises.consumeAuthorizationCode(y.code)).apiKey, y.apiKey);
    });

    it("access and refresh tokens round-trip sealed: links, rotation, reuse, deleteUserTokens, cleanup", async () => {
      const s = ctx.open({ ...options(), encryptionKeys: K1, refreshGracePeriod: 0 });
      const t = tokenSecrets();
      const hour = new Date(Date.now() + 3600e3);
      s.storeAccessToken(t.at, t.rt, t.apiKey, "u1", "client", ["read"], hour);
      s.storeAccessToken(t.at2, null, t.apiKey2, "u2", "client", ["read"], new Date(Date.now() + 50));
      const got = s.getAccessToken(t.at);
      assert.equal(got.apiKey, t.apiKey);
      assert.equal(got.refreshToken, t.rt);
      assert.equal(got.userId, "u1");
      assert.equal(s.getRefreshToken(t.rt).accessToken, t.at);
      assert.equal((await s.promises.getAccessToken(t.at)).apiKey, t.apiKey);
      assert.equal(s.getAccessToken(t.at2).refreshToken, null);

      const pair = s.rotateRefreshToken(t.rt, t.at3, t.rt3, hour);
      assert.deepEqual([pair.apiKey, pair.accessToken, pair.refreshToken], [t.apiKey, t.at3, t.rt3]);
      assert.equal(s.getAccessToken(t.at), null);
      assert.equal(s.getAccessToken(t.at3).refreshToken, t.rt3);
      assert.equal(s.getRefreshToken(t.rt3).accessToken, t.at3);
      // The old refresh token again, after the grace period (0): the grant is revoked.
      assert.equal(s.rotateRefreshToken(t.rt, "at-x", "rt-x", hour), null);
      assert.equal(s.getAccessToken(t.at3), null);
      assert.equal(s.getRefreshToken(t.rt3), null);

      s.storeAccessToken(t.at, t.rt, t.apiKey, "u1", "client", ["read"], hour);
      s.deleteUserTokens("u1");
      assert.equal(s.getAccessToken(t.at), null);
      assert.equal(s.getRefreshToken(t.rt), null);
      await new Promise((r) => setTimeout(r, 60));
      assert.equal(s.cleanupExpiredTokens(), 1);
      assert.equal(s.getAccessToken(t.at2), null);
    });

    if (kind === "memory") return; // the rest needs a store that outlives its handle

    it("a sealed store is refused without keys or with other keys; a clear one with keys; rotation works", () => {
      const opts = options();
      const sealed = ctx.open({ ...opts, encryptionKeys: K1 });
      const x = secrets();
      sealed.storeAuthorizationCode(x.code, "u1", x.apiKey, "client", "https://app/cb", null, null, ["read"]);
      sealed.close();
      const refused = (encryptionKeys, words) =>
        assert.throws(
          () => ctx.open({ ...opts, encryptionKeys }).consumeAuthorizationCode(x.code),
          (err) => err.code === "ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH" && words.every((w) => err.message.includes(w)) && !err.message.includes(key(1)),
          String(encryptionKeys),
        );
      refused(undefined, ["k1", "native-token-storage decrypt"]);
      refused(K2, ["k1", "k2", "rekey"]);
      refused(`k1:${key(3)}`, ["k1"]);
      // A new active key in front of the old one: the code sealed under k1 still opens.
      const rotated = ctx.open({ ...opts, encryptionKeys: `${K2},${K1}` });
      assert.equal(rotated.consumeAuthorizationCode(x.code).apiKey, x.apiKey);

      const clearOpts = storeOptions(kind, path.join(ctx.dir, "clear.db"));
      const clear = ctx.open(clearOpts);
      clear.storePendingAuthorization("st", { a: 1 });
      assert.throws(
        () => ctx.open({ ...clearOpts, encryptionKeys: K1 }).consumePendingAuthorization("st"),
        (err) => err.code === "ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH" && err.message.includes("native-token-storage encrypt"),
      );
      assert.deepEqual(clear.consumePendingAuthorization("st"), { a: 1 });
    });

    it("none of the access tokens, refresh tokens (rotated-away ones too) or their API keys is stored as bytes", () => {
      const opts = options();
      const s = ctx.open({ ...opts, encryptionKeys: K1 });
      const all = [];
      const hour = new Date(Date.now() + 3600e3);
      for (let i = 0; i < 20; i++) {
        const t = tokenSecrets();
        all.push(t);
        s.storeAccessToken(t.at, t.rt, t.apiKey, `u${i}`, "client", ["read"], hour);
        s.storeAccessToken(t.at2, null, t.apiKey2, `u${i}`, "client", ["read"], hour);
        if (i % 2) assert.equal(s.rotateRefreshToken(t.rt, t.at3, t.rt3, hour).apiKey, t.apiKey);
        if (i % 5 === 0) s.deleteUserTokens(`u${i}`);
      }
      const bytes = storedBytes(opts, "access_tokens");
      for (const t of all) {
        for (const [what, secret] of Object.entries(t)) {
          assert.equal(bytes.includes(Buffer.from(secret)), false, `${what} ${secret} stored in clear`);
        }
      }
      const t = all[1];
      assert.equal(s.getAccessToken(t.at3).apiKey, t.apiKey);
      assert.equal(s.getRefreshToken(t.rt3).accessToken, t.at3);
    });

    it("a grant's extra (issue 20) is stored sealed on codes and tokens, a rotated token's too; its resource in clear", async () => {
      const opts = options();
      const s = ctx.open({ ...opts, encryptionKeys: K1 });
      const hour = new Date(Date.now() + 3600e3);
      const all = [];
      for (let i = 0; i < 10; i++) {
        const t = tokenSecrets();
        const upstream = `up-${crypto.randomBytes(12).toString("hex")}`;
        all.push(upstream);
        const grant = { resource: "https://mcp.example/mcp", extra: { apiKey: upstream } };
        s.storeAccessToken(t.at, t.rt, t.apiKey, `u${i}`, "client", ["read"], hour, grant);
        s.storeAuthorizationCode(`code-${t.at}`, `u${i}`, t.apiKey, "client", "https://app/cb", null, null, ["read"], 600, grant);
        if (i % 2) assert.equal(s.rotateRefreshToken(t.rt, t.at3, t.rt3, hour).apiKey, t.apiKey);
        const got = s.getAccessToken(i % 2 ? t.at3 : t.at);
        assert.deepEqual([got.resource, got.extra], [grant.resource, grant.extra]);
        if (i === 0) {
          assert.deepEqual((await s.promises.getAccessToken(t.at)).extra, grant.extra);
          assert.deepEqual(s.consumeAuthorizationCode(`code-${t.at}`).extra, grant.extra);
        }
      }
      const bytes = storedBytes(opts, "access_tokens");
      for (const upstream of all) assert.equal(bytes.includes(Buffer.from(upstream)), false, `${upstream} stored in clear`);
      assert.ok(bytes.includes(Buffer.from("https://mcp.example/mcp")), "the resource is kept in clear");
    });

    it("none of the codes, states, verifiers or code API keys is stored as bytes", () => {
      const opts = options();
      const s = ctx.open({ ...opts, encryptionKeys: K1 });
      const all = [];
      for (let i = 0; i < 20; i++) {
        const x = secrets();
        all.push(x);
        s.storeAuthorizationCode(x.code, `u${i}`, x.apiKey, "client", "https://app/cb", null, null, ["read"]);
        s.storePendingAuthorization(x.state, { codeVerifier: x.verifier, apiKey: x.apiKey });
      }
      // Half taken (a deleted row's bytes may stay in the file's free pages: those too).
      for (const x of all.slice(0, 10)) {
        assert.equal(s.consumeAuthorizationCode(x.code).apiKey, x.apiKey);
        assert.equal(s.consumePendingAuthorization(x.state).codeVerifier, x.verifier);
      }
      const bytes = storedBytes(opts, "authorization_codes");
      for (const x of all) {
        for (const [what, secret] of Object.entries(x)) {
          assert.equal(bytes.includes(Buffer.from(secret)), false, `${what} ${secret} stored in clear`);
        }
      }
      for (const x of all.slice(10)) {
        assert.equal(s.consumeAuthorizationCode(x.code).apiKey, x.apiKey);
      }
    });
  });
}
