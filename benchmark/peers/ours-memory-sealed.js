"use strict";
// (d′) Ours, memory store, sealed (issue 19): the same store with encryption keys, so that its
// time against "ours memory" is what keys add to a get and a store (the memory store keeps its
// tokens in clear in memory, where the keys are, and seals its backups). One key, made at open.
const crypto = require("node:crypto");
const { openOurs } = require("./ours");

const keys = () => `bench:${crypto.randomBytes(32).toString("base64")}`;

module.exports = { open: () => openOurs({ storage: "memory", encryptionKeys: keys() }), keys };
