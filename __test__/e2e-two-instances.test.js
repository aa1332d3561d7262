"use strict";
// End to end with two instances of the example server behind a round-robin proxy on
// loopback, sharing one store (a SQLite file; a PostgreSQL database): every step of a login
// lands on the other instance than the step before, 20 concurrent refreshes of one refresh
// token give exactly one new pair, a replay afterwards revokes the grant, and both instances
// killed and started again still know the client, its tokens and its refresh token.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const http = require("node:http");
const path = require("node:path");
const client = require("../examples/oauth-server/client");
const { spawnServer } = require("../examples/oauth-server/child");
const { startUpstream } = require("../examples/oauth-server/upstream");
const { listen, close, urlOf } = require("../examples/oauth-server/net");
const { PG_URL, REDIS_URL, freshSchema, tempDir, removeDir } = require("./helpers/setup");

/** How long a change made on one instance may take to reach the other (the contract's bound). */
const CHANGE_REACHES_ALL_MS = 50;

/** A proxy that sends each request to the next of `ports`, in turn; `log` records which. */
async function roundRobin(ports) {
  let next = 0;
  const log = [];
  const server = await listen((req, res) => {
    const port = ports[next++ % ports.length];
    log.push(port);
    const upstream = http.request({ host: "127.0.0.1", port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    upstream.on("error", () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  return { server, base: urlOf(server), log };
}

const kinds = ["db", ...(PG_URL ? ["postgres"] : []), ...(REDIS_URL ? ["redis"] : [])];
const PLACES = { db: "SQLite file", postgres: "PostgreSQL database", redis: "Redis server" };
for (const kind of kinds) {
  describe(`two instances on one ${PLACES[kind]}, behind a round-robin proxy`, () => {
    it("register, authorize, callback, exchange and refresh each on the other instance; one of 20 concurrent refreshes wins; a replay revokes the grant; a restart of both loses nothing", async () => {
      const dir = tempDir();
      const upstream = await startUpstream();
      const env = {
        TOKEN_STORAGE: kind,
        TOKEN_DB_PATH: path.join(dir, "tokens.db"),
        UPSTREAM_URL: urlOf(upstream),
        TOKEN_STORAGE_LOG: "error",
        TOKEN_REFRESH_GRACE_SECONDS: "1",
        ...(kind === "postgres" ? { TOKEN_DATABASE_URL: PG_URL, TOKEN_DB_SCHEMA: freshSchema() } : {}),
        ...(kind === "redis" ? { TOKEN_REDIS_URL: REDIS_URL, TOKEN_REDIS_PREFIX: `${freshSchema()}:` } : {}),
      };
      let servers = [];
      let proxy = null;
      try {
        servers = await Promise.all([spawnServer({ env }), spawnServer({ env })]);
        proxy = await roundRobin(servers.map((s) => s.port));
        const base = proxy.base;

        // Each request goes to the other instance than the one before.
        const clientId = await client.register(base);
        const { code, verifier } = await client.authorize(base, clientId);
        const exchanged = await client.exchangeCode(base, { clientId, code, verifier });
        assert.equal(exchanged.status, 200, JSON.stringify(exchanged.body));
        assert.deepEqual(new Set(proxy.log), new Set(servers.map((s) => s.port)), "both instances served the login");
        const first = exchanged.body;
        for (let i = 0; i < 2; i++) assert.equal((await client.status(base, first.access_token)).status, 200);

        // 20 refreshes of one refresh token at once, spread over both instances.
        const answers = await Promise.all(Array.from({ length: 20 }, () => client.refresh(base, { clientId, refreshToken: first.refresh_token })));
        const won = answers.filter((a) => a.status === 200);
        assert.equal(won.length, 1, `statuses: ${answers.map((a) => a.status).join(" ")}`);
        assert.ok(answers.every((a) => a.status === 200 || a.body.error === "invalid_grant"));
        const second = won[0].body;
        assert.equal((await client.status(base, second.access_token)).status, 200);
        // A change made on one instance reaches the other within 50 ms (a PostgreSQL store
        // serves tokens it read recently from memory until the change feed says otherwise).
        await new Promise((resolve) => setTimeout(resolve, CHANGE_REACHES_ALL_MS));
        assert.equal((await client.status(base, first.access_token)).status, 401, "the old access token went with the rotation");

        // After the grace period, the rotated-away token again: the whole grant is revoked.
        await new Promise((resolve) => setTimeout(resolve, 1100));
        assert.equal((await client.refresh(base, { clientId, refreshToken: first.refresh_token })).status, 400);
        await new Promise((resolve) => setTimeout(resolve, CHANGE_REACHES_ALL_MS));
        for (let i = 0; i < 2; i++) assert.equal((await client.status(base, second.access_token)).status, 401);
        assert.equal((await client.refresh(base, { clientId, refreshToken: second.refresh_token })).status, 400);

        // A new login, then both instances killed and started again on the same ports.
        const { code: code2, verifier: verifier2 } = await client.authorize(base, clientId);
        const third = (await client.exchangeCode(base, { clientId, code: code2, verifier: verifier2 })).body;
        await Promise.all(servers.map((s) => s.stop("SIGKILL")));
        servers = await Promise.all(servers.map((s) => spawnServer({ env, port: s.port })));
        for (let i = 0; i < 2; i++) assert.equal((await client.status(base, third.access_token)).status, 200);
        const refreshed = await client.refresh(base, { clientId, refreshToken: third.refresh_token });
        assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
        // The client registered before the restart still authorizes.
        const again = await client.authorize(base, clientId);
        assert.equal((await client.exchangeCode(base, { clientId, ...again })).status, 200);
      } finally {
        if (proxy) await close(proxy.server);
        await Promise.all(servers.map((s) => s.stop("SIGKILL")));
        await close(upstream);
        removeDir(dir);
      }
    });
  });
}
