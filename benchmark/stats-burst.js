"use strict";
// getStats right after a burst of tokens expired, per store: docs/api.md says getStats
// costs the same however many rows are stored or wait for cleanup. Stores `n` tokens (of
// n/10 users) that all expire within one second, waits until they have expired (cleanup
// off), then times getStats in the next seconds, against a store of 10 such tokens.
//   node benchmark/stats-burst.js [n=100000] [stores=memory,db]
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { performance } = require("node:perf_hooks");
process.env.TOKEN_STORAGE_LOG ??= "silent";
const { TokenStorage } = require("..");

const n = Number(process.argv[2] ?? 100_000);
const kinds = (process.argv[3] ?? "memory,db").split(",");

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function measure(kind, count) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nts-stats-burst-"));
  const store = new TokenStorage({ storage: kind, path: path.join(dir, "t.db"), cleanupInterval: 0 });
  try {
    // Expiring 1 s from now, spread over one second.
    const base = Date.now() + 1000;
    const records = Array.from({ length: count }, (_, i) => ({
      accessToken: `burst-${i}`,
      apiKey: "sk-bench",
      userId: `user-${i % Math.max(1, Math.floor(count / 10))}`,
      clientId: "c",
      scopes: ["a"],
      expiresAt: base + (i % 1000),
    }));
    store.storeAccessTokens(records);
    const live = store.getStats();
    await new Promise((r) => setTimeout(r, Math.max(0, base + 1000 - Date.now()) + 5));
    const times = [];
    let stats;
    const until = performance.now() + 1500;
    while (performance.now() < until) {
      const t0 = performance.now();
      stats = store.getStats();
      times.push(performance.now() - t0);
    }
    if (stats.totalTokens !== 0 || stats.uniqueUsers !== 0) throw new Error(`${kind}: after expiry getStats() is ${JSON.stringify(stats)}`);
    return { live, calls: times.length, median: median(times), max: times.reduce((a, b) => Math.max(a, b), 0) };
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

(async () => {
  for (const kind of kinds) {
    for (const count of [10, n]) {
      const r = await measure(kind, count);
      console.log(
        `${kind.padEnd(6)} ${String(count).padStart(7)} tokens expired within a second: getStats median ${(r.median * 1000).toFixed(1)} us, max ${(r.max * 1000).toFixed(1)} us over ${r.calls} calls (before expiry: ${r.live.totalTokens} tokens, ${r.live.uniqueUsers} users)`,
      );
    }
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
