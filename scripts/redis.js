"use strict";
// A throwaway Redis (or Valkey) server for the tests: the machine's `redis-server` on a free
// loopback port, its files in a temp folder, nothing saved to disk; stopped and removed
// afterwards.

const { spawn, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { makeCertificates } = require("./certificates");

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

/**
 * Whether a server answers PING on the port (PONG, or NOAUTH from one with a password); over
 * TLS, its certificate unchecked, if `tls`.
 */
function answers(port, tls = false) {
  const connect = tls
    ? `require('tls').connect({port:${port},host:'127.0.0.1',rejectUnauthorized:false})`
    : `require('net').connect(${port},'127.0.0.1')`;
  const code = `const c=${connect};c.on('${tls ? "secureConnect" : "connect"}',()=>c.write('PING\\r\\n'));c.on('data',d=>process.exit(/^(\\+PONG|-NOAUTH)/.test(String(d))?0:1));c.on('error',()=>process.exit(1));setTimeout(()=>process.exit(1),500)`;
  return spawnSync(process.execPath, ["-e", code]).status === 0;
}

/**
 * Starts a server; returns `{ url, port, ca, dir, stop(), kill(), start() }`. `args` are more
 * options of redis-server (`["--appendonly", "yes", "--appendfsync", "always"]`, which
 * override the defaults here: nothing saved to disk). `kill()` SIGKILLs it (a crash) and
 * `start()` starts it again on the same port and folder, so that it reads back what it
 * saved there. With `tls: true` it listens for TLS only, with a certificate for `localhost`
 * signed by a test CA (`ca`, the CA's PEM file, is returned too) and no client certificate
 * asked; `url` is then `rediss://localhost:PORT/0`.
 */
function startServer({ binary = findServer(), args = [], tls = false } = {}) {
  if (!binary) throw new Error("no redis-server found");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nts-redis-"));
  const port = freePort();
  let listen = ["--port", String(port)];
  const certificates = tls ? makeCertificates(dir) : null;
  if (certificates) {
    listen = ["--port", "0", "--tls-port", String(port), "--tls-cert-file", certificates.cert, "--tls-key-file", certificates.key];
    listen.push("--tls-ca-cert-file", certificates.ca, "--tls-auth-clients", "no");
  }
  let child = null;
  const start = () => {
    const log = fs.openSync(path.join(dir, "redis.log"), "a");
    child = spawn(binary, [...listen, "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no", ...args], {
      stdio: ["ignore", log, log],
      detached: true,
    });
    fs.closeSync(log);
    child.unref();
    const deadline = Date.now() + 10_000;
    while (!answers(port, tls)) {
      if (Date.now() > deadline || child.exitCode !== null) {
        const text = fs.readFileSync(path.join(dir, "redis.log"), "utf8").slice(-2000);
        signal("SIGTERM");
        fs.rmSync(dir, { recursive: true, force: true });
        throw new Error(`redis-server did not start on port ${port}:\n${text}`);
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  };
  const signal = (name) => {
    try {
      process.kill(child.pid, name);
    } catch {
      // gone already
    }
  };
  start();
  return {
    url: tls ? `rediss://localhost:${port}/0` : `redis://127.0.0.1:${port}/0`,
    port,
    ca: certificates?.ca ?? null,
    dir,
    start,
    /** SIGKILLs the server (nothing flushed that its settings did not flush already); returns once it no longer answers. */
    kill() {
      signal("SIGKILL");
      const deadline = Date.now() + 10_000;
      while (answers(port, tls) && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    },
    stop() {
      signal("SIGTERM");
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { findServer, startServer };
