"use strict";
// PostgreSQL defects found by an adversarial round (issue 15), each with the test that
// failed before its fix.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const net = require("node:net");

const { KINDS, TokenStorage, freshStore, runNode, runNodeAsync } = require("./helpers/setup");

describe("PostgreSQL: a connection string whose password is not percent-encoded", () => {
  const SECRET = "Secr3tTail";
  // Each is what a user writes when a password holds a character a URL reserves.
  const BAD = [
    `postgres://app:pa@${SECRET}@127.0.0.1:5432/tokens`,
    `postgres://app:pa@${SECRET}@db.example/tokens?sslmode=require`,
    `postgres://app:pa#${SECRET}@127.0.0.1:5432/tokens`,
    `postgres://app:pa/${SECRET}@127.0.0.1:5432/tokens`,
    `postgres://app:pa?${SECRET}@127.0.0.1:5432/tokens`,
    `postgres://app:pa?${SECRET}=1@127.0.0.1:5432/tokens`,
    `postgres://app:pa%zz${SECRET}@127.0.0.1:5432/tokens`,
    `postgres://app:pa[${SECRET}@127.0.0.1:5432/tokens`,
    `postgres://app:pa ${SECRET}@127.0.0.1:5432/tokens`,
    `postgres://ap@p:${SECRET}@127.0.0.1:5432/tokens`,
    `postgres://app:${SECRET}@127.0.0.1:99999/tokens`,
    `postgres://app:${SECRET}@127.0.0.1:54x2/tokens`,
    `host=127.0.0.1 user=app password=x dbname=tokens host=app:${SECRET}@db.example`,
  ];
  const leaks = (text) => text.includes(SECRET) || text.includes("pa@") || text.includes("Secr3t");

  it("new TokenStorage refuses each with ERR_TOKEN_STORAGE_CONFIG, saying to percent-encode, quoting none of it", () => {
    for (const url of BAD) {
      let thrown = null;
      try {
        new TokenStorage({ storage: "postgres", url, connectTimeout: 300 }).close();
      } catch (e) {
        thrown = e;
      }
      assert.ok(thrown, `${url} was accepted`);
      assert.equal(thrown.code, "ERR_TOKEN_STORAGE_CONFIG", `${url}: ${thrown.code}: ${thrown.message}`);
      assert.match(thrown.message, /^options\.url: /);
      assert.ok(!leaks(thrown.message) && !leaks(thrown.stack), `${url}: ${thrown.message}`);
      if (!/99999|54x2|host=/.test(url)) assert.match(thrown.message, /percent-encode/, url);
    }
  });

  it("TOKEN_DATABASE_URL fails at require with the same error; nothing of the password reaches a log line", () => {
    for (const url of BAD) {
      const r = runNode(
        `try { const t = require(PKG); t.getStats(); console.log(JSON.stringify({ ok: true })); }
         catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, stack: e.stack })); }`,
        { env: { TOKEN_STORAGE: "postgres", TOKEN_DATABASE_URL: url, TOKEN_STORAGE_LOG: "debug" } },
      );
      const out = JSON.parse(r.stdout);
      assert.equal(out.code, "ERR_TOKEN_STORAGE_CONFIG", `${url}: ${r.stdout}`);
      assert.match(out.message, /^TOKEN_DATABASE_URL: /);
      assert.ok(!leaks(r.stdout) && !leaks(r.stderr), `${url}:\n${r.stdout}\n${r.stderr}`);
    }
  });

  it("the same password percent-encoded is accepted: location, the failure's message and the log show host:port/database only", () => {
    const url = `postgres://app:pa%40${SECRET}%2F%3F%23%25@127.0.0.1:1/tokens?sslmode=disable`;
    const r = runNode(
      `const { TokenStorage } = require(PKG);
       const s = new TokenStorage({ storage: "postgres", url: process.env.URL, connectTimeout: 300 });
       let failure = null;
       try { s.getStats(); } catch (e) { failure = { code: e.code, message: e.message }; }
       console.log(JSON.stringify({ location: s.location, failure }));`,
      { env: { URL: url, TOKEN_STORAGE_LOG: "debug" } },
    );
    const out = JSON.parse(r.stdout);
    assert.equal(out.location, "127.0.0.1:1/tokens");
    assert.equal(out.failure.code, "ERR_TOKEN_STORAGE_UNAVAILABLE");
    assert.match(r.stderr, /127\.0\.0\.1:1\/tokens/, "the failure is logged, naming the server");
    assert.ok(!leaks(r.stdout) && !leaks(r.stderr), `${r.stdout}\n${r.stderr}`);
  });
});

describe("storeAccessTokens with one access token given twice: as its records stored in order", () => {
  for (const kind of KINDS) {
    describe(kind, () => {
      const ctx = freshStore(kind);
      const token = (accessToken, refreshToken) => ({ accessToken, refreshToken, apiKey: "sk-key", userId: "u", clientId: "c", scopes: ["mcp"] });

      it("a refresh string given to the token's first record, not its last, is gone; the token that had it before keeps none", () => {
        const s = ctx.store;
        s.storeAccessTokens([token("x", "r1"), token("y", "r3")]);
        s.storeAccessTokens([token("a", "r1"), token("a", "r2"), token("b", "r3"), token("b", null)]);
        const oneByOne = new TokenStorage({ storage: "memory" });
        for (const batch of [[token("x", "r1"), token("y", "r3")], [token("a", "r1"), token("a", "r2"), token("b", "r3"), token("b", null)]]) {
          for (const t of batch) oneByOne.storeAccessToken(t.accessToken, t.refreshToken, t.apiKey, t.userId, t.clientId, t.scopes, null);
        }
        for (const store of [s, oneByOne]) {
          assert.equal(store.getRefreshToken("r1"), null, `${kind}: r1 was given to a, then a was replaced`);
          assert.equal(store.getRefreshToken("r3"), null);
          assert.equal(store.getAccessToken("x").refreshToken, null);
          assert.equal(store.getAccessToken("y").refreshToken, null);
          assert.equal(store.getAccessToken("a").refreshToken, "r2");
          assert.equal(store.getRefreshToken("r2").accessToken, "a");
          assert.equal(store.getAccessToken("b").refreshToken, null);
          assert.equal(store.rotateRefreshToken("r1", "a2", "r4"), null);
          assert.deepEqual(store.getStats(), { ...store.getStats(), totalTokens: 4, uniqueUsers: 1 });
        }
        oneByOne.close();
      });
    });
  }
});

describe("getAllClients is in registration order, also for clients registered within one millisecond", () => {
  for (const kind of KINDS) {
    describe(kind, () => {
      const ctx = freshStore(kind);

      it("200 registrations and a re-registration of the first: the ids in the order they were first registered", () => {
        const s = ctx.store;
        const ids = [];
        for (let i = 0; i < 100; i++) ids.push(s.registerClient({ client_name: `c${i}` }).client_id);
        for (let i = 0; i < 100; i++) {
          // Ids chosen to sort against their registration order.
          const id = `static-${String(999 - i).padStart(3, "0")}`;
          s.preRegisterClient(id, null);
          ids.push(id);
        }
        s.preRegisterClient("static-999", "rotated");
        const got = s.getAllClients();
        const outOfOrder = got.filter((id, i) => id !== ids[i]).length;
        assert.equal(outOfOrder, 0, `${kind}: ${outOfOrder}/200 out of registration order`);
        assert.deepEqual(got, ids);
      });
    });
  }
});

describe("PostgreSQL: sslmode=require against a server that offers no TLS", () => {
  it("is ERR_TOKEN_STORAGE_CONFIG naming sslmode, not UNAVAILABLE (which reconnecting would never fix)", async () => {
    // What a PostgreSQL server without TLS does: answer the SSLRequest with "N".
    const server = net.createServer((socket) => {
      socket.once("data", () => socket.write("N"));
      socket.on("error", () => {});
    });
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address();
    try {
      for (const mode of ["require", "verify-ca", "verify-full"]) {
        const r = await runNodeAsync(
          `const { TokenStorage } = require(PKG);
           const s = new TokenStorage({ storage: "postgres", url: process.env.URL, connectTimeout: 2000 });
           try { s.getStats(); console.log("{}"); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`,
          { env: { URL: `postgres://app:hunter2@127.0.0.1:${port}/tokens?sslmode=${mode}`, TOKEN_STORAGE_LOG: "silent" } },
        );
        const out = JSON.parse(r.stdout);
        assert.equal(out.code, "ERR_TOKEN_STORAGE_CONFIG", `${mode}: ${r.stdout}${r.stderr}`);
        assert.match(out.message, new RegExp(`^options\\.url: sslmode=${mode} .*127\\.0\\.0\\.1:${port}/tokens does not offer TLS`));
        assert.ok(!out.message.includes("hunter2") && !out.message.includes("reconnects"), out.message);
      }
    } finally {
      server.close();
    }
  });
});
