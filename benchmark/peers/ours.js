"use strict";
// (d, e) This package: the Rust store behind napi, used exactly as a server would.
const path = require("node:path");

const PACKAGE = path.join(__dirname, "..", "..");

function openOurs(storage, file) {
  const { TokenStorage } = require(PACKAGE);
  if (typeof TokenStorage !== "function") throw new Error(`${PACKAGE} exports no TokenStorage class: build it with \`npm run build\``);
  return new TokenStorage(storage === "db" ? { storage, path: file } : { storage });
}

module.exports = { openOurs, PACKAGE };
