#!/usr/bin/env node
"use strict";
// The package's command line. `native-token-storage doctor [folder] [--json]`: see lib/doctor.js.
const path = require("node:path");
const { doctor, format } = require("../lib/doctor");

const USAGE = `Usage: native-token-storage doctor [folder] [--json]

Reads the source of the server in folder (default: the current folder) and lists what
stops the swap to native-token-storage from working, and what costs you, each with its
file:line and the edit to make.

  --json   the findings as JSON
  --help   this text

Exit code: 0 nothing stops the swap, 1 something does, 2 a usage error.
`;

function main(argv) {
  const words = argv.filter((a) => !a.startsWith("-"));
  const flags = argv.filter((a) => a.startsWith("-"));
  if (flags.includes("--help") || flags.includes("-h") || words[0] === "help") {
    process.stdout.write(USAGE);
    return 0;
  }
  const unknown = flags.find((f) => f !== "--json");
  const problem = unknown ? `unknown option ${unknown}`
    : words.length === 0 ? "no command given"
      : words[0] !== "doctor" ? `unknown command ${words[0]}`
        : words.length > 2 ? `one folder at most (got ${words.slice(1).join(", ")})` : null;
  if (problem) {
    process.stderr.write(`native-token-storage: ${problem}\n\n${USAGE}`);
    return 2;
  }
  const folder = words[1] ?? ".";
  let result;
  try {
    result = doctor(folder);
  } catch (err) {
    process.stderr.write(`native-token-storage doctor: ${err.message}\n`);
    return 2;
  }
  if (!result.tokenStorage) {
    process.stderr.write(`native-token-storage doctor: no token storage found under ${folder} (no token module, no require of native-token-storage); give the server's folder.\n`);
    return 2;
  }
  process.stdout.write(flags.includes("--json") ? `${JSON.stringify(result, null, 2)}\n` : format(result, path.relative(process.cwd(), result.folder) || "."));
  return result.findings.some((f) => f.severity === "blocks") ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
