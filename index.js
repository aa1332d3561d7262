"use strict";
// native-token-storage: the synchronous functions of a Map-based tokenStorage.js, backed by
// a Rust memory store or a SQLite file. `require("native-token-storage")` in place of
// `require("./utils/tokenStorage")`; set TOKEN_STORAGE=db to keep tokens across restarts.

const { TokenStorage, SHARED, SETTING_NAMES } = require("./lib/storage");
const { TokenStorageError } = require("./lib/errors");
const native = require("./lib/native");

let defaultStore = null;

/** The options of the default store: the one place that names the environment variables. */
function optionsFromEnvironment(shared) {
  const env = process.env;
  return {
    storage: env.TOKEN_STORAGE,
    path: env.TOKEN_DB_PATH,
    synchronous: env.TOKEN_DB_SYNC,
    [SHARED]: shared,
    [SETTING_NAMES]: { storage: "TOKEN_STORAGE", synchronous: "TOKEN_DB_SYNC" },
  };
}

// Checked now, so a misconfigured server fails when it starts, not at its first OAuth
// callback. Nothing is opened: the store is built (from the environment as it is then,
// which a late `dotenv` may have filled in) and opened at first use.
new TokenStorage(optionsFromEnvironment(false));

/** The store the module-level functions use, built from the environment at first use. */
function store() {
  if (defaultStore === null) defaultStore = new TokenStorage(optionsFromEnvironment(true));
  return defaultStore;
}

module.exports = {
  storeAccessToken: (accessToken, refreshToken, apiKey, userId, clientId, scopes = [], expiresAt = null) =>
    store().storeAccessToken(accessToken, refreshToken, apiKey, userId, clientId, scopes, expiresAt),
  getAccessToken: (token) => store().getAccessToken(token),
  /** Not in the old module: many tokens at once, all or none. */
  storeAccessTokens: (records) => store().storeAccessTokens(records),
  storeAuthorizationCode: (code, userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes, expiresIn = 600) =>
    store().storeAuthorizationCode(code, userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes, expiresIn),
  consumeAuthorizationCode: (code, codeVerifier) => store().consumeAuthorizationCode(code, codeVerifier),
  getRefreshToken: (refreshToken) => store().getRefreshToken(refreshToken),
  revokeRefreshToken: (refreshToken) => store().revokeRefreshToken(refreshToken),
  deleteToken: (token) => store().deleteToken(token),
  deleteUserTokens: (userId) => store().deleteUserTokens(userId),
  cleanupExpiredTokens: (batchSize) => store().cleanupExpiredTokens(batchSize),
  cleanupExpiredTokensAsync: (batchSize) => store().cleanupExpiredTokensAsync(batchSize),
  getStats: () => store().getStats(),
  /** Closes the default store (the SQLite file); the next call reopens it. */
  closeDB: () => {
    if (defaultStore !== null) defaultStore.close();
  },
  TokenStorage,
  TokenStorageError,
  /** The version of the SQLite library built into the addon. */
  sqliteVersion: native.sqliteVersion,
};
