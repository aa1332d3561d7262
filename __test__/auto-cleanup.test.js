"use strict";
// Expired rows go away by themselves (a server that never calls cleanupExpiredTokens keeps
// no abandoned code, with its API key, for long), on an unreferenced timer that never keeps
// the process alive; configurable and off-able.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { KINDS, TokenStorage, storeOptions, storesPerTest, runNode, PKG } = require("./helpers/setup");

const ctx = storesPerTest();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** An expired token, code and pending authorization in `s`. */
function expire(s) {
  s.storeAccessToken("old-at", "old-rt", "sk-key", "u", "c", [], Date.now() - 1000);
  s.storeAuthorizationCode("old-code", "u", "sk-key", "c", "https://app/cb", null, null, [], -1);
  s.storePendingAuthorization("old-state", { verifier: "v" }, -1);
}

for (const kind of KINDS) {
  describe(`${kind} store: automatic cleanup`, () => {
    it("removes expired tokens, codes and pending authorizations every cleanupInterval seconds", async () => {
      const s = ctx.open({ ...storeOptions(kind, path.join(ctx.dir, "auto.db")), cleanupInterval: 1 });
      expire(s);
      await sleep(1600);
      assert.equal(s.cleanupExpiredTokens(), 0, "the background cleanup took them already");
    });

    it("cleanupInterval: 0 turns it off", async () => {
      const s = ctx.open({ ...storeOptions(kind, path.join(ctx.dir, "off.db")), cleanupInterval: 0 });
      expire(s);
      await sleep(1200);
      assert.equal(s.cleanupExpiredTokens(), 3);
    });
  });
}

describe("automatic cleanup: close()", () => {
  it("a run in progress stops at close() and never reopens the store", async () => {
    const s = ctx.open({ storage: "db", path: path.join(ctx.dir, "close.db"), cleanupInterval: 0 });
    s.storeAccessTokens(Array.from({ length: 3000 }, (_, i) => ({ accessToken: `x${i}`, apiKey: "k", clientId: "c", expiresAt: Date.now() - 1000 })));
    s._cleanupIntervalMs = 60_000;
    const running = s._cleanupNow();
    s.close();
    await running;
    assert.equal(s.location !== null, true);
    assert.equal(s._open, false, "the store stays closed");
    assert.equal(s._held.timer, null, "no timer was started again");
  });
});

describe("automatic cleanup: the process", () => {
  it("exits as soon as its work is done: the timer is unreferenced", () => {
    const t0 = Date.now();
    const r = runNode(
      `const t = require(PKG); t.storeAccessToken("a", null, "k", "u", "c", [], null); console.log(t.getStats().totalTokens);`,
      { cwd: ctx.dir, env: { TOKEN_STORAGE: "db", TOKEN_DB_PATH: path.join(ctx.dir, "exit.db"), TOKEN_CLEANUP_INTERVAL_SECONDS: "1" } },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "1");
    assert.ok(Date.now() - t0 < 5000);
  });

  it("a bad TOKEN_CLEANUP_INTERVAL_SECONDS fails at require, naming it; a bad option is a TypeError", () => {
    const r = runNode(`try { require(PKG); console.log("loaded"); } catch (e) { console.log(e.code, e.message); }`, {
      cwd: ctx.dir,
      env: { TOKEN_CLEANUP_INTERVAL_SECONDS: "soon" },
    });
    assert.match(r.stdout, /^ERR_TOKEN_STORAGE_CONFIG TOKEN_CLEANUP_INTERVAL_SECONDS is "soon"/);
    assert.throws(() => new TokenStorage({ cleanupInterval: -1 }), TypeError);
    assert.throws(() => new TokenStorage({ cleanupInterval: 1.5 }), TypeError);
    void PKG;
  });
});
