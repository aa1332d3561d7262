"use strict";
// (d, e) This package: the Rust store behind napi, used exactly as a server would.
const path = require("node:path");

const PACKAGE = path.join(__dirname, "..", "..");

function openOurs(storage, file) {
  const { TokenStorage } = require(PACKAGE);
  if (typeof TokenStorage !== "function") throw new Error(`${PACKAGE} exports no TokenStorage class: build it with \`npm run build\``);
  const store = new TokenStorage(storage === "db" ? { storage, path: file } : { storage });
  // Bulk load for seeding, as the SQL peers get one: storeAccessTokens takes the rows as
  // they are ({ accessToken, refreshToken, apiKey, userId, clientId, scopes, expiresAt }),
  // one transaction per call. In slices of 20,000: one call with a million rows would
  // make V8's heap hold them all at once, and the RSS measured after seeding would show
  // that high-water mark instead of the store.
  store.seedTokens = (rows) => {
    let slice = [];
    for (const row of rows) {
      slice.push(row);
      if (slice.length === 20_000) {
        store.storeAccessTokens(slice);
        slice = [];
      }
    }
    store.storeAccessTokens(slice);
  };
  return store;
}

module.exports = { openOurs, PACKAGE };
