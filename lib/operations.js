"use strict";
// The table of the API's operations: each written once, and everything else made from it:
// the methods of TokenStorage (lib/storage.js), the Promise forms (`storage.promises`), the
// module-level functions of index.js, promises.js and clients.js, and the lists of names
// (lib/api-names.js). Adding an operation: see docs/development.md#adding-an-operation.
//
// An entry has:
// - `params`: the parameter names, in order; `defaults`: the value of each one left out
//   (`undefined`; `orNull(value)`: also when null), applied before anything else runs.
// - `entry`: the module whose synchronous function it is: "tokens" (index.js) or "clients"
//   (clients.js); promises.js has them all, as `storage.promises` does. `old`: a function of the
//   Map-based module the package replaces (tokenStorage.js, clientRegistry.js).
// - A store call: `input(...)` checks the caller's arguments (a TypeError or RangeError
//   naming the function and the argument; nothing reaches the store) and returns the native
//   method's arguments, or `answer(value)` when there is nothing to ask the store (a look-up
//   of null). `output(reply, storage)` makes the contract's value of the native reply
//   (`outputAsync`, if given, instead for the Promise API: work too slow for the JS thread).
//   TokenStorage runs each on the calling thread (`name`) or off it (`promises.name`, the
//   native `nameAsync`; `native` when the native method has another name), with the same
//   checks, results and errors.
// - Or, instead: `steps(given)`, a generator of store calls (lib/minted-rotation.js) when
//   it answers one; or `run(storage, given)`, for what is not one store call.
// - `async: true`: the function returns a Promise already (its Promise form is itself).
// - `promise`: the Promise form when it is not the same call off the thread:
//   `{ defaults, run(storage, given) }` (a `run` that answers a Promise is its own).

const crypto = require("node:crypto");
const args = require("./args");
const wire = require("./wire");
const { log } = require("./log");
const { mintedRotation } = require("./minted-rotation");
const DEFAULTS = require("./defaults");

const OR_NULL = Symbol("orNull");
/** A default that also stands for null. */
const orNull = (value) => ({ [OR_NULL]: value });

const ANSWER = Symbol("answer");
/** The result of a call that needs no store (`input` returns an array otherwise). */
const answer = (value) => ({ [ANSWER]: value });

const nothing = () => undefined;
const same = (value) => value;

/** A record from its JSON array (positional, so each object is built by one literal); token and code records come in lib/wire.js's format. */
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

/**
 * The grant's `resource` and `extra` (issue 20), the last two fields of a token or code
 * record, set on `record` only when stored: a caller that never passes them sees the
 * objects it always did. `extra` is given back as the object stored.
 */
function grantFields(record) {
  const resource = wire.str();
  const extra = wire.str();
  if (resource !== null) record.resource = resource;
  if (extra !== null) record.extra = JSON.parse(extra);
}

const OPERATIONS = {
  storeAccessToken: {
    params: ["accessToken", "refreshToken", "apiKey", "userId", "clientId", "scopes", "expiresAt", "options"],
    defaults: { scopes: [], expiresAt: null },
    entry: "tokens",
    old: true,
    input(accessToken, refreshToken, apiKey, userId, clientId, scopes, expiresAt, options) {
      const fn = "storeAccessToken";
      return [
        args.requiredString(fn, "accessToken", accessToken),
        args.optionalString(fn, "refreshToken", refreshToken),
        args.requiredString(fn, "apiKey", apiKey),
        args.userId(fn, userId),
        args.requiredString(fn, "clientId", clientId),
        args.scopes(fn, scopes),
        args.expiresAt(fn, expiresAt),
        args.grantOptions(fn, options),
      ];
    },
    output: nothing,
  },

  /**
   * Many access tokens at once, all or none (one transaction on SQLite): for a migration or
   * a seed. `records` is an array or any other iterable (a generator); each record is
   * `{ accessToken, refreshToken, apiKey, userId, clientId, scopes, expiresAt, resource, extra }`, checked
   * as `storeAccessToken` checks its arguments. Answers how many tokens the call left
   * stored (a token given twice counts once).
   */
  storeAccessTokens: {
    params: ["records"],
    entry: "tokens",
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
    params: ["token"],
    entry: "tokens",
    old: true,
    /** The synchronous call may keep the store's read open until the turn ends (`TokenStorage#_runOp`). */
    holdsReads: true,
    input: byKey("getAccessToken", "token", null),
    output(reply) {
      if (reply == null) return null;
      wire.begin(reply);
      const t = { apiKey: wire.str(), userId: wire.str(), clientId: wire.str(), scopes: wire.strs(), refreshToken: wire.str(), expiresAt: wire.date(), createdAt: wire.date() };
      grantFields(t);
      wire.end();
      return t;
    },
  },

  storeAuthorizationCode: {
    params: ["code", "userId", "apiKey", "clientId", "redirectUri", "codeChallenge", "codeChallengeMethod", "scopes", "expiresIn", "options"],
    defaults: { expiresIn: orNull(DEFAULTS.CODE_LIFETIME_SECONDS) },
    entry: "tokens",
    old: true,
    input(code, userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes, expiresIn, options) {
      const fn = "storeAuthorizationCode";
      const key = args.requiredString(fn, "code", code);
      const grant = args.grantOptions(fn, options);
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
          expiresIn: args.seconds(fn, "expiresIn", expiresIn),
          resource: grant?.resource,
          extra: grant?.extra,
        },
      ];
    },
    output: nothing,
  },

  consumeAuthorizationCode: {
    params: ["code", "codeVerifier"],
    entry: "tokens",
    old: true,
    input(code, codeVerifier) {
      const fn = "consumeAuthorizationCode";
      const key = args.lookupKey(fn, "code", code);
      const verifier = args.verifier(fn, codeVerifier);
      return key === null ? answer(null) : [key, verifier];
    },
    output(reply) {
      if (reply == null) return null;
      wire.begin(reply);
      const c = {
        userId: wire.str(),
        apiKey: wire.str(),
        clientId: wire.str(),
        redirectUri: wire.str(),
        codeChallenge: wire.str(),
        codeChallengeMethod: wire.str(),
        scopes: wire.strs(),
        expiresAt: wire.int(),
        createdAt: wire.int(),
      };
      grantFields(c);
      wire.end();
      return c;
    },
  },

  getRefreshToken: {
    params: ["refreshToken"],
    entry: "tokens",
    old: true,
    input: byKey("getRefreshToken", "refreshToken", null),
    output(reply) {
      if (reply == null) return null;
      wire.begin(reply);
      const r = { userId: wire.str(), clientId: wire.str(), scopes: wire.strs(), accessToken: wire.str(), createdAt: wire.date() };
      wire.end();
      return r;
    },
  },

  revokeRefreshToken: { params: ["refreshToken"], entry: "tokens", old: true, input: byKey("revokeRefreshToken", "refreshToken", undefined), output: nothing },
  deleteToken: { params: ["token"], entry: "tokens", old: true, input: byKey("deleteToken", "token", undefined), output: nothing },
  deleteUserTokens: { params: ["userId"], entry: "tokens", old: true, input: byKey("deleteUserTokens", "userId", undefined), output: nothing },

  /**
   * Every expired access token (with its refresh token) and authorization code, removed in
   * transactions of `batchSize` rows; answers how many access tokens and codes went. The
   * Promise form works as `cleanupExpiredTokensAsync` (batches on the thread pool).
   */
  cleanupExpiredTokens: {
    params: ["batchSize"],
    defaults: { batchSize: DEFAULTS.CLEANUP_BATCH_SIZE },
    entry: "tokens",
    old: true,
    input(batchSize) {
      return [batchSizeArg("cleanupExpiredTokens", batchSize)];
    },
    output(removed, storage) {
      if (removed > 0) log("debug", "expired tokens removed", { storage, removed });
      return removed;
    },
    promise: {
      defaults: { batchSize: DEFAULTS.BACKGROUND_CLEANUP_BATCH_SIZE },
      run: (storage, [batchSize]) => storage._cleanupInBackground("cleanupExpiredTokens", batchSize),
    },
  },

  /**
   * Like `cleanupExpiredTokens`, but each batch runs on a thread of libuv's pool (with its
   * own connection to a SQLite file), so the event loop is never blocked by it. A Promise
   * already, the same in the Promise API as its `cleanupExpiredTokens`.
   */
  cleanupExpiredTokensAsync: {
    params: ["batchSize"],
    defaults: { batchSize: DEFAULTS.BACKGROUND_CLEANUP_BATCH_SIZE },
    entry: "tokens",
    run: (storage, [batchSize]) => storage._cleanupInBackground("cleanupExpiredTokensAsync", batchSize),
    async: true,
  },

  getStats: {
    params: [],
    entry: "tokens",
    old: true,
    input: () => [],
    output: (s, storage) => ({ totalTokens: s.totalTokens, uniqueUsers: s.uniqueUsers, storage }),
  },

  /** Closes the store (the old SQLite module's name for `close()`); the next call reopens it. */
  closeDB: {
    params: [],
    entry: "tokens",
    run: (storage) => storage.close(),
  },

  /**
   * A consistent snapshot of the store, taken while others keep writing, written as a new
   * SQLite file at `destination` (created 0600, checked before it is reported done; see
   * docs/operations.md). `options.overwrite` replaces a file already there;
   * `options.batchSize` rows per transaction. Answers `{ path, counts, bytes, ms }`.
   */
  backup: {
    params: ["destination", "options"],
    defaults: { options: orNull({}) },
    entry: "tokens",
    input(destination, options) {
      const fn = "backup";
      return [args.filePath(fn, "destination", destination), ...copyOptions(fn, options)];
    },
    output: (json) => JSON.parse(json),
  },

  /**
   * The refresh grant in one atomic step (see docs/api.md): the new pair, or null. A
   * refresh token rotated away and presented again after the grace period revokes its
   * family, logged as a warning (without the token). With a function as second argument,
   * `rotateRefreshToken(refreshToken, mint)`: the steps of lib/minted-rotation.js.
   */
  rotateRefreshToken: {
    params: ["refreshToken", "newAccessToken", "newRefreshToken", "expiresAt"],
    defaults: { expiresAt: null },
    entry: "tokens",
    steps: (given) => (typeof given[1] === "function" ? mintedRotation(given) : null),
    input(refreshToken, newAccessToken, newRefreshToken, expiresAt) {
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

  /** Keeps `data` (a JSON-serialisable object) under `state` for `ttlSeconds`, for one consume. */
  storePendingAuthorization: {
    params: ["state", "data", "ttlSeconds"],
    defaults: { ttlSeconds: orNull(DEFAULTS.PENDING_LIFETIME_SECONDS) },
    entry: "tokens",
    input(state, data, ttlSeconds) {
      const fn = "storePendingAuthorization";
      return [args.requiredString(fn, "state", args.boundedString(fn, "state", state)), args.jsonObject(fn, "data", data), args.seconds(fn, "ttlSeconds", ttlSeconds) * 1000];
    },
    output: nothing,
  },

  /** The data stored under `state`, once; null if unknown, taken or expired. */
  consumePendingAuthorization: {
    params: ["state"],
    entry: "tokens",
    input: byKey("consumePendingAuthorization", "state", null),
    output: (json) => (json == null ? null : JSON.parse(json)),
  },

  /** RFC 7591 dynamic registration: the new client with its secret (shown once; stored as a digest). */
  registerClient: {
    params: ["metadata"],
    entry: "clients",
    old: true,
    native: "putClient",
    input(metadata) {
      const fn = "registerClient";
      const given = args.clientMetadata(fn, metadata);
      const secret = crypto.randomBytes(32).toString("hex");
      const registration = {
        client_id: crypto.randomBytes(16).toString("hex"),
        client_secret: secret,
        client_id_issued_at: Math.floor(Date.now() / 1000),
        ...clientDefaults(),
        redirect_uris: [...DEFAULTS.REGISTERED_REDIRECT_URIS],
        ...withoutIssued(given),
      };
      // The registration rides along for `output`, not as an argument of the native call.
      return Object.assign([clientRecord(registration, secret)], { registration });
    },
    output: (reply, storage, input) => input.registration,
  },

  /** The stored registration (without its secret), or null. */
  getClient: {
    params: ["clientId"],
    entry: "clients",
    old: true,
    input: byKey("getClient", "clientId", null),
    output: record((c) => JSON.parse(c[2])),
  },

  /** Whether `clientSecret` is the client's secret (compared in constant time). */
  verifyClient: {
    params: ["clientId", "clientSecret"],
    entry: "clients",
    old: true,
    native: "getClient",
    input(clientId, clientSecret) {
      const key = args.lookupKey("verifyClient", "clientId", clientId);
      if (key === null || typeof clientSecret !== "string" || clientSecret === "") return answer(false);
      return [key];
    },
    output(json, storage, input, given) {
      const stored = storedSecret(json);
      return stored !== null && secretMatches(stored, given[1]);
    },
    /** The Promise API's: the salted digest computed off the JS thread. */
    outputAsync(json, storage, input, given) {
      const stored = storedSecret(json);
      return stored !== null && secretMatchesAsync(stored, given[1]);
    },
  },

  /** Registers (or updates) a client with a known id and secret: call it at every start. */
  preRegisterClient: {
    params: ["clientId", "clientSecret", "metadata"],
    defaults: { metadata: {} },
    entry: "clients",
    old: true,
    native: "putClient",
    input(clientId, clientSecret, metadata) {
      const fn = "preRegisterClient";
      const id = args.requiredString(fn, "clientId", args.boundedString(fn, "clientId", clientId));
      const secret = args.optionalString(fn, "clientSecret", clientSecret);
      const given = args.clientMetadata(fn, metadata);
      const registration = {
        client_id: id,
        client_id_issued_at: Math.floor(Date.now() / 1000),
        ...clientDefaults(),
        redirect_uris: [...DEFAULTS.PRE_REGISTERED_REDIRECT_URIS],
        ...withoutIssued(given),
      };
      return [clientRecord(registration, secret, slowDigest)];
    },
    output: nothing,
  },

  /** Every registered client's id. */
  getAllClients: {
    params: [],
    entry: "clients",
    old: true,
    native: "clientIds",
    input: () => [],
    output: (json) => JSON.parse(json),
  },
};

/** The registry's default metadata (lib/defaults.js), its arrays copied: each registration has its own. */
function clientDefaults() {
  return Object.fromEntries(Object.entries(DEFAULTS.CLIENT_METADATA).map(([k, v]) => [k, Array.isArray(v) ? [...v] : v]));
}

/** The metadata given, less what the registry issues itself (the id, secret and issue time). */
function withoutIssued(metadata) {
  const { client_id, client_secret, client_id_issued_at, ...rest } = metadata;
  return rest;
}

/**
 * How a client's secret is stored. A secret the registry issued (`registerClient`: 32 random
 * bytes) as its SHA-256 in hex: nothing to guess, so a fast digest is enough. A secret an
 * operator chose (`preRegisterClient`) may be guessable: as `scrypt$N$r$p$salt$hash`
 * (base64url), salted and slow, so a leaked file gives no secret away by a lookup and each
 * guess costs what a verification costs. Parameters in the stored value: raising them later
 * leaves stored secrets verifying. docs/operations.md ("Client secrets") says why these.
 */
const SCRYPT = Object.freeze({ N: 2048, r: 8, p: 1, keyLength: 32, saltLength: 16 });
/**
 * A stored scrypt digest beyond these is refused, not computed (a tampered row must not stall
 * the event loop): a cost N·r·p at most 4× the default's, salt and hash at most 64 bytes.
 */
const SCRYPT_MAX = Object.freeze({ cost: 4 * SCRYPT.N * SCRYPT.r * SCRYPT.p, N: 1 << 16, r: 16, p: 4, bytes: 64 });

const digest = (secret) => crypto.createHash("sha256").update(secret, "utf8").digest();

const fastDigest = (secret) => digest(secret).toString("hex");

function slowDigest(secret, { N, r, p, keyLength, saltLength } = SCRYPT) {
  const salt = crypto.randomBytes(saltLength);
  const hash = crypto.scryptSync(secret, salt, keyLength, { N, r, p });
  return `scrypt$${N}$${r}$${p}$${salt.toString("base64url")}$${hash.toString("base64url")}`;
}

/** The stored secret digest of a getClient reply, or null (no such client, or none kept). */
function storedSecret(json) {
  if (json == null) return null;
  const stored = JSON.parse(json)[1];
  return typeof stored === "string" ? stored : null;
}

/** A stored `scrypt$N$r$p$salt$hash` read and bounded (see SCRYPT_MAX), or null. */
function scryptParams(stored) {
  const parts = stored.split("$");
  if (parts.length !== 6) return null;
  const [N, r, p] = parts.slice(1, 4).map((x) => (/^\d{1,7}$/.test(x) ? Number(x) : 0));
  const fits = N > 1 && (N & (N - 1)) === 0 && N <= SCRYPT_MAX.N && r >= 1 && r <= SCRYPT_MAX.r && p >= 1 && p <= SCRYPT_MAX.p && N * r * p <= SCRYPT_MAX.cost;
  if (!fits || parts[4].length > 2 * SCRYPT_MAX.bytes || parts[5].length > 2 * SCRYPT_MAX.bytes) return null;
  const salt = Buffer.from(parts[4], "base64url");
  const expected = Buffer.from(parts[5], "base64url");
  if (salt.length < 8 || salt.length > SCRYPT_MAX.bytes || expected.length < 16 || expected.length > SCRYPT_MAX.bytes) return null;
  return { salt, expected, options: { N, r, p, maxmem: 256 * N * r + (1 << 20) } };
}

/** Whether `secret` is the one of the stored digest (either form), compared in constant time. */
function secretMatches(stored, secret) {
  if (stored.startsWith("scrypt$")) {
    const s = scryptParams(stored);
    if (s === null) return false;
    return crypto.timingSafeEqual(s.expected, crypto.scryptSync(secret, s.salt, s.expected.length, s.options));
  }
  const offered = digest(secret);
  const expected = Buffer.from(stored, "hex");
  return expected.length === offered.length && crypto.timingSafeEqual(expected, offered);
}

/** `secretMatches` for the Promise API: a salted digest computed on libuv's pool, off the JS thread. */
function secretMatchesAsync(stored, secret) {
  if (!stored.startsWith("scrypt$")) return secretMatches(stored, secret);
  const s = scryptParams(stored);
  if (s === null) return false;
  return new Promise((resolve, reject) => {
    crypto.scrypt(secret, s.salt, s.expected.length, s.options, (err, offered) => {
      if (err) reject(err);
      else resolve(crypto.timingSafeEqual(s.expected, offered));
    });
  });
}

/** A registration as stored: the metadata without the secret, and the secret's digest (`hash`). */
function clientRecord(registration, secret, hash = fastDigest) {
  const { client_secret, ...stored } = registration;
  return {
    clientId: registration.client_id,
    secretDigest: secret == null ? undefined : hash(secret),
    metadata: JSON.stringify(stored),
    createdAt: Date.now(),
  };
}

/** `{ overwrite, batchSize }` of a backup or copy, checked: `[overwrite, batchSize]`. */
function copyOptions(fn, options) {
  if (typeof options !== "object" || Array.isArray(options)) {
    throw new TypeError(`${fn}: options must be an object ({ overwrite, batchSize })`);
  }
  const { overwrite = false, batchSize = DEFAULTS.COPY_BATCH_SIZE } = options;
  if (typeof overwrite !== "boolean") throw new TypeError(`${fn}: options.overwrite must be a boolean`);
  return [overwrite, batchSizeArg(fn, batchSize)];
}

function batchSizeArg(fn, value) {
  if (!Number.isInteger(value) || value < 1 || value > 2 ** 31 - 1) {
    throw new TypeError(`${fn}: batchSize must be a whole number from 1 to 2147483647`);
  }
  return value;
}

/**
 * A function of the arguments an operation is given to those it runs with: each parameter left
 * out (or null, for an `orNull` default) replaced by its default; arguments past the
 * parameters kept. Made once per operation: a call that leaves nothing out gets its own
 * arguments back, with no copy (this is on every call's path).
 */
function defaultsFiller(params, defaults) {
  const slots = [];
  if (defaults !== undefined) {
    for (const [i, name] of params.entries()) {
      if (!Object.hasOwn(defaults, name)) continue;
      const d = defaults[name];
      const nullToo = d !== null && typeof d === "object" && Object.hasOwn(d, OR_NULL);
      slots.push({ i, value: nullToo ? d[OR_NULL] : d, nullToo });
    }
  }
  if (slots.length === 0) return (given) => given;
  return (given) => {
    let out = null;
    for (let k = 0; k < slots.length; k++) {
      const { i, value, nullToo } = slots[k];
      const v = given[i];
      if (v === undefined || (nullToo && v === null)) {
        out ??= Array.from(given);
        out[i] = value;
      }
    }
    return out ?? given;
  };
}

for (const [name, op] of Object.entries(OPERATIONS)) {
  op.name = name;
  op.withDefaults = defaultsFiller(op.params, op.defaults);
  if (op.promise) op.promise.withDefaults = defaultsFiller(op.params, op.promise.defaults ?? op.defaults);
  Object.freeze(op);
}
Object.freeze(OPERATIONS);

/** `name(a, b = default)`: the operation's signature as docs/api.md writes it. */
function signature(name) {
  const op = OPERATIONS[name];
  const params = op.params.map((p) => {
    if (!op.defaults || !Object.hasOwn(op.defaults, p)) return p;
    const d = op.defaults[p];
    const value = d !== null && typeof d === "object" && Object.hasOwn(d, OR_NULL) ? d[OR_NULL] : d;
    return `${p} = ${JSON.stringify(value)}`;
  });
  return `${name}(${params.join(", ")})`;
}

/** The operations of an entry point: "tokens" (index.js) or "clients" (clients.js); promises.js has both. */
function namesOf(entry) {
  return Object.values(OPERATIONS)
    .filter((op) => op.entry === entry)
    .map((op) => op.name);
}

/**
 * The module-level functions of an entry point, by name: each calls the method of the same
 * name on `target()` (the default store, or its `promises`), with the caller's arguments.
 */
function moduleFunctions(entry, target) {
  return Object.fromEntries(
    namesOf(entry).map((name) => {
      const fn = { [name]: (...given) => target()[name](...given) }[name];
      Object.defineProperty(fn, "length", { value: OPERATIONS[name].params.length });
      return [name, fn];
    }),
  );
}

module.exports = { OPERATIONS, ANSWER, batchSizeArg, copyOptions, signature, namesOf, moduleFunctions };
