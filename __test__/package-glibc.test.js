"use strict";
// The glibc a release's Linux binary needs. scripts/glibc.js reads the GLIBC_ symbol versions
// from an ELF file's .gnu.version_r section; release-pack refuses a linux-*-gnu binary that
// needs more than glibc 2.17 (the linux-x64-gnu addon once packed here needed 2.34 and did not
// load on node:20-bullseye, Ubuntu 20.04 or RHEL 8); and the zigbuild tools' install says
// plainly when PyPI cannot be reached. The packed binary itself is checked in
// package-files.test.js, which builds it.
//
// The ELF files here are made by elf() below, with the layout the linker writes, so each case
// (32/64-bit, either byte order, no glibc at all, a truncated file) is exact and the same on
// every machine.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { versionNeeds, maxGlibcVersion, compareVersions } = require("../scripts/glibc");
const { checkGlibc, MAX_GLIBC } = require("../scripts/release-pack");
const { ensureTools, venvDir } = require("../scripts/zigbuild");

/**
 * A minimal shared object: the ELF header, .dynstr, .gnu.version_r (the version needs, one
 * Verneed per library and one Vernaux per version) and .shstrtab, then the section headers.
 */
function elf({ is64 = true, le = true, needs = [] } = {}) {
  const strings = ["", ...new Set(needs.flatMap((n) => [n.file, ...n.versions]))];
  const dynstr = Buffer.from(`${strings.join("\0")}\0`, "latin1");
  const at = (s) => dynstr.indexOf(Buffer.from(`${s}\0`, "latin1"), s === "" ? 0 : 1);
  const shstr = Buffer.from("\0.dynstr\0.gnu.version_r\0.shstrtab\0", "latin1");
  const ehsize = is64 ? 64 : 52;
  const shentsize = is64 ? 64 : 40;
  const auxCount = needs.reduce((n, x) => n + x.versions.length, 0);
  const verneedSize = 16 * (needs.length + auxCount);
  const dynstrOff = ehsize;
  const verneedOff = dynstrOff + dynstr.length + ((4 - ((dynstrOff + dynstr.length) % 4)) % 4);
  const shstrOff = verneedOff + verneedSize;
  const shoff = shstrOff + shstr.length + ((8 - ((shstrOff + shstr.length) % 8)) % 8);
  const buf = Buffer.alloc(shoff + 4 * shentsize);
  const w16 = (o, v) => (le ? buf.writeUInt16LE(v, o) : buf.writeUInt16BE(v, o));
  const w32 = (o, v) => (le ? buf.writeUInt32LE(v, o) : buf.writeUInt32BE(v, o));
  const wAddr = (o, v) => (is64 ? (le ? buf.writeBigUInt64LE(BigInt(v), o) : buf.writeBigUInt64BE(BigInt(v), o)) : w32(o, v));

  buf.writeUInt32BE(0x7f454c46, 0);
  buf[4] = is64 ? 2 : 1;
  buf[5] = le ? 1 : 2;
  buf[6] = 1;
  w16(16, 3); // ET_DYN
  w16(18, is64 ? 62 : 3); // x86-64 / i386
  w32(20, 1);
  wAddr(is64 ? 0x28 : 0x20, shoff);
  w16(is64 ? 0x34 : 0x28, ehsize);
  w16(is64 ? 0x3a : 0x2e, shentsize);
  w16(is64 ? 0x3c : 0x30, 4);
  w16(is64 ? 0x3e : 0x32, 3);

  dynstr.copy(buf, dynstrOff);
  shstr.copy(buf, shstrOff);
  // The Verneed entries first, then all the Vernaux entries, as GNU ld lays them out.
  let aux = verneedOff + 16 * needs.length;
  needs.forEach((need, i) => {
    const entry = verneedOff + 16 * i;
    w16(entry, 1);
    w16(entry + 2, need.versions.length);
    w32(entry + 4, at(need.file));
    w32(entry + 8, aux - entry);
    w32(entry + 12, i === needs.length - 1 ? 0 : 16);
    need.versions.forEach((v, k) => {
      w32(aux, 0);
      w32(aux + 8, at(v));
      w32(aux + 12, k === need.versions.length - 1 ? 0 : 16);
      aux += 16;
    });
  });

  const header = (i, { name, type, offset, size, link = 0, info = 0 }) => {
    const h = shoff + i * shentsize;
    w32(h, name);
    w32(h + 4, type);
    if (is64) {
      wAddr(h + 0x18, offset);
      wAddr(h + 0x20, size);
      w32(h + 0x28, link);
      w32(h + 0x2c, info);
    } else {
      w32(h + 0x10, offset);
      w32(h + 0x14, size);
      w32(h + 0x18, link);
      w32(h + 0x1c, info);
    }
  };
  header(1, { name: shstr.indexOf(".dynstr"), type: 3, offset: dynstrOff, size: dynstr.length });
  header(2, { name: shstr.indexOf(".gnu.version_r"), type: 0x6ffffffe, offset: verneedOff, size: verneedSize, link: 1, info: needs.length });
  header(3, { name: shstr.indexOf(".shstrtab"), type: 3, offset: shstrOff, size: shstr.length });
  return buf;
}

function scratch(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nts-package-glibc-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function write(dir, name, buf) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, buf);
  return file;
}

// What the addon built against this machine's glibc 2.36 needed (readelf -V of it): libc's
// GLIBC_2.34 for the pthread and dl functions that moved into libc, libm's GLIBC_2.29.
const BUILT_ON_BOOKWORM = [
  { file: "libgcc_s.so.1", versions: ["GCC_3.0", "GCC_3.3", "GCC_4.2.0"] },
  { file: "libm.so.6", versions: ["GLIBC_2.29"] },
  { file: "libc.so.6", versions: ["GLIBC_2.2.5", "GLIBC_2.3", "GLIBC_2.14", "GLIBC_2.17", "GLIBC_2.28", "GLIBC_2.33", "GLIBC_2.34"] },
  { file: "ld-linux-x86-64.so.2", versions: ["GLIBC_2.3"] },
];
const BUILT_FOR_2_17 = [
  { file: "libgcc_s.so.1", versions: ["GCC_3.0", "GCC_4.2.0"] },
  { file: "libc.so.6", versions: ["GLIBC_2.2.5", "GLIBC_2.3.4", "GLIBC_2.14", "GLIBC_2.16", "GLIBC_2.17"] },
  { file: "libpthread.so.0", versions: ["GLIBC_2.2.5", "GLIBC_2.12"] },
];

test("versions compare numerically, part by part", () => {
  assert.equal(compareVersions("2.17", "2.17"), 0);
  assert.equal(compareVersions("2.9", "2.17"), -1);
  assert.equal(compareVersions("2.34", "2.17"), 1);
  assert.equal(compareVersions("2.2.5", "2.2"), 1);
  assert.equal(compareVersions("2.3", "2.3.4"), -1);
});

test("reads every library's needed versions, 64- and 32-bit, little- and big-endian", (t) => {
  const dir = scratch(t);
  for (const is64 of [true, false]) {
    for (const le of [true, false]) {
      const file = write(dir, `lib-${is64 ? 64 : 32}-${le ? "le" : "be"}.so`, elf({ is64, le, needs: BUILT_ON_BOOKWORM }));
      assert.deepEqual(versionNeeds(file), BUILT_ON_BOOKWORM, `${is64 ? 64 : 32}-bit ${le ? "LE" : "BE"}`);
      // GLIBC_2.34 beats GLIBC_2.29 and GLIBC_2.3 (a string sort would say 2.3), GCC_ versions do not count.
      assert.equal(maxGlibcVersion(file), "2.34");
    }
  }
  assert.equal(maxGlibcVersion(write(dir, "for-2.17.so", elf({ needs: BUILT_FOR_2_17 }))), "2.17");
  // Linked against no glibc (musl's libc has no symbol versions): nothing needed.
  assert.equal(maxGlibcVersion(write(dir, "musl.so", elf({ needs: [] }))), null);
  assert.equal(maxGlibcVersion(write(dir, "gcc-only.so", elf({ needs: [{ file: "libgcc_s.so.1", versions: ["GCC_3.0"] }] }))), null);
});

test("a file that is not ELF, or whose sections lie outside it, is an error naming the file", (t) => {
  const dir = scratch(t);
  const text = write(dir, "not-elf.node", Buffer.from("MZ this is a Windows binary, or anything else".padEnd(128, ".")));
  assert.throws(() => maxGlibcVersion(text), (err) => err.message === `${text}: not an ELF file`);
  const empty = write(dir, "empty.node", Buffer.alloc(0));
  assert.throws(() => maxGlibcVersion(empty), /not an ELF file/);
  const whole = elf({ needs: BUILT_ON_BOOKWORM });
  const truncated = write(dir, "truncated.node", whole.subarray(0, whole.length - 100));
  assert.throws(() => maxGlibcVersion(truncated), (err) => err.message === `${truncated}: the section header table lies outside the file`);
  const noSections = Buffer.from(whole);
  noSections.writeBigUInt64LE(0n, 0x28);
  assert.throws(() => maxGlibcVersion(write(dir, "no-sections.node", noSections)), /no section headers/);
});

test("release-pack refuses a glibc Linux binary that needs a glibc newer than 2.17, and says which", (t) => {
  assert.equal(MAX_GLIBC, "2.17");
  const dir = scratch(t);
  const bookworm = write(dir, "native_token_storage.linux-x64-gnu.node", elf({ needs: BUILT_ON_BOOKWORM }));
  assert.throws(
    () => checkGlibc("linux-x64-gnu", bookworm),
    (err) => err.message.includes(`${bookworm} (linux-x64-gnu) needs GLIBC_2.34`) && err.message.includes("at most GLIBC_2.17") && /cargo zigbuild/.test(err.message),
  );
  assert.throws(() => checkGlibc("linux-arm64-gnu", bookworm), /needs GLIBC_2\.34/);
  const justOver = write(dir, "just-over.node", elf({ needs: [{ file: "libc.so.6", versions: ["GLIBC_2.2.5", "GLIBC_2.18"] }] }));
  assert.throws(() => checkGlibc("linux-x64-gnu", justOver), /needs GLIBC_2\.18/);

  assert.equal(checkGlibc("linux-x64-gnu", write(dir, "for-2.17.node", elf({ needs: BUILT_FOR_2_17 }))), "2.17");
  // A glibc binary with no GLIBC_ version at all is not what it claims to be.
  const none = write(dir, "none.node", elf({ needs: [] }));
  assert.throws(() => checkGlibc("linux-x64-gnu", none), /needs no GLIBC_ symbol version at all/);
  // musl, macOS and Windows binaries are not glibc's business.
  for (const platform of ["linux-x64-musl", "linux-arm64-musl", "darwin-arm64", "win32-x64-msvc"]) assert.equal(checkGlibc(platform, none), null);
});

test("release-pack refuses such a binary from the artifacts folder too, and packs nothing for it", (t) => {
  const { releasePack } = require("../scripts/release-pack");
  const dir = scratch(t);
  const artifacts = path.join(dir, "artifacts");
  fs.mkdirSync(artifacts);
  write(artifacts, "native_token_storage.linux-x64-gnu.node", elf({ needs: BUILT_ON_BOOKWORM }));
  const out = path.join(dir, "dist");
  assert.throws(() => releasePack({ outDir: out, artifactsDir: artifacts, build: false, log: () => {} }), /linux-x64-gnu\) needs GLIBC_2\.34/);
  assert.deepEqual(fs.readdirSync(out).filter((f) => f.startsWith("native-token-storage-linux-x64-gnu")), []);
});

test("the zigbuild tools' install says PyPI is unreachable, leaves no half-made venv, and names the way out", (t) => {
  const dir = scratch(t);
  // pip's index on a closed port of this machine, no local wheels: PyPI unreachable.
  const env = { ...process.env, XDG_CACHE_HOME: dir, PIP_INDEX_URL: "http://127.0.0.1:9/simple", PIP_FIND_LINKS: "", PIP_NO_CACHE_DIR: "1", PIP_RETRIES: "1" };
  const lines = [];
  assert.throws(
    () => ensureTools({ env, log: (line) => lines.push(line) }),
    (err) =>
      /pip could not install ziglang [\d.]+ and cargo-zigbuild [\d.]+ \(exit 1\): PyPI is not reachable from here/.test(err.message) &&
      err.message.includes("PIP_INDEX_URL") &&
      err.message.includes("--no-build --artifacts DIR"),
  );
  assert.match(lines[0], /installing ziglang [\d.]+ and cargo-zigbuild [\d.]+ from PyPI into a Python venv/);
  const venv = venvDir(env);
  assert.ok(venv.startsWith(path.join(dir, "native-token-storage")), venv);
  assert.deepEqual(fs.readdirSync(path.dirname(venv)), [], "a failed install leaves nothing behind");
});

test("without Python the error says what to install", (t) => {
  const dir = scratch(t);
  const env = { ...process.env, XDG_CACHE_HOME: dir, PYTHON: path.join(dir, "no-such-python3") };
  assert.throws(() => ensureTools({ env, log: () => {} }), (err) => /could not create a Python venv/.test(err.message) && /python3-venv/.test(err.message) && err.message.includes("ENOENT"));
});
