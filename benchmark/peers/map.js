"use strict";
// (a) The original design: JavaScript Maps in the server process. Expiry is checked on
// read; cleanupExpiredTokens walks the maps. Nothing survives a restart.
const { pkceOk, checkTokenArgs, checkCodeArgs, isLookup, expired } = require("./common");

function open() {
  const accessTokens = new Map(); // token -> record
  const refreshTokens = new Map(); // refresh token -> record
  const codes = new Map(); // code -> record
  const userTokens = new Map(); // userId -> Set of access tokens

  function removeToken(token) {
    const rec = accessTokens.get(token);
    if (!rec) return;
    accessTokens.delete(token);
    if (rec.refreshToken) refreshTokens.delete(rec.refreshToken);
    const set = rec.userId == null ? undefined : userTokens.get(rec.userId);
    if (set) {
      set.delete(token);
      if (set.size === 0) userTokens.delete(rec.userId);
    }
  }

  const api = {
    storeAccessToken(accessToken, refreshToken, apiKey, userId, clientId, scopes = [], expiresAt = null) {
      const expiresMs = checkTokenArgs(accessToken, apiKey, clientId, scopes, expiresAt);
      removeToken(accessToken);
      const createdAt = Date.now();
      userId = userId ?? null;
      refreshToken = refreshToken || null;
      accessTokens.set(accessToken, { apiKey, userId, clientId, scopes: [...scopes], refreshToken, expiresAt: expiresMs, createdAt });
      if (refreshToken) refreshTokens.set(refreshToken, { userId, clientId, scopes: [...scopes], accessToken, createdAt });
      if (userId != null) {
        let set = userTokens.get(userId);
        if (!set) userTokens.set(userId, (set = new Set()));
        set.add(accessToken);
      }
    },

    getAccessToken(token) {
      if (!isLookup("getAccessToken", token)) return null;
      const rec = accessTokens.get(token);
      if (!rec) return null;
      if (expired(rec.expiresAt)) {
        removeToken(token);
        return null;
      }
      return {
        apiKey: rec.apiKey,
        userId: rec.userId,
        clientId: rec.clientId,
        scopes: [...rec.scopes],
        refreshToken: rec.refreshToken,
        expiresAt: rec.expiresAt == null ? null : new Date(rec.expiresAt),
        createdAt: new Date(rec.createdAt),
      };
    },

    storeAuthorizationCode(code, userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes = [], expiresIn = 600) {
      checkCodeArgs(code, apiKey, clientId, redirectUri, scopes, expiresIn);
      const createdAt = Date.now();
      codes.set(code, {
        userId: userId ?? null, apiKey, clientId, redirectUri, codeChallenge: codeChallenge ?? null,
        codeChallengeMethod: codeChallengeMethod ?? null, scopes: [...scopes], expiresAt: createdAt + expiresIn * 1000, createdAt,
      });
    },

    consumeAuthorizationCode(code, codeVerifier) {
      if (!isLookup("consumeAuthorizationCode", code)) return null;
      const rec = codes.get(code);
      if (!rec) return null;
      codes.delete(code); // single use, whatever the outcome
      if (expired(rec.expiresAt) || !pkceOk(rec.codeChallenge, rec.codeChallengeMethod, codeVerifier)) return null;
      return rec;
    },

    getRefreshToken(refreshToken) {
      if (!isLookup("getRefreshToken", refreshToken)) return null;
      const rec = refreshTokens.get(refreshToken);
      if (!rec) return null;
      const access = accessTokens.get(rec.accessToken);
      if (!access || expired(access.expiresAt)) {
        removeToken(rec.accessToken);
        refreshTokens.delete(refreshToken);
        return null;
      }
      return { userId: rec.userId, clientId: rec.clientId, scopes: [...rec.scopes], accessToken: rec.accessToken, createdAt: new Date(rec.createdAt) };
    },

    revokeRefreshToken(refreshToken) {
      if (!isLookup("revokeRefreshToken", refreshToken)) return;
      const rec = refreshTokens.get(refreshToken);
      if (!rec) return;
      refreshTokens.delete(refreshToken);
      removeToken(rec.accessToken);
    },

    deleteToken(token) {
      if (isLookup("deleteToken", token)) removeToken(token);
    },

    deleteUserTokens(userId) {
      if (!isLookup("deleteUserTokens", userId)) return;
      for (const token of userTokens.get(userId) ?? []) removeToken(token);
      for (const [code, rec] of codes) if (rec.userId === userId) codes.delete(code);
    },

    cleanupExpiredTokens() {
      const now = Date.now();
      let removed = 0;
      for (const [token, rec] of accessTokens) {
        if (expired(rec.expiresAt, now)) {
          removeToken(token);
          removed++;
        }
      }
      for (const [code, rec] of codes) {
        if (expired(rec.expiresAt, now)) {
          codes.delete(code);
          removed++;
        }
      }
      return removed;
    },

    // As the original: sizes of the maps (expired tokens count until a read or cleanup removes them).
    getStats() {
      return { totalTokens: accessTokens.size, uniqueUsers: userTokens.size, refreshTokens: refreshTokens.size, pendingCodes: codes.size };
    },

    closeDB() {},
    close() {},
  };
  return api;
}

module.exports = { open };
