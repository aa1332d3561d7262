#!/usr/bin/env node
"use strict";
// Builds the native addon with cargo and copies it to the name index.js loads.
// Used as the package's `install` script (with --if-missing) and by `npm run build`.
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const target = path.join(root, "native_token_storage.node");
const ifMissing = process.argv.includes("--if-missing");

if (ifMissing && fs.existsSync(target)) process.exit(0);

// npm hides install-script output unless it fails; this line shows up with --foreground-scripts.
console.log("native-token-storage: building the native addon with cargo (release); this takes about a minute the first time");

const cargo = process.env.CARGO || "cargo";
const result = spawnSync(cargo, ["build", "--release", "--lib", "--quiet"], {
  cwd: root,
  stdio: "inherit",
  env: process.env,
});
if (result.error) {
  console.error(`native-token-storage: could not run cargo (${result.error.message}). Install Rust from https://rustup.rs and retry.`);
  process.exit(1);
}
if (result.status !== 0) {
  console.error(`native-token-storage: cargo build failed with exit code ${result.status}`);
  process.exit(result.status || 1);
}

const libNames = {
  linux: "libnative_token_storage.so",
  darwin: "libnative_token_storage.dylib",
  win32: "native_token_storage.dll",
};
const libName = libNames[process.platform];
if (!libName) {
  console.error(`native-token-storage: unsupported platform ${process.platform}`);
  process.exit(1);
}
const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(root, process.env.CARGO_TARGET_DIR)
  : path.join(root, "target");
const built = path.join(targetDir, "release", libName);
// Copy to a temp name and rename, so a process loading the addon never sees half a file.
const tmp = `${target}.${process.pid}.tmp`;
fs.copyFileSync(built, tmp);
fs.renameSync(tmp, target);
