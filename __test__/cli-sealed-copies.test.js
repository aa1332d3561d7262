"use strict";
// backup, restore and copy of a sealed store (issue 19, encryption at rest), end to end in a
// child process: the rows go as they are (digests and sealed values) with the store's mark,
// so the backup or target holds none of the tokens or API keys as bytes, opens with the same
// TOKEN_ENCRYPTION_KEYS and is refused without them or with others; a restore or copy keeps
// rotation and reuse detection working; sealed into a clear store that holds rows (or the
// reverse) is refused, the target unchanged, unless --force, which replaces its rows and
// mark; an age-encrypted backup of a sealed store round-trips; no key is ever printed.
const { describe, it, beforeEach, afterEach } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { PG_URL, TokenStorage, tempDir, removeDir, freshSchema } = require("./helpers/setup");
const { EXIT } = require("../lib/cli");
const { runCli } = require("./helpers/cli");

const HOUR = 3600e3;
const KEYS = `k1:${Buffer.alloc(32, 11).toString("base64")}`;
const OTHER_KEYS = `k1:${Buffer.alloc(32, 12).toString("base64")}`;
const PASSPHRASE = "pass-phrase-s3cret sealed copies";
const [AT, RT, AT2, RT2, API_KEY, CODE] = ["secret-at-9e1c4b", "secret-rt-70d2fa", "secret-at2-5b8e13", "secret-rt2-c41a97", "sk-secret-3f6d20", "secret-code-8a2e5c"];
const SECRETS = [AT, RT, AT2, RT2, API_KEY, CODE];

function cli(args, { env = {} } = {}) {
  const r = runCli(args, { env: { TMPDIR: env.TMPDIR ?? os.tmpdir(), ...env } });
  for (const out of [r.stdout, r.stderr]) {
    for (const s of [...SECRETS, PASSPHRASE, KEYS.slice(3), OTHER_KEYS.slice(3)]) assert.equal(out.includes(s), false, "no token, key or passphrase printed");
  }
  return r;
}

/** A SQLite store sealed under KEYS: a rotated grant (its old refresh token rotated away), a code. */
function seedSealed(file) {
  const s = new TokenStorage({ storage: "db", path: file, encryptionKeys: KEYS });
  const later = Date.now() + HOUR;
  s.storeAccessToken(AT, RT, API_KEY, "alice", "app", ["read"], later);
  assert.equal(s.rotateRefreshToken(RT, AT2, RT2, later).accessToken, AT2);
  s.storeAuthorizationCode(CODE, "alice", API_KEY, "app", "https://app.example/cb", null, null, [], 600);
  s.close();
}

/** Whether the file (and its WAL) holds any of the secrets as bytes. */
function secretsIn(file) {
  const bytes = Buffer.concat([fs.readFileSync(file), fs.existsSync(`${file}-wal`) ? fs.readFileSync(`${file}-wal`) : Buffer.alloc(0)]);
  return SECRETS.filter((s) => bytes.includes(s));
}

/** The store's row counts, opened with `keys` (or without). */
function rows(options, keys) {
  const s = new TokenStorage({ ...options, encryptionKeys: keys, cleanupInterval: 0 });
  try {
    return JSON.parse(s._native.rowCounts());
  } finally {
    s.close();
  }
}

/**
 * The sealed grant, read through a store opened with KEYS: its token and API key; then a
 * replay of the refresh token rotated away revokes it (reuse detection came along).
 */
function checkSealed(options) {
  const s = new TokenStorage({ ...options, encryptionKeys: KEYS, refreshGracePeriod: 0, cleanupInterval: 0 });
  try {
    const t = s.getAccessToken(AT2);
    assert.equal(t?.apiKey, API_KEY);
    assert.equal(t.refreshToken, RT2);
    assert.equal(s.getRefreshToken(RT2).accessToken, AT2);
    assert.equal(s.consumeAuthorizationCode(CODE).apiKey, API_KEY);
    assert.equal(s.rotateRefreshToken(RT, "at-x", "rt-x"), null, "the replay is refused");
    assert.equal(s.getAccessToken(AT2), null, "and revokes the grant");
  } finally {
    s.close();
  }
}

/** Opening the store without keys, and with other keys, is refused. */
function refusedWithoutItsKeys(options) {
  for (const keys of [undefined, OTHER_KEYS]) {
    const s = new TokenStorage({ ...options, encryptionKeys: keys, cleanupInterval: 0 });
    try {
      assert.throws(() => s.getAccessToken(AT2), { code: "ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH" });
    } finally {
      s.close();
    }
  }
}

describe("backup, restore and copy of a sealed store", () => {
  let dir;
  let db;
  let env;
  beforeEach(() => {
    dir = tempDir("nts-sealed-copies-");
    db = path.join(dir, "tokens.db");
    seedSealed(db);
    env = { TOKEN_STORAGE: "db", TOKEN_DB_PATH: db, TOKEN_ENCRYPTION_KEYS: KEYS };
  });
  afterEach(() => removeDir(dir));

  it("backup: none of the secrets as bytes; opens with the keys only; restore round-trips it, rotation and reuse detection included", () => {
    const file = path.join(dir, "backup.db");
    const without = cli(["backup", file, "--quiet"], { env: { TOKEN_STORAGE: "db", TOKEN_DB_PATH: db } });
    assert.equal(without.status, EXIT.FAILED, without.stderr);
    assert.match(without.stderr, /ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH/);
    assert.equal(fs.existsSync(file), false, "no backup without the keys");
    const r = cli(["backup", file, "--quiet", "--json"], { env });
    assert.equal(r.status, EXIT.OK, r.stderr);
    assert.equal(r.json().counts.accessTokens, 1);
    assert.deepEqual(secretsIn(file), []);
    refusedWithoutItsKeys({ storage: "db", path: file });

    const target = path.join(dir, "restored.db");
    const targetEnv = { TOKEN_STORAGE: "db", TOKEN_DB_PATH: target, TOKEN_ENCRYPTION_KEYS: KEYS };
    const restore = cli(["restore", file, "--quiet", "--json"], { env: targetEnv });
    assert.equal(restore.status, EXIT.OK, restore.stderr);
    assert.equal(restore.json().sealed, true);
    assert.deepEqual(secretsIn(target), []);
    refusedWithoutItsKeys({ storage: "db", path: target });
    checkSealed({ storage: "db", path: target });
    checkSealed({ storage: "db", path: file });
  });

  it("restore of a sealed backup into a clear store that holds rows (or of a clear one into a sealed store) is refused, the target unchanged, unless --force", () => {
    const file = path.join(dir, "backup.db");
    assert.equal(cli(["backup", file, "--quiet"], { env }).status, EXIT.OK);
    const clear = path.join(dir, "clear.db");
    const c = new TokenStorage({ storage: "db", path: clear });
    c.storeAccessToken("clear-token", null, "sk-clear", "bob", "app", [], null);
    c.close();
    const before = fs.readFileSync(clear);
    const clearEnv = { TOKEN_STORAGE: "db", TOKEN_DB_PATH: clear };
    // With the keys: the target holds rows.
    const refused = cli(["restore", file, "--quiet"], { env: { ...clearEnv, TOKEN_ENCRYPTION_KEYS: KEYS } });
    assert.equal(refused.status, EXIT.REFUSED, refused.stderr);
    // Without: the sealed backup does not open.
    const noKeys = cli(["restore", file, "--quiet"], { env: clearEnv });
    assert.equal(noKeys.status, EXIT.FAILED, noKeys.stderr);
    assert.match(noKeys.stderr, /ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH/);
    assert.deepEqual(fs.readFileSync(clear), before, "the target is unchanged");
    const kept = new TokenStorage({ storage: "db", path: clear, cleanupInterval: 0 });
    assert.equal(kept.getAccessToken("clear-token").apiKey, "sk-clear");
    kept.close();
    // The reverse: a clear backup into the sealed store.
    const clearBackup = path.join(dir, "clear-backup.db");
    assert.equal(cli(["backup", clearBackup, "--quiet"], { env: clearEnv }).status, EXIT.OK);
    const sealedBefore = rows({ storage: "db", path: db }, KEYS);
    const reverse = cli(["restore", clearBackup, "--quiet"], { env: { TOKEN_STORAGE: "db", TOKEN_DB_PATH: db } });
    assert.equal(reverse.status, EXIT.REFUSED, reverse.stderr);
    assert.deepEqual(rows({ storage: "db", path: db }, KEYS), sealedBefore);
    checkSealed({ storage: "db", path: db });
    // --force replaces the target's rows and its mark: the clear store is now the sealed one.
    const forced = cli(["restore", file, "--quiet", "--force"], { env: { ...clearEnv, TOKEN_ENCRYPTION_KEYS: KEYS } });
    assert.equal(forced.status, EXIT.OK, forced.stderr);
    refusedWithoutItsKeys({ storage: "db", path: clear });
    checkSealed({ storage: "db", path: clear });
  });

  it("copy between SQLite files, and into PostgreSQL and back: the mark travels with the rows", () => {
    const copyTo = path.join(dir, "copy.db");
    const r = cli(["copy", db, copyTo, "--quiet", "--json"], { env: { TOKEN_ENCRYPTION_KEYS: KEYS } });
    assert.equal(r.status, EXIT.OK, r.stderr);
    assert.deepEqual(secretsIn(copyTo), []);
    refusedWithoutItsKeys({ storage: "db", path: copyTo });
    checkSealed({ storage: "db", path: copyTo });
    const noKeys = cli(["copy", db, path.join(dir, "nope.db"), "--quiet"]);
    assert.equal(noKeys.status, EXIT.FAILED, noKeys.stderr);
    assert.equal(fs.existsSync(path.join(dir, "nope.db")), false, "no target created");
    if (!PG_URL) return;
    const schema = freshSchema();
    const pg = { storage: "postgres", url: PG_URL, schema };
    const into = cli(["copy", db, PG_URL, "--schema", schema, "--quiet"], { env: { TOKEN_ENCRYPTION_KEYS: KEYS } });
    assert.equal(into.status, EXIT.OK, into.stderr);
    refusedWithoutItsKeys(pg);
    const back = path.join(dir, "back.db");
    const out = cli(["copy", PG_URL, back, "--schema", schema, "--quiet"], { env: { TOKEN_ENCRYPTION_KEYS: KEYS } });
    assert.equal(out.status, EXIT.OK, out.stderr);
    assert.deepEqual(secretsIn(back), []);
    checkSealed({ storage: "db", path: back });
    checkSealed(pg);
  });

  it("an age-encrypted backup of a sealed store (passphrase) restores with the passphrase and the keys", () => {
    const tmp = path.join(dir, "tmp");
    fs.mkdirSync(tmp);
    const file = path.join(dir, "backup.age");
    const withPass = { ...env, TMPDIR: tmp, TOKEN_BACKUP_PASSPHRASE: PASSPHRASE };
    const r = cli(["backup", file, "--quiet", "--json"], { env: withPass });
    assert.equal(r.status, EXIT.OK, r.stderr);
    assert.equal(r.json().encrypted, "passphrase");
    assert.deepEqual(secretsIn(file), []);
    const target = path.join(dir, "restored.db");
    const restore = cli(["restore", file, "--quiet"], { env: { ...withPass, TOKEN_DB_PATH: target } });
    assert.equal(restore.status, EXIT.OK, restore.stderr);
    assert.deepEqual(fs.readdirSync(tmp), [], "no plaintext left");
    refusedWithoutItsKeys({ storage: "db", path: target });
    checkSealed({ storage: "db", path: target });
  });
});
