"use strict";
// An MCP server on the official TypeScript SDK that is its own OAuth 2.1 authorization server,
// with its OAuth state in native-token-storage: the SDK's mcpAuthRouter (discovery, dynamic
// registration, /authorize, /token, /revoke), requireBearerAuth and StreamableHTTPServerTransport,
// on TokenStorageOAuthProvider. The login is a one-field form (a user name); a real server shows
// its own (or sends the user to an upstream login) and keeps the user's upstream API key with
// the grant the same way (`extra`).
//
//   TOKEN_STORAGE=sqlite node examples/mcp-sdk-server/server.js     # PORT (default 3000), BASE_URL
//
// Tokens, clients and logins in progress survive a restart and are shared by every instance
// on one store (TOKEN_STORAGE=postgres with TOKEN_DATABASE_URL for several hosts).

const express = require("express");
const { McpServer } = require("@modelcontextprotocol/sdk/server/mcp.js");
const { StreamableHTTPServerTransport } = require("@modelcontextprotocol/sdk/server/streamableHttp.js");
const { requireBearerAuth } = require("@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js");
const { getOAuthProtectedResourceMetadataUrl } = require("@modelcontextprotocol/sdk/server/auth/router.js");
const { TokenStorageOAuthProvider, mcpAuthRouter } = require("native-token-storage/mcp");

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The Express app of the server at `baseUrl`; `store`: a TokenStorage (default: the store of TOKEN_STORAGE). */
function createApp({ baseUrl, store } = {}) {
  const mcpUrl = new URL("/mcp", baseUrl);
  const provider = new TokenStorageOAuthProvider({
    store,
    resources: [mcpUrl],
    // The login: keep the request (any instance may get the form's answer), show the form.
    async authorize(client, params, res, p) {
      const id = await p.beginAuthorization(client, params);
      res.type("html").send(`<form method="post" action="/login">
        <p>${escape(client.client_name ?? client.client_id)} asks for ${escape(params.scopes?.join(" ") || "access")}.</p>
        <input type="hidden" name="login" value="${escape(id)}">
        <label>User <input name="user" required></label>
        <button name="answer" value="allow">Allow</button> <button name="answer" value="deny" formnovalidate>Deny</button>
      </form>`);
    },
  });

  const app = express();
  app.post("/login", express.urlencoded({ extended: false }), async (req, res, next) => {
    try {
      const { login, user, answer } = req.body;
      const url =
        answer === "allow"
          ? await provider.completeAuthorization(String(login), { userId: String(user), extra: { apiKey: `upstream-key-of-${user}` } }, res)
          : await provider.denyAuthorization(String(login), res);
      if (!url) res.status(400).send("This login has expired; start again from your MCP client.");
    } catch (err) {
      next(err);
    }
  });

  app.use(mcpAuthRouter({ provider, issuerUrl: new URL(baseUrl), resourceServerUrl: mcpUrl, scopesSupported: ["mcp:tools"] }));

  const bearer = requireBearerAuth({ verifier: provider, expectedResource: mcpUrl, resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(mcpUrl) });
  app.post("/mcp", bearer, express.json(), async (req, res) => {
    const server = new McpServer({ name: "native-token-storage-example", version: "1.0.0" });
    server.registerTool("whoami", { description: "Who the caller is, from the access token" }, async ({ authInfo }) => ({
      content: [{ type: "text", text: `user ${authInfo.extra.userId}, client ${authInfo.clientId}, scopes ${authInfo.scopes.join(" ")}` }],
    }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on("close", () => {
      transport.close();
      server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  return app;
}

if (require.main === module) {
  const port = Number(process.env.PORT ?? 3000);
  const baseUrl = process.env.BASE_URL ?? `http://localhost:${port}`;
  const server = createApp({ baseUrl }).listen(port, () => console.log(`MCP server at ${baseUrl}/mcp`));
  const stop = () => server.close(() => require("native-token-storage").closeDB());
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

module.exports = { createApp };
