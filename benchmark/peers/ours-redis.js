"use strict";
// Ours, Redis store, called synchronously as the PostgreSQL store is: each call holds the
// JavaScript thread for its round trip to the server.
const { openOurs } = require("./ours");

module.exports = { open: ({ url, prefix }) => openOurs({ storage: "redis", url, prefix }) };
