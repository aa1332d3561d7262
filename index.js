"use strict";
// native-token-storage: the synchronous functions of a Map-based tokenStorage.js, backed by
// a Rust memory store or a SQLite file. `require("native-token-storage")` in place of
// `require("./utils/tokenStorage")`; set TOKEN_STORAGE=db to keep tokens across restarts.

const { TokenStorage } = require("./lib/storage");
const { TokenStorageError } = require("./lib/errors");
const { defaultStore: store, closeDefaultStore } = require("./lib/default-store");
const native = require("./lib/native");

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
  /** Not in the old module: the refresh grant in one atomic step (new pair, or null). */
  rotateRefreshToken: (refreshToken, newAccessToken, newRefreshToken, expiresAt = null) =>
    store().rotateRefreshToken(refreshToken, newAccessToken, newRefreshToken, expiresAt),
  /** Not in the old module: single-use state for the authorize → upstream login → callback hop. */
  storePendingAuthorization: (state, data, ttlSeconds = 600) => store().storePendingAuthorization(state, data, ttlSeconds),
  consumePendingAuthorization: (state) => store().consumePendingAuthorization(state),
  /** Closes the default store (the SQLite file); the next call reopens it. */
  closeDB: closeDefaultStore,
  TokenStorage,
  TokenStorageError,
  /** The version of the SQLite library built into the addon. */
  sqliteVersion: native.sqliteVersion,
};
