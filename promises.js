"use strict";
// native-token-storage/promises: the module's functions, each returning a Promise, the work
// done on a thread of libuv's pool (as `fs/promises` is to `fs`). Same store (the default
// store, from the environment), same checks, results and errors as the synchronous ones;
// a bad argument rejects with a TypeError instead of throwing.
//
// The functions are the operations of lib/operations.js that have a Promise form, each
// calling the default store's `promises` method of the same name.

const { TokenStorage } = require("./lib/storage");
const { TokenStorageError } = require("./lib/errors");
const { defaultStore } = require("./lib/default-store");
const { moduleFunctions } = require("./lib/operations");

module.exports = {
  ...moduleFunctions("promises", () => defaultStore().promises),
  TokenStorage,
  TokenStorageError,
};

// For `import { … } from "native-token-storage/promises"` in ES modules: Node finds a
// CommonJS module's names by reading its source, so they are written out here, never run
// (__test__/operations-table.test.js checks the list against the table).
0 && (module.exports = {
  storeAccessToken, storeAccessTokens, getAccessToken, storeAuthorizationCode, consumeAuthorizationCode,
  getRefreshToken, revokeRefreshToken, deleteToken, deleteUserTokens, cleanupExpiredTokens, getStats,
  closeDB, rotateRefreshToken, storePendingAuthorization, consumePendingAuthorization, registerClient,
  getClient, verifyClient, preRegisterClient, getAllClients, TokenStorage, TokenStorageError,
});
