"use strict";
// node --test suite of the consumer check: the example server in this process, then as a
// child process killed and restarted on a TOKEN_STORAGE=db file.
const { test } = require("node:test");
const fs = require("node:fs");
const { useFreshDb, fullFlow, assertStillWorks } = require("./flow");
const tokenStorage = require("native-token-storage");
const { start, stop } = require("../oauth-server/server");
const { spawnServer } = require("../oauth-server/child");
const { urlOf } = require("../oauth-server/net");

const dir = useFreshDb();
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test("full flow against the installed package", async () => {
  const server = await start(); // also starts the stub upstream, and stop() closes it
  try {
    await fullFlow(urlOf(server));
  } finally {
    await stop(server);
    tokenStorage.closeDB();
  }
});

test("tokens survive a kill and restart of the server process (TOKEN_STORAGE=db)", async () => {
  let server = await spawnServer(); // the environment from useFreshDb() is inherited
  try {
    const issued = await fullFlow(server.url);
    await server.stop("SIGKILL");
    server = await spawnServer({ port: server.port });
    await assertStillWorks(server.url, issued);
  } finally {
    await server.stop("SIGKILL");
  }
});
