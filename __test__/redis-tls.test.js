"use strict";
// `rediss://`: the Redis store over TLS (rustls), against a throwaway redis-server that
// listens for TLS only, with a certificate for `localhost` signed by a test CA. The server's
// certificate is checked against the CA `ssl_ca_certs` names (else the system's, which do
// not hold the test CA) and against the host name; nothing is sent in clear.
const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");

const { TokenStorage } = require("./helpers/setup");
const redis = require("../scripts/redis");

const binary = redis.findServer();
const skip = binary ? false : "no redis-server (Debian: apt-get install redis-server)";

describe("Redis over TLS (rediss://)", { skip }, () => {
  let server;
  before(() => {
    server = redis.startServer({ binary, tls: true });
  });
  after(() => server?.stop());

  const ca = () => `ssl_ca_certs=${encodeURIComponent(server.ca)}`;

  /** What a store on `url` answers to a store and a get: "ok", or the error's code and message. */
  const attempt = (url) => {
    const s = new TokenStorage({ storage: "redis", url, prefix: `tls${process.pid}:`, connectTimeout: 3000 });
    try {
      s.storeAccessToken("tls-token", "tls-refresh", "sk-tls", "u", "c", ["mcp"], null);
      const got = s.getAccessToken("tls-token");
      return got && got.apiKey === "sk-tls" && got.refreshToken === "tls-refresh" ? "ok" : "lost";
    } catch (e) {
      assert.ok(!e.message.includes("hunter2"), `no password in the message: ${e.message}`);
      assert.ok(!e.message.includes("sk-tls"), `no API key in the message: ${e.message}`);
      return `${e.code}: ${e.message}`;
    } finally {
      s.close();
    }
  };

  it("stores and reads through a certificate the named CA signed, for the URL's host name", () => {
    assert.equal(attempt(`rediss://localhost:${server.port}/0?${ca()}`), "ok");
    // A password in the URL (the default user takes any when it has none) changes nothing.
    assert.equal(attempt(`rediss://default:hunter2@localhost:${server.port}/0?${ca()}`), "ok");
  });

  it("refuses a certificate for another host name, naming the mismatch", () => {
    assert.match(attempt(`rediss://default:hunter2@127.0.0.1:${server.port}/0?${ca()}`), /^ERR_TOKEN_STORAGE_OPEN: .*not valid for name "127\.0\.0\.1"/);
  });

  it("refuses a certificate no trusted CA signed (the system's CAs, without ssl_ca_certs)", () => {
    assert.match(attempt(`rediss://default:hunter2@localhost:${server.port}/0`), /^ERR_TOKEN_STORAGE_OPEN: .*UnknownIssuer/);
  });

  it("a redis:// URL against the TLS port fails at once, as a server that closed the connection", () => {
    const t0 = Date.now();
    assert.match(attempt(`redis://default:hunter2@localhost:${server.port}/0`), /^ERR_TOKEN_STORAGE_UNAVAILABLE: .*closed the connection/);
    assert.ok(Date.now() - t0 < 2500, "before the connect timeout");
  });

  it("a CA file that cannot be read is a configuration error at the constructor, naming the setting, not the password", () => {
    const url = `rediss://default:hunter2@localhost:${server.port}/0?ssl_ca_certs=%2Fnonexistent%2Fca.pem`;
    assert.throws(
      () => new TokenStorage({ storage: "redis", url }),
      (e) => e.code === "ERR_TOKEN_STORAGE_CONFIG" && /ssl_ca_certs \/nonexistent\/ca\.pem cannot be read/.test(e.message) && !e.message.includes("hunter2"),
    );
  });
});
