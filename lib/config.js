"use strict";
// A store's configuration, from the options of `new TokenStorage` (or, through
// lib/default-store.js, from the environment): checked here, with messages that name the
// setting, and passed to the native store typed, every setting filled (the native store has
// no defaults of its own). Defaults: lib/defaults.js. Each kind of store is one entry of
// STORE_KINDS; the environment's variables and the accepted `storage` values are made from
// the entries.

const fs = require("node:fs");
const nodePath = require("node:path");
const args = require("./args");
const { TokenStorageError, fromNative } = require("./errors");
const native = require("./native");
const DEFAULTS = require("./defaults");

/**
 * Each kind of store (its key: the native backend's kind, a folder of src/store/):
 * - `names`: the `storage` values that select it (compared without regard to case);
 * - `environment`: the options the environment sets for it, each with its variable (for
 *   `url`, the first of the variables that is set); every kind's are read, whichever is chosen;
 * - `configure(options, names)`: its options checked, its defaults filled from
 *   lib/defaults.js → `{ settings, defaultFile }`, `settings` the plain object its native
 *   backend decodes (`store/<kind>/settings.rs`), every setting there;
 * - `file`: whether it is a file (`storage.path`); `locationField`: the field of the
 *   "token store opened" log line that says where it is.
 */
const STORE_KINDS = {
  memory: { names: ["memory"], environment: {}, configure: memoryConfig, file: false, locationField: "path" },
  sqlite: {
    names: ["db", "sqlite"],
    environment: { path: "TOKEN_DB_PATH", synchronous: "TOKEN_DB_SYNC" },
    configure: sqliteConfig,
    file: true,
    locationField: "path",
  },
  postgres: {
    names: ["postgres", "postgresql", "pg"],
    environment: { url: ["TOKEN_DATABASE_URL", "DATABASE_URL"], schema: "TOKEN_DB_SCHEMA" },
    configure: postgresConfig,
    file: false,
    locationField: "database",
  },
  redis: {
    names: ["redis", "valkey"],
    // Not `url` and `prefix`: the environment's options of every kind are read together,
    // and `url` is PostgreSQL's (lib/default-store.js); in code they are options.url and
    // options.prefix.
    environment: { redisUrl: ["TOKEN_REDIS_URL", "REDIS_URL"], redisPrefix: "TOKEN_REDIS_PREFIX" },
    configure: redisConfig,
    file: false,
    locationField: "database",
  },
};

/**
 * Each option of `new TokenStorage` that the environment sets, and its variable: read into
 * the option, and named in the messages about it (lib/default-store.js). The store's kind
 * and the settings of every store; then each kind's own.
 */
const ENVIRONMENT = Object.freeze({
  storage: "TOKEN_STORAGE",
  ...Object.assign({}, ...Object.values(STORE_KINDS).map((kind) => kind.environment)),
  refreshGracePeriod: "TOKEN_REFRESH_GRACE_SECONDS",
  cleanupInterval: "TOKEN_CLEANUP_INTERVAL_SECONDS",
  encryptionKeys: "TOKEN_ENCRYPTION_KEYS",
});

/** Accepted `storage` values (compared without regard to case) and the store each names. */
const STORES = {
  "": DEFAULTS.STORAGE,
  ...Object.fromEntries(Object.entries(STORE_KINDS).flatMap(([kind, { names }]) => names.map((name) => [name, kind]))),
};
/** `"memory" (or unset), "db", …, "postgresql" and "pg"`: the default kind's first name says it is the default. */
const ACCEPTED_STORES = (() => {
  const shown = Object.entries(STORE_KINDS).flatMap(([kind, { names }]) =>
    names.map((name, i) => `"${name}"${kind === DEFAULTS.STORAGE && i === 0 ? " (or unset)" : ""}`),
  );
  return `${shown.slice(0, -1).join(", ")} and ${shown.at(-1)}`;
})();
const SYNC_MODES = { "": DEFAULTS.SYNCHRONOUS, normal: "normal", full: "full" };

/** Names of the settings in messages, for options given in code. */
const OPTION_NAMES = { storage: "options.storage", synchronous: "options.synchronous", url: ["options.url"], schema: "options.schema" };

/** A PostgreSQL schema name: a plain identifier (it is quoted in SQL all the same). */
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

function choose(table, name, value, accepted) {
  const key = (value ?? "").trim().toLowerCase();
  if (Object.hasOwn(table, key)) return table[key];
  // A connection string set here by mistake is not repeated: it may hold a password.
  const shown = /:\/\/|@/.test(value) ? "a URL" : JSON.stringify(value);
  throw new TokenStorageError(`${name} is ${shown}; accepted values are ${accepted}`, "ERR_TOKEN_STORAGE_CONFIG");
}

/**
 * The native store's configuration (`{ kind, settings, refreshGraceMs }`: the kind's own
 * settings, every one filled), `defaultFile` (why this file, when no path was given, for the
 * open log line) and `cleanupIntervalMs` (0: no automatic cleanup). `names` says what to
 * call the settings in messages (environment variables, for the module-level store).
 */
function storeConfig(options, names = OPTION_NAMES) {
  const kind = choose(STORES, names.storage, args.optionalString("TokenStorage", "options.storage", options.storage), ACCEPTED_STORES);
  const { settings, defaultFile } = STORE_KINDS[kind].configure(options, names);
  const grace = secondsOption(options.refreshGracePeriod, names.refreshGracePeriod ?? "options.refreshGracePeriod", 3600);
  const cleanup = secondsOption(options.cleanupInterval, names.cleanupInterval ?? "options.cleanupInterval", 86400);
  const encryptionKeys = encryptionKeysOption(options.encryptionKeys);
  return {
    config: { kind, settings, refreshGraceMs: (grace ?? DEFAULTS.REFRESH_GRACE_SECONDS) * 1000, encryptionKeys },
    defaultFile,
    cleanupIntervalMs: (cleanup ?? DEFAULTS.CLEANUP_INTERVAL_SECONDS) * 1000,
  };
}

/**
 * The keyring (`id:key,…`, see docs/configuration.md), checked now so that a malformed one
 * fails at start (never a fallback to clear text); unset or empty: no encryption at rest.
 * Messages name the entry by position and id, never a key.
 */
function encryptionKeysOption(value) {
  if (value === undefined || value === null || (typeof value === "string" && value.trim() === "")) return undefined;
  if (typeof value !== "string") throw new TypeError("TokenStorage: options.encryptionKeys must be a string (id:key,id:key,…)");
  try {
    native.checkEncryptionKeys(value);
  } catch (err) {
    throw fromNative(err);
  }
  return value;
}

/** Seconds, a whole number from 0 to `max`; a string (from the environment) is parsed. */
function secondsOption(value, name, max) {
  if (value === undefined || value === null || value === "") return undefined;
  const n = typeof value === "string" ? Number(value.trim()) : value;
  if (!Number.isInteger(n) || n < 0 || n > max) {
    const message = `${name} is ${JSON.stringify(value)}; it must be a whole number of seconds from 0 to ${max}`;
    if (typeof value === "string") throw new TokenStorageError(message, "ERR_TOKEN_STORAGE_CONFIG");
    throw new TypeError(`TokenStorage: ${message}`);
  }
  return n;
}

/** The settings of the memory and SQLite stores, checked for both (a memory store ignores the file's). */
function localSettings(options, names) {
  const fn = "TokenStorage";
  const sync = choose(SYNC_MODES, names.synchronous, args.optionalString(fn, "options.synchronous", options.synchronous), '"normal" (the default) and "full"');
  const given = args.optionalString(fn, "options.path", options.path);
  return { sync, given, busyTimeoutMs: busyTimeoutOption(options.busyTimeout) ?? DEFAULTS.BUSY_TIMEOUT_MS };
}

/** A memory store has no settings; the file's are checked all the same. */
function memoryConfig(options, names) {
  localSettings(options, names);
  return { settings: {}, defaultFile: null };
}

function sqliteConfig(options, names) {
  const { sync, given, busyTimeoutMs } = localSettings(options, names);
  const file = given === null ? defaultFile(process.cwd(), mainScriptFolder()) : { path: nodePath.resolve(given) };
  return { settings: { path: file.path, sync, busyTimeoutMs }, defaultFile: given === null ? file : null };
}

function busyTimeoutOption(value) {
  return wholeNumberOption(value, "busyTimeout", 0, 2 ** 31 - 1, "milliseconds");
}

function wholeNumberOption(value, name, min, max, unit) {
  if (value === undefined || value === null) return undefined;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(`TokenStorage: options.${name} must be a whole number of ${unit} (${min} to ${max})`);
  }
  return value;
}

/**
 * A PostgreSQL store's settings. The URL is the first of `names.url` that is set (the
 * module-level store: TOKEN_DATABASE_URL, then DATABASE_URL); messages name the setting,
 * never its value, which may hold a password.
 */
function postgresConfig(options, names) {
  const fn = "TokenStorage";
  const { url, urlName } = serverUrl("postgres", options.url, names.url ?? OPTION_NAMES.url, names, "the PostgreSQL connection string (postgres://user:password@host:5432/database)");
  const schemaName = names.schema ?? OPTION_NAMES.schema;
  const schema = args.optionalString(fn, "options.schema", options.schema) ?? DEFAULTS.SCHEMA;
  if (!SCHEMA_NAME.test(schema)) {
    throw new TokenStorageError(
      `${schemaName} is ${JSON.stringify(schema)}; a schema name is a letter or _ then up to 62 letters, digits or _`,
      "ERR_TOKEN_STORAGE_CONFIG",
    );
  }
  return { settings: { url, urlName, schema, ...connectionSettings(options) }, defaultFile: null };
}

/**
 * A Redis store's settings. The URL is `options.url` (the module-level store:
 * TOKEN_REDIS_URL, then REDIS_URL), the key prefix `options.prefix` (TOKEN_REDIS_PREFIX);
 * messages name the setting, never the URL, which may hold a password.
 */
function redisConfig(options, names) {
  const fromEnvironment = names.redisUrl !== undefined;
  const { url, urlName } = serverUrl(
    "redis",
    fromEnvironment ? options.redisUrl : options.url,
    fromEnvironment ? names.redisUrl : OPTION_NAMES.url,
    names,
    "the Redis URL (redis://[user:password@]host:6379[/db], rediss://… for TLS)",
  );
  const prefixName = fromEnvironment ? names.redisPrefix : "options.prefix";
  const prefix = args.optionalString("TokenStorage", prefixName, fromEnvironment ? options.redisPrefix : options.prefix) ?? DEFAULTS.REDIS_PREFIX;
  if (prefix.length > 200) {
    throw new TokenStorageError(`${prefixName} is longer than 200 characters`, "ERR_TOKEN_STORAGE_CONFIG");
  }
  return { settings: { url, urlName, prefix, ...connectionSettings(options) }, defaultFile: null };
}

/**
 * A database server's URL: the first of `given` (one value, or the environment's, in the
 * order of `urlNames`) that is set, checked by the native store of `kind` (parsed, never
 * echoed: it may hold a password), so a bad one fails at start. `example` says what to give.
 */
function serverUrl(kind, given, urlNames, names, example) {
  const urls = Array.isArray(given) ? given : [given];
  const at = urls.findIndex((u) => typeof u === "string" && u.trim() !== "");
  if (at === -1) {
    urls.forEach((u, i) => args.optionalString("TokenStorage", urlNames[i], u));
    const which = urlNames.length > 1 ? `neither ${urlNames.join(" nor ")} is set` : `${urlNames[0]} is not set`;
    throw new TokenStorageError(`${names.storage} is "${kind}" but ${which}; give ${example}`, "ERR_TOKEN_STORAGE_CONFIG");
  }
  try {
    native.checkSettings(kind, { url: urls[at], urlName: urlNames[at] });
  } catch (err) {
    throw fromNative(err);
  }
  return { url: urls[at], urlName: urlNames[at] };
}

/** A database server's timeouts and pool size (PostgreSQL, Redis). */
function connectionSettings(options) {
  return {
    connectTimeoutMs: wholeNumberOption(options.connectTimeout, "connectTimeout", 1, 2 ** 31 - 1, "milliseconds") ?? DEFAULTS.CONNECT_TIMEOUT_MS,
    queryTimeoutMs: wholeNumberOption(options.queryTimeout, "queryTimeout", 1, 2 ** 31 - 1, "milliseconds") ?? DEFAULTS.QUERY_TIMEOUT_MS,
    poolSize: wholeNumberOption(options.poolSize, "poolSize", 1, 100, "connections") ?? DEFAULTS.POOL_SIZE,
  };
}

// Read once, as the package loads: a function that reads `require` later keeps this module,
// and through it every module of this copy of the package, alive as long as the function is.
const MAIN_SCRIPT = require.main?.filename ?? process.argv[1];

/** The folder of the program's main script (`node server/server.js`: server/), if known. */
function mainScriptFolder() {
  return MAIN_SCRIPT ? nodePath.dirname(nodePath.resolve(MAIN_SCRIPT)) : null;
}

/**
 * The database file when no path is given: `data/tokens.db` under the working directory,
 * unless that does not exist and the old module's file does: `data/tokens.db` beside the
 * main script (the old module kept it at `utils/../data/`). A server started from another
 * folder (`node server/server.js`) then keeps its users' tokens instead of starting empty.
 * Returns `{ path, reason, other? }`; `other` names a second file that exists too.
 */
function defaultFile(cwd, mainFolder) {
  const here = nodePath.resolve(cwd, DEFAULTS.DB_FILE);
  const beside = mainFolder ? nodePath.resolve(mainFolder, DEFAULTS.DB_FILE) : here;
  if (beside === here || !fs.existsSync(beside)) return { path: here, reason: "working directory" };
  if (!fs.existsSync(here)) {
    return { path: beside, reason: "beside the main script, where the old token module kept it" };
  }
  return { path: here, reason: "working directory", other: beside };
}

module.exports = { storeConfig, STORE_KINDS, ENVIRONMENT };
