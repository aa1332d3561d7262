"use strict";
// Test certificates: a CA and a certificate for `localhost` signed by it, for the TLS suites of
// the PostgreSQL and Redis stores.

const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

/**
 * A CA and a certificate for `localhost` signed by it, made with the openssl command (which
 * Debian's postgresql package depends on), in `dir`. Returns the files' paths.
 */
function makeCertificates(dir) {
  const file = (name) => path.join(dir, name);
  const openssl = (...args) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  fs.writeFileSync(file("ca.ext"), "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n");
  fs.writeFileSync(file("server.ext"), "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n");
  openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", file("ca.key"), "-out", file("ca.csr"), "-subj", "/CN=native-token-storage test CA");
  openssl("x509", "-req", "-in", file("ca.csr"), "-signkey", file("ca.key"), "-out", file("ca.crt"), "-days", "2", "-extfile", file("ca.ext"));
  openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", file("server.key"), "-out", file("server.csr"), "-subj", "/CN=localhost");
  openssl("x509", "-req", "-in", file("server.csr"), "-CA", file("ca.crt"), "-CAkey", file("ca.key"), "-CAcreateserial", "-out", file("server.crt"), "-days", "2", "-extfile", file("server.ext"));
  fs.chmodSync(file("server.key"), 0o600);
  return { ca: file("ca.crt"), cert: file("server.crt"), key: file("server.key") };
}

module.exports = { makeCertificates };
