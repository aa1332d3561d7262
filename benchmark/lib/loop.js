"use strict";
// What one awaited call held the event loop (trial.js timeAsyncBusy, the watched run): the
// loop's busy time in the call (`performance.eventLoopUtilization`), and the JS thread's own
// clocks around it, to tell the call's work from what the machine added to it.
//
// A call's busy time is wall time. Besides the thread's own work (ours, the answer's shaping,
// a garbage collection meanwhile) it holds the thread's wait for a CPU (a preemption), the
// time the VM or interrupts took from the thread's CPU (the thread neither running, nor
// waiting for a CPU, nor asleep: on this 2-core VM a JavaScript loop that makes no system
// call loses 5-10 ms so, a few times in 3,000 ms; PROFILE.md, "one call held the event loop
// 6,398 µs"), and any sleep of the thread outside the loop's wait for I/O (a lock: ours).
const fs = require("node:fs");
const { performance } = require("node:perf_hooks");

const TASK = `/proc/self/task/${process.pid}`;
const fds = {};
const buf = Buffer.alloc(4096);
function readTask(name) {
  fds[name] ??= fs.openSync(`${TASK}/${name}`, "r");
  return buf.toString("latin1", 0, fs.readSync(fds[name], buf, 0, buf.length, 0));
}

/**
 * The JS thread's clocks so far, or undefined off Linux: its time on a CPU and its time
 * waiting on a run queue (schedstat), ms, and its voluntary context switches (status).
 * `process.cpuUsage()` first brings the thread's CPU time up to date (getrusage updates the
 * calling thread's runtime; schedstat alone lags by up to a scheduler tick). `end`: read
 * after a call, the CPU time first; before one, last (a garbage collection in these reads'
 * own allocations then falls outside the call's CPU time).
 */
function threadClocks(end = false) {
  try {
    const cpu = () => {
      process.cpuUsage();
      return readTask("schedstat").split(" ");
    };
    const [run, wait] = end ? cpu() : [];
    const voluntary = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(readTask("status"))[1]);
    const [runB, waitB] = end ? [run, wait] : cpu();
    return { runMs: Number(runB) / 1e6, waitMs: Number(waitB) / 1e6, voluntary };
  } catch {
    return undefined;
  }
}

/** Turns of the event loop so far (libuv's count; Node 20.18 and later), else undefined. */
const loopTurns = () => performance.nodeTiming.uvMetricsInfo?.loopCount;

/**
 * One call's figures from its busy and idle time (ms), the loop's turns during it, and the
 * thread's clocks before and after it (threadClocks; undefined when unknown):
 * `{ ms, waitedMs, runMs, slept, floorMs }`. `floorMs` is what the call is judged on: its
 * busy time less its wait for a CPU, and less the time taken from the thread too unless the
 * thread slept other than waiting for I/O (more voluntary context switches than turns of
 * the loop that waited: each waits at most once, and none did if the loop was never idle);
 * so, when it did not, the thread's own CPU time in the call (within its busy time: a
 * wake-up from the wait for I/O costs CPU time that the loop counts as idle).
 */
function callFigures({ ms, idleMs, turns, before, after }) {
  if (!before || !after) return { ms, floorMs: ms };
  const waitedMs = after.waitMs - before.waitMs;
  const runMs = after.runMs - before.runMs;
  const pollWaits = Number.isInteger(turns) ? (idleMs > 0 ? turns : 0) : undefined;
  const slept = pollWaits === undefined || after.voluntary - before.voluntary > pollWaits;
  const floorMs = slept ? ms - waitedMs : Math.min(ms, runMs);
  return { ms, waitedMs, runMs, slept, floorMs: Math.max(0, floorMs) };
}

module.exports = { threadClocks, loopTurns, callFigures };
