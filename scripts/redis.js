"use strict";
// A throwaway Redis (or Valkey) server for the tests: the machine's `redis-server` on a free
// loopback port, its files in a temp folder, nothing saved to disk; stopped and removed
// afterwards.

const { spawn, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

/** `redis-server` (or `valkey-server`) on PATH or in /usr/bin, or null. */
function findServer() {
  const dirs = [...(process.env.PATH ?? "").split(path.delimiter).filter(Boolean), "/usr/bin", "/usr/local/bin"];
  for (const name of ["redis-server", "valkey-server"]) {
    for (const dir of dirs) {
      const p = path.join(dir, name);
      if (fs.existsSync(p)) return p;
    }
  }
  return null;
}

/** A TCP port free on 127.0.0.1 now (bound, then released). */
function freePort() {
  const out = spawnSync(process.execPath, ["-e", "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"], { encoding: "utf8" });
  const port = Number(out.stdout.trim());
  if (!Number.isInteger(port) || port <= 0) throw new Error("no free port for redis-server");
  return port;
}

/** Whether something answers PING with PONG on the port. */
function answers(port) {
  const code = `const c=require('net').connect(${port},'127.0.0.1');c.on('connect',()=>c.write('PING\\r\\n'));c.on('data',d=>process.exit(String(d).startsWith('+PONG')?0:1));c.on('error',()=>process.exit(1));setTimeout(()=>process.exit(1),500)`;
  return spawnSync(process.execPath, ["-e", code]).status === 0;
}

/** Starts a server; returns `{ url, dir, stop() }`. */
function startServer(binary = findServer()) {
  if (!binary) throw new Error("no redis-server found");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nts-redis-"));
  const port = freePort();
  const log = fs.openSync(path.join(dir, "redis.log"), "a");
  const child = spawn(binary, ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no"], {
    stdio: ["ignore", log, log],
    detached: true,
  });
  child.unref();
  const deadline = Date.now() + 10_000;
  while (!answers(port)) {
    if (Date.now() > deadline || child.exitCode !== null) {
      const text = fs.readFileSync(path.join(dir, "redis.log"), "utf8").slice(-2000);
      try {
        process.kill(child.pid);
      } catch {
        // gone already
      }
      throw new Error(`redis-server did not start on port ${port}:\n${text}`);
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
  }
  return {
    url: `redis://127.0.0.1:${port}/0`,
    dir,
    stop() {
      try {
        process.kill(child.pid);
      } catch {
        // gone already
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { findServer, startServer };
