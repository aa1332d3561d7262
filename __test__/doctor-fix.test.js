"use strict";
// `doctor --fix` and `--diff`: the edits made on a copy of a server built the way the real one
// is (__test__/fixtures/doctor/jwt-server: a TOKEN_STORAGE === "db" block that swaps in async
// functions, JWT access tokens, a Map of pending logins with a debug line listing its keys, a
// client from the environment, SIGTERM and SIGINT handlers), and then its OAuth flows run on
// the fixed copy, on SQLite, with TOKEN_STORAGE=sqlite and =db, across a restart. Also: the
// diff applies with patch; a second --fix changes nothing; refusals; a file that does not
// parse; an edit that would not parse writes nothing; what is not a readable file is skipped.
const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawn, spawnSync, execFileSync } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const http = require("node:http");
const os = require("node:os");
const path = require("node:path");
const { doctor, fix } = require("../lib/doctor");
const { readableCopy } = require("./helpers/setup");

const ROOT = path.join(__dirname, "..");
const FIXTURES = path.join(__dirname, "fixtures", "doctor");
const BIN = path.join(ROOT, "bin", "native-token-storage.js");

function cli(...args) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", cwd: ROOT, timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tempDir(t, name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `nts-doctor-fix-${name}-`));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function copy(t, name) {
  const dir = tempDir(t, name);
  fs.cpSync(path.join(FIXTURES, name), dir, { recursive: true });
  return dir;
}

/** Every file under dir (not node_modules) with its content. */
function snapshot(dir) {
  const out = {};
  for (const f of fs.readdirSync(dir, { recursive: true })) {
    const abs = path.join(dir, f);
    if (!f.split(path.sep).includes("node_modules") && fs.lstatSync(abs).isFile()) out[f.split(path.sep).join("/")] = fs.readFileSync(abs, "utf8");
  }
  return out;
}

/** `node --check` on every .js file under dir. */
function checkSyntax(dir) {
  for (const f of Object.keys(snapshot(dir)).filter((f) => f.endsWith(".js"))) {
    const r = spawnSync(process.execPath, ["--check", path.join(dir, f)], { encoding: "utf8" });
    assert.equal(r.status, 0, `${f} does not parse after --fix: ${r.stderr}`);
  }
}

// ---- The flows of the fixed server -------------------------------------------------------

/** The upstream login, stubbed: any code gives the key of user-1. */
function startUpstream() {
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      if (req.method === "POST" && req.url === "/api/v1/auth/keys") {
        const { code } = JSON.parse(body);
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ key: `sk-or-v1-test-${code}`, user_id: "user-1" }));
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/** The server in dir as a child on a loopback port: `{ base, child, exited }`. */
function startServer(dir, env) {
  const child = spawn(process.execPath, ["server.js"], {
    cwd: dir,
    env: { ...process.env, PORT: "0", TOKEN_STORAGE_LOG: "silent", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal, out, err })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start: ${out}${err}`)), 15_000);
    child.stderr.on("data", (d) => (err += d));
    child.stdout.on("data", (d) => {
      out += d;
      const m = /listening on (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ base: `http://127.0.0.1:${m[1]}`, child, exited });
      }
    });
    child.on("exit", () => {
      clearTimeout(timer);
      reject(new Error(`the server exited before listening: ${out}${err}`));
    });
  });
}

const CALLBACK = "http://127.0.0.1:9/cb";
const STATIC_CALLBACK = "http://127.0.0.1:9/static-callback";
const basic = (id, secret) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`;
const get = (url, headers = {}) => fetch(url, { redirect: "manual", headers, signal: AbortSignal.timeout(5000) });
const token = (base, form, headers = {}) =>
  fetch(`${base}/oauth/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", ...headers }, body: new URLSearchParams(form), signal: AbortSignal.timeout(5000) });

/** Authorize, upstream callback and code exchange for a client: the token response. */
async function login(base, client, redirectUri = CALLBACK) {
  const verifier = crypto.randomBytes(32).toString("base64url");
  const challenge = crypto.createHash("sha256").update(verifier).digest("base64url");
  const query = new URLSearchParams({ client_id: client.client_id, redirect_uri: redirectUri, response_type: "code", code_challenge: challenge, code_challenge_method: "S256", state: "client-state" });
  const authorize = await get(`${base}/oauth/authorize?${query}`);
  assert.equal(authorize.status, 302, "authorize redirects to the upstream");
  const upstreamState = new URL(authorize.headers.get("location")).searchParams.get("state");
  const callback = await get(`${base}/oauth/openrouter-callback?code=up-${upstreamState}&state=${upstreamState}`);
  assert.equal(callback.status, 302, "the upstream callback redirects to the client");
  const back = new URL(callback.headers.get("location"));
  assert.equal(back.searchParams.get("state"), "client-state");
  // The callback reused: the login is gone, and the answer comes (no ReferenceError left to hang it).
  const again = await get(`${base}/oauth/openrouter-callback?code=up-${upstreamState}&state=${upstreamState}`);
  assert.equal(again.status, 400, "a reused callback is refused");
  const r = await token(base, { grant_type: "authorization_code", code: back.searchParams.get("code"), redirect_uri: redirectUri, code_verifier: verifier }, { authorization: basic(client.client_id, client.client_secret) });
  assert.equal(r.status, 200, "the code exchange (client_secret_basic)");
  return r.json();
}

const status = async (base, accessToken) => (await get(`${base}/oauth/status`, { authorization: `Bearer ${accessToken}` })).status;

async function flows(dir, storage, upstream) {
  const db = path.join(dir, `tokens-${storage}.db`);
  const env = { TOKEN_STORAGE: storage, TOKEN_DB_PATH: db, UPSTREAM_URL: `http://127.0.0.1:${upstream.address().port}`, MCP_CLIENT_ID: "static-client", MCP_CLIENT_SECRET: "static-secret" };
  let server = await startServer(dir, env);
  try {
    let { base } = server;
    const registered = await fetch(`${base}/oauth/register`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ redirect_uris: [CALLBACK], token_endpoint_auth_method: "client_secret_basic" }) });
    assert.equal(registered.status, 201);
    const client = await registered.json();
    const first = await login(base, client);
    assert.equal(await status(base, first.access_token), 200, "the bearer token works");
    assert.equal(await status(base, "made-up-bearer"), 401, "a made-up bearer token is refused");
    assert.equal(await status(base, first.access_token.replace(/.$/, (c) => (c === "A" ? "B" : "A"))), 401, "a forged JWT is refused");
    const wrong = await token(base, { grant_type: "refresh_token", refresh_token: first.refresh_token }, { authorization: basic(client.client_id, "wrong-secret") });
    assert.equal(wrong.status, 401, "a wrong client secret is refused");

    // The refresh grant: rotated once, with the client authenticated by HTTP Basic.
    const refreshed = await token(base, { grant_type: "refresh_token", refresh_token: first.refresh_token }, { authorization: basic(client.client_id, client.client_secret) });
    assert.equal(refreshed.status, 200, "the refresh grant");
    const second = await refreshed.json();
    assert.notEqual(second.access_token, first.access_token);
    assert.equal(JSON.parse(Buffer.from(second.access_token.split(".")[1], "base64url")).sub, "user-1", "the new JWT is the grant's user's");
    assert.equal(await status(base, second.access_token), 200, "the new access token works");
    assert.equal(await status(base, first.access_token), 401, "the old access token is gone");
    const replay = await token(base, { grant_type: "refresh_token", refresh_token: first.refresh_token }, { authorization: basic(client.client_id, client.client_secret) });
    assert.equal(replay.status, 400, "a replayed refresh token is refused");

    // The client from the environment is still registered after the registry swap.
    const staticLogin = await login(base, { client_id: "static-client", client_secret: "static-secret" }, STATIC_CALLBACK);
    assert.equal(await status(base, staticLogin.access_token), 200);

    // SIGTERM closes the store and exits 0; after a restart, clients and tokens are there.
    server.child.kill("SIGTERM");
    assert.equal((await server.exited).code, 0, "SIGTERM exits 0");
    server = await startServer(dir, env);
    base = server.base;
    assert.equal(await status(base, staticLogin.access_token), 200, "a token survives the restart");
    const third = await login(base, client);
    assert.equal(await status(base, third.access_token), 200, "a registered client survives the restart");
    const afterRestart = await token(base, { grant_type: "refresh_token", refresh_token: staticLogin.refresh_token }, { authorization: basic("static-client", "static-secret") });
    assert.equal(afterRestart.status, 200, "a refresh token survives the restart");
    server.child.kill("SIGINT");
    assert.equal((await server.exited).code, 0, "SIGINT exits 0");
  } finally {
    server.child.kill("SIGKILL");
  }
}

/**
 * The fixed server with access tokens of 1 second (the fixture's jwt module reads
 * ACCESS_TOKEN_EXPIRY): once a JWT has expired, its refresh token still works (the row lives
 * as long as the grant), twice in a row; the stored rows expire in about 30 days.
 */
async function refreshAfterExpiry(dir, upstream) {
  const db = path.join(dir, "tokens-expiry.db");
  const env = { TOKEN_STORAGE: "sqlite", TOKEN_DB_PATH: db, ACCESS_TOKEN_EXPIRY: "1", UPSTREAM_URL: `http://127.0.0.1:${upstream.address().port}`, MCP_CLIENT_ID: "static-client", MCP_CLIENT_SECRET: "static-secret" };
  const server = await startServer(dir, env);
  try {
    const { base } = server;
    const auth = { authorization: basic("static-client", "static-secret") };
    let current = await login(base, { client_id: "static-client", client_secret: "static-secret" }, STATIC_CALLBACK);
    for (let round = 0; round < 2; round++) {
      const exp = JSON.parse(Buffer.from(current.access_token.split(".")[1], "base64url")).exp;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, exp * 1000 - Date.now()) + 50));
      assert.equal(await status(base, current.access_token), 401, "the access token's JWT has expired");
      const refreshed = await token(base, { grant_type: "refresh_token", refresh_token: current.refresh_token }, auth);
      assert.equal(refreshed.status, 200, `a refresh after the access token expired (round ${round + 1})`);
      current = await refreshed.json();
    }
    // The row of the newest tokens lives as long as the grant: 30 days, not the JWT's second nor expires_in's hour.
    const { TokenStorage } = require(ROOT);
    const store = new TokenStorage({ storage: "sqlite", path: db });
    try {
      const row = store.getAccessToken(current.access_token);
      assert.ok(row, "the newest row is stored");
      assert.ok(Math.abs(row.expiresAt.getTime() - (Date.now() + 30 * 86400 * 1000)) < 60_000, `the row expires in 30 days: ${row.expiresAt.toISOString()}`);
    } finally {
      store.close();
    }
    server.child.kill("SIGTERM");
    assert.equal((await server.exited).code, 0);
  } finally {
    server.child.kill("SIGKILL");
  }
}

describe("doctor --fix on a server built like the real one", () => {
  let upstream;
  before(async () => {
    upstream = await startUpstream();
  });
  after(() => upstream.close());

  it("finds each problem, makes every edit, and the fixed server passes its flows with TOKEN_STORAGE=sqlite and =db", async (t) => {
    const dir = copy(t, "jwt-server");
    const original = snapshot(dir);
    const found = doctor(dir);
    const lineIn = (file, needle) => original[file].split("\n").findIndex((l) => l.includes(needle)) + 1;
    assert.deepEqual(found.findings.map((f) => [f.check, f.file, f.line]), [
      ["runtime-swap", "server.js", lineIn("server.js", "if (useDatabase)")],
      ["not-swapped", "utils/tokenStorage.js", lineIn("utils/tokenStorage.js", "new Map()")],
      ["pending-map", "routes/oauth.js", lineIn("routes/oauth.js", "openRouterAuths = new Map()")],
      ["no-expiry", "routes/oauth.js", lineIn("routes/oauth.js", "const storeTokenResult = storeAccessToken(")],
      ["refresh-grant", "routes/oauth.js", lineIn("routes/oauth.js", "getRefreshToken(refresh_token)")],
      ["no-closedb", "server.js", lineIn("server.js", '"SIGTERM"')],
      ["no-closedb", "server.js", lineIn("server.js", '"SIGINT"')],
      ["client-registry", "utils/clientRegistry.js", lineIn("utils/clientRegistry.js", "new Map()")],
    ]);
    assert.equal(found.ready, false);
    assert.ok(found.findings.every((f) => f.fixable), "every edit is one doctor makes");
    assert.match(found.findings[0].fix, /TOKEN_STORAGE=sqlite/);

    const r = cli("doctor", "--fix", dir);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /changed 4 files/);
    assert.match(r.stdout, /Nothing found: the server is ready/);
    for (const file of ["server.js", "routes/oauth.js", "utils/tokenStorage.js", "utils/clientRegistry.js"]) {
      const backup = fs.readFileSync(path.join(dir, `${file}.bak`), "utf8");
      assert.equal(backup, original[file], `${file}.bak holds the file as it was`);
    }
    checkSyntax(dir);
    const fixed = snapshot(dir);
    // The edits are the ones meant, and the rest of the text is untouched.
    assert.doesNotMatch(fixed["routes/oauth.js"], /openRouterAuths/, "no reference to the Map is left, the debug line's included");
    // The stored rows carry the refresh tokens: they get the grant's lifetime (the jwt module's
    // REFRESH_TOKEN_EXPIRY, 30 days, in seconds), not the access token's expires_in (3600).
    assert.match(fixed["routes/oauth.js"], /rotateRefreshToken\(refresh_token, \(grant\) => \(\{\n {6}accessToken: generateAccessToken\(grant\.userId, grant\.clientId, grant\.scopes\),\n {6}refreshToken: generateRefreshToken\(\),\n {6}expiresAt: new Date\(Date\.now\(\) \+ REFRESH_TOKEN_EXPIRY \* 1000\),\n {4}\}\)\);/);
    assert.match(fixed["routes/oauth.js"], /^ {6}codeData\.scopes,\n {6}new Date\(Date\.now\(\) \+ REFRESH_TOKEN_EXPIRY \* 1000\)\n {4}\);$/m, "the code exchange's store");
    assert.match(fixed["routes/oauth.js"], /^const \{ generateAccessToken, generateRefreshToken, REFRESH_TOKEN_EXPIRY \} = require\("\.\.\/utils\/jwt"\);$/m, "the name is added to the require once");
    assert.doesNotMatch(fixed["routes/oauth.js"], /3600 \* 1000/);
    const expiry = found.findings.find((f) => f.check === "no-expiry");
    assert.match(expiry.why, /carries its refresh token, which lives only as long as that row/);
    assert.match(expiry.fix, /grant's lifetime, REFRESH_TOKEN_EXPIRY of \.\.\/utils\/jwt/);
    assert.doesNotMatch(fixed["routes/oauth.js"], /revokeRefreshToken\(refresh_token\)|oldTokenData|getAccessToken/);
    assert.match(fixed["server.js"], /const \{ closeDB \} = require\("native-token-storage"\);/);
    assert.equal(fixed["server.js"].match(/^ {2}closeDB\(\);\n {2}process\.exit\(0\);$/gm).length, 2, "SIGTERM and SIGINT both close the store");
    assert.doesNotMatch(fixed["server.js"], /process\.env\.TOKEN_STORAGE|dbStorage|memoryStorage/);
    assert.match(fixed["utils/clientRegistry.js"], /^module\.exports = require\("native-token-storage\/clients"\);\n[^]*preRegisterClient\(process\.env\.MCP_CLIENT_ID/);
    assert.equal(fixed["utils/tokenStorage.js"], 'module.exports = require("native-token-storage");\n');
    for (const file of ["utils/jwt.js", "utils/upstream.js", "middleware/auth.js", "utils/tokenStorageDB.js"]) assert.equal(fixed[file], original[file]);
    const untouched = original["routes/oauth.js"].split("\n").filter((l) => /router\.post\("\/register"|function clientOf|verifyClient\(client\.id/.test(l));
    for (const line of untouched) assert.ok(fixed["routes/oauth.js"].includes(line), `kept as it was: ${line}`);

    // A second --fix: nothing to change, nothing written.
    const again = cli("doctor", "--fix", dir);
    assert.equal(again.status, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /nothing to change/);
    assert.deepEqual(snapshot(dir), fixed);

    // The fixed server's flows: the package resolvable from the copy, as an installed one is.
    fs.mkdirSync(path.join(dir, "node_modules"));
    fs.symlinkSync(ROOT, path.join(dir, "node_modules", "native-token-storage"), "dir");
    fs.symlinkSync(path.join(ROOT, "node_modules", "express"), path.join(dir, "node_modules", "express"), "dir");
    await flows(dir, "sqlite", upstream);
    await flows(dir, "db", upstream);
    await refreshAfterExpiry(dir, upstream);
  });

  it("--diff prints a unified diff that patch applies to the same result as --fix, and writes nothing", (t) => {
    const dir = copy(t, "jwt-server");
    const before = snapshot(dir);
    const r = cli("doctor", "--diff", dir);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(snapshot(dir), before, "--diff writes nothing");
    assert.match(r.stdout, /^--- a\/server\.js\n\+\+\+ b\/server\.js\n@@ -\d+,\d+ \+\d+,\d+ @@/);
    const patched = copy(t, "jwt-server");
    execFileSync("patch", ["-p1", "--quiet", "--no-backup-if-mismatch"], { cwd: patched, input: r.stdout });
    const fixed = copy(t, "jwt-server");
    assert.equal(cli("doctor", "--fix", fixed).status, 0);
    const withoutBackups = (s) => Object.fromEntries(Object.entries(s).filter(([f]) => !f.endsWith(".bak")));
    assert.deepEqual(snapshot(patched), withoutBackups(snapshot(fixed)));
  });

  it("every fixture: --fix leaves files that parse and nothing it could fix, and a second --fix changes nothing", (t) => {
    for (const name of fs.readdirSync(FIXTURES)) {
      const dir = copy(t, name);
      const first = fix(dir);
      assert.equal(first.error, null, `${name}: ${first.error}`);
      checkSyntax(dir);
      const after = doctor(dir);
      assert.deepEqual(after.findings.filter((f) => f.fixable).map((f) => [f.check, f.file, f.line]), [], `${name}: left fixable`);
      const fixed = snapshot(dir);
      assert.deepEqual(fix(dir).changes, [], `${name}: a second --fix changed something`);
      assert.deepEqual(snapshot(dir), fixed);
    }
  });
});

describe("doctor --fix refuses what it does not know exactly", () => {
  it("a use of the pending Map that is no set, get, delete or debug listing: no edit, guidance with the position", (t) => {
    const dir = copy(t, "pending-map");
    const file = path.join(dir, "routes", "oauth.js");
    const source = fs.readFileSync(file, "utf8").replace(
      "  const auth = openRouterAuths.get(req.query.state);",
      '  if (!openRouterAuths.has(req.query.state)) return res.status(400).json({ error: "invalid_request" });\n  const auth = openRouterAuths.get(req.query.state);');
    fs.writeFileSync(file, source);
    const [finding] = doctor(dir).findings;
    assert.equal(finding.check, "pending-map");
    assert.equal(finding.fixable, false);
    const line = source.split("\n").findIndex((l) => l.includes(".has(")) + 1;
    assert.match(finding.byHand, new RegExp(`line ${line}:\\d+ \\(has\\(\\)\\)`));
    assert.match(finding.byHand, /leave no reference to openRouterAuths behind/);
    const r = cli("doctor", "--fix", dir);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /nothing to change/);
    assert.match(r.stdout, /By hand \(doctor --fix does not make this edit\)/);
    assert.equal(fs.readFileSync(file, "utf8"), source, "no half edit");
  });

  it("a refresh grant whose new token needs what only the old access token had: no edit, guidance", (t) => {
    const dir = copy(t, "refresh-grant");
    const file = path.join(dir, "routes", "oauth.js");
    const source = fs.readFileSync(file, "utf8").replace('const newAccessToken = crypto.randomBytes(32).toString("hex");', "const newAccessToken = accessData.apiKey.slice(0, 8) + crypto.randomBytes(32).toString(\"hex\");");
    fs.writeFileSync(file, source);
    const [finding] = doctor(dir).findings;
    assert.equal(finding.check, "refresh-grant");
    assert.equal(finding.fixable, false);
    assert.match(finding.byHand, /cannot be made from the grant: it uses accessData/);
    assert.deepEqual(fix(dir).changes, []);
    assert.equal(fs.readFileSync(file, "utf8"), source);
  });

  it("an edit whose result would not parse: nothing is written, and it says which file and why", (t) => {
    const dir = copy(t, "pending-map");
    const file = path.join(dir, "routes", "oauth.js");
    // The file has a helper of its own with the name the edit binds: the edit would redeclare it.
    fs.appendFileSync(file, "function consumePendingAuthorization(state) {\n  return state;\n}\n");
    const before = snapshot(dir);
    const result = fix(dir);
    assert.match(result.error, /^routes\/oauth\.js would not parse after the edits \(Identifier 'consumePendingAuthorization' has already been declared/);
    assert.match(result.error, /nothing was written/);
    assert.deepEqual(snapshot(dir), before);
    const r = cli("doctor", "--fix", dir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /would not parse/);
    assert.deepEqual(snapshot(dir), before);
  });
});

describe("doctor on a file that does not parse", () => {
  it("reports file, line, column and message; never ready; --fix edits the rest and still does not say ready", (t) => {
    const dir = copy(t, "no-closedb");
    // `await` in a handler that is not async: the real server's token route, as stored.
    fs.writeFileSync(path.join(dir, "routes.js"), [
      'const { getAccessToken } = require("./utils/tokenStorage");',
      "module.exports = (req, res) => {",
      "  const result = getAccessToken(req.query.token);",
      "  const data = result instanceof Promise ? await result : result;",
      "  res.json(data);",
      "};",
      "",
    ].join("\n"));
    const result = doctor(dir);
    assert.equal(result.ready, false);
    const broken = result.findings.find((f) => f.check === "parse-error");
    assert.deepEqual([broken.severity, broken.file, broken.line, broken.column], ["blocks", "routes.js", 4, 50]);
    assert.match(broken.problem, /does not parse: .+ \(line 4, column 50\)/);
    const r = cli("doctor", "--fix", dir);
    assert.equal(r.status, 1, r.stdout);
    assert.match(r.stdout, /changed 1 file/);
    assert.match(r.stdout, /^routes\.js:4: does not parse/m);
    assert.doesNotMatch(r.stdout, /ready for native-token-storage/);
  });
});

describe("doctor skips what is not a regular readable file of sane size, and says so", () => {
  it("a .env folder, a .env named pipe, a package.json that is a link to /dev/zero, a source too large", { skip: process.platform === "win32" }, (t) => {
    const dir = copy(t, "old-db-location");
    fs.rmSync(path.join(dir, "package.json"));
    fs.symlinkSync("/dev/zero", path.join(dir, "package.json"));
    fs.mkdirSync(path.join(dir, ".env"));
    execFileSync("mkfifo", [path.join(dir, ".env.local")]);
    fs.writeFileSync(path.join(dir, "server", "bundle.js"), `// ${"x".repeat(2 << 20)}\n`);
    const started = Date.now();
    const r = cli("doctor", "--json", dir);
    assert.ok(Date.now() - started < 20_000, "no hang on the pipe");
    assert.equal(r.status, 0, r.stderr);
    const { skipped } = JSON.parse(r.stdout);
    const reasons = Object.fromEntries(skipped.map((s) => [s.file, s.reason]));
    assert.match(reasons["package.json"], /^a device, not a file$/);
    assert.match(reasons[".env"], /^a folder, not a file$/);
    assert.match(reasons[".env.local"], /^a named pipe, not a file$/);
    assert.match(reasons["server/bundle.js"], /^larger than 1048576 bytes$/);
    const text = cli("doctor", dir);
    assert.match(text.stdout, /^Skipped \(4\)$/m);
    assert.match(text.stdout, /^ {2}\.env\.local: a named pipe, not a file$/m);
  });

  it("a sub-folder that cannot be read (EACCES), as a user other than root (root reads it anyway)", { skip: process.platform === "win32" }, (t) => {
    const dir = copy(t, "no-closedb");
    fs.chmodSync(dir, 0o755);
    fs.mkdirSync(path.join(dir, "private"));
    fs.writeFileSync(path.join(dir, "private", "secret.js"), "module.exports = 1;\n");
    fs.chmodSync(path.join(dir, "private"), 0o000);
    t.after(() => fs.rmSync(path.join(dir, "private"), { recursive: true, force: true }));
    // Root is not refused by permissions: run doctor as "nobody" then (the repository must be readable by it).
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    // The package from a copy "nobody" can read: a clone may sit in a folder only its owner can.
    const bin = asNobody.uid === undefined ? BIN : path.join(readableCopy(), "bin", "native-token-storage.js");
    const r = spawnSync(process.execPath, [bin, "doctor", "--json", dir], { encoding: "utf8", cwd: os.tmpdir(), ...asNobody });
    if (r.error?.code === "EPERM" || /EACCES/.test(r.stderr ?? "") && !r.stdout) {
      // Without the permission to change users, the same failure is simulated on the function.
      const readdir = fs.readdirSync;
      t.mock.method(fs, "readdirSync", (p, ...rest) => {
        if (p === path.join(dir, "private")) throw Object.assign(new Error("EACCES: permission denied"), { code: "EACCES" });
        return readdir(p, ...rest);
      });
      assert.deepEqual(doctor(dir).skipped, [{ file: "private", reason: "a folder that cannot be read (EACCES)" }]);
      return;
    }
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).skipped, [{ file: "private", reason: "a folder that cannot be read (EACCES)" }]);
  });
});
