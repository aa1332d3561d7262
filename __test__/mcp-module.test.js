"use strict";
// native-token-storage/mcp as a module: both imports (the ES module one gives the SDK's ES
// module classes), the SDK an optional peer (a clear error without it, never loaded by the
// rest of the package), its types, and the fail-closed client store under the SDK's own router.
const { it } = require("node:test");
const assert = require("node:assert/strict");
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { PKG, cleanEnv, tempDir, removeDir } = require("./helpers/setup");
const { TokenStorage } = require("..");
const { serve, MemoryClientProvider, authorize, express, NO_RATE_LIMIT } = require("./helpers/mcp");

const node = (args, options = {}) => spawnSync(process.execPath, args, { cwd: PKG, env: cleanEnv(), encoding: "utf8", ...options });

it("require and import give the same names; the ES module entry throws the SDK's ES module errors", () => {
  const cjs = Object.keys(require(`${PKG}/mcp.js`)).sort();
  const code = `
    import * as mcp from "native-token-storage/mcp";
    import { InvalidGrantError } from "@modelcontextprotocol/sdk/server/auth/errors.js";
    import { TokenStorage } from "native-token-storage";
    const provider = new mcp.TokenStorageOAuthProvider({ store: new TokenStorage(), authorize() {} });
    const err = await provider.exchangeAuthorizationCode({ client_id: "c" }, "no-such-code", "v".repeat(43)).catch((e) => e);
    console.log(JSON.stringify([Object.keys(mcp).filter((k) => k !== "default").sort(), err instanceof InvalidGrantError]));`;
  const r = node(["--input-type=module", "-e", code]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), [cjs, true]);
  const { InvalidGrantError } = require("@modelcontextprotocol/sdk/server/auth/errors.js");
  const provider = new (require(`${PKG}/mcp.js`).TokenStorageOAuthProvider)({ store: new TokenStorage(), authorize() {} });
  return assert.rejects(provider.exchangeAuthorizationCode({ client_id: "c" }, "no-such-code", "v".repeat(43)), InvalidGrantError);
});

it("without the SDK installed, /mcp throws an error saying to install it (require and import)", (t) => {
  const dir = tempDir("nts-no-sdk-");
  t.after(() => removeDir(dir));
  // A resolver that finds no @modelcontextprotocol/sdk, as in an install without it.
  const hide = path.join(dir, "hide-sdk.js");
  fs.writeFileSync(
    hide,
    `const Module = require("node:module");
     const resolve = Module._resolveFilename;
     Module._resolveFilename = function (request, ...rest) {
       if (request.startsWith("@modelcontextprotocol/")) { const e = new Error("Cannot find module '" + request + "'"); e.code = "MODULE_NOT_FOUND"; throw e; }
       return resolve.call(this, request, ...rest);
     };`,
  );
  const loader = path.join(dir, "hide-sdk.mjs");
  fs.writeFileSync(
    loader,
    `export async function resolve(specifier, context, next) {
       if (specifier.startsWith("@modelcontextprotocol/")) { const e = new Error("Cannot find package '" + specifier + "'"); e.code = "ERR_MODULE_NOT_FOUND"; throw e; }
       return next(specifier, context);
     }`,
  );
  const cjs = node(["-r", hide, "-e", `try { require("native-token-storage/mcp") } catch (e) { console.log(JSON.stringify([e.code, e.message])) }`]);
  assert.equal(cjs.status, 0, cjs.stderr);
  const [code, message] = JSON.parse(cjs.stdout);
  assert.equal(code, "MODULE_NOT_FOUND");
  assert.match(message, /native-token-storage\/mcp needs @modelcontextprotocol\/sdk .*npm install @modelcontextprotocol\/sdk/);
  const register = `data:text/javascript,import { register } from "node:module"; register(${JSON.stringify(new URL(`file://${loader}`).href)});`;
  const esm = node(["--import", register, "--input-type=module", "-e", `try { await import("native-token-storage/mcp") } catch (e) { console.log(e.message) }`]);
  assert.equal(esm.status, 0, esm.stderr);
  assert.match(esm.stdout, /native-token-storage\/mcp needs @modelcontextprotocol\/sdk/);
  // The rest of the package works without it.
  const core = node(["-r", hide, "-e", `require("native-token-storage"); require("native-token-storage/promises"); require("native-token-storage/clients"); console.log("ok")`]);
  assert.equal(core.status, 0, core.stderr);
});

it("the package's other entries never load the SDK", () => {
  const r = node([
    "-e",
    `require("native-token-storage"); require("native-token-storage/promises"); require("native-token-storage/clients");
     console.log(Object.keys(require.cache).filter((f) => f.includes("@modelcontextprotocol")).length)`,
  ]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), "0");
});

it("mcp.d.ts compiles a server's wiring against the SDK's types (tsc --strict)", () => {
  const r = spawnSync("npx", ["--no", "--", "tsc", "-p", path.join(__dirname, "types", "mcp", "tsconfig.json")], { cwd: PKG, encoding: "utf8", timeout: 120000 });
  assert.equal(r.error, undefined);
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
});

it("under the SDK's own mcpAuthRouter (without clientCredentials), a confidential client is refused: the store fails closed", async (t) => {
  const server = await serve(t, () => new TokenStorage());
  const client = new MemoryClientProvider();
  await authorize(server.base, client);
  // A second app on the same store mounting the SDK's router directly.
  const { mcpAuthRouter: sdkRouter } = require("@modelcontextprotocol/sdk/server/auth/router.js");
  const app = express();
  app.use(sdkRouter({ provider: server.provider, issuerUrl: new URL("http://127.0.0.1"), ...NO_RATE_LIMIT }));
  const http = require("node:http").createServer(app);
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise((resolve) => http.close(resolve)));
  const { client_id, client_secret } = client.saved.client;
  const res = await fetch(`http://127.0.0.1:${http.address().port}/token`, {
    method: "POST",
    body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: client.saved.tokens.refresh_token, client_id, client_secret }),
  });
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error, "invalid_client");
});

it("examples/mcp-sdk-server: the SDK's client registers, logs in through the form, calls a tool; a denied login redirects with access_denied", async (t) => {
  const { createApp } = require("../examples/mcp-sdk-server/server");
  const store = new TokenStorage();
  const http = require("node:http").createServer();
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${http.address().port}`;
  http.on("request", createApp({ baseUrl: base, store }));
  t.after(async () => {
    await new Promise((resolve) => http.close(resolve));
    http.closeAllConnections();
    store.close();
  });
  const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");
  const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
  const { connect, clientAuth } = require("./helpers/mcp");

  const login = async (client, answer) => {
    const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { authProvider: client });
    await assert.rejects(new Client({ name: "e2e", version: "1" }).connect(transport), clientAuth.UnauthorizedError);
    const form = await (await fetch(client.authorizationUrl)).text();
    const id = /name="login" value="([^"]+)"/.exec(form)[1];
    const res = await fetch(`${base}/login`, { method: "POST", body: new URLSearchParams({ login: id, user: "alice", answer }), redirect: "manual" });
    assert.equal(res.status, 302);
    return { transport, back: new URL(res.headers.get("location")) };
  };
  const client = new MemoryClientProvider();
  const { transport, back } = await login(client, "allow");
  assert.equal(back.searchParams.get("state"), client.lastState);
  await transport.finishAuth(back.searchParams.get("code"));
  const mcp = await connect(`${base}/mcp`, client);
  const result = await mcp.callTool({ name: "whoami", arguments: {} });
  await mcp.close();
  assert.match(result.content[0].text, /^user alice, client [0-9a-f]{32}, scopes mcp:tools$/);

  const denied = await login(new MemoryClientProvider(), "deny");
  assert.equal(denied.back.searchParams.get("error"), "access_denied");
});

it("bad options and grants are refused before anything is stored; an oversized token request is 413", async (t) => {
  const { TokenStorageOAuthProvider } = require(`${PKG}/mcp.js`);
  const store = new TokenStorage();
  t.after(() => store.close());
  assert.throws(() => new TokenStorageOAuthProvider({ store }), TypeError);
  assert.throws(() => new TokenStorageOAuthProvider({ store, authorize() {}, accessTokenLifetime: 0 }), RangeError);
  assert.throws(() => new TokenStorageOAuthProvider({ store: {}, authorize() {} }), TypeError);
  const provider = new TokenStorageOAuthProvider({ store, authorize() {} });
  const client = { client_id: "c", redirect_uris: ["http://127.0.0.1:1/cb"] };
  const params = { redirectUri: "http://127.0.0.1:1/cb", codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", scopes: [] };
  // The { client, params } form takes the objects the SDK gave authorize() only.
  const hand = async (p) => {
    await provider.authorize(client, p, null);
    return { client, params: p };
  };
  await assert.rejects(provider.completeAuthorization(await hand({ ...params, codeChallenge: "" })), TypeError);
  await assert.rejects(provider.completeAuthorization(await hand({ ...params }), { extra: ["not", "an", "object"] }), TypeError);
  await assert.rejects(provider.completeAuthorization(await hand({ ...params }), { extra: { big: "x".repeat(70 * 1024) } }), RangeError);
  await assert.rejects(provider.completeAuthorization(42), TypeError);
  assert.equal(await provider.completeAuthorization("no-such-login"), null);
  assert.equal(await provider.denyAuthorization("no-such-login"), null);
  assert.equal((await store.promises.getStats()).totalTokens, 0);

  const server = await serve(t, () => new TokenStorage());
  const res = await fetch(`${server.base}/token`, { method: "POST", body: new URLSearchParams({ grant_type: "refresh_token", pad: "x".repeat(200 * 1024) }) });
  assert.equal(res.status, 413);
});
