"use strict";
// Suite 6 of issue 3, the values the seeded fuzzer does not make: Dates from another realm
// (vm contexts, as test runners and sandboxes create them) and Date objects whose getTime
// lies. The contract: a Date is accepted; a value of the wrong type is a TypeError that
// names the function and the argument.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const vm = require("node:vm");
const { PKG } = require("./fixtures/common");
process.env.TOKEN_STORAGE_LOG = "silent";
const { TokenStorage } = require(PKG);

const store = () => new TokenStorage({ storage: "memory" });

test("a Date from another realm (vm context) is accepted as expiresAt", () => {
  const s = store();
  const when = Date.now() + 3_600_000;
  const foreign = vm.runInNewContext(`new Date(${when})`);
  assert.equal(foreign instanceof Date, false, "the premise: instanceof fails across realms");
  s.storeAccessToken("t", null, "k", "u", "c", vm.runInNewContext("['read']"), foreign);
  assert.equal(s.getAccessToken("t").expiresAt.getTime(), when);
});

test("a Date whose getTime does not return a number is a TypeError naming the function and argument", () => {
  class LyingDate extends Date {
    getTime() {
      return "soon";
    }
  }
  const s = store();
  assert.throws(
    () => s.storeAccessToken("t", null, "k", "u", "c", [], new LyingDate()),
    (err) => err instanceof TypeError && /storeAccessToken/.test(err.message) && /expiresAt/.test(err.message),
  );
  assert.equal(s.getAccessToken("t"), null, "nothing stored");
});
