"use strict";
// Deterministic, realistic-looking test data, generated on demand from an index so
// that the harness itself holds no per-token memory while a store is measured.
const { createHash } = require("node:crypto");

const HEX = Buffer.from("0123456789abcdef", "latin1");
const NAMESPACE = { at: 0x1b873593, rt: 0x27d4eb2f, ex: 0x165667b1, miss: 0x3c6ef372, st: 0x5bd1e995, code: 0x9e3779b9, key: 0x7f4a7c15 };
const DAY = 86_400_000;

// murmur3's finalizer: a bijection on 32-bit integers, so distinct indices give distinct words.
function fmix32(h) {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const scratch = Buffer.alloc(128);
// 64 random-looking hex characters (as `crypto.randomBytes(32).toString("hex")` would give),
// returned as a flat one-byte string.
function hex64(namespace, i, prefix = "") {
  const seed = NAMESPACE[namespace];
  let at = scratch.write(prefix, "latin1");
  for (let word = 0; word < 8; word++) {
    let h = fmix32((i ^ Math.imul(seed, word + 1)) >>> 0);
    for (let nibble = 0; nibble < 8; nibble++, h >>>= 4) scratch[at++] = HEX[h & 15];
  }
  return scratch.toString("latin1", 0, at);
}

const token = (namespace, i) => hex64(namespace, i);
const apiKeyOf = (user) => hex64("key", user, "sk-or-v1-");
const userIdOf = (user) => `user-${user}`;
const usersFor = (size) => Math.max(1, Math.floor(size / 10));

// One stored access token (with its refresh token) as the OAuth server would store it.
function tokenRow(namespace, i, users, expiresAt) {
  const user = i % users;
  return {
    accessToken: token(namespace, i),
    refreshToken: token(namespace === "at" ? "rt" : namespace, i + 0x40000000),
    apiKey: apiKeyOf(user),
    userId: userIdOf(user),
    clientId: `client-${i % 16}`,
    scopes: ["mcp"],
    expiresAt,
  };
}

function* tokenRows(namespace, from, count, users, expiresAt) {
  for (let i = from; i < from + count; i++) yield tokenRow(namespace, i, users, expiresAt);
}

const liveUntil = () => Date.now() + 30 * DAY;
const expiredAt = () => Date.now() - 60_000;

// PKCE verifier/challenge pairs are computed up front so that hashing in the harness
// is never timed; the peers hash the verifier themselves when a code is consumed.
function pkcePairs(count) {
  const pairs = [];
  for (let i = 0; i < count; i++) {
    const verifier = hex64("code", i + 0x100000, "v-");
    pairs.push({ verifier, challenge: createHash("sha256").update(verifier).digest("base64url") });
  }
  return pairs;
}

// Index permutation: visits 0..size-1 in a cache-unfriendly order (stride coprime with size).
function scatter(size) {
  let stride = 2654435761 % size;
  const gcd = (a, b) => (b ? gcd(b, a % b) : a);
  while (stride > 1 && gcd(stride, size) !== 1) stride++;
  return (i) => (i * stride) % size;
}

// The realistic read mix: HOT_SHARE of the reads go to HOT_TOKENS tokens (the clients that are
// active right now), the rest uniformly to the whole store. Returns the seeded index read by
// the i-th get of a store of `size` tokens; both choices are hashed from i, so the sequence is
// the same for every peer and run.
const HOT_TOKENS = 2_000;
const HOT_SHARE = 0.9;
function hotMixIndex(i, size, scatterOf) {
  const hot = Math.min(HOT_TOKENS, size);
  const h = fmix32((i ^ 0x2545f491) >>> 0);
  if (h / 2 ** 32 < HOT_SHARE) return scatterOf(fmix32((i + 0x68e31da4) >>> 0) % hot);
  return scatterOf(i % size);
}

module.exports = { HOT_TOKENS, HOT_SHARE, hotMixIndex, token, apiKeyOf, userIdOf, usersFor, tokenRow, tokenRows, liveUntil, expiredAt, pkcePairs, scatter };
