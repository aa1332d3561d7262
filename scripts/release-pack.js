#!/usr/bin/env node
"use strict";
// Writes every tarball a release publishes into one folder (default dist/):
//   - the main package native-token-storage-<version>.tgz: the JS, the types, the Rust source
//     (for `npm run build` where no prebuilt binary exists), no install script, and an
//     optionalDependencies entry for each target in package.json's `napi.targets`;
//   - one platform package per target whose binary is at hand, made by napi-rs's
//     `napi create-npm-dirs` (name native-token-storage-<platform>, with `os`, `cpu`, `libc`),
//     holding native_token_storage.<platform>.node.
//
//   node scripts/release-pack.js [--out DIR] [--artifacts DIR] [--no-build] [--require-all]
//
// The host's binary is built here, incremental: on x86_64 Linux with glibc (linux-x64-gnu) for
// glibc 2.17 with cargo zigbuild (scripts/zigbuild.js: Zig and cargo-zigbuild from PyPI, in a
// venv in the user's cache folder, installed the first time), as napi-rs's own packages are
// built, so it loads on older distributions than the build machine's; on any other host with
// scripts/build.js (cargo, for the host's own C library). The other targets' binaries come
// from the release workflow (.github/workflows/release.yml), which downloads its build jobs'
// artifacts into artifacts/ (any depth) before running this with --no-build --require-all.
// Run on a developer machine, only the host's platform package is written and the others are
// listed as skipped: they need their binaries from CI.
//
// Every linux-*-gnu binary packed, built here or not, must need no glibc newer than 2.17 (the
// highest GLIBC_ symbol version it was linked against, read from the ELF file by
// scripts/glibc.js): a binary that needs more is refused, not packed.
const { execFileSync, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { maxGlibcVersion, compareVersions } = require("./glibc");
const { buildGlibc217 } = require("./zigbuild");

const ROOT = path.resolve(__dirname, "..");
const NPM = process.platform === "win32" ? "npm.cmd" : "npm";
const BINARY = "native_token_storage";
/** The newest glibc a linux-*-gnu binary may need: napi-rs's own baseline (RHEL 7, Debian 8, Ubuntu 14.04 on). */
const MAX_GLIBC = "2.17";
// napi-rs's platform name for each Rust target triple in napi.targets.
const PLATFORMS = {
  "x86_64-unknown-linux-gnu": "linux-x64-gnu",
  "aarch64-unknown-linux-gnu": "linux-arm64-gnu",
  "x86_64-unknown-linux-musl": "linux-x64-musl",
  "aarch64-unknown-linux-musl": "linux-arm64-musl",
  "x86_64-apple-darwin": "darwin-x64",
  "aarch64-apple-darwin": "darwin-arm64",
  "x86_64-pc-windows-msvc": "win32-x64-msvc",
};

const npm = (args, cwd) => execFileSync(NPM, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });

/** The `napi` command of @napi-rs/cli (a devDependency). */
function napiCli() {
  const dir = path.dirname(require.resolve("@napi-rs/cli/package.json", { paths: [ROOT] }));
  return path.join(dir, require(path.join(dir, "package.json")).bin.napi);
}

function hostTriple() {
  return /^host: (\S+)$/m.exec(execFileSync(process.env.RUSTC || "rustc", ["-vV"], { encoding: "utf8" }))[1];
}

/**
 * Refuses a glibc Linux binary that needs a glibc newer than MAX_GLIBC; returns the highest
 * GLIBC_ version it needs (null for a platform that has no glibc).
 */
function checkGlibc(platform, file) {
  if (!/^linux-.*-gnu$/.test(platform)) return null;
  const needed = maxGlibcVersion(file);
  if (needed === null) throw new Error(`release-pack: ${file} (${platform}) needs no GLIBC_ symbol version at all: not a binary linked against glibc`);
  if (compareVersions(needed, MAX_GLIBC) > 0) {
    throw new Error(
      `release-pack: ${file} (${platform}) needs GLIBC_${needed}, so it would not load where glibc is older than ${needed}; ` +
        `a release's ${platform} binary must need at most GLIBC_${MAX_GLIBC} (build it with \`cargo zigbuild --target <triple>.${MAX_GLIBC}\`, as npm run release:pack does for linux-x64-gnu, or napi build --use-napi-cross)`,
    );
  }
  return needed;
}

/** Every .node file under dir, by base name. */
function findBinaries(dir) {
  const found = new Map();
  if (!fs.existsSync(dir)) return found;
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith(".node")) found.set(entry.name, path.join(entry.parentPath ?? entry.path, entry.name));
  }
  return found;
}

/**
 * Packs the release. Options: outDir; artifactsDir; build (build the host's binary, default
 * true); requireAll; version (override, for test variants); patchPlatform(pkgJson, platform)
 * (edit a platform package's package.json, for test variants); log.
 * Returns { main, platforms: [{ platform, triple, file, from, glibc }], skipped: [{ platform, triple, why }] }.
 */
function releasePack({
  outDir = path.join(ROOT, "dist"),
  artifactsDir = path.join(ROOT, "artifacts"),
  build = true,
  requireAll = false,
  version,
  patchPlatform,
  log = console.log,
} = {}) {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
  const targets = pkg.napi.targets;
  for (const triple of targets) if (!PLATFORMS[triple]) throw new Error(`release-pack: no platform name known for target ${triple}`);
  version ??= pkg.version;

  const binaries = findBinaries(artifactsDir);
  let hostPlatform = null;
  let hostBinary = null;
  if (build) {
    const triple = hostTriple();
    hostPlatform = PLATFORMS[triple];
    if (triple === "x86_64-unknown-linux-gnu") {
      hostBinary = buildGlibc217().file;
    } else {
      const built = spawnSync(process.execPath, [path.join(__dirname, "build.js")], { cwd: ROOT, stdio: "inherit" });
      if (built.status !== 0) throw new Error("release-pack: building the host's addon failed");
      hostBinary = path.join(ROOT, `${BINARY}.node`);
    }
  }

  const stage = fs.mkdtempSync(path.join(os.tmpdir(), "nts-release-pack-"));
  try {
    fs.mkdirSync(outDir, { recursive: true });
    for (const old of fs.readdirSync(outDir)) if (old.endsWith(".tgz")) fs.rmSync(path.join(outDir, old));

    // The platform packages, as napi-rs's CLI lays them out: `napi create-npm-dirs` writes
    // npm/<platform>/package.json (gitignored); each is copied to a staging folder and packed there.
    execFileSync(process.execPath, [napiCli(), "create-npm-dirs"], { cwd: ROOT, stdio: "pipe" });
    const platforms = [];
    const skipped = [];
    for (const triple of targets) {
      const platform = PLATFORMS[triple];
      const generated = path.join(ROOT, "npm", platform);
      const dir = path.join(stage, "npm", platform);
      const file = `${BINARY}.${platform}.node`;
      const source =
        binaries.get(file) ??
        (fs.existsSync(path.join(generated, file)) ? path.join(generated, file) : null) ?? // `napi artifacts` puts them here
        (platform === hostPlatform ? hostBinary : null);
      if (!source) {
        skipped.push({ platform, triple, why: `no ${file} in ${path.relative(ROOT, artifactsDir) || artifactsDir}/: built by the release workflow's ${triple} job` });
        continue;
      }
      const glibc = checkGlibc(platform, source);
      fs.mkdirSync(dir, { recursive: true });
      for (const f of ["package.json", "README.md"]) fs.copyFileSync(path.join(generated, f), path.join(dir, f));
      fs.copyFileSync(source, path.join(dir, file));
      const json = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
      json.version = version;
      if (patchPlatform) patchPlatform(json, platform);
      fs.writeFileSync(path.join(dir, "package.json"), `${JSON.stringify(json, null, 2)}\n`);
      const [packed] = JSON.parse(npm(["pack", "--json", "--ignore-scripts", "--pack-destination", outDir], dir));
      platforms.push({ platform, triple, file: path.join(outDir, packed.filename), from: source, glibc });
    }
    if (requireAll && skipped.length) {
      throw new Error(`release-pack: --require-all, but no binary for ${skipped.map((s) => s.platform).join(", ")}`);
    }

    // The main package: exactly the files `npm pack` takes from the repository (package.json's
    // `files`), with a package.json for users: no lifecycle script but `build`, the platform
    // packages as optional dependencies (all targets: a platform whose package is not
    // published is skipped by npm and falls back to `npm run build`), no devDependencies.
    const mainDir = path.join(stage, "main");
    const [listed] = JSON.parse(npm(["pack", "--dry-run", "--json", "--ignore-scripts"], ROOT));
    for (const { path: rel } of listed.files) {
      fs.mkdirSync(path.dirname(path.join(mainDir, rel)), { recursive: true });
      fs.copyFileSync(path.join(ROOT, rel), path.join(mainDir, rel));
    }
    const main = { ...pkg, version };
    main.scripts = { build: pkg.scripts.build };
    delete main.devDependencies;
    main.optionalDependencies = Object.fromEntries(targets.map((t) => [`${pkg.name}-${PLATFORMS[t]}`, version]));
    fs.writeFileSync(path.join(mainDir, "package.json"), `${JSON.stringify(main, null, 2)}\n`);
    const [packedMain] = JSON.parse(npm(["pack", "--json", "--ignore-scripts", "--pack-destination", outDir], mainDir));

    const result = { main: path.join(outDir, packedMain.filename), platforms, skipped };
    const size = (f) => `${(fs.statSync(f).size / 1024).toFixed(0)} KiB`;
    log(`release-pack: wrote to ${outDir}:`);
    log(`  ${path.basename(result.main)}  (${size(result.main)}, the main package)`);
    for (const p of platforms) {
      log(`  ${path.basename(p.file)}  (${size(p.file)}, binary from ${path.relative(ROOT, p.from) || p.from}${p.glibc ? `, needs glibc ${p.glibc} or newer` : ""})`);
    }
    for (const s of skipped) log(`  skipped ${pkg.name}-${s.platform}: ${s.why}`);
    return result;
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

module.exports = { releasePack, checkGlibc, PLATFORMS, MAX_GLIBC };

if (require.main === module) {
  const args = process.argv.slice(2);
  const value = (flag) => {
    const i = args.indexOf(flag);
    return i >= 0 ? path.resolve(args[i + 1]) : undefined;
  };
  try {
    releasePack({
      outDir: value("--out"),
      artifactsDir: value("--artifacts"),
      build: !args.includes("--no-build"),
      requireAll: args.includes("--require-all"),
    });
  } catch (err) {
    console.error(err.message);
    process.exitCode = 1;
  }
}
