"use strict";
// encrypt, decrypt and rekey of the command line (issue 19), end to end in a child process on a
// SQLite file and on a PostgreSQL schema: every record read back unchanged through a store
// with the keys (refresh-token and code lookups, a rotation after), and without them after
// decrypt; a store already sealed, in clear, a wrong or missing key, a failed final check and a
// killed conversion each leave the store as it was; none of the secrets in the sealed file or
// its WAL, or in a pg_dump of the schema; and on PostgreSQL, a second process's writes during a
// rekey wait for it and are kept.
const { describe, it, beforeEach, afterEach } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const crypto = require("node:crypto");
const { spawn, spawnSync, execFileSync } = require("node:child_process");
const { PG_URL, TokenStorage, tempDir, removeDir, cleanEnv, freshSchema, runNodeAsync } = require("./helpers/setup");
const { EXIT } = require("../lib/cli");
const { BIN, runCli: cli } = require("./helpers/cli");

const key = (seed) => Buffer.alloc(32, seed).toString("base64");
const K1 = `k1:${key(1)}`;
const HOUR = 3600e3;

/**
 * A clear store (`open()` makes a TokenStorage of it) with tokens (one rotated), one without a
 * refresh token, a code, a pending login.
 */
function seed(open, n = 5) {
  const s = open({ refreshGracePeriod: 0 });
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
  for (const out of [r.stdout, r.stderr]) {
    assert.doesNotMatch(out, /secret-|sk-secret|AQEBAQ/, "no token or key printed");
    if (PG_URL) assert.equal(out.includes(PG_URL), false, "no connection string printed");
  }
}

function psql(sql) {
  return execFileSync("psql", [PG_URL, "-v", "ON_ERROR_STOP=1", "-Atc", sql], { encoding: "utf8" }).trim();
}

/** A schema's rows as `pg_dump` gives them (which must hold `table`). */
function dumpOf(schema, table = "access_tokens") {
  const dump = spawnSync("pg_dump", ["--data-only", `--schema=${schema}`, PG_URL], { encoding: "buffer", maxBuffer: 1 << 30 });
  assert.equal(dump.error, undefined);
  assert.equal(dump.status, 0, String(dump.stderr));
  assert.ok(dump.stdout.includes(Buffer.from(table)), `the dump holds the table ${table}`);
  return dump.stdout;
}

/**
 * A schema's state, to compare two: the digest of its dump, less the sequences' positions
 * (a rolled-back insert of clients moves theirs, which no transaction undoes) and the random
 * key of each dump's `\restrict` lines.
 */
function schemaState(schema) {
  const text = dumpOf(schema)
    .toString("utf8")
    .split("\n")
    .filter((l) => !l.includes("setval(") && !/^\\(un)?restrict /.test(l));
  return crypto.createHash("sha256").update(text.join("\n")).digest("hex");
}

/**
 * Each store the commands convert: the environment naming it, a TokenStorage of it (`open`),
 * and its state as bytes to compare (`state`).
 */
const BACKENDS = {
  db: {
    skip: false,
    make() {
      const dir = tempDir("nts-convert-");
      const db = path.join(dir, "tokens.db");
      return {
        env: { TOKEN_STORAGE: "db", TOKEN_DB_PATH: db },
        open: (options = {}) => new TokenStorage({ storage: "db", path: db, ...options }),
        state: () => rowsOf(db),
        remove: () => removeDir(dir),
      };
    },
  },
  postgres: {
    skip: PG_URL ? false : "TOKEN_TEST_DATABASE_URL not set",
    make() {
      const schema = freshSchema();
      return {
        schema,
        env: { TOKEN_STORAGE: "postgres", TOKEN_DATABASE_URL: PG_URL, TOKEN_DB_SCHEMA: schema },
        open: (options = {}) => new TokenStorage({ storage: "postgres", url: PG_URL, schema, queryTimeout: 60_000, cleanupInterval: 0, ...options }),
        state: () => schemaState(schema),
        remove: () => psql(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`),
      };
    },
  },
};

for (const [kind, backend] of Object.entries(BACKENDS)) {
describe(`encrypt and decrypt (${kind})`, { skip: backend.skip }, () => {
  let store;
  let env;
  let open;
  beforeEach(() => {
    store = backend.make();
    open = store.open;
    seed(open);
    env = { ...store.env, TOKEN_ENCRYPTION_KEYS: K1 };
  });
  afterEach(() => store.remove());

  it("round trip: clear, encrypt, every record read with the keys, rotation, decrypt, read without keys", () => {
    const r = cli(["encrypt", "--json"], { env });
    assert.equal(r.status, EXIT.OK, r.stderr);
    noSecrets(r);
    const out = r.json();
    assert.equal(out.direction, "encrypt");
    assert.equal(out.activeKeyId, "k1");
    assert.equal(out.counts.accessTokens, 6);
    assert.equal(out.counts.authorizationCodes, 1);

    // Without keys the store is refused, naming decrypt.
    const bare = open();
    assert.throws(() => bare.open(), (err) => err.code === "ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH" && err.message.includes("decrypt"));
    bare.close();

    const s = open({ encryptionKeys: K1, refreshGracePeriod: 0 });
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
    const c = open({ refreshGracePeriod: 0 });
    assert.equal(c.getAccessToken("secret-at-1b").apiKey, "sk-secret-1");
    assert.equal(c.getRefreshToken("secret-rt-1b").accessToken, "secret-at-1b");
    assert.equal(c.getAccessToken("secret-at-2").refreshToken, "secret-rt-2");
    assert.equal(c.rotateRefreshToken("secret-rt-2", "secret-at-2b", "secret-rt-2b", new Date(Date.now() + HOUR)).apiKey, "sk-secret-2");
    assert.equal(c.getAccessToken("secret-at-solo").apiKey, "sk-secret-solo");
    c.close();
    // Opened with keys again: refused, naming encrypt.
    const keyed = open({ encryptionKeys: K1 });
    assert.throws(() => keyed.open(), (err) => err.message.includes("native-token-storage encrypt"));
    keyed.close();
  });

  it(`a store without keys, opened before encrypt sealed its ${kind === "db" ? "file" : "schema"}: its next write is refused (coded, nothing written), its reads find nothing; after decrypt it writes again`, () => {
    const keyless = open({ cleanupInterval: 0 });
    assert.equal(keyless.getAccessToken("secret-at-1").apiKey, "sk-secret-1");
    assert.equal(cli(["encrypt"], { env }).status, EXIT.OK);
    const sealed = open({ encryptionKeys: K1, cleanupInterval: 0 });
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

  it(kind === "db" ? "none of the secrets in the sealed file nor its WAL" : "none of the secrets in a pg_dump of the sealed schema", () => {
    const r = cli(["encrypt", "--json"], { env });
    assert.equal(r.status, EXIT.OK, r.stderr);
    if (kind === "postgres") {
      assert.equal(r.json().schema, store.schema);
      assert.equal(r.json().storage, "postgres");
    }
    // A store with the keys writes more (a SQLite file's WAL, checkpointed by its close).
    const s = open({ encryptionKeys: K1 });
    s.storeAccessToken("secret-at-new", "secret-rt-new", "sk-secret-new", "u", "app", [], new Date(Date.now() + HOUR));
    s.storeAccessToken("secret-at-extra", null, "sk-secret-extra", "u", "app", [], new Date(Date.now() + HOUR), { resource: "https://mcp.example/", extra: { apiKey: "sk-secret-in-extra" } });
    let during = [];
    if (kind === "db") {
      const db = store.env.TOKEN_DB_PATH;
      during = [db, `${db}-wal`].filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f));
    } else {
      during = [dumpOf(store.schema, "nts_token_links")];
    }
    s.close();
    const after = kind === "db" ? fs.readFileSync(store.env.TOKEN_DB_PATH) : dumpOf(store.schema);
    for (const bytes of [...during, after]) {
      for (const secret of ["secret-at-", "secret-rt-", "sk-secret", "secret-code", "secret-state", "secret-verifier"]) {
        assert.equal(bytes.includes(Buffer.from(secret)), false, secret);
      }
    }
  });

  it("refusals leave the store as it was: sealed twice, clear decrypted, wrong or missing key, no such store", () => {
    const clear = store.state();
    const wrong = cli(["decrypt"], { env });
    assert.equal(wrong.status, EXIT.REFUSED, wrong.stderr);
    assert.match(wrong.stderr, /not sealed/);
    assert.equal(cli(["encrypt"], { env: { ...env, TOKEN_ENCRYPTION_KEYS: undefined } }).status, EXIT.USAGE);
    assert.equal(cli(["encrypt"], { env: { ...env, TOKEN_ENCRYPTION_KEYS: "k1:c2hvcnQ=" } }).status, EXIT.USAGE);
    if (kind === "db") {
      const missing = path.join(path.dirname(store.env.TOKEN_DB_PATH), "missing.db");
      assert.equal(cli(["encrypt", "--path", missing], { env: { TOKEN_ENCRYPTION_KEYS: K1 } }).status, EXIT.NOT_FOUND);
      assert.equal(fs.existsSync(missing), false);
    } else {
      // A mistyped schema (here --url and --schema, no TOKEN_STORAGE) is refused, not created.
      const typo = `${store.schema}_typo`;
      const r = cli(["encrypt", "--url", PG_URL, "--schema", typo], { env: { TOKEN_ENCRYPTION_KEYS: K1 } });
      assert.equal(r.status, EXIT.NOT_FOUND, r.stderr);
      assert.match(r.stderr, /no token store in schema/);
      noSecrets(r);
      assert.equal(psql(`SELECT count(*) FROM pg_namespace WHERE nspname = '${typo}'`), "0");
    }
    assert.equal(store.state(), clear);

    assert.equal(cli(["encrypt"], { env }).status, EXIT.OK);
    const sealed = store.state();
    const again = cli(["encrypt"], { env });
    assert.equal(again.status, EXIT.REFUSED);
    assert.match(again.stderr, /already sealed.*ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH/);
    for (const keys of [`k2:${key(2)}`, `k1:${key(2)}`]) {
      const r = cli(["decrypt"], { env: { ...env, TOKEN_ENCRYPTION_KEYS: keys } });
      assert.equal(r.status, EXIT.CANNOT_DECRYPT, r.stderr);
      noSecrets(r);
    }
    assert.equal(cli(["decrypt"], { env: { ...env, TOKEN_ENCRYPTION_KEYS: undefined } }).status, EXIT.USAGE);
    // --keys-file (here stdin) gives the keys instead of the environment.
    const viaFile = cli(["decrypt", "--keys-file", "-"], { env: { ...env, TOKEN_ENCRYPTION_KEYS: undefined }, input: `k9:${key(9)}\n` });
    assert.equal(viaFile.status, EXIT.CANNOT_DECRYPT, viaFile.stderr);
    assert.equal(store.state(), sealed);
  });

  it("rekey: re-sealed under the new key, the old one then retired; refused on a clear store", () => {
    const K2 = `k2:${key(2)}`;
    const clear = store.state();
    const refused = cli(["rekey"], { env: { ...env, TOKEN_ENCRYPTION_KEYS: `${K2},${K1}` } });
    assert.equal(refused.status, EXIT.REFUSED, refused.stderr);
    assert.equal(store.state(), clear);
    assert.equal(cli(["encrypt"], { env }).status, EXIT.OK);
    const sealed = store.state();
    assert.equal(cli(["rekey"], { env: { ...env, NTS_TEST_CONVERT_FAIL: "verify", TOKEN_ENCRYPTION_KEYS: `${K2},${K1}` } }).status, EXIT.FAILED);
    assert.equal(store.state(), sealed);
    const r = cli(["rekey", "--json"], { env: { ...env, TOKEN_ENCRYPTION_KEYS: `${K2},${K1}` } });
    assert.equal(r.status, EXIT.OK, r.stderr);
    noSecrets(r);
    assert.equal(r.json().activeKeyId, "k2");
    const s = open({ encryptionKeys: K2, refreshGracePeriod: 0 });
    assert.equal(s.getAccessToken("secret-at-3").apiKey, "sk-secret-3");
    assert.equal(s.getRefreshToken("secret-rt-3").accessToken, "secret-at-3");
    assert.equal(s.rotateRefreshToken("secret-rt-0b", "secret-at-0c", "secret-rt-0c", new Date(Date.now() + HOUR)).apiKey, "sk-secret-0");
    s.close();
    // Back to clear with the new key alone.
    assert.equal(cli(["decrypt"], { env: { ...env, TOKEN_ENCRYPTION_KEYS: K2 } }).status, EXIT.OK);
    const c = open();
    assert.equal(c.getAccessToken("secret-at-0c").refreshToken, "secret-rt-0c");
    c.close();
  });

  it("a failed final check rolls everything back, both ways", () => {
    const clear = store.state();
    const r = cli(["encrypt"], { env: { ...env, NTS_TEST_CONVERT_FAIL: "verify" } });
    assert.equal(r.status, EXIT.FAILED, r.stderr);
    assert.match(r.stderr, /do not match.*ERR_TOKEN_STORAGE_INTERNAL/);
    assert.equal(store.state(), clear);
    assert.equal(cli(["encrypt"], { env }).status, EXIT.OK);
    const sealed = store.state();
    assert.equal(cli(["decrypt"], { env: { ...env, NTS_TEST_CONVERT_FAIL: "verify" } }).status, EXIT.FAILED);
    assert.equal(store.state(), sealed);
  });
});
}

describe("a conversion killed mid-way", () => {
  it("SQLite: leaves the file as it was", async () => {
    const dir = tempDir("nts-convert-");
    try {
      const db = path.join(dir, "tokens.db");
      seed((options) => new TokenStorage({ storage: "db", path: db, ...options }), 20000);
      const env = { TOKEN_STORAGE: "db", TOKEN_DB_PATH: db, TOKEN_ENCRYPTION_KEYS: K1 };
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
    } finally {
      removeDir(dir);
    }
  });
});

/**
 * The conversion's PostgreSQL session on `schema`, once it holds its lock on the access tokens
 * (and, with `writing`, once it has written: its transaction has an id), or null after `ms`.
 */
async function converting(schema, { writing = false, ms = 30_000 } = {}) {
  const started = Date.now();
  while (Date.now() - started < ms) {
    const pid = psql(
      `SELECT l.pid FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
       JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_stat_activity a ON a.pid = l.pid
       WHERE n.nspname = '${schema}' AND c.relname = 'access_tokens' AND l.granted
         AND l.mode IN ('ShareRowExclusiveLock', 'AccessExclusiveLock')
         ${writing ? "AND a.backend_xid IS NOT NULL" : ""} LIMIT 1`,
    );
    if (pid !== "") return Number(pid);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return null;
}

/** `runCli` without blocking: resolves `{ status, stdout, stderr }`. */
function cliAsync(args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

/** `n` more live tokens (`bulk-at-i`), stored in one call. */
function addTokens(storage, n) {
  const later = Date.now() + HOUR;
  const records = [];
  for (let i = 0; i < n; i++) records.push({ accessToken: `bulk-at-${i}`, refreshToken: `bulk-rt-${i}`, apiKey: "sk-bulk", userId: "bulk", clientId: "app", scopes: [], expiresAt: later });
  storage.storeAccessTokens(records);
}

describe("PostgreSQL: the conversion's transaction", { skip: BACKENDS.postgres.skip }, () => {
  let store;
  beforeEach(() => {
    store = BACKENDS.postgres.make();
    seed(store.open);
    const s = store.open();
    addTokens(s, 20000);
    s.close();
  });
  afterEach(() => store.remove());

  it("killed mid-way: the schema as it was, and usable", async () => {
    const env = { ...store.env, TOKEN_ENCRYPTION_KEYS: K1 };
    const clear = store.state();
    const child = spawn(process.execPath, [BIN, "encrypt"], { env: cleanEnv(env), stdio: "ignore" });
    const exited = new Promise((resolve) => child.on("exit", resolve));
    const pid = await converting(store.schema, { writing: true });
    assert.notEqual(pid, null, "the conversion began writing");
    child.kill("SIGKILL");
    await exited;
    // The server rolls back the transaction of a connection that is gone.
    const started = Date.now();
    while (Date.now() - started < 20000 && psql(`SELECT count(*) FROM pg_stat_activity WHERE pid = ${pid}`) !== "0") {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(store.state(), clear);
    const s = store.open();
    assert.equal(s.getAccessToken("secret-at-3").apiKey, "sk-secret-3");
    assert.equal(s.getStats().totalTokens, 20006);
    s.close();
  });

  it("a second process's writes during a rekey wait for it and are kept, sealed under the new key", async () => {
    const K2 = `k2:${key(2)}`;
    assert.equal(cli(["encrypt"], { env: { ...store.env, TOKEN_ENCRYPTION_KEYS: K1 } }).status, EXIT.OK);
    const both = { ...store.env, TOKEN_ENCRYPTION_KEYS: `${K2},${K1}` };
    const rekey = cliAsync(["rekey", "--json"], both);
    assert.notEqual(await converting(store.schema), null, "the rekey holds its locks");
    // A server with the new keyring, started meanwhile: its first call adds k2 to the mark
    // and its writes, so each waits for the commit, then finds the rows re-sealed.
    const running = runNodeAsync(
      `const { TokenStorage } = require(PKG);
       const s = new TokenStorage({ storage: "postgres", url: ${JSON.stringify(PG_URL)}, schema: ${JSON.stringify(store.schema)}, encryptionKeys: ${JSON.stringify(`${K2},${K1}`)}, refreshGracePeriod: 0, cleanupInterval: 0, queryTimeout: 60000 });
       const read = s.getAccessToken("secret-at-2").apiKey;
       const later = new Date(Date.now() + 3600e3);
       s.storeAccessToken("secret-at-during", "secret-rt-during", "sk-secret-during", "u", "app", [], later);
       const rotated = s.rotateRefreshToken("secret-rt-4", "secret-at-4b", "secret-rt-4b", later);
       const client = s.registerClient({ client_name: "during", redirect_uris: ["https://app/cb"] });
       s.close();
       console.log(JSON.stringify({ read, rotated: rotated.apiKey, client: client.client_id }));`,
      { env: {} },
    );
    let waited = false;
    const started = Date.now();
    while (!waited && Date.now() - started < 30_000) {
      waited = psql(`SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '${store.schema}' AND NOT l.granted`) !== "0";
      if (!waited) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.ok(waited, "the second process waited on the conversion's lock");
    const writer = await running;
    assert.equal(writer.status, 0, writer.stderr);
    const r = await rekey;
    assert.equal(r.status, EXIT.OK, r.stderr);
    const wrote = JSON.parse(writer.stdout);
    assert.deepEqual([wrote.read, wrote.rotated], ["sk-secret-2", "sk-secret-4"]);
    // All of it there with the new key alone: written after the rekey, under it.
    const s = store.open({ encryptionKeys: K2, refreshGracePeriod: 0 });
    assert.equal(s.getAccessToken("secret-at-during").apiKey, "sk-secret-during");
    assert.equal(s.getRefreshToken("secret-rt-during").accessToken, "secret-at-during");
    assert.equal(s.getAccessToken("secret-at-4b").apiKey, "sk-secret-4");
    assert.equal(s.getAccessToken("secret-at-4"), null);
    assert.notEqual(s.getClient(wrote.client), null);
    assert.equal(s.getStats().totalTokens, 20007);
    s.close();
    const dump = dumpOf(store.schema);
    for (const secret of ["secret-at-", "secret-rt-", "sk-secret", "bulk-at-", "sk-bulk"]) assert.equal(dump.includes(Buffer.from(secret)), false, secret);
  });
});
