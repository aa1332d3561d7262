"use strict";
// ES modules: `import { getAccessToken } from "native-token-storage"` (and from /promises
// and /clients) gives the same functions as require. Node finds a CommonJS module's named
// exports by reading its source, so index.js lists them by name.
const { it } = require("node:test");
const assert = require("node:assert/strict");
const { spawnSync } = require("node:child_process");
const { PKG, cleanEnv } = require("./helpers/setup");

it("every export of each entry point can be imported by name from an ES module", () => {
  const entries = { "": require(PKG), "/promises": require(`${PKG}/promises.js`), "/clients": require(`${PKG}/clients.js`) };
  for (const [sub, cjs] of Object.entries(entries)) {
    const names = Object.keys(cjs);
    const code = `import { ${names.join(", ")} } from "native-token-storage${sub}";
      import * as all from "native-token-storage${sub}";
      console.log(JSON.stringify([${names.map((n) => `typeof ${n}`).join(", ")}, Object.keys(all).filter((k) => k !== "default").sort()]));`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", code], { cwd: PKG, env: cleanEnv(), encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    const listed = out.pop();
    assert.deepEqual(out, names.map((n) => typeof cjs[n]), sub);
    assert.deepEqual(listed, [...names].sort(), `${sub}: import * lists every export`);
  }
});
