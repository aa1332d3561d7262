#!/usr/bin/env node
"use strict";
// The consumer check: does the package work for a user who installs it from npm into an
// Express server and runs their own tests?
//
//   node scripts/consumer-check.js [--keep]
//
// 1. packs the release (scripts/release-pack.js: the main package and this platform's
//    package with the prebuilt addon) into a temp folder;
// 2. makes a scratch project there and `npm install`s both tarballs, express@4 and jest@29
//    from the registry, with no cargo or rustc on PATH (nothing is compiled);
// 3. copies examples/oauth-server (unchanged: its tokenStorage.js now resolves the installed
//    package) and the suites of examples/consumer into it;
// 4. runs the Jest suite with --detectOpenHandles and without --forceExit, failing on an
//    open-handle warning or if Jest does not exit in time, then the node --test suite;
// 5. runs examples/consumer/map-suite, a server's own suite written for the module of Maps
//    (several files that each start empty, jest.resetModules and vi.resetModules with a new
//    import, fake timers for token, code and pending-login expiry), under Jest 29 and Jest 30
//    (--runInBand --detectOpenHandles), Vitest (threads pool) and node --test, on the memory
//    store; and its expiry files on a SQLite file too; and, under each Jest, eight files of
//    40 MB of tokens each in one process, whose memory must not grow by a store per file.
//    Jest 30 and Vitest are installed in projects of their own beside the first (each its
//    own node_modules, so no runner picks up another's packages).
// Exits non-zero on any failure. --keep leaves the scratch project in place.
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { releasePack } = require("./release-pack");

const ROOT = path.resolve(__dirname, "..");
const INSTALL_TIMEOUT_MS = 5 * 60 * 1000;
const TEST_TIMEOUT_MS = 2 * 60 * 1000;
const NPM = process.platform === "win32" ? "npm.cmd" : "npm";
// What Jest (and Vitest) print when something keeps them alive.
const OPEN_HANDLE_WARNINGS = [/open handle/i, /did not exit one second after/i, /close timed out/i, /prevents? .*from exiting/i];
const running = new Set(); // the commands running now, killed with their process groups on Ctrl-C

/**
 * Runs a command, echoing its output with a prefix; resolves { stdout, output } (output:
 * both streams), rejects on a non-zero exit or after `timeoutMs` (then the whole process
 * group is killed).
 */
function run(label, command, args, { cwd, env = {}, timeoutMs, quiet = false }) {
  const started = Date.now();
  console.log(`\n[${label}] ${command} ${args.join(" ")}   (in ${cwd})`);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true,
    });
    running.add(child);
    let stdout = "";
    let output = "";
    const echo = (chunk) => {
      output += chunk;
      if (!quiet) process.stdout.write(chunk.toString().replace(/^(?=.)/gm, `  ${label} | `));
    };
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
      echo(chunk);
    });
    child.stderr.on("data", echo);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      process.kill(-child.pid, "SIGKILL");
    }, timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`${label}: could not run ${command}: ${err.message}`));
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      if (timedOut) return reject(new Error(`${label}: did not exit within ${timeoutMs / 1000} s (killed)`));
      if (code !== 0) return reject(new Error(`${label}: exited with ${code ?? signal} after ${seconds} s`));
      console.log(`[${label}] ok in ${seconds} s`);
      resolve({ stdout, output });
    });
  });
}

async function main(tmp) {
  const packed = releasePack({ outDir: path.join(tmp, "tarballs") });
  if (!packed.platforms.length) throw new Error("release-pack wrote no platform package for this machine");
  const tarballs = [packed.main, ...packed.platforms.map((p) => p.file)];

  const project = path.join(tmp, "project");
  // Jest 30 and Vitest get projects of their own: Jest resolves its environment from the
  // project first, so two Jests in one node_modules would mix their packages.
  const jest30 = path.join(project, "jest30");
  const vitest = path.join(project, "vitest");
  for (const dir of [project, jest30, vitest]) fs.mkdirSync(dir);
  const packageJson = (dir, name, extra = {}) => fs.writeFileSync(path.join(dir, "package.json"),
    `${JSON.stringify({ name, version: "1.0.0", private: true, ...extra }, null, 2)}\n`);
  packageJson(project, "native-token-storage-consumer-check", { jest: { testEnvironment: "node", testMatch: ["**/test/*.jest.test.js"] } });
  packageJson(jest30, "native-token-storage-consumer-check-jest30");
  packageJson(vitest, "native-token-storage-consumer-check-vitest");
  // No Rust on PATH: the install must not compile anything.
  const rust = ["cargo", "rustc", "rustup"];
  const noRust = (process.env.PATH || "").split(path.delimiter).filter((d) => d && !rust.some((t) => fs.existsSync(path.join(d, t)))).join(path.delimiter);
  const install = (label, cwd, packages) => run(label, NPM, ["install", "--no-audit", "--no-fund", ...tarballs, ...packages], {
    cwd, env: { PATH: noRust }, timeoutMs: INSTALL_TIMEOUT_MS,
  });
  await Promise.all([
    install("install", project, ["express@4", "jest@29"]),
    install("install jest 30", jest30, ["jest@30"]),
    // Vitest 4 where npm can install it; else Vitest 3 with Vite 7 (Node 20 with npm 10).
    install("install vitest", vitest, ["vitest@4"]).catch(() => install("install vitest 3", vitest, ["vitest@3", "vite@7"])),
  ]);
  for (const dir of [project, jest30, vitest]) {
    const installed = path.join(dir, "node_modules");
    for (const { platform } of packed.platforms) {
      if (!fs.existsSync(path.join(installed, `native-token-storage-${platform}`))) throw new Error(`native-token-storage-${platform} was not installed in ${dir}`);
    }
    if (fs.existsSync(path.join(installed, "native-token-storage", "native_token_storage.node"))) throw new Error("the install built the addon from source");
  }
  console.log(`Installed ${tarballs.map((t) => path.basename(t)).join(" and ")} without cargo, three times`);

  const mapSuite = path.join(ROOT, "examples", "consumer", "map-suite");
  fs.cpSync(path.join(ROOT, "examples", "oauth-server"), path.join(project, "oauth-server"), { recursive: true });
  fs.cpSync(path.join(ROOT, "examples", "consumer"), path.join(project, "test"), { recursive: true, filter: (src) => src !== mapSuite });
  for (const dir of [project, jest30, vitest]) fs.cpSync(mapSuite, path.join(dir, "map-suite"), { recursive: true });
  console.log("\nCopied examples/oauth-server to oauth-server/, examples/consumer to test/ and its map-suite to map-suite/ of each project");

  // Every suite runs even if one fails, so one run reports every problem.
  const failures = [];
  const suite = async (label, command, args, { cwd = project, env = {}, openHandles = false } = {}) => {
    try {
      const { output } = await run(label, command, args, { cwd, env: { TOKEN_STORAGE_LOG: "warn", ...env }, timeoutMs: TEST_TIMEOUT_MS });
      const warning = openHandles && OPEN_HANDLE_WARNINGS.find((pattern) => pattern.test(output));
      if (warning) failures.push(`${label}: printed an open-handle warning (${warning})`);
    } catch (err) {
      failures.push(err.message);
    }
  };
  const node = process.execPath;
  await suite("jest", node, [path.join(project, "node_modules", "jest", "bin", "jest.js"), "--ci", "--detectOpenHandles"], { openHandles: true });
  await suite("node --test", node, ["--test", path.join("test", "oauth-server.node.test.js")]);

  // The Map module's suite: the memory store (TOKEN_STORAGE unset), then its expiry files
  // on a SQLite file of their own.
  const memory = { TOKEN_STORAGE: "" };
  const sqlite = (name) => ({ TOKEN_STORAGE: "db", TOKEN_DB_PATH: path.join(tmp, `${name}.db`) });
  for (const [label, dir] of [["jest 29", project], ["jest 30", jest30]]) {
    const jest = [path.join(dir, "node_modules", "jest", "bin", "jest.js"), "--ci", "--runInBand", "--detectOpenHandles", "--config", path.join("map-suite", "jest", "jest.config.js")];
    await suite(`${label} map-suite`, node, jest, { cwd: dir, env: memory, openHandles: true });
    await suite(`${label} map-suite sqlite`, node, [...jest, "expiry"], { cwd: dir, env: sqlite(label.replace(" ", "")), openHandles: true });
    // Eight files of 40 MB each in one process: the memory must stay where two files left it.
    const rssFile = path.join(tmp, `${label.replace(" ", "")}-rss.txt`);
    const memoryRun = ["--expose-gc", path.join(dir, "node_modules", "jest", "bin", "jest.js"), "--ci", "--runInBand", "--config", path.join("map-suite", "jest-memory", "jest.config.js")];
    await suite(`${label} map-suite memory`, node, memoryRun, { cwd: dir, env: { ...memory, MAP_SUITE_RSS: rssFile } });
    const mb = fs.existsSync(rssFile) ? fs.readFileSync(rssFile, "utf8").trim().split("\n").map((b) => Math.round(Number(b) / 2 ** 20)) : [];
    console.log(`[${label} map-suite memory] RSS after each file, MB: ${mb.join(", ")}`);
    if (mb.length !== 8 || mb[7] - mb[1] > 120) failures.push(`${label}: a finished test file's memory store was kept (RSS after each file, MB: ${mb.join(", ")})`);
  }
  const vitestRun = [path.join(vitest, "node_modules", "vitest", "vitest.mjs"), "run", "--root", path.join("map-suite", "vitest")];
  await suite("vitest map-suite", node, vitestRun, { cwd: vitest, env: memory, openHandles: true });
  await suite("vitest map-suite sqlite", node, [...vitestRun, "expiry"], { cwd: vitest, env: sqlite("vitest"), openHandles: true });
  const nodeSuite = path.join("map-suite", "node");
  await suite("node --test map-suite", node, ["--test", ...["first-file", "second-file", "reset", "expiry"].map((f) => path.join(nodeSuite, `${f}.test.js`))], { env: memory });
  await suite("node --test map-suite sqlite", node, ["--test", path.join(nodeSuite, "expiry.test.js")], { env: sqlite("node") });
  if (failures.length) throw new Error(failures.join("; "));
}

process.once("SIGINT", () => {
  for (const child of running) process.kill(-child.pid, "SIGKILL");
  process.exit(130);
});
const keep = process.argv.includes("--keep");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nts-consumer-check-"));
const started = Date.now();
main(tmp).then(
  () => console.log(`\nconsumer check: PASS in ${((Date.now() - started) / 1000).toFixed(0)} s`),
  (err) => {
    console.error(`\nconsumer check: FAIL: ${err.message}`);
    process.exitCode = 1;
  },
).finally(() => {
  if (keep) console.log(`scratch project kept in ${path.join(tmp, "project")}`);
  else fs.rmSync(tmp, { recursive: true, force: true });
});
