"use strict";
// encrypt, decrypt and rekey of the command line (issue 19), end to end in a child process on a
// SQLite file: every record read back unchanged through a store with the keys (refresh-token
// and code lookups, a rotation after), and without them after decrypt; a file already sealed,
// in clear, a wrong or missing key, a failed final check and a killed conversion each leave
// the file as it was; and none of the secrets in the sealed file or its WAL.
const { describe, it, beforeEach, afterEach } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { spawn } = require("node:child_process");
const { TokenStorage, tempDir, removeDir, cleanEnv } = require("./helpers/setup");
const { EXIT } = require("../lib/cli");
const { BIN, runCli: cli } = require("./helpers/cli");

const key = (seed) => Buffer.alloc(32, seed).toString("base64");
const K1 = `k1:${key(1)}`;
const HOUR = 3600e3;

/** A clear file with tokens (one rotated), one without a refresh token, a code, a pending login. */
function seed(file, n = 5) {
  const s = new TokenStorage({ storage: "db", path: file, refreshGracePeriod: 0 });
  const later = new Date(Date.now() + HOUR);
  for (let i = 0; i < n; i++) s.storeAccessToken(`secret-at-${i}`, `secret-rt-${i}`, `sk-secret-${i}`, `user-${i % 2}`, "app", ["read"], later);
  s.storeAccessToken("secret-at-solo", null, "sk-secret-solo", null, "app", [], later);
  s.rotateRefreshToken("secret-rt-0", "secret-at-0b", "secret-rt-0b", later);
  s.storeAuthorizationCode("secret-code", "user-0", "sk-secret-code", "app", "https://app/cb", null, null, ["read"]);
  s.storePendingAuthorization("secret-state", { codeVerifier: "secret-verifier" });
  s.close();
}

/**
 * A file's state, to compare two: its bytes, once no connection holds it (every process
 * that used it has closed it, which folds its WAL in and removes it).
 */
function rowsOf(file) {
  assert.equal(fs.existsSync(`${file}-wal`), false, "the WAL is folded in");
  return require("node:crypto").createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

function noSecrets(r) {
  for (const out of [r.stdout, r.stderr]) assert.doesNotMatch(out, /secret-|sk-secret|AQEBAQ/, "no token or key printed");
}

describe("encrypt and decrypt", () => {
  let dir;
  let db;
  let env;
  beforeEach(() => {
    dir = tempDir("nts-convert-");
    db = path.join(dir, "tokens.db");
    seed(db);
    env = { TOKEN_STORAGE: "db", TOKEN_DB_PATH: db, TOKEN_ENCRYPTION_KEYS: K1 };
  });
  afterEach(() => removeDir(dir));

  it("round trip: clear, encrypt, every record read with the keys, rotation, decrypt, read without keys", () => {
    const r = cli(["encrypt", "--json"], { env });
    assert.equal(r.status, EXIT.OK, r.stderr);
    noSecrets(r);
    const out = r.json();
    assert.equal(out.direction, "encrypt");
    assert.equal(out.activeKeyId, "k1");
    assert.equal(out.counts.accessTokens, 6);
    assert.equal(out.counts.authorizationCodes, 1);

    // Without keys the file is refused, naming decrypt.
    assert.throws(() => new TokenStorage({ storage: "db", path: db }).open(), (err) => err.code === "ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH" && err.message.includes("decrypt"));

    const s = new TokenStorage({ storage: "db", path: db, encryptionKeys: K1, refreshGracePeriod: 0 });
    for (let i = 1; i < 5; i++) {
      const t = s.getAccessToken(`secret-at-${i}`);
      assert.equal(t.apiKey, `sk-secret-${i}`);
      assert.equal(t.refreshToken, `secret-rt-${i}`);
      assert.equal(t.userId, `user-${i % 2}`);
      assert.equal(s.getRefreshToken(`secret-rt-${i}`).accessToken, `secret-at-${i}`);
    }
    assert.equal(s.getAccessToken("secret-at-0"), null);
    assert.equal(s.getAccessToken("secret-at-0b").refreshToken, "secret-rt-0b");
    assert.equal(s.getAccessToken("secret-at-solo").refreshToken, null);
    assert.equal(s.getStats().totalTokens, 6);
    // The rotated-away token is a replay (the grant is revoked); the others rotate.
    assert.equal(s.rotateRefreshToken("secret-rt-0", "x-at", "x-rt", new Date(Date.now() + HOUR)), null);
    assert.equal(s.getAccessToken("secret-at-0b"), null);
    const pair = s.rotateRefreshToken("secret-rt-1", "secret-at-1b", "secret-rt-1b", new Date(Date.now() + HOUR));
    assert.equal(pair.apiKey, "sk-secret-1");
    assert.equal(s.consumeAuthorizationCode("secret-code").apiKey, "sk-secret-code");
    s.storeAuthorizationCode("secret-code-2", "user-0", "sk-secret-code", "app", "https://app/cb", null, null, ["read"]);
    assert.deepEqual(s.consumePendingAuthorization("secret-state"), { codeVerifier: "secret-verifier" });
    s.close();

    const d = cli(["decrypt", "--json"], { env });
    assert.equal(d.status, EXIT.OK, d.stderr);
    noSecrets(d);
    assert.equal(d.json().droppedAuthorizationCodes, 1);
    const c = new TokenStorage({ storage: "db", path: db, refreshGracePeriod: 0 });
    assert.equal(c.getAccessToken("secret-at-1b").apiKey, "sk-secret-1");
    assert.equal(c.getRefreshToken("secret-rt-1b").accessToken, "secret-at-1b");
    assert.equal(c.getAccessToken("secret-at-2").refreshToken, "secret-rt-2");
    assert.equal(c.rotateRefreshToken("secret-rt-2", "secret-at-2b", "secret-rt-2b", new Date(Date.now() + HOUR)).apiKey, "sk-secret-2");
    assert.equal(c.getAccessToken("secret-at-solo").apiKey, "sk-secret-solo");
    c.close();
    // Opened with keys again: refused, naming encrypt.
    assert.throws(() => new TokenStorage({ storage: "db", path: db, encryptionKeys: K1 }).open(), (err) => err.message.includes("native-token-storage encrypt"));
  });

  it("a store without keys, opened before encrypt sealed its file: its next write is refused (coded, nothing written), its reads find nothing; after decrypt it writes again", () => {
    const keyless = new TokenStorage({ storage: "db", path: db, cleanupInterval: 0 });
    assert.equal(keyless.getAccessToken("secret-at-1").apiKey, "sk-secret-1");
    assert.equal(cli(["encrypt"], { env }).status, EXIT.OK);
    const sealed = new TokenStorage({ storage: "db", path: db, encryptionKeys: K1, cleanupInterval: 0 });
    const before = sealed.getStats().totalTokens;
    for (const write of [
      () => keyless.storeAccessToken("secret-at-late", "secret-rt-late", "sk-secret-late", "user-9", "app", [], null),
      () => keyless.storeAuthorizationCode("secret-code-late", "user-9", "sk-secret-late", "app", "https://app/cb", null, null, []),
      () => keyless.storePendingAuthorization("secret-state-late", { v: 1 }),
    ]) {
      assert.throws(write, (err) => err.code === "ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH" && !/secret-/.test(err.message));
    }
    assert.equal(keyless.getAccessToken("secret-at-1"), null);
    assert.equal(keyless.consumeAuthorizationCode("secret-code"), null);
    assert.equal(sealed.getStats().totalTokens, before, "nothing written");
    assert.equal(sealed.getAccessToken("secret-at-late"), null);
    sealed.close();
    assert.equal(cli(["decrypt"], { env }).status, EXIT.OK);
    keyless.storeAccessToken("secret-at-late", null, "sk-secret-late", "user-9", "app", [], null);
    assert.equal(keyless.getAccessToken("secret-at-late").apiKey, "sk-secret-late");
    keyless.close();
  });

  it("none of the secrets in the sealed file nor its WAL", () => {
    assert.equal(cli(["encrypt"], { env }).status, EXIT.OK);
    // A store with the keys writes more (WAL), checkpointed by its close.
    const s = new TokenStorage({ storage: "db", path: db, encryptionKeys: K1 });
    s.storeAccessToken("secret-at-new", "secret-rt-new", "sk-secret-new", "u", "app", [], new Date(Date.now() + HOUR));
    const files = [db, `${db}-wal`].filter((f) => fs.existsSync(f));
    const during = files.map((f) => fs.readFileSync(f));
    s.close();
    for (const bytes of [...during, fs.readFileSync(db)]) {
      for (const secret of ["secret-at-", "secret-rt-", "sk-secret", "secret-code", "secret-state", "secret-verifier"]) {
        assert.equal(bytes.includes(Buffer.from(secret)), false, secret);
      }
    }
  });

  it("refusals leave the file as it was: sealed twice, clear decrypted, wrong or missing key, PostgreSQL", () => {
    const clear = rowsOf(db);
    const wrong = cli(["decrypt"], { env });
    assert.equal(wrong.status, EXIT.REFUSED, wrong.stderr);
    assert.match(wrong.stderr, /not sealed/);
    assert.equal(cli(["encrypt"], { env: { ...env, TOKEN_ENCRYPTION_KEYS: undefined } }).status, EXIT.USAGE);
    assert.equal(cli(["encrypt"], { env: { ...env, TOKEN_ENCRYPTION_KEYS: "k1:c2hvcnQ=" } }).status, EXIT.USAGE);
    const pg = cli(["encrypt", "--url", "postgres://h/db"], { env: { TOKEN_ENCRYPTION_KEYS: K1 } });
    assert.equal(pg.status, EXIT.USAGE);
    assert.match(pg.stderr, /PostgreSQL store is not available yet/);
    assert.equal(cli(["encrypt", "--path", path.join(dir, "missing.db")], { env: { TOKEN_ENCRYPTION_KEYS: K1 } }).status, EXIT.NOT_FOUND);
    assert.equal(fs.existsSync(path.join(dir, "missing.db")), false);
    assert.equal(rowsOf(db), clear);

    assert.equal(cli(["encrypt"], { env }).status, EXIT.OK);
    const sealed = rowsOf(db);
    const again = cli(["encrypt"], { env });
    assert.equal(again.status, EXIT.REFUSED);
    assert.match(again.stderr, /already sealed.*ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH/);
    for (const keys of [`k2:${key(2)}`, `k1:${key(2)}`]) {
      const r = cli(["decrypt"], { env: { ...env, TOKEN_ENCRYPTION_KEYS: keys } });
      assert.equal(r.status, EXIT.CANNOT_DECRYPT, r.stderr);
      noSecrets(r);
    }
    // --keys-file (here stdin) gives the keys instead of the environment.
    const viaFile = cli(["decrypt", "--keys-file", "-"], { env: { ...env, TOKEN_ENCRYPTION_KEYS: undefined }, input: `k9:${key(9)}\n` });
    assert.equal(viaFile.status, EXIT.CANNOT_DECRYPT, viaFile.stderr);
    assert.equal(rowsOf(db), sealed);
  });

  it("rekey: re-sealed under the new key, the old one then retired; refused on a clear file", () => {
    const K2 = `k2:${key(2)}`;
    const clear = rowsOf(db);
    const refused = cli(["rekey"], { env: { ...env, TOKEN_ENCRYPTION_KEYS: `${K2},${K1}` } });
    assert.equal(refused.status, EXIT.REFUSED, refused.stderr);
    assert.equal(rowsOf(db), clear);
    assert.equal(cli(["encrypt"], { env }).status, EXIT.OK);
    const sealed = rowsOf(db);
    assert.equal(cli(["rekey"], { env: { ...env, NTS_TEST_CONVERT_FAIL: "verify", TOKEN_ENCRYPTION_KEYS: `${K2},${K1}` } }).status, EXIT.FAILED);
    assert.equal(rowsOf(db), sealed);
    const r = cli(["rekey", "--json"], { env: { ...env, TOKEN_ENCRYPTION_KEYS: `${K2},${K1}` } });
    assert.equal(r.status, EXIT.OK, r.stderr);
    noSecrets(r);
    assert.equal(r.json().activeKeyId, "k2");
    const s = new TokenStorage({ storage: "db", path: db, encryptionKeys: K2, refreshGracePeriod: 0 });
    assert.equal(s.getAccessToken("secret-at-3").apiKey, "sk-secret-3");
    assert.equal(s.getRefreshToken("secret-rt-3").accessToken, "secret-at-3");
    assert.equal(s.rotateRefreshToken("secret-rt-0b", "secret-at-0c", "secret-rt-0c", new Date(Date.now() + HOUR)).apiKey, "sk-secret-0");
    s.close();
    // Back to clear with the new key alone.
    assert.equal(cli(["decrypt"], { env: { ...env, TOKEN_ENCRYPTION_KEYS: K2 } }).status, EXIT.OK);
    const c = new TokenStorage({ storage: "db", path: db });
    assert.equal(c.getAccessToken("secret-at-0c").refreshToken, "secret-rt-0c");
    c.close();
  });

  it("a failed final check rolls everything back, both ways", () => {
    const clear = rowsOf(db);
    const r = cli(["encrypt"], { env: { ...env, NTS_TEST_CONVERT_FAIL: "verify" } });
    assert.equal(r.status, EXIT.FAILED, r.stderr);
    assert.match(r.stderr, /do not match.*ERR_TOKEN_STORAGE_INTERNAL/);
    assert.equal(rowsOf(db), clear);
    assert.equal(cli(["encrypt"], { env }).status, EXIT.OK);
    const sealed = rowsOf(db);
    assert.equal(cli(["decrypt"], { env: { ...env, NTS_TEST_CONVERT_FAIL: "verify" } }).status, EXIT.FAILED);
    assert.equal(rowsOf(db), sealed);
  });

  it("a conversion killed mid-way leaves the file as it was", async () => {
    removeDir(dir);
    dir = tempDir("nts-convert-");
    db = path.join(dir, "tokens.db");
    seed(db, 20000);
    env.TOKEN_DB_PATH = db;
    const clear = rowsOf(db);
    const child = spawn(process.execPath, [BIN, "encrypt"], { env: cleanEnv(env), stdio: "ignore" });
    // Killed once its transaction has begun writing (the WAL grows), before it can commit.
    const wal = `${db}-wal`;
    const started = Date.now();
    while (Date.now() - started < 20000 && !(fs.existsSync(wal) && fs.statSync(wal).size > 64 * 1024)) {
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    child.kill("SIGKILL");
    await new Promise((resolve) => child.on("exit", resolve));
    assert.ok(fs.existsSync(wal), "killed with its transaction open");
    // The next opener finds the uncommitted frames ignored: the file in clear, as it was.
    const s = new TokenStorage({ storage: "db", path: db });
    assert.equal(s.getAccessToken("secret-at-7").apiKey, "sk-secret-7");
    assert.equal(s.getStats().totalTokens, 20001);
    s.close();
    assert.equal(rowsOf(db), clear);
  });
});
