"use strict";
// The operator's commands of `native-token-storage` (bin/native-token-storage.js; `doctor`
// is lib/doctor's): stats, cleanup, revoke, backup, restore, copy, encrypt, decrypt, rekey. The store is configured as
// the library's default store is (TOKEN_STORAGE, TOKEN_DB_PATH, TOKEN_DATABASE_URL or
// DATABASE_URL, TOKEN_DB_SCHEMA: lib/config.js), each setting also a flag. Results on stdout
// (text, or JSON with --json), progress and errors on stderr, never a token, key or
// connection string. Exit codes: EXIT below (docs/operations.md lists them).

const fs = require("node:fs");
const os = require("node:os");
const nodePath = require("node:path");
const { parseArgs } = require("node:util");
const { TokenStorage } = require("./storage");
const { ENVIRONMENT, storeConfig } = require("./config");
const { fromNative } = require("./errors");
const DEFAULTS = require("./defaults");
const native = require("./native");

/** What scripts can rely on. */
const EXIT = Object.freeze({
  OK: 0,
  /** The store failed: unreachable, damaged, or a copy that did not check out. */
  FAILED: 1,
  /** A usage error: an unknown command or flag, a missing or bad argument or setting. */
  USAGE: 2,
  /** The store or file to read does not exist: a SQLite file, a backup, a PostgreSQL schema. */
  NOT_FOUND: 3,
  /** Refused: the destination file exists, or the target store holds rows (see --force). */
  REFUSED: 4,
  /** An encrypted backup did not open: wrong passphrase or key, or a damaged or altered file. */
  CANNOT_DECRYPT: 5,
});

/** Where a backup's passphrase may come from besides --passphrase-file (never a flag's value). */
const PASSPHRASE_ENV = "TOKEN_BACKUP_PASSPHRASE";

const STORE_FLAGS = {
  storage: { type: "string" },
  path: { type: "string" },
  url: { type: "string" },
  schema: { type: "string" },
  prefix: { type: "string" },
};
const COMMON = { json: { type: "boolean" }, help: { type: "boolean", short: "h" } };
const COPYING = { force: { type: "boolean" }, "batch-size": { type: "string" }, quiet: { type: "boolean", short: "q" } };
const PASSPHRASE = { "passphrase-file": { type: "string" } };

const STORE_HELP = `The store is the one the library opens (the same environment): TOKEN_STORAGE (memory, db or
sqlite, postgres, redis), TOKEN_DB_PATH, TOKEN_DATABASE_URL (or DATABASE_URL), TOKEN_DB_SCHEMA,
TOKEN_REDIS_URL (or REDIS_URL), TOKEN_REDIS_PREFIX, or the flags --storage, --path, --url,
--schema, --prefix (--path alone means a SQLite file, --url alone PostgreSQL, or Redis for a
redis:// or rediss:// URL). The store must exist (a SQLite file; a PostgreSQL schema holding
this package's tables; keys under the Redis prefix): nothing is created, except by restore
and the TO of copy. A store sealed
with TOKEN_ENCRYPTION_KEYS needs them set; backup, restore and copy carry its rows as they
are, with its mark: the copy opens only with the same keys.`;

const EXIT_HELP = `Exit codes: 0 done; 1 the store failed (unreachable, damaged, counts that differ);
2 a usage error (unknown command or flag, bad argument or setting); 3 the file or PostgreSQL
schema to read does not exist; 4 refused (the destination exists, or the target holds rows: see --force);
5 an encrypted backup did not open (wrong passphrase or key, damaged or altered).`;

const ENCRYPTION_HELP = `The passphrase is read from the first line of the file F of --passphrase-file (- for
stdin), or from the environment variable ${PASSPHRASE_ENV}; never from a flag's value, which
ps and the shell's history would show. A flag (--encrypt-to, --identity, --passphrase-file)
wins over ${PASSPHRASE_ENV}.`;

const KEYS_HELP = `The keys are those of TOKEN_ENCRYPTION_KEYS (id:key,id:key,..., the first one active), or
the first line of the file F of --keys-file (- for stdin); never a flag's value, which ps and
the shell's history would show. The store: a SQLite file (TOKEN_DB_PATH or --path) or a
PostgreSQL schema (TOKEN_DATABASE_URL or --url, TOKEN_DB_SCHEMA or --schema).

One transaction: servers writing to the store meanwhile wait on its lock (SQLite: BEGIN
IMMEDIATE, up to their busy timeout; PostgreSQL: its tables locked against writes, and
against reads too for decrypt, up to their query timeout), and an error, a failed check or a
kill leaves the store as it was. Every converted row is read back and checked before the
commit; counts are compared.`;

const CONVERT_OPTIONS = { "keys-file": { type: "string" } };

const COMMANDS = {
  stats: {
    usage: "stats [--json]",
    summary: "live tokens and users, and the rows of each kind",
    help: "Shows the store's live access tokens and users (getStats) and how many rows of each\nkind it holds, expired ones included.",
    options: {},
    run: stats,
  },
  cleanup: {
    usage: "cleanup [--batch-size N] [--json]",
    summary: "remove expired tokens and codes",
    help: "Removes expired access tokens (with their refresh tokens), codes and pending\nauthorizations, N rows per transaction (default 1000).",
    options: { "batch-size": { type: "string" } },
    run: cleanup,
  },
  revoke: {
    usage: "revoke (--user ID | --client ID | --token TOKEN | --refresh-token TOKEN) [--json]",
    summary: "revoke a user's, a client's or one grant's tokens",
    help: `Revokes every token and code of a user (--user), of a client (--client: every grant it
holds), or one grant: its access token (--token) or its refresh token (--refresh-token),
each with the other of the pair. A token given as - is read from stdin (keep it out of the
shell's history and of ps). Revoking what is already gone is not an error.`,
    options: { user: { type: "string" }, client: { type: "string" }, token: { type: "string" }, "refresh-token": { type: "string" } },
    run: revoke,
  },
  backup: {
    usage: "backup FILE [--encrypt-to RECIPIENT... | --passphrase-file F] [--force] [--batch-size N] [--quiet] [--json]",
    summary: "a consistent snapshot of the store as a new SQLite file, optionally encrypted (age)",
    help: `Writes a consistent snapshot of the store, taken while servers keep writing, as a new
SQLite file (mode 0600, checked before it is reported done; storage.backup(FILE)). An
existing FILE is refused unless --force.

Encrypted in the age format (age -d opens it) to each --encrypt-to RECIPIENT (an age1...
public key of age-keygen; repeat the flag for several) or to a passphrase
(--passphrase-file F or ${PASSPHRASE_ENV}). The snapshot is then written to a 0600 file in
a private temporary folder (TMPDIR), encrypted into FILE, and removed, also on failure or
Ctrl-C. ${ENCRYPTION_HELP}`,
    options: { ...COPYING, ...PASSPHRASE, "encrypt-to": { type: "string", multiple: true } },
    run: backup,
  },
  restore: {
    usage: "restore FILE [--passphrase-file F | --identity F] [--force] [--batch-size N] [--quiet] [--json]",
    summary: "every row of a backup file into the store",
    help: `Copies every row of the SQLite file FILE (a backup) into the store: tokens, refresh
tokens with their rotation state, codes, clients, pending authorizations, in one transaction
(all or nothing: run again if interrupted). A store that holds rows is refused unless
--force, which empties it first. Stop the servers that use the store first: what they write
meanwhile may be lost.

An encrypted backup (age) is opened with its passphrase (--passphrase-file F or
${PASSPHRASE_ENV}) or the identity file F of --identity (AGE-SECRET-KEY-1... lines), into a
0600 file in a private temporary folder, removed afterwards. ${ENCRYPTION_HELP}`,
    options: { ...COPYING, ...PASSPHRASE, identity: { type: "string" } },
    run: restore,
  },
  copy: {
    usage: "copy FROM TO [--force] [--batch-size N] [--quiet] [--json]",
    summary: "every row from one store to another (file, postgres:// or redis:// URL)",
    help: `Copies every row of FROM into TO, each a SQLite file, a postgres:// URL (its schema:
--schema or TOKEN_DB_SCHEMA) or a redis:// or rediss:// URL (its key prefix: --prefix or
TOKEN_REDIS_PREFIX), from one consistent snapshot of FROM, in batches, counts compared at
the end: how a deployment moves from a SQLite file to PostgreSQL or Redis without logging
anyone out. A TO that holds rows is refused unless --force, which empties it first.
A FROM sealed with TOKEN_ENCRYPTION_KEYS (set them) goes as it is, its rows and its mark: TO
then opens with the same keys only.`,
    options: COPYING,
    run: copy,
  },
  encrypt: {
    usage: "encrypt [--keys-file F] [--json]",
    summary: "seal a store written in clear (encryption at rest, TOKEN_ENCRYPTION_KEYS)",
    help: `Converts a store written in clear (without keys, or by the old module) to sealed under
the active key: every access and refresh token, code and pending authorization as a store
opened with the keys writes them, then the store's encryption mark. A store already sealed
is refused (exit 4). Roll out: stop the servers, encrypt, start them with the same
TOKEN_ENCRYPTION_KEYS (a server without keys refuses the sealed store, naming decrypt).

${KEYS_HELP}`,
    options: CONVERT_OPTIONS,
    run: (values, given, opened) => convertStore("encrypt", values, given, opened),
  },
  decrypt: {
    usage: "decrypt [--keys-file F] [--json]",
    summary: "back to clear (what the old module and a store without keys read)",
    help: `Converts a sealed store back to clear, readable without keys (and a SQLite file by the old
module). A store in clear is refused (exit 4); keys that are not the store's are refused (exit 5).
Authorization codes and pending authorizations are dropped (only their digests were
stored: those logins start again), as are refresh tokens whose access token is gone;
refresh tokens rotated away keep their digests (a replay of one is then an unknown token).
Stop the servers first, then start them without keys.

${KEYS_HELP}`,
    options: CONVERT_OPTIONS,
    run: (values, given, opened) => convertStore("decrypt", values, given, opened),
  },
  rekey: {
    usage: "rekey [--keys-file F] [--json]",
    summary: "re-seal a sealed store under the active key, so an old key can be retired",
    help: `Re-seals every value of a sealed store under the active (first) key of the keyring, which
must also hold a key the store was sealed with (the old one, after the new): access and
refresh tokens under the new key's digests. A store in clear is refused (exit 4); keys that
are not the store's (exit 5). Then the old key can leave the keyring, once the codes and
pending logins made before (minutes) are done with: they, and the reuse detection of refresh
tokens rotated away before, are still found by the old key's digests. Servers may run with
the new keyring (new key first, old one after) before and after.

${KEYS_HELP}`,
    options: CONVERT_OPTIONS,
    run: (values, given, opened) => convertStore("rekey", values, given, opened),
  },
};

const USAGE = `Usage: native-token-storage <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`)
  .join("\n")}
  doctor   what stops a server's swap to native-token-storage (doctor --help)

native-token-storage <command> --help shows a command's options. --json prints the result as
JSON. Progress goes to stderr; no token, key or connection string is ever printed.

${STORE_HELP}

${EXIT_HELP}
`;

/** A failure with its exit code (and no stack for the operator). */
class CliError extends Error {
  constructor(message, exit) {
    super(message);
    this.exit = exit;
  }
}

function usageOf(name) {
  const c = COMMANDS[name];
  return `Usage: native-token-storage ${c.usage}\n\n${c.help}\n\n${name === "copy" ? "" : `${STORE_HELP}\n\n`}${EXIT_HELP}\n`;
}

/** Runs the command of `argv` (after the program's name); resolves to the exit code. */
async function main(argv) {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    const out = name === undefined ? process.stderr : process.stdout;
    if (name === undefined) out.write("native-token-storage: no command given\n\n");
    out.write(USAGE);
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : null;
  if (command === null) {
    process.stderr.write(`native-token-storage: unknown command ${JSON.stringify(name)}\n\n${USAGE}`);
    return EXIT.USAGE;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...COMMON, ...STORE_FLAGS, ...command.options }, allowPositionals: true, strict: true });
  } catch (err) {
    process.stderr.write(`native-token-storage ${name}: ${err.message}\n\n${usageOf(name)}`);
    return EXIT.USAGE;
  }
  if (parsed.values.help) {
    process.stdout.write(usageOf(name));
    return EXIT.OK;
  }
  // The library's JSON log lines only when asked for (TOKEN_STORAGE_LOG): the command says
  // what happened itself.
  process.env.TOKEN_STORAGE_LOG ??= "silent";
  const opened = [];
  try {
    const result = await command.run(parsed.values, parsed.positionals, opened);
    process.stdout.write(parsed.values.json ? `${JSON.stringify(result.json, null, 2)}\n` : `${result.text}\n`);
    return EXIT.OK;
  } catch (err) {
    const exit =
      err instanceof CliError || Number.isInteger(err.exit)
        ? err.exit
        : err.code === "ERR_TOKEN_STORAGE_CANNOT_DECRYPT"
          ? EXIT.CANNOT_DECRYPT
          : err.code === "ERR_TOKEN_STORAGE_CONFIG" || err instanceof TypeError || err instanceof RangeError
            ? EXIT.USAGE
            : EXIT.FAILED;
    const code = err.code && !(err instanceof CliError) ? ` (${err.code})` : "";
    process.stderr.write(`native-token-storage ${name}: ${err.message}${code}\n`);
    if (parsed.values.json) process.stdout.write(`${JSON.stringify({ error: { message: err.message, code: err.code ?? null, exit } }, null, 2)}\n`);
    return exit;
  } finally {
    for (const s of opened) {
      try {
        s.close();
      } catch {
        // Closing after a failure: the failure is the one to report.
      }
    }
  }
}

function positionals(given, names, command) {
  if (given.length !== names.length) {
    const expects = names.length ? `expects ${names.join(" and ")}` : "takes no arguments";
    throw new CliError(`${expects} (got ${given.length} argument${given.length === 1 ? "" : "s"}); see native-token-storage ${command} --help`, EXIT.USAGE);
  }
  return given;
}

function batchSize(values, fallback = DEFAULTS.COPY_BATCH_SIZE) {
  const raw = values["batch-size"];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < 1 || n > 2 ** 31 - 1) {
    throw new CliError(`--batch-size must be a whole number from 1 (got ${JSON.stringify(raw)})`, EXIT.USAGE);
  }
  return n;
}

/** The store the environment and the flags configure (as the library's default store). */
function configuredOptions(values) {
  const env = process.env;
  const read = (name) => (Array.isArray(name) ? name.map((n) => env[n]).find((v) => v !== undefined && v !== "") : env[name]);
  const options = {};
  for (const option of ["storage", "path", "url", "schema"]) {
    options[option] = values[option] ?? read(ENVIRONMENT[option]);
  }
  // A sealed store (encryption at rest) opens only with its keys; without them it is refused.
  options.encryptionKeys = read(ENVIRONMENT.encryptionKeys);
  // A --path or --url flag says which store is meant when nothing else does.
  if (!String(options.storage ?? "").trim()) {
    if (values.path !== undefined) options.storage = "db";
    else if (values.url !== undefined) options.storage = isRedisUrl(values.url) ? "redis" : "postgres";
  }
  // Redis has its own URL and prefix (TOKEN_DATABASE_URL is PostgreSQL's).
  if (REDIS_NAMES.includes(String(options.storage ?? "").trim().toLowerCase())) {
    options.url = values.url ?? read(ENVIRONMENT.redisUrl);
    options.prefix = redisPrefix(values);
    delete options.path;
    delete options.schema;
  }
  return options;
}

/** TOKEN_ENCRYPTION_KEYS, or undefined: a sealed store opens only with its keys. */
function encryptionKeys() {
  const keys = process.env[ENVIRONMENT.encryptionKeys];
  return keys?.trim() ? keys : undefined;
}

/** `storage` values that name the Redis store. */
const REDIS_NAMES = ["redis", "valkey"];

/** Whether `url` is a Redis or Valkey URL (redis://, rediss://, valkey://, valkeys://). */
function isRedisUrl(url) {
  return /^(redis|valkey)s?:\/\//i.test(url);
}

/** The Redis key prefix: --prefix, else TOKEN_REDIS_PREFIX (else the library's default). */
function redisPrefix(values) {
  return values.prefix ?? process.env[ENVIRONMENT.redisPrefix];
}

/** A FROM or TO of copy: a postgres:// or redis:// URL, or a SQLite file (with the keys). */
function optionsOf(spec, values) {
  const encryption = { encryptionKeys: encryptionKeys() };
  if (/^postgres(ql)?:\/\//i.test(spec)) return { storage: "postgres", url: spec, schema: values.schema ?? process.env[ENVIRONMENT.schema], ...encryption };
  if (isRedisUrl(spec)) return { storage: "redis", url: spec, prefix: redisPrefix(values), ...encryption };
  return { storage: "sqlite", path: spec, ...encryption };
}

/**
 * Opens a store. Unless it is a target to write (`mustExist: false`), the store must be there
 * already: a SQLite file, or a PostgreSQL schema holding this package's tables (a typo in
 * --path or --schema must not create an empty store, nor a command report on one), and it is
 * checked against the keys (a sealed store, a store in clear). A target is not: a copy replaces
 * its rows and its mark of encryption at rest with the source's (the addon checks that mark
 * against the keys before it commits), and checking a new one with keys would seal it first.
 */
function open(options, opened, { mustExist = true } = {}) {
  const kind = String(options.storage ?? "").trim().toLowerCase();
  if (kind === "" || kind === "memory") {
    throw new CliError("no store configured: the memory store lives in the server's own process; set TOKEN_STORAGE (db, postgres or redis) or pass --storage", EXIT.USAGE);
  }
  if (["db", "sqlite"].includes(kind)) {
    if (!options.path) throw new CliError("no SQLite file given: set TOKEN_DB_PATH or pass --path", EXIT.USAGE);
    const file = nodePath.resolve(options.path);
    if (mustExist && !fs.existsSync(file)) throw new CliError(`no such file: ${file}`, EXIT.NOT_FOUND);
  }
  const storage = new TokenStorage({ ...options, cleanupInterval: 0 });
  opened.push(storage);
  if (mustExist && storage.storage === "postgres" && !storage._native.storeExists()) {
    const schema = options.schema || DEFAULTS.SCHEMA;
    throw new CliError(
      `no token store in schema ${JSON.stringify(schema)} of ${storage.location}: the schema does not exist or has no tables of this package; check --schema or TOKEN_DB_SCHEMA (nothing was created)`,
      EXIT.NOT_FOUND,
    );
  }
  if (mustExist && storage.storage === "redis" && !storage._native.storeExists()) {
    const prefix = options.prefix ?? DEFAULTS.REDIS_PREFIX;
    throw new CliError(
      `no token store under the prefix ${JSON.stringify(prefix)} of ${storage.location}: no key of this package is there; check --prefix or TOKEN_REDIS_PREFIX`,
      EXIT.NOT_FOUND,
    );
  }
  if (mustExist) storage.open();
  return storage;
}

function where(storage) {
  return storage.location ? `${storage.storage} (${storage.location})` : storage.storage;
}

function rowCounts(storage) {
  return JSON.parse(storage._native.rowCounts());
}

const KINDS = {
  accessTokens: "access tokens",
  refreshTokens: "refresh tokens",
  authorizationCodes: "authorization codes",
  clients: "clients",
  pendingAuthorizations: "pending authorizations",
  refreshFamilies: "rotated refresh tokens' families",
  retiredRefreshTokens: "refresh tokens rotated away",
};

function countsText(counts) {
  return Object.entries(KINDS)
    .map(([k, label]) => `  ${String(counts[k]).padStart(10)}  ${label}`)
    .join("\n");
}

async function stats(values, given, opened) {
  positionals(given, [], "stats");
  const storage = open(configuredOptions(values), opened);
  const s = storage.getStats();
  const rows = rowCounts(storage);
  const json = { storage: storage.storage, location: storage.location, totalTokens: s.totalTokens, uniqueUsers: s.uniqueUsers, rows };
  const text = `${where(storage)}\n  ${String(s.totalTokens).padStart(10)}  live access tokens\n  ${String(s.uniqueUsers).padStart(10)}  users with a live token\nrows, expired ones included:\n${countsText(rows)}`;
  return { json, text };
}

async function cleanup(values, given, opened) {
  positionals(given, [], "cleanup");
  const size = batchSize(values, DEFAULTS.CLEANUP_BATCH_SIZE);
  const storage = open(configuredOptions(values), opened);
  const removed = await storage.promises.cleanupExpiredTokens(size);
  return { json: { storage: storage.storage, location: storage.location, removed }, text: `${where(storage)}: removed ${removed} expired row${removed === 1 ? "" : "s"}` };
}

/** A token from the command line, or from stdin when it is "-". */
function secretArg(value, flag) {
  if (value !== "-") return value;
  const text = fs.readFileSync(0, "utf8").split(/\r?\n/)[0].trim();
  if (text === "") throw new CliError(`${flag} -: nothing on stdin`, EXIT.USAGE);
  return text;
}

async function revoke(values, given, opened) {
  positionals(given, [], "revoke");
  const chosen = ["user", "client", "token", "refresh-token"].filter((k) => values[k] !== undefined);
  if (chosen.length !== 1) throw new CliError(`give exactly one of --user, --client, --token and --refresh-token (got ${chosen.length})`, EXIT.USAGE);
  const [what] = chosen;
  const value = what === "token" || what === "refresh-token" ? secretArg(values[what], `--${what}`) : values[what];
  if (value === "") throw new CliError(`--${what} must not be empty`, EXIT.USAGE);
  const storage = open(configuredOptions(values), opened);
  const base = { storage: storage.storage, location: storage.location };
  switch (what) {
    case "user": {
      const revoked = storage._native.deleteUserTokens(value, Date.now());
      return { json: { ...base, user: value, revoked }, text: `${where(storage)}: revoked the tokens and codes of user ${JSON.stringify(value)} (${revoked} access token${revoked === 1 ? "" : "s"})` };
    }
    case "client": {
      const revoked = storage._native.revokeClientTokens(value);
      return { json: { ...base, client: value, revoked }, text: `${where(storage)}: revoked the tokens and codes of client ${JSON.stringify(value)} (${revoked} access token${revoked === 1 ? "" : "s"})` };
    }
    case "token": {
      const found = storage.getAccessToken(value) !== null;
      storage.deleteToken(value);
      return { json: { ...base, token: found ? "revoked" : "not found" }, text: `${where(storage)}: ${found ? "revoked the access token and its refresh token" : "no such live access token (nothing to revoke)"}` };
    }
    default: {
      const found = storage.getRefreshToken(value) !== null;
      storage.revokeRefreshToken(value);
      return { json: { ...base, refreshToken: found ? "revoked" : "not found" }, text: `${where(storage)}: ${found ? "revoked the refresh token and its access token" : "no such live refresh token (nothing to revoke)"}` };
    }
  }
}

/**
 * Shows how far `native`'s backup or copy is, on stderr: in place on a terminal, a plain
 * line a second otherwise. Returns `stop()`.
 */
function progress(native, label, quiet) {
  if (quiet) return () => {};
  const tty = Boolean(process.stderr.isTTY);
  const started = Date.now();
  let shown = "";
  const line = () => {
    const [done, total] = native.copyProgress();
    const secs = (Date.now() - started) / 1000;
    const rate = secs > 0 ? done / secs : 0;
    const pct = total > 0 ? ` of ${total} (${Math.floor((100 * done) / total)} %)` : "";
    const left = total > 0 && rate > 0 && done < total ? `, about ${Math.ceil((total - done) / rate)} s left` : "";
    return `${label}: ${done} rows${pct}, ${Math.round(rate)} rows/s${left}`;
  };
  const show = () => {
    const text = line();
    if (text === shown) return;
    shown = text;
    process.stderr.write(tty ? `\r\x1b[K${text}` : `${text}\n`);
  };
  const timer = setInterval(show, tty ? 100 : 1000);
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    show();
    if (tty) process.stderr.write("\n");
  };
}

/** The text of the file F of a `--flag F` (- for stdin); a file that cannot be read is a CliError. */
function readFlagFile(flag, file) {
  try {
    return fs.readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (err) {
    throw new CliError(`${flag}: cannot read ${file === "-" ? "stdin" : nodePath.resolve(file)} (${err.code ?? err.message})`, err.code === "ENOENT" ? EXIT.NOT_FOUND : EXIT.USAGE);
  }
}

/** The passphrase of --passphrase-file (- for stdin) or of the environment, or null. */
function passphrase(values) {
  const file = values["passphrase-file"];
  if (file !== undefined) {
    const text = readFlagFile("--passphrase-file", file);
    if (file !== "-" && process.platform !== "win32" && (fs.statSync(file).mode & 0o077) !== 0) {
      process.stderr.write(`native-token-storage: warning: the passphrase file ${nodePath.resolve(file)} is readable by other users (chmod 600 it)\n`);
    }
    const line = text.split(/\r?\n/)[0];
    if (line === "") throw new CliError("--passphrase-file: the passphrase (its first line) is empty", EXIT.USAGE);
    return line;
  }
  const env = process.env[PASSPHRASE_ENV];
  return env === undefined || env === "" ? null : env;
}

/**
 * A private temporary folder (0700, in TMPDIR) for a plaintext backup, removed by
 * `remove()`, and at exit or on SIGINT, SIGTERM or SIGHUP if the command ends there.
 */
function privateFolder(prefix) {
  const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), prefix));
  const remove = () => fs.rmSync(dir, { recursive: true, force: true });
  const onSignal = (signal) => {
    remove();
    process.kill(process.pid, signal);
  };
  const signals = ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const s of signals) process.once(s, onSignal);
  process.once("exit", remove);
  return {
    dir,
    remove() {
      for (const s of signals) process.removeListener(s, onSignal);
      process.removeListener("exit", remove);
      remove();
    },
  };
}

async function backup(values, given, opened) {
  const [file] = positionals(given, ["FILE"], "backup");
  const size = batchSize(values);
  const recipients = values["encrypt-to"] ?? [];
  const secret = passphrase(values);
  if (recipients.length > 0 && values["passphrase-file"] !== undefined) {
    throw new CliError("give --encrypt-to or --passphrase-file, not both (age encrypts a file to recipients or to one passphrase)", EXIT.USAGE);
  }
  const encrypted = recipients.length > 0 ? "recipients" : secret !== null ? "passphrase" : null;
  const destination = nodePath.resolve(file);
  if (fs.existsSync(destination) && !values.force) throw new CliError(`${destination} exists; pass --force to replace it`, EXIT.REFUSED);
  const storage = open(configuredOptions(values), opened);
  const stop = progress(storage._native, "backup", values.quiet);
  let report;
  const folder = encrypted ? privateFolder("nts-backup-") : null;
  const partial = `${destination}.partial-age-${process.pid}`;
  try {
    const plain = folder ? nodePath.join(folder.dir, "backup.db") : destination;
    report = await storage.promises.backup(plain, { overwrite: Boolean(values.force), batchSize: size });
    if (folder) {
      stop();
      fs.rmSync(partial, { force: true });
      const bytes = native.ageEncryptFile(plain, partial, recipients, recipients.length > 0 ? null : secret);
      fs.renameSync(partial, destination);
      report = { ...report, path: destination, bytes, encrypted };
    }
  } finally {
    stop();
    if (folder) {
      folder.remove();
      fs.rmSync(partial, { force: true });
    }
  }
  const how = encrypted ? `, encrypted to ${encrypted === "recipients" ? `${recipients.length} age recipient${recipients.length === 1 ? "" : "s"}` : "a passphrase"}` : "";
  return {
    json: { storage: storage.storage, location: storage.location, ...report },
    text: `${where(storage)} backed up to ${report.path} (${report.bytes} bytes, ${report.ms} ms, checked${how}):\n${countsText(report.counts)}`,
  };
}

/** Copies every row of `from` into `to` (both open), refusing a non-empty `to` unless --force. */
async function copyBetween(from, to, values, label) {
  const size = batchSize(values);
  const held = rowCounts(to);
  const total = Object.values(held).reduce((a, b) => a + b, 0);
  if (total > 0 && !values.force) {
    throw new CliError(`the target ${where(to)} is not empty (${held.accessTokens} access tokens, ${total} rows in all); pass --force to replace what it holds`, EXIT.REFUSED);
  }
  const stop = progress(from._native, label, values.quiet);
  let counts;
  try {
    counts = JSON.parse(await from._native.copyToAsync(to._native, Boolean(values.force), size));
  } finally {
    stop();
  }
  // The source opened with keys is sealed (or was empty, and is now marked so): its rows and
  // mark went as they are.
  const sealed = encryptionKeys() !== undefined;
  const how = sealed ? "\nsealed (encryption at rest): the rows went as they are; the target opens only with the same TOKEN_ENCRYPTION_KEYS" : "";
  return {
    json: { from: { storage: from.storage, location: from.location }, to: { storage: to.storage, location: to.location }, counts, sealed },
    text: `copied ${where(from)} to ${where(to)} (counts checked):\n${countsText(counts)}${how}`,
  };
}

/** Whether two open stores are the same data: one file, or one database and schema. */
function sameStore(a, b, aOptions, bOptions) {
  if (a.storage !== b.storage) return false;
  // What the servers say they are: one store reached by two names (localhost and 127.0.0.1,
  // a socket and TCP) is still one; the URLs compared only where a server does not say.
  if (a.storage !== "sqlite") {
    const ids = [a, b].map((s) => s._native.storeIdentity());
    if (ids.every((id) => id !== null)) return ids[0] === ids[1];
  }
  if (a.storage === "postgres") {
    const schema = (o) => o.schema || DEFAULTS.SCHEMA;
    return a.location === b.location && schema(aOptions) === schema(bOptions);
  }
  if (a.storage === "redis") {
    const prefix = (o) => o.prefix ?? DEFAULTS.REDIS_PREFIX;
    return a.location === b.location && prefix(aOptions) === prefix(bOptions);
  }
  try {
    return a.storage === "sqlite" && fs.realpathSync(a.path) === fs.realpathSync(b.path);
  } catch {
    return false;
  }
}

async function restore(values, given, opened) {
  const [file] = positionals(given, ["FILE"], "restore");
  if (!fs.existsSync(file)) throw new CliError(`no such file: ${nodePath.resolve(file)}`, EXIT.NOT_FOUND);
  if (!native.isAgeFileAt(nodePath.resolve(file))) {
    const source = { storage: "sqlite", path: file, encryptionKeys: encryptionKeys() };
    const target = configuredOptions(values);
    const from = open(source, opened);
    const to = open(target, opened, { mustExist: false });
    if (sameStore(from, to, source, target)) throw new CliError("FILE is the store itself", EXIT.USAGE);
    return copyBetween(from, to, values, "restore");
  }
  // An encrypted backup: decrypted into a private folder, restored from there, removed.
  // A flag wins over the environment: --identity with TOKEN_BACKUP_PASSPHRASE set uses the
  // identity (as backup's --encrypt-to does); two flags that disagree are a usage error.
  const identity = values.identity;
  const secret = identity === undefined ? passphrase(values) : null;
  if (identity !== undefined ? values["passphrase-file"] !== undefined : secret === null) {
    throw new CliError(`FILE is an encrypted backup (age): give its passphrase (--passphrase-file F or ${PASSPHRASE_ENV}) or its identity file (--identity F), one of them`, EXIT.USAGE);
  }
  let identities = null;
  if (identity !== undefined) {
    try {
      identities = fs.readFileSync(identity, "utf8");
    } catch (err) {
      throw new CliError(`--identity: cannot read ${nodePath.resolve(identity)} (${err.code ?? err.message})`, err.code === "ENOENT" ? EXIT.NOT_FOUND : EXIT.USAGE);
    }
  }
  const target = configuredOptions(values);
  const folder = privateFolder("nts-restore-");
  let from = null;
  try {
    const plain = nodePath.join(folder.dir, "backup.db");
    native.ageDecryptFile(nodePath.resolve(file), plain, identities, identities === null ? secret : null);
    from = open({ storage: "sqlite", path: plain, encryptionKeys: encryptionKeys() }, opened);
    const to = open(target, opened, { mustExist: false });
    const result = await copyBetween(from, to, values, "restore");
    return { json: { ...result.json, decrypted: true }, text: result.text };
  } finally {
    if (from !== null) {
      opened.splice(opened.indexOf(from), 1);
      from.close();
    }
    folder.remove();
  }
}

async function copy(values, given, opened) {
  const [fromSpec, toSpec] = positionals(given, ["FROM", "TO"], "copy");
  const [source, target] = [optionsOf(fromSpec, values), optionsOf(toSpec, values)];
  const from = open(source, opened);
  const to = open(target, opened, { mustExist: false });
  if (sameStore(from, to, source, target)) throw new CliError("FROM and TO are the same store", EXIT.USAGE);
  return copyBetween(from, to, values, "copy");
}

/** The keyring of --keys-file (- for stdin), or of TOKEN_ENCRYPTION_KEYS, or null. */
function keyringOf(values) {
  const file = values["keys-file"];
  if (file !== undefined) {
    const line = readFlagFile("--keys-file", file).split(/\r?\n/, 1)[0].trim();
    if (line === "") throw new CliError("--keys-file: the keys (its first line) are empty", EXIT.USAGE);
    return line;
  }
  const keys = process.env[ENVIRONMENT.encryptionKeys];
  return keys === undefined || keys.trim() === "" ? null : keys;
}

/**
 * The store encrypt, decrypt and rekey convert: a SQLite file that exists, or a PostgreSQL
 * schema that holds a store (asked without creating it, as `open` does); its options without
 * keys, where it is (never a password) and, for PostgreSQL, its schema.
 */
function convertible(direction, values, opened) {
  const options = configuredOptions(values);
  const kind = String(options.storage ?? "").trim().toLowerCase();
  if (["postgres", "postgresql", "pg"].includes(kind)) {
    const target = { storage: "postgres", url: options.url, schema: options.schema };
    // Never opened: only asked whether the schema holds a store, and where it is.
    const storage = new TokenStorage({ ...target, cleanupInterval: 0 });
    opened.push(storage);
    const schema = options.schema || DEFAULTS.SCHEMA;
    if (!storage._native.storeExists()) {
      throw new CliError(`no token store in schema ${JSON.stringify(schema)} of ${storage.location}: the schema does not exist or has no tables of this package; check --schema or TOKEN_DB_SCHEMA (nothing was created)`, EXIT.NOT_FOUND);
    }
    return { options: target, storage: "postgres", location: storage.location, schema, shown: `${storage.location} schema ${schema}` };
  }
  if (REDIS_NAMES.includes(kind)) {
    throw new CliError(`${direction} does not convert a Redis store in place: copy it to a SQLite file, ${direction} that file, and copy it back with --force (with the keys set)`, EXIT.USAGE);
  }
  if (!["db", "sqlite"].includes(kind)) {
    throw new CliError(`${direction} converts a SQLite file or a PostgreSQL schema: set TOKEN_STORAGE=db and TOKEN_DB_PATH (or pass --path), or TOKEN_STORAGE=postgres and TOKEN_DATABASE_URL (or pass --url)`, EXIT.USAGE);
  }
  if (!options.path) throw new CliError("no SQLite file given: set TOKEN_DB_PATH or pass --path", EXIT.USAGE);
  // The file must be there: a typo in --path must not create a sealed empty store.
  const file = nodePath.resolve(options.path);
  if (!fs.existsSync(file)) throw new CliError(`no such file: ${file}`, EXIT.NOT_FOUND);
  return { options: { storage: "sqlite", path: file }, storage: "sqlite", location: file, schema: null, shown: file };
}

/**
 * encrypt, decrypt and rekey: the configured SQLite file or PostgreSQL schema converted in place,
 * in one transaction of the addon's (`convertStore`), never through a TokenStorage (which
 * refuses a store that does not match its keys). NTS_TEST_CONVERT_FAIL=verify (tests only)
 * makes the final check fail.
 */
async function convertStore(direction, values, given, opened) {
  positionals(given, [], direction);
  const store = convertible(direction, values, opened);
  const keys = keyringOf(values);
  if (keys === null) throw new CliError(`${direction} needs the encryption keys: set TOKEN_ENCRYPTION_KEYS or pass --keys-file F; nothing was changed`, EXIT.USAGE);
  let report;
  try {
    const { config } = storeConfig({ ...store.options, encryptionKeys: keys });
    report = JSON.parse(native.convertStore({ ...config, shared: false }, direction, process.env.NTS_TEST_CONVERT_FAIL === "verify"));
  } catch (err) {
    const e = err.code === undefined || err instanceof TypeError ? err : fromNative(err);
    if (e.code === "ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH") e.exit = EXIT.REFUSED;
    if (e.code === "ERR_TOKEN_STORAGE_BAD_ENCRYPTION_KEY") e.exit = EXIT.USAGE;
    throw e;
  }
  const active = keys.split(",")[0].split(":")[0].trim();
  const dropped = [
    [report.droppedAuthorizationCodes, "authorization codes"],
    [report.droppedPendingAuthorizations, "pending authorizations"],
    [report.droppedRefreshTokens, "refresh tokens whose access token was gone"],
  ].filter(([n]) => n > 0);
  const how = { encrypt: `encrypted under key id ${active}`, decrypt: "decrypted (now in clear)", rekey: `re-sealed under key id ${active}` }[direction];
  const droppedText = dropped.length ? `\nnot kept: ${dropped.map(([n, what]) => `${n} ${what}`).join(", ")}` : "";
  const schema = store.schema === null ? {} : { schema: store.schema };
  return {
    json: { storage: store.storage, location: store.location, ...schema, direction, activeKeyId: direction === "decrypt" ? null : active, ...report },
    text: `${store.shown}: ${how} (${report.ms} ms, checked):\n${countsText(report.counts)}${droppedText}`,
  };
}

module.exports = { main, EXIT, COMMANDS };
