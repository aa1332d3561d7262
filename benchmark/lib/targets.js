"use strict";
// Issue 18's targets, judged on one run: every target is a ratio between ours and a peer
// measured in the same run (absolute times on this shared 2-core machine are noisy).
// Speed ratio = the peer's µs per call / ours: above 1, ours is faster.
const { OPS } = require("./workloads");

const K = 10_000;
const M = 1_000_000;

const sizeLabel = (n) => (n >= M && n % M === 0 ? `${n / M}M` : n >= 1e3 && n % 1e3 === 0 ? `${n / 1e3}k` : String(n));
const num = (x, digits) => x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
// Three significant figures at most, thousands separated.
function fmt(x) {
  if (x === undefined || x === null || Number.isNaN(x)) return "–";
  const abs = Math.abs(x);
  if (abs >= 100) return num(x, 0);
  if (abs >= 10) return num(x, 1);
  if (abs >= 0.1) return num(x, 2);
  return num(x, 3);
}
const times = (x) => `${fmt(x)}×`;
const maxOf = (xs) => (xs.some((x) => x !== undefined) ? Math.max(...xs.filter((x) => x !== undefined)) : undefined);

// The longest event-loop delay over an awaited peer's watched runs, and the op it was seen in.
function loopDelay(r) {
  let worst;
  for (const [name, op] of Object.entries(r?.ops ?? {})) {
    if (op.loopDelayMs !== undefined && !(op.loopDelayMs <= worst?.ms)) worst = { ms: op.loopDelayMs, op: name };
  }
  return worst;
}

// Each target: { target, measured, pass } (pass null: not measured in this run). `burst`:
// stats-burst.js's checks, if run.
function targets(results, burst) {
  const at = (peer, size) => results.find((r) => r.peer === peer && r.size === size);
  const us = (peer, size, op) => at(peer, size)?.ops[op]?.us;
  const rows = [];
  const add = (target, measured, pass) => rows.push({ target, measured, pass });
  // ours at least `goal` times the peer's speed on op at size.
  const faster = (target, ours, peer, op, size, goal) => {
    const o = us(ours, size, op);
    const p = us(peer, size, op);
    if (o === undefined || p === undefined) add(target, "not measured", null);
    else add(target, `${fmt(o)} vs ${fmt(p)} µs: ${times(p / o)}`, p / o >= goal);
  };

  // SQLite, against better-sqlite3 with cached statements and one transaction per store.
  for (const size of [K, M]) faster(`SQLite get hit ≥ 2× better-sqlite3, ${sizeLabel(size)}`, "ours-sqlite", "better-sqlite3", "getHit", size, 2);
  faster("SQLite store with refresh token ≥ 1.25× better-sqlite3, 10k", "ours-sqlite", "better-sqlite3", "store", K, 1.25);
  faster("SQLite store with refresh token ≥ 1× better-sqlite3 (never slower), 1M", "ours-sqlite", "better-sqlite3", "store", M, 1);
  for (const size of [K, M]) faster(`SQLite code store+consume ≥ 1.5× better-sqlite3, ${sizeLabel(size)}`, "ours-sqlite", "better-sqlite3", "code", size, 1.5);

  // PostgreSQL, against pg with one round trip per call.
  for (const size of [K, M]) {
    faster(`PostgreSQL sync get of a recently read token ≥ 10× pg awaited, ${sizeLabel(size)}`, "ours-postgres", "pg", "getHitRecent", size, 10);
  }
  add("PostgreSQL: a change made by one instance honoured by every other within 50 ms; nothing stale served while the change feed is down",
    "not measured by the benchmark: a test with two processes", null);
  for (const size of [K, M]) faster(`PostgreSQL store with refresh token ≥ 1× pg (one statement), ${sizeLabel(size)}`, "ours-postgres", "pg", "store", size, 1);
  for (const size of [K, M]) faster(`PostgreSQL \`/promises\` get hit ≥ 1× pg, ${sizeLabel(size)}`, "ours-postgres-promise", "pg", "getHit", size, 1);

  // Memory, against the original Map module.
  {
    const o = us("ours-memory", M, "getHit");
    const m = us("map-original", M, "getHit");
    if (o === undefined || m === undefined) add("memory get hit ≤ 2× the Map module's time, 1M uniform", "not measured", null);
    else add("memory get hit ≤ 2× the Map module's time, 1M uniform", `${fmt(o)} vs ${fmt(m)} µs: ours takes ${times(o / m)}`, o <= 2 * m);
    const ro = at("ours-memory", M)?.rss.aboveBaseline;
    const rm = at("map-original", M)?.rss.aboveBaseline;
    if (ro === undefined || rm === undefined) add("memory RSS ≤ ½ of the Map module's, 1M", "not measured", null);
    else add("memory RSS ≤ ½ of the Map module's, 1M", `${fmt(ro / 2 ** 20)} vs ${fmt(rm / 2 ** 20)} MiB: ${fmt((100 * ro) / rm)}%`, ro <= rm / 2);
  }

  // getStats O(1): judged as a per-call cost at 1M within 2× of the cost at 10k (a count
  // that visits the rows grows with them, 100× from 10k to 1M: the SQL peers' COUNTs show it).
  for (const [peer, name] of [["ours-memory", "memory"], ["ours-sqlite", "SQLite"], ["ours-postgres", "PostgreSQL"]]) {
    const a = us(peer, K, "getStats");
    const b = us(peer, M, "getStats");
    const target = `getStats O(1), ${name}: its cost at 1M within 2× of its cost at 10k`;
    if (a === undefined || b === undefined) add(target, "not measured", null);
    else add(target, `${fmt(b)} vs ${fmt(a)} µs: ${times(b / a)}`, b <= 2 * a);
  }
  // After a burst (stats-burst.js): the slowest second's median getStats in the 5 s after
  // n tokens expired within one second, against the same after 10 tokens did.
  for (const [kind, name] of [["memory", "memory"], ["db", "SQLite"], ["postgres", "PostgreSQL"]]) {
    const c = burst?.find((b) => b.kind === kind);
    const target = `getStats O(1) in the seconds after a burst of expiries, ${name}: after ${sizeLabel(c?.n ?? 100_000)} tokens expired within a second, within 2× of after 10`;
    if (!c) add(target, "not measured in this run: `node benchmark/stats-burst.js`", null);
    else add(target, `slowest second's median ${fmt(c.burst.slowestSecondUs)} vs ${fmt(c.small.slowestSecondUs)} µs (max ${fmt(c.burst.maxUs)} vs ${fmt(c.small.maxUs)}): ${times(c.burst.slowestSecondUs / c.small.slowestSecondUs)}`, c.pass);
  }
  // Shown, not judged against a bound: "ours SQLite, no counters" runs the same store on a
  // file without the counting triggers.
  for (const size of [K, M]) {
    const target = `getStats' price on writes, SQLite: a store with and without the counters, ${sizeLabel(size)}`;
    const withCounters = us("ours-sqlite", size, "store");
    const without = us("ours-sqlite-nocounters", size, "store");
    if (withCounters === undefined || without === undefined) add(target, "not measured (peers ours-sqlite and ours-sqlite-nocounters)", null);
    else add(target, `${fmt(withCounters)} vs ${fmt(without)} µs: +${fmt(withCounters - without)} µs (${fmt((100 * (withCounters - without)) / without)}%)`, true);
  }

  // The event loop: the Promise API keeps it free.
  for (const size of [K, M]) {
    const r = at("ours-postgres-promise", size);
    const worst = loopDelay(r);
    add(`PostgreSQL \`/promises\` never blocks the event loop > 1 ms, ${sizeLabel(size)}`,
      worst ? `longest delay ${fmt(worst.ms)} ms (${OPS[worst.op].label}); an idle loop in that process: ${fmt(r.idleLoopDelayMs)} ms;`
        + ` loop busy ${fmt(maxOf(Object.values(r.ops).map((op) => op.loopBusyUs)))} µs per call at most` : "not measured",
      worst ? worst.ms <= 1 : null);
  }
  return rows;
}

module.exports = { targets, fmt, times, maxOf, loopDelay, sizeLabel, K, M };
