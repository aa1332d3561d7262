"use strict";
// What pg-server-cpu.js and pg-store-parts.js share: the backend's CPU clock, the seeded
// rows, and the `pg` peer's store statement written for a procedure's loop.
const fs = require("node:fs");

// Nanoseconds the process has spent on a CPU (the first field of schedstat).
const cpuNs = (pid) => Number(fs.readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]);

// Tokens i..end (each with a refresh token) of `users` users, expiring at `expiresAt`.
function seedRows(i, end, users, expiresAt) {
  const rows = [];
  for (let j = i; j < end; j++) {
    rows.push({ accessToken: `seed-${j}`, refreshToken: `seed-r-${j}`, apiKey: "sk", userId: `user-${j % users}`, clientId: "c", scopes: [], expiresAt });
  }
  return rows;
}

// The peer's statement (benchmark/peers/pg.js's `store`) on schema `s`, its parameters as
// the procedure's variables tok, rt, uid and t (the clock); `expires`: the expiry's SQL.
const peerStore = (s, expires) => `WITH dropped AS (
    DELETE FROM ${s}.refresh_tokens WHERE access_token = tok AND refresh_token IS DISTINCT FROM rt),
  token AS (
    INSERT INTO ${s}.access_tokens (token, api_key, user_id, client_id, scopes, refresh_token,
      expires_at, created_at)
    VALUES (tok, 'sk', uid, 'c', '[]', rt, ${expires}, t)
    ON CONFLICT (token) DO UPDATE SET api_key = EXCLUDED.api_key, user_id = EXCLUDED.user_id,
      client_id = EXCLUDED.client_id, scopes = EXCLUDED.scopes,
      refresh_token = EXCLUDED.refresh_token, expires_at = EXCLUDED.expires_at,
      created_at = EXCLUDED.created_at)
  INSERT INTO ${s}.refresh_tokens (refresh_token, user_id, client_id, scopes, access_token, created_at)
    SELECT rt, uid, 'c', '[]', tok, t WHERE rt IS NOT NULL
    ON CONFLICT (refresh_token) DO UPDATE SET user_id = EXCLUDED.user_id,
      client_id = EXCLUDED.client_id, scopes = EXCLUDED.scopes,
      access_token = EXCLUDED.access_token, created_at = EXCLUDED.created_at;`;

module.exports = { cpuNs, seedRows, peerStore };
