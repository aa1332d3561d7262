"use strict";
// Issue 16 under Vitest: `vi.resetModules()` re-imports the package's entry files through
// Vitest's module graph, not Node's require cache, which keeps lib/ and the default store
// (see lib/default-store.js). The default store watches the graph's nodes of its entry
// files: here the graph is a stand-in with the two shapes Vitest has had (Vitest 4's
// `evaluatedModules.idToModuleMap`, whose reset sets `promise` to undefined; vite-node's
// `moduleCache` of Vitest 1 to 3, whose reset deletes it and whose `get` adds a node it does
// not have), changed as Vitest's `resetModules` and an `import()` change it. The real
// runners: `npm run consumer-check` (examples/consumer/map-suite/vitest/reset-modules.test.mjs).
// Each case runs in a child process, so that the package and its store are its own.
const { describe, it, after } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { tempDir, removeDir, nodeJson } = require("./helpers/setup");

/** Child prelude: a stand-in for Vitest's graph; `imp(entry)` imports an entry through it, `reset()` is vi.resetModules(). */
const prelude = (shape) => `
const path = require("node:path");
const SHAPE = ${JSON.stringify(shape)};
const file = (entry) => path.join(PKG, entry === "" ? "index.js" : entry.slice(1) + ".js");
class ModuleCacheMap extends Map {
  get(id) { if (!super.has(id)) super.set(id, { imports: new Set(), importers: new Set() }); return super.get(id); }
}
const graph = SHAPE === "vitest4" ? new Map() : new ModuleCacheMap();
globalThis.__vitest_worker__ = SHAPE === "vitest4" ? { evaluatedModules: { idToModuleMap: graph } } : { moduleCache: graph };
const imp = (entry = "") => {
  const id = file(entry);
  if (!graph.has(id)) graph.set(id, { importers: new Set() });
  const node = graph.get(id);
  if (node.promise === undefined) { node.promise = Promise.resolve(); node.evaluated = true; }
  return require(PKG + entry);
};
const reset = () => graph.forEach((node) => {
  if (SHAPE === "vitest4") { node.promise = undefined; node.evaluated = false; }
  else { delete node.promise; delete node.evaluated; }
});
const print = (v) => process.stdout.write(JSON.stringify(v) + "\\n");
`;

const child = (shape, code, env) => nodeJson(prelude(shape) + code, { env: { TOKEN_STORAGE_LOG: "warn", TOKEN_STORAGE: "", ...env } });
const store = (name) => `${name}.storeAccessToken("t-" + Math.random(), null, "key", "user", "client", [], null);`;

for (const shape of ["vitest4", "vite-node"]) {
  describe(`under Vitest (${shape} module graph), the default memory store`, () => {
    it("is a fresh one once the package is imported again after vi.resetModules()", () => {
      const out = child(shape, `
        const first = imp();
        first.storeAccessToken("t-first", null, "key", "user", "client", [], null);
        const before = first.getStats().totalTokens;
        reset();
        const second = imp();
        print({ before, after: second.getStats().totalTokens, seesFirst: second.getAccessToken("t-first"), graphSize: graph.size });
      `);
      assert.deepEqual(out, { before: 1, after: 0, seesFirst: null, graphSize: 1 }); // no node added for /promises or /clients
    });

    it("has the client of MCP_CLIENT_ID again after a reset and a new import of /clients", () => {
      const out = child(shape, `
        const clients = imp("/clients");
        const before = clients.verifyClient("inspector", "s3cret-from-env");
        clients.registerClient({ redirect_uris: ["https://app/cb"] });
        reset();
        const again = imp("/clients");
        print({ before, after: again.verifyClient("inspector", "s3cret-from-env"), all: again.getAllClients() });
      `, { MCP_CLIENT_ID: "inspector", MCP_CLIENT_SECRET: "s3cret-from-env" });
      assert.deepEqual(out, { before: true, after: true, all: ["inspector"] });
    });

    it("is shared by the entries imported after one reset, whichever comes first", () => {
      const out = child(shape, `
        (async () => {
          const main = imp();
          ${store("main")}
          reset();
          const promises = imp("/promises");
          const afterReset = (await promises.getStats()).totalTokens;
          await promises.storeAccessToken("t-promises", null, "key", "user", "client", [], null);
          const again = imp();
          const clients = imp("/clients");
          clients.registerClient({ client_id: "c", redirect_uris: ["https://app/cb"] });
          print({ afterReset, mainSees: again.getAccessToken("t-promises") !== null, total: again.getStats().totalTokens });
        })();
      `);
      assert.deepEqual(out, { afterReset: 0, mainSees: true, total: 1 });
    });

    it("is kept by vi.resetModules() without a new import, and by imports without a reset", () => {
      const out = child(shape, `
        const main = imp();
        ${store("main")}
        reset();
        ${store("main")}
        const kept = main.getStats().totalTokens;
        imp("/promises");
        const second = main.getStats().totalTokens; // a reset, then an import of an entry not imported yet: fresh
        ${store("main")}
        imp("/clients");
        imp();
        print({ kept, second, third: main.getStats().totalTokens });
      `);
      assert.deepEqual(out, { kept: 2, second: 0, third: 1 });
    });

    it("is fresh after each of several resets, and the old ones are freed", () => {
      const out = child(shape, `
        (async () => {
          require("node:v8").setFlagsFromString("--expose-gc");
          const gc = require("node:vm").runInNewContext("gc");
          const settle = async () => { for (let i = 0; i < 4; i++) { gc(); await new Promise((r) => setImmediate(r)); } };
          const big = "x".repeat(4000);
          const rss = [];
          const counts = [];
          for (let round = 0; round < 8; round++) {
            reset();
            const t = imp();
            counts.push(t.getStats().totalTokens);
            t.storeAccessTokens(Array.from({ length: 10000 }, (_, i) => ({ accessToken: round + "-" + i + big, apiKey: "k", userId: "u", clientId: "c" })));
            await settle();
            rss.push(process.memoryUsage().rss);
          }
          print({ counts, mb: rss.map((b) => Math.round(b / 2 ** 20)) });
        })();
      `);
      assert.deepEqual(out.counts, [0, 0, 0, 0, 0, 0, 0, 0]);
      assert.ok(out.mb[7] - out.mb[1] < 80, `RSS after each round, MB: ${out.mb.join(", ")}`);
    });
  });
}

describe("the watch changes nothing it should not", () => {
  const dir = tempDir();
  after(() => removeDir(dir));

  it("a SQLite default store is the same data after a reset and a new import", () => {
    const out = child("vitest4", `
      const first = imp();
      first.storeAccessToken("t-first", null, "key", "user", "client", [], null);
      reset();
      const second = imp();
      print({ seesFirst: second.getAccessToken("t-first") !== null });
      second.closeDB();
    `, { TOKEN_STORAGE: "db", TOKEN_DB_PATH: path.join(dir, "reset.db") });
    assert.deepEqual(out, { seesFirst: true });
  });

  it("TOKEN_MEMORY_SCOPE=process keeps its one store", () => {
    const out = child("vitest4", `
      const first = imp();
      ${store("first")}
      reset();
      print({ total: imp().getStats().totalTokens });
    `, { TOKEN_MEMORY_SCOPE: "process" });
    assert.deepEqual(out, { total: 1 });
  });

  it("a graph of another shape, or none, is ignored", () => {
    const out = child("vitest4", `
      const first = imp();
      ${store("first")}
      const totals = [];
      for (const state of [{ evaluatedModules: {} }, { moduleCache: 42 }, null, "x"]) {
        globalThis.__vitest_worker__ = state;
        reset();
        imp();
        totals.push(first.getStats().totalTokens);
      }
      print({ totals });
    `);
    assert.deepEqual(out, { totals: [1, 1, 1, 1] });
  });
});
