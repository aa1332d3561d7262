"use strict";
// native-token-storage/promises: the functions of the package's other two modules (index.js
// and clients.js), each returning a Promise, the work done on a thread of libuv's pool (as
// `fs/promises` is to `fs`). Same store (the default store, from the environment), same
// checks, results and errors as the synchronous ones; a bad argument rejects with a
// TypeError instead of throwing. Every name those modules export is here, so changing the
// import is all it takes to move to the Promise API.
//
// The functions are the operations of lib/operations.js, each calling the default store's
// `promises` method of the same name.

const { TokenStorage } = require("./lib/storage");
const { TokenStorageError } = require("./lib/errors");
const { defaultStore, clientStore } = require("./lib/default-store");
const { moduleFunctions } = require("./lib/operations");
const native = require("./lib/native");

module.exports = {
  ...moduleFunctions("tokens", () => defaultStore().promises),
  ...moduleFunctions("clients", () => clientStore().promises),
  TokenStorage,
  TokenStorageError,
  /** The version of the SQLite library built into the addon (a string, not a Promise). */
  sqliteVersion: native.sqliteVersion,
};

// For `import { … } from "native-token-storage/promises"` in ES modules: Node finds a
// CommonJS module's names by reading its source, here the names of index.js and clients.js
// (their lists), never run (__test__/operations-table.test.js checks that they are these).
0 && (module.exports = { ...require("./index"), ...require("./clients") });
