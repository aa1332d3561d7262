"use strict";
// The TokenStorage class: runs the operations of lib/operations.js (checks arguments, calls
// the native store, shapes results) on the calling thread or, for `promises`, off it. Its
// operation methods are made from that table, below the class.

const fs = require("node:fs");
// Taken when the package loads, before a test installs fake timers (which replace the
// global ones, and node:test's also these): the automatic cleanup is not the test's timer
// to run, count or abort on, and its passes read the test's clock anyway (see `clock`).
const { setInterval, clearInterval, setImmediate } = require("node:timers");
const native = require("./native");
const { OPERATIONS, ANSWER, batchSizeArg } = require("./operations");
const { MINT } = require("./minted-rotation");
const { storeConfig, STORE_KINDS } = require("./config");
const { AUTO_CLEANUP_BATCH_SIZE } = require("./defaults");
const { TokenStorageError, fromNative } = require("./errors");
const { log } = require("./log");

/** Settled once: `SETTLED.then(fn)` runs `fn` in a microtask, which no fake timer defers. */
const SETTLED = Promise.resolve();

class TokenStorage {
  /**
   * @param {{ storage?: string, path?: string, synchronous?: string, busyTimeout?: number }} [options]
   */
  constructor(options = {}) {
    if (options === null || typeof options !== "object") {
      throw new TypeError("TokenStorage: options must be an object");
    }
    const { config, defaultFile, cleanupIntervalMs } = storeConfig(options, options[SETTING_NAMES]);
    // The default store (options[SHARED]: its memory scope) is the process's one for a
    // database; in memory, one per loaded copy of the package unless asked for per process.
    const scope = options[SHARED];
    const shared = scope !== undefined && (config.kind !== "memory" || scope === "process");
    try {
      this._native = new native.NativeStore({ ...config, shared });
    } catch (err) {
      throw fromNative(err);
    }
    /** `"memory"`, `"sqlite"` or `"postgres"`, asked once (a getter of the addon is a native call). */
    this._kind = this._native.storage;
    this._open = false;
    /** Why this file, when the path was not given (logged at open). */
    this._defaultFile = defaultFile;
    /** Automatic cleanup: every this many ms while open (0: never), on an unreferenced timer. */
    this._cleanupIntervalMs = cleanupIntervalMs;
    /** What an open store holds, freed by `LEAKED` if the store is collected unclosed (never `this`). */
    this._held = { native: this._native, timer: null };
    this._cleaning = false;
    /** SQLite: the synchronous gets of one turn share one read transaction, ended at the turn's end (see `_runOp`). */
    this._holdsReads = this._kind === "sqlite";
    this._endReadsQueued = false;
    this._endReads = () => {
      this._endReadsQueued = false;
      try {
        this._native.endReads();
      } catch (err) {
        this._fail("getAccessToken", err);
      }
    };
    // Methods work when taken off the instance (`const { getAccessToken } = storage`), as
    // the module's free functions did.
    for (const name of METHODS) this[name] = this[name].bind(this);
    /** The same operations, each returning a Promise, the work done off the JS thread. */
    this.promises = Object.freeze({
      ...Object.fromEntries(
        Object.values(OPERATIONS).map((op) => [op.name, (...given) => this._callAsync(op, given)]),
      ),
      close: async () => this.close(),
    });
  }

  /** `"memory"`, `"sqlite"` or `"postgres"`. */
  get storage() {
    return this._kind;
  }

  /** The SQLite file's absolute path, or null for the other stores. */
  get path() {
    return STORE_KINDS[this._kind].file ? this._native.path : null;
  }

  /** Where the tokens are: the SQLite file's path, PostgreSQL's `host:port/database` (never a password), or null. */
  get location() {
    return this._native.path;
  }

  /** Opens the store now (calls open it on first use anyway); logs which store it is. */
  open() {
    try {
      this._native.open();
    } catch (err) {
      throw this._fail("open", err);
    }
    if (!this._open) this._opened();
  }

  /** Logs, once per opening, which store this is and where; starts the automatic cleanup. */
  _opened() {
    this._open = true;
    LEAKED.register(this, this._held, this);
    this._startCleanup();
    const { storage, path } = this;
    if (path && this._defaultFile) {
      const { reason, other } = this._defaultFile;
      log("info", "token store opened", { storage, path, chosen: reason });
      if (other) {
        log("warn", "two token databases exist; using the one in the working directory (set TOKEN_DB_PATH to choose)", {
          path,
          other,
        });
      }
    } else {
      log("info", "token store opened", { storage, [STORE_KINDS[storage].locationField]: this.location });
    }
    if (path) warnIfShared(path);
    // What the store found at open (a Redis server whose persistence can lose acknowledged
    // tokens), once per store.
    for (const { message, fields } of this._native.takeWarnings()) log("warn", message, { storage, ...fields });
  }

  /** Closes a SQLite store's file; the next call reopens it. A memory store keeps its tokens. */
  close() {
    this._open = false;
    LEAKED.unregister(this);
    this._stopCleanup();
    try {
      this._native.close();
    } catch (err) {
      throw this._fail("close", err);
    }
  }

  /**
   * Removes expired rows every `cleanupInterval` seconds, off the JavaScript thread and in
   * short batches, so that a server that never calls cleanup keeps no abandoned code (and
   * its API key) for long. The timer is unreferenced: it never keeps the process alive.
   */
  _startCleanup() {
    if (this._cleanupIntervalMs === 0 || this._held.timer !== null) return;
    // The timer reaches the store weakly (see cleanupTimer): a store dropped without close()
    // can then be collected (see LEAKED), where the timer would keep it alive for ever.
    this._held.timer = withoutCallerStores(cleanupTimer(this, this._cleanupIntervalMs));
  }

  _stopCleanup() {
    if (this._held.timer === null) return;
    clearInterval(this._held.timer);
    this._held.timer = null;
  }

  async _cleanupNow() {
    if (this._cleaning || !this._open) return;
    this._cleaning = true;
    try {
      await this._cleanupInBackground("automatic cleanup", AUTO_CLEANUP_BATCH_SIZE, { reopen: false, automatic: true });
    } catch {
      // Logged by _fail; the next tick tries again.
    } finally {
      this._cleaning = false;
    }
  }

  /** The error to throw for a failed native call (logged unless it is about arguments). */
  _fail(fn, err) {
    const out = fromNative(err);
    // Once per error: a failed open is rethrown by the call that opened the store.
    if (out instanceof TokenStorageError && !LOGGED.has(out)) {
      LOGGED.add(out);
      log("error", "token store call failed", { call: fn, code: out.code, error: out.message });
    }
    return out;
  }

  _ready() {
    if (!this._open) this.open();
    return this._native;
  }

  /** Runs operation `op` (an entry of lib/operations.js) on the calling thread. */
  _call(op, given) {
    // Most operations are one store call: no defaults copied, no generator made for them.
    if (op.run === undefined && op.steps === undefined) return this._runOp(op, given);
    if (op.run) return op.run(this, op.withDefaults(given));
    const steps = op.steps?.(op.withDefaults(given));
    return steps ? this._runSteps(steps) : this._runOp(op, given);
  }

  /** The same as a Promise, the work done off the JS thread. */
  async _callAsync(op, given) {
    if (op.promise) return op.promise.run(this, op.promise.withDefaults(given));
    if (op.run) return op.run(this, op.withDefaults(given));
    const steps = op.steps?.(op.withDefaults(given));
    return steps ? this._runStepsAsync(steps) : this._runAsync(op.name, given);
  }

  /** Runs the store call of operation `name` on the calling thread. */
  _run(name, given) {
    return this._runOp(OPERATIONS[name], given);
  }

  /** Runs the store call of operation `op` on the calling thread. */
  _runOp(op, given) {
    const input = op.input.apply(undefined, op.withDefaults(given));
    if (!Array.isArray(input)) return input[ANSWER];
    let reply;
    try {
      const now = clock();
      const native = this._open ? this._native : this._ready();
      // The store may keep this read's transaction for the turn's next gets
      // (src/store/sqlite/held.rs); it is ended in a microtask, so never past the
      // synchronous code that read (a Promise's: fake timers cannot hold it back).
      if (op.holdsReads && this._holdsReads && !this._endReadsQueued) {
        this._endReadsQueued = true;
        SETTLED.then(this._endReads);
      }
      reply = callWithClock(native, native[op.native ?? op.name], input, now);
    } catch (err) {
      throw this._fail(op.name, err);
    }
    return op.output(reply, this._kind, input, given);
  }

  /** Runs the store call of operation `name` on a thread of libuv's pool: the same checks, result and errors, as a Promise. */
  async _runAsync(name, given) {
    const op = OPERATIONS[name];
    const input = op.input.apply(undefined, op.withDefaults(given));
    if (!Array.isArray(input)) return input[ANSWER];
    let reply;
    try {
      input.push(clock()); // the caller's time when it called, also if opening takes a while
      if (!this._open) await this._openAsync();
      reply = await this._native[`${op.native ?? name}Async`].apply(this._native, input);
    } catch (err) {
      throw this._fail(name, err);
    }
    return (op.outputAsync ?? op.output)(reply, this._kind, input, given);
  }

  async _openAsync() {
    await this._native.openAsync(clock());
    if (!this._open) this._opened();
  }

  /**
   * Batches until one removes fewer than `size` rows. The `automatic` cleanup's batches
   * remove nothing while another process's automatic cleanup is at work on the file, so
   * only one process cleans a SQLite file at a time.
   */
  async _cleanupInBackground(fn, batchSize, { reopen = true, automatic = false } = {}) {
    const size = batchSizeArg(fn, batchSize);
    // One reading of the caller's clock for the whole pass: it removes what was expired when
    // it was asked for, never a row that clock still takes for live.
    const now = clock();
    let total = 0;
    for (;;) {
      let removed;
      try {
        if (!this._open) {
          // The automatic cleanup stops when the store is closed; it never reopens it.
          if (!reopen) break;
          await this._openAsync();
        }
        // The automatic pass's last batch also prepares getStats until the next pass is
        // due (SQLite: refines the buckets that become current by then, see src/store/sqlite/refine.rs).
        removed = await this._native.cleanupExpiredBatchAsync(size, automatic, automatic ? this._cleanupIntervalMs : 0, now);
      } catch (err) {
        throw this._fail(fn, err);
      }
      total += removed;
      if (removed < size) break;
    }
    if (total > 0) log("debug", "expired tokens removed", { storage: this.storage, removed: total });
    return total;
  }

  /**
   * The store calls of `steps` (a generator of lib/minted-rotation.js) on the calling thread:
   * `rotateRefreshToken(refreshToken, mint)`, whose `mint` must answer at once here.
   */
  _runSteps(steps) {
    let step = steps.next();
    while (!step.done) {
      const [name, input] = step.value;
      let value;
      if (name === MINT) {
        value = input.mint(input.grant);
        if (value !== null && typeof value === "object" && typeof value.then === "function") {
          throw new TypeError(
            "rotateRefreshToken: mint returned a Promise; give an async mint to the Promise API (storage.promises.rotateRefreshToken or native-token-storage/promises)",
          );
        }
      } else {
        value = this._run(name, input);
      }
      step = steps.next(value);
    }
    return step.value;
  }

  /** The same as a Promise: `mint` may be async. */
  async _runStepsAsync(steps) {
    let step = steps.next();
    while (!step.done) {
      const [name, input] = step.value;
      const value = name === MINT ? await input.mint(input.grant) : await this._runAsync(name, input);
      step = steps.next(value);
    }
    return step.value;
  }
}

// The operations, as methods made from the table: `storage.getAccessToken(token)` runs
// OPERATIONS.getAccessToken with the caller's arguments.
for (const op of Object.values(OPERATIONS)) {
  const method = { [op.name](...given) { return this._call(op, given); } }[op.name];
  Object.defineProperty(method, "length", { value: op.params.length });
  Object.defineProperty(TokenStorage.prototype, op.name, { value: method, writable: true, configurable: true });
}

/**
 * Stores garbage-collected while open (never closed): their cleanup timer stops and their
 * connections and threads are released, and a warning says so once per process (a server
 * that makes a store per request and never closes it runs out of descriptors or of
 * PostgreSQL connections without it).
 */
let leaked = 0;
const LEAKED = new FinalizationRegistry((held) => {
  if (held.timer !== null) clearInterval(held.timer);
  try {
    held.native.close();
  } catch {
    // Nothing can be reported to a caller that let the store go.
  }
  leaked += 1;
  // Once, after the collections of this turn are counted.
  if (leaked === 1) setImmediate(warnLeaked).unref();
});

function warnLeaked() {
  log("warn", `${leaked} token stores were garbage-collected without close(); call close() (or closeDB()) when done with a store, so its file or connections are released at once`, {
    stores: leaked,
  });
}

/**
 * `method` of `native` with the arguments `input` and then `now`, without copying or growing
 * `input` for the usual counts (this is on every synchronous call's path).
 */
function callWithClock(native, method, input, now) {
  switch (input.length) {
    case 0:
      return method.call(native, now);
    case 1:
      return method.call(native, input[0], now);
    case 2:
      return method.call(native, input[0], input[1], now);
    case 3:
      return method.call(native, input[0], input[1], input[2], now);
    case 8: // storeAccessToken
      return method.call(native, input[0], input[1], input[2], input[3], input[4], input[5], input[6], input[7], now);
    default:
      return method.apply(native, [...input, now]);
  }
}

/**
 * The caller's clock, read at every call and passed to the store: `Date.now()`, so that
 * Jest's, Vitest's, node:test's and sinon's fake clocks drive expiry, `createdAt` and the
 * cleanup as they drove the old module's `Map`s.
 */
function clock() {
  const now = Date.now();
  if (typeof now !== "number" || !Number.isFinite(now)) {
    const what = typeof now === "number" ? String(now) : `${/^[aeiou]/.test(typeof now) ? "an" : "a"} ${typeof now}`;
    throw new TypeError(`native-token-storage: Date.now() returned ${what}; the store needs the time in epoch milliseconds`);
  }
  return now;
}

/**
 * The automatic cleanup's timer. It holds its store weakly, so a store nothing else holds is
 * freed, native memory and all, and the timer stops at its next tick. Its function is made
 * in Node's own context, not in the one this module runs in: under Jest each test file runs
 * in a context of its own, and a timer whose function belonged to it would keep the whole
 * context alive, the test's closures and so its store with it.
 */
const cleanupTimer = require("node:vm").runInThisContext(`(function cleanupTimer(setInterval, clearInterval, storage, ms) {
  const ref = new WeakRef(storage);
  storage = null;
  const timer = setInterval(function automaticCleanup() {
    const alive = ref.deref();
    if (alive === undefined) clearInterval(timer);
    else alive._cleanupNow();
  }, ms);
  timer.unref();
  return timer;
})`).bind(null, setInterval, clearInterval);

/**
 * The timer without the caller's AsyncLocalStorage stores, which Node copies onto every
 * timer (as `kResourceStore` symbols) for its callback: Jest 30 runs each test with a store
 * that holds the test, and through the test's closures a timer made in it would keep the
 * test file's stores alive for good. The cleanup runs in no caller's context.
 */
function withoutCallerStores(timer) {
  for (const key of Object.getOwnPropertySymbols(timer)) if (key.description === "kResourceStore") delete timer[key];
  return timer;
}

/** Errors already logged (see `_fail`). */
const LOGGED = new WeakSet();

/** The methods bound to each instance. */
const METHODS = Object.getOwnPropertyNames(TokenStorage.prototype).filter(
  (name) => name !== "constructor" && !name.startsWith("_") && typeof Object.getOwnPropertyDescriptor(TokenStorage.prototype, name).value === "function",
);

/**
 * Marks the default store; its value is the memory store's scope: `"module"` (one per loaded
 * copy of the package: a thread, a Jest test file) or `"process"`. Not public API.
 */
const SHARED = Symbol("native-token-storage.shared");
/** What to call the settings in error messages (the environment variables); not public API. */
const SETTING_NAMES = Symbol("native-token-storage.settingNames");

/** A file of API keys should not be readable by others; say so once at open. */
function warnIfShared(path) {
  try {
    const mode = fs.statSync(path).mode & 0o777;
    if (mode & 0o077) {
      log("warn", "token database is readable or writable by other users; run chmod 600 on it", {
        path,
        mode: mode.toString(8),
      });
    }
  } catch {
    // The store opened it; a failed stat here is not worth failing the call for.
  }
}

module.exports = { TokenStorage, SHARED, SETTING_NAMES };
