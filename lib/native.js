"use strict";
// Loads the native addon, by napi-rs's conventions:
//   1. the platform package (`native-token-storage-linux-x64-gnu` and the like), an optional
//      dependency that npm and pnpm install only on the platform it was built for;
//   2. else an addon built from source in the package folder (`npm run build`, a clone of
//      the repository): `native_token_storage.node`, or napi's `native_token_storage.<platform>.node`;
//   3. else an Error with code ERR_TOKEN_STORAGE_NOT_BUILT naming the platform, what was looked
//      for, and the two ways out. Never a bare MODULE_NOT_FOUND stack.
// Exports the napi module object itself.
const fs = require("node:fs");
const path = require("node:path");
const { TokenStorageError } = require("./errors");

// The addon is required as from a module of its own, not from this one: Node keeps a cached
// module's parent for as long as it stays cached, and the addon stays cached for good, so
// through this module it would hold every copy of the package ever loaded (and each copy's
// memory store) after require.cache forgot them.
const requireAddon = require("node:module").createRequire(__filename);

const ROOT = path.join(__dirname, "..");
const PACKAGE = "native-token-storage";
const BINARY = "native_token_storage";

/** glibc or musl, as napi-rs's own loader decides it. */
function isMusl() {
  try {
    return fs.readFileSync("/usr/bin/ldd", "utf8").includes("musl");
  } catch {
    // no /usr/bin/ldd: ask Node which C library it runs on
  }
  try {
    process.report.excludeNetwork = true;
    const report = process.report.getReport();
    if (report.header && report.header.glibcVersionRuntime) return false;
    return Array.isArray(report.sharedObjects) && report.sharedObjects.some((f) => f.includes("libc.musl-") || f.includes("ld-musl-"));
  } catch {
    return false;
  }
}

/** napi-rs's name for this platform: linux-x64-gnu, linux-arm64-musl, darwin-arm64, win32-x64-msvc… */
function platformName(platform = process.platform, arch = process.arch) {
  if (platform === "linux") return `linux-${arch}-${isMusl() ? "musl" : "gnu"}`;
  if (platform === "win32") return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

/** The first line of an error's message, without Node's "Require stack:" list. */
const firstLine = (err) => String((err && err.message) || err).split("\n")[0];

function load() {
  const platform = platformName();
  const pkg = `${PACKAGE}-${platform}`;
  const tried = []; // what was looked for, and what became of it
  const failures = []; // errors of addons that exist but did not load

  // 1. The platform package. Resolved first, so a package that is simply not installed (npm
  // skipped it for another os, cpu or libc, or it was never published for this platform)
  // is told apart from one that is there but fails to load.
  let resolved = null;
  try {
    resolved = require.resolve(pkg);
  } catch (err) {
    if (err.code !== "MODULE_NOT_FOUND") throw err;
    let installed = false;
    try {
      require.resolve(`${pkg}/package.json`);
      installed = true;
    } catch {
      // not installed
    }
    tried.push(`the package ${pkg}: ${installed ? "installed, but without its .node file" : "not installed"}`);
  }
  if (resolved) {
    try {
      return requireAddon(resolved);
    } catch (err) {
      failures.push(err);
      tried.push(`the package ${pkg} (${resolved}): did not load: ${firstLine(err)}`);
    }
  }

  // 2. An addon built from source in the package folder.
  for (const name of [`${BINARY}.node`, `${BINARY}.${platform}.node`]) {
    const file = path.join(ROOT, name);
    if (!fs.existsSync(file)) {
      tried.push(`${file}: not there`);
      continue;
    }
    try {
      return requireAddon(file);
    } catch (err) {
      failures.push(err);
      tried.push(`${file}: did not load: ${firstLine(err)}`);
    }
  }

  const e = new TokenStorageError(
    `native-token-storage: no native addon that loads on this platform (${platform}, Node ${process.version}). Looked for:\n` +
      tried.map((line) => `  - ${line}\n`).join("") +
      "Two ways out:\n" +
      `  1. install the package with its platform package: \`npm install ${PACKAGE}\` without --omit=optional or --no-optional ` +
      `brings ${pkg} where one is published (see the README's Installing section for the platforms);\n` +
      `  2. build the addon from source: \`npm run build\` in ${ROOT} (needs Rust's cargo, https://rustup.rs; about 2 minutes on 2 cores).`,
    "ERR_TOKEN_STORAGE_NOT_BUILT",
  );
  e.platform = platform;
  e.packageName = pkg;
  if (failures.length) e.cause = failures[0];
  throw e;
}

module.exports = load();
