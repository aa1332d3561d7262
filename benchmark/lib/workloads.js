"use strict";
// The timed operations. Each op builds its inputs before the clock starts, the timed loop
// only calls the store, and every result is checked after the clock stops. `readOnly`: the
// op's check only reads its answers, so the timed runs check and drop them every 1,000 calls
// (trial.js timeSync) instead of keeping them all to the end of the run.
const assert = require("node:assert/strict");
const data = require("./data");
const { REDIRECT } = require("./check");

const SCOPES = ["mcp"];
const PKCE_PAIRS = data.pkcePairs(64);

function batch(k, make) {
  const inputs = new Array(k);
  for (let i = 0; i < k; i++) inputs[i] = make(i);
  return inputs;
}

const OPS = {
  getHit: {
    label: "get hit, uniform",
    readOnly: true,
    max: () => 50_000,
    prepare(ctx, k, start) {
      return batch(k, (i) => ctx.seeded(ctx.scatter(start + i)));
    },
    call: (p, row) => p.getAccessToken(row.accessToken),
    verify(ctx, rows, results) {
      rows.forEach((row, i) => {
        const got = results[i];
        assert.ok(got, `getAccessToken missed a stored token (${row.accessToken.slice(0, 8)})`);
        assert.equal(got.apiKey, row.apiKey);
        assert.equal(got.userId, row.userId);
        assert.equal(got.scopes[0], "mcp");
        assert.ok(got.expiresAt instanceof Date);
      });
    },
  },

  // 90 % of the gets on 2,000 hot tokens, 10 % uniform (data.hotMixIndex).
  getHitHot: {
    label: "get hit, hot mix",
    readOnly: true,
    max: () => 50_000,
    prepare(ctx, k, start) {
      return batch(k, (i) => ctx.seeded(data.hotMixIndex(start + i, ctx.size, ctx.scatter)));
    },
    call: (p, row) => p.getAccessToken(row.accessToken),
    verify: (ctx, rows, results) => OPS.getHit.verify(ctx, rows, results),
  },

  // Only the 2,000 hot tokens, each read again and again: a token this process read
  // moments ago (what issue 18's PostgreSQL target calls "seen recently"). Each is read once
  // before the calibration (prime), so the op does not depend on the ops before it: a trial
  // times it after the other gets, a paired check's process (run.js runPairs) right after
  // seeding, where a short calibration of slow first reads would not reach every hot token.
  getHitRecent: {
    label: "get hit, recently read",
    readOnly: true,
    max: () => 50_000,
    async prime(ctx) {
      const rows = OPS.getHitRecent.prepare(ctx, Math.min(data.HOT_TOKENS, ctx.size), 0);
      const results = [];
      for (const row of rows) results.push(await ctx.peer.getAccessToken(row.accessToken));
      OPS.getHitRecent.verify(ctx, rows, results);
    },
    prepare(ctx, k, start) {
      const hot = Math.min(data.HOT_TOKENS, ctx.size);
      return batch(k, (i) => ctx.seeded(ctx.scatter((start + i) % hot)));
    },
    call: (p, row) => p.getAccessToken(row.accessToken),
    verify: (ctx, rows, results) => OPS.getHit.verify(ctx, rows, results),
  },

  getMiss: {
    label: "get miss",
    readOnly: true,
    max: () => 50_000,
    prepare: (ctx, k, start) => batch(k, (i) => data.token("miss", start + i)),
    call: (p, token) => p.getAccessToken(token),
    verify(ctx, tokens, results) {
      results.forEach((got) => assert.equal(got, null, "getAccessToken found a token that was never stored"));
    },
  },

  store: {
    label: "store (with refresh token)",
    max: (ctx) => Math.max(1_000, ctx.size / 10),
    prepare(ctx, k, start) {
      const expiresAt = new Date(data.liveUntil());
      return batch(k, (i) => ({ ...data.tokenRow("st", start + i, ctx.users, null), expiresAt }));
    },
    call: (p, r) => p.storeAccessToken(r.accessToken, r.refreshToken, r.apiKey, r.userId, r.clientId, r.scopes, r.expiresAt),
    // Reads every stored token back, then deletes them (untimed) so the store keeps its size.
    async verify(ctx, rows) {
      for (const row of rows) {
        const got = await ctx.peer.getAccessToken(row.accessToken);
        assert.equal(got?.apiKey, row.apiKey, "a stored token reads back");
        assert.equal(got.refreshToken, row.refreshToken);
        assert.equal((await ctx.peer.getRefreshToken(row.refreshToken))?.accessToken, row.accessToken);
        await ctx.peer.deleteToken(row.accessToken);
      }
    },
  },

  code: {
    label: "code store+consume (S256)",
    max: () => 20_000,
    prepare(ctx, k, start) {
      return batch(k, (i) => {
        const user = (start + i) % ctx.users;
        return { code: data.token("code", start + i), userId: data.userIdOf(user), apiKey: data.apiKeyOf(user), ...PKCE_PAIRS[(start + i) % PKCE_PAIRS.length] };
      });
    },
    call(p, x) {
      p.storeAuthorizationCode(x.code, x.userId, x.apiKey, "client-1", REDIRECT, x.challenge, "S256", SCOPES, 600);
      return p.consumeAuthorizationCode(x.code, x.verifier);
    },
    async callAsync(p, x) {
      await p.storeAuthorizationCode(x.code, x.userId, x.apiKey, "client-1", REDIRECT, x.challenge, "S256", SCOPES, 600);
      return p.consumeAuthorizationCode(x.code, x.verifier);
    },
    async verify(ctx, inputs, results) {
      inputs.forEach((x, i) => {
        assert.equal(results[i]?.apiKey, x.apiKey, "a code with a valid verifier is consumed");
        assert.equal(results[i].redirectUri, REDIRECT);
        assert.equal(results[i].codeChallengeMethod, "S256");
      });
      for (const x of inputs.slice(0, 20)) assert.equal(await ctx.peer.consumeAuthorizationCode(x.code, x.verifier), null, "a code is single use");
    },
  },

  getStats: {
    label: "getStats",
    readOnly: true,
    max: () => 50_000,
    prepare: (ctx, k) => new Array(k).fill(null),
    call: (p) => p.getStats(),
    verify(ctx, inputs, results) {
      results.forEach((stats) => {
        assert.equal(stats.totalTokens, ctx.size, "getStats counts the live tokens");
        assert.equal(stats.uniqueUsers, ctx.users, "getStats counts the distinct users");
      });
    },
  },
};

module.exports = { OPS };
