"use strict";
// Suite 6 of issue 3, the values the seeded fuzzer does not make: Dates from another realm
// (vm contexts, as test runners and sandboxes create them) and Date objects whose getTime
// lies. The contract: a Date is accepted; a value of the wrong type is a TypeError that
// names the function and the argument.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const vm = require("node:vm");
const { PKG } = require("./helpers/common");
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

test("a Date whose getTime is overridden is read by its own time value, never by the override", () => {
  // Found by this suite: the override's string used to reach the addon and fail with a
  // plain Error (NumberExpected) instead of being handled.
  const when = Date.now() + 3_600_000;
  class LyingDate extends Date {
    getTime() {
      return "soon";
    }
  }
  const s = store();
  s.storeAccessToken("t", null, "k", "u", "c", [], new LyingDate(when));
  assert.equal(Date.prototype.getTime.call(s.getAccessToken("t").expiresAt), when);
  const invalid = new LyingDate(Number.NaN);
  assert.throws(
    () => s.storeAccessToken("t2", null, "k", "u", "c", [], invalid),
    (err) => err instanceof TypeError && /storeAccessToken/.test(err.message) && /expiresAt/.test(err.message),
  );
  assert.equal(s.getAccessToken("t2"), null, "nothing stored");
});
