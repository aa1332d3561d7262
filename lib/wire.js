"use strict";
// Reads a record the native store answers in the fields format (src/wire.rs): a header of
// integers, each followed by "," (empty for null), then ";", then the record's strings end to
// end. A string is its length in the header and its text in the body; a list of strings is
// its count, then each string. Each string is one `slice` of the reply, where `JSON.parse`
// would scan every character of every (JWT-sized) token. V8 makes a slice of 13 characters or
// more a view of the reply, so a string kept from a record (an API key) keeps its reply
// (the record's strings, about 1 kB with JWT-sized tokens) alive with it.
//
// Use: `begin(reply)`, then `str()`, `strs()`, `int()`, `date()` in the record's field order,
// then `end()`. Synchronous from begin to end (no other record is read in between), so the
// cursor is module state and reading allocates nothing but the values.

let text = "";
let head = 0; // the next header character
let body = 0; // the next body character

function begin(reply) {
  text = reply;
  head = 0;
  body = reply.indexOf(";") + 1;
}

/** Forgets the reply (so it is not kept alive until the next one). */
function end() {
  text = "";
}

/** The next header integer, or null. */
function int() {
  let c = text.charCodeAt(head);
  if (c === 44) {
    head++;
    return null;
  }
  let negative = false;
  if (c === 45) {
    negative = true;
    c = text.charCodeAt(++head);
  }
  let n = 0;
  while (c !== 44) {
    n = n * 10 + (c - 48);
    c = text.charCodeAt(++head);
  }
  head++;
  return negative ? -n : n;
}

/** The next string, or null. */
function str() {
  const n = int();
  return n === null ? null : text.slice(body, (body += n));
}

/** The next list of strings (a new array). */
function strs() {
  const n = int();
  const out = [];
  for (let i = 0; i < n; i++) out.push(str());
  return out;
}

/** The next time as a new Date, or null. */
function date() {
  const n = int();
  return n === null ? null : new Date(n);
}

module.exports = { begin, end, int, str, strs, date };
