"use strict";
// Structured logging: one JSON object a line on stderr, as the server's own logs.
// `TOKEN_STORAGE_LOG` = debug | info | warn | error | silent (default info), read at first use.
// Callers pass only non-secret fields: the store never logs a token, code, key or verifier.

const fs = require("node:fs");

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
let threshold = null;

function currentThreshold() {
  if (threshold !== null) return threshold;
  const raw = (process.env.TOKEN_STORAGE_LOG || "info").trim().toLowerCase();
  threshold = LEVELS[raw] ?? LEVELS.info;
  if (!(raw in LEVELS)) {
    write("warn", "TOKEN_STORAGE_LOG has an unknown value; using info", {
      value: raw.slice(0, 20),
      accepted: Object.keys(LEVELS),
    });
  }
  return threshold;
}

/**
 * Writes one line to file descriptor 2 directly, synchronously. Not through
 * `process.stderr`: once the reader of a pipe has gone, that stream reports EPIPE as an
 * 'error' event later, which ends the process when nobody listens for it. Here every
 * failure (EPIPE, a closed descriptor, a full non-blocking pipe) is thrown at once and
 * dropped: a log line is never worth a token call or the process.
 */
function write(level, message, fields) {
  const line = { timestamp: new Date().toISOString(), level, message, ...fields };
  try {
    const bytes = Buffer.from(`${JSON.stringify(line)}\n`);
    for (let done = 0, n = 1; done < bytes.length && n > 0; done += n) n = fs.writeSync(2, bytes, done);
  } catch {
    // Logging must never take the process down, whatever stderr is.
  }
}

function log(level, message, fields = {}) {
  if (LEVELS[level] < currentThreshold()) return;
  write(level, message, fields);
}

module.exports = { log };
