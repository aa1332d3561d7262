"use strict";
// index.d.ts: compiles a usage file that touches every export (with @ts-expect-error lines
// that must fail), declares exactly what index.js exports, and uses no `any` or bare `object`.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { PKG } = require("./helpers/setup");

const DTS = fs.readFileSync(path.join(PKG, "index.d.ts"), "utf8");
/** index.d.ts without comments. */
const CODE = DTS.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");

describe("index.d.ts", () => {
  it("compiles __test__/types/usage.ts with tsc --noEmit --strict", () => {
    const r = spawnSync("npx", ["--no", "--", "tsc", "-p", path.join(__dirname, "types", "tsconfig.json"), "--noEmit", "--strict"], {
      cwd: PKG,
      encoding: "utf8",
      timeout: 120000,
    });
    assert.equal(r.error, undefined);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  });

  it("declares every runtime export and nothing that is not exported", () => {
    const declared = new Set([...CODE.matchAll(/export declare (?:const|function|class) (\w+)/g)].map((m) => m[1]));
    const runtime = new Set(Object.keys(require(PKG)));
    assert.deepEqual([...declared].sort(), [...runtime].sort());
  });

  // promises.d.ts and clients.d.ts (made from index.d.ts's declarations, `export =`) are
  // checked against their modules by operations-table.test.js, with TypeScript's checker.

  it("every declared export is used by usage.ts", () => {
    const usage = fs.readFileSync(path.join(__dirname, "types", "usage.ts"), "utf8");
    const exported = [...CODE.matchAll(/export (?:declare )?(?:const|function|class|interface|type) (\w+)/g)].map((m) => m[1]);
    for (const name of exported) assert.match(usage, new RegExp(`\\b${name}\\b`), name);
  });

  it("uses no any and no bare object or Function", () => {
    assert.doesNotMatch(CODE, /\bany\b/);
    assert.doesNotMatch(CODE, /:\s*object\b|<object>|\bObject\b|\bFunction\b/);
  });
});
