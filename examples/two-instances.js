"use strict";
// Two server instances on one PostgreSQL database, each accepting the other's tokens.
//
//   TOKEN_DATABASE_URL=postgres://… node examples/two-instances.js
//   node examples/two-instances.js          (starts a throwaway cluster from the machine's
//                                           PostgreSQL binaries, as npm test does)
//
// Each instance is a separate Node process with the same environment, as two containers
// behind a load balancer would be: TOKEN_STORAGE=postgres and the same URL.
const { spawnSync } = require("node:child_process");
const path = require("node:path");

const PKG = path.resolve(__dirname, "..");
let cluster = null;
let url = process.env.TOKEN_DATABASE_URL || process.env.DATABASE_URL;
if (!url) {
  cluster = require("../scripts/postgres").startCluster();
  url = cluster.url;
}

/** Runs `code` as one instance; returns what it prints, parsed. */
function instance(name, code) {
  const r = spawnSync(process.execPath, ["-e", `const tokens = require(${JSON.stringify(PKG)});\n${code}\ntokens.closeDB();`], {
    env: { ...process.env, TOKEN_STORAGE: "postgres", TOKEN_DATABASE_URL: url, TOKEN_STORAGE_LOG: "warn" },
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`${name} failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout);
  console.log(`${name}: ${JSON.stringify(out)}`);
  return out;
}

try {
  const run = Date.now().toString(36);
  // Instance A issues an authorization code (the /authorize step).
  instance("A", `tokens.storeAuthorizationCode("code-${run}", "user-1", "sk-or-demo", "client-1", "https://app.example/cb", null, null, ["mcp"], 600);
    console.log(JSON.stringify({ issued: "code-${run}".slice(0, 8) + "…" }));`);
  // Instance B exchanges it (the /token step lands on the other instance) and issues tokens.
  const b = instance("B", `const c = tokens.consumeAuthorizationCode("code-${run}");
    tokens.storeAccessToken("at-${run}", "rt-${run}", c.apiKey, c.userId, c.clientId, c.scopes, new Date(Date.now() + 3600e3));
    console.log(JSON.stringify({ exchanged: c !== null, again: tokens.consumeAuthorizationCode("code-${run}") }));`);
  // Instance A accepts B's bearer token; both see the same counts.
  const a = instance("A", `const t = tokens.getAccessToken("at-${run}");
    console.log(JSON.stringify({ accepted: t !== null, userId: t.userId, refresh: tokens.getRefreshToken("rt-${run}") !== null }));`);
  if (!b.exchanged || b.again !== null || !a.accepted) throw new Error("the instances do not share the store");
  console.log("Both instances share one store: a code issued by A was exchanged once on B, and A accepts B's token.");
} finally {
  cluster?.stop();
}
