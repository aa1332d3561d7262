"use strict";
// Client secrets at rest (issue 19): a secret an operator chose (preRegisterClient) is stored
// as a salted scrypt digest (`scrypt$N$r$p$salt$hash`), so a leaked file holds neither the
// secret nor its plain SHA-256 (found by a lookup table for a guessable one); a secret the
// registry issued (registerClient, 32 random bytes) stays a fast SHA-256 in hex, and a
// store's existing SHA-256 digests (written by earlier versions) keep verifying.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const { KINDS, storeOptions, storesPerTest } = require("./helpers/setup");

const sha256hex = (s) => crypto.createHash("sha256").update(s, "utf8").digest("hex");

/** The stored digest of a client, as the store gives it back. */
const storedDigest = (s, id) => JSON.parse(s._native.getClient(id, Date.now()))[1];

for (const kind of KINDS) {
  describe(`client secrets, ${kind} store`, () => {
    const ctx = storesPerTest();

    it("an operator's secret: a salted scrypt digest that verifies, a wrong secret refused", () => {
      const s = ctx.open(storeOptions(kind, path.join(ctx.dir, "tokens.db")));
      s.preRegisterClient("inspector", "hunter2", {});
      s.preRegisterClient("inspector-2", "hunter2", {});
      const stored = storedDigest(s, "inspector");
      assert.match(stored, /^scrypt\$2048\$8\$1\$[\w-]{22}\$[\w-]{43}$/);
      assert.notEqual(stored, storedDigest(s, "inspector-2"), "salted: one secret, two digests");
      assert.equal(s.verifyClient("inspector", "hunter2"), true);
      assert.equal(s.verifyClient("inspector-2", "hunter2"), true);
      assert.equal(s.verifyClient("inspector", "hunter3"), false);
      assert.equal(s.verifyClient("inspector", ""), false);
      assert.equal(s.getClient("inspector").client_secret, undefined);
      // Re-registered at the next start: the new secret replaces the old.
      s.preRegisterClient("inspector", "rotated", {});
      assert.equal(s.verifyClient("inspector", "hunter2"), false);
      assert.equal(s.verifyClient("inspector", "rotated"), true);
    });

    it("a registry-issued secret stays a fast SHA-256, and an existing SHA-256 digest keeps verifying", () => {
      const s = ctx.open(storeOptions(kind, path.join(ctx.dir, "tokens.db")));
      const issued = s.registerClient({ redirect_uris: ["https://app.example/cb"] });
      assert.equal(storedDigest(s, issued.client_id), sha256hex(issued.client_secret));
      assert.equal(s.verifyClient(issued.client_id, issued.client_secret), true);
      // A row as an earlier version wrote it for preRegisterClient: the SHA-256 in hex.
      s._native.putClient({ clientId: "old", secretDigest: sha256hex("chosen-long-ago"), metadata: "{}", createdAt: Date.now() }, Date.now());
      assert.equal(s.verifyClient("old", "chosen-long-ago"), true);
      assert.equal(s.verifyClient("old", "chosen-long-ag0"), false);
    });

    it("a tampered or malformed scrypt digest is refused without stalling", () => {
      const s = ctx.open(storeOptions(kind, path.join(ctx.dir, "tokens.db")));
      s.preRegisterClient("c", "hunter2", {});
      const [, N, r, p, salt, hash] = storedDigest(s, "c").split("$");
      const put = (digest) => s._native.putClient({ clientId: "c", secretDigest: digest, metadata: "{}", createdAt: Date.now() }, Date.now());
      const big = Buffer.alloc(1 << 20, 7).toString("base64url");
      for (const bad of [
        `scrypt$${1 << 24}$${r}$${p}$${salt}$${hash}`, `scrypt$3000$${r}$${p}$${salt}$${hash}`, `scrypt$${N}$${r}$${p}$${salt}`,
        `scrypt$${N}$999$${p}$${salt}$${hash}`, `scrypt$${N}$${r}$${p}$$${hash}`, "scrypt$x",
        // Each bound alone is in range, together far above the default's cost (~1.4 s once).
        `scrypt$${1 << 16}$16$4$${salt}$${hash}`,
        // A 1 MiB hash (key length) or salt.
        `scrypt$${N}$${r}$${p}$${salt}$${big}`, `scrypt$${N}$${r}$${p}$${big}$${hash}`,
      ]) {
        put(bad);
        const started = Date.now();
        assert.equal(s.verifyClient("c", "hunter2"), false, bad.slice(0, 60));
        assert.ok(Date.now() - started < 1000, `${bad.slice(0, 60)}: refused at once`);
      }
      put(`scrypt$${N}$${r}$${p}$${salt}$${hash}`);
      assert.equal(s.verifyClient("c", "hunter2"), true);
    });

    it("promises.verifyClient computes a salted digest off the JavaScript thread", async () => {
      const s = ctx.open(storeOptions(kind, path.join(ctx.dir, "tokens.db")));
      s.preRegisterClient("c", "hunter2", {});
      assert.equal(await s.promises.verifyClient("c", "hunter2"), true);
      assert.equal(await s.promises.verifyClient("c", "hunter3"), false);
      assert.equal(await s.promises.verifyClient("nobody", "hunter2"), false);
      // Computed by crypto.scrypt (libuv's pool), never by scryptSync on the calling thread.
      const sync = crypto.scryptSync;
      let syncCalls = 0;
      crypto.scryptSync = (...a) => (syncCalls++, sync(...a));
      try {
        const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => s.promises.verifyClient("c", i % 2 ? "hunter2" : "wrong")));
        assert.deepEqual(answers, [false, true, false, true, false, true, false, true]);
      } finally {
        crypto.scryptSync = sync;
      }
      assert.equal(syncCalls, 0, "no salted digest computed on the JS thread");
      assert.equal(s.verifyClient("c", "hunter2"), true, "the synchronous form still verifies");
    });
  });
}

describe("client secrets in a SQLite file", () => {
  const ctx = storesPerTest();

  it("the file holds neither an operator's secret nor its SHA-256", () => {
    const file = path.join(ctx.dir, "tokens.db");
    const s = ctx.open({ storage: "db", path: file });
    s.preRegisterClient("inspector", "correct horse battery staple", {});
    assert.equal(s.verifyClient("inspector", "correct horse battery staple"), true);
    s.close();
    const bytes = Buffer.concat(["", "-wal"].filter((x) => fs.existsSync(file + x)).map((x) => fs.readFileSync(file + x)));
    for (const needle of ["correct horse battery staple", sha256hex("correct horse battery staple")]) {
      assert.equal(bytes.includes(Buffer.from(needle)), false, "no guessable secret in the file");
    }
    assert.ok(bytes.includes(Buffer.from("scrypt$2048$8$1$")), "the salted digest is there");
  });

  it("a verification takes single-digit milliseconds (a loaded machine: well under 100 ms)", () => {
    const s = ctx.open({ storage: "memory" });
    s.preRegisterClient("c", "hunter2", {});
    s.verifyClient("c", "hunter2");
    const times = [];
    for (let i = 0; i < 9; i++) {
      const t = process.hrtime.bigint();
      assert.equal(s.verifyClient("c", "hunter2"), true);
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    times.sort((a, b) => a - b);
    assert.ok(times[4] < 100, `median ${times[4].toFixed(1)} ms`);
  });
});
