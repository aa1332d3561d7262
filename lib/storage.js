"use strict";
// The TokenStorage class: checks arguments, calls the native store, shapes results.

const fs = require("node:fs");
const native = require("./native");
const args = require("./args");
const { storeConfig } = require("./config");
const { TokenStorageError, fromNative } = require("./errors");
const { log } = require("./log");

/** Rows removed per transaction by cleanup, so no single step holds the lock for long. */
const DEFAULT_BATCH_SIZE = 1000;
/** Smaller for the background cleanup: a writer in another thread or process waits at most one batch. */
const DEFAULT_ASYNC_BATCH_SIZE = 2000;

const toDate = (ms) => (ms === null ? null : new Date(ms));

class TokenStorage {
  /**
   * @param {{ storage?: string, path?: string, synchronous?: string, busyTimeout?: number }} [options]
   */
  constructor(options = {}) {
    if (options === null || typeof options !== "object") {
      throw new TypeError("TokenStorage: options must be an object");
    }
    const { config, defaultFile } = storeConfig(options, options[SETTING_NAMES]);
    try {
      this._native = new native.NativeStore({ ...config, shared: options[SHARED] === true });
    } catch (err) {
      throw fromNative(err);
    }
    this._open = false;
    /** Why this file, when the path was not given (logged at open). */
    this._defaultFile = defaultFile;
    // Methods work when taken off the instance (`const { getAccessToken } = storage`), as
    // the module's free functions did.
    for (const name of METHODS) this[name] = this[name].bind(this);
  }

  /** `"memory"` or `"sqlite"`. */
  get storage() {
    return this._native.storage;
  }

  /** The database file's absolute path, or null for the memory store. */
  get path() {
    return this._native.path;
  }

  /** Opens the store now (calls open it on first use anyway); logs which store it is. */
  open() {
    try {
      this._native.open();
    } catch (err) {
      throw this._fail("open", err);
    }
    if (this._open) return;
    this._open = true;
    const { storage, path } = this;
    if (path && this._defaultFile) {
      const { reason, other } = this._defaultFile;
      log("info", "token store opened", { storage, path, chosen: reason });
      if (other) {
        log("warn", "two token databases exist; using the one in the working directory (set TOKEN_DB_PATH to choose)", {
          path,
          other,
        });
      }
    } else {
      log("info", "token store opened", { storage, path });
    }
    if (path) warnIfShared(path);
  }

  /** Closes a SQLite store's file; the next call reopens it. A memory store keeps its tokens. */
  close() {
    this._open = false;
    try {
      this._native.close();
    } catch (err) {
      throw this._fail("close", err);
    }
  }

  /** Runs `body` on the open native store; a failure becomes the error to throw. */
  _call(fn, body) {
    try {
      return body(this._ready());
    } catch (err) {
      throw this._fail(fn, err);
    }
  }

  /** The error to throw for a failed native call (logged unless it is about arguments). */
  _fail(fn, err) {
    const out = fromNative(err);
    if (out instanceof TokenStorageError) {
      log("error", "token store call failed", { call: fn, code: out.code, error: out.message });
    }
    return out;
  }

  _ready() {
    if (!this._open) this.open();
    return this._native;
  }

  storeAccessToken(accessToken, refreshToken, apiKey, userId, clientId, scopes = [], expiresAt = null) {
    const fn = "storeAccessToken";
    const a = [
      args.requiredString(fn, "accessToken", accessToken),
      args.optionalString(fn, "refreshToken", refreshToken),
      args.requiredString(fn, "apiKey", apiKey),
      args.userId(fn, userId),
      args.requiredString(fn, "clientId", clientId),
      args.scopes(fn, scopes),
      args.expiresAt(fn, expiresAt),
    ];
    try {
      this._ready().storeAccessToken(a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
    } catch (err) {
      throw this._fail(fn, err);
    }
  }

  /**
   * Stores many access tokens at once, all or none (one transaction on SQLite): for a
   * migration or a seed. `records` is an array or any other iterable (a generator); each
   * record is `{ accessToken, refreshToken, apiKey, userId, clientId, scopes, expiresAt }`,
   * checked as `storeAccessToken` checks its arguments. Returns how many tokens the call
   * left stored (a token given twice counts once).
   */
  storeAccessTokens(records) {
    const fn = "storeAccessTokens";
    if (records === null || typeof records !== "object" || typeof records[Symbol.iterator] !== "function") {
      throw new TypeError(`${fn}: records must be an array (or another iterable) of token records`);
    }
    const list = [];
    for (const record of records) list.push(args.tokenRecord(fn, record, list.length));
    try {
      return this._ready().storeAccessTokens(list);
    } catch (err) {
      throw this._fail(fn, err);
    }
  }

  getAccessToken(token) {
    const key = args.lookupKey("getAccessToken", "token", token);
    if (key === null) return null;
    let json;
    try {
      json = this._ready().getAccessToken(key);
    } catch (err) {
      throw this._fail("getAccessToken", err);
    }
    if (json == null) return null;
    const t = JSON.parse(json);
    return {
      apiKey: t[0],
      userId: t[1],
      clientId: t[2],
      scopes: t[3],
      refreshToken: t[4],
      expiresAt: toDate(t[5]),
      createdAt: new Date(t[6]),
    };
  }

  storeAuthorizationCode(code, userId, apiKey, clientId, redirectUri, codeChallenge, codeChallengeMethod, scopes, expiresIn = 600) {
    const fn = "storeAuthorizationCode";
    const a = [
      args.requiredString(fn, "code", code),
      args.userId(fn, userId),
      args.requiredString(fn, "apiKey", apiKey),
      args.requiredString(fn, "clientId", clientId),
      args.requiredString(fn, "redirectUri", redirectUri),
      args.optionalString(fn, "codeChallenge", codeChallenge),
      args.optionalString(fn, "codeChallengeMethod", codeChallengeMethod),
      args.scopes(fn, scopes),
      args.expiresIn(fn, expiresIn),
    ];
    try {
      this._ready().storeAuthorizationCode(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]);
    } catch (err) {
      throw this._fail(fn, err);
    }
  }

  consumeAuthorizationCode(code, codeVerifier) {
    const fn = "consumeAuthorizationCode";
    const key = args.lookupKey(fn, "code", code);
    const verifier = args.verifier(fn, codeVerifier);
    if (key === null) return null;
    let json;
    try {
      json = this._ready().consumeAuthorizationCode(key, verifier);
    } catch (err) {
      throw this._fail(fn, err);
    }
    if (json == null) return null;
    const c = JSON.parse(json);
    return {
      userId: c[0],
      apiKey: c[1],
      clientId: c[2],
      redirectUri: c[3],
      codeChallenge: c[4],
      codeChallengeMethod: c[5],
      scopes: c[6],
      expiresAt: c[7],
      createdAt: c[8],
    };
  }

  getRefreshToken(refreshToken) {
    const key = args.lookupKey("getRefreshToken", "refreshToken", refreshToken);
    if (key === null) return null;
    let json;
    try {
      json = this._ready().getRefreshToken(key);
    } catch (err) {
      throw this._fail("getRefreshToken", err);
    }
    if (json == null) return null;
    const r = JSON.parse(json);
    return {
      userId: r[0],
      clientId: r[1],
      scopes: r[2],
      accessToken: r[3],
      createdAt: new Date(r[4]),
    };
  }

  revokeRefreshToken(refreshToken) {
    const key = args.lookupKey("revokeRefreshToken", "refreshToken", refreshToken);
    if (key === null) return;
    this._call("revokeRefreshToken", (n) => n.revokeRefreshToken(key));
  }

  deleteToken(token) {
    const key = args.lookupKey("deleteToken", "token", token);
    if (key === null) return;
    this._call("deleteToken", (n) => n.deleteToken(key));
  }

  deleteUserTokens(userId) {
    const key = args.lookupKey("deleteUserTokens", "userId", userId);
    if (key === null) return;
    this._call("deleteUserTokens", (n) => n.deleteUserTokens(key));
  }

  /**
   * Removes every expired access token (with its refresh token) and authorization code;
   * returns how many access tokens and codes it removed. Works in transactions of
   * `batchSize` rows; `cleanupExpiredTokensAsync` does the work off the JS thread.
   */
  cleanupExpiredTokens(batchSize = DEFAULT_BATCH_SIZE) {
    const size = batchSizeArg("cleanupExpiredTokens", batchSize);
    const removed = this._call("cleanupExpiredTokens", (n) => n.cleanupExpiredTokens(size));
    if (removed > 0) log("debug", "expired tokens removed", { storage: this.storage, removed });
    return removed;
  }

  /**
   * Like `cleanupExpiredTokens`, but each batch runs on a thread of libuv's pool (with its
   * own connection to a SQLite file), so the event loop is never blocked by it.
   */
  async cleanupExpiredTokensAsync(batchSize = DEFAULT_ASYNC_BATCH_SIZE) {
    const fn = "cleanupExpiredTokensAsync";
    const size = batchSizeArg(fn, batchSize);
    let total = 0;
    for (;;) {
      let removed;
      try {
        removed = await this._ready().cleanupExpiredBatchAsync(size);
      } catch (err) {
        throw this._fail(fn, err);
      }
      total += removed;
      if (removed < size) break;
    }
    if (total > 0) log("debug", "expired tokens removed", { storage: this.storage, removed: total });
    return total;
  }

  getStats() {
    const s = this._call("getStats", (n) => n.getStats());
    return { totalTokens: s.totalTokens, uniqueUsers: s.uniqueUsers, storage: this.storage };
  }

  /** The old SQLite module's name for `close()`. */
  closeDB() {
    this.close();
  }
}

/** The methods bound to each instance. */
const METHODS = Object.getOwnPropertyNames(TokenStorage.prototype).filter(
  (name) => name !== "constructor" && !name.startsWith("_") && typeof Object.getOwnPropertyDescriptor(TokenStorage.prototype, name).value === "function",
);

/** Marks the process-wide default store (shared by worker threads); not public API. */
const SHARED = Symbol("native-token-storage.shared");
/** What to call the settings in error messages (the environment variables); not public API. */
const SETTING_NAMES = Symbol("native-token-storage.settingNames");

function batchSizeArg(fn, value) {
  if (!Number.isInteger(value) || value < 1 || value > 2 ** 31 - 1) {
    throw new TypeError(`${fn}: batchSize must be a whole number from 1 to 2147483647`);
  }
  return value;
}

/** A file of API keys should not be readable by others; say so once at open. */
function warnIfShared(path) {
  try {
    const mode = fs.statSync(path).mode & 0o777;
    if (mode & 0o077) {
      log("warn", "token database is readable or writable by other users; run chmod 600 on it", {
        path,
        mode: mode.toString(8),
      });
    }
  } catch {
    // The store opened it; a failed stat here is not worth failing the call for.
  }
}

module.exports = { TokenStorage, SHARED, SETTING_NAMES };
