"use strict";
// A second instance for __test__/postgres-cache.test.js and redis-cache.test.js: a process
// with its own TokenStorage on the schema (or store) given, answering one JSON line per JSON
// line read (`peer` in ./cache-peers.js drives it).
//   { op: "run", code }             runs `code` with `tokens` (the store) in scope, answers its value
//                                  (awaited, when it is a Promise)
//   { op: "watch", token, ms, promises }
//                                  reads `token` (which must be live) again and again, as fast as it
//                                  can, until the answer differs from the first one or `ms` pass;
//                                  answers when it changed (wall clock, ms), how many reads it made
//                                  and the last answer. "armed" is written once the first read is done.
//                                  `promises`: each read is `await tokens.promises.getAccessToken`.
const readline = require("node:readline");
const { TokenStorage } = require("../..");

// Either a PostgreSQL URL and schema, or the options of any store, as JSON (the Redis cache's test).
const [url, schema] = process.argv.slice(2);
const options = url.startsWith("{") ? JSON.parse(url) : { storage: "postgres", url, schema };
const tokens = new TokenStorage({ cleanupInterval: 0, refreshGracePeriod: 1, ...options });
const wall = () => performance.timeOrigin + performance.now();
const send = (v) => process.stdout.write(`${JSON.stringify(v)}\n`);

readline.createInterface({ input: process.stdin }).on("line", async (line) => {
  const msg = JSON.parse(line);
  try {
    if (msg.op === "run") {
      send({ value: (await new Function("tokens", msg.code)(tokens)) ?? null });
    } else if (msg.op === "watch") {
      // The synchronous reads not awaited: the loop holds the thread, as a caller's would.
      const get = msg.promises ? (t) => tokens.promises.getAccessToken(t) : (t) => tokens.getAccessToken(t);
      const read = msg.promises ? async (t) => JSON.stringify(await get(t)) : (t) => JSON.stringify(get(t));
      const first = await read(msg.token);
      send({ armed: true });
      const until = wall() + msg.ms;
      let reads = 0;
      let last = first;
      let changedAt = null;
      while (wall() < until) {
        last = msg.promises ? await read(msg.token) : read(msg.token);
        reads += 1;
        if (last !== first) {
          changedAt = wall();
          break;
        }
      }
      send({ changedAt, reads, last: JSON.parse(last) });
    } else if (msg.op === "close") {
      tokens.close();
      send({ closed: true });
      process.exit(0);
    }
  } catch (e) {
    send({ error: `${e.code}: ${e.message}` });
  }
});
send({ ready: true });
