"use strict";
// Rules on the package's synchronous functions used as if they were async: async wrappers and
// promisify around them, .then() on their result, needless awaits.

const { callee, syncCall } = require("../modules");
const { isFunction, textOf } = require("../syntax");
const { TRUTHY } = require("./common");

/** `async` functions whose body is one call of the package's synchronous functions, and `promisify` of one. */
function asyncWrappers(f, report) {
  if (f.kind === "old-db") return;
  for (const fn of f.nodes.filter((n) => isFunction(n) && n.async)) {
    let expr = fn.body;
    if (fn.body.type === "BlockStatement") {
      const only = fn.body.body.length === 1 ? fn.body.body[0] : null;
      expr = only?.type === "ReturnStatement" ? only.argument : null;
    }
    const awaited = expr?.type === "AwaitExpression" ? expr : null;
    const call = awaited ? awaited.argument : expr;
    const name = call && syncCall(f, call);
    if (!name || report.isClaimed(f, fn)) continue;
    // `async` is where the function starts, or where its method does.
    const holder = fn.parent.type === "Property" && (fn.parent.method || fn.parent.kind !== "init") ? fn.parent : fn.parent.type === "MethodDefinition" ? fn.parent : fn;
    const at = f.src.indexOf("async", holder.start);
    const edits = [{ start: at, end: at + 5 + /^\s*/.exec(f.src.slice(at + 5))[0].length, text: "" }];
    if (awaited) edits.push({ start: awaited.start, end: awaited.argument.start, text: "" });
    report.add(f, "blocks", "async-wrapper", holder.start, `an async wrapper around the synchronous ${name}`,
      `It returns a Promise where the caller expects the value. ${TRUTHY}`, "Make the wrapper synchronous:", { edits });
    report.claim(f, fn.start, fn.end);
  }
  for (const n of f.nodes.filter((c) => c.type === "CallExpression" && /^(?:util\.)?promisify$/.test(textOf(f, c.callee)) && c.arguments.length === 1)) {
    const arg = n.arguments[0];
    const fake = { type: "CallExpression", callee: arg };
    if (!syncCall(f, fake) || report.isClaimed(f, n)) continue;
    report.add(f, "blocks", "async-wrapper", n.start, `promisify(${textOf(f, arg)}) waits for a callback that never comes`,
      `${callee(fake).name} is synchronous and takes no callback: the Promise never settles.`, "Call the function itself:",
      { edits: [{ start: n.start, end: n.end, text: textOf(f, arg) }] });
    report.claim(f, n.start, n.end);
  }
}

/** `.then(`, `.catch(` or `.finally(` on what one of the package's synchronous functions returns. */
function thenOnResult(f, report) {
  for (const m of f.nodes.filter((n) => n.type === "MemberExpression" && !n.computed && /^(?:then|catch|finally)$/.test(n.property.name))) {
    const name = syncCall(f, m.object);
    if (!name || m.parent.type !== "CallExpression" || report.isClaimed(f, m.object)) continue;
    report.add(f, "blocks", "then", m.object.start, `.${m.property.name}() on the result of the synchronous ${name}`,
      `${name} returns its value, not a Promise: the value has no ${m.property.name} method, so this throws a TypeError.`,
      "Use the value it returns, or, the smallest edit, wrap the call:",
      { edits: [{ start: m.object.start, end: m.object.start, text: "Promise.resolve(" }, { start: m.object.end, end: m.object.end, text: ")" }] });
    report.claim(f, m.object.start, m.object.end);
  }
}

/** `await` on one of the package's synchronous functions, one finding a file. */
function needlessAwaits(f, report) {
  const found = f.nodes.filter((n) => n.type === "AwaitExpression" && syncCall(f, n.argument) && !report.isClaimed(f, n));
  if (!found.length) return;
  report.add(f, "costs", "await", found[0].start, `${found.length === 1 ? "an await" : `${found.length} awaits`} of synchronous functions`,
    "The package's functions return their result, not a Promise: each await only defers the rest of the handler to a later tick. " +
      "A handler that is async only for them is better plain: Express 4 does not catch a rejected Promise, so a throw from the store becomes an unhandled rejection instead of a 500.",
    "Drop the await:", { edits: found.map((n) => ({ start: n.start, end: n.argument.start, text: "" })) });
}

module.exports = { asyncWrappers, thenOnResult, needlessAwaits };
