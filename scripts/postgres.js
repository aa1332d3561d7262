"use strict";
// A throwaway PostgreSQL cluster for the tests, the benchmark and the demo: `initdb` and
// `pg_ctl` from the machine's PostgreSQL binaries, a Unix socket in a temp folder (no TCP
// port, so nothing collides with another server), fsync off. As root the binaries run as
// the `postgres` user, since `initdb` and `postgres` refuse root.

const { spawnSync, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { makeCertificates } = require("./certificates");

/** Folders searched for `initdb` and `pg_ctl`, newest PostgreSQL first. */
function binaryFolders() {
  const found = [];
  if (process.env.PG_BIN) found.push(process.env.PG_BIN);
  try {
    found.push(execFileSync("pg_config", ["--bindir"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
  } catch {
    // no pg_config on PATH
  }
  const debian = "/usr/lib/postgresql";
  if (fs.existsSync(debian)) {
    const versions = fs.readdirSync(debian).filter((v) => /^\d+$/.test(v)).sort((a, b) => b - a);
    for (const v of versions) found.push(path.join(debian, v, "bin"));
  }
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) if (dir) found.push(dir);
  return found;
}

/** The folder holding `initdb` and `pg_ctl`, or null. */
function findBinaries() {
  return binaryFolders().find((dir) => fs.existsSync(path.join(dir, "initdb")) && fs.existsSync(path.join(dir, "pg_ctl"))) ?? null;
}

/** Where `findBinaries` looks, for messages. */
function searched() {
  return "PG_BIN, pg_config --bindir, /usr/lib/postgresql/*/bin and PATH";
}

/** A TCP port for a throwaway server: below Linux's ephemeral range (32768 and up), where
 * the system hands out the local ports of outgoing connections. */
function freePortGuess() {
  return 20000 + Math.floor(Math.random() * 12000);
}

function run(bin, args, asPostgres, logFile) {
  const [cmd, argv] = asPostgres ? ["runuser", ["-u", "postgres", "--", bin, ...args]] : [bin, args];
  const out = spawnSync(cmd, argv, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  if (out.status !== 0) {
    const log = logFile && fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8").slice(-2000) : "";
    throw new Error(`${path.basename(bin)} failed (${out.error?.message ?? `exit ${out.status}`}):\n${out.stderr}${out.stdout}${log}`);
  }
  return out.stdout;
}

/**
 * Starts a cluster; returns `{ url, dir, stop, stopServer, startServer }`. `url` reaches it
 * as the superuser `postgres` over the socket. `stop()` stops it and removes its folder; it
 * is also called when the process exits. With `tls: true` it also listens on 127.0.0.1
 * (`port`: `firstPort` if given and free, else another) and accepts only TLS there, with a
 * certificate for `localhost` signed by `ca`.
 */
function startCluster({ binaries = findBinaries(), tls = false, firstPort = null } = {}) {
  if (!binaries) throw new Error(`no PostgreSQL binaries (initdb, pg_ctl) found in ${searched()}`);
  const asPostgres = process.getuid?.() === 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nts-pg-"));
  if (asPostgres) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    fs.chownSync(dir, uid, gid);
  }
  const data = path.join(dir, "data");
  const logFile = path.join(dir, "server.log");
  const pgCtl = path.join(binaries, "pg_ctl");
  run(path.join(binaries, "initdb"), ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"], asPostgres);
  let port = 5432;
  let options = `-k ${dir} -c listen_addresses='' -c fsync=off -c max_connections=200`;
  let certificates = null;
  if (tls) {
    certificates = makeCertificates(dir);
    if (asPostgres) {
      const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
      for (const f of Object.values(certificates)) fs.chownSync(f, uid, -1);
    }
    // Local socket as before; TCP only with TLS.
    fs.writeFileSync(path.join(data, "pg_hba.conf"), "local all all trust\nhostssl all all 127.0.0.1/32 trust\n");
    port = firstPort ?? freePortGuess();
    options = `-k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 -c ssl=on -c ssl_cert_file=${certificates.cert} -c ssl_key_file=${certificates.key}`;
  }
  const start = () => run(pgCtl, ["-D", data, "-o", `${options} -p ${port}`, "-w", "-t", "30", "-l", logFile, "start"], asPostgres, logFile);
  const stopServer = (mode = "immediate") => run(pgCtl, ["-D", data, "-m", mode, "-w", "stop"], asPostgres, logFile);
  // A TCP port another process holds (a server, or a client's connection) makes the server
  // refuse to start: another port is tried.
  for (let attempt = 1; ; attempt++) {
    try {
      start();
      break;
    } catch (err) {
      if (!tls || attempt >= 5 || !/could not bind|Address already in use/.test(err.message)) throw err;
      port = freePortGuess();
      fs.writeFileSync(logFile, ""); // the next attempt's failure is judged on its own lines
    }
  }
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    process.removeListener("exit", stop);
    try {
      stopServer();
    } catch {
      // already stopped
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.on("exit", stop);
  return {
    url: `postgresql://postgres@/postgres?host=${encodeURIComponent(dir)}&port=${port}&sslmode=disable`,
    dir,
    port,
    ca: certificates?.ca ?? null,
    stop,
    /** Stops the server (fast shutdown: connections are ended), then starts it again. */
    stopServer: () => stopServer("fast"),
    startServer: start,
  };
}

module.exports = { startCluster, findBinaries, searched };

if (require.main === module) {
  // `node scripts/postgres.js`: start a cluster, print its URL, stop it on Ctrl-C.
  const cluster = startCluster();
  console.log(cluster.url);
  process.on("SIGINT", () => process.exit(0));
  process.on("SIGTERM", () => process.exit(0));
  setInterval(() => {}, 1 << 30);
}
