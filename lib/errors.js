"use strict";
// The package's errors. CODES is the one list of the `code`s its errors carry: the Rust
// store's codes, the README's table and index.d.ts are checked against it by tests.

const CODES = Object.freeze({
  ERR_TOKEN_STORAGE_CONFIG: "a setting (TOKEN_STORAGE, TOKEN_DB_SYNC, the database URL, an option) has a value the package does not accept",
  ERR_TOKEN_STORAGE_INVALID_ARGUMENT: "an argument broke a rule only the native store checks (a TypeError)",
  ERR_TOKEN_STORAGE_OPEN: "the store cannot be opened: the file or its folder cannot be created or opened, its schema is newer than the package's, or another program set its user_version or made tables of the old module's names without their columns, or the PostgreSQL schema holds tables the package did not create",
  ERR_TOKEN_STORAGE_NOT_A_DATABASE: "the file is not a SQLite database, or it is damaged",
  ERR_TOKEN_STORAGE_BUSY: "another connection held a lock for longer than the busy timeout (PostgreSQL: a deadlock or lock wait that retrying did not resolve)",
  ERR_TOKEN_STORAGE_FULL: "the disk or the file size limit is full",
  ERR_TOKEN_STORAGE_READONLY: "the file is read-only",
  ERR_TOKEN_STORAGE_MOVED: "the open file was deleted, moved or replaced; nothing was done, and the next call opens the path again",
  ERR_TOKEN_STORAGE_SQLITE: "any other SQLite failure",
  ERR_TOKEN_STORAGE_UNAVAILABLE: "the database server cannot be reached, refused or dropped the connection, or did not answer in time; the store reconnects by itself at a later call",
  ERR_TOKEN_STORAGE_POSTGRES: "any other PostgreSQL failure (the message gives its SQLSTATE)",
  ERR_TOKEN_STORAGE_REDIS: "any other Redis or Valkey failure (the message gives the error's first word, never its text)",
  ERR_TOKEN_STORAGE_BAD_ENCRYPTION_KEY: "the keyring (TOKEN_ENCRYPTION_KEYS or the encryptionKeys option) is malformed; raised at start",
  ERR_TOKEN_STORAGE_CANNOT_DECRYPT: "an encrypted backup (age) does not open: wrong passphrase or key, or a damaged or altered file (the command line's restore, exit 5); or a sealed value does not open (unknown key id, altered, moved to another row or column); the row is never served",
  ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH: "the store's encryption at rest does not match the keys given: keys for a store written in clear, none for a sealed one, a keyring holding none of the store's keys or another key under one of its ids; or a write in clear into a SQLite file sealed after this process opened it without keys",
  ERR_TOKEN_STORAGE_INTERNAL: "a lock was poisoned by a panic, or a record could not be encoded (should never happen)",
  ERR_TOKEN_STORAGE_NOT_BUILT: "the native addon was not found (see the README's installation section)",
});

/** A failure of the store (not of the arguments): `code` is one of `CODES`. */
class TokenStorageError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}
Object.defineProperty(TokenStorageError.prototype, "name", { value: "TokenStorageError", writable: true, configurable: true });

/**
 * An error thrown by the native addon, whose `code` napi set from the Rust error: a
 * `TokenStorageError` (the same object, so its stack is kept), or a `TypeError` for an
 * argument only the native side checks. Anything else is returned as it is.
 */
function fromNative(err) {
  if (!(err instanceof Error) || typeof err.code !== "string" || !Object.hasOwn(CODES, err.code)) return err;
  if (err.code === "ERR_TOKEN_STORAGE_INVALID_ARGUMENT") {
    const out = new TypeError(err.message);
    out.code = err.code;
    return out;
  }
  Object.setPrototypeOf(err, TokenStorageError.prototype);
  return err;
}

module.exports = { CODES, TokenStorageError, fromNative };
