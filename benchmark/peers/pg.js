"use strict";
// (h) What a Node engineer who cares about latency writes for PostgreSQL: node-postgres
// (`pg`) with a Pool, every call awaited, ONE round trip per call. The SQLite peers' tables
// and indexes (times as BIGINT epoch ms, scopes as JSON text) in a schema of its own. Every
// call is a single statement, sent as a named prepared statement (`{ name, text, values }`:
// parsed and planned once per pooled connection, which needs a session pooler or none; a
// transaction-mode pooler would want them unnamed): a store with its refresh token is one
// statement of CTEs (drop the old refresh row, upsert the access row, upsert the refresh
// row), a code is consumed by one DELETE ... RETURNING with the PKCE check in JS, getStats
// is one SELECT of two counts, cleanup one statement of DELETEs. No BEGIN ... COMMIT: a
// single statement is its own transaction.
const pg = require("pg");
const c = require("./common");

const SCHEMA = `
CREATE TABLE access_tokens (
  token TEXT PRIMARY KEY, api_key TEXT NOT NULL, user_id TEXT, client_id TEXT NOT NULL,
  scopes TEXT NOT NULL, refresh_token TEXT, expires_at BIGINT, created_at BIGINT NOT NULL);
CREATE TABLE refresh_tokens (
  refresh_token TEXT PRIMARY KEY, user_id TEXT, client_id TEXT NOT NULL, scopes TEXT NOT NULL,
  access_token TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE authorization_codes (
  code TEXT PRIMARY KEY, user_id TEXT, api_key TEXT NOT NULL, client_id TEXT NOT NULL,
  redirect_uri TEXT NOT NULL, code_challenge TEXT, code_challenge_method TEXT, scopes TEXT NOT NULL,
  expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL);
CREATE INDEX access_tokens_user ON access_tokens(user_id, expires_at);
CREATE INDEX access_tokens_expiry ON access_tokens(expires_at);
CREATE INDEX refresh_tokens_access ON refresh_tokens(access_token);
CREATE INDEX authorization_codes_user ON authorization_codes(user_id);
CREATE INDEX authorization_codes_expiry ON authorization_codes(expires_at);
`;

const TOKEN_COLUMNS = "token, api_key, user_id, client_id, scopes, refresh_token, expires_at, created_at";
const REFRESH_COLUMNS = "refresh_token, user_id, client_id, scopes, access_token, created_at";
const UPSERT_TOKEN = `ON CONFLICT (token) DO UPDATE SET api_key = EXCLUDED.api_key, user_id = EXCLUDED.user_id,
  client_id = EXCLUDED.client_id, scopes = EXCLUDED.scopes, refresh_token = EXCLUDED.refresh_token,
  expires_at = EXCLUDED.expires_at, created_at = EXCLUDED.created_at`;
const UPSERT_REFRESH = `ON CONFLICT (refresh_token) DO UPDATE SET user_id = EXCLUDED.user_id, client_id = EXCLUDED.client_id,
  scopes = EXCLUDED.scopes, access_token = EXCLUDED.access_token, created_at = EXCLUDED.created_at`;

// One statement per call; each is sent as a named prepared statement (see `run` below).
const SQL = {
  // Both rows and the old refresh row in one statement. The sub-statements share one
  // snapshot, so the DELETE leaves alone the refresh row the upsert below rewrites (a row
  // may be changed only once per statement).
  store: `WITH dropped AS (
      DELETE FROM refresh_tokens WHERE access_token = $1::text AND refresh_token IS DISTINCT FROM $6::text),
    token AS (
      INSERT INTO access_tokens (${TOKEN_COLUMNS}) VALUES ($1::text, $2, $3, $4, $5, $6::text, $7, $8) ${UPSERT_TOKEN})
    INSERT INTO refresh_tokens (${REFRESH_COLUMNS})
      SELECT $6::text, $3, $4, $5, $1::text, $8 WHERE $6::text IS NOT NULL ${UPSERT_REFRESH}`,
  insertCode: `INSERT INTO authorization_codes
    (code, user_id, api_key, client_id, redirect_uri, code_challenge, code_challenge_method, scopes, expires_at, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    ON CONFLICT (code) DO UPDATE SET user_id = EXCLUDED.user_id, api_key = EXCLUDED.api_key, client_id = EXCLUDED.client_id,
      redirect_uri = EXCLUDED.redirect_uri, code_challenge = EXCLUDED.code_challenge,
      code_challenge_method = EXCLUDED.code_challenge_method, scopes = EXCLUDED.scopes,
      expires_at = EXCLUDED.expires_at, created_at = EXCLUDED.created_at`,
  getToken: `SELECT * FROM access_tokens WHERE token = $1`,
  getRefresh: `SELECT r.*, a.expires_at AS access_expires_at FROM refresh_tokens r
    JOIN access_tokens a ON a.token = r.access_token WHERE r.refresh_token = $1`,
  takeCode: `DELETE FROM authorization_codes WHERE code = $1 RETURNING *`,
  // An access token and the refresh token that points at it.
  removeToken: `WITH refresh AS (DELETE FROM refresh_tokens WHERE access_token = $1)
    DELETE FROM access_tokens WHERE token = $1`,
  revokeRefresh: `WITH refresh AS (DELETE FROM refresh_tokens WHERE refresh_token = $1 RETURNING access_token)
    DELETE FROM access_tokens WHERE token IN (SELECT access_token FROM refresh)`,
  deleteUser: `WITH refresh AS (
      DELETE FROM refresh_tokens WHERE access_token IN (SELECT token FROM access_tokens WHERE user_id = $1)),
    codes AS (DELETE FROM authorization_codes WHERE user_id = $1)
    DELETE FROM access_tokens WHERE user_id = $1`,
  cleanup: `WITH tokens AS (DELETE FROM access_tokens WHERE expires_at <= $1 RETURNING token),
    refresh AS (DELETE FROM refresh_tokens WHERE access_token IN (SELECT token FROM tokens)),
    codes AS (DELETE FROM authorization_codes WHERE expires_at <= $1 RETURNING 1)
    SELECT ((SELECT COUNT(*) FROM tokens) + (SELECT COUNT(*) FROM codes))::int AS removed`,
  // COUNT(*) over the live rows, as the SQLite peers count (int: pg returns bigint as a string).
  stats: `SELECT (SELECT COUNT(*) FROM access_tokens WHERE expires_at IS NULL OR expires_at > $1)::int AS "totalTokens",
    (SELECT COUNT(DISTINCT user_id) FROM access_tokens WHERE expires_at IS NULL OR expires_at > $1)::int AS "uniqueUsers"`,
  // Bulk load for the benchmark: one INSERT per table for a slice of rows, from arrays.
  seedTokens: `INSERT INTO access_tokens (${TOKEN_COLUMNS})
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[])`,
  seedRefresh: `INSERT INTO refresh_tokens (${REFRESH_COLUMNS})
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])`,
};

// Times are BIGINT epoch milliseconds: parse them as numbers (pg gives bigint as a string).
const types = {
  getTypeParser: (oid, format) => (oid === pg.types.builtins.INT8 && format !== "binary" ? Number : pg.types.getTypeParser(oid, format)),
};

// create: false joins a schema another process made (the four-process workload).
async function open({ url, schema, create = true }) {
  // The schema first, then a pool whose connections all use it.
  if (create) {
    const setup = new pg.Client({ connectionString: url });
    await setup.connect();
    try {
      await setup.query(`CREATE SCHEMA ${schema}`);
      await setup.query(`SET search_path TO ${schema}`);
      await setup.query(SCHEMA);
    } finally {
      await setup.end();
    }
  }
  const pool = new pg.Pool({ connectionString: url, options: `-c search_path=${schema}`, types });
  // One round trip: the statement named after its key in SQL (prepared on each pooled
  // connection the first time that connection runs it).
  const run = (name, values) => pool.query({ name, text: SQL[name], values });
  const one = async (name, values) => (await run(name, values)).rows[0];

  return {
    async storeAccessToken(accessToken, refreshToken, apiKey, userId, clientId, scopes = [], expiresAt = null) {
      const expiresMs = c.checkTokenArgs(accessToken, apiKey, clientId, scopes, expiresAt);
      await run("store", c.tokenParams(accessToken, refreshToken, apiKey, userId, clientId, scopes, expiresMs, Date.now()));
    },

    async getAccessToken(token) {
      if (!c.isLookup("getAccessToken", token)) return null;
      const row = await one("getToken", [token]);
      if (!row) return null;
      if (c.expired(row.expires_at)) {
        await run("removeToken", [token]);
        return null;
      }
      return c.tokenFromRow(row);
    },

    async storeAuthorizationCode(code, userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes = [], expiresIn = 600) {
      c.checkCodeArgs(code, apiKey, clientId, redirectUri, scopes, expiresIn);
      await run("insertCode", c.codeParams(code, userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes, expiresIn, Date.now()));
    },

    async consumeAuthorizationCode(code, codeVerifier) {
      if (!c.isLookup("consumeAuthorizationCode", code)) return null;
      const row = await one("takeCode", [code]);
      if (!row || c.expired(row.expires_at) || !c.pkceOk(row.code_challenge, row.code_challenge_method, codeVerifier)) return null;
      return c.codeFromRow(row);
    },

    async getRefreshToken(refreshToken) {
      if (!c.isLookup("getRefreshToken", refreshToken)) return null;
      const row = await one("getRefresh", [refreshToken]);
      if (!row || c.expired(row.access_expires_at)) return null;
      return c.refreshFromRow(row);
    },

    async revokeRefreshToken(refreshToken) {
      if (c.isLookup("revokeRefreshToken", refreshToken)) await run("revokeRefresh", [refreshToken]);
    },

    async deleteToken(token) {
      if (c.isLookup("deleteToken", token)) await run("removeToken", [token]);
    },

    async deleteUserTokens(userId) {
      if (c.isLookup("deleteUserTokens", userId)) await run("deleteUser", [userId]);
    },

    async cleanupExpiredTokens() {
      return (await one("cleanup", [Date.now()])).removed;
    },

    getStats: () => one("stats", [Date.now()]),

    closeDB: async () => {},
    close: () => pool.end(),

    // Bulk load for the benchmark (not timed): the rows in slices of 10,000, one transaction.
    async seedTokens(rows) {
      const now = Date.now();
      const millis = (t) => (t instanceof Date ? t.getTime() : t ?? null);
      const client = await pool.connect();
      const flush = async (slice) => {
        if (!slice.length) return;
        const column = (f) => slice.map(f);
        await client.query(SQL.seedTokens, [
          column((r) => r.accessToken), column((r) => r.apiKey), column((r) => r.userId ?? null), column((r) => r.clientId),
          column((r) => JSON.stringify(r.scopes)), column((r) => r.refreshToken || null), column((r) => millis(r.expiresAt)), column(() => now),
        ]);
        await client.query(SQL.seedRefresh, [
          column((r) => r.refreshToken), column((r) => r.userId ?? null), column((r) => r.clientId),
          column((r) => JSON.stringify(r.scopes)), column((r) => r.accessToken), column(() => now),
        ]);
      };
      try {
        await client.query("BEGIN");
        let slice = [];
        for (const r of rows) {
          slice.push(r);
          if (slice.length === 10_000) {
            await flush(slice);
            slice = [];
          }
        }
        await flush(slice);
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK").catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    },
  };
}

module.exports = { open, isAsync: true };
