"use strict";
// Running the operator's command line (bin/native-token-storage.js) in a child process, and
// seeding a SQLite store for it: shared by the __test__/cli*.test.js suites.
const path = require("node:path");
const { spawnSync } = require("node:child_process");
const { TokenStorage, cleanEnv } = require("./setup");

const BIN = path.join(__dirname, "..", "..", "bin", "native-token-storage.js");

/**
 * Runs `native-token-storage ...args` with none of the package's variables but `env`'s;
 * its exit status, output, and its stdout parsed as JSON on demand.
 */
function runCli(args, { env = {}, input, timeout = 60_000 } = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: cleanEnv(env), input, timeout });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout) };
}

/**
 * A SQLite store at `file` holding `n` live tokens (`secret-at-i`, each with its refresh
 * token `secret-rt-i`, API key `sk-secret`, client `app`), of the users `user(i)`.
 */
function seedTokens(file, n, { user, scopes }) {
  const s = new TokenStorage({ storage: "db", path: file });
  const later = Date.now() + 3600e3;
  const records = [];
  for (let i = 0; i < n; i++) {
    records.push({ accessToken: `secret-at-${i}`, refreshToken: `secret-rt-${i}`, apiKey: "sk-secret", userId: user(i), clientId: "app", scopes, expiresAt: later });
  }
  s.storeAccessTokens(records);
  s.close();
}

module.exports = { BIN, runCli, seedTokens };
