"use strict";
// Encrypted backups (issue 19): `backup --passphrase-file F` / `TOKEN_BACKUP_PASSPHRASE` /
// `--encrypt-to age1…` write a standard age file (checked with the `age` command where it is
// installed) that holds none of the tokens as bytes; `restore` opens it with the passphrase
// or the identity file and round-trips every row; a wrong passphrase or key exits 5 with
// ERR_TOKEN_STORAGE_CANNOT_DECRYPT; no plaintext file is left anywhere, failures included;
// no passphrase is ever printed.
const { describe, it, beforeEach, afterEach } = require("node:test");
const assert = require("node:assert/strict");
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { TokenStorage, tempDir, removeDir } = require("./helpers/setup");
const { EXIT } = require("../lib/cli");
const { runCli } = require("./helpers/cli");

// A key pair made with age-keygen for this test only.
const RECIPIENT = "age1qsphm0nxtcl425st9tc5mng34lkzfhu6d6drqyvyqte534xavstqwc4yg0";
const IDENTITY = "# test only\nAGE-SECRET-KEY-1VHMSWEYW8GWVMJ7VFMVSMZVMZMVUYSSGHFWZW4EK0JPHATAJZ5USZLWYPK\n";
const OTHER_IDENTITY = "AGE-SECRET-KEY-12W632YZ89NYLS0LU2UN078KG50GQVYHRUU7D4SUFA54AJ6KC6P8QUSCEJ5\n";
const PASSPHRASE = "pass-phrase-s3cret correct horse";
const SECRETS = ["secret-at-1", "secret-rt-1", "sk-secret", "secret-code", "secret-verifier", PASSPHRASE];
const hasAge = spawnSync("age", ["--version"]).status === 0;

function cli(args, { env = {}, input } = {}) {
  const r = runCli(args, { env: { TMPDIR: env.TMPDIR ?? os.tmpdir(), ...env }, input });
  for (const out of [r.stdout, r.stderr]) {
    for (const s of SECRETS) assert.equal(out.includes(s), false, "no token, key or passphrase printed");
  }
  return r;
}

function seed(file) {
  const s = new TokenStorage({ storage: "db", path: file });
  const later = Date.now() + 3600e3;
  s.storeAccessToken("secret-at-1", "secret-rt-1", "sk-secret", "alice", "app", ["read"], later);
  s.storeAccessToken("secret-at-2", "secret-rt-2", "sk-secret", "bob", "app", [], later);
  s.storeAuthorizationCode("secret-code", "alice", "sk-secret", "app", "https://app.example/cb", null, null, [], 600);
  s.storePendingAuthorization("state-1", { verifier: "secret-verifier" }, 600);
  s.close();
}

function rows(file) {
  const s = new TokenStorage({ storage: "db", path: file, cleanupInterval: 0 });
  try {
    return JSON.parse(s._native.rowCounts());
  } finally {
    s.close();
  }
}

describe("encrypted backups", () => {
  let dir;
  let db;
  let env;
  let tmp;
  beforeEach(() => {
    dir = tempDir("nts-age-");
    db = path.join(dir, "tokens.db");
    seed(db);
    tmp = path.join(dir, "tmp");
    fs.mkdirSync(tmp);
    env = { TOKEN_STORAGE: "db", TOKEN_DB_PATH: db, TMPDIR: tmp };
  });
  afterEach(() => removeDir(dir));

  /** No plaintext left behind: the temporary folder is empty, no partial file beside FILE. */
  function nothingLeft(file) {
    assert.deepEqual(fs.readdirSync(tmp), [], "the private temporary folder was removed");
    assert.deepEqual(fs.readdirSync(path.dirname(file)).filter((f) => f.startsWith(`${path.basename(file)}.`)), [], "no partial file");
  }

  it("to a passphrase (file or environment): an age file with none of the secrets; restore round-trips it", () => {
    const file = path.join(dir, "backup.age");
    const pass = path.join(dir, "pass.txt");
    fs.writeFileSync(pass, `${PASSPHRASE}\n`, { mode: 0o600 });
    const r = cli(["backup", file, "--passphrase-file", pass, "--json"], { env });
    assert.equal(r.status, EXIT.OK, r.stderr);
    assert.equal(r.json().encrypted, "passphrase");
    assert.equal(r.json().bytes, fs.statSync(file).size);
    assert.doesNotMatch(r.stderr, /warning/);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const bytes = fs.readFileSync(file);
    assert.ok(bytes.subarray(0, 22).equals(Buffer.from("age-encryption.org/v1\n")), "a standard age file");
    assert.match(bytes.toString("latin1"), /^-> scrypt /m, "to a passphrase");
    for (const s of [...SECRETS, "SQLite format 3"]) assert.equal(bytes.includes(Buffer.from(s)), false, `${s} is not in the file`);
    nothingLeft(file);

    // Restored into a new store with the passphrase from the environment.
    const restored = path.join(dir, "restored.db");
    const into = { ...env, TOKEN_DB_PATH: restored, TOKEN_BACKUP_PASSPHRASE: PASSPHRASE };
    const back = cli(["restore", file, "--json"], { env: into });
    assert.equal(back.status, EXIT.OK, back.stderr);
    assert.equal(back.json().decrypted, true);
    assert.deepEqual(rows(restored), rows(db));
    const s = new TokenStorage({ storage: "db", path: restored });
    try {
      assert.equal(s.getAccessToken("secret-at-1").apiKey, "sk-secret");
      assert.deepEqual(s.consumePendingAuthorization("state-1"), { verifier: "secret-verifier" });
    } finally {
      s.close();
    }
    nothingLeft(file);

    // From the environment too, and from stdin.
    const second = path.join(dir, "second.age");
    assert.equal(cli(["backup", second, "--quiet"], { env: { ...env, TOKEN_BACKUP_PASSPHRASE: PASSPHRASE } }).status, EXIT.OK);
    const third = cli(["restore", second, "--force", "--passphrase-file", "-", "--quiet"], { env: { ...env, TOKEN_DB_PATH: restored }, input: `${PASSPHRASE}\n` });
    assert.equal(third.status, EXIT.OK, third.stderr);
  });

  it("a wrong passphrase or key exits 5 with ERR_TOKEN_STORAGE_CANNOT_DECRYPT, the store untouched and nothing left", () => {
    const file = path.join(dir, "backup.age");
    assert.equal(cli(["backup", file, "--quiet"], { env: { ...env, TOKEN_BACKUP_PASSPHRASE: PASSPHRASE } }).status, EXIT.OK);
    const restored = path.join(dir, "restored.db");
    const r = cli(["restore", file, "--json"], { env: { ...env, TOKEN_DB_PATH: restored, TOKEN_BACKUP_PASSPHRASE: "not it" } });
    assert.equal(r.status, EXIT.CANNOT_DECRYPT, r.stderr);
    assert.equal(r.json().error.code, "ERR_TOKEN_STORAGE_CANNOT_DECRYPT");
    assert.match(r.stderr, /does not open it/);
    assert.equal(fs.existsSync(restored), false, "no store created");
    nothingLeft(file);
    // No passphrase at all: a usage error naming what to give.
    const none = cli(["restore", file], { env: { ...env, TOKEN_DB_PATH: restored } });
    assert.equal(none.status, EXIT.USAGE);
    assert.match(none.stderr, /encrypted backup \(age\)/);
    // A file that is not an age file past its first line: cannot decrypt.
    const bad = path.join(dir, "bad.age");
    fs.writeFileSync(bad, "age-encryption.org/v1\n-> nonsense\n");
    assert.equal(cli(["restore", bad], { env: { ...env, TOKEN_DB_PATH: restored, TOKEN_BACKUP_PASSPHRASE: PASSPHRASE } }).status, EXIT.CANNOT_DECRYPT);
    // An altered payload: cannot decrypt, and no partial plaintext restored.
    const altered = path.join(dir, "altered.age");
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 100] ^= 1;
    fs.writeFileSync(altered, bytes);
    const a = cli(["restore", altered], { env: { ...env, TOKEN_DB_PATH: restored, TOKEN_BACKUP_PASSPHRASE: PASSPHRASE } });
    assert.equal(a.status, EXIT.CANNOT_DECRYPT, a.stderr);
    assert.equal(fs.existsSync(restored), false);
    nothingLeft(file);
    // Cut short: right after the payload's nonce, and at the end of its first 64 KiB chunk
    // (age's chunks end on a boundary there, so the cut shows as an early end, not a bad tag).
    const payload = bytes.indexOf("\n", bytes.indexOf("\n---") + 1) + 1 + 16;
    const cuts = [payload, payload + 65536 + 16].filter((n) => n < bytes.length);
    assert.ok(cuts.length === 2, `the backup spans more than one chunk (${bytes.length} bytes)`);
    for (const cut of cuts) {
      const truncated = path.join(dir, `cut-${cut}.age`);
      fs.writeFileSync(truncated, fs.readFileSync(file).subarray(0, cut));
      const t = cli(["restore", truncated], { env: { ...env, TOKEN_DB_PATH: restored, TOKEN_BACKUP_PASSPHRASE: PASSPHRASE } });
      assert.equal(t.status, EXIT.CANNOT_DECRYPT, `cut at ${cut}: ${t.stderr}`);
      assert.match(t.stderr, /damaged or was altered|does not open/);
      assert.equal(fs.existsSync(restored), false);
      nothingLeft(file);
    }
  });

  it("to age recipients: opened by the identity file (and by age -d), refused with another key", () => {
    const file = path.join(dir, "backup.age");
    const r = cli(["backup", file, "--encrypt-to", RECIPIENT, "--json"], { env });
    assert.equal(r.status, EXIT.OK, r.stderr);
    assert.equal(r.json().encrypted, "recipients");
    const bytes = fs.readFileSync(file);
    assert.match(bytes.toString("latin1"), /^-> X25519 /m);
    for (const s of SECRETS) assert.equal(bytes.includes(Buffer.from(s)), false);
    nothingLeft(file);
    const identity = path.join(dir, "key.txt");
    fs.writeFileSync(identity, IDENTITY, { mode: 0o600 });
    const other = path.join(dir, "other.txt");
    fs.writeFileSync(other, OTHER_IDENTITY, { mode: 0o600 });
    const restored = path.join(dir, "restored.db");
    const into = { ...env, TOKEN_DB_PATH: restored };
    const wrong = cli(["restore", file, "--identity", other], { env: into });
    assert.equal(wrong.status, EXIT.CANNOT_DECRYPT, wrong.stderr);
    const back = cli(["restore", file, "--identity", identity, "--quiet"], { env: into });
    assert.equal(back.status, EXIT.OK, back.stderr);
    assert.deepEqual(rows(restored), rows(db));
    nothingLeft(file);
    if (hasAge) {
      const plain = path.join(dir, "plain.db");
      const d = spawnSync("age", ["-d", "-i", identity, "-o", plain, file], { encoding: "utf8" });
      assert.equal(d.status, 0, d.stderr);
      assert.deepEqual(rows(plain), rows(db), "age -d opens it: a SQLite store of this package");
    }
    // A flag wins over TOKEN_BACKUP_PASSPHRASE (exported for the cron job's backups, say).
    const withEnv = { ...env, TOKEN_BACKUP_PASSPHRASE: PASSPHRASE };
    const second = path.join(dir, "second.age");
    const toKey = cli(["backup", second, "--encrypt-to", RECIPIENT, "--json"], { env: withEnv });
    assert.equal(toKey.status, EXIT.OK, toKey.stderr);
    assert.equal(toKey.json().encrypted, "recipients");
    const again = path.join(dir, "again.db");
    const byKey = cli(["restore", second, "--identity", identity, "--quiet"], { env: { ...withEnv, TOKEN_DB_PATH: again } });
    assert.equal(byKey.status, EXIT.OK, byKey.stderr);
    assert.deepEqual(rows(again), rows(db));
    // Two flags that disagree are a usage error, before anything is opened.
    const both = cli(["restore", second, "--identity", identity, "--passphrase-file", identity], { env: { ...env, TOKEN_DB_PATH: path.join(dir, "both.db") } });
    assert.equal(both.status, EXIT.USAGE, both.stderr);
    assert.equal(fs.existsSync(path.join(dir, "both.db")), false);
    // Bad arguments: usage errors.
    assert.equal(cli(["backup", path.join(dir, "x.age"), "--encrypt-to", "age1nope"], { env }).status, EXIT.USAGE);
    assert.equal(cli(["backup", path.join(dir, "x.age"), "--encrypt-to", RECIPIENT, "--passphrase-file", identity], { env }).status, EXIT.USAGE);
    assert.equal(cli(["backup", path.join(dir, "x.age"), "--passphrase-file", path.join(dir, "nope")], { env }).status, EXIT.NOT_FOUND);
    assert.equal(fs.existsSync(path.join(dir, "x.age")), false);
    nothingLeft(path.join(dir, "x.age"));
  });

  it("a passphrase file others can read is used, with a warning; age -d opens a passphrase backup", { skip: hasAge ? false : "the age command is not installed" }, () => {
    const file = path.join(dir, "backup.age");
    const pass = path.join(dir, "pass.txt");
    fs.writeFileSync(pass, `${PASSPHRASE}\n`);
    fs.chmodSync(pass, 0o644);
    const r = cli(["backup", file, "--passphrase-file", pass, "--quiet"], { env });
    assert.equal(r.status, EXIT.OK, r.stderr);
    assert.match(r.stderr, /warning: the passphrase file .* is readable by other users/);
    // age reads a passphrase from a terminal only: give it one (util-linux script).
    const plain = path.join(dir, "plain.db");
    const d = spawnSync("script", ["-qfec", `age -d -o ${plain} ${file}`, "/dev/null"], { input: `${PASSPHRASE}\n`, encoding: "utf8", timeout: 30_000 });
    assert.equal(d.status, 0, d.stdout + d.stderr);
    assert.deepEqual(rows(plain), rows(db));
  });
});
