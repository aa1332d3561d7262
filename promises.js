"use strict";
// native-token-storage/promises: the module's functions, each returning a Promise, the work
// done on a thread of libuv's pool (as `fs/promises` is to `fs`). Same store (the default
// store, from the environment), same checks, results and errors as the synchronous ones;
// a bad argument rejects with a TypeError instead of throwing.

const { TokenStorage } = require("./lib/storage");
const { TokenStorageError } = require("./lib/errors");
const { defaultStore } = require("./lib/default-store");

const p = () => defaultStore().promises;

module.exports = {
  storeAccessToken: (accessToken, refreshToken, apiKey, userId, clientId, scopes, expiresAt) =>
    p().storeAccessToken(accessToken, refreshToken, apiKey, userId, clientId, scopes, expiresAt),
  storeAccessTokens: (records) => p().storeAccessTokens(records),
  getAccessToken: (token) => p().getAccessToken(token),
  storeAuthorizationCode: (code, userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes, expiresIn) =>
    p().storeAuthorizationCode(code, userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes, expiresIn),
  consumeAuthorizationCode: (code, codeVerifier) => p().consumeAuthorizationCode(code, codeVerifier),
  getRefreshToken: (refreshToken) => p().getRefreshToken(refreshToken),
  revokeRefreshToken: (refreshToken) => p().revokeRefreshToken(refreshToken),
  deleteToken: (token) => p().deleteToken(token),
  deleteUserTokens: (userId) => p().deleteUserTokens(userId),
  cleanupExpiredTokens: (batchSize) => p().cleanupExpiredTokens(batchSize),
  getStats: () => p().getStats(),
  rotateRefreshToken: (refreshToken, newAccessToken, newRefreshToken, expiresAt) =>
    p().rotateRefreshToken(refreshToken, newAccessToken, newRefreshToken, expiresAt),
  storePendingAuthorization: (state, data, ttlSeconds) => p().storePendingAuthorization(state, data, ttlSeconds),
  consumePendingAuthorization: (state) => p().consumePendingAuthorization(state),
  registerClient: (metadata) => p().registerClient(metadata),
  getClient: (clientId) => p().getClient(clientId),
  verifyClient: (clientId, clientSecret) => p().verifyClient(clientId, clientSecret),
  preRegisterClient: (clientId, clientSecret, metadata) => p().preRegisterClient(clientId, clientSecret, metadata),
  getAllClients: () => p().getAllClients(),
  closeDB: () => p().closeDB(),
  TokenStorage,
  TokenStorageError,
};
