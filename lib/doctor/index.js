"use strict";
// `native-token-storage doctor [folder]`: reads a server's source and lists, with file and
// line, what stops the swap to native-token-storage from working ("blocks") and what costs
// the operator ("costs"), each with the edit to make. Each file is parsed (acorn) and every
// finding is a pattern of its syntax tree, so comments and strings are never read as code.
// `fix()` makes the edits it knows exactly: ranges of the source replaced, the rest of the
// text untouched, every edited file parsed again before anything is written. Nothing is run.
//
// files.js reads the folder safely; syntax.js and modules.js are the source model; rules/
// holds the rules, one file a family of findings; edits.js the range edits and diffs;
// check.js runs it all; fix.js writes the edits; report.js collects and prints the findings;
// names.js is the package's names.

const { doctor } = require("./check");
const { readRegular } = require("./files");
const { fix } = require("./fix");
const { format } = require("./report");

module.exports = { doctor, fix, format, readRegular };
