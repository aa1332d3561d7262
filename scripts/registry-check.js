#!/usr/bin/env node
"use strict";
// The registry check: does a user without Rust get a working addon from the release tarballs,
// through a registry, with npm and with pnpm, scripts allowed or not? And does a platform
// package for another cpu or libc get skipped, with the loader's clear error?
//
//   node scripts/registry-check.js [--keep] [--no-source-build]     (`npm run registry-check`)
//
// 1. Installs its own tools (verdaccio, pnpm) in scripts/registry-check-tools/ with `npm ci` if missing.
// 2. Packs the release (scripts/release-pack.js: the main package and the host's platform
//    package), plus two variants whose platform package declares another cpu / libc only.
// 3. Starts verdaccio on 127.0.0.1 (a free port) with its own config and storage in a temp
//    folder and NO uplink: every package name resolves from this registry or not at all, so
//    nothing can come from the public registry (the package's one dependency, acorn, is
//    published to it from node_modules).
//    Publishes the tarballs to it. Verdaccio is killed at the end, on failure too.
// 4. For each scenario, a scratch project in a temp folder, with HOME, npm's and pnpm's
//    config, cache and store in temp folders, and PATH without cargo or rustc: installs
//    (timed), then in another temp folder with TOKEN_STORAGE=db requires the package, stores a
//    token and reads it back through the module-level functions (or, for the wrong-platform
//    variants, checks that npm/pnpm skipped the platform package and that require fails with
//    the loader's ERR_TOKEN_STORAGE_NOT_BUILT naming the platform and the package).
// 5. Unless --no-source-build: the way out for platforms without a binary. npm install
//    --omit=optional (no platform package), the loader's error, then `npm run build` in
//    node_modules/native-token-storage with cargo back on PATH (about 2 minutes): it must show
//    a time estimate and cargo's progress, leave no target/ behind, and the addon must work.
// Exits non-zero on any failure. --keep leaves the temp folder in place.
const { spawn, spawnSync, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const { createRequire } = require("node:module");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const { releasePack } = require("./release-pack");

const ROOT = path.resolve(__dirname, "..");
const TOOLS = path.join(__dirname, "registry-check-tools");
const NPM = process.platform === "win32" ? "npm.cmd" : "npm";
const VERDACCIO = path.join(TOOLS, "node_modules", "verdaccio", "bin", "verdaccio");
const PNPM = path.join(TOOLS, "node_modules", ".bin", process.platform === "win32" ? "pnpm.cmd" : "pnpm");
const INSTALL_TIMEOUT_MS = 3 * 60 * 1000;
const pkg = require("../package.json");

let verdaccio = null; // the registry's process, killed on every way out
const children = new Set();

function killRegistry() {
  if (verdaccio && verdaccio.exitCode === null && verdaccio.signalCode === null) {
    try {
      process.kill(-verdaccio.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}
process.on("exit", () => {
  killRegistry();
  for (const child of children) {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  if (!keep) fs.rmSync(tmp, { recursive: true, force: true });
});
for (const signal of ["SIGINT", "SIGTERM"]) process.once(signal, () => process.exit(130));

/** Runs a command (own process group), echoing its output with a prefix; resolves { output, seconds }. */
function run(label, command, args, { cwd, env, timeoutMs = INSTALL_TIMEOUT_MS, allowFail = false }) {
  const started = process.hrtime.bigint();
  console.log(`[${label}] ${path.basename(command)} ${args.join(" ")}`);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    children.add(child);
    let output = "";
    const echo = (chunk) => {
      output += chunk;
      process.stdout.write(chunk.toString().replace(/^(?=.)/gm, `  ${label} | `));
    };
    child.stdout.on("data", echo);
    child.stderr.on("data", echo);
    const timer = setTimeout(() => process.kill(-child.pid, "SIGKILL"), timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      children.delete(child);
      reject(new Error(`${label}: could not run ${command}: ${err.message}`));
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0 && !allowFail) return reject(new Error(`${label}: exited with ${code ?? signal} after ${seconds.toFixed(1)} s`));
      resolve({ output, seconds, code });
    });
  });
}

function ensureTools() {
  if (fs.existsSync(VERDACCIO) && fs.existsSync(PNPM)) return;
  console.log(`registry-check: installing its tools (verdaccio, pnpm) with npm ci in ${TOOLS}`);
  execFileSync(NPM, ["ci", "--no-audit", "--no-fund"], { cwd: TOOLS, stdio: "inherit" });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** PATH without any folder holding cargo, rustc or rustup; node stays reachable. */
function pathWithoutRust(binDir) {
  const rust = ["cargo", "rustc", "rustup"];
  const dirs = (process.env.PATH || "").split(path.delimiter).filter(Boolean);
  const removed = [...new Set(dirs.filter((d) => rust.some((tool) => fs.existsSync(path.join(d, tool)))))];
  fs.mkdirSync(binDir, { recursive: true });
  fs.symlinkSync(process.execPath, path.join(binDir, "node"));
  return { PATH: [binDir, ...dirs.filter((d) => !removed.includes(d))].join(path.delimiter), removed };
}

/** An environment that shares nothing with the user's npm/pnpm config, caches or Rust. */
function isolatedEnv(tmp, registry) {
  const home = path.join(tmp, "home");
  fs.mkdirSync(home, { recursive: true });
  fs.writeFileSync(path.join(home, ".npmrc"), `registry=${registry}\n`);
  fs.writeFileSync(path.join(tmp, "npmrc-global"), "");
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_|pnpm_|corepack_|cargo|rustc|rustup|rustflags)/i.test(k)) continue;
    env[k] = v;
  }
  const { PATH, removed } = pathWithoutRust(path.join(tmp, "bin"));
  Object.assign(env, {
    PATH,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, ".config"),
    XDG_CACHE_HOME: path.join(home, ".cache"),
    XDG_DATA_HOME: path.join(home, ".local", "share"),
    XDG_STATE_HOME: path.join(home, ".local", "state"),
    npm_config_userconfig: path.join(home, ".npmrc"),
    npm_config_globalconfig: path.join(tmp, "npmrc-global"),
    npm_config_cache: path.join(tmp, "npm-cache"),
    npm_config_registry: registry,
    npm_config_audit: "false",
    npm_config_fund: "false",
    npm_config_update_notifier: "false",
  });
  return { env, removed };
}

/** Starts verdaccio on 127.0.0.1:port, no uplinks, storage in dir; resolves when it answers. */
async function startRegistry(dir, port) {
  const config = path.join(dir, "config.yaml");
  fs.writeFileSync(
    config,
    [
      `storage: ${JSON.stringify(path.join(dir, "storage"))}`,
      "auth:",
      "  htpasswd:",
      `    file: ${JSON.stringify(path.join(dir, "htpasswd"))}`,
      "    max_users: 10",
      "uplinks: {}",
      "packages:",
      "  '**':",
      "    access: $all",
      "    publish: $authenticated",
      "web:",
      "  enable: false",
      `listen: 127.0.0.1:${port}`,
      "log: { type: stdout, format: pretty, level: warn }",
      "",
    ].join("\n"),
  );
  const log = fs.openSync(path.join(dir, "verdaccio.log"), "a");
  verdaccio = spawn(process.execPath, [VERDACCIO, "--config", config], { cwd: dir, stdio: ["ignore", log, log], detached: true });
  const url = `http://127.0.0.1:${port}/`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (verdaccio.exitCode !== null) break;
    try {
      if ((await fetch(`${url}-/ping`)).ok) return url;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`verdaccio did not start; its log:\n${fs.readFileSync(path.join(dir, "verdaccio.log"), "utf8")}`);
}

async function stopRegistry() {
  if (!verdaccio || verdaccio.exitCode !== null || verdaccio.signalCode !== null) return;
  const exited = new Promise((r) => verdaccio.once("exit", r));
  process.kill(-verdaccio.pid, "SIGTERM");
  const timer = setTimeout(killRegistry, 5000);
  await exited;
  clearTimeout(timer);
}

/** The script run in each scratch project: require, store a token, read it back. */
const SMOKE = `"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { createRequire } = require("node:module");
const project = process.argv[2];
const out = (o) => process.stdout.write(JSON.stringify(o) + "\\n");
let m;
try {
  m = createRequire(path.join(project, "package.json"))("native-token-storage");
} catch (e) {
  out({ loaded: false, code: e.code, message: e.message });
  process.exit(0);
}
m.storeAccessToken("at_registry_check", "rt_registry_check", "sk-registry-check", "user_1", "client_1", ["mcp"], new Date(Date.now() + 3600e3));
const first = m.getAccessToken("at_registry_check");
m.closeDB();
const reopened = m.getAccessToken("at_registry_check");
const refresh = m.getRefreshToken("rt_registry_check");
const stats = m.getStats();
m.closeDB();
out({
  loaded: true,
  addon: Object.keys(require.cache).find((k) => k.endsWith(".node")),
  apiKey: first && first.apiKey,
  reopenedApiKey: reopened && reopened.apiKey,
  refreshFor: refresh && refresh.accessToken,
  storage: stats.storage,
  dbFile: fs.existsSync(path.join("data", "tokens.db")),
});
`;

/** Bytes of the files under dir. */
function du(dir) {
  let total = 0;
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) total += fs.statSync(path.join(e.parentPath ?? e.path, e.name)).size;
  }
  return total;
}

/** Runs the smoke script for a project in a fresh temp cwd with TOKEN_STORAGE=db; its JSON, or null. */
function smoke(ctx, project, problems) {
  const cwd = fs.mkdtempSync(path.join(ctx.tmp, "cwd-"));
  const smoke = spawnSync(process.execPath, [ctx.smoke, project], {
    cwd,
    env: { ...ctx.env, TOKEN_STORAGE: "db", TOKEN_STORAGE_LOG: "warn" },
    encoding: "utf8",
    timeout: 30_000,
  });
  let r = null;
  try {
    r = JSON.parse(smoke.stdout.trim().split("\n").pop());
  } catch {
    problems.push(`the smoke script failed: ${smoke.stderr || smoke.stdout}`);
  }
  return r;
}

/** The loader's error when no addon is there: its code, the platform, the package, the way out. */
function checkNotBuiltError(r, ctx, platformPackage, problems) {
  if (!r) return;
  if (r.loaded) {
    problems.push("require worked although no addon should be there");
    return;
  }
  if (r.code !== "ERR_TOKEN_STORAGE_NOT_BUILT") problems.push(`require failed with code ${r.code}, not ERR_TOKEN_STORAGE_NOT_BUILT`);
  for (const needed of [`(${ctx.platform},`, `${platformPackage}: not installed`, "npm run build"]) {
    if (!r.message.includes(needed)) problems.push(`the error does not say "${needed}": ${r.message}`);
  }
  if (/MODULE_NOT_FOUND|Require stack/.test(r.message)) problems.push("the error shows a MODULE_NOT_FOUND stack");
}

/** The token went in and came back out of ./data/tokens.db. */
function checkToken(r, problems) {
  if (r.apiKey !== "sk-registry-check" || r.reopenedApiKey !== "sk-registry-check" || r.refreshFor !== "at_registry_check") {
    problems.push(`the token did not read back: ${JSON.stringify(r)}`);
  }
  if (r.storage !== "sqlite" || !r.dbFile) problems.push(`not stored in ./data/tokens.db: ${JSON.stringify(r)}`);
}

async function scenario(s, ctx) {
  const project = path.join(ctx.tmp, "projects", s.name.replace(/[^\w]+/g, "-"));
  fs.mkdirSync(project, { recursive: true });
  fs.writeFileSync(path.join(project, "package.json"), `${JSON.stringify({ name: "scratch", version: "1.0.0", private: true }, null, 2)}\n`);
  const spec = `native-token-storage@${s.version}`;
  const [command, args] =
    s.tool === "pnpm"
      ? [PNPM, ["add", spec, "--registry", ctx.registry, "--store-dir", path.join(ctx.tmp, "pnpm-store"), `--config.cache-dir=${path.join(ctx.tmp, "pnpm-cache")}`]]
      : [NPM, ["install", ...(s.flags || []), spec, "--registry", ctx.registry]];
  const install = await run(s.name, command, args, { cwd: project, env: ctx.env });
  const problems = [];
  if (/allowScripts|install-scripts|Ignored build scripts|node-gyp|cargo/i.test(install.output)) {
    problems.push("the install mentioned an install script or a build");
  }

  let r = smoke(ctx, project, problems);
  let buildSeconds = null;
  const platformPackage = `native-token-storage-${ctx.platform}`;
  // Resolved as the project and the installed package would (createRequire: not from this
  // repository, whose own name is native-token-storage too).
  const main = path.dirname(createRequire(path.join(project, "package.json")).resolve("native-token-storage/package.json"));
  const platformInstalled = (() => {
    try {
      createRequire(path.join(main, "package.json")).resolve(`${platformPackage}/package.json`);
      return true;
    } catch {
      return false;
    }
  })();
  if (fs.existsSync(path.join(main, "native_token_storage.node")) || fs.existsSync(path.join(main, "target"))) {
    problems.push("the installed package holds a source build");
  }

  let result;
  if (s.expect === "works") {
    if (!platformInstalled) problems.push(`${platformPackage} was not installed`);
    if (r && !r.loaded) problems.push(`require failed: ${r.code}: ${r.message}`);
    if (r && r.loaded) {
      if (!r.addon || !r.addon.includes(`${path.sep}${platformPackage}${path.sep}`)) problems.push(`the addon came from ${r.addon}, not ${platformPackage}`);
      checkToken(r, problems);
    }
    if (s.tool === "npm") {
      const lock = JSON.parse(fs.readFileSync(path.join(project, "package-lock.json"), "utf8"));
      for (const name of ["native-token-storage", platformPackage]) {
        const resolved = lock.packages[`node_modules/${name}`]?.resolved ?? "";
        if (!resolved.startsWith(ctx.registry)) problems.push(`${name} resolved from ${resolved || "nowhere"}, not the loopback registry`);
      }
    }
    result = r && r.loaded ? `works: token stored and read back, addon from ${path.relative(project, r.addon)}` : "FAILED";
  } else if (s.expect === "source") {
    // No platform package (optional dependencies omitted): the loader's error, then the way
    // out it names, `npm run build` in the installed package, with cargo back on PATH.
    if (platformInstalled) problems.push(`${platformPackage} was installed despite --omit=optional`);
    checkNotBuiltError(r, ctx, platformPackage, problems);
    const buildTmp = path.join(ctx.tmp, "build-tmp");
    fs.mkdirSync(buildTmp, { recursive: true });
    const build = await run(`${s.name}: npm run build`, NPM, ["run", "build"], {
      cwd: main,
      timeoutMs: 10 * 60 * 1000,
      env: {
        ...ctx.env,
        PATH: process.env.PATH,
        CARGO_HOME: process.env.CARGO_HOME || path.join(os.homedir(), ".cargo"),
        RUSTUP_HOME: process.env.RUSTUP_HOME || path.join(os.homedir(), ".rustup"),
        TMPDIR: buildTmp,
      },
    });
    buildSeconds = build.seconds;
    const first = build.output.split("\n").find((line) => line.startsWith("native-token-storage:")) || "";
    if (!/about \d+ minutes on 2 cores/.test(first)) problems.push(`the build's first line gives no time estimate: ${first}`);
    if (/--quiet/.test(fs.readFileSync(path.join(main, "scripts", "build.js"), "utf8"))) problems.push("the build hides cargo's progress");
    if (!/Compiling /.test(build.output)) problems.push("cargo's progress was not shown");
    if (fs.existsSync(path.join(main, "target"))) problems.push("the build left target/ in the installed package");
    const left = fs.readdirSync(buildTmp);
    if (left.length) problems.push(`the build left ${left.join(", ")} in the temp folder`);
    const size = du(main);
    // The package (1.4 MB) and the addon it built (about 8.6 MB with PostgreSQL, Redis and
    // sealing): a guard against build files left behind (target/ is hundreds of MB).
    if (size > 12 * 1024 * 1024) problems.push(`the installed package is ${size} bytes after the build`);
    r = smoke(ctx, project, problems);
    if (r && !r.loaded) problems.push(`require failed after npm run build: ${r.code}: ${r.message}`);
    if (r && r.loaded) {
      if (r.addon !== path.join(main, "native_token_storage.node")) problems.push(`the addon came from ${r.addon}, not the source build`);
      checkToken(r, problems);
    }
    result = r && r.loaded
      ? `require first throws ERR_TOKEN_STORAGE_NOT_BUILT; npm run build there took ${build.seconds.toFixed(0)} s, left ${(size / 1048576).toFixed(1)} MB and no target/; then works, addon from ${path.relative(project, r.addon)}`
      : "FAILED";
  } else {
    if (platformInstalled) problems.push(`${platformPackage} (declared for ${s.declared}) was installed on ${ctx.platform}`);
    checkNotBuiltError(r, ctx, platformPackage, problems);
    result = r && !r.loaded ? `skipped by ${s.tool}; require throws ${r.code}:\n${r.message.replace(/^/gm, "      ")}` : "FAILED";
  }
  return { name: s.name, seconds: install.seconds, buildSeconds, result, problems };
}

async function main(tmp) {
  ensureTools();

  // The release tarballs, and two variants whose platform package is for another cpu / libc.
  const tarballs = path.join(tmp, "tarballs");
  const release = releasePack({ outDir: path.join(tarballs, "release") });
  if (!release.platforms.length) throw new Error("release-pack wrote no platform package for this machine");
  const { platform } = release.platforms[0];
  const [osName, cpu] = platform.split("-");
  const otherCpu = cpu === "arm64" ? "x64" : "arm64";
  const otherLibc = platform.endsWith("-musl") ? "glibc" : "musl";
  const variants = {
    cpu: `${pkg.version}-wrong-cpu.0`,
    libc: `${pkg.version}-wrong-libc.0`,
  };
  // The variants carry the release's own binary (from an artifacts folder, as the release
  // workflow hands them over), so npm and pnpm must skip a platform package that exists.
  const artifacts = path.join(tarballs, "artifacts");
  fs.mkdirSync(artifacts, { recursive: true });
  fs.copyFileSync(release.platforms[0].from, path.join(artifacts, `native_token_storage.${platform}.node`));
  const wrongCpu = releasePack({
    outDir: path.join(tarballs, "wrong-cpu"),
    artifactsDir: artifacts,
    build: false,
    version: variants.cpu,
    patchPlatform: (json) => (json.cpu = [otherCpu]),
    log: () => {},
  });
  const wrongLibc = releasePack({
    outDir: path.join(tarballs, "wrong-libc"),
    artifactsDir: artifacts,
    build: false,
    version: variants.libc,
    patchPlatform: (json) => (json.libc = [otherLibc]),
    log: () => {},
  });

  for (const [name, packed] of [["wrong-cpu", wrongCpu], ["wrong-libc", wrongLibc]]) {
    if (!packed.platforms.some((p) => p.platform === platform)) throw new Error(`the ${name} variant has no ${platform} package`);
  }

  const registryDir = path.join(tmp, "registry");
  fs.mkdirSync(registryDir);
  const port = await freePort();
  const registry = await startRegistry(registryDir, port);
  console.log(`\nregistry-check: verdaccio at ${registry} (no uplink), storage in ${registryDir}`);

  const { env, removed } = isolatedEnv(tmp, registry);
  for (const tool of ["cargo", "rustc"]) {
    const found = spawnSync(tool, ["--version"], { env, encoding: "utf8" });
    if (!found.error) throw new Error(`${tool} is still on the scratch PATH (${found.stdout.trim()})`);
  }
  console.log(`registry-check: scratch PATH without ${removed.join(", ") || "(no folder held cargo or rustc)"}: cargo and rustc not found`);

  // A user on the loopback registry, to publish with.
  const user = await fetch(`${registry}-/user/org.couchdb.user:registry-check`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "registry-check", password: "registry-check-password", type: "user", roles: [], date: new Date().toISOString() }),
  });
  const { token } = await user.json();
  if (!token) throw new Error(`verdaccio refused the user (${user.status})`);
  const host = registry.replace(/^http:/, "");
  fs.appendFileSync(env.npm_config_userconfig, `${host}:_authToken=${token}\n`);
  // The main package's own dependencies (acorn, for doctor): packed from node_modules, the
  // versions the lock file resolved, and published here, since the registry has no uplink.
  for (const name of Object.keys(pkg.dependencies ?? {})) {
    const packedDependency = execFileSync(NPM, ["pack", path.join(ROOT, "node_modules", name), "--ignore-scripts", "--json", "--pack-destination", tarballs], { cwd: tmp, encoding: "utf8" });
    const file = path.join(tarballs, JSON.parse(packedDependency)[0].filename);
    await run("publish", NPM, ["publish", file, "--registry", registry, "--ignore-scripts"], { cwd: tmp, env, timeoutMs: 60_000 });
  }
  for (const [tag, packed] of [["latest", release], ["wrong-cpu", wrongCpu], ["wrong-libc", wrongLibc]]) {
    for (const file of [...packed.platforms.map((p) => p.file), packed.main]) {
      await run("publish", NPM, ["publish", file, "--registry", registry, "--tag", tag], { cwd: tmp, env, timeoutMs: 60_000 });
    }
  }

  const smoke = path.join(tmp, "smoke.js");
  fs.writeFileSync(smoke, SMOKE);
  const ctx = { tmp, env, registry, platform, smoke };
  const scenarios = [
    { name: "npm install", tool: "npm", version: pkg.version, expect: "works" },
    { name: "pnpm add", tool: "pnpm", version: pkg.version, expect: "works" },
    { name: "npm install --ignore-scripts", tool: "npm", flags: ["--ignore-scripts"], version: pkg.version, expect: "works" },
    { name: `npm install, platform package for cpu ${otherCpu} only`, tool: "npm", version: variants.cpu, declared: `cpu ${otherCpu}`, expect: "skipped" },
    { name: `npm install, platform package for libc ${otherLibc} only`, tool: "npm", version: variants.libc, declared: `libc ${otherLibc}`, expect: "skipped" },
    { name: `pnpm add, platform package for libc ${otherLibc} only`, tool: "pnpm", version: variants.libc, declared: `libc ${otherLibc}`, expect: "skipped" },
  ];
  if (!process.argv.includes("--no-source-build")) {
    scenarios.push({ name: "npm install --omit=optional, then npm run build in it", tool: "npm", flags: ["--omit=optional"], version: pkg.version, expect: "source" });
  }
  const results = [];
  for (const s of scenarios) {
    const what = { works: "must install the prebuilt addon", skipped: "must skip the platform package", source: "the source-build way out" }[s.expect];
    console.log(`\n=== ${s.name} (${what})`);
    results.push(await scenario(s, ctx));
  }
  await stopRegistry();

  console.log(`\nregistry-check on ${osName} (${platform}), Node ${process.version}, npm ${execFileSync(NPM, ["--version"], { encoding: "utf8" }).trim()}, pnpm ${execFileSync(PNPM, ["--version"], { encoding: "utf8" }).trim()}, no cargo or rustc on PATH:`);
  for (const r of results) {
    console.log(`  ${r.problems.length ? "FAIL" : "ok  "} ${r.name}: install ${r.seconds.toFixed(1)} s; ${r.result}`);
    for (const p of r.problems) console.log(`       problem: ${p}`);
  }
  const failed = results.filter((r) => r.problems.length);
  if (failed.length) throw new Error(`${failed.length} of ${results.length} scenarios failed`);
  console.log(`${results.length} passed, 0 failed`);
}

const keep = process.argv.includes("--keep");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nts-registry-check-"));
const started = Date.now();
main(tmp)
  .then(
    () => console.log(`registry check: PASS in ${((Date.now() - started) / 1000).toFixed(0)} s`),
    (err) => {
      console.error(`\nregistry check: FAIL: ${err.message}`);
      process.exitCode = 1;
    },
  )
  .finally(async () => {
    await stopRegistry().catch(killRegistry);
    if (keep) console.log(`kept ${tmp}`);
    // the temp folder goes in the exit handler, also after Ctrl-C
  });
