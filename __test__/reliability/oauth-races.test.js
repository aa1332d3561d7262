"use strict";
// The refresh grant and the upstream-login hop raced across processes (issue: two
// processes on one SQLite file spent one refresh token twice in 6 of 8 runs with the
// three-call grant). Two processes, each firing 10 calls at once through the Promise API
// (libuv's threads), start at the same instant: exactly one rotation, and exactly one
// consume of a pending authorization, succeeds. On the SQLite file, on PostgreSQL and on
// Redis (redis.test.js races 4 processes there too).
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { PG_URL, REDIS_URL, TokenStorage, tempDir, removeDir, storeOptions, race } = require("../helpers/setup");

const RUNS = 5;

for (const kind of ["db", ...(PG_URL ? ["postgres"] : []), ...(REDIS_URL ? ["redis"] : [])]) {
  describe(`${kind} store: races across two processes`, () => {
    it(`20 rotations of one refresh token at once: exactly one succeeds (${RUNS} runs); a replay later revokes the grant`, async () => {
      const dir = tempDir();
      try {
        for (let run = 0; run < RUNS; run++) {
          const options = { ...storeOptions(kind, path.join(dir, `rot-${run}.db`)), refreshGracePeriod: 1 };
          const s = new TokenStorage(options);
          s.storeAccessToken("at-0", "rt-0", "sk-key", "user-1", "client-1", ["mcp"], Date.now() + 3600e3);
          const results = await race(options, `(s, i) => s.promises.rotateRefreshToken("rt-0", "at-" + process.pid + "-" + i, "rt-" + process.pid + "-" + i).then((r) => r && r.refreshToken)`);
          const winners = results.filter((r) => r !== null);
          assert.equal(winners.length, 1, `run ${run}: ${winners.length} rotations succeeded`);
          const [winner] = winners;
          assert.equal(s.getRefreshToken(winner).clientId, "client-1", "the winner's pair is live");
          assert.equal(s.getStats().totalTokens, 1);
          if (run === 0) {
            // After the grace period, the rotated-away token again: the grant is revoked.
            await new Promise((resolve) => setTimeout(resolve, 1100));
            assert.equal(s.rotateRefreshToken("rt-0", "late-at", "late-rt"), null);
            assert.equal(s.getRefreshToken(winner), null);
            assert.equal(s.getStats().totalTokens, 0);
          }
          s.close();
        }
      } finally {
        removeDir(dir);
      }
    });

    it(`20 consumes of one pending authorization at once: exactly one gets it (${RUNS} runs)`, async () => {
      const dir = tempDir();
      try {
        for (let run = 0; run < RUNS; run++) {
          const options = storeOptions(kind, path.join(dir, `pending-${run}.db`));
          const s = new TokenStorage(options);
          s.storePendingAuthorization("state-0", { codeVerifier: "v", run });
          const results = await race(options, `(s) => s.promises.consumePendingAuthorization("state-0")`);
          const got = results.filter((r) => r !== null);
          assert.deepEqual(got, [{ codeVerifier: "v", run }], `run ${run}`);
          s.close();
        }
      } finally {
        removeDir(dir);
      }
    });
  });
}
