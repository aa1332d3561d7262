"use strict";
// Structured logging: one JSON object a line on stderr, as the server's own logs.
// `TOKEN_STORAGE_LOG` = debug | info | warn | error | silent (default info), read at first use.
// Callers pass only non-secret fields: the store never logs a token, code, key or verifier.

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

function write(level, message, fields) {
  const line = { timestamp: new Date().toISOString(), level, message, ...fields };
  try {
    process.stderr.write(`${JSON.stringify(line)}\n`);
  } catch {
    // A closed stderr must never break a token call.
  }
}

function log(level, message, fields = {}) {
  if (LEVELS[level] < currentThreshold()) return;
  write(level, message, fields);
}

module.exports = { log };
