"use strict";
// (e′) Ours, SQLite store, without getStats' counters: to show what they cost a write (issue 18).
// The file is created by the package (schema and counting triggers), then its four counting
// triggers are dropped before the store measured here opens it, so every write runs the same
// statements minus the counting. The counters then go stale, so getStats here counts the rows
// (a COUNT over the file, through better-sqlite3): its time is not the package's; only the
// writes are meant to be compared with "ours SQLite".
const Database = require("better-sqlite3");
const { openOurs } = require("./ours");

const COUNTING_TRIGGERS = ["nts_access_insert", "nts_access_delete", "nts_access_update", "nts_access_replace"];

function open({ path }) {
  const creator = openOurs({ storage: "db", path });
  creator.getStats();
  creator.close();
  const db = new Database(path);
  db.pragma("busy_timeout = 5000");
  for (const name of COUNTING_TRIGGERS) db.exec(`DROP TRIGGER IF EXISTS ${name}`);
  const count = db.prepare(`SELECT COUNT(*) AS totalTokens,
      COUNT(DISTINCT CASE WHEN user_id <> '' THEN user_id END) AS uniqueUsers
    FROM access_tokens WHERE expires_at IS NULL OR expires_at > ?`);
  const store = openOurs({ storage: "db", path });
  store.getStats = () => ({ ...count.get(Date.now()), storage: "sqlite" });
  const close = store.close.bind(store);
  store.close = () => {
    close();
    db.close();
  };
  return store;
}

module.exports = { open };
