"use strict";
// The checks the consumer suites share (plain node:assert, so they run under Jest and
// node --test alike). Run by scripts/consumer-check.js in a scratch project where
// native-token-storage is installed from its tarball; ../oauth-server is the example copied there.
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const client = require("../oauth-server/client");

/** Points the package's default store at a fresh SQLite file; resolves the folder to remove. */
function useFreshDb() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nts-consumer-"));
  Object.assign(process.env, { TOKEN_STORAGE: "db", TOKEN_DB_PATH: path.join(dir, "tokens.db"), TOKEN_STORAGE_LOG: "warn" });
  return dir;
}

/** Logs in, calls the MCP endpoint, refreshes and introspects; resolves { clientId, tokens }. */
async function fullFlow(base) {
  const { clientId, tokens: first } = await client.login(base);
  const tools = await client.callMcp(base, first.access_token, "tools/list");
  assert.equal(tools.status, 200, JSON.stringify(tools.body));
  const refreshed = await client.refresh(base, { clientId, refreshToken: first.refresh_token });
  assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
  assert.equal((await client.status(base, first.access_token)).status, 401, "rotation revokes the old access token");
  assert.equal((await client.introspect(base, refreshed.body.access_token)).body.active, true);
  assert.equal((await client.status(base, "bogus-token")).status, 401);
  return { clientId, tokens: refreshed.body };
}

/** Asserts that tokens from fullFlow (on an earlier server) still work on `base`. */
async function assertStillWorks(base, { clientId, tokens }) {
  const whoami = await client.callMcp(base, tokens.access_token, "tools/call", { name: "whoami" });
  assert.equal(whoami.status, 200, JSON.stringify(whoami.body));
  const refreshed = await client.refresh(base, { clientId, refreshToken: tokens.refresh_token });
  assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
}

module.exports = { useFreshDb, fullFlow, assertStillWorks };
