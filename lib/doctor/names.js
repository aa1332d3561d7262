"use strict";
// The package's names as doctor knows them: the package's module names and its synchronous
// functions. Every rule takes them from here.

const PACKAGE = "native-token-storage";

/**
 * The package's synchronous functions, each with the module that exports it ("tokens":
 * native-token-storage, "clients": native-token-storage/clients) and whether the old
 * Map-based module of that kind had it too (`old`: doctor recognises an old token module or
 * client registry by those names). Made from the operations table (lib/operations.js).
 */
const { PACKAGE_FUNCTIONS } = require("../api-names");

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
