"use strict";
// native-token-storage/promises: the module's functions, each returning a Promise, the work
// done on a thread of libuv's pool (as `fs/promises` is to `fs`). Same store (the default
// store, from the environment), same checks, results and errors as the synchronous ones;
// a bad argument rejects with a TypeError instead of throwing.

const { TokenStorage } = require("./lib/storage");
const { TokenStorageError } = require("./lib/errors");
const { defaultStore } = require("./lib/default-store");

const p = () => defaultStore().promises;

function storeAccessToken(accessToken, refreshToken, apiKey, userId, clientId, scopes, expiresAt) {
  return p().storeAccessToken(accessToken, refreshToken, apiKey, userId, clientId, scopes, expiresAt);
}

function storeAccessTokens(records) {
  return p().storeAccessTokens(records);
}

function getAccessToken(token) {
  return p().getAccessToken(token);
}

function storeAuthorizationCode(code, userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes, expiresIn) {
  return p().storeAuthorizationCode(code, userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes, expiresIn);
}

function consumeAuthorizationCode(code, codeVerifier) {
  return p().consumeAuthorizationCode(code, codeVerifier);
}

function getRefreshToken(refreshToken) {
  return p().getRefreshToken(refreshToken);
}

function revokeRefreshToken(refreshToken) {
  return p().revokeRefreshToken(refreshToken);
}

function deleteToken(token) {
  return p().deleteToken(token);
}

function deleteUserTokens(userId) {
  return p().deleteUserTokens(userId);
}

function cleanupExpiredTokens(batchSize) {
  return p().cleanupExpiredTokens(batchSize);
}

function getStats() {
  return p().getStats();
}

function rotateRefreshToken(refreshToken, newAccessToken, newRefreshToken, expiresAt) {
  return p().rotateRefreshToken(refreshToken, newAccessToken, newRefreshToken, expiresAt);
}

function storePendingAuthorization(state, data, ttlSeconds) {
  return p().storePendingAuthorization(state, data, ttlSeconds);
}

function consumePendingAuthorization(state) {
  return p().consumePendingAuthorization(state);
}

function registerClient(metadata) {
  return p().registerClient(metadata);
}

function getClient(clientId) {
  return p().getClient(clientId);
}

function verifyClient(clientId, clientSecret) {
  return p().verifyClient(clientId, clientSecret);
}

function preRegisterClient(clientId, clientSecret, metadata) {
  return p().preRegisterClient(clientId, clientSecret, metadata);
}

function getAllClients() {
  return p().getAllClients();
}

function closeDB() {
  return p().closeDB();
}

// Listed by name, so that Node finds them for `import { … } from` in ES modules.
module.exports = {
  storeAccessToken,
  storeAccessTokens,
  getAccessToken,
  storeAuthorizationCode,
  consumeAuthorizationCode,
  getRefreshToken,
  revokeRefreshToken,
  deleteToken,
  deleteUserTokens,
  cleanupExpiredTokens,
  getStats,
  rotateRefreshToken,
  storePendingAuthorization,
  consumePendingAuthorization,
  registerClient,
  getClient,
  verifyClient,
  preRegisterClient,
  getAllClients,
  closeDB,
  TokenStorage,
  TokenStorageError,
};
