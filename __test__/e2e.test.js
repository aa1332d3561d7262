"use strict";
// End to end: the example OAuth server (examples/oauth-server) over real HTTP on loopback,
// with every store. The restart tests run the server as a child process and kill it; the
// refusal tests run it in this process on an explicit TokenStorage. Each test has its own
// temp DB file.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { TokenStorage } = require("native-token-storage");
const client = require("../examples/oauth-server/client");
const { spawnServer } = require("../examples/oauth-server/child");
const { start, stop } = require("../examples/oauth-server/server");
const { startUpstream } = require("../examples/oauth-server/upstream");
const { close, urlOf } = require("../examples/oauth-server/net");
const { PG_URL, freshSchema, storeOptions } = require("./helpers/setup");

/** Runs `body(dbPath, upstreamUrl)` with a fresh temp folder and a stub upstream, then removes both. */
async function withFixture(body) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nts-e2e-"));
  const upstream = await startUpstream();
  try {
    await body(path.join(dir, "tokens.db"), urlOf(upstream));
  } finally {
    await close(upstream);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const assertRefused = (response, status, error) => {
  assert.equal(response.status, status, JSON.stringify(response.body));
  assert.equal(response.body.error, error);
};

for (const store of PG_URL ? ["memory", "db", "postgres"] : ["memory", "db"]) {
  test(`${store} store: full flow, then a restart of the server process`, () => withFixture(async (dbPath, upstreamUrl) => {
    const env = { TOKEN_STORAGE: store, TOKEN_DB_PATH: dbPath, UPSTREAM_URL: upstreamUrl, TOKEN_STORAGE_LOG: "warn" };
    if (store === "postgres") Object.assign(env, { TOKEN_DATABASE_URL: PG_URL, TOKEN_DB_SCHEMA: freshSchema() });
    let server = await spawnServer({ env });
    try {
      const base = server.url;
      const { clientId, tokens: first } = await client.login(base);
      assert.equal(first.token_type, "Bearer");
      assert.equal(first.scope, "mcp");

      const tools = await client.callMcp(base, first.access_token, "tools/list");
      assert.equal(tools.status, 200);
      assert.deepEqual(tools.body.result.tools.map((tool) => tool.name), ["whoami"]);

      const refreshed = await client.refresh(base, { clientId, refreshToken: first.refresh_token });
      assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
      const tokens = refreshed.body;
      assert.notEqual(tokens.refresh_token, first.refresh_token);
      // Rotation: the old pair is gone.
      assertRefused(await client.refresh(base, { clientId, refreshToken: first.refresh_token }), 400, "invalid_grant");
      assertRefused(await client.status(base, first.access_token), 401, "invalid_token");

      const info = await client.introspect(base, tokens.access_token);
      assert.equal(info.body.active, true);
      assert.equal(info.body.client_id, clientId);
      assert.ok(Math.abs(info.body.exp - (Date.now() / 1000 + tokens.expires_in)) < 60, `exp ${info.body.exp}`);

      await server.stop("SIGKILL");
      server = await spawnServer({ env, port: server.port });

      const afterCall = await client.callMcp(base, tokens.access_token, "tools/call", { name: "whoami" });
      const afterInfo = await client.introspect(base, tokens.access_token);
      const afterRefresh = await client.refresh(base, { clientId, refreshToken: tokens.refresh_token });
      if (store === "memory") {
        assertRefused(afterCall, 401, "invalid_token");
        assert.deepEqual(afterInfo.body, { active: false });
        assertRefused(afterRefresh, 400, "invalid_grant");
      } else {
        assert.equal(afterCall.status, 200, JSON.stringify(afterCall.body));
        assert.match(afterCall.body.result.content[0].text, new RegExp(`^user ${info.body.sub},`));
        assert.equal(afterInfo.body.active, true);
        assert.equal(afterRefresh.status, 200, JSON.stringify(afterRefresh.body));
        assert.equal((await client.status(base, afterRefresh.body.access_token)).status, 200);
      }
    } finally {
      await server.stop("SIGKILL");
    }
  }));

  test(`${store} store: bogus tokens, replayed codes and wrong PKCE verifiers are refused`, () => withFixture(async (dbPath, upstreamUrl) => {
    const storage = new TokenStorage(storeOptions(store, dbPath));
    const server = await start({ upstreamUrl, store: storage });
    try {
      const base = urlOf(server);
      assertRefused(await client.callMcp(base, "bogus-token"), 401, "invalid_token");
      assertRefused(await client.status(base, "bogus-token"), 401, "invalid_token");
      assertRefused(await client.request(`${base}/oauth/status`), 401, "invalid_token");
      assert.deepEqual((await client.introspect(base, "bogus-token")).body, { active: false });

      const clientId = await client.register(base);
      const first = await client.authorize(base, clientId);
      assert.equal((await client.exchangeCode(base, { clientId, ...first })).status, 200);
      assertRefused(await client.exchangeCode(base, { clientId, ...first }), 400, "invalid_grant");

      // A wrong verifier is refused, and the attempt uses the code up.
      const second = await client.authorize(base, clientId);
      const wrong = { ...second, verifier: client.pkce().verifier };
      assertRefused(await client.exchangeCode(base, { clientId, ...wrong }), 400, "invalid_grant");
      assertRefused(await client.exchangeCode(base, { clientId, ...second }), 400, "invalid_grant");

      // The code is bound to its client and redirect_uri.
      const third = await client.authorize(base, clientId);
      const otherClient = await client.register(base);
      assertRefused(await client.exchangeCode(base, { clientId: otherClient, ...third }), 400, "invalid_grant");

      // A refresh token only works for its own client.
      const { tokens } = await client.login(base);
      assertRefused(await client.refresh(base, { clientId, refreshToken: tokens.refresh_token }), 400, "invalid_grant");
    } finally {
      await stop(server);
      storage.close();
    }
  }));
}
