"use strict";
// (e) Ours, SQLite store (bundled SQLite via rusqlite).
const { openOurs } = require("./ours");

module.exports = { open: ({ path }) => openOurs({ storage: "db", path }) };
