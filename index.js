"use strict";
// native-token-storage: the synchronous functions of a Map-based tokenStorage.js, backed by
// a Rust memory store, a SQLite file or PostgreSQL, plus the rest of an OAuth server's state
// (rotation, pending logins). `require("native-token-storage")` in place of
// `require("./utils/tokenStorage")`; set TOKEN_STORAGE=sqlite (or db) to keep tokens across restarts.

const { TokenStorage } = require("./lib/storage");
const { TokenStorageError } = require("./lib/errors");
const { defaultStore: store, closeDefaultStore } = require("./lib/default-store");
const native = require("./lib/native");

function storeAccessToken(accessToken, refreshToken, apiKey, userId, clientId, scopes = [], expiresAt = null) {
  return store().storeAccessToken(accessToken, refreshToken, apiKey, userId, clientId, scopes, expiresAt);
}

function getAccessToken(token) {
  return store().getAccessToken(token);
}

/** Not in the old module: many tokens at once, all or none. */
function storeAccessTokens(records) {
  return store().storeAccessTokens(records);
}

function storeAuthorizationCode(code, userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes, expiresIn = 600) {
  return store().storeAuthorizationCode(code, userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes, expiresIn);
}

function consumeAuthorizationCode(code, codeVerifier) {
  return store().consumeAuthorizationCode(code, codeVerifier);
}

function getRefreshToken(refreshToken) {
  return store().getRefreshToken(refreshToken);
}

function revokeRefreshToken(refreshToken) {
  return store().revokeRefreshToken(refreshToken);
}

function deleteToken(token) {
  return store().deleteToken(token);
}

function deleteUserTokens(userId) {
  return store().deleteUserTokens(userId);
}

function cleanupExpiredTokens(batchSize) {
  return store().cleanupExpiredTokens(batchSize);
}

function cleanupExpiredTokensAsync(batchSize) {
  return store().cleanupExpiredTokensAsync(batchSize);
}

function getStats() {
  return store().getStats();
}

/** Not in the old module: the refresh grant in one atomic step (new pair, or null). */
function rotateRefreshToken(refreshToken, newAccessToken, newRefreshToken, expiresAt = null) {
  return store().rotateRefreshToken(refreshToken, newAccessToken, newRefreshToken, expiresAt);
}

/** Not in the old module: single-use state for the authorize → upstream login → callback hop. */
function storePendingAuthorization(state, data, ttlSeconds = 600) {
  return store().storePendingAuthorization(state, data, ttlSeconds);
}

function consumePendingAuthorization(state) {
  return store().consumePendingAuthorization(state);
}

/** Closes the default store (the SQLite file); the next call reopens it. */
const closeDB = closeDefaultStore;

/** The version of the SQLite library built into the addon. */
const sqliteVersion = native.sqliteVersion;

// Listed by name, so that Node finds them for `import { … } from` in ES modules.
module.exports = {
  storeAccessToken,
  getAccessToken,
  storeAccessTokens,
  storeAuthorizationCode,
  consumeAuthorizationCode,
  getRefreshToken,
  revokeRefreshToken,
  deleteToken,
  deleteUserTokens,
  cleanupExpiredTokens,
  cleanupExpiredTokensAsync,
  getStats,
  rotateRefreshToken,
  storePendingAuthorization,
  consumePendingAuthorization,
  closeDB,
  TokenStorage,
  TokenStorageError,
  sqliteVersion,
};
