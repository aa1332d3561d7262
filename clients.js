"use strict";
// native-token-storage/clients: a persistent drop-in for a server's utils/clientRegistry.js
// (RFC 7591 dynamic client registration kept in a Map). Same synchronous functions and
// shapes, stored with the tokens (the default store: TOKEN_STORAGE, TOKEN_DB_PATH,
// TOKEN_DATABASE_URL), so every instance knows every client, also after a restart.
// Secrets are stored as SHA-256 digests: getClient returns the registration without
// `client_secret`; check a secret with verifyClient. The functions are the "clients"
// operations of lib/operations.js.
//
// As the old module did when it was loaded: MCP_CLIENT_ID and MCP_CLIENT_SECRET (both set)
// register that client (`http://localhost:*` and `https://*` as its redirect URIs, scope
// "mcp:read mcp:write"), here at the first call, since the store opens at first use.

const { clientStore } = require("./lib/default-store");
const { moduleFunctions } = require("./lib/operations");

module.exports = moduleFunctions("clients", clientStore);

// For `import { … } from "native-token-storage/clients"` in ES modules: Node finds a
// CommonJS module's names by reading its source, so they are written out here, never run
// (__test__/operations-table.test.js checks the list against the table).
0 && (module.exports = { registerClient, getClient, verifyClient, preRegisterClient, getAllClients });
