"use strict";
// Jest suite of the consumer check, run with --detectOpenHandles and without --forceExit:
// Jest must exit on its own, also after jest.resetModules() reloads the package.
const fs = require("node:fs");
const { useFreshDb, fullFlow, assertStillWorks } = require("./flow");
const { startUpstream } = require("../oauth-server/upstream");
const { close, urlOf } = require("../oauth-server/net");

jest.setTimeout(30000);
const dir = useFreshDb();
let upstreamUrl;
let upstream;
beforeAll(async () => {
  upstream = await startUpstream();
  upstreamUrl = urlOf(upstream);
});
afterAll(async () => {
  await close(upstream);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Requires the example server and the package afresh from the current module registry. */
const load = () => ({ server: require("../oauth-server/server"), tokenStorage: require("native-token-storage") });

test("full flow against the installed package", async () => {
  const { server: example } = load();
  const server = await example.start({ upstreamUrl });
  try {
    await fullFlow(urlOf(server));
  } finally {
    await example.stop(server);
  }
});

test("tokens survive closeDB, jest.resetModules() and a new server (TOKEN_STORAGE=db)", async () => {
  const before = load();
  let server = await before.server.start({ upstreamUrl });
  const issued = await fullFlow(urlOf(server));
  await before.server.stop(server);
  before.tokenStorage.closeDB();

  jest.resetModules();
  const after = load();
  expect(after.tokenStorage).not.toBe(before.tokenStorage);
  expect(after.tokenStorage.getAccessToken(issued.tokens.access_token)).toMatchObject({ clientId: issued.clientId });
  server = await after.server.start({ upstreamUrl });
  try {
    await assertStillWorks(urlOf(server), issued);
  } finally {
    await after.server.stop(server);
    after.tokenStorage.closeDB();
  }
});

test("the package works when re-required after jest.resetModules()", () => {
  jest.resetModules();
  const { TokenStorage, getStats } = require("native-token-storage");
  const storage = new TokenStorage({ storage: "memory" });
  storage.storeAccessToken("at-reload", "rt-reload", "key", "user", "client", ["mcp"], Date.now() + 60000);
  expect(storage.getAccessToken("at-reload")).toMatchObject({ userId: "user", refreshToken: "rt-reload" });
  expect(storage.getRefreshToken("rt-reload")).toMatchObject({ accessToken: "at-reload" });
  storage.close();
  expect(getStats().totalTokens).toBeGreaterThan(0); // the db store of the previous test, reopened
  require("native-token-storage").closeDB();
});
