"use strict";
// How the benchmark judges what one awaited call held the event loop (benchmark/lib/loop.js,
// trial.js timeAsyncBusy) and the /promises event-loop targets (benchmark/lib/targets.js):
// the call's busy time less what the machine added (a wait for a CPU, time the VM or
// interrupts took from the thread), but never less a sleep of the thread outside its wait
// for I/O (a lock: ours).
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const { callFigures, threadClocks, loopTurns } = require("../benchmark/lib/loop");
const { targets } = require("../benchmark/lib/targets");

const clocks = (runMs, waitMs, voluntary) => ({ runMs, waitMs, voluntary });

describe("benchmark: what one call held the event loop", () => {
  it("a call that never slept but for I/O is judged on its thread's CPU time", () => {
    // 6.4 ms busy, no wait for a CPU, 0.3 ms on the CPU: the rest was taken from the thread.
    const f = callFigures({ ms: 6.4, idleMs: 0.1, turns: 1, before: clocks(10, 5, 7), after: clocks(10.3, 5, 8) });
    assert.equal(f.slept, false);
    assert.ok(Math.abs(f.floorMs - 0.3) < 1e-9);
    assert.ok(Math.abs(f.runMs - 0.3) < 1e-9);
    assert.equal(f.waitedMs, 0);
    // An answer at hand: no turn of the loop, no sleep.
    assert.equal(callFigures({ ms: 2.8, idleMs: 0, turns: 0, before: clocks(0, 0, 3), after: clocks(0.15, 0.9, 3) }).floorMs, 0.15);
  });

  it("the thread's CPU time never counts above the busy time (a wake-up's cost is idle time)", () => {
    const f = callFigures({ ms: 0.2, idleMs: 5, turns: 3, before: clocks(0, 0, 0), after: clocks(0.9, 0, 3) });
    assert.equal(f.floorMs, 0.2);
  });

  it("a call whose thread slept other than for I/O keeps all but its wait for a CPU", () => {
    // At hand (the loop never waited), one voluntary switch: a lock, say.
    const atHand = callFigures({ ms: 4, idleMs: 0, turns: 0, before: clocks(0, 0, 0), after: clocks(0.1, 1, 1) });
    assert.equal(atHand.slept, true);
    assert.equal(atHand.floorMs, 3);
    // Turns of the loop that were never idle did not wait: their switches are sleeps elsewhere.
    assert.equal(callFigures({ ms: 3, idleMs: 0, turns: 2, before: clocks(0, 0, 0), after: clocks(0.5, 0, 1) }).slept, true);
    // Two switches in one turn that waited: one was elsewhere.
    assert.equal(callFigures({ ms: 3, idleMs: 0.2, turns: 1, before: clocks(0, 0, 0), after: clocks(0.5, 0, 2) }).slept, true);
    // Turns not counted (an older Node): every sleep may be a lock.
    assert.equal(callFigures({ ms: 3, idleMs: 0.2, turns: NaN, before: clocks(0, 0, 0), after: clocks(0.5, 0, 1) }).floorMs, 3);
  });

  it("without the thread's clocks (off Linux) a call is judged on its whole busy time", () => {
    assert.deepEqual(callFigures({ ms: 2, idleMs: 0, turns: 0 }), { ms: 2, floorMs: 2 });
  });

  it("reads this thread's clocks: a spin shows as CPU time, not as a sleep", { skip: process.platform !== "linux" }, () => {
    const a = threadClocks();
    const t0 = performance.now();
    while (performance.now() - t0 < 30);
    const b = threadClocks(true);
    const wall = performance.now() - t0;
    assert.ok(b.runMs - a.runMs > 0 && b.runMs - a.runMs <= wall + 1, `CPU ${b.runMs - a.runMs} ms over a ${wall} ms spin`);
    assert.ok(b.waitMs >= a.waitMs && b.voluntary >= a.voluntary);
    assert.equal(typeof loopTurns(), "number");
  });

  it("the /promises target: met, missed, or not decided when only the machine's time puts a call over 1 ms", () => {
    const ops = (o) => ({ getHit: { us: 100, loopBusyUs: 50, loopDelayMs: 2, ...o } });
    const judge = (o) => {
      const results = [{ peer: "ours-postgres-promise", size: 1_000_000, idleLoopDelayMs: 3, ops: ops(o) }];
      return targets(results).find((r) => r.target.startsWith("PostgreSQL `/promises` never blocks the event loop > 1 ms, 1M"));
    };
    const taken = judge({ callBusyMs: 6.398, callBusyWaitedMs: 0, callBusyRunMs: 0.3, callBusySlept: false, callBusyFloorMs: 0.31 });
    assert.equal(taken.pass, null);
    assert.match(taken.measured, /one call held the loop 6,398 µs at most .*waited for a CPU 0\.000 µs of it and ran 300 µs, never asleep but for I\/O/);
    assert.match(taken.measured, /310 µs at most/);
    assert.equal(judge({ callBusyMs: 6.398, callBusyWaitedMs: 0, callBusyRunMs: 0.3, callBusySlept: true, callBusyFloorMs: 6.398 }).pass, false);
    assert.equal(judge({ callBusyMs: 0.8, callBusyWaitedMs: 0, callBusyRunMs: 0.7, callBusySlept: false, callBusyFloorMs: 0.7 }).pass, true);
  });
});
