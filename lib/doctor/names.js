"use strict";
// The package's names as doctor knows them: the package's module names and its synchronous
// functions. Every rule takes them from here.

const PACKAGE = "native-token-storage";

/**
 * The package's synchronous functions, the one list of them in doctor: each with the module
 * that exports it ("tokens": native-token-storage, "clients": native-token-storage/clients)
 * and whether the old Map-based module of that kind had it too (`old`: doctor recognises an
 * old token module or client registry by those names).
 *
 * When the operations table (lib/operations.js) says, for each function, its module and
 * whether the old modules had it, build this constant from the table instead (issue 17).
 */
const PACKAGE_FUNCTIONS = [
  { name: "storeAccessToken", module: "tokens", old: true },
  { name: "getAccessToken", module: "tokens", old: true },
  { name: "storeAuthorizationCode", module: "tokens", old: true },
  { name: "consumeAuthorizationCode", module: "tokens", old: true },
  { name: "getRefreshToken", module: "tokens", old: true },
  { name: "revokeRefreshToken", module: "tokens", old: true },
  { name: "deleteToken", module: "tokens", old: true },
  { name: "deleteUserTokens", module: "tokens", old: true },
  { name: "cleanupExpiredTokens", module: "tokens", old: true },
  { name: "getStats", module: "tokens", old: true },
  { name: "storeAccessTokens", module: "tokens", old: false },
  { name: "closeDB", module: "tokens", old: false },
  { name: "rotateRefreshToken", module: "tokens", old: false },
  { name: "storePendingAuthorization", module: "tokens", old: false },
  { name: "consumePendingAuthorization", module: "tokens", old: false },
  { name: "registerClient", module: "clients", old: true },
  { name: "getClient", module: "clients", old: true },
  { name: "verifyClient", module: "clients", old: true },
  { name: "preRegisterClient", module: "clients", old: true },
  { name: "getAllClients", module: "clients", old: true },
];

const oldNames = (module) => PACKAGE_FUNCTIONS.filter((fn) => fn.old && fn.module === module).map((fn) => fn.name);
/** The functions of the old token module (tokenStorage.js), by which doctor knows one. */
const TOKEN_FUNCTIONS = oldNames("tokens");
/** The functions of the old client registry, by which doctor knows one. */
const CLIENT_FUNCTIONS = oldNames("clients");
/** The package's synchronous functions (the old modules' names, and what it adds). */
const SYNC_FUNCTIONS = new Set(PACKAGE_FUNCTIONS.map((fn) => fn.name));
/** Module kinds whose functions are (or, after the swap, will be) the package's synchronous ones. */
const SYNC_KINDS = new Set(["tokens", "old-db", "clients"]);

module.exports = { PACKAGE, PACKAGE_FUNCTIONS, TOKEN_FUNCTIONS, CLIENT_FUNCTIONS, SYNC_FUNCTIONS, SYNC_KINDS };
