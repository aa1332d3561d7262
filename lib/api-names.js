"use strict";
// The names of the package's functions, from the table of operations (lib/operations.js),
// for code that reads a server's source (the doctor) rather than calling the store.

const { OPERATIONS, namesOf } = require("./operations");

const ops = Object.values(OPERATIONS);

module.exports = Object.freeze({
  /** The functions of the Map-based tokenStorage.js the package replaces. */
  TOKEN_FUNCTIONS: Object.freeze(ops.filter((op) => op.old && op.entry === "tokens").map((op) => op.name)),
  /** The functions of the Map-based clientRegistry.js that native-token-storage/clients replaces. */
  CLIENT_FUNCTIONS: Object.freeze(ops.filter((op) => op.old && op.entry === "clients").map((op) => op.name)),
  /** The synchronous functions of native-token-storage and native-token-storage/clients (the old modules' and what the package adds). */
  // (An operation without a Promise form, cleanupExpiredTokensAsync, returns one already.)
  SYNC_FUNCTIONS: Object.freeze(ops.filter((op) => op.entry && op.promise !== null).map((op) => op.name)),
  /** The functions of native-token-storage/promises. */
  PROMISE_FUNCTIONS: Object.freeze(namesOf("promises")),
});
