"use strict";
// native-token-storage/mcp: a persistent OAuthServerProvider for the official MCP TypeScript
// SDK (@modelcontextprotocol/sdk, an optional peer dependency), on the Promise API of a store.
// This is the CommonJS entry: it gives lib/mcp.js the SDK's CommonJS build, so the errors it
// throws are those the SDK's CommonJS handlers recognise (mcp.mjs does the same for ES modules).
// The rest of the package never loads the SDK.

const { createMcp, missingSdk } = require("./lib/mcp");

function sdk() {
  try {
    return {
      errors: require("@modelcontextprotocol/sdk/server/auth/errors.js"),
      ...require("@modelcontextprotocol/sdk/server/auth/router.js"),
    };
  } catch (err) {
    if (err?.code === "MODULE_NOT_FOUND" && /@modelcontextprotocol\/sdk/.test(err.message)) throw missingSdk(err);
    throw err;
  }
}

const { TokenStorageOAuthProvider, TokenStorageClientsStore, clientCredentials, mcpAuthRouter } = createMcp(sdk());

module.exports = { TokenStorageOAuthProvider, TokenStorageClientsStore, clientCredentials, mcpAuthRouter };
