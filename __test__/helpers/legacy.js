"use strict";
// The old JavaScript module's SQLite schema (docs/sqlite.md, "Schema"), written with
// python3's sqlite3 so the file is made by another SQLite than the package's.
const { python } = require("./setup");

/** The three tables exactly as the old module created them: no indexes, user_version 0. */
const LEGACY_SCHEMA = `
CREATE TABLE access_tokens (
  token TEXT PRIMARY KEY,
  api_key TEXT NOT NULL,
  user_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  scopes TEXT,
  refresh_token TEXT,
  expires_at INTEGER,
  created_at INTEGER NOT NULL
);
CREATE TABLE refresh_tokens (
  refresh_token TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  scopes TEXT,
  access_token TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE authorization_codes (
  code TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  api_key TEXT NOT NULL,
  client_id TEXT NOT NULL,
  redirect_uri TEXT NOT NULL,
  code_challenge TEXT NOT NULL,
  code_challenge_method TEXT NOT NULL,
  scopes TEXT,
  expires_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);`;

/**
 * Creates `file` with the legacy schema and inserts `rows`:
 * { access_tokens: [[...8 values]], refresh_tokens: [[...6]], authorization_codes: [[...10]] }.
 */
function writeLegacyFile(file, rows) {
  return python(
    `
con = sqlite3.connect(db)
con.executescript(args["schema"])
for table, n in (("access_tokens", 8), ("refresh_tokens", 6), ("authorization_codes", 10)):
    for row in args["rows"].get(table, []):
        con.execute(f"INSERT INTO {table} VALUES ({','.join('?' * n)})", row)
con.commit()
con.close()
print(json.dumps(True))
`,
    file,
    { schema: LEGACY_SCHEMA, rows },
  );
}

/**
 * Everything python's sqlite3 sees in `file`: each table's rows as objects with the SQLite
 * type of every value, the NOT NULL columns, the indexed columns, journal_mode and user_version.
 */
function inspectFile(file) {
  return python(
    `
con = sqlite3.connect(db)
out = {"tables": {}, "journal_mode": con.execute("PRAGMA journal_mode").fetchone()[0],
       "user_version": con.execute("PRAGMA user_version").fetchone()[0]}
for t in ("access_tokens", "refresh_tokens", "authorization_codes"):
    info = con.execute(f"PRAGMA table_info({t})").fetchall()
    cols = [c[1] for c in info]
    rows = []
    for r in con.execute(f"SELECT * FROM {t}").fetchall():
        rows.append({c: {"value": v, "type": type(v).__name__} for c, v in zip(cols, r)})
    indexed = []
    for ix in con.execute(f"PRAGMA index_list({t})").fetchall():
        indexed += [[c[2] for c in con.execute(f"PRAGMA index_info({ix[1]})").fetchall()]]
    out["tables"][t] = {"columns": cols, "notnull": [c[1] for c in info if c[3]], "rows": rows, "indexes": indexed}
con.close()
print(json.dumps(out))
`,
    file,
  );
}

/** Runs `sql` with `params` on `file` in python's sqlite3 (as the old module writing it). */
function execSql(file, sql, params = []) {
  return python(
    `
con = sqlite3.connect(db, timeout=5)
con.execute(args[0], args[1])
con.commit()
con.close()
print(json.dumps(True))
`,
    file,
    [sql, params],
  );
}

module.exports = { LEGACY_SCHEMA, writeLegacyFile, inspectFile, execSql };
