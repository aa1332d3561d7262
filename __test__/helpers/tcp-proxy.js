"use strict";
// A TCP proxy standing for a managed service's endpoint (one host name) in the Redis
// failover test (redis-failover.test.js): a process of its own (so that the test's
// synchronous calls through it do not hold its event loop), listening on a free loopback
// port, which it writes first. Each new connection goes to the port it was last given (one
// line on stdin, answered `ok`); connections made before stay where they were, as they do
// when a failover moves the host name to the new primary.
const net = require("node:net");
const readline = require("node:readline");

let to = Number(process.argv[2]);
const server = net.createServer((client) => {
  const upstream = net.connect(to, "127.0.0.1");
  client.pipe(upstream);
  upstream.pipe(client);
  const end = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on("error", end).on("close", end);
  upstream.on("error", end).on("close", end);
});
server.listen(0, "127.0.0.1", () => process.stdout.write(`${server.address().port}\n`));
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  to = Number(line);
  process.stdout.write("ok\n");
});
process.stdin.on("end", () => process.exit(0));
