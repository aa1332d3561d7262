"use strict";
// Which glibc a Linux binary needs: the versions (GLIBC_2.14, GLIBC_2.34, …) of the C library
// symbols it was linked against, read from its ELF `.gnu.version_r` section (SHT_GNU_verneed),
// what `readelf -V` prints as "Version needs section". The dynamic loader refuses to load a
// binary that needs a version newer than the machine's glibc ("version `GLIBC_2.34' not
// found"), so the highest one is the oldest glibc it runs on.
//
// Plain JS, no binutils: 32- and 64-bit, either byte order.
const fs = require("node:fs");

const SHT_GNU_VERNEED = 0x6ffffffe;

/** Compares two dotted versions ("2.17", "2.2.5") numerically. */
function compareVersions(a, b) {
  const x = a.split(".").map(Number);
  const y = b.split(".").map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d) return Math.sign(d);
  }
  return 0;
}

/**
 * The versions a binary needs, per library: [{ file: "libc.so.6", versions: ["GLIBC_2.2.5", …] }].
 * Throws on a file that is not ELF or whose version section is out of bounds.
 */
function versionNeeds(file) {
  const buf = fs.readFileSync(file);
  const where = `${file}: `;
  if (buf.length < 52 || buf.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${where}not an ELF file`);
  const is64 = buf[4] === 2;
  if (buf[4] !== 1 && !is64) throw new Error(`${where}unknown ELF class ${buf[4]}`);
  const le = buf[5] === 1;
  if (buf[5] !== 1 && buf[5] !== 2) throw new Error(`${where}unknown ELF byte order ${buf[5]}`);
  const u16 = (o) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const u64 = (o) => Number(le ? buf.readBigUInt64LE(o) : buf.readBigUInt64BE(o));
  const check = (offset, size, what) => {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + size > buf.length) throw new Error(`${where}${what} lies outside the file`);
  };

  const shoff = is64 ? u64(0x28) : u32(0x20);
  const shentsize = u16(is64 ? 0x3a : 0x2e);
  const shnum = u16(is64 ? 0x3c : 0x30);
  if (!shoff || !shnum) throw new Error(`${where}no section headers`);
  check(shoff, shentsize * shnum, "the section header table");
  const section = (i) => {
    const h = shoff + i * shentsize;
    return is64
      ? { type: u32(h + 4), offset: u64(h + 0x18), size: u64(h + 0x20), link: u32(h + 0x28), info: u32(h + 0x2c) }
      : { type: u32(h + 4), offset: u32(h + 0x10), size: u32(h + 0x14), link: u32(h + 0x18), info: u32(h + 0x1c) };
  };

  const needs = [];
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (s.type !== SHT_GNU_VERNEED) continue;
    check(s.offset, s.size, "the version needs section");
    if (s.link >= shnum) throw new Error(`${where}the version needs section links to no string table`);
    const strtab = section(s.link);
    check(strtab.offset, strtab.size, "the version needs' string table");
    const str = (o) => {
      if (o >= strtab.size) throw new Error(`${where}a version name lies outside its string table`);
      const start = strtab.offset + o;
      const end = buf.indexOf(0, start);
      return buf.toString("latin1", start, end < 0 || end > strtab.offset + strtab.size ? strtab.offset + strtab.size : end);
    };
    // Verneed { u16 version, u16 cnt, u32 file, u32 aux, u32 next }, each with cnt
    // Vernaux { u32 hash, u16 flags, u16 other, u32 name, u32 next }; offsets are relative.
    let entry = s.offset;
    for (let n = 0; n < s.info; n++) {
      check(entry, 16, "a version need");
      if (entry + 16 > s.offset + s.size) throw new Error(`${where}a version need lies outside its section`);
      const need = { file: str(u32(entry + 4)), versions: [] };
      let aux = entry + u32(entry + 8);
      for (let k = 0; k < u16(entry + 2); k++) {
        check(aux, 16, "a version need's entry");
        need.versions.push(str(u32(aux + 8)));
        const next = u32(aux + 12);
        if (!next) break;
        aux += next;
      }
      needs.push(need);
      const next = u32(entry + 12);
      if (!next) break;
      entry += next;
    }
  }
  return needs;
}

/**
 * The highest GLIBC_x.y version a binary needs ("2.34"), or null if it needs none (not linked
 * against glibc, or static).
 */
function maxGlibcVersion(file) {
  let max = null;
  for (const { versions } of versionNeeds(file)) {
    for (const v of versions) {
      const m = /^GLIBC_(\d+(?:\.\d+)+)$/.exec(v);
      if (m && (max === null || compareVersions(m[1], max) > 0)) max = m[1];
    }
  }
  return max;
}

module.exports = { versionNeeds, maxGlibcVersion, compareVersions };

if (require.main === module) {
  // node scripts/glibc.js FILE…: the highest GLIBC_ version each needs.
  for (const file of process.argv.slice(2)) console.log(`${file}: ${maxGlibcVersion(file) ?? "no GLIBC_ version needed"}`);
}
