"use strict";
// The documentation's relative links: every `](target)` in README.md and docs/*.md (outside
// code blocks) that is not a URL must name a file or folder of the repository, and a
// `#anchor`, in the same page or into another .md page, must be the GitHub slug of one of
// that page's headings.
const { describe, it } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");

const ROOT = path.join(__dirname, "..");
const DOCS = path.join(ROOT, "docs");
const PAGES = [path.join(ROOT, "README.md"), ...fs.readdirSync(DOCS).filter((f) => f.endsWith(".md")).map((f) => path.join(DOCS, f))];

/** The page's lines outside fenced code blocks. */
function prose(text) {
  let fenced = false;
  return text.split("\n").filter((line) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return false;
    }
    return !fenced;
  });
}

/** GitHub's anchor for a heading's text: markup dropped, lower case, punctuation removed, spaces to hyphens. */
function slug(heading) {
  const text = heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1") // a link: its text
    .replace(/[`*]/g, "")
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "").replace(/ /g, "-");
}

/** Every anchor of a page, duplicates numbered as GitHub numbers them (`name`, `name-1`, …). */
function anchors(file) {
  const seen = new Map();
  const out = new Set();
  for (const line of prose(fs.readFileSync(file, "utf8"))) {
    const m = line.match(/^#{1,6}\s+(.*?)\s*#*\s*$/);
    if (!m) continue;
    const base = slug(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** The relative link targets of a page: `](target)` with no scheme, code spans left out. */
function links(file) {
  const out = [];
  for (const line of prose(fs.readFileSync(file, "utf8"))) {
    const text = line.replace(/`[^`]*`/g, (span) => (span.includes("](") ? "" : span));
    for (const m of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      if (!/^[a-z][a-z0-9+.-]*:/i.test(m[1])) out.push(m[1]);
    }
  }
  return out;
}

describe("relative links in the documentation", () => {
  it("the pages are found, and have links to check", () => {
    assert.ok(PAGES.length >= 2, PAGES.join(", "));
    assert.ok(links(path.join(ROOT, "README.md")).some((l) => l.startsWith("docs/")), "the README links to docs/");
  });

  it("the slug of a heading is GitHub's", () => {
    assert.equal(slug("The Promise API"), "the-promise-api");
    assert.equal(slug("Worker threads and processes"), "worker-threads-and-processes");
    assert.equal(slug("Migrating from the Map-based `tokenStorage.js`"), "migrating-from-the-map-based-tokenstoragejs");
    assert.equal(slug("What changed from the old module"), "what-changed-from-the-old-module");
  });

  for (const page of PAGES) {
    const name = path.relative(ROOT, page);
    it(`${name}: every relative link resolves`, () => {
      const broken = [];
      for (const link of links(page)) {
        const hash = link.indexOf("#");
        const target = hash === -1 ? link : link.slice(0, hash);
        const anchor = hash === -1 ? null : decodeURIComponent(link.slice(hash + 1));
        const file = target === "" ? page : path.resolve(path.dirname(page), decodeURIComponent(target));
        if (!file.startsWith(ROOT + path.sep) || !fs.existsSync(file)) {
          broken.push(`${link}: no such file`);
          continue;
        }
        if (anchor === null) continue;
        if (!file.endsWith(".md")) {
          broken.push(`${link}: an anchor into a file that is not Markdown`);
        } else if (!anchors(file).has(anchor)) {
          broken.push(`${link}: no heading with that anchor in ${path.relative(ROOT, file)}`);
        }
      }
      assert.deepEqual(broken, []);
    });
  }
});
