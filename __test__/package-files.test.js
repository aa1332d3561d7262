"use strict";
// What a release publishes: the tarballs `npm run release:pack` writes, listed with
// `npm pack --dry-run --json`. Nothing large or stray ships (no target/, no .node file in the
// main package, no databases, no source maps), and the main package has no install script.
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { releasePack } = require("../scripts/release-pack");

const ROOT = path.join(__dirname, "..");
const pkg = require("../package.json");
const NPM = process.platform === "win32" ? "npm.cmd" : "npm";
const STRAY = [/(^|\/)target\//, /(^|\/)node_modules\//, /\.db(-wal|-shm|-journal)?$/, /\.map$/, /\.tgz$/, /\.log$/, /(^|\/)\./];

let out;
let packed;
before(() => {
  out = fs.mkdtempSync(path.join(os.tmpdir(), "nts-package-files-"));
  packed = releasePack({ outDir: out, log: () => {} });
});
after(() => fs.rmSync(out, { recursive: true, force: true }));

/** `npm pack --dry-run --json` of a tarball: its file list and sizes. */
const list = (tarball) => JSON.parse(execFileSync(NPM, ["pack", "--dry-run", "--json", "--ignore-scripts", tarball], { cwd: out, encoding: "utf8" }))[0];
const manifest = (tarball) => JSON.parse(execFileSync("tar", ["-xzOf", tarball, "package/package.json"], { encoding: "utf8" }));

test("the main package holds the JS, the types and the Rust source, nothing else", () => {
  const info = list(packed.main);
  const files = info.files.map((f) => f.path).sort();
  const allowed = /^(index\.js|index\.d\.ts|promises\.js|promises\.d\.ts|clients\.js|clients\.d\.ts|mcp\.js|mcp\.mjs|mcp\.d\.ts|README\.md|docs\/[\w-]+\.md|package\.json|build\.rs|Cargo\.toml|Cargo\.lock|scripts\/build\.js|bin\/[\w-]+\.js|lib\/[\w/-]+\.js|src\/[\w/-]+\.rs)$/;
  for (const f of files) {
    assert.match(f, allowed, `unexpected file in the main package: ${f}`);
    for (const stray of STRAY) assert.doesNotMatch(f, stray, `stray file in the main package: ${f}`);
  }
  for (const needed of ["index.js", "index.d.ts", "clients.js", "clients.d.ts", "mcp.js", "mcp.mjs", "mcp.d.ts", "lib/mcp.js", "bin/native-token-storage.js", "lib/doctor/index.js", "lib/native.js", "lib/storage.js", "scripts/build.js", "Cargo.toml", "Cargo.lock", "src/lib.rs"]) {
    assert.ok(files.includes(needed), `${needed} is missing from the main package`);
  }
  assert.ok(!files.some((f) => f.endsWith(".node")), "the main package carries no binary: the platform packages do");
  // JS, types, docs and the Rust source without its tests (PostgreSQL, doctor, backups, the
  // operator's commands, encrypted backups, the sealing layer, the MCP provider, the grant
  // fields and encrypt/decrypt/rekey included): about 1,240 kB; with the Redis store (its
  // folder, 84 kB, and docs/redis.md) about 1,310 kB; with its cache, durability check and
  // command line, and PostgreSQL's migration 13, about 1,413 kB (1,446,553 bytes); with
  // migration 14 and the polling of a synchronous call (its tests kept out), 1,636,933
  // bytes; a guard against stray files.
  assert.ok(info.unpackedSize < 1700 * 1024, `main package unpacks to ${info.unpackedSize} bytes`);
});

test("the main package has no install script and lists every target's platform package", () => {
  const json = manifest(packed.main);
  assert.equal(json.version, pkg.version);
  for (const hook of ["preinstall", "install", "postinstall", "prepare", "prepublish"]) {
    assert.equal(json.scripts?.[hook], undefined, `the published package.json has a ${hook} script`);
  }
  assert.equal(json.scripts.build, "node scripts/build.js");
  assert.equal(json.devDependencies, undefined);
  // One dependency, for `doctor` (a JavaScript parser of its own with no dependencies); the addon needs none.
  assert.deepEqual(Object.keys(json.dependencies ?? {}), ["acorn"]);
  assert.equal(json.gypfile, undefined);
  assert.deepEqual(Object.keys(json.optionalDependencies).sort(), [
    "native-token-storage-darwin-arm64",
    "native-token-storage-darwin-x64",
    "native-token-storage-linux-arm64-gnu",
    "native-token-storage-linux-arm64-musl",
    "native-token-storage-linux-x64-gnu",
    "native-token-storage-linux-x64-musl",
    "native-token-storage-win32-x64-msvc",
  ]);
  for (const v of Object.values(json.optionalDependencies)) assert.equal(v, pkg.version);
});

test("the host's platform package holds its package.json, a README and the addon, for its os, cpu and libc only", () => {
  assert.equal(packed.platforms.length + packed.skipped.length, pkg.napi.targets.length);
  assert.ok(packed.platforms.length >= 1, "release-pack wrote no platform package");
  for (const { platform, file } of packed.platforms) {
    const info = list(file);
    const binary = `native_token_storage.${platform}.node`;
    assert.deepEqual(info.files.map((f) => f.path).sort(), ["README.md", binary, "package.json"]);
    assert.ok(info.unpackedSize < 12 * 1024 * 1024, `${platform} unpacks to ${info.unpackedSize} bytes`);
    const json = manifest(file);
    assert.equal(json.name, `native-token-storage-${platform}`);
    assert.equal(json.version, pkg.version);
    assert.equal(json.main, binary);
    assert.equal(json.scripts, undefined);
    const [osName, cpu, abi] = platform.split("-");
    assert.deepEqual(json.os, [osName]);
    assert.deepEqual(json.cpu, [cpu]);
    if (osName === "linux") assert.deepEqual(json.libc, [abi === "musl" ? "musl" : "glibc"]);
  }
});

test("the repository's own folder packs the same file list (what release-pack copies)", () => {
  const info = JSON.parse(execFileSync(NPM, ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: ROOT, encoding: "utf8" }))[0];
  const fromRepo = info.files.map((f) => f.path).sort();
  const fromTarball = list(packed.main).files.map((f) => f.path).sort();
  assert.deepEqual(fromTarball, fromRepo);
});

test("a glibc Linux platform package's addon needs glibc 2.17 at most (as read by readelf too)", (t) => {
  const { maxGlibcVersion, compareVersions } = require("../scripts/glibc");
  const gnu = packed.platforms.filter((p) => /^linux-.*-gnu$/.test(p.platform));
  if (!gnu.length) return; // this machine packs no glibc binary (release-pack says why in packed.skipped)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nts-package-glibc-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const { platform, file } of gnu) {
    // The binary as a user gets it: out of the tarball.
    execFileSync("tar", ["-xzf", file, "-C", dir, `package/native_token_storage.${platform}.node`]);
    const binary = path.join(dir, "package", `native_token_storage.${platform}.node`);
    const needed = maxGlibcVersion(binary);
    assert.ok(needed, `${platform}: no GLIBC_ version found in ${binary}`);
    assert.ok(compareVersions(needed, "2.17") <= 0, `${platform}: the packed addon needs GLIBC_${needed}, so it fails to load where glibc is older (node:20-bullseye has 2.31, Ubuntu 20.04 2.31, RHEL 8 2.28); it must need at most GLIBC_2.17`);
    // binutils' readelf (installed wherever gcc is, which building the addon needs) agrees.
    const readelf = execFileSync("readelf", ["-V", "-W", binary], { encoding: "utf8" });
    const byReadelf = [...readelf.matchAll(/Name: GLIBC_(\d+(?:\.\d+)+)/g)].map((m) => m[1]).sort(compareVersions).pop();
    assert.equal(needed, byReadelf);
  }
});
