"use strict";
// The rule on the old database file: an old tokens.db that the package's default file would
// leave behind, when TOKEN_DB_PATH is set nowhere.

const fs = require("node:fs");
const path = require("node:path");
const { relative } = require("../files");
const { textOf } = require("../syntax");

/** Where the old module kept its file: `path.join(__dirname, …)` in its source, else `utils/../data/tokens.db`. */
function oldDatabasePath(f) {
  for (const n of f.nodes) {
    if (n.type !== "CallExpression" || !/^path\.(?:join|resolve)$/.test(textOf(f, n.callee)) || n.arguments[0]?.name !== "__dirname") continue;
    const parts = n.arguments.slice(1);
    if (parts.length && parts.every((p) => p.type === "Literal" && typeof p.value === "string") && /\.(?:db|sqlite3?)$/.test(parts.at(-1).value)) {
      return path.join(path.dirname(f.abs), ...parts.map((p) => p.value));
    }
  }
  return path.join(path.dirname(f.abs), "..", "data", "tokens.db");
}

/** An old tokens.db that the package's default file would leave behind, when TOKEN_DB_PATH is set nowhere. */
function oldDatabase(root, files, databases, report, start, settings) {
  const found = new Set(databases);
  for (const f of files) if (f.kind === "old-db") found.add(oldDatabasePath(f));
  const existing = [...found].filter((file) => fs.existsSync(file));
  if (!existing.length) return;
  if ([...files.map((f) => f.src), ...settings].some((t) => t.includes("TOKEN_DB_PATH"))) return;
  const here = path.join(start.cwd, "data", "tokens.db");
  const beside = start.main ? path.join(path.dirname(start.main), "data", "tokens.db") : here;
  const chosen = fs.existsSync(here) || !fs.existsSync(beside) ? here : beside;
  for (const db of existing) {
    if (db === chosen) continue;
    const setting = `TOKEN_DB_PATH=${relative(start.cwd, db)}`;
    const how = start.how ?? (start.main ? `node ${relative(start.cwd, start.main)}` : "the server");
    const why = `Started by ${how} in ${start.cwd === root ? "this folder" : relative(root, start.cwd)}, native-token-storage opens ` +
      `${relative(root, chosen)}${fs.existsSync(chosen) ? " (which exists too)" : ", a new empty file,"} instead: every user would have to log in again.`;
    const problem = `the old database ${relative(root, db)} is not the file native-token-storage will open`;
    const fix = "Point TOKEN_DB_PATH at it (a relative path is resolved against the server's working directory):";
    if (start.startAt >= 0) {
      report.add(start.pkgFile, "costs", "old-database", start.startAt, problem, why, fix, { edits: [{ start: start.startAt, end: start.startAt, text: `${setting} ` }] });
    } else {
      const pseudo = { rel: relative(root, db), src: "", starts: [0] };
      report.add(pseudo, "costs", "old-database", null, problem, why, fix, { byHand: `set ${setting} where the server is started` });
    }
  }
}

module.exports = { oldDatabase };
