"use strict";
// What a Node engineer writes for Redis with the `redis` npm client (node-redis): one
// client, every call awaited, ONE round trip per call where the call allows it, a MULTI
// (sent as one pipeline, applied atomically) where several keys change together.
//
// Keys under the trial's prefix: `at:<token>` a hash of the token's fields, `rt:<refresh>`
// the access token it belongs to, `code:<code>` the code's JSON, `exp` a sorted set of
// tokens by expiry (+inf for none: getStats' ZCOUNT and cleanup's range), `ut:<user>` the
// user's tokens by expiry, `users` users by the expiry of their last token (ZADD GT:
// getStats' unique users), `uc:<user>` the user's codes. Keys expire (PEXPIREAT) an hour
// after their token, and a read checks the expiry itself, so a token is never served after
// its time. A replaced token's old refresh key is left behind, and a refresh token is
// honoured only while its access token's hash still names it (no read before the write).
// A code is taken once by GETDEL (atomic), its PKCE checked in JS.
const { createClient } = require("redis");
const c = require("./common");

const HOUR = 3_600_000;
const score = (ms) => (ms == null ? Infinity : ms);

async function open({ url, prefix }) {
  const client = createClient({ url, RESP: 2 });
  client.on("error", () => {}); // reconnects by itself; a failed call rejects
  await client.connect();
  const k = (name, id) => `${prefix}${name}${id}`;

  const tokenFrom = (h, token) => ({
    accessToken: token,
    apiKey: h.apiKey,
    userId: h.userId === "" ? null : h.userId,
    clientId: h.clientId,
    scopes: JSON.parse(h.scopes),
    refreshToken: h.refreshToken === "" ? null : h.refreshToken,
    expiresAt: h.expiresAt === "" ? null : new Date(Number(h.expiresAt)),
    createdAt: new Date(Number(h.createdAt)),
  });

  // The user's `users` entry again after tokens of theirs went: the expiry of their last
  // token, or none. One round trip more, on the removing paths only.
  async function resetUsers(users) {
    for (const user of users) {
      if (!user) continue;
      const last = await client.zRangeWithScores(k("ut:", user), -1, -1);
      if (last.length) await client.zAdd(k("users", ""), { score: last[0].score, value: user });
      else await client.zRem(k("users", ""), user);
    }
  }

  // Removes tokens whose hashes were read as `fields` (null: already gone), in one MULTI.
  async function removeTokens(tokens, fields) {
    const m = client.multi();
    const users = new Set();
    tokens.forEach((t, i) => {
      const h = fields[i];
      m.del(k("at:", t)).zRem(k("exp", ""), t);
      if (h?.refreshToken) m.del(k("rt:", h.refreshToken));
      if (h?.userId) {
        m.zRem(k("ut:", h.userId), t);
        users.add(h.userId);
      }
    });
    const replies = await m.exec();
    await resetUsers(users);
    return replies;
  }

  // The live token's hash, or null; an expired one is removed.
  async function live(token) {
    const h = await client.hGetAll(k("at:", token));
    if (!h.apiKey) return null;
    if (h.expiresAt !== "" && c.expired(Number(h.expiresAt))) {
      await removeTokens([token], [h]);
      return null;
    }
    return h;
  }

  const peer = {
    async storeAccessToken(accessToken, refreshToken, apiKey, userId, clientId, scopes = [], expiresAt = null) {
      const expiresMs = c.checkTokenArgs(accessToken, apiKey, clientId, scopes, expiresAt);
      await store(client.multi(), accessToken, refreshToken, apiKey, userId, clientId, scopes, expiresMs, Date.now()).exec();
    },

    async getAccessToken(token) {
      if (!c.isLookup("getAccessToken", token)) return null;
      const h = await live(token);
      return h && tokenFrom(h, token);
    },

    async getRefreshToken(refreshToken) {
      if (!c.isLookup("getRefreshToken", refreshToken)) return null;
      const token = await client.get(k("rt:", refreshToken));
      const h = token && (await live(token));
      if (!h || h.refreshToken !== refreshToken) return null;
      return { refreshToken, userId: h.userId === "" ? null : h.userId, clientId: h.clientId, scopes: JSON.parse(h.scopes), accessToken: token, createdAt: new Date(Number(h.createdAt)) };
    },

    async revokeRefreshToken(refreshToken) {
      if (!c.isLookup("revokeRefreshToken", refreshToken)) return;
      const token = await client.get(k("rt:", refreshToken));
      const h = token && (await client.hGetAll(k("at:", token)));
      if (h?.refreshToken === refreshToken) await removeTokens([token], [h]);
      else await client.del(k("rt:", refreshToken));
    },

    async deleteToken(token) {
      if (!c.isLookup("deleteToken", token)) return;
      const h = await client.hGetAll(k("at:", token));
      await removeTokens([token], [h.apiKey ? h : null]);
    },

    async deleteUserTokens(userId) {
      if (!c.isLookup("deleteUserTokens", userId)) return;
      const [tokens, codes] = await Promise.all([client.zRange(k("ut:", userId), 0, -1), client.sMembers(k("uc:", userId))]);
      const m = client.multi();
      for (const t of tokens) m.hGet(k("at:", t), "refreshToken");
      const refresh = tokens.length ? await m.exec() : [];
      const d = client.multi();
      tokens.forEach((t, i) => {
        d.del(k("at:", t)).zRem(k("exp", ""), t);
        if (refresh[i]) d.del(k("rt:", refresh[i]));
      });
      for (const code of codes) d.del(k("code:", code));
      d.del(k("ut:", userId)).del(k("uc:", userId)).zRem(k("users", ""), userId);
      await d.exec();
    },

    async storeAuthorizationCode(code, userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes = [], expiresIn = 600) {
      c.checkCodeArgs(code, apiKey, clientId, redirectUri, scopes, expiresIn);
      const now = Date.now();
      const record = { userId: userId ?? null, apiKey, clientId, redirectUri, codeChallenge: codeChallenge ?? null, codeChallengeMethod: codeChallengeMethod ?? null, scopes, expiresAt: now + expiresIn * 1000, createdAt: now };
      const m = client.multi().set(k("code:", code), JSON.stringify(record), { expiration: { type: "PX", value: Math.max(1, expiresIn * 1000) } });
      if (userId) m.sAdd(k("uc:", userId), code);
      await m.exec();
    },

    async consumeAuthorizationCode(code, codeVerifier) {
      if (!c.isLookup("consumeAuthorizationCode", code)) return null;
      const json = await client.getDel(k("code:", code));
      if (!json) return null;
      const r = JSON.parse(json);
      if (c.expired(r.expiresAt) || !c.pkceOk(r.codeChallenge, r.codeChallengeMethod, codeVerifier)) return null;
      return r;
    },

    async cleanupExpiredTokens() {
      const now = Date.now();
      const tokens = await client.zRangeByScore(k("exp", ""), "-inf", now);
      if (!tokens.length) return 0;
      const m = client.multi();
      for (const t of tokens) m.hmGet(k("at:", t), ["refreshToken", "userId"]);
      const fields = (await m.exec()).map(([refreshToken, userId]) => ({ refreshToken, userId }));
      await removeTokens(tokens, fields);
      return tokens.length;
    },

    async getStats() {
      const now = Date.now();
      const [totalTokens, uniqueUsers] = await client.multi().zCount(k("exp", ""), `(${now}`, "+inf").zCount(k("users", ""), `(${now}`, "+inf").exec();
      return { totalTokens, uniqueUsers };
    },

    closeDB: async () => {},
    close: () => client.quit(),

    // Bulk load for the benchmark (not timed): the same writes, 1,000 tokens a MULTI.
    async seedTokens(rows) {
      const now = Date.now();
      let m = client.multi();
      let n = 0;
      for (const r of rows) {
        const expiresMs = r.expiresAt instanceof Date ? r.expiresAt.getTime() : r.expiresAt ?? null;
        store(m, r.accessToken, r.refreshToken, r.apiKey, r.userId, r.clientId, r.scopes, expiresMs, now);
        if (++n === 1000) {
          await m.exec();
          m = client.multi();
          n = 0;
        }
      }
      if (n) await m.exec();
    },
  };

  // A token's writes, queued on `m`: the hash replaced, its refresh key, the indexes.
  function store(m, accessToken, refreshToken, apiKey, userId, clientId, scopes, expiresMs, now) {
    const key = k("at:", accessToken);
    m.del(key).hSet(key, {
      apiKey, userId: userId ?? "", clientId, scopes: JSON.stringify(scopes), refreshToken: refreshToken || "",
      expiresAt: expiresMs ?? "", createdAt: now,
    });
    m.zAdd(k("exp", ""), { score: score(expiresMs), value: accessToken });
    if (refreshToken) m.set(k("rt:", refreshToken), accessToken);
    if (userId) {
      m.zAdd(k("ut:", userId), { score: score(expiresMs), value: accessToken });
      m.zAdd(k("users", ""), { score: score(expiresMs), value: userId }, { GT: true });
    }
    if (expiresMs != null) {
      m.pExpireAt(key, expiresMs + HOUR);
      if (refreshToken) m.pExpireAt(k("rt:", refreshToken), expiresMs + HOUR);
    }
    return m;
  }

  return peer;
}

module.exports = { open, isAsync: true };
