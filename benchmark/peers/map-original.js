"use strict";
// (a') The original module's behaviour, for issue 18's memory targets ("the original Map
// module unchanged"): the server's utils/tokenStorage.js (Amama-Fatima/openrouter-multimodeal-mcp,
// server/), not copied here but reproduced operation by operation, as it behaves:
// - four Maps (tokens, refresh tokens, user -> Set of tokens, codes);
// - a store keeps the caller's arguments as they are (no checks, no copies; the scopes array
//   is shared) with `createdAt: new Date()`, and the caller passes expiresAt as a Date;
// - a get is `Map.get` plus `expiresAt && new Date() > expiresAt`, and returns the stored
//   record itself (a caller that changes it changes the store);
// - a code is consumed by get, S256 hash compare, delete; each stored code also arms a
//   `setTimeout` for its expiry, as the original does;
// - deleteToken leaves the refresh token behind; getRefreshToken does not check expiry;
//   getStats is the Maps' sizes.
// Left out, and said in the report: the `console.log` line of every store (it would measure
// the console) and the 5-minute `setInterval` cleanup (ours runs with cleanupInterval 0 too).
// Because of the points above it does not follow the contract, so the trial skips the
// contract pass for it (followsContract: false) and it is timed on the same workloads,
// whose checks it passes. benchmark/peers/map.js is the same design made to follow the
// contract.
const { createHash } = require("node:crypto");

function open() {
  const tokens = new Map();
  const refreshTokens = new Map();
  const users = new Map();
  const codes = new Map();

  function deleteToken(token) {
    const rec = tokens.get(token);
    if (!rec) return;
    tokens.delete(token);
    const set = users.get(rec.userId);
    if (set) {
      set.delete(token);
      if (set.size === 0) users.delete(rec.userId);
    }
  }

  function storeAccessToken(accessToken, refreshToken, apiKey, userId, clientId, scopes = [], expiresAt = null) {
    const createdAt = new Date();
    tokens.set(accessToken, { apiKey, userId, clientId, scopes, refreshToken, expiresAt, createdAt });
    if (refreshToken) refreshTokens.set(refreshToken, { userId, clientId, scopes, accessToken, createdAt });
    let set = users.get(userId);
    if (!set) users.set(userId, (set = new Set()));
    set.add(accessToken);
  }

  function cleanupExpiredTokens() {
    const now = new Date();
    const expired = [];
    tokens.forEach((rec, token) => {
      if (rec.expiresAt && now > rec.expiresAt) expired.push(token);
    });
    expired.forEach(deleteToken);
    // The original returns nothing; the harness wants the count it checks.
    return expired.length;
  }

  const seedTokens = (rows) => {
    for (const r of rows) {
      storeAccessToken(r.accessToken, r.refreshToken, r.apiKey, r.userId, r.clientId, r.scopes, r.expiresAt == null ? null : new Date(r.expiresAt));
    }
  };
  seedTokens.oneCallPerToken = true;

  return {
    storeAccessToken,

    getAccessToken(token) {
      const rec = tokens.get(token);
      if (!rec) return null;
      if (rec.expiresAt && new Date() > rec.expiresAt) {
        deleteToken(token);
        return null;
      }
      return rec;
    },

    storeAuthorizationCode(code, userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes, expiresIn = 600) {
      const expiresAt = Date.now() + expiresIn * 1000;
      codes.set(code, { userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes, expiresAt, createdAt: Date.now() });
      setTimeout(() => codes.delete(code), expiresIn * 1000);
    },

    consumeAuthorizationCode(code, codeVerifier) {
      const rec = codes.get(code);
      if (!rec) return null;
      if (Date.now() > rec.expiresAt) {
        codes.delete(code);
        return null;
      }
      if (rec.codeChallengeMethod === "S256" && createHash("sha256").update(codeVerifier).digest("base64url") !== rec.codeChallenge) return null;
      codes.delete(code);
      return rec;
    },

    getRefreshToken: (refreshToken) => refreshTokens.get(refreshToken) || null,

    revokeRefreshToken(refreshToken) {
      const rec = refreshTokens.get(refreshToken);
      if (rec) {
        deleteToken(rec.accessToken);
        refreshTokens.delete(refreshToken);
      }
    },

    deleteToken,

    deleteUserTokens(userId) {
      const set = users.get(userId);
      if (set) {
        set.forEach((token) => tokens.delete(token));
        users.delete(userId);
      }
    },

    cleanupExpiredTokens,

    getStats: () => ({ totalTokens: tokens.size, uniqueUsers: users.size }),

    closeDB() {},
    close() {},

    // Seeding as the server stores tokens, one storeAccessToken each, with expiresAt a Date
    // (the harness's rows carry epoch milliseconds).
    seedTokens,
  };
}

module.exports = { open, followsContract: false };
