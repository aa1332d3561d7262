"use strict";
// `native-token-storage doctor`: lib/doctor/ on small fixture servers, one a problem
// (__test__/fixtures/doctor/<problem>/), one that does everything wrong, one clean; the
// edits it prints are what --fix makes (doctor-fix.test.js runs --fix and the fixed server);
// the command line's output, --json and exit codes.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { doctor, fix } = require("../lib/doctor");

const FIXTURES = path.join(__dirname, "fixtures", "doctor");
const BIN = path.join(__dirname, "..", "bin", "native-token-storage.js");
const fixture = (name) => path.join(FIXTURES, name);

/** The 1-based line of the first line of fixture/file that includes `needle`. */
function lineOf(name, file, needle) {
  const at = fs.readFileSync(path.join(fixture(name), file), "utf8").split("\n").findIndex((l) => l.includes(needle));
  assert.ok(at >= 0, `${needle} is not in ${name}/${file}`);
  return at + 1;
}

/** [check, file, line] of each finding, in the order reported. */
const summary = (result) => result.findings.map((f) => [f.check, f.file, f.line]);

function cli(...args) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", cwd: path.join(__dirname, "..") });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A copy of a fixture in a temporary folder (removed after the test). */
function copy(t, name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `nts-doctor-${name}-`));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.cpSync(fixture(name), dir, { recursive: true });
  return dir;
}

describe("doctor: one fixture a problem", () => {
  it("clean: a server on the package, with the old patterns only in comments and strings, has no finding", () => {
    const result = doctor(fixture("clean"));
    assert.equal(result.tokenStorage, true);
    assert.equal(result.files, 4);
    assert.deepEqual(result.findings, []);
  });

  it("runtime-swap: the TOKEN_STORAGE === \"db\" block that replaces the token functions", () => {
    const result = doctor(fixture("runtime-swap"));
    const from = lineOf("runtime-swap", "server.js", 'if (process.env.TOKEN_STORAGE === "db")');
    assert.deepEqual(summary(result), [["runtime-swap", "server.js", from]]);
    const [finding] = result.findings;
    assert.equal(finding.severity, "blocks");
    assert.match(finding.problem, new RegExp(`lines ${from}-${from + 8}\\b`));
    assert.deepEqual(finding.diff[0], { line: from, op: "-", text: 'if (process.env.TOKEN_STORAGE === "db") {' });
    assert.deepEqual(finding.diff.find((d) => d.line === from + 8), { line: from + 8, op: "-", text: "}" });
    assert.ok(finding.diff.every((d) => d.op === "-"));
    assert.ok(finding.fixable);
  });

  it("async-wrappers: async wrappers, promisify and .then (blocking), awaits (a cost)", () => {
    const result = doctor(fixture("async-wrappers"));
    const at = (file, needle) => lineOf("async-wrappers", file, needle);
    assert.deepEqual(summary(result), [
      ["async-wrapper", "server.js", at("server.js", "promisify(")],
      ["then", "server.js", at("server.js", ".then(")],
      ["async-wrapper", "utils/tokenStorage.js", at("utils/tokenStorage.js", "getAccessToken: async")],
      ["async-wrapper", "utils/tokenStorage.js", at("utils/tokenStorage.js", "async consumeAuthorizationCode")],
      ["await", "server.js", at("server.js", "await getAccessToken")],
      ["no-expiry", "server.js", at("server.js", "await storeAccessToken")],
    ]);
    assert.equal(result.findings[5].fixable, false);
    assert.match(result.findings[5].byHand, /7th argument/);
    const method = result.findings[3];
    assert.deepEqual(method.diff.filter((d) => d.op === "+").map((d) => d.text), [
      "  consumeAuthorizationCode(code, verifier) {",
      "    return tokens.consumeAuthorizationCode(code, verifier);",
    ]);
    const awaits = result.findings[4];
    assert.match(awaits.problem, /^2 awaits/);
    assert.deepEqual(awaits.diff.filter((d) => d.op === "+").map((d) => d.text.trim()), [
      "const tokenData = getAccessToken(token);",
      'storeAccessToken("at_1", "rt_1", "sk-or-v1-key", "user_1", "client_1", ["mcp"], null);',
    ]);
    assert.deepEqual(result.findings[0].diff.filter((d) => d.op === "+").map((d) => d.text), ["const statsAsync = tokens.getStats;"]);
    assert.deepEqual(result.findings[1].diff.filter((d) => d.op === "+").map((d) => d.text.trim()), [
      "Promise.resolve(getAccessToken(req.query.token)).then((tokenData) => res.json({ user: tokenData && tokenData.userId }));",
    ]);
  });

  it("old-sqlite-module: a require of the async sqlite3 module", () => {
    const result = doctor(fixture("old-sqlite-module"));
    const line = lineOf("old-sqlite-module", "routes/admin.js", "tokenStorageDB");
    assert.deepEqual(summary(result), [["old-module", "routes/admin.js", line]]);
    assert.deepEqual(result.findings[0].diff, [
      { line, op: "-", text: 'const db = require("../utils/tokenStorageDB");' },
      { op: "+", text: 'const db = require("native-token-storage");' },
    ]);
  });

  it("not-swapped: the Map-based token module is still the one required", () => {
    const result = doctor(fixture("not-swapped"));
    assert.deepEqual(summary(result), [["not-swapped", "utils/tokenStorage.js", lineOf("not-swapped", "utils/tokenStorage.js", "new Map()")]]);
    assert.equal(result.findings[0].severity, "blocks");
    assert.deepEqual(result.findings[0].diff.at(-1), { op: "+", text: 'module.exports = require("native-token-storage");' });
  });

  it("client-registry: the registry module of a Map, and an inline Map of clients", () => {
    const result = doctor(fixture("client-registry"));
    assert.deepEqual(summary(result), [
      ["client-registry", "routes/mcp.js", lineOf("client-registry", "routes/mcp.js", "new Map()")],
      ["client-registry", "utils/clientRegistry.js", lineOf("client-registry", "utils/clientRegistry.js", "new Map()")],
    ]);
    assert.ok(result.findings.every((f) => f.severity === "costs"));
    assert.deepEqual(result.findings[1].diff.at(-1), { op: "+", text: 'module.exports = require("native-token-storage/clients");' });
    // The inline Map is also set: no edit doctor can make exactly, guidance instead.
    assert.equal(result.findings[0].fixable, false);
    assert.match(result.findings[0].byHand, /used otherwise at line \d+/);
    assert.equal(result.findings[1].fixable, true);
  });

  it("pending-map: the openRouterAuths Map, its uses and its cleanup timer", () => {
    const result = doctor(fixture("pending-map"));
    const at = (needle) => lineOf("pending-map", "routes/oauth.js", needle);
    assert.deepEqual(summary(result), [["pending-map", "routes/oauth.js", at("new Map()")]]);
    const { diff } = result.findings[0];
    assert.deepEqual(diff.filter((d) => d.op === "-").map((d) => d.line), [
      at("new Map()"), at("setInterval"), at("setInterval") + 1, at("setInterval") + 2, at("setInterval") + 3, at("setInterval") + 4,
      at("openRouterAuths.set"), at("openRouterAuths.get"), at("openRouterAuths.delete(req"),
    ]);
    assert.ok(diff.some((d) => d.op === "+" && d.text === "  const auth = consumePendingAuthorization(req.query.state);"));
  });

  it("refresh-grant: getRefreshToken, storeAccessToken, revokeRefreshToken become one rotateRefreshToken", () => {
    const result = doctor(fixture("refresh-grant"));
    const at = (needle) => lineOf("refresh-grant", "routes/oauth.js", needle);
    assert.deepEqual(summary(result), [["refresh-grant", "routes/oauth.js", at("getRefreshToken(")]]);
    const { diff } = result.findings[0];
    // The new tokens are minted in the callback; their names then read the result.
    assert.deepEqual(diff.filter((d) => d.op === "+").map((d) => d.text.trim()), [
      "const tokenData = tokenStorage.rotateRefreshToken(refresh_token, (grant) => ({",
      'accessToken: crypto.randomBytes(32).toString("hex"),',
      'refreshToken: crypto.randomBytes(32).toString("hex"),',
      "expiresAt: new Date(Date.now() + 3600 * 1000),",
      "}));",
      "const newAccessToken = tokenData.accessToken;",
      "const newRefreshToken = tokenData.refreshToken;",
    ]);
    assert.ok(diff.some((d) => d.op === "-" && d.line === at("tokenStorage.getAccessToken(tokenData.accessToken)")), "the read of the old access token goes");
    const revoke = at("tokenStorage.revokeRefreshToken(refresh_token)");
    assert.ok(diff.some((d) => d.op === "-" && d.line === revoke));
    assert.ok(!diff.some((d) => d.line === at("tokenStorage.revokeRefreshToken(req.body.token)")), "the /revoke route is left alone");
  });

  it("no-closedb: no shutdown handler at all", () => {
    const result = doctor(fixture("no-closedb"));
    assert.deepEqual(summary(result), [["no-closedb", "server.js", lineOf("no-closedb", "server.js", "app.listen")]]);
    assert.deepEqual(result.findings[0].diff.at(-1), {
      op: "+",
      text: 'for (const signal of ["SIGTERM", "SIGINT"]) process.once(signal, () => { tokenStorage.closeDB(); process.exit(0); });',
    });
  });

  it("old-db-location: the old data/tokens.db beside a folder that is no longer the main script's", (t) => {
    const result = doctor(fixture("old-db-location"));
    const line = lineOf("old-db-location", "package.json", '"start"');
    assert.deepEqual(summary(result), [["old-database", "package.json", line]]);
    assert.match(result.findings[0].problem, /server\/data\/tokens\.db/);
    assert.deepEqual(result.findings[0].diff[1], { op: "+", text: '    "start": "TOKEN_DB_PATH=server/data/tokens.db node index.js"' });

    // Where the package finds it by itself, or TOKEN_DB_PATH is set, nothing is said.
    const beside = copy(t, "old-db-location");
    fs.writeFileSync(path.join(beside, "package.json"), JSON.stringify({ scripts: { start: "node server/app.js" } }, null, 2));
    assert.deepEqual(doctor(beside).findings, []);
    const configured = copy(t, "old-db-location");
    fs.writeFileSync(path.join(configured, ".env"), "TOKEN_DB_PATH=/var/lib/mcp/tokens.db\n");
    assert.deepEqual(doctor(configured).findings, []);
  });
});

describe("doctor: an ES module", () => {
  it("imports what its edits need, and a destructured getRefreshToken gives way to rotateRefreshToken", (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nts-doctor-esm-"));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, "server.mjs"), [
      'import express from "express";',
      'import { getRefreshToken, revokeRefreshToken, storeAccessToken, closeDB } from "native-token-storage";',
      "const pendingAuthorizations = new Map();",
      "const app = express();",
      'app.post("/token", (req, res) => {',
      "  const accessToken = String(Math.random());",
      "  const refreshToken = String(Math.random());",
      "  const data = getRefreshToken(req.body.refresh_token);",
      "  if (!data) return res.status(400).end();",
      '  storeAccessToken(accessToken, refreshToken, "key", data.userId, data.clientId, data.scopes);',
      "  revokeRefreshToken(req.body.refresh_token);",
      "  res.json({ state: pendingAuthorizations.get(req.body.state) });",
      "});",
      'process.on("SIGTERM", () => { closeDB(); process.exit(0); });',
      "",
    ].join("\n"));
    const result = doctor(dir);
    assert.deepEqual(summary(result), [["pending-map", "server.mjs", 3], ["refresh-grant", "server.mjs", 8]]);
    assert.deepEqual(result.findings[0].diff.slice(0, 3).map((d) => d.text), [
      "const pendingAuthorizations = new Map();",
      'import nativeTokenStorage from "native-token-storage";',
      "const { storePendingAuthorization, consumePendingAuthorization } = nativeTokenStorage;",
    ]);
    assert.deepEqual(result.findings[1].diff.filter((d) => d.op === "+").map((d) => d.text), [
      'import { rotateRefreshToken, revokeRefreshToken, storeAccessToken, closeDB } from "native-token-storage";',
      "  const data = rotateRefreshToken(req.body.refresh_token, (grant) => ({",
      "    accessToken: String(Math.random()),",
      "    refreshToken: String(Math.random()),",
      "    expiresAt: null,",
      "  }));",
      // Declared before the rotation, the names are now read from its result, after it (not before: no TDZ).
      "  const accessToken = data.accessToken;",
      "  const refreshToken = data.refreshToken;",
    ]);
    assert.deepEqual(fix(dir).error, null);
    assert.doesNotThrow(() => require("acorn").parse(fs.readFileSync(path.join(dir, "server.mjs"), "utf8"), { ecmaVersion: "latest", sourceType: "module" }));
    assert.deepEqual(summary(doctor(dir)), []);
  });
});

describe("doctor: the server that does everything wrong", () => {
  it("reports each problem at its file and line, what stops the swap first", () => {
    const result = doctor(fixture("everything"));
    const at = (file, needle) => lineOf("everything", file, needle);
    assert.deepEqual(summary(result), [
      ["runtime-swap", "server/server.js", at("server/server.js", "TOKEN_STORAGE")],
      ["not-swapped", "server/utils/tokenStorage.js", at("server/utils/tokenStorage.js", "new Map()")],
      ["old-database", "package.json", at("package.json", '"start"')],
      ["pending-map", "server/routes/oauth.js", at("server/routes/oauth.js", "openRouterAuths = new Map()")],
      ["refresh-grant", "server/routes/oauth.js", at("server/routes/oauth.js", "getRefreshToken(")],
      ["await", "server/server.js", at("server/server.js", "await tokenStorage.getAccessToken")],
      ["no-closedb", "server/server.js", at("server/server.js", '"SIGTERM"')],
      ["client-registry", "server/utils/clientRegistry.js", at("server/utils/clientRegistry.js", "new Map()")],
    ]);
    assert.deepEqual(result.findings.map((f) => f.severity), ["blocks", "blocks", ...Array(6).fill("costs")]);
    // The closeDB() that the TOKEN_STORAGE block registers goes with the block: it does not count.
    assert.deepEqual(result.findings[6].diff, [
      { op: "+", text: "    tokenStorage.closeDB();" },
      { line: at("server/server.js", "process.exit(0)"), op: " ", text: "    process.exit(0);" },
    ]);
  });
});

describe("native-token-storage doctor (the command)", () => {
  it("prints file:line, the problem and the edit, grouped by severity, and exits 1 when something blocks the swap", () => {
    const r = cli("doctor", fixture("everything"));
    assert.equal(r.status, 1, r.stderr);
    const out = r.stdout;
    const blocks = out.indexOf("Stops the swap from working (2)");
    const costs = out.indexOf("Costs you (6)");
    assert.ok(blocks > 0 && costs > blocks, out);
    const swap = lineOf("everything", "server/server.js", "TOKEN_STORAGE");
    assert.match(out, new RegExp(`^server/server\\.js:${swap}: the token functions are replaced at run time`, "m"));
    assert.match(out, new RegExp(`^ +${swap} - if \\(process\\.env\\.TOKEN_STORAGE === "db"\\) \\{$`, "m"));
    assert.match(out, /^ +\+ module\.exports = require\("native-token-storage"\);$/m);
    assert.ok(out.indexOf("server/routes/oauth.js:") > costs);
    assert.match(out, /^2 stop the swap from working, 6 cost you; doctor --fix makes all of these edits/m);
  });

  it("exits 0 on a server with nothing to fix, and on one with costs only", () => {
    const clean = cli("doctor", fixture("clean"));
    assert.equal(clean.status, 0, clean.stderr);
    assert.match(clean.stdout, /Nothing found/);
    const costs = cli("doctor", fixture("pending-map"));
    assert.equal(costs.status, 0, costs.stderr);
    assert.match(costs.stdout, /^routes\/oauth\.js:8: authorizations waiting/m);
  });

  it("--json prints what doctor() returns", () => {
    const r = cli("doctor", "--json", fixture("runtime-swap"));
    assert.equal(r.status, 1, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), doctor(fixture("runtime-swap")));
  });

  it("reads the current folder by default", () => {
    const r = spawnSync(process.execPath, [BIN, "doctor"], { encoding: "utf8", cwd: fixture("no-closedb") });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^server\.js:\d+: nothing calls closeDB\(\)/m);
  });

  it("--help prints the usage and exits 0; a usage error exits 2", (t) => {
    const help = cli("doctor", "--help");
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^Usage: native-token-storage doctor \[folder\] \[--json\]/);
    assert.match(cli("--help").stdout, /^  doctor /m, "the program's usage lists it");
    for (const args of [[], ["doctr"], ["doctor", "--jsn"], ["doctor", "a", "b"], ["doctor", path.join(FIXTURES, "no-such-server")]]) {
      const r = cli(...args);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stdout}`);
      assert.match(r.stderr, /native-token-storage/);
      assert.equal(r.stdout, "");
    }
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), "nts-doctor-empty-"));
    t.after(() => fs.rmSync(empty, { recursive: true, force: true }));
    fs.writeFileSync(path.join(empty, "index.js"), 'console.log("hello");\n');
    const none = cli("doctor", empty);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /no token storage found/);
  });
});

describe("doctor in the documentation", () => {
  it("the sample output in docs/migration.md is what doctor prints on the everything fixture", () => {
    const page = fs.readFileSync(path.join(__dirname, "..", "docs", "migration.md"), "utf8");
    const sample = /## Checking a server: doctor[^]*?```text\n([^]*?)```/.exec(page)[1].split("\n").filter((l) => l !== "");
    const r = spawnSync(process.execPath, [BIN, "doctor"], { encoding: "utf8", cwd: fixture("everything") });
    const printed = r.stdout.split("\n");
    let at = 0;
    for (const line of sample) {
      if (line === "…") continue;
      const found = printed.indexOf(line, at);
      assert.ok(found >= 0, `not printed (in this order): ${line}`);
      at = found + 1;
    }
  });
});
