"use strict";
// What several rules write: the package bound in a file (require or import) and a module
// replaced by the package, and the sentence on why a Promise where a value was breaks.

const { PACKAGE } = require("../names");

/** Whether the file is an ES module (its edits then import rather than require). */
const isModule = (f) => f.sourceType === "module";

/** The statement that binds `names` from `spec`. */
function binding(f, names, spec) {
  if (!isModule(f)) return `const { ${names.join(", ")} } = require("${spec}");`;
  const local = spec === PACKAGE ? "nativeTokenStorage" : "nativeTokenStorageClients";
  return `import ${local} from "${spec}";\nconst { ${names.join(", ")} } = ${local};`;
}

const TRUTHY = "A Promise is truthy, so `if (!getAccessToken(token))` lets every bearer token through.";

/** A module's whole content, when it becomes the package's `spec`. */
const reexport = (f, spec) => (isModule(f) ? `export * from "${spec}";\nexport { default } from "${spec}";\n` : `module.exports = require("${spec}");\n`);
/** The file's first `new Map(…)`, where a Map-based module's findings point. */
const firstMap = (f) => f.nodes.find((n) => n.type === "NewExpression" && n.callee.type === "Identifier" && n.callee.name === "Map");

module.exports = { isModule, binding, TRUTHY, reexport, firstMap };
