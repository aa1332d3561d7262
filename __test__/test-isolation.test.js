"use strict";
// Issue 16: the default memory store lives and dies with the copy of the package that made
// it, as the old module's Maps did. A copy loaded afresh (Jest's per-file module registry,
// jest.resetModules(), a cleared require.cache) starts empty, and the old copy's store is
// freed with it, native memory included. Within one copy, the module, /promises and
// /clients share it. SQLite and PostgreSQL are the same data whichever copy opens them.
// Each case runs in a child process, so that require.cache and the process's memory are
// its own.
const { describe, it, after } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { PG_URL, freshSchema, tempDir, removeDir, nodeJson, runNode } = require("./helpers/setup");

/** Child prelude: `load()` requires the package, `forget()` drops its JS files as Jest's resetModules does, `gc()`. */
const PRELUDE = `
const path = require("node:path");
const own = (k) => k.startsWith(PKG + path.sep) && k.endsWith(".js") && !k.includes(path.sep + "node_modules" + path.sep) && !k.includes(path.sep + "__test__" + path.sep);
const load = (entry = "") => require(PKG + entry);
// Node keeps a required module in its parent's children list too (Jest's registry does
// not). The parent here is node -e's module, named only until the script's first await.
const parent = module;
const forget = () => {
  for (const k of Object.keys(require.cache)) if (own(k)) delete require.cache[k];
  parent.children = parent.children.filter((m) => !own(m.id));
};
require("node:v8").setFlagsFromString("--expose-gc");
const gc = require("node:vm").runInNewContext("gc");
const settle = async () => { for (let i = 0; i < 4; i++) { gc(); await new Promise((r) => setImmediate(r)); } };
const print = (v) => process.stdout.write(JSON.stringify(v) + "\\n");
`;

const child = (code, env) => nodeJson(PRELUDE + code, { env: { TOKEN_STORAGE_LOG: "warn", ...env } });

describe("the default memory store is one per loaded copy of the package", () => {
  it("a copy loaded after require.cache is cleared starts empty; the first keeps its own tokens", () => {
    const out = child(`
      const first = load();
      first.storeAccessToken("t-first", "r-first", "key", "user", "client", [], null);
      forget();
      const second = load();
      print({
        secondStats: second.getStats(),
        secondSeesFirst: second.getAccessToken("t-first"),
        firstSeesOwn: first.getAccessToken("t-first") !== null,
        firstStats: first.getStats(),
      });
    `);
    assert.deepEqual(out.secondStats, { totalTokens: 0, uniqueUsers: 0, storage: "memory" });
    assert.equal(out.secondSeesFirst, null);
    assert.equal(out.firstSeesOwn, true);
    assert.equal(out.firstStats.totalTokens, 1);
  });

  it("within one copy, the module, /promises and /clients share the store", () => {
    const out = child(`
      (async () => {
        const tokens = load();
        const promises = load("/promises");
        const clients = load("/clients");
        tokens.storeAccessToken("t", null, "key", "user", "client", [], null);
        await promises.storePendingAuthorization("state", { v: 1 });
        const { client_id } = clients.registerClient({ redirect_uris: ["https://app/cb"] });
        print({
          promisesSees: (await promises.getAccessToken("t")) !== null,
          tokensSeesPending: tokens.consumePendingAuthorization("state"),
          promisesSeesClient: (await promises.getClient(client_id)) !== null,
        });
      })();
    `);
    assert.deepEqual(out, { promisesSees: true, tokensSeesPending: { v: 1 }, promisesSeesClient: true });
  });

  it("TOKEN_MEMORY_SCOPE=process: one memory store for every copy", () => {
    const out = child(`
      const first = load();
      first.storeAccessToken("t-first", null, "key", "user", "client", [], null);
      forget();
      print({ secondSeesFirst: load().getAccessToken("t-first") !== null });
    `, { TOKEN_MEMORY_SCOPE: "Process" });
    assert.deepEqual(out, { secondSeesFirst: true });
  });

  it("TOKEN_MEMORY_SCOPE=process with keys: the store stays keyed; a copy without them, or with others, is refused", () => {
    const key = (seed) => Buffer.alloc(32, seed).toString("base64");
    const out = child(`
      const keyed = (keys) => {
        if (keys === undefined) delete process.env.TOKEN_ENCRYPTION_KEYS;
        else process.env.TOKEN_ENCRYPTION_KEYS = keys;
        forget();
        return load();
      };
      const code = (f) => { try { return f(); } catch (e) { return e.code; } };
      const first = keyed(${JSON.stringify(`k1:${key(1)}`)});
      first.storeAccessToken("t-first", "r-first", "key", "user", "client", [], null);
      print({
        without: code(() => keyed(undefined).getAccessToken("t-first")),
        otherId: code(() => keyed(${JSON.stringify(`k2:${key(2)}`)}).getAccessToken("t-first")),
        otherKey: code(() => keyed(${JSON.stringify(`k1:${key(3)}`)}).getAccessToken("t-first")),
        same: code(() => keyed(${JSON.stringify(`k1:${key(1)}`)}).getAccessToken("t-first").refreshToken),
        firstStill: first.getAccessToken("t-first").apiKey,
      });
    `, { TOKEN_MEMORY_SCOPE: "process" });
    const refused = "ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH";
    assert.deepEqual(out, { without: refused, otherId: refused, otherKey: refused, same: "r-first", firstStill: "key" });
  });

  it("TOKEN_MEMORY_SCOPE of another value fails the require with ERR_TOKEN_STORAGE_CONFIG", () => {
    const r = runNode(`try { require(PKG); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`, { env: { TOKEN_MEMORY_SCOPE: "thread" } });
    const out = JSON.parse(r.stdout);
    assert.equal(out.code, "ERR_TOKEN_STORAGE_CONFIG");
    assert.match(out.message, /TOKEN_MEMORY_SCOPE is "thread"; accepted values are "module" \(or unset\) and "process"/);
  });

  it("the old copy's store, opened and with its cleanup timer running, is garbage once nothing holds the copy", () => {
    const out = child(`
      (async () => {
        let first = load();
        first.storeAccessToken("t", null, "key", "user", "client", [], null);
        const store = new WeakRef(require(PKG + "/lib/default-store").defaultStore());
        forget();
        first = null;
        await settle();
        print({ collected: store.deref() === undefined });
      })();
    `, { TOKEN_CLEANUP_INTERVAL_SECONDS: "60" });
    assert.deepEqual(out, { collected: true });
  });

  it("its native memory is freed: ten copies of 40 MB each leave the process's memory where two left it", (t) => {
    const out = child(`
      (async () => {
        const N = 20000;
        const apiKey = "k".repeat(2000);
        const rss = [];
        for (let round = 0; round < 10; round++) {
          const copy = load();
          const records = [];
          for (let i = 0; i < N; i++) records.push({ accessToken: "t" + i, refreshToken: null, apiKey: apiKey + i, userId: "u", clientId: "c", scopes: [], expiresAt: null });
          copy.storeAccessTokens(records);
          forget();
          await settle();
          rss.push(process.memoryUsage().rss);
        }
        print({ rss });
      })();
    `);
    const mb = out.rss.map((b) => Math.round(b / 2 ** 20));
    // Kept, ten stores would hold 400 MB; freed, each round reuses the last round's memory.
    assert.ok(mb[9] - mb[1] < 80, `RSS after each round, MB: ${mb.join(", ")}`);
    t.diagnostic(`RSS after each round, MB: ${mb.join(", ")}`);
  });
});

describe("a database default store is the same data in every copy", () => {
  const dir = tempDir();
  after(() => removeDir(dir));
  const cases = [["db", { TOKEN_STORAGE: "db", TOKEN_DB_PATH: path.join(dir, "copies.db") }]];
  if (PG_URL) cases.push(["postgres", { TOKEN_STORAGE: "postgres", TOKEN_DATABASE_URL: PG_URL, TOKEN_DB_SCHEMA: freshSchema() }]);
  for (const [kind, env] of cases) {
    it(`${kind}: a copy loaded after require.cache is cleared sees the first copy's tokens`, () => {
      const out = child(`
        const first = load();
        first.storeAccessToken("t-first", null, "key", "user", "client", [], null);
        forget();
        const second = load();
        print({ secondSeesFirst: second.getAccessToken("t-first") !== null, stats: second.getStats() });
        second.closeDB();
      `, env);
      assert.equal(out.secondSeesFirst, true);
      assert.equal(out.stats.totalTokens, 1);
    });
  }
});
