"use strict";
// The names of the package's functions, from the table of operations (lib/operations.js),
// for code that reads a server's source (the doctor) rather than calling the store.

const { OPERATIONS } = require("./operations");

/**
 * The package's synchronous functions, each with the module that exports it ("tokens":
 * native-token-storage, "clients": native-token-storage/clients) and whether the old
 * Map-based module of that kind had it too (`old`). An operation that returns a Promise
 * already (cleanupExpiredTokensAsync, `async` in the table) is not among them.
 */
const PACKAGE_FUNCTIONS = Object.freeze(
  Object.values(OPERATIONS)
    .filter((op) => op.async !== true)
    .map((op) => Object.freeze({ name: op.name, module: op.entry, old: op.old === true })),
);

const oldNames = (module) => Object.freeze(PACKAGE_FUNCTIONS.filter((fn) => fn.old && fn.module === module).map((fn) => fn.name));

module.exports = Object.freeze({
  PACKAGE_FUNCTIONS,
  /** The functions of the Map-based tokenStorage.js the package replaces. */
  TOKEN_FUNCTIONS: oldNames("tokens"),
  /** The functions of the Map-based clientRegistry.js that native-token-storage/clients replaces. */
  CLIENT_FUNCTIONS: oldNames("clients"),
  /** The synchronous functions of native-token-storage and native-token-storage/clients. */
  SYNC_FUNCTIONS: Object.freeze(PACKAGE_FUNCTIONS.map((fn) => fn.name)),
  /** The functions of native-token-storage/promises (every operation). */
  PROMISE_FUNCTIONS: Object.freeze(Object.keys(OPERATIONS)),
});
