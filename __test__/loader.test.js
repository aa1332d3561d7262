"use strict";
// lib/native.js, the addon loader, run from a copy in a scratch package folder: the platform
// package first, else a local build, else ERR_TOKEN_STORAGE_NOT_BUILT naming the platform,
// each place looked at and the two ways out, never a MODULE_NOT_FOUND stack.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const ROOT = path.join(__dirname, "..");
const BUILT = path.join(ROOT, "native_token_storage.node"); // `npm test` builds it first

/** napi-rs's name for this platform, as the loader computes it (asked of the loader's own copy). */
function platformOf(dir) {
  const r = load(dir);
  return r.platform;
}

/** A scratch package folder holding lib/native.js, plus whatever `layout` adds. */
function scratch(t, layout = () => {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nts-loader-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, "lib"));
  for (const name of ["native.js", "errors.js"]) fs.copyFileSync(path.join(ROOT, "lib", name), path.join(dir, "lib", name));
  layout(dir);
  return dir;
}

/** Requires the copy in a child process; what it exported or threw. */
function load(dir) {
  const script = `
    try {
      const m = require(${JSON.stringify(path.join(dir, "lib", "native.js"))});
      const file = Object.keys(require.cache).find((k) => k.endsWith(".node"));
      console.log(JSON.stringify({ loaded: true, file, sqlite: typeof m.sqliteVersion === "function" ? m.sqliteVersion() : null }));
    } catch (e) {
      console.log(JSON.stringify({ loaded: false, name: e.name, code: e.code, message: e.message, platform: e.platform, packageName: e.packageName, cause: e.cause && e.cause.message }));
    }`;
  const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

function platformPackage(dir, platform, binary) {
  const pkgDir = path.join(dir, "node_modules", `native-token-storage-${platform}`);
  const file = `native_token_storage.${platform}.node`;
  fs.mkdirSync(pkgDir, { recursive: true });
  fs.writeFileSync(path.join(pkgDir, "package.json"), JSON.stringify({ name: `native-token-storage-${platform}`, version: "0.0.0", main: file }));
  if (binary) binary(path.join(pkgDir, file));
  return path.join(pkgDir, file);
}

test("no addon anywhere: ERR_TOKEN_STORAGE_NOT_BUILT naming the platform, what was looked for and the two ways out", (t) => {
  const dir = scratch(t);
  const r = load(dir);
  assert.equal(r.loaded, false);
  assert.equal(r.code, "ERR_TOKEN_STORAGE_NOT_BUILT");
  assert.equal(r.name, "TokenStorageError");
  assert.match(r.platform, /^(linux-(x64|arm64|arm|ia32)-(gnu|musl)|darwin-(x64|arm64)|win32-\w+-msvc|\w+-\w+)$/);
  assert.equal(r.packageName, `native-token-storage-${r.platform}`);
  assert.ok(r.message.includes(`(${r.platform}, Node ${process.version})`), r.message);
  assert.ok(r.message.includes(`the package native-token-storage-${r.platform}: not installed`), r.message);
  assert.ok(r.message.includes(`${path.join(dir, "native_token_storage.node")}: not there`), r.message);
  assert.ok(r.message.includes("npm install native-token-storage"), r.message);
  assert.ok(r.message.includes("`npm run build`") && r.message.includes("cargo"), r.message);
  assert.doesNotMatch(r.message, /MODULE_NOT_FOUND|Require stack/);
});

test("the platform package is preferred to a local build", (t) => {
  const platform = platformOf(scratch(t));
  let expected;
  const dir = scratch(t, (d) => {
    expected = platformPackage(d, platform, (file) => fs.copyFileSync(BUILT, file));
    fs.copyFileSync(BUILT, path.join(d, "native_token_storage.node"));
  });
  const r = load(dir);
  assert.equal(r.loaded, true, JSON.stringify(r));
  assert.equal(r.file, expected);
  assert.match(r.sqlite, /^3\./);
});

test("without the platform package, the local build (npm run build) is loaded", (t) => {
  const dir = scratch(t, (d) => fs.copyFileSync(BUILT, path.join(d, "native_token_storage.node")));
  const r = load(dir);
  assert.equal(r.loaded, true, JSON.stringify(r));
  assert.equal(r.file, path.join(dir, "native_token_storage.node"));
});

test("a platform package whose binary does not load is reported with its load error, and the local build still serves", (t) => {
  const platform = platformOf(scratch(t));
  const broken = scratch(t, (d) => platformPackage(d, platform, (file) => fs.writeFileSync(file, "not a shared library")));
  const r = load(broken);
  assert.equal(r.loaded, false);
  assert.equal(r.code, "ERR_TOKEN_STORAGE_NOT_BUILT");
  assert.ok(r.message.includes(`the package native-token-storage-${platform} (`) && r.message.includes("did not load: "), r.message);
  assert.ok(r.cause, "the load error is kept as the cause");

  const withLocal = scratch(t, (d) => {
    platformPackage(d, platform, (file) => fs.writeFileSync(file, "not a shared library"));
    fs.copyFileSync(BUILT, path.join(d, "native_token_storage.node"));
  });
  const ok = load(withLocal);
  assert.equal(ok.loaded, true, JSON.stringify(ok));
  assert.equal(ok.file, path.join(withLocal, "native_token_storage.node"));
});

test("a platform package installed without its .node file is told apart from one not installed", (t) => {
  const platform = platformOf(scratch(t));
  const dir = scratch(t, (d) => platformPackage(d, platform, null));
  const r = load(dir);
  assert.equal(r.code, "ERR_TOKEN_STORAGE_NOT_BUILT");
  assert.ok(r.message.includes(`native-token-storage-${platform}: installed, but without its .node file`), r.message);
});
