"use strict";
// doctor's expiry for stored tokens: a row that carries a refresh token gets the grant's
// lifetime (the refresh token lives as long as the row), taken from a lifetime the server
// already exports (REFRESH_TOKEN_EXPIRY…) when its unit is clear, and by hand otherwise; never
// the access token's expires_in. A row without a refresh token keeps the access token's
// expires_in. The jwt-server fixture (doctor-fix.test.js) runs the fixed flows.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { doctor, fix } = require("../lib/doctor");

/** A server in a temporary folder: a Map token module, a jwt module of `jwt` text, and server.js of `server` text. */
function server(t, { jwt, server: main }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nts-doctor-expiry-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, "utils"));
  fs.writeFileSync(path.join(dir, "utils", "tokenStorage.js"), 'module.exports = require("native-token-storage");\n');
  if (jwt !== undefined) fs.writeFileSync(path.join(dir, "utils", "jwt.js"), jwt);
  fs.writeFileSync(path.join(dir, "server.js"), main);
  return dir;
}

/** server.js: a code exchange that stores `refresh` as the refresh token, with `jwtRequire` as its binding to utils/jwt. */
const exchange = ({ jwtRequire = 'const { sign } = require("./utils/jwt");', refresh = "refreshToken", expiresIn = 3600 } = {}) => [
  'const { storeAccessToken, closeDB } = require("./utils/tokenStorage");',
  jwtRequire,
  'process.on("SIGTERM", () => { closeDB(); process.exit(0); });',
  "function exchange(req, res, data) {",
  "  const accessToken = sign(data.userId);",
  '  const refreshToken = "r" + Math.random();',
  `  storeAccessToken(accessToken, ${refresh}, data.apiKey, data.userId, data.clientId, data.scopes);`,
  `  res.json({ access_token: accessToken, refresh_token: refreshToken, token_type: "Bearer"${expiresIn === null ? "" : `, expires_in: ${expiresIn}`} });`,
  "}",
  "module.exports = { exchange };",
  "",
].join("\n");

const noExpiry = (dir) => doctor(dir).findings.filter((f) => f.check === "no-expiry");
const fixedServer = (dir) => {
  assert.equal(fix(dir).error, null);
  return fs.readFileSync(path.join(dir, "server.js"), "utf8");
};

describe("doctor's expiry for a stored row that carries a refresh token", () => {
  it("REFRESH_TOKEN_EXPIRY in seconds (parseInt(env) || 86400 * 30), destructured: added to the require, times 1000", (t) => {
    const dir = server(t, {
      jwt: "const sign = (u) => u;\nconst REFRESH_TOKEN_EXPIRY = parseInt(process.env.REFRESH_TOKEN_EXPIRY) || 86400 * 30; // 30 days\nmodule.exports = { sign, REFRESH_TOKEN_EXPIRY };\n",
      server: exchange(),
    });
    const [finding] = noExpiry(dir);
    assert.equal(finding.fixable, true);
    assert.match(finding.why, /carries its refresh token, which lives only as long as that row/);
    assert.match(finding.why, /\(expires_in: 3600\), every refresh token would be gone when the access token expires/);
    const text = fixedServer(dir);
    assert.match(text, /^const \{ sign, REFRESH_TOKEN_EXPIRY \} = require\("\.\/utils\/jwt"\);$/m);
    assert.match(text, /data\.scopes, new Date\(Date\.now\(\) \+ REFRESH_TOKEN_EXPIRY \* 1000\)\);/);
    assert.deepEqual(noExpiry(dir), []);
  });

  it("a lifetime in milliseconds (30 * 24 * 60 * 60 * 1000), through a namespace: no factor of 1000 added", (t) => {
    const dir = server(t, {
      jwt: "exports.sign = (u) => u;\nexports.REFRESH_TOKEN_TTL_MS = 30 * 24 * 60 * 60 * 1000;\n",
      server: exchange({ jwtRequire: 'const jwt = require("./utils/jwt");\nconst { sign } = jwt;' }),
    });
    assert.match(fixedServer(dir), /data\.scopes, new Date\(Date\.now\(\) \+ jwt\.REFRESH_TOKEN_TTL_MS\)\);/);
  });

  it("a name that says seconds (REFRESH_TOKEN_LIFETIME_SECONDS = 2592000) is taken at its word", (t) => {
    const dir = server(t, {
      jwt: "const sign = (u) => u;\nconst REFRESH_TOKEN_LIFETIME_SECONDS = 2592000;\nmodule.exports = { sign, REFRESH_TOKEN_LIFETIME_SECONDS };\n",
      server: exchange(),
    });
    assert.match(fixedServer(dir), /new Date\(Date\.now\(\) \+ REFRESH_TOKEN_LIFETIME_SECONDS \* 1000\)/);
  });

  it("a unit doctor cannot tell (REFRESH_TOKEN_EXPIRY = 2592000): no edit, By hand guidance that says why, never expires_in", (t) => {
    const dir = server(t, {
      jwt: "const sign = (u) => u;\nconst REFRESH_TOKEN_EXPIRY = 2592000;\nmodule.exports = { sign, REFRESH_TOKEN_EXPIRY };\n",
      server: exchange(),
    });
    const before = fs.readFileSync(path.join(dir, "server.js"), "utf8");
    const [finding] = noExpiry(dir);
    assert.equal(finding.fixable, false);
    assert.deepEqual(finding.diff, []);
    assert.match(finding.byHand, /the grant's lifetime as storeAccessToken's 7th argument at line 7/);
    assert.match(finding.byHand, /not the access token's expires_in \(3600\)/);
    assert.match(finding.byHand, /carries its refresh token, which lives only as long as that row/);
    assert.match(finding.byHand, /REFRESH_TOKEN_EXPIRY of \.\/utils\/jwt is there, but doctor cannot tell whether it counts seconds or milliseconds \(2592000\)/);
    assert.equal(fixedServer(dir), before, "nothing written to server.js");
  });

  it("a name and a value that disagree (…_SECONDS = 30 * 86400 * 1000): by hand", (t) => {
    const dir = server(t, {
      jwt: "exports.sign = (u) => u;\nexports.REFRESH_TOKEN_TTL_SECONDS = 30 * 86400 * 1000;\n",
      server: exchange(),
    });
    const [finding] = noExpiry(dir);
    assert.equal(finding.fixable, false);
    assert.match(finding.byHand, /cannot tell whether it counts seconds or milliseconds/);
  });

  it("no lifetime exported anywhere: by hand, with the grant's lifetime as the example, not expires_in", (t) => {
    const dir = server(t, { jwt: "exports.sign = (u) => u;\n", server: exchange() });
    const [finding] = noExpiry(dir);
    assert.equal(finding.fixable, false);
    assert.match(finding.byHand, /e\.g\. new Date\(Date\.now\(\) \+ 30 \* 86400 \* 1000\) for refresh tokens that live 30 days, not the access token's expires_in \(3600\)/);
    assert.doesNotMatch(finding.byHand, /3600 \* 1000/);
  });

  it("the file has a REFRESH_TOKEN_EXPIRY of its own: no second binding, by hand", (t) => {
    const dir = server(t, {
      jwt: "const sign = (u) => u;\nconst REFRESH_TOKEN_EXPIRY = 86400 * 30;\nmodule.exports = { sign, REFRESH_TOKEN_EXPIRY };\n",
      server: exchange().replace("function exchange", "const REFRESH_TOKEN_EXPIRY = 7;\nfunction exchange"),
    });
    const [finding] = noExpiry(dir);
    assert.equal(finding.fixable, false);
    assert.match(finding.byHand, /the file has a REFRESH_TOKEN_EXPIRY of its own/);
  });
});

describe("doctor's expiry for a stored row without a refresh token", () => {
  for (const refresh of ["null", "undefined", '""']) {
    it(`storeAccessToken(…, ${refresh}, …): the access token's expires_in, even with a REFRESH_TOKEN_EXPIRY exported`, (t) => {
      const dir = server(t, {
        jwt: "const sign = (u) => u;\nconst REFRESH_TOKEN_EXPIRY = 86400 * 30;\nmodule.exports = { sign, REFRESH_TOKEN_EXPIRY };\n",
        server: exchange({ refresh }),
      });
      const [finding] = noExpiry(dir);
      assert.equal(finding.fixable, true);
      assert.equal(finding.fix, "Give it the expiry the response announces (expires_in: 3600):");
      assert.doesNotMatch(finding.why, /refresh token/);
      const text = fixedServer(dir);
      assert.match(text, /data\.scopes, new Date\(Date\.now\(\) \+ 3600 \* 1000\)\);/);
      assert.match(text, /^const \{ sign \} = require\("\.\/utils\/jwt"\);$/m, "the require is left as it was");
    });
  }
});

describe("the refresh grant's rotation and the grant's lifetime", () => {
  const grant = (jwtRequire) => [
    'const { getRefreshToken, storeAccessToken, revokeRefreshToken, closeDB } = require("./utils/tokenStorage");',
    jwtRequire,
    'process.on("SIGTERM", () => { closeDB(); process.exit(0); });',
    "function refresh(req, res) {",
    "  const data = getRefreshToken(req.body.refresh_token);",
    '  if (!data) return res.status(400).json({ error: "invalid_grant" });',
    "  const accessToken = sign(data.userId);",
    '  const refreshToken = "r" + Math.random();',
    '  storeAccessToken(accessToken, refreshToken, "key", data.userId, data.clientId, data.scopes);',
    "  revokeRefreshToken(req.body.refresh_token);",
    '  res.json({ access_token: accessToken, refresh_token: refreshToken, token_type: "Bearer", expires_in: 3600 });',
    "}",
    "module.exports = { refresh };",
    "",
  ].join("\n");

  it("the mint's expiresAt is the exported lifetime (namespace), not expires_in", (t) => {
    const dir = server(t, {
      jwt: "exports.sign = (u) => u;\nexports.REFRESH_TOKEN_EXPIRY = parseInt(process.env.REFRESH_TOKEN_EXPIRY, 10) || 60 * 60 * 24 * 30;\n",
      server: grant('const jwt = require("./utils/jwt");\nconst { sign } = jwt;'),
    });
    const [finding] = doctor(dir).findings;
    assert.equal(finding.check, "refresh-grant");
    assert.match(finding.fix, /the grant's lifetime \(REFRESH_TOKEN_EXPIRY of \.\/utils\/jwt\), not the access token's expires_in/);
    assert.match(fixedServer(dir), /expiresAt: new Date\(Date\.now\(\) \+ jwt\.REFRESH_TOKEN_EXPIRY \* 1000\),/);
  });

  it("with a lifetime of unclear unit: the rotation keeps no expiry (as the store had), and says to give it the grant's, not expires_in", (t) => {
    const dir = server(t, {
      jwt: 'const sign = (u) => u;\nconst REFRESH_TOKEN_EXPIRY = "30d";\nmodule.exports = { sign, REFRESH_TOKEN_EXPIRY };\n',
      server: grant('const { sign } = require("./utils/jwt");'),
    });
    const [finding] = doctor(dir).findings;
    assert.match(finding.fix, /give them the grant's lifetime as expiresAt .*, not the access token's expires_in \(3600\)/);
    assert.match(finding.fix, /REFRESH_TOKEN_EXPIRY of \.\/utils\/jwt is there, but doctor cannot tell whether it counts seconds or milliseconds \("30d"\)/);
    const text = fixedServer(dir);
    assert.match(text, /expiresAt: null,/);
    assert.doesNotMatch(text, /3600 \* 1000/);
  });
});
