"use strict";
// The progress of a long command (issue 19): on a terminal, one line updated in place
// (carriage return and erase-line, a newline only at the end); off a terminal, plain lines,
// no control characters. The terminal is a pseudo-terminal of util-linux's `script`.
const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { tempDir, removeDir, cleanEnv } = require("./helpers/setup");

const { BIN, seedTokens } = require("./helpers/cli");
const hasScript = spawnSync("script", ["--version"]).status === 0;
const TOKENS = 30_000;

/** A shell word. */
const quote = (s) => `'${String(s).replace(/'/g, "'\\''")}'`;

describe("progress of copy", () => {
  let dir;
  let source;
  before(() => {
    dir = tempDir("nts-progress-");
    source = path.join(dir, "source.db");
    seedTokens(source, TOKENS, { user: () => "u", scopes: [] });
  });
  after(() => removeDir(dir));

  it("on a terminal: one line updated in place, a newline only at the end", { skip: hasScript ? false : "util-linux script is not installed" }, () => {
    const target = path.join(dir, "tty.db");
    // stdout to /dev/null: what the terminal shows is stderr, the progress.
    const command = `${quote(process.execPath)} ${quote(BIN)} copy ${quote(source)} ${quote(target)} --batch-size 5 > /dev/null`;
    const r = spawnSync("script", ["-qfec", command, "/dev/null"], { encoding: "utf8", env: cleanEnv(), timeout: 120_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const shown = r.stdout;
    const updates = shown.split("\r\x1b[K").filter((x) => x !== "");
    assert.ok(updates.length >= 2, `updated in place more than once: ${JSON.stringify(shown.slice(0, 300))}`);
    for (const [i, u] of updates.entries()) {
      assert.match(u, /^copy: \d+ rows( of \d+ \(\d+ %\))?, \d+ rows\/s/, JSON.stringify(u));
      if (i < updates.length - 1) assert.doesNotMatch(u, /\n/, "no new line before the end");
    }
    assert.match(updates.at(-1), /^copy: (\d+) rows of \1 \(100 %\).*\r?\n$/, "the last update: everything, then the line ends");
    assert.doesNotMatch(shown, /secret-/);
  });

  it("off a terminal: plain lines, no control characters", () => {
    const target = path.join(dir, "plain.db");
    const r = spawnSync(process.execPath, [BIN, "copy", source, target, "--batch-size", "5"], { encoding: "utf8", env: cleanEnv(), timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(fs.existsSync(target));
    const lines = r.stderr.split("\n").filter((l) => l !== "");
    assert.ok(lines.length >= 1);
    for (const l of lines) assert.match(l, /^copy: \d+ rows( of \d+ \(\d+ %\))?, \d+ rows\/s/);
    assert.match(lines.at(-1), /^copy: (\d+) rows of \1 \(100 %\)/);
    assert.doesNotMatch(r.stderr, /[\r\x1b]/, "no carriage return or escape off a terminal");
  });
});
