// native-token-storage/mcp for ES modules: lib/mcp.js given the SDK's ES module build, so the
// errors it throws are those the SDK's ES module handlers recognise with `instanceof` (a
// CommonJS copy of the SDK's classes would not be). See mcp.js.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { createMcp, missingSdk } = require("./lib/mcp.js");

let errors, router;
try {
  [errors, router] = await Promise.all([
    import("@modelcontextprotocol/sdk/server/auth/errors.js"),
    import("@modelcontextprotocol/sdk/server/auth/router.js"),
  ]);
} catch (err) {
  if (err?.code === "ERR_MODULE_NOT_FOUND" && /@modelcontextprotocol\/sdk/.test(err.message)) throw missingSdk(err);
  throw err;
}

export const { TokenStorageOAuthProvider, TokenStorageClientsStore, clientCredentials, mcpAuthRouter } = createMcp({ errors, ...router });
