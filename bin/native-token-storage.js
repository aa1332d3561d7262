#!/usr/bin/env node
"use strict";
// The package's command line: `native-token-storage doctor [folder] [--json] [--fix] [--diff]`
// (lib/doctor/, below), and the operator's commands on a store: stats, cleanup, revoke,
// backup, restore, copy (lib/cli.js, which also prints the usage of them all).
const path = require("node:path");

const USAGE = `Usage: native-token-storage doctor [folder] [--json] [--fix] [--diff]

Reads the source of the server in folder (default: the current folder) and lists what
stops the swap to native-token-storage from working, and what costs you, each with its
file:line and the edit to make.

  --fix    make the edits doctor knows exactly; each changed file is first copied to
           file.bak (file.bak.1, … when that exists), and every edited file must parse
           before anything is written. Edits it cannot make exactly are left, with what
           to do by hand.
  --diff   print those edits as a unified diff (for patch -p1 or git apply); write nothing
  --json   the findings as JSON (with --fix or --diff: the changes too)
  --help   this text

Exit code: 0 nothing stops the swap (after --fix: nothing is left that does), 1 something
does, or a file does not parse, or --fix could not write its edits; 2 a usage error.
`;

const FLAGS = new Set(["--json", "--fix", "--diff"]);

function doctorCommand(argv) {
  const { doctor, fix, format } = require("../lib/doctor");
  const words = argv.filter((a) => !a.startsWith("-"));
  const flags = argv.filter((a) => a.startsWith("-"));
  if (flags.includes("--help") || flags.includes("-h")) {
    process.stdout.write(USAGE);
    return 0;
  }
  const unknown = flags.find((f) => !FLAGS.has(f));
  const problem = unknown ? `unknown option ${unknown}`
    : words.length > 2 ? `one folder at most (got ${words.slice(1).join(", ")})` : null;
  if (problem) {
    process.stderr.write(`native-token-storage: ${problem}\n\n${USAGE}`);
    return 2;
  }
  const folder = words[1] ?? ".";
  const json = flags.includes("--json");
  const showDiff = flags.includes("--diff");
  const fixing = showDiff || flags.includes("--fix");
  let result;
  let fixed = null;
  try {
    result = doctor(folder);
    if (result.tokenStorage && fixing) fixed = fix(folder, { write: !showDiff });
  } catch (err) {
    process.stderr.write(`native-token-storage doctor: ${err.message}\n`);
    return 2;
  }
  if (!result.tokenStorage) {
    process.stderr.write(`native-token-storage doctor: no token storage found under ${folder} (no token module, no require of native-token-storage); give the server's folder.\n`);
    return 2;
  }
  const shown = path.relative(process.cwd(), result.folder) || ".";
  if (!fixed) {
    process.stdout.write(json ? `${JSON.stringify(result, null, 2)}\n` : format(result, shown));
    return result.ready ? 0 : 1;
  }
  if (fixed.error) {
    if (json) process.stdout.write(`${JSON.stringify({ error: fixed.error, changes: [], result }, null, 2)}\n`);
    process.stderr.write(`native-token-storage doctor: ${fixed.error}\n`);
    return 1;
  }
  if (showDiff) {
    if (json) process.stdout.write(`${JSON.stringify({ changes: fixed.changes, refused: fixed.refused }, null, 2)}\n`);
    else {
      process.stdout.write(fixed.changes.map((c) => c.diff).join(""));
      if (!fixed.changes.length) process.stderr.write("native-token-storage doctor: nothing to change: every edit doctor knows is made.\n");
    }
    return 0;
  }
  // After the edits: what is left, read again from the files as they are now.
  const after = fixed.changes.length ? doctor(folder) : result;
  if (json) {
    process.stdout.write(`${JSON.stringify({ changes: fixed.changes.map(({ file, backup, findings }) => ({ file, backup, findings })), result: after }, null, 2)}\n`);
    return after.ready ? 0 : 1;
  }
  const out = [];
  if (!fixed.changes.length) out.push("native-token-storage doctor --fix: nothing to change: every edit doctor knows is made.");
  else {
    out.push(`native-token-storage doctor --fix: changed ${fixed.changes.length} file${fixed.changes.length === 1 ? "" : "s"}:`);
    for (const c of fixed.changes) out.push(`  ${c.file} (${c.findings.join(", ")}); the old one is in ${c.backup}`);
  }
  out.push("", "What is left:", "");
  process.stdout.write(`${out.join("\n")}\n${format(after, shown)}`);
  return after.ready ? 0 : 1;
}

const argv = process.argv.slice(2);
if (argv[0] === "doctor") process.exitCode = doctorCommand(argv);
else {
  // The store's own info lines ("token store opened") are a server's log, not a command's
  // output: warnings and errors only, unless TOKEN_STORAGE_LOG says otherwise.
  process.env.TOKEN_STORAGE_LOG ||= "warn";
  require("../lib/cli")
    .main(argv)
    .then((code) => {
      process.exitCode = code;
    });
}
