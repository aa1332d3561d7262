"use strict";
// (d, e) This package: the Rust store behind napi, used exactly as a server would.
const path = require("node:path");

const PACKAGE = path.join(__dirname, "..", "..");

function openOurs(storage, file) {
  const { TokenStorage } = require(PACKAGE);
  if (typeof TokenStorage !== "function") throw new Error(`${PACKAGE} exports no TokenStorage class: build it with \`npm run build\``);
  const store = new TokenStorage(storage === "db" ? { storage, path: file } : { storage });
  // Bulk load for seeding, as the SQL peers get one: storeAccessTokens takes the rows as
  // they are ({ accessToken, refreshToken, apiKey, userId, clientId, scopes, expiresAt })
  // and stores them all in one transaction.
  store.seedTokens = (rows) => {
    store.storeAccessTokens(rows);
  };
  return store;
}

module.exports = { openOurs, PACKAGE };
