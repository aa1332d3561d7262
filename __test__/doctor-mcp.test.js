"use strict";
// `doctor`'s mcp-memory-provider finding: an MCP server on @modelcontextprotocol/sdk whose
// OAuth state is in memory (the SDK's demo provider, imported as an ES module, required as
// CommonJS or from TypeScript; a provider or clients store of its own kept in Maps, in
// JavaScript or TypeScript; a copy of the SDK's demo file) is pointed at
// native-token-storage/mcp, with no --fix; a server already on it, or an SDK server without
// OAuth of its own, is not flagged.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { doctor, fix, format } = require("../lib/doctor");

const FIXTURES = path.join(__dirname, "fixtures", "doctor");
const BIN = path.join(__dirname, "..", "bin", "native-token-storage.js");
const fixture = (name) => path.join(FIXTURES, name);
/** The SDK's demo provider file, of its "esm" or "cjs" build (the SDK is a devDependency, pinned). */
const demoFile = (build) =>
  require.resolve("@modelcontextprotocol/sdk/examples/server/demoInMemoryOAuthProvider.js").replace(`${path.sep}cjs${path.sep}`, `${path.sep}${build}${path.sep}`);

function lineOf(name, file, needle) {
  const at = fs.readFileSync(path.join(fixture(name), file), "utf8").split("\n").findIndex((l) => l.includes(needle));
  assert.ok(at >= 0, `${needle} is not in ${name}/${file}`);
  return at + 1;
}
const summary = (result) => result.findings.map((f) => [f.check, f.file, f.line]);
const added = (finding) => finding.diff.filter((d) => d.op === "+").map((d) => d.text);

function tempServer(t, files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nts-doctor-mcp-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const [file, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  }
  return dir;
}

/** What every finding of this check says: the cost, the replacement from /mcp, no --fix. */
function assertPointsAtMcp(finding, { module }) {
  assert.equal(finding.check, "mcp-memory-provider");
  assert.equal(finding.severity, "costs");
  assert.match(finding.why, /restart or deploy forgets them/);
  assert.match(finding.why, /several instances/);
  assert.match(finding.fix, /native-token-storage\/mcp/);
  assert.match(finding.fix, /docs\/mcp\.md/);
  assert.equal(finding.fixable, false);
  assert.match(finding.byHand, /write your login in authorize/);
  const lines = added(finding);
  assert.equal(lines[0], module
    ? 'import { TokenStorageOAuthProvider, mcpAuthRouter } from "native-token-storage/mcp";'
    : 'const { TokenStorageOAuthProvider, mcpAuthRouter } = require("native-token-storage/mcp");');
  assert.ok(lines.includes("const provider = new TokenStorageOAuthProvider({"));
  assert.ok(lines.some((l) => l.startsWith("app.use(mcpAuthRouter({ provider,")));
}

describe("doctor: the MCP SDK's in-memory demo provider", () => {
  it("imported from an ES module: one finding at the import, with the import form of the replacement", () => {
    const result = doctor(fixture("mcp-demo-esm"));
    assert.deepEqual(summary(result), [["mcp-memory-provider", "server.js", lineOf("mcp-demo-esm", "server.js", "demoInMemoryOAuthProvider.js")]]);
    const [finding] = result.findings;
    assertPointsAtMcp(finding, { module: true });
    assert.match(finding.problem, /^the MCP SDK's in-memory demo OAuth provider \(DemoInMemoryAuthProvider\) keeps clients, codes and tokens in Maps$/);
    assert.match(finding.why, /demo only, not for production/);
    assert.match(finding.why, /no refresh grant/);
    assert.equal(result.tokenStorage, true, "an OAuth store in memory is token storage: the command does not answer 'no token storage found'");
    assert.equal(result.ready, true, "a cost, not a block");
  });

  it("required from CommonJS (setupAuthServer): the require form of the replacement", () => {
    const result = doctor(fixture("mcp-demo-cjs"));
    assert.deepEqual(summary(result), [["mcp-memory-provider", "server.js", lineOf("mcp-demo-cjs", "server.js", "demoInMemoryOAuthProvider.js")]]);
    assertPointsAtMcp(result.findings[0], { module: false });
    assert.match(result.findings[0].problem, /\(setupAuthServer\)/);
  });

  it("imported from TypeScript: the file is read token by token for this check, and still listed as skipped for the others", () => {
    const result = doctor(fixture("mcp-demo-ts"));
    assert.deepEqual(summary(result), [["mcp-memory-provider", "src/server.ts", lineOf("mcp-demo-ts", "src/server.ts", "  DemoInMemoryAuthProvider,") - 1]]);
    assertPointsAtMcp(result.findings[0], { module: true });
    assert.match(result.findings[0].problem, /\(DemoInMemoryAuthProvider, DemoInMemoryClientsStore\)/);
    assert.deepEqual(result.skipped.map((s) => s.file), ["src/server.ts"]);
    assert.match(result.skipped[0].reason, /^TypeScript, which doctor does not parse \(it reads only its imports and classes, for mcp-memory-provider\)/);
  });

  it("the module's other spellings: the dist build path, a dynamic import", (t) => {
    const dir = tempServer(t, {
      "server.js": [
        'const demo = require("@modelcontextprotocol/sdk/dist/cjs/examples/server/demoInMemoryOAuthProvider.js");',
        "async function later() {",
        '  const { DemoInMemoryAuthProvider } = await import("@modelcontextprotocol/sdk/examples/server/demoInMemoryOAuthProvider.js");',
        "  return new DemoInMemoryAuthProvider();",
        "}",
        "module.exports = { demo, later };",
        "",
      ].join("\n"),
    });
    assert.deepEqual(summary(doctor(dir)), [["mcp-memory-provider", "server.js", 1], ["mcp-memory-provider", "server.js", 3]]);
  });

  it("a copy of the SDK's demo file in the server (its ES module and CommonJS builds) is a provider of its own", (t) => {
    for (const build of ["esm", "cjs"]) {
      const src = fs.readFileSync(demoFile(build), "utf8");
      const dir = tempServer(t, { "package.json": JSON.stringify({ type: build === "esm" ? "module" : "commonjs" }), "auth/demoInMemoryOAuthProvider.js": src });
      const result = doctor(dir);
      assert.deepEqual(result.findings.map((f) => [f.check, f.file]), [["mcp-memory-provider", "auth/demoInMemoryOAuthProvider.js"]], build);
      assert.match(result.findings[0].problem, /clients store DemoInMemoryClientsStore and provider DemoInMemoryAuthProvider keep clients, codes and tokens in Maps/, build);
      assert.equal(result.findings[0].line, src.split("\n").findIndex((l) => l.includes("new Map()")) + 1, build);
    }
  });
});

describe("doctor: a provider of the server's own kept in Maps", () => {
  it("JavaScript: the classes with the SDK's methods, their Maps (fields, constructor, the module's), one finding; the clients Map is not also a client-registry finding", () => {
    const name = "mcp-own-provider";
    const result = doctor(fixture(name));
    const at = (needle) => lineOf(name, "auth/provider.js", needle);
    assert.deepEqual(summary(result), [["mcp-memory-provider", "auth/provider.js", at("registeredClients = new Map()")]]);
    const [finding] = result.findings;
    assertPointsAtMcp(finding, { module: false });
    assert.equal(finding.problem,
      `the MCP OAuth clients store MapClientsStore and provider MapAuthProvider keep registeredClients, codes and tokens in Maps (line ${at("registeredClients = new Map()")}, ${at("codes = new Map()")}, ${at("this.tokens = new Map()")})`);
    assert.match(finding.why, /^Maps live as long as the process\./);
  });

  it("TypeScript: `implements OAuthServerProvider` / `OAuthRegisteredClientsStore`, typed Maps, a decorator; Map in comments and strings is not code", () => {
    const name = "mcp-own-provider-ts";
    const result = doctor(fixture(name));
    const at = (needle) => lineOf(name, "src/provider.ts", needle);
    assert.deepEqual(summary(result), [["mcp-memory-provider", "src/provider.ts", at("private readonly clients = new Map")]]);
    assertPointsAtMcp(result.findings[0], { module: true });
    assert.equal(result.findings[0].problem,
      `the MCP OAuth clients store ClientsStore and provider Provider keep clients, codes and tokens in Maps (line ${at("clients = new Map")}, ${at("private codes")}, ${at("private tokens")})`);
  });

  it("the command prints it as a cost, exits 0, and --fix changes nothing and says what to do by hand", (t) => {
    const r = spawnSync(process.execPath, [BIN, "doctor", fixture("mcp-own-provider")], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Costs you \(1\)$/m);
    assert.match(r.stdout, /^auth\/provider\.js:\d+: the MCP OAuth clients store MapClientsStore/m);
    assert.match(r.stdout, /^ {2}By hand \(doctor --fix does not make this edit\): replace the provider with the lines below/m);
    assert.match(r.stdout, /^ +\+ const \{ TokenStorageOAuthProvider, mcpAuthRouter \} = require\("native-token-storage\/mcp"\);$/m);
    const dir = tempServer(t, {});
    fs.cpSync(fixture("mcp-own-provider"), dir, { recursive: true });
    const fixed = fix(dir);
    assert.equal(fixed.error, null);
    assert.deepEqual(fixed.changes, []);
    assert.deepEqual(fixed.refused.map((f) => f.check), ["mcp-memory-provider"]);
    assert.match(format(doctor(dir)), /1 costs you\. Make the edits, then run doctor again\./);
  });

  it("JavaScript: a provider and clients store written as object literals, their Maps the module's or their own", (t) => {
    const src = [
      'const { mcpAuthRouter } = require("@modelcontextprotocol/sdk/server/auth/router.js");',
      "const codes = new Map();",
      "const tokens = new Map();",
      "const clientsStore = {",
      "  clients: new Map(),",
      "  async getClient(id) { return this.clients.get(id); },",
      "  registerClient: async (c) => c,",
      "};",
      "const provider = {",
      "  clientsStore,",
      "  async authorize(client, params, res) { codes.set('c', { client, params }); res.redirect('/'); },",
      "  challengeForAuthorizationCode: async (client, code) => codes.get(code).params.codeChallenge,",
      "  async exchangeAuthorizationCode(client, code) { codes.delete(code); tokens.set('t', client); return { access_token: 't' }; },",
      "  verifyAccessToken: async function (token) { return tokens.get(token); },",
      "};",
      "module.exports = { provider, router: mcpAuthRouter({ provider }) };",
      "",
    ].join("\n");
    const dir = tempServer(t, { "auth.js": src, "helpers.js": "const cache = new Map();\nmodule.exports = { get: (k) => cache.get(k), verifyAccessToken: (t) => cache.get(t) };\n" });
    const result = doctor(dir);
    assert.deepEqual(summary(result), [["mcp-memory-provider", "auth.js", 2]]);
    assertPointsAtMcp(result.findings[0], { module: false });
    assert.equal(result.findings[0].problem, "the MCP OAuth clients store clientsStore and provider provider keep clients, codes and tokens in Maps (line 2, 3, 5)");
  });

  it("TypeScript: `const provider: OAuthServerProvider = { … }` and `{ … } satisfies OAuthRegisteredClientsStore`", (t) => {
    const src = [
      'import type { OAuthServerProvider } from "@modelcontextprotocol/sdk/server/auth/provider.js";',
      'import type { OAuthRegisteredClientsStore } from "@modelcontextprotocol/sdk/server/auth/clients.js";',
      "const codes: Map<string, { challenge: string }> = new Map();",
      "export const clientsStore = {",
      "  clients: new Map<string, unknown>(),",
      "  async getClient(id: string) { return this.clients.get(id); },",
      "} satisfies OAuthRegisteredClientsStore;",
      "export const provider: OAuthServerProvider = {",
      "  clientsStore,",
      "  async authorize(client, params, res) { codes.set('c', { challenge: params.codeChallenge }); },",
      "  async challengeForAuthorizationCode(client, code: string): Promise<string> { return codes.get(code)!.challenge; },",
      "  exchangeAuthorizationCode: async (client, code) => { codes.delete(code); return { access_token: 't', token_type: 'bearer' }; },",
      "  async verifyAccessToken(token: string) { throw new Error('unknown'); },",
      "};",
      "",
    ].join("\n");
    const dir = tempServer(t, { "src/auth.ts": src });
    const result = doctor(dir);
    assert.deepEqual(summary(result), [["mcp-memory-provider", "src/auth.ts", 3]]);
    assertPointsAtMcp(result.findings[0], { module: true });
    assert.equal(result.findings[0].problem, "the MCP OAuth clients store clientsStore and provider provider keep clients and codes in Maps (line 3, 5)");
  });

  it("an object literal that only looks like one is left alone: no Maps, or not the SDK's methods", (t) => {
    const dir = tempServer(t, {
      "stateless.js": 'require("@modelcontextprotocol/sdk/server/auth/router.js");\nconst provider = {\n  async exchangeAuthorizationCode() { return fetchUpstream(); },\n  async verifyAccessToken(t) { return jwtVerify(t); },\n};\nmodule.exports = provider;\n',
      "sessions.js": "const sessions = new Map();\nmodule.exports = { open(id) { sessions.set(id, {}); }, close(id) { sessions.delete(id); } };\n",
    });
    assert.deepEqual(doctor(dir).findings, []);
  });

  it("a class that only looks like one is left alone: a verifyAccessToken cache, getClient/registerClient outside an SDK server", (t) => {
    const dir = tempServer(t, {
      "cache.js": "class Cache {\n  constructor() { this.tokens = new Map(); }\n  async verifyAccessToken(token) { return this.tokens.get(token); }\n}\nmodule.exports = { Cache };\n",
      "registry.js": "class Registry {\n  clients = new Map();\n  getClient(id) { return this.clients.get(id); }\n  registerClient(c) { this.clients.set(c.id, c); return c; }\n}\nmodule.exports = { Registry };\n",
    });
    assert.deepEqual(doctor(dir).findings, []);
  });
});

describe("doctor: MCP servers that are not flagged", () => {
  it("a server already on native-token-storage/mcp (with a Map of transport sessions)", () => {
    const result = doctor(fixture("mcp-on-package"));
    assert.deepEqual(result.findings, []);
    assert.equal(result.tokenStorage, true);
    const r = spawnSync(process.execPath, [BIN, "doctor", fixture("mcp-on-package")], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Nothing found/);
  });

  it("an SDK server with no OAuth of its own (sessions and an upstream token cache in Maps)", () => {
    const result = doctor(fixture("mcp-no-auth"));
    assert.deepEqual(result.findings, []);
    assert.equal(result.tokenStorage, false);
  });

  it("a TypeScript server on native-token-storage/mcp", (t) => {
    const dir = tempServer(t, {
      "src/server.ts": [
        'import { TokenStorageOAuthProvider, mcpAuthRouter } from "native-token-storage/mcp";',
        'import type { OAuthServerProvider } from "@modelcontextprotocol/sdk/server/auth/provider.js";',
        "export class Logged extends TokenStorageOAuthProvider implements OAuthServerProvider {",
        "  private seen = new Map<string, number>();",
        "  async verifyAccessToken(token: string) { this.seen.set(token, Date.now()); return super.verifyAccessToken(token); }",
        "  async exchangeAuthorizationCode(...args: any[]) { return (super.exchangeAuthorizationCode as any)(...args); }",
        "}",
        "",
      ].join("\n"),
    });
    const result = doctor(dir);
    assert.deepEqual(result.findings, []);
    assert.equal(result.tokenStorage, true);
  });
});
