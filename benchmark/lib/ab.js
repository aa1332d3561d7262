"use strict";
// What the A/B scripts (ab-sqlite.js, ab-postgres.js) share: `--name value` options, and the
// settings every one of them takes.

// The value after `--name` on the command line, else `fallback`.
function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
}

// --baseline DIR (required: `usage` is printed without it), --size, --rounds.
function common(usage) {
  const baseline = option("baseline", null);
  if (!baseline) {
    console.error(usage);
    process.exit(2);
  }
  return { baseline, size: Number(option("size", "10000")), rounds: Number(option("rounds", "21")) };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

module.exports = { option, common, median };
