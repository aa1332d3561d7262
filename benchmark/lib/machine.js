"use strict";
// What the numbers were measured on: machine, load, Node, the SQLite behind each peer and
// node-postgres's version (the PostgreSQL server's is asked by run.js, which starts it).
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { PACKAGE } = require("../peers/ours");

const firstLine = (file, pattern) => {
  try {
    return fs.readFileSync(file, "utf8").match(pattern)?.[1];
  } catch {
    return undefined;
  }
};

function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model?.trim() ?? "unknown",
    cores: cpus.length,
    ramGiB: os.totalmem() / 2 ** 30,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
  };
}

const load = () => os.loadavg().map((x) => x.toFixed(2)).join(", ");

// Ours: the package may report its SQLite itself; else read the version bundled by the
// libsqlite3-sys crate that Cargo.lock pins.
function oursSqlite() {
  try {
    const v = require(PACKAGE).sqliteVersion;
    if (v) return { sqlite: typeof v === "function" ? v() : v, source: "reported by the package" };
  } catch {
    // not built: fall through to Cargo.lock
  }
  const crate = firstLine(path.join(PACKAGE, "Cargo.lock"), /name = "libsqlite3-sys"\nversion = "([^"]+)"/);
  const registry = path.join(process.env.CARGO_HOME || path.join(os.homedir(), ".cargo"), "registry", "src");
  let sqlite;
  for (const index of fs.existsSync(registry) ? fs.readdirSync(registry) : []) {
    sqlite ??= firstLine(path.join(registry, index, `libsqlite3-sys-${crate}`, "sqlite3", "sqlite3.h"), /#define SQLITE_VERSION\s+"([^"]+)"/);
  }
  return { sqlite: sqlite ?? "unknown", source: `bundled by libsqlite3-sys ${crate ?? "?"} (rusqlite), read from Cargo.lock and the crate's sqlite3.h` };
}

// Which build of the addon ran: a rebuild in the middle of a run would mix two builds.
function addonBuild() {
  const file = path.join(PACKAGE, "native_token_storage.node");
  try {
    const hash = require("node:crypto").createHash("sha256").update(fs.readFileSync(file)).digest("hex").slice(0, 12);
    return { hash, built: fs.statSync(file).mtime.toISOString() };
  } catch {
    return { hash: "missing", built: null };
  }
}

function versions() {
  const pkg = (name) => require(`${name}/package.json`).version;
  const Better = require("better-sqlite3");
  const mem = new Better(":memory:");
  const betterSqlite = mem.prepare("SELECT sqlite_version() AS v").get().v;
  mem.close();
  let ours;
  try {
    ours = require(path.join(PACKAGE, "package.json")).version;
  } catch {
    ours = "?";
  }
  return {
    "better-sqlite3": { version: pkg("better-sqlite3"), sqlite: betterSqlite },
    sqlite3: { version: pkg("sqlite3"), sqlite: require("sqlite3").VERSION },
    pg: { version: pkg("pg") },
    redis: { version: pkg("redis") },
    ours: { version: ours, ...oursSqlite() },
  };
}

module.exports = { machine, load, versions, addonBuild };
