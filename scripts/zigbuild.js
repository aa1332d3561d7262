"use strict";
// The linux-x64-gnu addon that a release packs, built for glibc 2.17 as napi-rs's own packages
// are: `cargo zigbuild --target x86_64-unknown-linux-gnu.2.17`, with Zig as the C compiler and
// linker against glibc 2.17's symbol versions, so the binary loads on any glibc Linux since
// 2014 (RHEL 7, Debian 8, Ubuntu 14.04), not only on glibc as new as the build machine's.
//
//   node scripts/zigbuild.js      build it (release-pack.js does this for linux-x64-gnu)
//
// The tools come from PyPI, pinned: `ziglang` (Zig itself, as a wheel) and `cargo-zigbuild`,
// installed with pip into a Python venv in the user's cache folder
// ($XDG_CACHE_HOME or ~/.cache)/native-token-storage/, once per machine and shared by every
// clone on it (CI's fresh clones too). The build goes to its own target folder,
// <target dir>/glibc-2.17/, kept between runs, so packing again is incremental and never
// fights with `npm run build` over target/<triple>/release/.
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "..");
const ZIGLANG = "0.17.1";
const CARGO_ZIGBUILD = "0.24.1";
const GLIBC = "2.17";
const TRIPLE = "x86_64-unknown-linux-gnu";
const LIBRARY = "libnative_token_storage.so";

/** The venv's folder: one per pinned pair of versions, so a version bump installs anew. */
function venvDir(env = process.env) {
  const cache = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), ".cache");
  return path.join(cache, "native-token-storage", `zigbuild-venv-ziglang-${ZIGLANG}-cargo-zigbuild-${CARGO_ZIGBUILD}`);
}

/** The last lines of a command's output, for an error message. */
const tail = (text, n = 6) => String(text || "").trim().split("\n").slice(-n).join("\n");

/**
 * The venv with ziglang and cargo-zigbuild, installed if missing. Returns { dir, bin, python,
 * installedSeconds } (installedSeconds null when it was already there). Installs into a
 * temporary folder beside it and renames it into place when complete, so a half-installed venv
 * (Ctrl-C, no network) is never taken for a good one, and two processes installing at once
 * both end with a working one.
 */
function ensureTools({ env = process.env, log = (line) => console.error(line) } = {}) {
  const dir = venvDir(env);
  const marker = path.join(dir, "installed.json");
  const found = { dir, bin: path.join(dir, "bin"), python: path.join(dir, "bin", "python") };
  if (fs.existsSync(marker)) return { ...found, installedSeconds: null };

  const python = env.PYTHON || "python3";
  const started = Date.now();
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  try {
    log(`release-pack: installing ziglang ${ZIGLANG} and cargo-zigbuild ${CARGO_ZIGBUILD} from PyPI into a Python venv, ${dir} (once per machine; about 20 s, 100 MB downloaded, 450 MB on disk)`);
    const venv = spawnSync(python, ["-m", "venv", tmp], { encoding: "utf8", env });
    if (venv.error || venv.status !== 0) {
      throw new Error(
        `release-pack: could not create a Python venv with \`${python} -m venv\` (${venv.error ? venv.error.message : tail(venv.stderr || venv.stdout)}). ` +
          "Building the linux-x64-gnu addon for glibc 2.17 needs Python 3 with its venv module and pip (Debian: apt-get install python3-venv); set PYTHON to use another interpreter.",
      );
    }
    // pip's output live on stderr and in a log file, read back to tell an unreachable PyPI apart.
    const pipLog = `${tmp}.pip.log`;
    const pip = spawnSync(
      "bash",
      ["-o", "pipefail", "-c", '"$0" -m pip install --no-input --progress-bar off "$@" 2>&1 | tee "$PIP_LOG" >&2', path.join(tmp, "bin", "python"), `ziglang==${ZIGLANG}`, `cargo-zigbuild==${CARGO_ZIGBUILD}`],
      { env: { ...env, PIP_LOG: pipLog, PIP_DISABLE_PIP_VERSION_CHECK: "1" }, stdio: ["ignore", 2, 2] },
    );
    const output = fs.existsSync(pipLog) ? fs.readFileSync(pipLog, "utf8") : "";
    fs.rmSync(pipLog, { force: true });
    if (pip.error || pip.status !== 0) {
      const unreachable = /NewConnectionError|ConnectTimeout|Connection refused|Temporary failure in name resolution|Name or service not known|Network is unreachable|No matching distribution|Could not find a version|ProxyError|SSLError|ReadTimeout/i.test(output);
      throw new Error(
        `release-pack: pip could not install ziglang ${ZIGLANG} and cargo-zigbuild ${CARGO_ZIGBUILD} (${pip.error ? pip.error.message : `exit ${pip.status}`})` +
          (unreachable ? ": PyPI is not reachable from here (pip's index: PIP_INDEX_URL; a proxy: HTTPS_PROXY)" : `: ${tail(output, 3)}`) +
          ". They build the linux-x64-gnu addon for glibc 2.17. Without them, pack a binary built elsewhere: " +
          "npm run release:pack -- --no-build --artifacts DIR, with DIR holding native_token_storage.linux-x64-gnu.node (from the release workflow).",
      );
    }
    const zig = spawnSync(path.join(tmp, "bin", "python"), ["-m", "ziglang", "version"], { encoding: "utf8", env });
    if (zig.status !== 0) throw new Error(`release-pack: ziglang installed, but \`python -m ziglang version\` failed: ${tail(zig.stderr || zig.error?.message)}`);
    fs.writeFileSync(path.join(tmp, "installed.json"), `${JSON.stringify({ ziglang: ZIGLANG, zig: zig.stdout.trim(), cargoZigbuild: CARGO_ZIGBUILD }, null, 2)}\n`);
    try {
      fs.renameSync(tmp, dir);
    } catch (err) {
      if (err.code !== "ENOTEMPTY" && err.code !== "EEXIST") throw err;
      // Another process put a complete venv there first: keep it. A broken one without its marker: replace it.
      if (!fs.existsSync(marker)) {
        fs.rmSync(dir, { recursive: true, force: true });
        fs.renameSync(tmp, dir);
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const installedSeconds = (Date.now() - started) / 1000;
  log(`release-pack: installed the zigbuild tools in ${installedSeconds.toFixed(1)} s`);
  return { ...found, installedSeconds };
}

/**
 * Builds the addon for x86_64 Linux, glibc 2.17, with cargo zigbuild (release profile: LTO).
 * Returns { file, seconds, installedSeconds, targetDir }.
 */
function buildGlibc217({ env = process.env, log = (line) => console.error(line) } = {}) {
  const tools = ensureTools({ env, log });
  const targetDir = path.join(env.CARGO_TARGET_DIR ? path.resolve(ROOT, env.CARGO_TARGET_DIR) : path.join(ROOT, "target"), `glibc-${GLIBC}`);
  const file = path.join(targetDir, TRIPLE, "release", LIBRARY);
  log(
    `release-pack: building the linux-x64-gnu addon for glibc ${GLIBC} with cargo zigbuild (release, ${TRIPLE}.${GLIBC}); ` +
      `from clean about 2 to 3 minutes on 2 cores, seconds when nothing changed. Build files in ${targetDir}.`,
  );
  const started = Date.now();
  // cargo's progress on stderr, so callers' own reports on stdout stay readable.
  const cargo = spawnSync(env.CARGO || "cargo", ["zigbuild", "--release", "--lib", "--target", `${TRIPLE}.${GLIBC}`], {
    cwd: ROOT,
    stdio: ["ignore", 2, 2],
    env: {
      ...env,
      PATH: `${tools.bin}${path.delimiter}${env.PATH || ""}`,
      CARGO_TARGET_DIR: targetDir,
      CARGO_ZIGBUILD_PYTHON_PATH: tools.python,
    },
  });
  if (cargo.error) throw new Error(`release-pack: could not run cargo zigbuild (${cargo.error.message})`);
  if (cargo.status !== 0) throw new Error(`release-pack: cargo zigbuild failed with exit code ${cargo.status ?? cargo.signal}`);
  if (!fs.existsSync(file)) throw new Error(`release-pack: cargo zigbuild succeeded but wrote no ${file}`);
  const seconds = (Date.now() - started) / 1000;
  log(`release-pack: built ${path.relative(ROOT, file)} in ${seconds.toFixed(0)} s`);
  return { file, seconds, installedSeconds: tools.installedSeconds, targetDir };
}

module.exports = { ensureTools, buildGlibc217, venvDir, GLIBC, TRIPLE, ZIGLANG, CARGO_ZIGBUILD };

if (require.main === module) {
  try {
    console.log(buildGlibc217().file);
  } catch (err) {
    console.error(err.message);
    process.exitCode = 1;
  }
}
