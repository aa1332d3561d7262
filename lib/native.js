"use strict";
// Loads the compiled addon, with a message that says what to do when it is missing.
const path = require("node:path");

const file = path.join(__dirname, "..", "native_token_storage.node");

function load() {
  try {
    return require(file);
  } catch (err) {
    if (err && err.code === "MODULE_NOT_FOUND") {
      const e = new Error(
        `native-token-storage: the native addon ${file} is not built. ` +
          "Run `npm run build` in the package folder (it needs Rust's cargo).",
      );
      e.code = "ERR_TOKEN_STORAGE_NOT_BUILT";
      throw e;
    }
    throw err;
  }
}

module.exports = load();
