"use strict";
// (b) The original SQLite design: the async `sqlite3` package with the driver's defaults
// (rollback journal, synchronous=FULL), each statement its own implicit transaction,
// every function returning a Promise that the caller awaits. Same schema, indexes and
// statements as the better-sqlite3 peer, so the difference measured is the design.
const sqlite3 = require("sqlite3");
const c = require("./common");

function open({ path }) {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(path, (err) => (err ? reject(err) : resolve(db)));
  }).then(async (db) => {
    const call = (method, sql, params = []) =>
      new Promise((resolve, reject) => {
        db[method](sql, params, function done(err, result) {
          if (err) reject(err);
          else resolve(method === "run" ? this : result);
        });
      });
    const run = (sql, params) => call("run", sql, params);
    const get = (sql, params) => call("get", sql, params);
    await new Promise((res, rej) => db.exec(c.SCHEMA, (err) => (err ? rej(err) : res())));

    const removeToken = async (token) => {
      await run(c.SQL.deleteRefreshOf, [token]);
      await run(c.SQL.deleteToken, [token]);
    };

    return {
      async storeAccessToken(accessToken, refreshToken, apiKey, userId, clientId, scopes = [], expiresAt = null) {
        const expiresMs = c.checkTokenArgs(accessToken, apiKey, clientId, scopes, expiresAt);
        const now = Date.now();
        await run(c.SQL.deleteRefreshOf, [accessToken]);
        await run(c.SQL.insertToken, c.tokenParams(accessToken, refreshToken, apiKey, userId, clientId, scopes, expiresMs, now));
        if (refreshToken) await run(c.SQL.insertRefresh, c.refreshParams(accessToken, refreshToken, userId, clientId, scopes, now));
      },

      async getAccessToken(token) {
        if (!c.isLookup("getAccessToken", token)) return null;
        const row = await get(c.SQL.getToken, [token]);
        if (!row) return null;
        if (c.expired(row.expires_at)) {
          await removeToken(token);
          return null;
        }
        return c.tokenFromRow(row);
      },

      async storeAuthorizationCode(code, userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes = [], expiresIn = 600) {
        c.checkCodeArgs(code, apiKey, clientId, redirectUri, scopes, expiresIn);
        await run(c.SQL.insertCode, c.codeParams(code, userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes, expiresIn, Date.now()));
      },

      async consumeAuthorizationCode(code, codeVerifier) {
        if (!c.isLookup("consumeAuthorizationCode", code)) return null;
        const row = await get(c.SQL.takeCode, [code]);
        if (!row || c.expired(row.expires_at) || !c.pkceOk(row.code_challenge, row.code_challenge_method, codeVerifier)) return null;
        return c.codeFromRow(row);
      },

      async getRefreshToken(refreshToken) {
        if (!c.isLookup("getRefreshToken", refreshToken)) return null;
        const row = await get(c.SQL.getRefresh, [refreshToken]);
        if (!row || c.expired(row.access_expires_at)) return null;
        return c.refreshFromRow(row);
      },

      async revokeRefreshToken(refreshToken) {
        if (!c.isLookup("revokeRefreshToken", refreshToken)) return;
        const row = await get(c.SQL.takeRefresh, [refreshToken]);
        if (row) await run(c.SQL.deleteToken, [row.access_token]);
      },

      async deleteToken(token) {
        if (c.isLookup("deleteToken", token)) await removeToken(token);
      },

      async deleteUserTokens(userId) {
        if (!c.isLookup("deleteUserTokens", userId)) return;
        await run(c.SQL.deleteUserRefresh, [userId]);
        await run(c.SQL.deleteUserTokens, [userId]);
        await run(c.SQL.deleteUserCodes, [userId]);
      },

      async cleanupExpiredTokens() {
        const now = Date.now();
        await run(c.SQL.cleanupRefresh, [now]);
        const tokens = await run(c.SQL.cleanupTokens, [now]);
        const codes = await run(c.SQL.cleanupCodes, [now]);
        return tokens.changes + codes.changes;
      },

      async getStats() {
        const now = Date.now();
        return get(c.SQL.stats, [now, now]);
      },

      closeDB: async () => {},
      close: () => new Promise((resolve, reject) => db.close((err) => (err ? reject(err) : resolve()))),

      // Bulk load for the benchmark: one transaction, the same statements as storeAccessToken.
      async seedTokens(rows) {
        const now = Date.now();
        await run("BEGIN");
        for (const r of rows) {
          await run(c.SQL.insertToken, c.tokenParams(r.accessToken, r.refreshToken, r.apiKey, r.userId, r.clientId, r.scopes, r.expiresAt, now));
          await run(c.SQL.insertRefresh, c.refreshParams(r.accessToken, r.refreshToken, r.userId, r.clientId, r.scopes, now));
        }
        await run("COMMIT");
      },
    };
  });
}

module.exports = { open, isAsync: true };
