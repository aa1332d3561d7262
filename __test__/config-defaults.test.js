"use strict";
// Every default is in lib/defaults.js, the native store's settings included: what a store
// is given when an option is left out is that, and the documentation says the same values.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const DEFAULTS = require("../lib/defaults");
const { storeConfig } = require("../lib/config");

const ROOT = path.join(__dirname, "..");
const read = (file) => fs.readFileSync(path.join(ROOT, file), "utf8");

/**
 * Each setting with a default: the option, its native setting, the kinds of store that have
 * it (`kinds`, in their `settings`; every kind: in the configuration itself), the value the
 * store gets, the default as the docs write it.
 */
const SQLITE = ["sqlite"];
const POSTGRES = ["postgres"];
const SETTINGS = [
  { option: "busyTimeout", native: "busyTimeoutMs", kinds: SQLITE, value: DEFAULTS.BUSY_TIMEOUT_MS, shown: String(DEFAULTS.BUSY_TIMEOUT_MS) },
  { option: "connectTimeout", native: "connectTimeoutMs", kinds: POSTGRES, value: DEFAULTS.CONNECT_TIMEOUT_MS, shown: String(DEFAULTS.CONNECT_TIMEOUT_MS) },
  { option: "queryTimeout", native: "queryTimeoutMs", kinds: POSTGRES, value: DEFAULTS.QUERY_TIMEOUT_MS, shown: String(DEFAULTS.QUERY_TIMEOUT_MS) },
  { option: "poolSize", native: "poolSize", kinds: POSTGRES, value: DEFAULTS.POOL_SIZE, shown: String(DEFAULTS.POOL_SIZE) },
  { option: "refreshGracePeriod", native: "refreshGraceMs", kinds: null, value: DEFAULTS.REFRESH_GRACE_SECONDS * 1000, shown: String(DEFAULTS.REFRESH_GRACE_SECONDS), env: "TOKEN_REFRESH_GRACE_SECONDS" },
  { option: "schema", native: "schema", kinds: POSTGRES, value: DEFAULTS.SCHEMA, shown: `\`"${DEFAULTS.SCHEMA}"\``, env: "TOKEN_DB_SCHEMA", envShown: `\`${DEFAULTS.SCHEMA}\`` },
  { option: "synchronous", native: "sync", kinds: SQLITE, value: DEFAULTS.SYNCHRONOUS, shown: null },
];

/** The value a store of `storage` is given for `s`, or undefined if that kind has no such setting. */
function given(config, storage, s) {
  if (s.kinds === null) return config[s.native];
  return s.kinds.includes(storage) ? config.settings[s.native] : undefined;
}

const PG = "postgres://tokens@db.invalid/tokens";

describe("the native store's settings left out", () => {
  for (const storage of ["memory", "sqlite", "postgres"]) {
    it(`a ${storage} store is given lib/defaults.js's value of each`, () => {
      const options = { storage, path: storage === "sqlite" ? path.join(ROOT, "never-opened.db") : undefined, url: storage === "postgres" ? PG : undefined };
      const { config } = storeConfig(options);
      for (const s of SETTINGS.filter((s) => s.kinds === null || s.kinds.includes(storage))) {
        assert.equal(given(config, storage, s), s.value, `${storage}: ${s.native}`);
      }
    });
  }

  it("an option given is passed as given, in the store's unit", () => {
    const { config } = storeConfig({ storage: "postgres", url: PG, connectTimeout: 1500, queryTimeout: 2500, poolSize: 7, refreshGracePeriod: 3, schema: "tokens" });
    assert.deepEqual(
      [config.settings.connectTimeoutMs, config.settings.queryTimeoutMs, config.settings.poolSize, config.refreshGraceMs, config.settings.schema],
      [1500, 2500, 7, 3000, "tokens"],
    );
    assert.equal(storeConfig({ storage: "sqlite", path: path.join(ROOT, "never-opened.db"), busyTimeout: 0 }).config.settings.busyTimeoutMs, 0);
  });
});

describe("the documented defaults are lib/defaults.js's", () => {
  const types = read("index.d.ts");
  const configuration = read("docs/configuration.md");

  for (const s of SETTINGS.filter((s) => s.shown !== null)) {
    it(`${s.option}: index.d.ts and docs/configuration.md`, () => {
      const declared = types.match(new RegExp(`/\\*\\*([^*]|\\*(?!/))*\\*/\\s*${s.option}\\?:`));
      assert.ok(declared, `index.d.ts declares ${s.option}`);
      assert.match(declared[0], new RegExp(`[Dd]efault ${s.shown.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?![0-9])`), `index.d.ts: ${s.option}`);
      const name = s.env ?? s.option;
      const row = configuration.split("\n").find((line) => line.startsWith(`| \`${name}\``));
      assert.ok(row, `docs/configuration.md has a row for ${name}`);
      assert.ok(row.includes(`efault ${s.envShown ?? s.shown}`), `docs/configuration.md: ${name}: ${row}`);
    });
  }
});
