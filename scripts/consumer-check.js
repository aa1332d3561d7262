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
//    open-handle warning or if Jest does not exit in time, then the node --test suite.
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
// What Jest prints when something keeps it alive.
const OPEN_HANDLE_WARNINGS = [/open handle/i, /did not exit one second after/i];
let current = null; // the command running now, killed with its whole process group on Ctrl-C

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
    current = child;
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
      current = null;
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
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, "package.json"), `${JSON.stringify({
    name: "native-token-storage-consumer-check",
    version: "1.0.0",
    private: true,
    jest: { testEnvironment: "node", testMatch: ["**/test/*.jest.test.js"] },
  }, null, 2)}\n`);
  // No Rust on PATH: the install must not compile anything.
  const rust = ["cargo", "rustc", "rustup"];
  const noRust = (process.env.PATH || "").split(path.delimiter).filter((d) => d && !rust.some((t) => fs.existsSync(path.join(d, t)))).join(path.delimiter);
  await run("install", NPM, ["install", "--no-audit", "--no-fund", ...tarballs, "express@4", "jest@29"], {
    cwd: project, env: { PATH: noRust }, timeoutMs: INSTALL_TIMEOUT_MS,
  });
  const installed = path.join(project, "node_modules");
  for (const { platform } of packed.platforms) {
    if (!fs.existsSync(path.join(installed, `native-token-storage-${platform}`))) throw new Error(`native-token-storage-${platform} was not installed`);
  }
  if (fs.existsSync(path.join(installed, "native-token-storage", "native_token_storage.node"))) throw new Error("the install built the addon from source");
  console.log(`Installed ${tarballs.map((t) => path.basename(t)).join(" and ")} without cargo`);

  fs.cpSync(path.join(ROOT, "examples", "oauth-server"), path.join(project, "oauth-server"), { recursive: true });
  fs.cpSync(path.join(ROOT, "examples", "consumer"), path.join(project, "test"), { recursive: true });
  console.log("\nCopied examples/oauth-server to oauth-server/ and examples/consumer to test/");

  // Both suites run even if the first fails, so one run reports every problem.
  const failures = [];
  try {
    const { output } = await run("jest", process.execPath,
      [path.join(project, "node_modules", "jest", "bin", "jest.js"), "--ci", "--detectOpenHandles"],
      { cwd: project, timeoutMs: TEST_TIMEOUT_MS });
    const warning = OPEN_HANDLE_WARNINGS.find((pattern) => pattern.test(output));
    if (warning) failures.push(`jest: printed an open-handle warning (${warning})`);
  } catch (err) {
    failures.push(err.message);
  }
  try {
    await run("node --test", process.execPath, ["--test", path.join("test", "oauth-server.node.test.js")],
      { cwd: project, timeoutMs: TEST_TIMEOUT_MS });
  } catch (err) {
    failures.push(err.message);
  }
  if (failures.length) throw new Error(failures.join("; "));
}

process.once("SIGINT", () => {
  if (current) process.kill(-current.pid, "SIGKILL");
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
