"use strict";
// Reading the server's folder safely: the source files under it (dependencies, builds and
// dot-folders skipped), one file at a time with a size limit and no blocking on a pipe, and
// how the server is started (its package.json) with the settings files beside it. What
// cannot be read goes to `skipped` with the reason.

const fs = require("node:fs");
const path = require("node:path");

const SOURCE_FILE = /\.[cm]?js$/;
const TYPESCRIPT_FILE = /\.[cm]?ts$/;
const SKIPPED_FOLDERS = new Set(["node_modules", "dist", "build", "coverage"]);
/** Larger source or settings files are not read (a minified bundle, a file that is not what its name says). */
const LARGEST_FILE = 1 << 20;

const KIND_OF_STAT = (st) =>
  st.isDirectory() ? "a folder" : st.isFIFO() ? "a named pipe" : st.isSocket() ? "a socket"
    : st.isCharacterDevice() || st.isBlockDevice() ? "a device" : "not a regular file";

/**
 * The text of a regular file of at most `limit` bytes, or `{ skip: reason }`: a folder, a
 * pipe, a device (a link to /dev/zero), a file too large or that cannot be read. The file is
 * opened non-blocking, so a named pipe with no writer cannot hang the read, and checked again
 * once open (fstat), so what is read is what was checked.
 */
function readRegular(abs, limit = LARGEST_FILE) {
  let st;
  try {
    st = fs.statSync(abs);
  } catch (err) {
    return { skip: `cannot be read (${err.code ?? err.message})` };
  }
  if (!st.isFile()) return { skip: `${KIND_OF_STAT(st)}, not a file` };
  if (st.size > limit) return { skip: `larger than ${limit} bytes` };
  let fd;
  try {
    fd = fs.openSync(abs, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
    const open = fs.fstatSync(fd);
    if (!open.isFile()) return { skip: `${KIND_OF_STAT(open)}, not a file` };
    const buffer = Buffer.alloc(Math.min(open.size, limit) + 1);
    let length = 0;
    for (let n; length < buffer.length && (n = fs.readSync(fd, buffer, length, buffer.length - length, null)) > 0;) length += n;
    if (length > limit) return { skip: `larger than ${limit} bytes` };
    return { text: buffer.toString("utf8", 0, length) };
  } catch (err) {
    return { skip: `cannot be read (${err.code ?? err.message})` };
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

const relative = (from, to) => path.relative(from, to).split(path.sep).join("/") || ".";

/** Source files, TypeScript files (read by the MCP provider rule only) and tokens.db files under root, skipping dependencies, builds and dot-folders; what could not be read goes to `skipped`. */
function walk(root, skipped) {
  const sources = [];
  const databases = [];
  const typescript = [];
  (function visit(dir) {
    let entries;
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      skipped.push({ file: relative(root, dir), reason: `a folder that cannot be read (${err.code ?? err.message})` });
      return;
    }
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const abs = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!entry.name.startsWith(".") && !SKIPPED_FOLDERS.has(entry.name)) visit(abs);
      } else if (entry.name === "tokens.db") {
        databases.push(abs);
      } else if (TYPESCRIPT_FILE.test(entry.name) && !entry.name.endsWith(".d.ts")) {
        skipped.push({ file: relative(root, abs), reason: "TypeScript, which doctor does not parse (it reads only its imports and classes, for mcp-memory-provider): run it on the compiled JavaScript" });
        typescript.push(abs);
      } else if (SOURCE_FILE.test(entry.name)) {
        sources.push(abs);
      }
    }
  })(root);
  return { sources, databases, typescript };
}

/**
 * How the server is started, from the package.json here or one folder up: `{ cwd, main,
 * pkg (a file), startAt, how }` (`startAt` the offset after `"start": "`, or -1).
 */
function startOf(root, skipped) {
  for (const dir of [root, path.dirname(root)]) {
    const file = path.join(dir, "package.json");
    let exists = false;
    try {
      fs.lstatSync(file);
      exists = true;
    } catch {
      exists = false;
    }
    if (!exists) continue;
    const read = readRegular(file);
    if (read.skip) {
      if (dir === root) skipped.push({ file: "package.json", reason: read.skip });
      continue;
    }
    let pkg;
    try {
      pkg = JSON.parse(read.text);
    } catch {
      continue;
    }
    const script = /\b(?:node|nodemon|ts-node|tsx)\s+(?:-\S+\s+)*([^\s&|;]+)/.exec(pkg.scripts?.start ?? "");
    const main = script?.[1] ?? pkg.main ?? conventionalMain(dir);
    const start = pkg.scripts?.start ? /"start"\s*:\s*"/.exec(read.text) : null;
    const pkgFile = { abs: file, rel: relative(root, file), src: read.text, json: true };
    pkgFile.starts = [0];
    for (let i = 0; i < read.text.length; i++) if (read.text[i] === "\n") pkgFile.starts.push(i + 1);
    return { cwd: dir, main: main && path.resolve(dir, main), pkgFile, startAt: start ? start.index + start[0].length : -1, how: script ? `\`npm start\` (${script[0]})` : null };
  }
  const main = conventionalMain(root);
  return { cwd: root, main: main && path.join(root, main), startAt: -1, how: null };
}

const conventionalMain = (dir) => ["server.js", "index.js", "app.js"].find((f) => fs.existsSync(path.join(dir, f))) ?? null;

/** The settings files beside the server's start (.env*, Dockerfile, compose, systemd units), read safely. */
function settingsOf(dir, skipped, root) {
  let names = [];
  try {
    names = fs.readdirSync(dir).filter((n) => /^(?:package\.json|\.env.*|Dockerfile.*|.*compose.*\.ya?ml|.*\.service)$/.test(n));
  } catch {
    return [];
  }
  const texts = [];
  for (const n of names.sort()) {
    const read = readRegular(path.join(dir, n));
    if (read.skip) {
      const file = relative(root, path.join(dir, n));
      if (!skipped.some((s) => s.file === file)) skipped.push({ file, reason: read.skip });
    } else texts.push(read.text);
  }
  return texts;
}

module.exports = { readRegular, relative, walk, startOf, settingsOf };
