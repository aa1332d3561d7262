"use strict";
// Defects of issue 15 in the local stores (memory and SQLite), each with the test that
// failed before its fix.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { storeOptions, storesPerTest } = require("./helpers/setup");

const ctx = storesPerTest();
const open = (options) => ctx.open(options);

// PostgreSQL's order is another branch's fix (issue 15, defect 3): memory and SQLite here.
for (const kind of ["memory", "db"]) {
  describe(`getAllClients is in registration order (${kind})`, () => {
    it("200 clients registered within a millisecond or so come back in the order they came", () => {
      const store = open(storeOptions(kind, path.join(ctx.dir, "tokens.db")));
      const ids = [];
      // Ids that do not sort in registration order, so an order by id (or by a
      // millisecond timestamp, then id) shows.
      for (let i = 0; i < 200; i++) {
        const id = `client-${(i * 7919) % 1000}`;
        store.preRegisterClient(id, "secret", {});
        ids.push(id);
      }
      ids.push(store.registerClient({ redirect_uris: ["https://a.example/cb"] }).client_id);
      assert.deepEqual(store.getAllClients(), ids);
    });

    it("registering an id again keeps its first position", () => {
      const store = open(storeOptions(kind, path.join(ctx.dir, "tokens.db")));
      for (const id of ["z", "a", "m"]) store.preRegisterClient(id, "s", {});
      store.preRegisterClient("z", "s2", { client_name: "again" });
      assert.deepEqual(store.getAllClients(), ["z", "a", "m"]);
      assert.equal(store.verifyClient("z", "s2"), true);
      if (kind === "db") {
        store.close();
        assert.deepEqual(store.getAllClients(), ["z", "a", "m"], "after reopening the file");
      }
    });
  });
}
