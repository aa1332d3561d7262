#!/usr/bin/env node
"use strict";
// npm run demo: the whole OAuth flow of an MCP client against the example server
// (examples/oauth-server), then a restart of the server process, to show what happens to
// the tokens it issued.
//
//   npm run demo                          TOKEN_STORAGE=db, a fresh SQLite file in a temp folder:
//                                         the tokens must survive the restart.
//   TOKEN_STORAGE=postgres TOKEN_DATABASE_URL=… npm run demo
//                                         the same on PostgreSQL, in a schema of its own
//   npm run demo -- --memory              TOKEN_STORAGE=memory (or set TOKEN_STORAGE=memory):
//   TOKEN_STORAGE=memory npm run demo     the restart must lose them; that is the problem the
//                                         package solves.
//
// Exit status: 0 when every step behaved as expected for the chosen store, so the memory run
// also exits 0 when (and only when) the tokens were lost as expected; 1 when any step failed
// or a memory-store token unexpectedly survived; 2 for a bad TOKEN_STORAGE.
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const client = require("../examples/oauth-server/client");
const { spawnServer } = require("../examples/oauth-server/child");
const { startUpstream } = require("../examples/oauth-server/upstream");
const { close, urlOf, mask } = require("../examples/oauth-server/net");

const DEMO_TIMEOUT_MS = 60000;

function chooseStore() {
  const requested = process.argv.includes("--memory") ? "memory" : (process.env.TOKEN_STORAGE || "db").toLowerCase();
  if (requested === "memory" || requested === "") return "memory";
  if (requested === "db" || requested === "sqlite") return "db";
  if (["postgres", "postgresql", "pg"].includes(requested)) {
    if (!process.env.TOKEN_DATABASE_URL && !process.env.DATABASE_URL) {
      console.error("TOKEN_STORAGE=postgres: set TOKEN_DATABASE_URL (or DATABASE_URL) to a PostgreSQL server the demo may write to");
      process.exit(2);
    }
    return "postgres";
  }
  console.error(`TOKEN_STORAGE=${process.env.TOKEN_STORAGE} is not supported by the demo: use memory, db or postgres`);
  process.exit(2);
}

let stepCount = 0;
const say = (text) => console.log(`${String(++stepCount).padStart(2)}. ${text}`);
/** Throws (ending the demo) unless `condition`; the message says what was expected. */
function expect(condition, failure) {
  if (!condition) throw new Error(failure);
}
const describe = (response) => `${response.status} ${JSON.stringify(response.body)}`;

async function main(store, children) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "native-token-storage-demo-"));
  children.tmp = tmp;
  const upstream = await startUpstream();
  children.upstream = upstream;
  const env = {
    TOKEN_STORAGE: store,
    TOKEN_DB_PATH: path.join(tmp, "tokens.db"),
    // PostgreSQL: a schema of the demo's own, so a run never mixes with other data.
    TOKEN_DB_SCHEMA: `nts_demo_${process.pid}`,
    UPSTREAM_URL: urlOf(upstream),
  };
  const onLine = (line) => {
    let entry = null;
    try { entry = JSON.parse(line); } catch { /* not a JSON log line: show it as is */ }
    // Shows what the server prints besides its "listening" line: the store's own line.
    if (entry?.message !== "listening") console.log(`      server log: ${line}`);
  };

  console.log(`native-token-storage demo, TOKEN_STORAGE=${store}`);
  console.log(`Stub OpenRouter login at ${env.UPSTREAM_URL}`);
  let server = children.server = await spawnServer({ env, onLine });
  say(`Started the example server (pid ${server.child.pid}) at ${server.url}` +
    (store === "db" ? `, tokens in ${env.TOKEN_DB_PATH}` : store === "postgres" ? `, tokens in PostgreSQL (schema ${env.TOKEN_DB_SCHEMA})` : ", tokens in memory"));
  const base = server.url;

  const clientId = await client.register(base);
  say(`Registered an MCP client: client_id ${mask(clientId)}`);

  const { code, verifier, hops } = await client.authorize(base, clientId);
  say(`Authorize with PKCE S256: sent to the upstream login (${new URL(hops[0]).host}),`);
  console.log(`    back to our callback, which got the user's API key and gave the client code ${mask(code)}`);

  const exchange = await client.exchangeCode(base, { clientId, code, verifier });
  expect(exchange.status === 200, `token exchange failed: ${describe(exchange)}`);
  say(`Exchanged the code and the PKCE verifier: access token ${mask(exchange.body.access_token)}, ` +
    `refresh token ${mask(exchange.body.refresh_token)}`);

  const replay = await client.exchangeCode(base, { clientId, code, verifier });
  expect(replay.status === 400 && replay.body.error === "invalid_grant", `a replayed code was not refused: ${describe(replay)}`);
  say("Replayed the same code: refused (400 invalid_grant), codes are single use");

  const tools = await client.callMcp(base, exchange.body.access_token, "tools/list");
  expect(tools.status === 200 && tools.body.result, `the protected MCP endpoint failed: ${describe(tools)}`);
  say(`Called the protected MCP endpoint (tools/list) with the token: ${tools.body.result.tools.map((t) => t.name).join(", ")}`);

  const bogus = await client.callMcp(base, "not-a-real-token");
  expect(bogus.status === 401, `a bogus bearer token was accepted: ${describe(bogus)}`);
  say("Called it with a made-up token: refused (401)");

  const refreshed = await client.refresh(base, { clientId, refreshToken: exchange.body.refresh_token });
  expect(refreshed.status === 200, `refresh failed: ${describe(refreshed)}`);
  const tokens = refreshed.body;
  say(`Refreshed: new access token ${mask(tokens.access_token)}, new refresh token ${mask(tokens.refresh_token)}`);

  const oldRefresh = await client.refresh(base, { clientId, refreshToken: exchange.body.refresh_token });
  const oldAccess = await client.status(base, exchange.body.access_token);
  expect(oldRefresh.status === 400 && oldAccess.status === 401, "the rotated-out tokens still work: " +
    `refresh ${describe(oldRefresh)}, access ${describe(oldAccess)}`);
  say("The old refresh token and the old access token are now refused (rotation)");

  const info = await client.introspect(base, tokens.access_token);
  expect(info.status === 200 && info.body.active === true, `introspection failed: ${describe(info)}`);
  say(`Introspected the new access token: active, scope "${info.body.scope}", user ${info.body.sub}, ` +
    `expires ${new Date(info.body.exp * 1000).toISOString()}`);

  await server.stop("SIGKILL");
  say(`Killed the server process (SIGKILL, no clean shutdown)`);
  server = children.server = await spawnServer({ env, port: server.port, onLine });
  say(`Started it again (pid ${server.child.pid}) on the same port`);

  const afterCall = await client.callMcp(base, tokens.access_token, "tools/call", { name: "whoami" });
  const afterRefresh = await client.refresh(base, { clientId, refreshToken: tokens.refresh_token });
  if (store === "memory") {
    expect(afterCall.status === 401, `the access token unexpectedly survived the restart: ${describe(afterCall)}`);
    say("Called the MCP endpoint with the access token: refused (401), the server forgot it");
    expect(afterRefresh.status === 400, `the refresh token unexpectedly survived the restart: ${describe(afterRefresh)}`);
    say("Refreshed with the refresh token: refused (400 invalid_grant), the client must log in again");
    return "VERDICT: as expected with TOKEN_STORAGE=memory, the restart lost every token; run `npm run demo` (db) to keep them.";
  }
  expect(afterCall.status === 200 && afterCall.body.result, `the access token did not survive the restart: ${describe(afterCall)}`);
  say(`Called the MCP endpoint (whoami) with the access token: works, "${afterCall.body.result.content[0].text}"`);
  expect(afterRefresh.status === 200, `the refresh token did not survive the restart: ${describe(afterRefresh)}`);
  say(`Refreshed with the rotated refresh token: works, new access token ${mask(afterRefresh.body.access_token)}`);
  const latest = await client.status(base, afterRefresh.body.access_token);
  expect(latest.status === 200, `the newest access token does not work: ${describe(latest)}`);
  say("The newest access token works too (GET /oauth/status: 200)");
  return `VERDICT: PASS, the tokens issued before the restart still work after it with TOKEN_STORAGE=${store}.`;
}

async function cleanUp(children) {
  if (children.server) await children.server.stop("SIGKILL");
  if (children.upstream) await close(children.upstream);
  if (children.tmp) fs.rmSync(children.tmp, { recursive: true, force: true });
}

const store = chooseStore();
const children = {}; // what to stop and remove, whatever happens
// Last resort: never leave a server process behind, even on an uncaught error or Ctrl-C.
process.on("exit", () => children.server?.child.kill("SIGKILL"));
process.once("SIGINT", () => process.exit(130));
const timer = setTimeout(() => {
  console.error(`VERDICT: FAIL, the demo did not finish within ${DEMO_TIMEOUT_MS / 1000} s`);
  process.exit(1);
}, DEMO_TIMEOUT_MS);

main(store, children).then(
  async (verdict) => {
    await cleanUp(children);
    clearTimeout(timer);
    console.log(verdict);
  },
  async (err) => {
    await cleanUp(children).catch(() => {});
    clearTimeout(timer);
    const cause = err.cause ? ` (${err.cause.code || err.cause.message})` : "";
    console.error(`FAILED after step ${stepCount}: ${err.message}${cause}`);
    console.error(`VERDICT: FAIL (TOKEN_STORAGE=${store}), see the step above.`);
    process.exitCode = 1;
  },
);
