"use strict";
// (d) Ours, memory store.
const { openOurs } = require("./ours");

module.exports = { open: () => openOurs({ storage: "memory" }) };
