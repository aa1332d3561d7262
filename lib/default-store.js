"use strict";
// The store of the module-level functions (`require("native-token-storage")`, its
// `/promises` and `/clients`), from the environment. The one place that names the
// environment variables.
//
// A memory store lives and dies with this module, as the old module's `Map`s did: each
// loaded copy of the package (each worker thread, each Jest test file, each
// `jest.resetModules()`) has its own, freed with it; TOKEN_MEMORY_SCOPE=process asks for one
// per process instead. A SQLite file or PostgreSQL database is opened once per process and
// shared by every copy.

const { TokenStorage, SHARED, SETTING_NAMES } = require("./storage");
const { storeConfig } = require("./config");
const { TokenStorageError } = require("./errors");
const DEFAULTS = require("./defaults");

/**
 * Each option of `new TokenStorage` that the environment sets, and its variable: read into
 * the option, and named in the messages about it. For `url`, the first of the variables
 * that is set. (TOKEN_MEMORY_SCOPE, MCP_CLIENT_ID and MCP_CLIENT_SECRET: below.)
 */
const ENVIRONMENT = {
  storage: "TOKEN_STORAGE",
  path: "TOKEN_DB_PATH",
  synchronous: "TOKEN_DB_SYNC",
  url: ["TOKEN_DATABASE_URL", "DATABASE_URL"],
  schema: "TOKEN_DB_SCHEMA",
  refreshGracePeriod: "TOKEN_REFRESH_GRACE_SECONDS",
  cleanupInterval: "TOKEN_CLEANUP_INTERVAL_SECONDS",
};

const MEMORY_SCOPES = { "": DEFAULTS.MEMORY_SCOPE, module: "module", process: "process" };

/** TOKEN_MEMORY_SCOPE: "module" (unset: one memory store per loaded copy) or "process". */
function memoryScope() {
  const value = process.env.TOKEN_MEMORY_SCOPE ?? "";
  const key = value.trim().toLowerCase();
  if (!Object.hasOwn(MEMORY_SCOPES, key)) {
    throw new TokenStorageError(
      `TOKEN_MEMORY_SCOPE is ${JSON.stringify(value)}; accepted values are "module" (or unset) and "process"`,
      "ERR_TOKEN_STORAGE_CONFIG",
    );
  }
  return MEMORY_SCOPES[key];
}

function optionsFromEnvironment() {
  const env = process.env;
  const read = (name) => (Array.isArray(name) ? name.map((n) => env[n]) : env[name]);
  return {
    ...Object.fromEntries(Object.entries(ENVIRONMENT).map(([option, name]) => [option, read(name)])),
    [SHARED]: memoryScope(),
    [SETTING_NAMES]: ENVIRONMENT,
  };
}

// Checked when the package is required, so a misconfigured server fails when it starts,
// not at its first OAuth callback. Nothing is opened: the store is built (from the
// environment as it is then, which a late `dotenv` may have filled in) and opened at first use.
storeConfig(optionsFromEnvironment(), ENVIRONMENT);

let store = null;

/** The default store, built at first use. */
function defaultStore() {
  if (store === null) store = new TokenStorage(optionsFromEnvironment());
  return store;
}

/**
 * The client the server's old `utils/clientRegistry.js` registered when it was loaded, from
 * MCP_CLIENT_ID and MCP_CLIENT_SECRET (both set), with the same metadata; null otherwise.
 * `native-token-storage/clients` registers it at its first call, so the swap keeps it.
 */
function clientFromEnvironment() {
  const { MCP_CLIENT_ID: id, MCP_CLIENT_SECRET: secret } = process.env;
  if (!id || !secret) return null;
  return { id, secret, metadata: { redirect_uris: [...DEFAULTS.PRE_REGISTERED_REDIRECT_URIS], scope: DEFAULTS.CLIENT_METADATA.scope } };
}

/** Closes the default store, if it was built; the next call reopens it. */
function closeDefaultStore() {
  if (store !== null) store.close();
}

module.exports = { defaultStore, closeDefaultStore, clientFromEnvironment };
