"use strict";
// The rule on the refresh grant: getRefreshToken, storeAccessToken and revokeRefreshToken as
// three calls, rewritten as one rotateRefreshToken when doctor can make the new pair from the
// grant.

const { mergeDeletions } = require("../edits");
const { callee, syncCall, syncCalls } = require("../modules");
const { PACKAGE } = require("../names");
const { descendants, enclosingFunction, indentAt, isReference, lineOf, lineStart, references, statementOf, statementRange, textOf, within } = require("../syntax");
const { WHY_GRANT, expiresInOf, grantLifetime, isNothing, storesRefreshToken } = require("./expiry");

const FIELDS = new Set(["userId", "clientId", "scopes", "accessToken", "createdAt"]);

/** `const X = Y instanceof Promise ? await Y : Y;` (the server's "maybe async" unwrap) of `name`: the declarator, or null. */
function unwrapOf(stmt, name) {
  const d = stmt?.type === "VariableDeclaration" && stmt.declarations.length === 1 ? stmt.declarations[0] : null;
  const c = d?.init?.type === "ConditionalExpression" ? d.init : null;
  return c && d.id.type === "Identifier" && c.test.type === "BinaryExpression" && c.test.operator === "instanceof" && c.test.left.name === name ? d : null;
}

/** `const X = call;` or `call;` or `await call;`: the call of the statement, or null. */
function callOfStatement(stmt) {
  let e = stmt.type === "ExpressionStatement" ? stmt.expression
    : stmt.type === "VariableDeclaration" && stmt.declarations.length === 1 ? stmt.declarations[0].init : null;
  if (e?.type === "AwaitExpression") e = e.argument;
  return e?.type === "CallExpression" ? e : null;
}

/** The source of an expression with `R.field` (R one of `names`) made `grant.field`; throws a reason when it reads anything else of R. */
function grantText(f, expr, names, forbidden) {
  const edits = [];
  for (const id of [expr, ...descendants(f, expr)].filter((n) => n.type === "Identifier" && isReference(n))) {
    if (names.has(id.name)) {
      const m = id.parent;
      if (m.type !== "MemberExpression" || m.object !== id || m.computed || !FIELDS.has(m.property.name)) throw new Error(`it reads ${id.name} other than as ${[...FIELDS].map((x) => `${id.name}.${x}`).join(", ")}`);
      edits.push([id.start, id.end, "grant"]);
    } else if (forbidden.has(id.name)) {
      throw new Error(`it uses ${id.name}, which is only known after the rotation`);
    }
  }
  let out = textOf(f, expr);
  for (const [s, e, t] of edits.sort((a, b) => b[0] - a[0])) out = out.slice(0, s - expr.start) + t + out.slice(e - expr.start);
  // One line, when nothing in it minds (no template literal, no comment).
  const comments = f.comments.some((c) => c.start >= expr.start && c.end <= expr.end);
  if (out.includes("\n") && !comments && ![expr, ...descendants(f, expr)].some((n) => n.type === "TemplateLiteral")) {
    out = out.replace(/([([{])\s*\n\s*/g, "$1").replace(/,?\s*\n\s*([)\]}])/g, "$1").replace(/\s*\n\s*/g, " ");
  }
  return out;
}

/** A refresh grant made of getRefreshToken, storeAccessToken and revokeRefreshToken: three steps, not one. */
function refreshGrant(f, report) {
  if (f.kind === "tokens" || f.kind === "old-db") return;
  for (const get of syncCalls(f, "getRefreshToken")) {
    const fn = enclosingFunction(get);
    const stmt = statementOf(get);
    if (!fn || !stmt || report.isClaimed(f, get) || stmt.parent.type !== "BlockStatement") continue;
    const block = stmt.parent.body;
    const i = block.indexOf(stmt);
    const same = (a, b) => a && b && textOf(f, a) === textOf(f, b);
    const revokeAt = block.findIndex((s, k) => k > i && syncCall(f, callOfStatement(s)) === "revokeRefreshToken" && same(callOfStatement(s).arguments[0], get.arguments[0]));
    if (revokeAt < 0) continue;
    const line = lineOf(f, get.start);
    const refuse = (why) => {
      report.add(f, "costs", "refresh-grant", get.start, "the refresh grant is three calls, not one atomic step",
        "Two requests with the same refresh token can both get new tokens, a replay of a spent token goes unseen by the store, and a crash between the calls leaves the old and new tokens both live.",
        "Rotate in one call: rotateRefreshToken(refreshToken, (grant) => ({ accessToken, refreshToken, expiresAt })) mints the new pair from the grant ({ userId, clientId, scopes }) and returns { userId, clientId, scopes, apiKey, accessToken, refreshToken }, or null; of two concurrent rotations exactly one wins, and a replay revokes the grant.",
        { byHand: `doctor cannot make this edit: ${why}. By hand, at line ${line}: mint the new tokens inside the callback from grant.userId, grant.clientId and grant.scopes, and delete the storeAccessToken and revokeRefreshToken calls of this grant` });
      report.claim(f, block[i].start, block[revokeAt].end);
    };
    const d = stmt.type === "VariableDeclaration" && stmt.declarations.length === 1 && stmt.declarations[0].init === get && stmt.declarations[0].id.type === "Identifier" ? stmt.declarations[0] : null;
    if (!d) { refuse("the result of getRefreshToken is not kept in one variable"); continue; }
    const names = new Set([d.id.name]);
    const unwrap = unwrapOf(block[i + 1], d.id.name);
    if (unwrap) names.add(unwrap.id.name);
    const result = unwrap ? unwrap.id.name : d.id.name;
    const edits = [];
    const removed = []; // statements that go
    // The store of the new pair, and its "maybe async" await.
    const storeAt = block.findIndex((s, k) => k > i && k < revokeAt && syncCall(f, callOfStatement(s)) === "storeAccessToken");
    if (storeAt < 0) { refuse("no storeAccessToken call between getRefreshToken and revokeRefreshToken"); continue; }
    const store = callOfStatement(block[storeAt]);
    if (store.arguments.length < 2 || store.arguments.some((a) => a.type === "SpreadElement")) { refuse("storeAccessToken's arguments are not written out"); continue; }
    const storeName = block[storeAt].type === "VariableDeclaration" ? block[storeAt].declarations[0].id.name : null;
    let storeAwait = null;
    if (storeName) {
      const next = block[storeAt + 1];
      if (next?.type === "IfStatement" && next.test.type === "BinaryExpression" && next.test.left.name === storeName && !next.alternate) storeAwait = next;
      if (references(f, storeName, fn).some((id) => !within(id, block[storeAt]) && !(storeAwait && within(id, storeAwait)))) { refuse(`${storeName} is used after the store`); continue; }
    }
    removed.push(block[revokeAt], ...(storeAwait ? [storeAwait] : []));
    // The read of the old access token (for its apiKey): rotateRefreshToken carries the apiKey over.
    const old = new Set();
    for (let k = i + 1; k < storeAt; k++) {
      const s = block[k];
      const c = callOfStatement(s);
      if (syncCall(f, c) === "getAccessToken" && c.arguments.length === 1 && c.arguments[0].type === "MemberExpression" && names.has(c.arguments[0].object.name) && s.type === "VariableDeclaration") {
        old.add(s.declarations[0].id.name);
        removed.push(s);
        const w = unwrapOf(block[k + 1], s.declarations[0].id.name);
        if (w) { old.add(w.id.name); removed.push(block[k + 1]); k++; }
      } else if (s.type === "IfStatement" && s.test.type === "UnaryExpression" && s.test.operator === "!" && old.has(s.test.argument.name) && !s.alternate) {
        removed.push(s);
      }
    }
    // `const { getAccessToken } = require(…)` in the handler, used only by the read that goes.
    for (let k = i + 1; k < storeAt; k++) {
      const s = block[k];
      const r = f.requires.find((q) => q.declaration === s && q.picks.length === 1 && q.picks[0][0] === "getAccessToken");
      if (r && references(f, r.picks[0][1], fn).every((id) => id.parent === r.picks[0][2] || id === r.picks[0][2].value || removed.some((x) => within(id, x)))) removed.push(s);
    }
    const outside = (id) => !removed.some((x) => within(id, x)) && !within(id, block[storeAt]);
    const oldUses = [...old].flatMap((name) => references(f, name, fn)).filter((id) => outside(id) && !(id.parent.type === "VariableDeclarator" && id.parent.id === id));
    const badOld = oldUses.filter((id) => !(id.parent.type === "MemberExpression" && id.parent.object === id && !id.parent.computed && ["apiKey", "userId", "clientId", "scopes"].includes(id.parent.property.name)));
    if (badOld.length) { refuse(`${badOld[0].name} (the old access token's data) is used at line ${lineOf(f, badOld[0].start)}`); continue; }
    for (const id of oldUses) edits.push({ start: id.start, end: id.end, text: result });
    // The new tokens: their expressions move into the callback, their names are read from the result.
    const declaredAfter = new Set(f.nodes.filter((n) => n.type === "VariableDeclarator" && n.start > get.start && within(n, fn) && n.id.type === "Identifier").map((n) => n.id.name));
    for (const name of old) declaredAfter.add(name);
    const parts = [];
    const later = [];
    let failed = null;
    for (const [k, key] of [[0, "accessToken"], [1, "refreshToken"]]) {
      const arg = store.arguments[k];
      const decl = arg.type === "Identifier" ? f.nodes.find((n) => n.type === "VariableDeclarator" && n.id.type === "Identifier" && n.id.name === arg.name && n.init && within(n, fn) && n.parent.declarations.length === 1 && block.includes(n.parent)) : null;
      if (arg.type === "Identifier" && !decl) { failed = `${arg.name} is not declared in this block with its value`; break; }
      const expr = decl ? decl.init : arg;
      const declAt = decl ? block.indexOf(decl.parent) : -1;
      if (decl && references(f, arg.name, fn).some((id) => id !== decl.id && id !== arg && id.start < block[storeAt].start && id.start > decl.end)) { failed = `${arg.name} is used before the store`; break; }
      try {
        declaredAfter.delete(decl?.id.name);
        const forbidden = new Set([...declaredAfter].filter((n) => !f.nodes.some((x) => x.type === "VariableDeclarator" && x.id.name === n && x.start < (decl ?? arg).start && x.start > get.start && !old.has(n)) || old.has(n)));
        parts.push(`${key}: ${grantText(f, expr, names, forbidden)}`);
      } catch (err) {
        failed = `the new ${key} (line ${lineOf(f, expr.start)}) cannot be made from the grant: ${err.message}`;
        break;
      }
      if (decl) {
        removed.push(decl.parent);
        later.push(`${decl.parent.kind} ${arg.name} = ${result}.${key};`);
        if (declAt < i) declaredAfter.delete(arg.name);
      }
    }
    if (failed) { refuse(failed); continue; }
    // The expiry: the store's own, else the response's expires_in, else none (no-expiry says so).
    const given = store.arguments[6];
    const expiresIn = expiresInOf(f, fn);
    let expiry = "null";
    let lifetime = null;
    if (given && !isNothing(given)) {
      try {
        expiry = grantText(f, given, names, declaredAfter);
      } catch (err) {
        refuse(`the expiry (line ${lineOf(f, given.start)}) ${err.message}`);
        continue;
      }
    } else if (storesRefreshToken(store.arguments[1])) {
      // The row carries the new refresh token: it lives as long as the grant, not as the access token.
      lifetime = grantLifetime(f, get);
      if (lifetime.expiry) {
        expiry = lifetime.expiry;
        edits.push(...lifetime.edits);
      }
    } else if (expiresIn !== null) expiry = `new Date(Date.now() + ${expiresIn} * 1000)`;
    // The function that rotates: from the module that has it.
    const c = callee(get);
    const through = c.obj ? f.requires.find((r) => r.ns === c.obj) : f.names.get(c.name)?.r;
    if (!through || !(through.spec === PACKAGE || through.target?.becomesPackage)) { refuse(`getRefreshToken comes from ${through?.spec ?? "a module doctor cannot see"}, which may have no rotateRefreshToken`); continue; }
    const indent = indentAt(f, stmt.start);
    const rotate = `${c.obj ? `${c.obj}.` : ""}rotateRefreshToken(${textOf(f, get.arguments[0])}, (grant) => ({\n${parts.concat(`expiresAt: ${expiry}`).map((p) => `${indent}  ${p},\n`).join("")}${indent}}))`;
    edits.push({ start: get.start, end: get.end, text: rotate });
    if (!c.obj) {
      // The destructured name: renamed where getRefreshToken has no other use, else added beside it.
      const pick = f.names.get(c.name).r.picks.find(([, local]) => local === c.name)[2];
      const alone = references(f, c.name).filter((id) => id !== pick.value && id !== pick.local && id !== pick.key).length === 1;
      if (pick.type === "Property" && pick.shorthand && alone) edits.push({ start: pick.start, end: pick.end, text: "rotateRefreshToken" });
      else if (pick.type === "ImportSpecifier" && pick.imported === pick.local && alone) edits.push({ start: pick.start, end: pick.end, text: "rotateRefreshToken" });
      else edits.push({ start: pick.end, end: pick.end, text: ", rotateRefreshToken" });
    }
    // Where the store was, the names of the new pair; what went before it, gone.
    // Runs of neighbouring statements that go are deleted as one range (blank lines between them too).
    const storeIndent = indentAt(f, block[storeAt].start);
    const going = [...new Set([...removed, block[storeAt]])].sort((a, b) => a.start - b.start);
    for (let k = 0; k < going.length;) {
      let run = 1;
      while (k + run < going.length && block.indexOf(going[k + run]) === block.indexOf(going[k + run - 1]) + 1) run++;
      const members = going.slice(k, k + run);
      const holdsStore = members.includes(block[storeAt]);
      const first = statementRange(f, members[0], { withComments: members[0] !== block[storeAt] });
      const last = statementRange(f, members.at(-1));
      const whole = first[0] === lineStart(f, first[0]) && f.src[last[1] - 1] === "\n";
      const text = holdsStore && later.length ? later.map((t) => (whole ? `${storeIndent}${t}\n` : t)).join(whole ? "" : " ") : "";
      let end = last[1];
      // A replacement keeps the blank line that followed.
      if (text && whole && /^[ \t]*\r?\n$/.test(f.src.slice(lineStart(f, end - 1), end)) && end - 1 > members.at(-1).end) end = lineStart(f, end - 1);
      edits.push({ start: first[0], end, text });
      k += run;
    }
    report.add(f, "costs", "refresh-grant", get.start, "the refresh grant is three calls, not one atomic step",
      "Two requests with the same refresh token can both get new tokens, a replay of a spent token goes unseen by the store, and a crash between the calls leaves the old and new tokens both live.",
      "Rotate in one call: rotateRefreshToken(refreshToken, (grant) => ({ accessToken, refreshToken, expiresAt })) mints the new pair from the grant (its userId, clientId and scopes) and returns { userId, clientId, scopes, apiKey, accessToken, refreshToken }, or null (unknown, expired, lost to a concurrent refresh, or a replay, which revokes the grant)." +
        (lifetime?.expiry ? ` The stored tokens get the grant's lifetime (${lifetime.name} of ${lifetime.spec}), not the access token's expires_in: ${WHY_GRANT}.`
          : lifetime && expiry === "null" ? ` The new tokens get no expiry, as before: give them the grant's lifetime as expiresAt (e.g. new Date(Date.now() + 30 * 86400 * 1000) for 30 days)${expiresIn === null ? "" : `, not the access token's expires_in (${expiresIn})`}: ${WHY_GRANT}.${lifetime.reason ? ` (${lifetime.reason}.)` : ""}`
            : expiry === "null" ? " The new tokens get no expiry, as before (the response announces no expires_in): give them one as expiresAt." : ""),
      { edits: mergeDeletions(edits) });
    report.claim(f, block[i].start, block[revokeAt].end);
  }
}

module.exports = { refreshGrant };
