"use strict";
// The rule on the end of the process: no closeDB() where the server shuts down.

const { callee, isRequire, kindOf } = require("../modules");
const { PACKAGE } = require("../names");
const { descendants, indentAt, isFunction, lineEnd, lineOf, lineStart, statementOf, textOf } = require("../syntax");
const { binding } = require("./common");

/** No closeDB() where the server shuts down: each SIGTERM or SIGINT handler gets one before it exits. */
function shutdown(files, report) {
  const users = files.filter((f) => f.kind !== "old-db" && f.requires.some((r) => ["tokens", "old-db"].includes(kindOf(r))));
  if (!users.length) return;
  const closes = (f) =>
    f.kind !== "old-db" && f.nodes.some((n) =>
      !report.isClaimed(f, n) &&
      ((n.type === "CallExpression" && (callee(n)?.name === "closeDB" || (callee(n)?.name === "close" && n.arguments.length === 0 && f.nodes.some((x) => x.type === "NewExpression" && x.callee.name === "TokenStorage")))) ||
        (n.type === "Identifier" && n.name === "closeDB" && n.parent.type === "CallExpression" && n.parent.arguments.includes(n)) ||
        (n.type === "MemberExpression" && !n.computed && n.property.name === "closeDB" && n.parent.type === "CallExpression" && n.parent.arguments.includes(n))));
  if (files.some(closes)) return;
  const why = "Without it the SQLite file is not checkpointed at exit (the newest tokens stay in tokens.db-wal, which a copy of tokens.db alone misses), and PostgreSQL sees its connections dropped.";
  /** How this file calls closeDB, and the binding it must add for that (or null). */
  const closeCall = (f) => {
    if (f.names.get("closeDB")?.r.topLevel && !report.isClaimed(f, f.names.get("closeDB").r.node)) return { call: "closeDB();", add: null };
    const r = f.requires.find((q) => q.ns && q.topLevel && !report.isClaimed(f, q.node) && (q.spec === PACKAGE || q.target?.becomesPackage));
    if (r) return { call: `${r.ns}.closeDB();`, add: null };
    return { call: "closeDB();", add: binding(f, ["closeDB"], PACKAGE) };
  };
  const addBinding = (f, text) => {
    // After the last top-level require or import that is not going away, else at the top.
    const last = f.ast.body.filter((s) => !report.isClaimed(f, s) && (s.type === "ImportDeclaration" || (s.type === "VariableDeclaration" && s.declarations.some((d) => isRequire(d.init))))).at(-1);
    if (last) return { start: lineEnd(f, last.end), end: lineEnd(f, last.end), text: `${text}\n` };
    const first = f.ast.body.find((s) => !(s.type === "ExpressionStatement" && s.directive));
    const at = first ? lineStart(f, first.start) : f.src.length;
    return { start: at, end: at, text: `${text}\n` };
  };
  const handlers = [];
  for (const f of files) {
    for (const n of f.nodes) {
      if (n.type !== "CallExpression" || !/^process\.(?:on|once|addListener|prependListener)$/.test(textOf(f, n.callee)) || n.arguments.length !== 2) continue;
      const signal = n.arguments[0].type === "Literal" ? n.arguments[0].value : null;
      if (!/^SIG(?:TERM|INT)$/.test(signal) || report.isClaimed(f, n)) continue;
      handlers.push({ f, n, signal });
    }
  }
  if (handlers.length) {
    const added = new Set();
    for (const { f, n, signal } of handlers) {
      let fn = n.arguments[1];
      if (fn.type === "Identifier") {
        const decl = f.nodes.find((x) => (x.type === "FunctionDeclaration" && x.id?.name === fn.name) || (x.type === "VariableDeclarator" && x.id.name === fn.name && isFunction(x.init)));
        fn = decl ? (decl.type === "FunctionDeclaration" ? decl : decl.init) : null;
      }
      const { call, add } = closeCall(f);
      const edits = [];
      let byHand = null;
      if (!isFunction(fn)) {
        byHand = `call closeDB() in the ${signal} handler at line ${lineOf(f, n.start)} before it exits`;
      } else if (fn.body.type !== "BlockStatement") {
        edits.push({ start: fn.body.start, end: fn.body.end, text: `{ ${call} return ${textOf(f, fn.body)}; }` });
      } else {
        // Before the first process.exit (a statement of its own, in the handler or a callback of it), else at the end of the body.
        const exit = descendants(f, fn.body).find((x) => x.type === "CallExpression" && textOf(f, x.callee) === "process.exit");
        const stmt = exit && exit.parent.type === "ExpressionStatement" && exit.parent.parent.type === "BlockStatement" ? exit.parent : null;
        if (stmt) {
          edits.push(f.src.slice(lineStart(f, stmt.start), stmt.start).trim() === ""
            ? { start: lineStart(f, stmt.start), end: lineStart(f, stmt.start), text: `${indentAt(f, stmt.start)}${call}\n` }
            : { start: stmt.start, end: stmt.start, text: `${call} ` });
        } else if (exit) {
          byHand = `the ${signal} handler at line ${lineOf(f, n.start)} exits within an expression (line ${lineOf(f, exit.start)}): call closeDB() right before that process.exit`;
        } else {
          const closing = fn.body.end - 1;
          const inner = fn.body.body.length ? indentAt(f, fn.body.body[0].start) : `${indentAt(f, fn.body.start)}  `;
          edits.push(f.src.slice(lineStart(f, closing), closing).trim() === ""
            ? { start: lineStart(f, closing), end: lineStart(f, closing), text: `${inner}${call}\n` }
            : { start: closing, end: closing, text: ` ${call} ` });
        }
      }
      if (add && !byHand && !added.has(f)) {
        edits.push(addBinding(f, add));
        added.add(f);
      }
      report.add(f, "costs", "no-closedb", n.start, `the ${signal} handler does not call closeDB()`, why,
        "Close the store before the process exits" + (add ? ", with closeDB from the package (the old module's is gone with the swap):" : ":"),
        { edits, byHand });
    }
    return;
  }
  const main = users.find((f) => f.nodes.some((n) => n.type === "CallExpression" && n.callee.type === "MemberExpression" && n.callee.property.name === "listen")) ?? users[0];
  const listen = main.nodes.find((n) => n.type === "CallExpression" && n.callee.type === "MemberExpression" && n.callee.property.name === "listen");
  const { call, add } = closeCall(main);
  const at = listen ? lineEnd(main, statementOf(listen).end) : main.src.length;
  const newline = main.src.length && !main.src.endsWith("\n") && at === main.src.length ? "\n" : "";
  const edits = [{ start: at, end: at, text: `${newline}for (const signal of ["SIGTERM", "SIGINT"]) process.once(signal, () => { ${call} process.exit(0); });\n` }];
  if (add) edits.push(addBinding(main, add));
  report.add(main, "costs", "no-closedb", listen ? listen.start : null, "nothing calls closeDB() when the server stops", why,
    "Close the store on SIGTERM and SIGINT:", { edits, line: listen ? lineOf(main, listen.start) : null });
}

module.exports = { shutdown };
