"use strict";
// Each operation of the API, written once. `input(...)` checks the caller's arguments (a
// TypeError or RangeError naming the function and the argument; nothing reaches the store)
// and returns the native method's arguments, or `answer(value)` when there is nothing to
// ask the store (a look-up of null). `output(reply, storage)` makes the contract's value of
// the native reply. TokenStorage runs each on the calling thread (`name`) or off it
// (`promises.name`, the native `nameAsync`), with the same checks, results and errors.

const crypto = require("node:crypto");
const args = require("./args");
const { log } = require("./log");

/** Rows removed per transaction by cleanup, so no single step holds the lock for long. */
const DEFAULT_BATCH_SIZE = 1000;

const ANSWER = Symbol("answer");
/** The result of a call that needs no store (`input` returns an array otherwise). */
const answer = (value) => ({ [ANSWER]: value });

const toDate = (ms) => (ms === null ? null : new Date(ms));
const nothing = () => undefined;
const same = (value) => value;

/** A record from its JSON array (positional, so each object is built by one literal). */
function record(build) {
  return (json) => (json == null ? null : build(JSON.parse(json)));
}

/** A look-up or delete by key: null, undefined and keys no store call could have accepted answer `none`. */
function byKey(fn, name, none) {
  return (value) => {
    const key = args.lookupKey(fn, name, value);
    return key === null ? answer(none) : [key];
  };
}

const OPERATIONS = {
  storeAccessToken: {
    input(accessToken, refreshToken, apiKey, userId, clientId, scopes = [], expiresAt = null) {
      const fn = "storeAccessToken";
      return [
        args.requiredString(fn, "accessToken", accessToken),
        args.optionalString(fn, "refreshToken", refreshToken),
        args.requiredString(fn, "apiKey", apiKey),
        args.userId(fn, userId),
        args.requiredString(fn, "clientId", clientId),
        args.scopes(fn, scopes),
        args.expiresAt(fn, expiresAt),
      ];
    },
    output: nothing,
  },

  /**
   * Many access tokens at once, all or none (one transaction on SQLite): for a migration or
   * a seed. `records` is an array or any other iterable (a generator); each record is
   * `{ accessToken, refreshToken, apiKey, userId, clientId, scopes, expiresAt }`, checked
   * as `storeAccessToken` checks its arguments. Answers how many tokens the call left
   * stored (a token given twice counts once).
   */
  storeAccessTokens: {
    input(records) {
      const fn = "storeAccessTokens";
      if (records === null || typeof records !== "object" || typeof records[Symbol.iterator] !== "function") {
        throw new TypeError(`${fn}: records must be an array (or another iterable) of token records`);
      }
      const list = [];
      for (const r of records) list.push(args.tokenRecord(fn, r, list.length));
      return [list];
    },
    output: same,
  },

  getAccessToken: {
    input: byKey("getAccessToken", "token", null),
    output: record((t) => ({
      apiKey: t[0],
      userId: t[1],
      clientId: t[2],
      scopes: t[3],
      refreshToken: t[4],
      expiresAt: toDate(t[5]),
      createdAt: new Date(t[6]),
    })),
  },

  storeAuthorizationCode: {
    input(code, userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes, expiresIn = 600) {
      const fn = "storeAuthorizationCode";
      const key = args.requiredString(fn, "code", code);
      return [
        key,
        {
          userId: args.userId(fn, userId) ?? undefined,
          apiKey: args.requiredString(fn, "apiKey", apiKey),
          clientId: args.requiredString(fn, "clientId", clientId),
          redirectUri: args.requiredString(fn, "redirectUri", redirectUri),
          codeChallenge: args.optionalString(fn, "codeChallenge", codeChallenge) ?? undefined,
          codeChallengeMethod: args.optionalString(fn, "codeChallengeMethod", codeChallengeMethod) ?? undefined,
          scopes: args.scopes(fn, scopes),
          expiresIn: args.expiresIn(fn, expiresIn),
        },
      ];
    },
    output: nothing,
  },

  consumeAuthorizationCode: {
    input(code, codeVerifier) {
      const fn = "consumeAuthorizationCode";
      const key = args.lookupKey(fn, "code", code);
      const verifier = args.verifier(fn, codeVerifier);
      return key === null ? answer(null) : [key, verifier];
    },
    output: record((c) => ({
      userId: c[0],
      apiKey: c[1],
      clientId: c[2],
      redirectUri: c[3],
      codeChallenge: c[4],
      codeChallengeMethod: c[5],
      scopes: c[6],
      expiresAt: c[7],
      createdAt: c[8],
    })),
  },

  getRefreshToken: {
    input: byKey("getRefreshToken", "refreshToken", null),
    output: record((r) => ({
      userId: r[0],
      clientId: r[1],
      scopes: r[2],
      accessToken: r[3],
      createdAt: new Date(r[4]),
    })),
  },

  revokeRefreshToken: { input: byKey("revokeRefreshToken", "refreshToken", undefined), output: nothing },
  deleteToken: { input: byKey("deleteToken", "token", undefined), output: nothing },
  deleteUserTokens: { input: byKey("deleteUserTokens", "userId", undefined), output: nothing },

  /**
   * Every expired access token (with its refresh token) and authorization code, removed in
   * transactions of `batchSize` rows; answers how many access tokens and codes went.
   */
  cleanupExpiredTokens: {
    input(batchSize = DEFAULT_BATCH_SIZE) {
      return [batchSizeArg("cleanupExpiredTokens", batchSize)];
    },
    output: same,
  },

  getStats: {
    input: () => [],
    output: (s, storage) => ({ totalTokens: s.totalTokens, uniqueUsers: s.uniqueUsers, storage }),
  },

  /**
   * The refresh grant in one atomic step (see docs/api.md): the new pair, or null. A
   * refresh token rotated away and presented again after the grace period revokes its
   * family, logged as a warning (without the token).
   */
  rotateRefreshToken: {
    input(refreshToken, newAccessToken, newRefreshToken, expiresAt = null) {
      const fn = "rotateRefreshToken";
      const old = args.lookupKey(fn, "refreshToken", refreshToken);
      const request = {
        refreshToken: old,
        newAccessToken: args.requiredString(fn, "newAccessToken", newAccessToken),
        newRefreshToken: args.requiredString(fn, "newRefreshToken", newRefreshToken),
        expiresAt: args.expiresAt(fn, expiresAt) ?? undefined,
      };
      if (request.newAccessToken === request.newRefreshToken || request.newRefreshToken === old) {
        throw new TypeError(`${fn}: newAccessToken, newRefreshToken and refreshToken must all differ`);
      }
      return old === null ? answer(null) : [request];
    },
    output(json, storage) {
      const r = JSON.parse(json);
      if (r[0] === "reused") {
        log("warn", "a refresh token was used again after it was rotated; every token of its grant was revoked", { storage, revoked: r[7] });
      }
      if (r[0] !== "rotated") return null;
      return { userId: r[1], clientId: r[2], scopes: r[3], apiKey: r[4], accessToken: r[5], refreshToken: r[6] };
    },
  },

  storePendingAuthorization: {
    input(state, data, ttlSeconds = 600) {
      const fn = "storePendingAuthorization";
      return [args.requiredString(fn, "state", args.boundedString(fn, "state", state)), args.jsonObject(fn, "data", data), args.expiresIn(fn, ttlSeconds, "ttlSeconds") * 1000];
    },
    output: nothing,
  },

  consumePendingAuthorization: {
    input: byKey("consumePendingAuthorization", "state", null),
    output: (json) => (json == null ? null : JSON.parse(json)),
  },

  registerClient: {
    native: "putClient",
    input(metadata) {
      const fn = "registerClient";
      const given = args.clientMetadata(fn, metadata);
      const secret = crypto.randomBytes(32).toString("hex");
      const registration = {
        client_id: crypto.randomBytes(16).toString("hex"),
        client_secret: secret,
        client_id_issued_at: Math.floor(Date.now() / 1000),
        ...CLIENT_DEFAULTS,
        redirect_uris: [],
        ...withoutIssued(given),
      };
      // The registration rides along for `output`, not as an argument of the native call.
      return Object.assign([clientRecord(registration, secret)], { registration });
    },
    output: (reply, storage, input) => input.registration,
  },

  preRegisterClient: {
    native: "putClient",
    input(clientId, clientSecret, metadata = {}) {
      const fn = "preRegisterClient";
      const id = args.requiredString(fn, "clientId", args.boundedString(fn, "clientId", clientId));
      const secret = args.optionalString(fn, "clientSecret", clientSecret);
      const given = args.clientMetadata(fn, metadata);
      const registration = {
        client_id: id,
        client_id_issued_at: Math.floor(Date.now() / 1000),
        ...CLIENT_DEFAULTS,
        redirect_uris: ["http://localhost:*", "https://*"],
        ...withoutIssued(given),
      };
      return [clientRecord(registration, secret)];
    },
    output: nothing,
  },

  getClient: {
    input: byKey("getClient", "clientId", null),
    output: record((c) => JSON.parse(c[2])),
  },

  verifyClient: {
    native: "getClient",
    input(clientId, clientSecret) {
      const key = args.lookupKey("verifyClient", "clientId", clientId);
      if (key === null || typeof clientSecret !== "string" || clientSecret === "") return answer(false);
      return [key];
    },
    output(json, storage, input, given) {
      if (json == null) return false;
      const stored = JSON.parse(json)[1];
      if (typeof stored !== "string") return false;
      const offered = digest(given[1]);
      const expected = Buffer.from(stored, "hex");
      return expected.length === offered.length && crypto.timingSafeEqual(expected, offered);
    },
  },

  getAllClients: {
    native: "clientIds",
    input: () => [],
    output: (json) => JSON.parse(json),
  },
};

/** RFC 7591 defaults of the server's clientRegistry.js; every given field is kept as given. */
const CLIENT_DEFAULTS = Object.freeze({
  grant_types: ["authorization_code"],
  response_types: ["code"],
  scope: "mcp:read mcp:write",
  token_endpoint_auth_method: "client_secret_basic",
  application_type: "web",
});

/** The metadata given, less what the registry issues itself (the id, secret and issue time). */
function withoutIssued(metadata) {
  const { client_id, client_secret, client_id_issued_at, ...rest } = metadata;
  return rest;
}

const digest = (secret) => crypto.createHash("sha256").update(secret, "utf8").digest();

/** A registration as stored: the metadata without the secret, and the secret's SHA-256. */
function clientRecord(registration, secret) {
  const { client_secret, ...stored } = registration;
  return {
    clientId: registration.client_id,
    secretDigest: secret == null ? undefined : digest(secret).toString("hex"),
    metadata: JSON.stringify(stored),
    createdAt: Date.now(),
  };
}

function batchSizeArg(fn, value) {
  if (!Number.isInteger(value) || value < 1 || value > 2 ** 31 - 1) {
    throw new TypeError(`${fn}: batchSize must be a whole number from 1 to 2147483647`);
  }
  return value;
}

module.exports = { OPERATIONS, ANSWER, batchSizeArg };
