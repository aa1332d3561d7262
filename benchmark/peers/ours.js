"use strict";
// (d, e, f, g) This package: the Rust store behind napi, used exactly as a server would.
const path = require("node:path");

const PACKAGE = path.join(__dirname, "..", "..");
// One call with a million rows would make V8's heap hold them all at once, and the RSS
// measured after seeding would show that high-water mark instead of the store.
const SEED_SLICE = 20_000;

function* slices(rows) {
  let slice = [];
  for (const row of rows) {
    slice.push(row);
    if (slice.length === SEED_SLICE) {
      yield slice;
      slice = [];
    }
  }
  if (slice.length) yield slice;
}

// `options` are TokenStorage's ({ storage, path } or { storage, url, schema }).
function openOurs(options) {
  const { TokenStorage } = require(PACKAGE);
  if (typeof TokenStorage !== "function") throw new Error(`${PACKAGE} exports no TokenStorage class: build it with \`npm run build\``);
  // No automatic cleanup (where the package has it): it would remove the expired tokens that
  // the cleanup measurement adds and counts, and run inside other ops' timings. A package
  // without the option ignores it.
  const store = new TokenStorage({ cleanupInterval: 0, ...options });
  // Bulk load for seeding, as the SQL peers get one: storeAccessTokens takes the rows as
  // they are ({ accessToken, refreshToken, apiKey, userId, clientId, scopes, expiresAt }),
  // one transaction per call of SEED_SLICE rows.
  store.seedTokens = (rows) => {
    for (const slice of slices(rows)) store.storeAccessTokens(slice);
  };
  return store;
}

module.exports = { openOurs, slices, PACKAGE };
