"use strict";
// The paired check of issue 18's judged speed targets. One trial's absolute times on this
// shared 2-core VM move by ±30 % between processes minutes apart, so a ratio of two trials
// run minutes apart can flip a verdict. A paired check runs ours and the target's peer
// alternately in fresh short processes (seed, calibrate, time the judged ops only), pair
// after pair, each pair's two processes seconds apart, and the target is judged on the median
// of the per-pair ratios (or, for a group marked `oneProcess`, ours and the peer seeded once
// in one process and alternated round after round, each round a pair). run.js runs the pairs
// (trial.js with cfg.ops, and cfg.alternate for one process); targets.js judges.

const K = 10_000;
const M = 1_000_000;

// The targets judged on pairs: ours and its peer, the op, the store size. `ratio(oursUs,
// peerUs)` is the number the target bounds, `pass(ratio)` the bound: a speed ratio (the
// peer's time over ours, above 1 ours is faster) at least `goal`, or for memory ours' time
// over the Map module's at most 2.
const faster = (goal) => ({ ratio: (o, p) => p / o, pass: (r) => r >= goal, goal });
// Or the time ours adds to its peer's (µs, ours' less the peer's) under `bound`: what keys
// cost the memory store against itself without them (issue 19), shown as "+x µs".
const adds = (bound) => ({ ratio: (o, p) => o - p, pass: (r) => r < bound, addedUs: true });
const PAIRED = [
  { ours: "ours-sqlite", peer: "better-sqlite3", op: "getHit", size: K, ...faster(2) },
  { ours: "ours-sqlite", peer: "better-sqlite3", op: "store", size: K, ...faster(1.25) },
  { ours: "ours-sqlite", peer: "better-sqlite3", op: "code", size: K, ...faster(1.5) },
  { ours: "ours-postgres", peer: "pg", op: "getHitRecent", size: K, ...faster(10) },
  { ours: "ours-postgres", peer: "pg", op: "store", size: K, ...faster(1) },
  { ours: "ours-postgres-promise", peer: "pg", op: "getHit", size: K, ...faster(1) },
  { ours: "ours-redis", peer: "redis", op: "getHit", size: K, ...faster(1) },
  { ours: "ours-redis", peer: "redis", op: "store", size: K, ...faster(1) },
  { ours: "ours-redis", peer: "redis", op: "code", size: K, ...faster(1) },
  // Seeding 1M in a Map takes 6-10 s a process: 5 pairs add about 2 minutes to a full run.
  { ours: "ours-memory", peer: "map-original", op: "getHit", size: M, ratio: (o, m) => o / m, pass: (r) => r <= 2, timeRatio: true },
  // Redis at 1M: seeding takes 70-90 s a side, so fresh pairs would add 15 minutes. Both are
  // clients of the run's one server, so one process seeds both (each its own prefix) and
  // alternates them, round after round (`oneProcess`): each round gives a ratio.
  ...["getHit", "store", "code"].map((op) => ({ ours: "ours-redis", peer: "redis", op, size: M, ...faster(1), oneProcess: true })),
  // SQLite at 1M: seeding takes about 90 s a side. One process seeds a file for each and
  // alternates them round after round, as for Redis at 1M.
  { ours: "ours-sqlite", peer: "better-sqlite3", op: "getHit", size: M, ...faster(2), oneProcess: true },
  { ours: "ours-sqlite", peer: "better-sqlite3", op: "store", size: M, ...faster(1), oneProcess: true },
  // PostgreSQL at 1M: seeding takes about a minute a side; both are clients of the run's one
  // server, each in a schema of its own, so one process seeds both and alternates them.
  { ours: "ours-postgres", peer: "pg", op: "store", size: M, ...faster(1), oneProcess: true },
  { ours: "ours-postgres-promise", peer: "pg", op: "getHit", size: M, ...faster(1), oneProcess: true },
  // Keys' cost per memory get: the same call with and without keys, so two trials minutes
  // apart differ by more than the bound (+0.6 µs at 10k and +1.4 µs at 1M in one run).
  ...[K, M].map((size) => ({ ours: "ours-memory-sealed", peer: "ours-memory", op: "getHit", size, ...adds(1) })),
];

const pairKey = (ours, peer, op, size) => `${ours}|${peer}|${op}|${size}`;
const pairedTarget = (ours, peer, op, size) => PAIRED.find((t) => pairKey(t.ours, t.peer, t.op, t.size) === pairKey(ours, peer, op, size));

// The groups a run's pairs are made of: one per (ours, peer, size) with both peers selected
// and the size run, with every judged op of that group (one process times them all).
function pairGroups(peers, sizes) {
  const groups = new Map();
  for (const t of PAIRED) {
    if (!peers.includes(t.ours) || !peers.includes(t.peer) || !sizes.includes(t.size)) continue;
    const key = `${t.ours}|${t.peer}|${t.size}`;
    if (!groups.has(key)) groups.set(key, { ours: t.ours, peer: t.peer, size: t.size, ops: [], oneProcess: Boolean(t.oneProcess) });
    groups.get(key).ops.push(t.op);
  }
  return [...groups.values()];
}

// Which process of pair i goes first: ours in even pairs, the peer in odd ones (A B, B A, …),
// so a steady drift of the machine's speed favours neither.
const pairOrder = (i, ours, peer) => (i % 2 ? [peer, ours] : [ours, peer]);

function median(xs) {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

// A group's pairs ([{ ours: { op: us }, peer: { op: us } }], the pairs that finished) summed
// up for one of its targets: each pair's ratio (or time added), their median, and their
// spread (lowest, highest, and for ratios the highest over the lowest).
function summarize(target, pairs) {
  const ratios = pairs
    .filter((p) => p.ours?.[target.op] !== undefined && p.peer?.[target.op] !== undefined)
    .map((p) => target.ratio(p.ours[target.op], p.peer[target.op]));
  if (!ratios.length) return undefined;
  const min = Math.min(...ratios);
  const max = Math.max(...ratios);
  const m = median(ratios);
  return { ratios, median: m, min, max, spread: target.addedUs ? max - min : max / min, pass: target.pass(m) };
}

module.exports = { PAIRED, pairKey, pairedTarget, pairGroups, pairOrder, median, summarize };
