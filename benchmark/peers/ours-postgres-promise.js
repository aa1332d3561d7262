"use strict";
// (g) Ours, PostgreSQL store through its Promise API (`store.promises`): the work runs on
// libuv's thread pool, each call awaited one at a time, as the async sqlite3 peer is.
const { openOurs, slices } = require("./ours");

function open({ url, schema }) {
  const store = openOurs({ storage: "postgres", url, schema });
  // The Promise API's cleanupExpiredTokens is already the batched background one.
  return {
    ...store.promises,
    async seedTokens(rows) {
      for (const slice of slices(rows)) await store.promises.storeAccessTokens(slice);
    },
  };
}

module.exports = { open, isAsync: true };
