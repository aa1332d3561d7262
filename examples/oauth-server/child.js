"use strict";
// Runs server.js as a child process, the way it runs in production, so that a test or the
// demo can kill it and start it again on the same port.
const { spawn } = require("node:child_process");
const path = require("node:path");

const SERVER = path.join(__dirname, "server.js");
const START_TIMEOUT_MS = 10000;

/**
 * Starts `node server.js` with `env` added to this process's environment and resolves once it
 * listens: { url, port, child, lines, stop(signal) }. `lines` collects its output; `onLine`
 * sees each line as it comes. Rejects (and kills the child) if it exits or is not up in time.
 */
function spawnServer({ env = {}, port = 0, onLine = () => {} } = {}) {
  const child = spawn(process.execPath, [SERVER], {
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const lines = [];
  const stop = async (signal = "SIGTERM") => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };

  return new Promise((resolve, reject) => {
    const fail = (message) => {
      clearTimeout(timer);
      stop("SIGKILL").then(() => reject(new Error(`${message}\n${lines.join("\n")}`)));
    };
    const timer = setTimeout(() => fail(`server did not start within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    const onEarlyExit = (code, signal) => fail(`server exited during start (code ${code}, signal ${signal})`);
    child.once("exit", onEarlyExit);
    child.once("error", (err) => fail(`could not run the server: ${err.message}`));
    for (const stream of [child.stdout, child.stderr]) {
      let buffered = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk) => {
        const parts = (buffered + chunk).split("\n");
        buffered = parts.pop();
        for (const line of parts) {
          lines.push(line);
          onLine(line);
          const ready = parseReady(line);
          if (ready) {
            clearTimeout(timer);
            child.off("exit", onEarlyExit);
            resolve({ url: ready.url, port: Number(new URL(ready.url).port), child, lines, stop });
          }
        }
      });
    }
  });
}

/** server.js prints one JSON line `{ "message": "listening", "url": … }` once it is up. */
function parseReady(line) {
  try {
    const entry = JSON.parse(line);
    return entry && entry.message === "listening" && entry.url ? entry : null;
  } catch {
    return null;
  }
}

module.exports = { spawnServer };
