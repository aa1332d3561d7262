"use strict";
// The store of the module-level functions (`require("native-token-storage")`, its
// `/promises` and `/clients`), from the environment: the variables of the stores' settings
// are named in lib/config.js (ENVIRONMENT, made from each kind's entry of STORE_KINDS);
// TOKEN_MEMORY_SCOPE, MCP_CLIENT_ID and MCP_CLIENT_SECRET here.
//
// A memory store lives and dies with this module, as the old module's `Map`s did: each
// loaded copy of the package (each worker thread, each Jest test file, each
// `jest.resetModules()`) has its own, freed with it; TOKEN_MEMORY_SCOPE=process asks for one
// per process instead. A SQLite file or PostgreSQL database is opened once per process and
// shared by every copy.
//
// Under Vitest a copy is not enough: `vi.resetModules()` re-imports the package's entry files
// through Vitest's module graph, but Node's require cache keeps this module, and so its
// store (see `vitestReimport`).

const path = require("node:path");
const { TokenStorage, SHARED, SETTING_NAMES } = require("./storage");
const { storeConfig, ENVIRONMENT } = require("./config");
const { TokenStorageError } = require("./errors");
const DEFAULTS = require("./defaults");

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

/** The default store, built at first use; a new memory store after a Vitest re-import. */
function defaultStore() {
  // Asked at every call, the first included: it notes which imports it has seen.
  const reimported = vitestReimport();
  if (store === null) store = new TokenStorage(optionsFromEnvironment());
  else if (reimported && store.storage === "memory" && memoryScope() === "module") {
    // The old one is freed by the garbage collector, as a dropped copy's store is.
    store = new TokenStorage(optionsFromEnvironment());
  }
  return store;
}

// Vitest runs a test file's imports through a module graph of its own (the worker state's
// `evaluatedModules` in Vitest 4, vite-node's `moduleCache` in Vitest 1 to 3), whose node for
// a module holds `promise`, the import that evaluated it. `vi.resetModules()` clears it
// (`resetModules` in vitest's runtime: `node.promise = void 0` in 4, `delete mod.promise` in
// 3) and the next `import()` sets a new one. For a package Vitest leaves to Node (the
// default for node_modules) or a CommonJS file inlined with `server.deps.inline`, that
// import reaches Node's require cache, which keeps lib/ and this store: so the entry files'
// nodes are watched instead. A new store when an entry was imported again after one was
// reset; the entries imported after one reset share it, as one copy's entries do. Calls
// without a new import (a static import, `vi.resetModules()` in a `beforeEach`) keep the
// store, as the module they hold kept its `Map`s. Outside Vitest, or if its graph is not
// where it was, nothing here runs.
const ENTRY_FILES = ["index.js", "promises.js", "clients.js"].map((file) => path.join(__dirname, "..", file));
/** The graph's ids for each entry: Vite's and vite-node's ids use `/` on Windows too. */
const ENTRY_IDS = ENTRY_FILES.map((file) => [...new Set([file, file.replace(/\\/g, "/")])]);
/** Each entry's node's `promise` at the last call (undefined: not imported, or reset). */
const importsSeen = new Map();
let resetSeen = false;

/** True when an entry of the package was imported again after a `vi.resetModules()`. */
function vitestReimport() {
  const state = globalThis.__vitest_worker__;
  if (state === null || typeof state !== "object") return false;
  const graph = state.evaluatedModules?.idToModuleMap ?? state.moduleCache;
  if (graph === null || typeof graph !== "object" || typeof graph.has !== "function" || typeof graph.get !== "function") return false;
  let imported = false;
  ENTRY_FILES.forEach((file, i) => {
    let node;
    // `has` first: vite-node's `get` adds an empty node for an id it does not have.
    for (const id of ENTRY_IDS[i]) if (node === undefined && graph.has(id)) node = graph.get(id);
    const promise = node !== null && typeof node === "object" ? node.promise : undefined;
    const seen = importsSeen.get(file);
    if (seen !== undefined && promise !== seen) resetSeen = true;
    if (promise !== undefined && promise !== seen) imported = true;
    importsSeen.set(file, promise);
  });
  if (!(resetSeen && imported)) return false;
  resetSeen = false;
  return true;
}

/**
 * The client the server's old `utils/clientRegistry.js` registered when it was loaded, from
 * MCP_CLIENT_ID and MCP_CLIENT_SECRET (both set), with the same metadata; null otherwise.
 */
function clientFromEnvironment() {
  const { MCP_CLIENT_ID: id, MCP_CLIENT_SECRET: secret } = process.env;
  if (!id || !secret) return null;
  return { id, secret, metadata: { redirect_uris: [...DEFAULTS.PRE_REGISTERED_REDIRECT_URIS], scope: DEFAULTS.CLIENT_METADATA.scope } };
}

/** The default store the environment's client was registered in (a new one after a Vitest re-import). */
let clientRegisteredIn = null;

/**
 * The default store, for the client functions (of `/clients` and `/promises`): the first
 * call on each default store registers the environment's client in it, as the old module
 * did when it was loaded (the store opens at first use, so not before).
 */
function clientStore() {
  const s = defaultStore();
  if (clientRegisteredIn !== s) {
    const client = clientFromEnvironment();
    if (client !== null) s.preRegisterClient(client.id, client.secret, client.metadata);
    clientRegisteredIn = s;
  }
  return s;
}

/** Closes the default store, if it was built; the next call reopens it. */
function closeDefaultStore() {
  if (store !== null) store.close();
}

module.exports = { defaultStore, clientStore, closeDefaultStore };
