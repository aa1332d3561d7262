"use strict";
// `npm test` after the build: the Rust suites (cargo test) and the JS suites (node --test),
// each run against memory, SQLite and PostgreSQL. PostgreSQL is the server that
// TOKEN_TEST_DATABASE_URL names, else a throwaway cluster started here from the machine's
// PostgreSQL binaries and removed afterwards. In CI a missing PostgreSQL is a failure;
// elsewhere the PostgreSQL suites are skipped, and this says so.

const { spawnSync } = require("node:child_process");
const path = require("node:path");
const { startCluster, findBinaries, searched } = require("./postgres");
const redis = require("./redis");

const root = path.resolve(__dirname, "..");
const env = { ...process.env };
let cluster = null;

if (env.TOKEN_TEST_DATABASE_URL?.trim()) {
  console.log("PostgreSQL suites: on the server TOKEN_TEST_DATABASE_URL names");
} else if (findBinaries()) {
  const t0 = Date.now();
  cluster = startCluster();
  env.TOKEN_TEST_DATABASE_URL = cluster.url;
  console.log(`PostgreSQL suites: on a throwaway cluster in ${cluster.dir} (started in ${Date.now() - t0} ms)`);
} else if (env.CI) {
  console.error(`CI runs the PostgreSQL suites, and no PostgreSQL binaries were found (looked in ${searched()}). Install Debian's postgresql package (.ci/run does).`);
  process.exit(1);
} else {
  delete env.TOKEN_TEST_DATABASE_URL;
  console.warn(
    `\n*** PostgreSQL suites SKIPPED: no PostgreSQL binaries found (looked in ${searched()}).\n` +
      "*** Install PostgreSQL (Debian: apt-get install postgresql), or set TOKEN_TEST_DATABASE_URL to a server you run.\n",
  );
}

let redisServer = null;
if (env.TOKEN_TEST_REDIS_URL?.trim()) {
  console.log("Redis suites: on the server TOKEN_TEST_REDIS_URL names");
} else if (redis.findServer()) {
  redisServer = redis.startServer();
  env.TOKEN_TEST_REDIS_URL = redisServer.url;
  console.log(`Redis suites: on a throwaway redis-server at ${redisServer.url}`);
} else if (env.CI) {
  console.error("CI runs the Redis suites, and no redis-server was found. Install Debian's redis-server package (.ci/run does).");
  cluster?.stop();
  process.exit(1);
} else {
  delete env.TOKEN_TEST_REDIS_URL;
  console.warn("\n*** Redis suites SKIPPED: no redis-server found (Debian: apt-get install redis-server), or set TOKEN_TEST_REDIS_URL.\n");
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, env, stdio: "inherit" });
  return r.status ?? 1;
}

let status = run("cargo", ["test", "--quiet"]);
if (status === 0) status = run(process.execPath, ["--test", "__test__/"]);
cluster?.stop();
redisServer?.stop();
process.exit(status);
