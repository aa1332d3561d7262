"use strict";
// native-token-storage: the synchronous functions of a Map-based tokenStorage.js, backed by
// a Rust memory store, a SQLite file or PostgreSQL, plus the rest of an OAuth server's state
// (rotation, pending logins). `require("native-token-storage")` in place of
// `require("./utils/tokenStorage")`; set TOKEN_STORAGE=sqlite (or db) to keep tokens across restarts.
//
// The functions are the "tokens" operations of lib/operations.js, each calling the default
// store's method of the same name with the caller's arguments.

const { TokenStorage } = require("./lib/storage");
const { TokenStorageError } = require("./lib/errors");
const { defaultStore, closeDefaultStore } = require("./lib/default-store");
const { moduleFunctions } = require("./lib/operations");
const native = require("./lib/native");

module.exports = {
  ...moduleFunctions("tokens", defaultStore),
  /** Closes the default store (the SQLite file), if it was opened; the next call reopens it. */
  closeDB: closeDefaultStore,
  TokenStorage,
  TokenStorageError,
  /** The version of the SQLite library built into the addon. */
  sqliteVersion: native.sqliteVersion,
};

// For `import { … } from "native-token-storage"` in ES modules: Node finds a CommonJS
// module's names by reading its source, so they are written out here, never run
// (__test__/operations-table.test.js checks the list against the table).
0 && (module.exports = {
  storeAccessToken, storeAccessTokens, getAccessToken, storeAuthorizationCode, consumeAuthorizationCode,
  getRefreshToken, revokeRefreshToken, deleteToken, deleteUserTokens, cleanupExpiredTokens,
  cleanupExpiredTokensAsync, getStats, closeDB, backup, rotateRefreshToken, storePendingAuthorization,
  consumePendingAuthorization, TokenStorage, TokenStorageError, sqliteVersion,
});
