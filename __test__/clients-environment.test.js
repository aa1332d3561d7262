"use strict";
// native-token-storage/clients keeps what the server's old utils/clientRegistry.js did when it
// was loaded: with MCP_CLIENT_ID and MCP_CLIENT_SECRET set, that client is registered (here
// at the first call), so /oauth/authorize keeps accepting it after the swap.
const { describe, it, after } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { nodeJson, tempDir, removeDir } = require("./helpers/setup");

describe("native-token-storage/clients: the client of MCP_CLIENT_ID and MCP_CLIENT_SECRET", () => {
  const dir = tempDir();
  after(() => removeDir(dir));
  const probe = `
    const clients = require(PKG + "/clients");
    const id = process.env.PROBE_ID;
    console.log(JSON.stringify({ client: clients.getClient(id), ok: clients.verifyClient(id, "s3cret-from-env"), wrong: clients.verifyClient(id, "other"), all: clients.getAllClients() }));
  `;

  it("is registered at the first call, with the old module's metadata", () => {
    const env = { TOKEN_STORAGE: "sqlite", TOKEN_DB_PATH: path.join(dir, "a.db"), MCP_CLIENT_ID: "inspector", MCP_CLIENT_SECRET: "s3cret-from-env", PROBE_ID: "inspector" };
    const r = nodeJson(probe, { env });
    assert.equal(r.ok, true);
    assert.equal(r.wrong, false);
    assert.deepEqual(r.all, ["inspector"]);
    assert.equal(r.client.client_id, "inspector");
    assert.deepEqual(r.client.redirect_uris, ["http://localhost:*", "https://*"]);
    assert.equal(r.client.scope, "mcp:read mcp:write");
    assert.equal(r.client.token_endpoint_auth_method, "client_secret_basic");
    assert.equal(r.client.client_secret, undefined);
    // At every start, as before: a changed secret replaces the stored one.
    const again = nodeJson(probe, { env: { ...env, MCP_CLIENT_SECRET: "rotated" } });
    assert.equal(again.ok, false);
    assert.deepEqual(again.all, ["inspector"]);
  });

  it("is not registered unless both variables are set, on every store", () => {
    for (const [i, missing] of [["MCP_CLIENT_SECRET"], ["MCP_CLIENT_ID"]].entries()) {
      const env = { TOKEN_STORAGE: "sqlite", TOKEN_DB_PATH: path.join(dir, `b${i}.db`), MCP_CLIENT_ID: "inspector", MCP_CLIENT_SECRET: "s3cret-from-env", PROBE_ID: "inspector" };
      delete env[missing];
      const r = nodeJson(probe, { env });
      assert.equal(r.client, null, missing);
      assert.deepEqual(r.all, []);
    }
    const memory = nodeJson(probe, { env: { MCP_CLIENT_ID: "inspector", MCP_CLIENT_SECRET: "s3cret-from-env", PROBE_ID: "inspector" } });
    assert.equal(memory.ok, true);
  });

  // The Promise API's client functions registered nothing: getClient(MCP_CLIENT_ID) was null
  // and verifyClient false through native-token-storage/promises unless /clients ran first.
  it("is registered at the first call of the Promise API's client functions too", () => {
    const env = { TOKEN_STORAGE: "sqlite", TOKEN_DB_PATH: path.join(dir, "p.db"), MCP_CLIENT_ID: "inspector", MCP_CLIENT_SECRET: "s3cret-from-env", PROBE_ID: "inspector" };
    const r = nodeJson(`
      const promises = require(PKG + "/promises");
      (async () => {
        const id = process.env.PROBE_ID;
        const client = await promises.getClient(id);
        console.log(JSON.stringify({ client, ok: await promises.verifyClient(id, "s3cret-from-env"), all: await promises.getAllClients() }));
        await promises.closeDB();
      })();
    `, { env });
    assert.equal(r.ok, true);
    assert.deepEqual(r.all, ["inspector"]);
    assert.equal(r.client.scope, "mcp:read mcp:write");
  });
});
