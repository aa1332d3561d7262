"use strict";
// The PostgreSQL side of the benchmark: the throwaway server run.js starts once per run
// (scripts/postgres.js, the one the tests use), a fresh schema per trial, and what the
// report says about the server and the tables.
const { PACKAGE } = require("../peers/ours");

// The peers that run against the server.
const POSTGRES_PEERS = ["ours-postgres", "ours-postgres-promise", "pg"];

// A schema name the store accepts (a letter, then letters, digits or `_`), unique per trial.
const schemaFor = (peer, size) => `bench_${peer.replace(/[^A-Za-z0-9]/g, "_")}_${size}`;

// Runs fn(client) on one connection of its own (pg, loaded only when PostgreSQL is used).
async function withClient(url, fn) {
  const { Client } = require("pg");
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

// Tables, indexes and TOAST of every table in the schema, in bytes.
const schemaBytes = (url, schema) =>
  withClient(url, async (db) => {
    const { rows } = await db.query(
      `SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::float8 AS bytes
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind = 'r'`,
      [schema],
    );
    return rows[0].bytes;
  });

const dropSchema = (url, schema) => withClient(url, (db) => db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));

const serverVersion = (url) => withClient(url, async (db) => (await db.query("SHOW server_version")).rows[0].server_version);

// Starts the run's server; returns { url, stop } or { missing: why } when there are no binaries.
function startServer() {
  const { startCluster, findBinaries, searched } = require(`${PACKAGE}/scripts/postgres`);
  if (!findBinaries()) return { missing: `no PostgreSQL binaries (initdb, pg_ctl) found in ${searched()}` };
  return startCluster();
}

module.exports = { POSTGRES_PEERS, schemaFor, withClient, schemaBytes, dropSchema, serverVersion, startServer };
