"use strict";
// Errors: the one list of codes (lib/errors.js) against docs/errors.md and index.d.ts, the
// TokenStorageError class (instanceof, name, code, stack) from sync calls, the
// constructor and Promises, and argument errors that stay TypeErrors.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { PKG, tempDir, removeDir } = require("./helpers/setup");
const { TokenStorage, TokenStorageError } = require(PKG);
const { CODES } = require("../lib/errors");

const codesIn = (text) => [...new Set(text.match(/ERR_TOKEN_STORAGE_[A-Z_]+/g))].sort();

describe("the list of codes", () => {
  const listed = Object.keys(CODES).sort();

  it("the table of codes in docs/errors.md has exactly the listed codes, one row each", () => {
    const doc = fs.readFileSync(path.join(PKG, "docs", "errors.md"), "utf8");
    const rows = doc.split("\n").filter((line) => /^\| `ERR_TOKEN_STORAGE_/.test(line));
    const firstCells = rows.map((line) => line.match(/^\| `(ERR_TOKEN_STORAGE_[A-Z_]+)`/)[1]).sort();
    assert.deepEqual(firstCells, listed);
    assert.deepEqual(codesIn(doc).filter((code) => !listed.includes(code)), [], "docs/errors.md names a code lib/errors.js does not list");
  });

  it("index.d.ts's TokenStorageErrorCode has exactly the listed codes", () => {
    const types = fs.readFileSync(path.join(PKG, "index.d.ts"), "utf8");
    const union = types.slice(types.indexOf("export type TokenStorageErrorCode"), types.indexOf(";", types.indexOf("export type TokenStorageErrorCode")));
    assert.deepEqual(codesIn(union), listed);
  });
});

describe("TokenStorageError", () => {
  it("is what a failing call throws: instanceof, name, code, message naming the path, a stack through the caller", () => {
    const dir = tempDir();
    try {
      const s = new TokenStorage({ storage: "db", path: dir }); // a directory
      let err;
      try {
        s.getStats();
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof TokenStorageError && err instanceof Error);
      assert.equal(err.name, "TokenStorageError");
      assert.equal(err.code, "ERR_TOKEN_STORAGE_OPEN");
      assert.ok(err.message.includes(dir), err.message);
      assert.match(err.stack, /errors\.test\.js/);
    } finally {
      removeDir(dir);
    }
  });

  it("a bad option is a TokenStorageError with ERR_TOKEN_STORAGE_CONFIG naming the option", () => {
    assert.throws(
      () => new TokenStorage({ storage: "redis" }),
      (e) => e instanceof TokenStorageError && e.code === "ERR_TOKEN_STORAGE_CONFIG" && /options\.storage/.test(e.message) && /redis/.test(e.message),
    );
    assert.throws(() => new TokenStorage({ storage: "db", synchronous: "off" }), (e) => e instanceof TokenStorageError && /options\.synchronous/.test(e.message));
  });

  it("a Promise rejects with it too (cleanupExpiredTokensAsync)", async () => {
    const dir = tempDir();
    try {
      const s = new TokenStorage({ storage: "db", path: dir });
      await assert.rejects(s.cleanupExpiredTokensAsync(), (e) => e instanceof TokenStorageError && e.code === "ERR_TOKEN_STORAGE_OPEN" && e.message.includes(dir));
    } finally {
      removeDir(dir);
    }
  });

  it("argument errors stay TypeErrors, with no code", () => {
    const s = new TokenStorage({ storage: "memory" });
    assert.throws(() => s.storeAccessToken("", null, "k", "u", "c"), (e) => e instanceof TypeError && !(e instanceof TokenStorageError) && e.code === undefined);
  });

  it("can be made by hand (for tests of the caller's error handling)", () => {
    const e = new TokenStorageError("locked", "ERR_TOKEN_STORAGE_BUSY");
    assert.ok(e instanceof Error);
    assert.deepEqual([e.name, e.code, e.message], ["TokenStorageError", "ERR_TOKEN_STORAGE_BUSY", "locked"]);
  });
});
