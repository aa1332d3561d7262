"use strict";
// Argument checks, done before anything reaches the native store, so a bad call throws a
// TypeError (or RangeError) that names the function and the argument, and stores nothing.

/** Largest absolute epoch-millisecond value a JS Date can hold. */
const MAX_DATE_MS = 8.64e15;

const { isDate } = require("node:util").types;
const DATE_GET_TIME = Date.prototype.getTime;

function describe(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return "an empty string";
  const type = typeof v;
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function fail(fn, name, rule, value) {
  return new TypeError(`${fn}: ${name} must be ${rule}; got ${describe(value)}`);
}

function wellFormed(fn, name, value) {
  if (!value.isWellFormed()) {
    throw new TypeError(`${fn}: ${name} must be a well-formed Unicode string (it has a lone surrogate)`);
  }
  return value;
}

/** A required, non-empty string. */
function requiredString(fn, name, value) {
  if (typeof value !== "string" || value === "") throw fail(fn, name, "a non-empty string", value);
  return wellFormed(fn, name, value);
}

/** `null`, `undefined` or `""` mean "none" (returns null); otherwise a string. */
function optionalString(fn, name, value) {
  if (value === null || value === undefined || value === "") return null;
  if (typeof value !== "string") throw fail(fn, name, "a string, null or undefined", value);
  return wellFormed(fn, name, value);
}

/** A user id: a non-empty string, or null/undefined when the upstream gave none. */
function userId(fn, value, name = "userId") {
  if (value === null || value === undefined) return null;
  if (typeof value !== "string" || value === "") {
    throw fail(fn, name, "a non-empty string, null or undefined", value);
  }
  return wellFormed(fn, name, value);
}

/** Most scopes one grant may carry: far above any real grant, low enough to check quickly. */
const MAX_SCOPES = 10_000;

/**
 * An array of strings (a copy); `undefined` means []. `length` is read once and must be a
 * whole number (a Proxy can answer anything), and each element is read once.
 */
function scopes(fn, value, name = "scopes") {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw fail(fn, name, "an array of strings", value);
  const length = value.length;
  if (typeof length !== "number" || !Number.isSafeInteger(length) || length < 0) {
    throw new TypeError(`${fn}: ${name} must be an array of strings; its length is not a whole number`);
  }
  if (length > MAX_SCOPES) throw new RangeError(`${fn}: ${name} has ${length} entries; at most ${MAX_SCOPES} are accepted`);
  const copy = [];
  for (let i = 0; i < length; i++) {
    const s = value[i];
    if (typeof s !== "string") throw fail(fn, `${name}[${i}]`, "a string", s);
    copy.push(wellFormed(fn, `${name}[${i}]`, s));
  }
  return copy;
}

function inDateRange(fn, name, ms) {
  if (Math.abs(ms) > MAX_DATE_MS) {
    throw new RangeError(`${fn}: ${name} is outside the range a Date can hold`);
  }
  return ms;
}

/** A Date, epoch milliseconds, null or undefined (never expires): returns ms or null. */
function expiresAt(fn, value, name = "expiresAt") {
  if (value === null || value === undefined) return null;
  // isDate, not instanceof: a Date from another realm (vm, Jest's sandbox) is a Date too.
  if (isDate(value)) {
    const ms = DATE_GET_TIME.call(value); // not value.getTime(): that can be overridden
    if (Number.isNaN(ms)) throw new TypeError(`${fn}: ${name} is an invalid Date`);
    return ms;
  }
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw fail(fn, name, "a Date, a finite number of epoch milliseconds, null or undefined", value);
  }
  return inDateRange(fn, name, value);
}

/** A lifetime in seconds (`expiresIn`, `ttlSeconds`; left out, its default from lib/operations.js). */
function seconds(fn, name, value) {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw fail(fn, name, "a finite number of seconds", value);
  }
  inDateRange(fn, name, value * 1000);
  return value;
}

/**
 * A key to look up or delete: returns the string, or null for "no such key"
 * (null, undefined, "" or a string that no store call could have accepted).
 */
function lookupKey(fn, name, value) {
  if (value === null || value === undefined) return null;
  if (typeof value !== "string") throw fail(fn, name, "a string, null or undefined", value);
  return value !== "" && value.isWellFormed() ? value : null;
}

/** Keys of the OAuth state (states, client ids): at most this many bytes (an index entry of PostgreSQL's holds about 2,700). */
const MAX_KEY_LENGTH = 2048;
/** JSON documents (pending authorizations, client metadata): at most this many characters. */
const MAX_DOCUMENT_LENGTH = 64 * 1024;

/** A string argument, if it is one, of at most MAX_KEY_LENGTH bytes of UTF-8 (else a RangeError). */
function boundedString(fn, name, value) {
  if (typeof value === "string" && Buffer.byteLength(value, "utf8") > MAX_KEY_LENGTH) {
    throw new RangeError(`${fn}: ${name} must be at most ${MAX_KEY_LENGTH} bytes as UTF-8`);
  }
  return value;
}

/** An object (not null, not an array) as JSON text of at most MAX_DOCUMENT_LENGTH characters. */
function jsonObject(fn, name, value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new TypeError(`${fn}: ${name} must be a JSON-serialisable object`);
  }
  let json;
  try {
    json = JSON.stringify(value);
  } catch {
    throw new TypeError(`${fn}: ${name} must be a JSON-serialisable object (no cycles, no BigInt)`);
  }
  // A Date, or an object whose toJSON gives no object, would not come back as one.
  if (typeof json !== "string" || !json.startsWith("{")) {
    throw new TypeError(`${fn}: ${name} must be a JSON-serialisable object`);
  }
  if (json.length > MAX_DOCUMENT_LENGTH) {
    throw new RangeError(`${fn}: ${name} must be at most ${MAX_DOCUMENT_LENGTH} characters as JSON`);
  }
  return json;
}

/** RFC 7591 client metadata: an object whose redirect_uris, if given, is an array of strings. */
function clientMetadata(fn, value) {
  const json = jsonObject(fn, "metadata", value);
  const uris = value.redirect_uris;
  if (uris !== undefined && (!Array.isArray(uris) || !uris.every((u) => typeof u === "string"))) {
    throw new TypeError(`${fn}: metadata.redirect_uris must be an array of strings`);
  }
  return JSON.parse(json);
}

/** A PKCE verifier: a string, or null/undefined for none (which fails a PKCE code). */
function verifier(fn, value) {
  if (value === null || value === undefined) return null;
  if (typeof value !== "string") throw fail(fn, "codeVerifier", "a string, null or undefined", value);
  return value;
}

/**
 * A grant's optional fields (issue 20): `{ resource, extra }` of storeAccessToken's and
 * storeAuthorizationCode's `options`, or of a storeAccessTokens record. `resource` a string
 * (the RFC 8707 resource) of at most MAX_KEY_LENGTH bytes; `extra` a plain object, kept as
 * JSON text of at most MAX_DOCUMENT_LENGTH characters. Returns `{ resource, extra }` (JSON
 * text) with `undefined` for each one absent, or `undefined` when both are.
 */
function grant(fn, resource, extra, at) {
  const r = optionalString(fn, `${at}resource`, boundedString(fn, `${at}resource`, resource));
  const e = extra === null || extra === undefined ? null : jsonObject(fn, `${at}extra`, extra);
  return r === null && e === null ? undefined : { resource: r ?? undefined, extra: e ?? undefined };
}

/** storeAccessToken's and storeAuthorizationCode's last argument: `undefined`, `null` or `{ resource, extra }`. */
function grantOptions(fn, options) {
  if (options === undefined || options === null) return undefined;
  if (typeof options !== "object" || Array.isArray(options)) throw fail(fn, "options", "an object ({ resource, extra }), null or undefined", options);
  return grant(fn, options.resource, options.extra, "options.");
}

/** One record of storeAccessTokens, checked as storeAccessToken checks its arguments. */
function tokenRecord(fn, record, i) {
  const at = `records[${i}]`;
  if (record === null || typeof record !== "object" || Array.isArray(record)) {
    throw fail(fn, at, "an object", record);
  }
  return {
    accessToken: requiredString(fn, `${at}.accessToken`, record.accessToken),
    refreshToken: optionalString(fn, `${at}.refreshToken`, record.refreshToken) ?? undefined,
    apiKey: requiredString(fn, `${at}.apiKey`, record.apiKey),
    userId: userId(fn, record.userId, `${at}.userId`) ?? undefined,
    clientId: requiredString(fn, `${at}.clientId`, record.clientId),
    scopes: scopes(fn, record.scopes, `${at}.scopes`),
    expiresAt: expiresAt(fn, record.expiresAt, `${at}.expiresAt`) ?? undefined,
    ...grant(fn, record.resource, record.extra, `${at}.`),
  };
}

/** A file path (a non-empty string without NUL), made absolute against the current folder. */
function filePath(fn, name, value) {
  if (typeof value !== "string" || value === "" || value.includes("\0")) {
    throw new TypeError(`${fn}: ${name} must be a file path (a non-empty string)`);
  }
  return require("node:path").resolve(value);
}

module.exports = {
  filePath,
  tokenRecord,
  grantOptions,
  requiredString,
  optionalString,
  userId,
  scopes,
  expiresAt,
  seconds,
  lookupKey,
  verifier,
  boundedString,
  jsonObject,
  clientMetadata,
};
