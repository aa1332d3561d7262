"use strict";
// (c) What a good Node engineer would write instead: synchronous better-sqlite3, WAL,
// synchronous=NORMAL, a memory map (`mmap_size`, the tuning every SQLite performance guide
// gives, as large as ours: 1 GiB), statements prepared once, indexes on user_id and expires_at, one
// transaction per multi-row write, single-use codes via DELETE ... RETURNING.
const Database = require("better-sqlite3");
const c = require("./common");

function open({ path }) {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("busy_timeout = 5000");
  db.pragma("mmap_size = 1073741824");
  db.exec(c.SCHEMA);
  const s = Object.fromEntries(Object.entries(c.SQL).map(([name, sql]) => [name, db.prepare(sql)]));

  const removeToken = (token) => {
    s.deleteRefreshOf.run(token);
    s.deleteToken.run(token);
  };
  const removeTokenTx = db.transaction(removeToken);

  const storeTx = db.transaction((accessToken, refreshToken, apiKey, userId, clientId, scopes, expiresMs) => {
    const now = Date.now();
    s.deleteRefreshOf.run(accessToken);
    s.insertToken.run(c.tokenParams(accessToken, refreshToken, apiKey, userId, clientId, scopes, expiresMs, now));
    if (refreshToken) s.insertRefresh.run(c.refreshParams(accessToken, refreshToken, userId, clientId, scopes, now));
  });

  const api = {
    storeAccessToken(accessToken, refreshToken, apiKey, userId, clientId, scopes = [], expiresAt = null) {
      storeTx.immediate(accessToken, refreshToken, apiKey, userId, clientId, scopes, c.checkTokenArgs(accessToken, apiKey, clientId, scopes, expiresAt));
    },

    getAccessToken(token) {
      if (!c.isLookup("getAccessToken", token)) return null;
      const row = s.getToken.get(token);
      if (!row) return null;
      if (c.expired(row.expires_at)) {
        removeTokenTx.immediate(token);
        return null;
      }
      return c.tokenFromRow(row);
    },

    storeAuthorizationCode(code, userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes = [], expiresIn = 600) {
      c.checkCodeArgs(code, apiKey, clientId, redirectUri, scopes, expiresIn);
      s.insertCode.run(c.codeParams(code, userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes, expiresIn, Date.now()));
    },

    consumeAuthorizationCode(code, codeVerifier) {
      if (!c.isLookup("consumeAuthorizationCode", code)) return null;
      const row = s.takeCode.get(code);
      if (!row || c.expired(row.expires_at) || !c.pkceOk(row.code_challenge, row.code_challenge_method, codeVerifier)) return null;
      return c.codeFromRow(row);
    },

    getRefreshToken(refreshToken) {
      if (!c.isLookup("getRefreshToken", refreshToken)) return null;
      const row = s.getRefresh.get(refreshToken);
      if (!row || c.expired(row.access_expires_at)) return null;
      return c.refreshFromRow(row);
    },

    revokeRefreshToken: db.transaction((refreshToken) => {
      if (!c.isLookup("revokeRefreshToken", refreshToken)) return;
      const row = s.takeRefresh.get(refreshToken);
      if (row) s.deleteToken.run(row.access_token);
    }).immediate,

    deleteToken(token) {
      if (c.isLookup("deleteToken", token)) removeTokenTx.immediate(token);
    },

    deleteUserTokens: db.transaction((userId) => {
      if (!c.isLookup("deleteUserTokens", userId)) return;
      s.deleteUserRefresh.run(userId);
      s.deleteUserTokens.run(userId);
      s.deleteUserCodes.run(userId);
    }).immediate,

    cleanupExpiredTokens: db.transaction(() => {
      const now = Date.now();
      s.cleanupRefresh.run(now);
      return s.cleanupTokens.run(now).changes + s.cleanupCodes.run(now).changes;
    }).immediate,

    getStats() {
      const now = Date.now();
      return s.stats.get(now, now);
    },

    closeDB() {},
    close() {
      db.close();
    },

    // Bulk load for the benchmark: one transaction, the same statements as storeAccessToken.
    seedTokens: db.transaction((rows) => {
      const now = Date.now();
      for (const r of rows) {
        s.insertToken.run(c.tokenParams(r.accessToken, r.refreshToken, r.apiKey, r.userId, r.clientId, r.scopes, r.expiresAt, now));
        s.insertRefresh.run(c.refreshParams(r.accessToken, r.refreshToken, r.userId, r.clientId, r.scopes, now));
      }
    }),
  };
  return api;
}

module.exports = { open };
