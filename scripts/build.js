#!/usr/bin/env node
"use strict";
// Builds the native addon from source with cargo and puts it where lib/native.js looks for a
// local build: native_token_storage.node in the package folder.
//
//   node scripts/build.js [--if-missing] [cargo options]   (`npm run build`; `prepare` in a clone uses --if-missing)
//
// Other options go to `cargo build` as they are: `npm run build -- --no-default-features`
// builds the addon without the PostgreSQL store (smaller, and faster to build: no tokio, no rustls).
//
// One output path for every release build: cargo's --target <host triple>, so the library
// lands in <target dir>/<triple>/release/, where `napi build --platform --release` puts it too.
// In a clone the target dir is ./target (kept, so rebuilds are incremental). Inside an
// installed package (a path under node_modules/) it is a temporary folder, removed afterwards,
// so only the built addon (a few MB) stays behind, not cargo's ~150 MB of intermediate files.
// CARGO_TARGET_DIR, when set, is used as it is and kept.
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "..");
const OUTPUT = path.join(ROOT, "native_token_storage.node");
const LIBRARY = { linux: "libnative_token_storage.so", darwin: "libnative_token_storage.dylib", win32: "native_token_storage.dll" };

function fail(message, status = 1) {
  console.error(`native-token-storage: ${message}`);
  process.exit(status);
}

if (process.argv.includes("--if-missing") && fs.existsSync(OUTPUT)) process.exit(0);

const libName = LIBRARY[process.platform];
if (!libName) fail(`building from source is not supported on ${process.platform}`);

// The host triple, from rustc: the same default `napi build` uses.
const rustc = spawnSync(process.env.RUSTC || "rustc", ["-vV"], { encoding: "utf8" });
if (rustc.error || rustc.status !== 0) {
  fail(
    `cannot build the addon from source: Rust is not installed (running rustc failed: ${rustc.error ? rustc.error.message : rustc.stderr.trim()}). ` +
      "Install Rust from https://rustup.rs and run `npm run build` again, or install the package on a platform that has a prebuilt binary (see the README).",
  );
}
const triple = /^host: (\S+)$/m.exec(rustc.stdout)[1];

const installed = ROOT.split(path.sep).includes("node_modules");
const ownTargetDir = !process.env.CARGO_TARGET_DIR && installed;
const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR)
  : installed
    ? fs.mkdtempSync(path.join(os.tmpdir(), "native-token-storage-build-"))
    : path.join(ROOT, "target");
if (ownTargetDir) {
  // On every way out: success, a failed build, Ctrl-C.
  process.on("exit", () => fs.rmSync(targetDir, { recursive: true, force: true }));
  for (const signal of ["SIGINT", "SIGTERM"]) process.once(signal, () => process.exit(130));
}

console.log(
  `native-token-storage: building the native addon from source with cargo (release, ${triple}); ` +
    "from clean this takes about 2 minutes on 2 cores (it compiles a bundled SQLite with link-time optimization), seconds when only this crate changed. " +
    (ownTargetDir ? `Build files go to ${targetDir}, removed afterwards.` : `Build files in ${targetDir}.`),
);

const env = { ...process.env, CARGO_TARGET_DIR: targetDir };
// Rust links musl statically by default, and then makes no cdylib: `napi build` adds this flag too.
if (triple.includes("musl") && !/crt-static/.test(env.RUSTFLAGS || "")) env.RUSTFLAGS = `${env.RUSTFLAGS || ""} -C target-feature=-crt-static`.trim();
const started = Date.now();
const cargoOptions = process.argv.slice(2).filter((a) => a !== "--if-missing");
const cargo = spawnSync(process.env.CARGO || "cargo", ["build", "--release", "--lib", "--target", triple, ...cargoOptions], { cwd: ROOT, stdio: "inherit", env });
if (cargo.error) fail(`could not run cargo (${cargo.error.message}). Install Rust from https://rustup.rs and retry.`);
if (cargo.status !== 0) fail(`cargo build failed with exit code ${cargo.status ?? cargo.signal}`, cargo.status || 1);
// Copy to a temp name and rename, so a process loading the addon never sees half a file.
const tmp = `${OUTPUT}.${process.pid}.tmp`;
fs.copyFileSync(path.join(targetDir, triple, "release", libName), tmp);
fs.renameSync(tmp, OUTPUT);
console.log(`native-token-storage: built ${OUTPUT} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
