"use strict";
// Small helpers shared by the example server, the stub upstream, the demo and the tests.
const http = require("node:http");

/** Starts an http.Server for `app` and resolves once it listens (port 0 = an ephemeral port). */
function listen(app, { port = 0, host = "127.0.0.1" } = {}) {
  return new Promise((resolve, reject) => {
    const server = http.createServer(app);
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}

/** Closes a server and every connection to it (keep-alive ones included), so no handle stays open. */
function close(server) {
  return new Promise((resolve, reject) => {
    if (!server.listening) return resolve();
    server.close((err) => (err ? reject(err) : resolve()));
    server.closeAllConnections();
  });
}

/** The base URL a listening server is reachable at. */
function urlOf(server) {
  const { address, port } = server.address();
  return `http://${address}:${port}`;
}

/** `url` with the given query parameters added (undefined values are skipped). */
function withParams(url, params) {
  const u = new URL(url);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) u.searchParams.set(name, value);
  }
  return u.toString();
}

/** At most the first 8 characters of a secret: what may appear in logs and output. */
function mask(secret) {
  return typeof secret === "string" && secret ? `${secret.slice(0, 8)}…` : String(secret);
}

module.exports = { listen, close, urlOf, withParams, mask };
