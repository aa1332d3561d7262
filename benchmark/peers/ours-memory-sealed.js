"use strict";
// (d′) Ours, memory store, sealed (issue 19): the same store with encryption keys, so that its
// time against "ours memory" is what sealing adds to a get and a store. One key, made at open.
const crypto = require("node:crypto");
const { openOurs } = require("./ours");

const keys = () => `bench:${crypto.randomBytes(32).toString("base64")}`;

module.exports = { open: () => openOurs({ storage: "memory", encryptionKeys: keys() }), keys };
