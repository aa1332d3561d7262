"use strict";
// (f) Ours, PostgreSQL store, called synchronously as the SQLite store is: each call holds
// the JavaScript thread for its round trips to the server.
const { openOurs } = require("./ours");

module.exports = { open: ({ url, schema }) => openOurs({ storage: "postgres", url, schema }) };
