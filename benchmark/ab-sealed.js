#!/usr/bin/env node
"use strict";
// What keys add to a memory store's get and store, before and after, in one process (issue
// 19): this package and another copy of it (`--baseline DIR`: a `git archive` of an older
// commit with its built .node) each open two memory stores, one without keys and one with
// (one key), seeded alike (tokens with refresh tokens); then getAccessToken of seeded
// tokens, and storeAccessToken of new ones (with refresh tokens), run in interleaved rounds
// over the four, the order turned each round, so that the machine's load hits them alike.
// Figures are medians over the rounds, µs per call; "sealed − plain" is the median of each
// round's difference (one side's stores only).
//
//   node benchmark/ab-sealed.js --baseline DIR [--size 10000] [--rounds 21] [--calls 5000]
const crypto = require("node:crypto");
const path = require("node:path");
const data = require("./lib/data");
const { PACKAGE } = require("./peers/ours");
const { option, common, median, seed } = require("./lib/ab");

const { baseline: BASELINE, size: SIZE, rounds: ROUNDS } = common(
  "usage: node benchmark/ab-sealed.js --baseline DIR [--size N] [--rounds N] [--calls N]",
);
const CALLS = Number(option("calls", "5000"));
process.env.TOKEN_STORAGE_LOG ??= "silent";

const users = data.usersFor(SIZE);
const scatter = data.scatter(SIZE);

function open(pkg, sealed) {
  const { TokenStorage } = require(pkg);
  const options = { storage: "memory", cleanupInterval: 0 };
  if (sealed) options.encryptionKeys = `ab:${crypto.randomBytes(32).toString("base64")}`;
  const store = new TokenStorage(options);
  seed(store, SIZE);
  return store;
}

// `CALLS` seeded tokens read, each found (and its refresh token given back).
function reads(store, round) {
  const rows = Array.from({ length: CALLS }, (_, i) => data.tokenRow("at", scatter(round * CALLS + i), users, null));
  const t = process.hrtime.bigint();
  for (const r of rows) if (store.getAccessToken(r.accessToken)?.refreshToken !== r.refreshToken) throw new Error("miss");
  return Number(process.hrtime.bigint() - t) / 1e3 / CALLS;
}

// `CALLS` new tokens stored, each with a refresh token (its own per round and store).
function writes(store, round, name) {
  const expiresAt = data.liveUntil();
  const rows = Array.from({ length: CALLS }, (_, i) => data.tokenRow(`w${round}-${name}`, i, users, expiresAt));
  const t = process.hrtime.bigint();
  for (const r of rows) store.storeAccessToken(r.accessToken, r.refreshToken, r.apiKey, r.userId, r.clientId, r.scopes, r.expiresAt);
  return Number(process.hrtime.bigint() - t) / 1e3 / CALLS;
}

const sides = { before: BASELINE, after: PACKAGE };
const stores = {};
for (const [side, pkg] of Object.entries(sides)) {
  stores[`${side} plain`] = open(pkg, false);
  stores[`${side} sealed`] = open(pkg, true);
}
const names = Object.keys(stores);
const times = { get: Object.fromEntries(names.map((n) => [n, []])), store: Object.fromEntries(names.map((n) => [n, []])) };
for (let round = 0; round < ROUNDS + 1; round++) {
  const order = round % 2 ? [...names].reverse() : names;
  for (const name of order) {
    const us = reads(stores[name], round);
    if (round > 0) times.get[name].push(us); // round 0 warms up
  }
  for (const name of order) {
    const us = writes(stores[name], round, name.replace(" ", "-"));
    if (round > 0) times.store[name].push(us);
  }
}
for (const [op, call] of [["get", "getAccessToken"], ["store", "storeAccessToken"]]) {
  console.log(`memory store, ${SIZE.toLocaleString("en-US")} tokens, ${call}, medians of ${ROUNDS} interleaved rounds (µs per ${op})`);
  for (const side of Object.keys(sides)) {
    const plain = times[op][`${side} plain`];
    const sealed = times[op][`${side} sealed`];
    const added = median(sealed.map((s, i) => s - plain[i]));
    console.log(`${side.padEnd(7)} plain ${median(plain).toFixed(2).padStart(7)}  sealed ${median(sealed).toFixed(2).padStart(7)}  sealed − plain ${added.toFixed(2).padStart(6)}`);
  }
}
for (const s of Object.values(stores)) s.close();
