"use strict";
// Normal use leaves no ERROR line in the PostgreSQL server's log: an operator reading it
// must not see a broken application. A cluster of this test's own, whose log it reads.
const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");

const { TokenStorage, runNodeAsync } = require("./helpers/setup");
const { startCluster, findBinaries } = require("../scripts/postgres");

const skip = process.env.CI || findBinaries() ? false : "no PostgreSQL binaries to start a server of this test's own";

/** A process that opens its own stores and runs the server's flows on them, racing the others. */
const WORKER = `
  const { TokenStorage } = require(PKG);
  const { URL, SCHEMA, ID } = process.env;
  const stores = [0, 1].map(() => new TokenStorage({ storage: "postgres", url: URL, schema: SCHEMA }));
  const rotated = [];
  // Everyone rotates the same refresh token, over and over, from two stores each.
  for (let i = 0; i < 30; i++) {
    const s = stores[i % 2];
    const r = s.rotateRefreshToken("shared-r0", "a-" + ID + "-" + i, "r-" + ID + "-" + i, new Date(Date.now() + 3600e3));
    if (r) rotated.push(i);
  }
  // And the flows of a server: codes, tokens of one user and of many, refresh grants, stats.
  for (let i = 0; i < 40; i++) {
    const s = stores[i % 2];
    const user = i % 3 === 0 ? "shared-user" : "user-" + ID + "-" + i;
    s.storeAuthorizationCode("code-" + ID + "-" + i, user, "sk", "client", "https://app.example/cb", null, null, ["mcp"], 600);
    s.consumeAuthorizationCode("code-" + ID + "-" + i);
    s.storeAccessTokens([
      { accessToken: "t-" + ID + "-" + i, refreshToken: "tr-" + ID + "-" + i, apiKey: "sk", userId: user, clientId: "client", expiresAt: new Date(Date.now() + 60e3 + i) },
      { accessToken: "same-" + (i % 5), refreshToken: "same-r-" + (i % 5), apiKey: "sk", userId: "shared-user", clientId: "client", expiresAt: new Date(Date.now() + 1000 * i) },
    ]);
    s.rotateRefreshToken("tr-" + ID + "-" + i, "t2-" + ID + "-" + i, "tr2-" + ID + "-" + i, new Date(Date.now() + 5e3));
    s.getAccessToken("t2-" + ID + "-" + i);
    s.getRefreshToken("same-r-" + (i % 5));
    s.registerClient({ client_name: "c" + i });
    s.storePendingAuthorization("state-" + ID + "-" + i, { at: i });
    s.consumePendingAuthorization("state-" + ID + "-" + i);
    s.getStats();
    if (i % 10 === 0) s.cleanupExpiredTokens();
    if (i % 7 === 0) s.deleteUserTokens("user-" + ID + "-" + (i - 1));
    if (i % 4 === 0) s.revokeRefreshToken("same-r-" + ((i + 1) % 5));
  }
  for (const s of stores) s.close();
  console.log(JSON.stringify(rotated));`;

describe("PostgreSQL: the server's log after normal use", { skip }, () => {
  let cluster;
  before(() => {
    cluster = startCluster();
  });
  after(() => cluster?.stop());

  it("opens, concurrent rotations of one refresh token from several processes and stores, and the server's flows log no ERROR", async () => {
    const schema = "nts_server_log";
    const s = new TokenStorage({ storage: "postgres", url: cluster.url, schema });
    s.storeAccessToken("shared-a0", "shared-r0", "sk", "shared-user", "client", ["mcp"], new Date(Date.now() + 3600e3));
    s.close();
    const runs = await Promise.all(
      [1, 2, 3, 4].map((id) => runNodeAsync(WORKER, { env: { URL: cluster.url, SCHEMA: schema, ID: String(id), TOKEN_STORAGE_LOG: "silent" } })),
    );
    const wins = runs.map((r) => {
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout);
    });
    assert.equal(wins.flat().length, 1, "one rotation of the shared refresh token won");
    // A fresh schema in a fresh store again: its first open too.
    const again = new TokenStorage({ storage: "postgres", url: cluster.url, schema: "nts_server_log_2" });
    again.open();
    again.close();
    const log = fs.readFileSync(path.join(cluster.dir, "server.log"), "utf8");
    const lines = log.split("\n");
    const errors = lines.filter((l) => /\b(ERROR|FATAL|PANIC):/.test(l));
    // Each with what PostgreSQL writes after it (DETAIL, CONTEXT, STATEMENT), to say why.
    const told = lines.flatMap((l, i) => (/\b(ERROR|FATAL|PANIC):/.test(l) ? lines.slice(i, i + 12) : []));
    assert.deepEqual(errors, [], `the server logged:\n${told.join("\n")}`);
  });

  // A store closed just after its first reads, while the connections of its change feed
  // (the cache of recently read tokens) were still being made: close() dropped them in the
  // middle of their handshake, and the server wrote to closed sockets ("could not send data
  // to client: Broken pipe", "FATAL: connection to client lost"), 4 of 10 times here.
  it("stores closed right after their first reads leave no FATAL in the server's log", () => {
    const logFile = path.join(cluster.dir, "server.log");
    const before = fs.readFileSync(logFile, "utf8").length;
    for (let round = 0; round < 10; round++) {
      const s = new TokenStorage({ storage: "postgres", url: cluster.url, schema: "nts_server_log_3" });
      s.storeAccessToken("at", null, "sk", "user", "client", [], null);
      for (let i = 0; i < 3; i++) s.getAccessToken("at");
      s.close();
    }
    const lines = fs.readFileSync(logFile, "utf8").slice(before).split("\n");
    const told = lines.filter((l) => /\b(ERROR|FATAL|PANIC):|could not send data/.test(l));
    assert.deepEqual(told, [], `the server logged:\n${told.join("\n")}`);
  });
});
