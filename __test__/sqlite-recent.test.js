"use strict";
// The SQLite store serves a token it read recently without reading the file, while no
// commit happened (issue 18). Never once another process has deleted, revoked or rotated
// it, nor after its expiry, nor from a file replaced under the path.
const { describe, it, beforeEach, afterEach } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { TokenStorage, tempDir, removeDir, nodeJson } = require("./helpers/setup");

const HOUR = 3600e3;

let dir;
let file;
let stores;
const open = () => {
  const s = new TokenStorage({ storage: "db", path: file });
  stores.push(s);
  return s;
};
beforeEach(() => {
  dir = tempDir();
  file = path.join(dir, "tokens.db");
  stores = [];
});
afterEach(() => {
  for (const s of stores) s.close();
  removeDir(dir);
});

/** Runs `code` in another process with `s`, a TokenStorage on the same file; returns what it prints. */
const inOtherProcess = (code) =>
  nodeJson(`const { TokenStorage } = require(PKG); const s = new TokenStorage({ storage: "db", path: ${JSON.stringify(file)} });
            const out = (() => { ${code} })(); s.close(); console.log(JSON.stringify(out ?? null));`);

/** Reads a token often enough that the store keeps it (it keeps a token at its second read). */
const readOften = (s, token) => {
  for (let i = 0; i < 5; i++) assert.ok(s.getAccessToken(token), token);
};

describe("SQLite: tokens read recently", () => {
  const changes = [
    ["deleteToken", `s.deleteToken("at-1")`, null],
    ["revokeRefreshToken", `s.revokeRefreshToken("rt-1")`, null],
    ["deleteUserTokens", `s.deleteUserTokens("user-1")`, null],
    ["rotateRefreshToken", `return s.rotateRefreshToken("rt-1", "at-2", "rt-2", Date.now() + ${HOUR}).accessToken`, null],
    ["storeAccessToken with another API key", `s.storeAccessToken("at-1", "rt-1", "sk-new", "user-1", "client-1", [], Date.now() + ${HOUR})`, "sk-new"],
  ];
  for (const [what, code, apiKey] of changes) {
    it(`a token another process changed (${what}) is read as changed once that call returned`, () => {
      const s = open();
      s.storeAccessToken("at-1", "rt-1", "sk-1", "user-1", "client-1", ["mcp"], Date.now() + HOUR);
      readOften(s, "at-1");
      inOtherProcess(code);
      for (let i = 0; i < 3; i++) assert.equal(s.getAccessToken("at-1")?.apiKey ?? null, apiKey, what);
    });
  }

  it("every change made by another process while this one reads is seen at the next read", () => {
    const s = open();
    const n = 40;
    for (let i = 0; i < n; i++) s.storeAccessToken(`at-${i}`, `rt-${i}`, `sk-${i}`, "user", "client", [], Date.now() + HOUR);
    for (let i = 0; i < n; i++) readOften(s, `at-${i}`);
    // The other process takes tokens away one by one, each time after this one has read
    // every token again; this process checks after each that the removed ones are gone.
    for (let i = 0; i < n; i += 8) {
      inOtherProcess(`for (let j = ${i}; j < ${i + 4}; j++) s.deleteToken("at-" + j); s.revokeRefreshToken("rt-${i + 4}");`);
      for (let j = 0; j < n; j++) {
        const gone = j < i + 5 && j % 8 < 5;
        assert.equal(s.getAccessToken(`at-${j}`) === null, gone, `at-${j} after round ${i}`);
      }
    }
  });

  it("a token read recently is not served at its expiry", async () => {
    const s = open();
    // A second: the five reads must come before it also on a loaded machine.
    const expiresAt = Date.now() + 1000;
    s.storeAccessToken("at-1", null, "sk-1", "user-1", "client-1", [], expiresAt);
    readOften(s, "at-1");
    await new Promise((r) => setTimeout(r, expiresAt - Date.now() + 5));
    assert.equal(s.getAccessToken("at-1"), null);
    assert.equal(inOtherProcess(`return s.getStats().totalTokens`), 0);
  });

  it("a token read recently is not served from a file replaced under the path", () => {
    const s = open();
    s.storeAccessToken("at-1", null, "sk-1", "user-1", "client-1", [], null);
    readOften(s, "at-1");
    const other = path.join(dir, "other.db");
    inOtherProcess(`s.close(); const t = new TokenStorage({ storage: "db", path: ${JSON.stringify(other)} });
                    t.storeAccessToken("at-other", null, "k", "u", "c", [], null); t.close();`);
    fs.renameSync(other, file);
    assert.throws(() => s.getAccessToken("at-1"), { code: "ERR_TOKEN_STORAGE_MOVED" });
    assert.equal(s.getAccessToken("at-1"), null);
    assert.equal(s.getAccessToken("at-other").apiKey, "k");
  });

  it("a token read recently is not served after its folder was renamed away and refilled", () => {
    // The file's folder is watched (inotify), and so is each folder above it: a rename
    // of a folder on the path, done by another process before the read, is seen.
    const inner = path.join(dir, "a", "b");
    file = path.join(inner, "tokens.db");
    const s = open();
    s.storeAccessToken("at-1", null, "sk-1", "user-1", "client-1", [], null);
    readOften(s, "at-1");
    const other = path.join(dir, "other.db");
    inOtherProcess(`s.close(); const fs = require("node:fs");
                    fs.renameSync(${JSON.stringify(path.join(dir, "a"))}, ${JSON.stringify(path.join(dir, "gone"))});
                    const t = new TokenStorage({ storage: "db", path: ${JSON.stringify(other)} });
                    t.storeAccessToken("at-other", null, "k", "u", "c", [], null); t.close();
                    fs.mkdirSync(${JSON.stringify(inner)}, { recursive: true });
                    fs.renameSync(${JSON.stringify(other)}, ${JSON.stringify(file)});`);
    assert.throws(() => s.getAccessToken("at-1"), { code: "ERR_TOKEN_STORAGE_MOVED" });
    assert.equal(s.getAccessToken("at-1"), null);
    assert.equal(s.getAccessToken("at-other").apiKey, "k");
  });
});

// The synchronous gets of one turn share one read transaction (src/store/sqlite/held.rs),
// ended in a microtask: never a snapshot older than what another process committed before
// the read, and never open past the synchronous code that read.
describe("SQLite: the synchronous gets of one turn share one read", () => {
  /** Counts the store's ends of its held read (the native call the JS layer makes at the turn's end). */
  const countEnds = (s) => {
    const native = s._native;
    const real = native.endReads;
    const ends = { count: 0 };
    native.endReads = function endReads() {
      ends.count += 1;
      return real.call(this);
    };
    return ends;
  };

  it("a token another process deleted or stored during the turn is read as it is now", () => {
    const s = open();
    for (const t of ["at-0", "at-1"]) s.storeAccessToken(t, null, `sk-${t}`, "user-1", "client-1", [], Date.now() + HOUR);
    // The read is held from here; at-1 and at-new are read for the first time after the change.
    assert.ok(s.getAccessToken("at-0"));
    inOtherProcess(`s.deleteToken("at-1"); s.storeAccessToken("at-new", null, "sk-new", "user-2", "client-1", [], null);`);
    assert.equal(s.getAccessToken("at-1"), null);
    assert.equal(s.getAccessToken("at-new")?.apiKey, "sk-new");
  });

  it("writes, getStats and gets mix in one turn", () => {
    const s = open();
    s.storeAccessToken("at-1", "rt-1", "sk-1", "user-1", "client-1", [], Date.now() + HOUR);
    assert.ok(s.getAccessToken("at-1"));
    s.storeAccessToken("at-2", "rt-2", "sk-2", "user-2", "client-1", [], Date.now() + HOUR);
    assert.equal(s.getAccessToken("at-2")?.apiKey, "sk-2");
    assert.equal(s.getStats().totalTokens, 2);
    s.deleteToken("at-1");
    assert.equal(s.getAccessToken("at-1"), null);
    assert.equal(s.getRefreshToken("rt-2")?.accessToken, "at-2");
    assert.equal(s.rotateRefreshToken("rt-2", "at-3", "rt-3", Date.now() + HOUR)?.accessToken, "at-3");
    assert.equal(s.getAccessToken("at-3")?.apiKey, "sk-2");
    assert.equal(s.getAccessToken("at-2"), null);
  });

  it("ends once at the end of the turn, after any number of gets; the Promise API holds none", async () => {
    const s = open();
    s.storeAccessToken("at-1", null, "sk-1", "user-1", "client-1", [], null);
    const ends = countEnds(s);
    for (let i = 0; i < 10; i++) s.getAccessToken(i % 2 ? "at-1" : "missing");
    assert.equal(ends.count, 0);
    await null;
    assert.equal(ends.count, 1);
    assert.equal((await s.promises.getAccessToken("at-1")).apiKey, "sk-1");
    await new Promise(setImmediate);
    assert.equal(ends.count, 1);
    s.getAccessToken("at-1");
    await null;
    assert.equal(ends.count, 2);
  });

  it("ends even when the turn's get failed, and after the store was closed", async () => {
    const s = open();
    s.storeAccessToken("at-1", null, "sk-1", "user-1", "client-1", [], null);
    const ends = countEnds(s);
    assert.throws(() => s.getAccessToken(42), TypeError);
    s.getAccessToken("at-1");
    s.close();
    await null;
    assert.equal(ends.count, 1);
    // Ending what a closed store held does not open it again.
    assert.equal(fs.existsSync(`${file}-wal`), false);
  });

  it("a memory store holds nothing to end", async () => {
    const s = new TokenStorage({ storage: "memory" });
    stores.push(s);
    s.storeAccessToken("at-1", null, "sk-1", "user-1", "client-1", [], null);
    const ends = countEnds(s);
    assert.ok(s.getAccessToken("at-1"));
    await null;
    assert.equal(ends.count, 0);
  });
});
