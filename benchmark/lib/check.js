"use strict";
// An untimed pass over the contract, run on every peer before it is seeded: a peer that
// is fast but wrong fails the trial instead of getting a number.
const assert = require("node:assert/strict");

const VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"; // RFC 7636 appendix B
const CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT = "https://client.example/callback";

async function checkContract(p) {
  const user = "check-user";
  const inAMinute = new Date(Date.now() + 60_000);
  const aMinuteAgo = Date.now() - 60_000;

  await p.storeAccessToken("check-at-1", "check-rt-1", "sk-check-1", user, "client", ["a", "b"], inAMinute);
  const got = await p.getAccessToken("check-at-1");
  assert.equal(got.apiKey, "sk-check-1");
  assert.equal(got.userId, user);
  assert.equal(got.clientId, "client");
  assert.deepEqual(got.scopes, ["a", "b"]);
  assert.equal(got.refreshToken, "check-rt-1");
  assert.equal(got.expiresAt.getTime(), inAMinute.getTime());
  assert.ok(got.createdAt instanceof Date);
  got.scopes.push("changed");
  assert.deepEqual((await p.getAccessToken("check-at-1")).scopes, ["a", "b"], "getAccessToken returns a fresh object");
  assert.equal((await p.getRefreshToken("check-rt-1")).accessToken, "check-at-1");

  // Replacing a token drops the refresh token that pointed at the old one.
  await p.storeAccessToken("check-at-1", "check-rt-2", "sk-check-2", user, "client", ["a"], inAMinute);
  assert.equal(await p.getRefreshToken("check-rt-1"), null);
  assert.equal((await p.getAccessToken("check-at-1")).apiKey, "sk-check-2");

  await p.storeAccessToken("check-at-n", null, "sk-check-n", null, "client", [], null);
  const noUser = await p.getAccessToken("check-at-n");
  assert.equal(noUser.userId, null);
  assert.equal(noUser.expiresAt, null);
  assert.equal(noUser.refreshToken, null);
  await p.deleteToken("check-at-n");
  assert.equal(await p.getAccessToken("check-at-n"), null);

  await p.storeAccessToken("check-at-x", "check-rt-x", "sk-check-x", user, "client", [], aMinuteAgo);
  assert.equal(await p.getRefreshToken("check-rt-x"), null, "a refresh token dies with its expired access token");
  assert.equal(await p.getAccessToken("check-at-x"), null, "an expired token is not returned");

  await p.revokeRefreshToken("check-rt-2");
  assert.equal(await p.getAccessToken("check-at-1"), null, "revoking a refresh token removes its access token");
  assert.equal(await p.getAccessToken("no-such-token"), null);
  assert.equal(await p.getAccessToken(null), null);
  await assert.rejects(async () => p.storeAccessToken("", null, "sk", user, "client", [], null), TypeError);

  // Authorization codes: PKCE S256 test vector, single use, a failed attempt uses the code up.
  const storeCode = (code, challenge, method) => p.storeAuthorizationCode(code, user, "sk-check", "client", REDIRECT, challenge, method, ["mcp"], 600);
  await storeCode("check-code-1", CHALLENGE, "S256");
  const code = await p.consumeAuthorizationCode("check-code-1", VERIFIER);
  assert.equal(code.redirectUri, REDIRECT);
  assert.equal(code.apiKey, "sk-check");
  assert.deepEqual(code.scopes, ["mcp"]);
  assert.equal(typeof code.expiresAt, "number");
  assert.equal(await p.consumeAuthorizationCode("check-code-1", VERIFIER), null, "a code is single use");
  await storeCode("check-code-2", CHALLENGE, "S256");
  assert.equal(await p.consumeAuthorizationCode("check-code-2", VERIFIER.replace("d", "e")), null, "wrong verifier");
  assert.equal(await p.consumeAuthorizationCode("check-code-2", VERIFIER), null, "a failed attempt uses the code up");
  await storeCode("check-code-3", CHALLENGE, "S256");
  assert.equal(await p.consumeAuthorizationCode("check-code-3", "short"), null, "malformed verifier");
  await storeCode("check-code-4", null, null);
  assert.equal((await p.consumeAuthorizationCode("check-code-4", undefined)).userId, user, "a code without a challenge is not PKCE-checked");

  // deleteUserTokens takes tokens, refresh tokens and pending codes of that user.
  await p.storeAccessToken("check-at-u1", "check-rt-u1", "sk-u", "check-user-2", "client", [], null);
  await p.storeAccessToken("check-at-u2", null, "sk-u", "check-user-2", "client", [], null);
  await p.storeAuthorizationCode("check-code-u", "check-user-2", "sk-u", "client", REDIRECT, null, null, [], 600);
  await p.deleteUserTokens("check-user-2");
  assert.equal(await p.getAccessToken("check-at-u1"), null);
  assert.equal(await p.getRefreshToken("check-rt-u1"), null);
  assert.equal(await p.getAccessToken("check-at-u2"), null);
  assert.equal(await p.consumeAuthorizationCode("check-code-u", undefined), null);

  await p.storeAccessToken("check-at-e", "check-rt-e", "sk-e", user, "client", [], aMinuteAgo);
  assert.equal(await p.cleanupExpiredTokens(), 1, "cleanup counts the one expired token");
  const stats = await p.getStats();
  assert.equal(stats.totalTokens, 0, "the check leaves the store empty");
  assert.equal(stats.uniqueUsers, 0);
}

module.exports = { checkContract, REDIRECT };
