"use strict";
// (e″) Ours, SQLite store, sealed (issue 19): the same store with encryption keys, so that its
// time against "ours SQLite" is what sealing adds to a get and a store. One key, made at open
// (each trial's file is new).
const { openOurs } = require("./ours");
const { keys } = require("./ours-memory-sealed");

module.exports = { open: ({ path }) => openOurs({ storage: "db", path, encryptionKeys: keys() }) };
