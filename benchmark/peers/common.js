"use strict";
// Pieces of the contract that every JavaScript peer implements the same way:
// argument checks, PKCE (RFC 7636 §4.6) and the SQL schema shared by both SQLite peers.
const { createHash, timingSafeEqual } = require("node:crypto");

const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;

function pkceOk(challenge, method, verifier) {
  if (!challenge) return true;
  if (typeof verifier !== "string" || !VERIFIER.test(verifier)) return false;
  let expected;
  if (method === "S256") expected = createHash("sha256").update(verifier).digest("base64url");
  else if (method === "plain" || method == null) expected = verifier;
  else return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(challenge);
  return a.length === b.length && timingSafeEqual(a, b);
}

function requireString(fn, name, value) {
  if (typeof value !== "string" || value === "") throw new TypeError(`${fn}: ${name} must be a non-empty string`);
}

function requireScopes(fn, scopes) {
  if (!Array.isArray(scopes) || !scopes.every((s) => typeof s === "string")) {
    throw new TypeError(`${fn}: scopes must be an array of strings`);
  }
}

// Date | epoch ms | null | undefined -> epoch ms or null
function toMillis(fn, expiresAt) {
  if (expiresAt == null) return null;
  const ms = expiresAt instanceof Date ? expiresAt.getTime() : expiresAt;
  if (typeof ms !== "number" || !Number.isFinite(ms)) throw new TypeError(`${fn}: expiresAt must be a Date, epoch milliseconds or null`);
  return ms;
}

function checkTokenArgs(accessToken, apiKey, clientId, scopes, expiresAt) {
  const fn = "storeAccessToken";
  requireString(fn, "accessToken", accessToken);
  requireString(fn, "apiKey", apiKey);
  requireString(fn, "clientId", clientId);
  requireScopes(fn, scopes);
  return toMillis(fn, expiresAt);
}

function checkCodeArgs(code, apiKey, clientId, redirectUri, scopes, expiresIn) {
  const fn = "storeAuthorizationCode";
  for (const [name, value] of Object.entries({ code, apiKey, clientId, redirectUri })) requireString(fn, name, value);
  requireScopes(fn, scopes);
  if (typeof expiresIn !== "number" || !Number.isFinite(expiresIn)) throw new TypeError(`${fn}: expiresIn must be a finite number of seconds`);
}

// Look-up arguments: null/undefined mean "no such token"; other non-strings are a TypeError.
function isLookup(fn, value) {
  if (value == null) return false;
  if (typeof value !== "string") throw new TypeError(`${fn}: expected a string`);
  return true;
}

const expired = (expiresAt, now = Date.now()) => expiresAt != null && expiresAt <= now;

// ---- SQLite (the old module's three tables; both SQLite peers run the same statements) ----

const SCHEMA = `
CREATE TABLE IF NOT EXISTS access_tokens (
  token TEXT PRIMARY KEY, api_key TEXT NOT NULL, user_id TEXT, client_id TEXT NOT NULL,
  scopes TEXT NOT NULL, refresh_token TEXT, expires_at INTEGER, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS refresh_tokens (
  refresh_token TEXT PRIMARY KEY, user_id TEXT, client_id TEXT NOT NULL, scopes TEXT NOT NULL,
  access_token TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS authorization_codes (
  code TEXT PRIMARY KEY, user_id TEXT, api_key TEXT NOT NULL, client_id TEXT NOT NULL,
  redirect_uri TEXT NOT NULL, code_challenge TEXT, code_challenge_method TEXT, scopes TEXT NOT NULL,
  expires_at INTEGER NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS access_tokens_user ON access_tokens(user_id, expires_at);
CREATE INDEX IF NOT EXISTS access_tokens_expiry ON access_tokens(expires_at);
CREATE INDEX IF NOT EXISTS refresh_tokens_access ON refresh_tokens(access_token);
CREATE INDEX IF NOT EXISTS authorization_codes_user ON authorization_codes(user_id);
CREATE INDEX IF NOT EXISTS authorization_codes_expiry ON authorization_codes(expires_at);
`;

const SQL = {
  insertToken: `INSERT OR REPLACE INTO access_tokens
    (token, api_key, user_id, client_id, scopes, refresh_token, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  insertRefresh: `INSERT OR REPLACE INTO refresh_tokens
    (refresh_token, user_id, client_id, scopes, access_token, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
  insertCode: `INSERT OR REPLACE INTO authorization_codes
    (code, user_id, api_key, client_id, redirect_uri, code_challenge, code_challenge_method, scopes, expires_at, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  getToken: `SELECT * FROM access_tokens WHERE token = ?`,
  getRefresh: `SELECT r.*, a.expires_at AS access_expires_at FROM refresh_tokens r
    JOIN access_tokens a ON a.token = r.access_token WHERE r.refresh_token = ?`,
  takeCode: `DELETE FROM authorization_codes WHERE code = ? RETURNING *`,
  takeRefresh: `DELETE FROM refresh_tokens WHERE refresh_token = ? RETURNING access_token`,
  deleteToken: `DELETE FROM access_tokens WHERE token = ?`,
  deleteRefreshOf: `DELETE FROM refresh_tokens WHERE access_token = ?`,
  deleteUserRefresh: `DELETE FROM refresh_tokens WHERE access_token IN (SELECT token FROM access_tokens WHERE user_id = ?)`,
  deleteUserTokens: `DELETE FROM access_tokens WHERE user_id = ?`,
  deleteUserCodes: `DELETE FROM authorization_codes WHERE user_id = ?`,
  cleanupRefresh: `DELETE FROM refresh_tokens WHERE access_token IN (SELECT token FROM access_tokens WHERE expires_at <= ?)`,
  cleanupTokens: `DELETE FROM access_tokens WHERE expires_at <= ?`,
  cleanupCodes: `DELETE FROM authorization_codes WHERE expires_at <= ?`,
  // Both counts come from covering indexes; takes the current time twice.
  stats: `SELECT (SELECT COUNT(*) FROM access_tokens WHERE expires_at IS NULL)
      + (SELECT COUNT(*) FROM access_tokens WHERE expires_at > ?) AS totalTokens,
    (SELECT COUNT(DISTINCT user_id) FROM access_tokens WHERE expires_at IS NULL OR expires_at > ?) AS uniqueUsers`,
};

const tokenParams = (accessToken, refreshToken, apiKey, userId, clientId, scopes, expiresAt, now) => [
  accessToken, apiKey, userId ?? null, clientId, JSON.stringify(scopes), refreshToken || null, expiresAt, now,
];
const refreshParams = (accessToken, refreshToken, userId, clientId, scopes, now) => [
  refreshToken, userId ?? null, clientId, JSON.stringify(scopes), accessToken, now,
];
const codeParams = (code, userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes, expiresIn, now) => [
  code, userId ?? null, apiKey, clientId, redirectUri, codeChallenge ?? null, codeChallengeMethod ?? null,
  JSON.stringify(scopes ?? []), now + expiresIn * 1000, now,
];

const tokenFromRow = (r) => ({
  apiKey: r.api_key,
  userId: r.user_id,
  clientId: r.client_id,
  scopes: JSON.parse(r.scopes),
  refreshToken: r.refresh_token,
  expiresAt: r.expires_at == null ? null : new Date(r.expires_at),
  createdAt: new Date(r.created_at),
});
const refreshFromRow = (r) => ({
  userId: r.user_id,
  clientId: r.client_id,
  scopes: JSON.parse(r.scopes),
  accessToken: r.access_token,
  createdAt: new Date(r.created_at),
});
const codeFromRow = (r) => ({
  userId: r.user_id,
  apiKey: r.api_key,
  clientId: r.client_id,
  redirectUri: r.redirect_uri,
  codeChallenge: r.code_challenge,
  codeChallengeMethod: r.code_challenge_method,
  scopes: JSON.parse(r.scopes),
  expiresAt: r.expires_at,
  createdAt: r.created_at,
});

module.exports = {
  pkceOk, checkTokenArgs, checkCodeArgs, isLookup, expired,
  SCHEMA, SQL, tokenParams, refreshParams, codeParams, tokenFromRow, refreshFromRow, codeFromRow,
};
