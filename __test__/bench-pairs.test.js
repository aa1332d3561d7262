"use strict";
// The benchmark's paired check (benchmark/lib/pairs.js) and how issue 18's targets are judged
// on it (benchmark/lib/targets.js): the median of the per-pair ratios, every pair shown.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const { PAIRED, pairGroups, pairOrder, median, summarize, pairedTarget } = require("../benchmark/lib/pairs");
const { targets } = require("../benchmark/lib/targets");

const row = (rows, prefix) => rows.find((r) => r.target.startsWith(prefix));
const trial = (peer, size, ops) => ({ peer, size, ops: Object.fromEntries(Object.entries(ops).map(([op, us]) => [op, { us }])) });

describe("benchmark paired check", () => {
  it("median: odd, even, empty", () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([5]), 5);
    assert.equal(median([]), undefined);
  });

  it("alternates which side of a pair runs first", () => {
    assert.deepEqual([0, 1, 2, 3].map((i) => pairOrder(i, "a", "b")), [["a", "b"], ["b", "a"], ["a", "b"], ["b", "a"]]);
  });

  it("groups the judged ops by ours, peer and size, for the peers and sizes selected", () => {
    const all = pairGroups([...new Set(PAIRED.flatMap((t) => [t.ours, t.peer]))], [10_000, 1_000_000]);
    assert.deepEqual(all.find((g) => g.ours === "ours-sqlite"), { ours: "ours-sqlite", peer: "better-sqlite3", size: 10_000, ops: ["getHit", "store", "code"], oneProcess: false });
    assert.deepEqual(all.find((g) => g.ours === "ours-redis"), { ours: "ours-redis", peer: "redis", size: 10_000, ops: ["getHit", "store", "code"], oneProcess: false });
    // Redis at 1M: both seeded once in one process and alternated (seeding is 70-90 s a side).
    assert.deepEqual(all.find((g) => g.ours === "ours-redis" && g.size === 1_000_000), { ours: "ours-redis", peer: "redis", size: 1_000_000, ops: ["getHit", "store", "code"], oneProcess: true });
    // SQLite at 1M likewise, a file each (seeding is about 90 s a side).
    assert.deepEqual(all.find((g) => g.ours === "ours-sqlite" && g.size === 1_000_000), { ours: "ours-sqlite", peer: "better-sqlite3", size: 1_000_000, ops: ["getHit", "store"], oneProcess: true });
    // PostgreSQL at 1M likewise, a schema each on the run's server.
    assert.deepEqual(all.filter((g) => g.peer === "pg" && g.size === 1_000_000).map((g) => [g.ours, g.ops, g.oneProcess]), [["ours-postgres", ["store"], true], ["ours-postgres-promise", ["getHit"], true]]);
    // Keys' cost per memory get: the memory store with keys against itself without.
    assert.deepEqual(all.filter((g) => g.ours === "ours-memory-sealed").map((g) => [g.peer, g.size, g.ops]), [["ours-memory", 10_000, ["getHit"]], ["ours-memory", 1_000_000, ["getHit"]]]);
    assert.equal(all.length, 11);
    assert.deepEqual(pairGroups(["ours-sqlite", "better-sqlite3", "ours-memory", "map-original"], [10_000]).map((g) => g.ours), ["ours-sqlite"]);
    assert.deepEqual(pairGroups(["ours-sqlite"], [10_000]), []);
  });

  it("summarizes a target's pairs: every ratio, their median and spread; a pair missing a side is left out", () => {
    const t = pairedTarget("ours-sqlite", "better-sqlite3", "getHit", 10_000);
    const pairs = [
      { ours: { getHit: 5 }, peer: { getHit: 15 } },
      { ours: { getHit: 5 }, peer: { getHit: 10 } },
      { ours: { getHit: 4 }, peer: { getHit: 10 } },
      { ours: { getHit: 5 } },
    ];
    const s = summarize(t, pairs);
    assert.deepEqual(s.ratios, [3, 2, 2.5]);
    assert.equal(s.median, 2.5);
    assert.equal(s.min, 2);
    assert.equal(s.max, 3);
    assert.equal(s.spread, 1.5);
    assert.equal(s.pass, true);
    assert.equal(summarize(t, [{ ours: { getHit: 5 }, peer: { getHit: 9 } }]).pass, false);
    assert.equal(summarize(t, []), undefined);
  });

  it("a paired target is judged on the median pair, not on the main trials' ratio", () => {
    const results = [trial("ours-sqlite", 10_000, { getHit: 10, store: 100, code: 100 }), trial("better-sqlite3", 10_000, { getHit: 12, store: 200, code: 200 })];
    const pairs = [{
      ours: "ours-sqlite", peer: "better-sqlite3", size: 10_000, ops: ["getHit", "store"],
      pairs: [
        { ours: { getHit: 4, store: 100 }, peer: { getHit: 14, store: 110 } },
        { ours: { getHit: 5, store: 100 }, peer: { getHit: 9, store: 120 } },
        { ours: { getHit: 4, store: 100 }, peer: { getHit: 12, store: 100 } },
      ],
    }];
    const rows = targets(results, undefined, pairs);
    const get = row(rows, "SQLite get hit ≥ 2× better-sqlite3, 10k");
    assert.equal(get.pass, true, "median of 3.5×, 1.8×, 3× passes though the main trials give 1.2×");
    assert.match(get.measured, /median \*\*3\.00×\*\* \(pairs 3\.50×, 1\.80×, 3\.00×; spread 1\.80×–3\.50×\)/);
    assert.match(get.measured, /main trials 10\.0 vs 12\.0 µs: 1\.20×/);
    const store = row(rows, "SQLite store with refresh token ≥ 1.25× better-sqlite3, 10k");
    assert.equal(store.pass, false, "median 1.1× misses though the main trials give 2×");
    // Not in the paired check: judged on the main trials as before.
    const code = row(rows, "SQLite code store+consume ≥ 1.5× better-sqlite3, 10k");
    assert.equal(code.pass, true);
    assert.equal(code.measured, "100 vs 200 µs: 2.00×");
    // Without pairs, every target is judged on the main trials.
    assert.equal(row(targets(results), "SQLite get hit ≥ 2× better-sqlite3, 10k").pass, false);
  });

  it("the memory target bounds ours' time over the Map module's", () => {
    const pairs = [{
      ours: "ours-memory", peer: "map-original", size: 1_000_000, ops: ["getHit"],
      pairs: [{ ours: { getHit: 5 }, peer: { getHit: 2 } }, { ours: { getHit: 5 }, peer: { getHit: 3 } }, { ours: { getHit: 6 }, peer: { getHit: 3 } }],
    }];
    const r = row(targets([], undefined, pairs), "memory get hit ≤ 2×");
    assert.equal(r.pass, true, "median 2× is within the bound");
    assert.match(r.measured, /ours takes, median \*\*2\.00×\*\* \(pairs 2\.50×, 1\.67×, 2\.00×/);
    assert.match(r.measured, /main trials not measured/);
    pairs[0].pairs[1].ours.getHit = 7;
    assert.equal(row(targets([], undefined, pairs), "memory get hit ≤ 2×").pass, false);
  });

  it("a cost shown without a bound carries its sign, a saving included", () => {
    const results = [trial("ours-sqlite", 10_000, { store: 90 }), trial("ours-sqlite-nocounters", 10_000, { store: 100 })];
    const r = row(targets(results), "getStats' price on writes, SQLite");
    assert.equal(r.measured, "90.0 vs 100 µs: −10.0 µs (−10.0%)");
  });

  it("a target paired in one process says so, with each round's ratio", () => {
    const pairs = [{ ours: "ours-redis", peer: "redis", size: 1_000_000, ops: ["store"], oneProcess: true, pairs: [{ ours: { store: 300 }, peer: { store: 330 } }, { ours: { store: 300 }, peer: { store: 270 } }, { ours: { store: 300 }, peer: { store: 360 } }] }];
    const r = row(targets([], undefined, pairs), "Redis store with refresh token ≥ 1× redis (one MULTI), 1M");
    assert.match(r.measured, /^paired check, 3 rounds alternated in one process, both seeded once: median \*\*1\.10×\*\* \(pairs 1\.10×, 0\.90×, 1\.20×/);
    assert.equal(r.pass, true);
  });

  it("keys' cost per memory get is judged on the time added in each pair, not on two trials", () => {
    const results = [trial("ours-memory-sealed", 1_000_000, { getHit: 5.5, store: 9 }), trial("ours-memory", 1_000_000, { getHit: 4, store: 8 })];
    const pairs = [{
      ours: "ours-memory-sealed", peer: "ours-memory", size: 1_000_000, ops: ["getHit"],
      pairs: [{ ours: { getHit: 4.2 }, peer: { getHit: 4 } }, { ours: { getHit: 3.8 }, peer: { getHit: 4 } }, { ours: { getHit: 5.5 }, peer: { getHit: 4 } }],
    }];
    const target = "keys' cost (tokens in clear in memory, sealed in backups) per get, memory (under 1 µs added), 1M";
    const r = row(targets(results, undefined, pairs), target);
    assert.equal(r.pass, true, "median +0.2 µs is under 1 µs though the main trials differ by 1.5 µs");
    assert.match(r.measured, /median \*\*\+0\.20 µs\*\* \(pairs \+0\.20 µs, −0\.20 µs, \+1\.50 µs; spread −0\.20 µs–\+1\.50 µs\); main trials 5\.50 vs 4\.00 µs: \+1\.50 µs/);
    pairs[0].pairs[0].ours.getHit = 5.1;
    assert.equal(row(targets(results, undefined, pairs), target).pass, false, "median +1.1 µs misses");
    // Without pairs: the two trials, as before; the store rows stay shown, never judged.
    assert.equal(row(targets(results), target).pass, false);
    assert.equal(row(targets(results, undefined, pairs), "keys' cost (tokens in clear in memory, sealed in backups) per store, memory, 1M").pass, "shown");
  });

  it("every paired target is one targets.js judges, with the same bound", () => {
    const rows = targets([], undefined, []);
    for (const t of PAIRED.filter((x) => !x.timeRatio)) {
      // At its bound: a speed ratio of exactly `goal` passes; a time added of just under 1 µs.
      const [o, p] = t.addedUs ? [3.99, 3] : [1, t.goal];
      const pairs = [{ ours: t.ours, peer: t.peer, size: t.size, ops: [t.op], pairs: [{ ours: { [t.op]: o }, peer: { [t.op]: p } }] }];
      const judged = targets([], undefined, pairs).filter((r) => r.pass !== null);
      assert.equal(judged.length, 1, `${t.ours} vs ${t.peer}, ${t.op}, ${t.size}: one target judged on it`);
      assert.equal(judged[0].pass, true, "at its bound passes");
    }
    assert.ok(rows.length > PAIRED.length);
  });
});
