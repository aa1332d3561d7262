"use strict";
// A writer of backup-load.test.js: stores tokens `w<id>-<n>` (with refresh tokens) as fast
// as it can, in bursts of 50 synchronous calls, and answers `report` with how many of its
// stores have returned (acknowledged) so far; `stop` ends it.
const { TokenStorage } = require(process.env.NTS_PKG);

const id = Number(process.argv[2]);
const storage = new TokenStorage(JSON.parse(process.env.NTS_OPTIONS));
let acked = 0;
let running = true;

process.on("message", (m) => {
  if (m.type === "report") process.send({ type: "acked", id, acked });
  if (m.type === "stop") running = false;
});

function burst() {
  if (!running) {
    storage.close();
    process.send({ type: "done", id, acked }, () => process.disconnect());
    return;
  }
  for (let i = 0; i < 50; i++) {
    storage.storeAccessToken(`w${id}-${acked}`, `r${id}-${acked}`, "sk", `user-${acked % 100}`, "client", ["read"], null);
    acked += 1;
  }
  setImmediate(burst);
}

process.send({ type: "ready", id });
burst();
