"use strict";
// The MCP SDK end to end, for __test__/mcp.test.js: an Express server built the way an author
// builds one (the SDK's mcpAuthRouter, requireBearerAuth and StreamableHTTPServerTransport on
// TokenStorageOAuthProvider), and a client driving the SDK's own client-side OAuth helpers.
const http = require("node:http");
const { createRequire } = require("node:module");
const { PKG } = require("./setup");

const sdkRequire = createRequire(require.resolve("@modelcontextprotocol/sdk/server/mcp.js"));
/** The Express the SDK itself depends on (5.x), as its users install it. */
const express = sdkRequire("express");
const { McpServer } = require("@modelcontextprotocol/sdk/server/mcp.js");
const { StreamableHTTPServerTransport } = require("@modelcontextprotocol/sdk/server/streamableHttp.js");
const { requireBearerAuth } = require("@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js");
const { getOAuthProtectedResourceMetadataUrl } = require("@modelcontextprotocol/sdk/server/auth/router.js");
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");
const clientAuth = require("@modelcontextprotocol/sdk/client/auth.js");
const { TokenStorageOAuthProvider, mcpAuthRouter } = require(`${PKG}/mcp.js`);

const NO_RATE_LIMIT = {
  authorizationOptions: { rateLimit: false },
  clientRegistrationOptions: { rateLimit: false },
  tokenOptions: { rateLimit: false },
  revocationOptions: { rateLimit: false },
};

/**
 * Starts a server on `store` (a TokenStorage) at 127.0.0.1: MCP endpoints /mcp (the resource
 * the tokens are for) and /other (another resource on the same authorization server), the
 * login at /login (user "alice", an upstream API key as the grant's extra).
 */
async function startServer(store, { resources, baseUrl, providerOptions, before } = {}) {
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const own = `http://127.0.0.1:${server.address().port}`;
  const base = baseUrl ?? own;
  const app = express();
  const provider = new TokenStorageOAuthProvider({
    store,
    resources: resources?.(base),
    ...providerOptions,
    async authorize(client, params, res, p) {
      // The login page would be shown here; it posts back to /login, maybe on another instance.
      const id = await p.beginAuthorization(client, params);
      res.redirect(`/login?id=${encodeURIComponent(id)}`);
    },
  });
  app.get("/login", async (req, res) => {
    const url = await provider.completeAuthorization(String(req.query.id), { userId: "alice", extra: { apiKey: "sk-upstream-alice" } }, res);
    if (!url) res.status(400).send("This login has expired");
  });
  if (before) app.use(before);
  app.use(mcpAuthRouter({ provider, issuerUrl: new URL(base), resourceServerUrl: new URL(`${base}/mcp`), scopesSupported: ["mcp:tools"], ...NO_RATE_LIMIT }));
  for (const path of ["/mcp", "/other"]) {
    const resource = new URL(`${base}${path}`);
    const bearer = requireBearerAuth({ verifier: provider, expectedResource: resource, resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(resource) });
    app.post(path, bearer, express.json(), async (req, res) => {
      const mcp = new McpServer({ name: "test", version: "1.0.0" });
      mcp.registerTool("whoami", { description: "the caller's AuthInfo" }, async (extra) => ({
        content: [{ type: "text", text: JSON.stringify(extra.authInfo) }],
      }));
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      res.on("close", () => {
        transport.close();
        mcp.close();
      });
      await mcp.connect(transport);
      await transport.handleRequest(req, res, req.body);
    });
  }
  server.on("request", app);
  return {
    base,
    own,
    provider,
    close: () => new Promise((resolve) => server.close(resolve)).then(() => server.closeAllConnections?.()),
  };
}

/** A server (as startServer) on the store `open()` opens, both closed after the test `t`; its `store` too. */
async function serve(t, open, options) {
  const store = open();
  const server = await startServer(store, options);
  t.after(async () => {
    await server.close();
    store.close();
  });
  return { ...server, store };
}

/**
 * A round-robin reverse proxy at 127.0.0.1: each request to the next of `backends()` (own
 * URLs, read at each request, so a restarted instance's new port is used), as a load
 * balancer would; `served` counts the requests each backend got.
 */
async function startProxy(backends) {
  let next = 0;
  const served = new Map();
  const proxy = http.createServer((req, res) => {
    const list = backends();
    const target = new URL(list[next++ % list.length]);
    served.set(target.href, (served.get(target.href) ?? 0) + 1);
    const upstream = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (reply) => {
      res.writeHead(reply.statusCode, reply.headers);
      reply.pipe(res);
    });
    upstream.on("error", () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  return {
    base: `http://127.0.0.1:${proxy.address().port}`,
    served,
    close: () => new Promise((resolve) => proxy.close(resolve)).then(() => proxy.closeAllConnections?.()),
  };
}

/** The SDK's OAuthClientProvider of a command-line client: keeps what it is given, and "opens" the authorization URL by remembering it. */
class MemoryClientProvider {
  constructor({ authMethod = "client_secret_post" } = {}) {
    this.redirectUrl = "http://127.0.0.1:1/callback";
    this.clientMetadata = {
      client_name: "e2e",
      redirect_uris: [this.redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: authMethod,
    };
    this.saved = { client: undefined, tokens: undefined, verifier: undefined, discovery: undefined };
    this.authorizationUrl = null;
    this.lastState = null;
  }
  state() {
    this.lastState = require("node:crypto").randomBytes(16).toString("hex");
    return this.lastState;
  }
  clientInformation() {
    return this.saved.client;
  }
  saveClientInformation(info) {
    this.saved.client = info;
  }
  tokens() {
    return this.saved.tokens;
  }
  saveTokens(tokens) {
    this.saved.tokens = tokens;
  }
  redirectToAuthorization(url) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(v) {
    this.saved.verifier = v;
  }
  codeVerifier() {
    return this.saved.verifier;
  }
  saveDiscoveryState(state) {
    this.saved.discovery = state;
  }
  discoveryState() {
    return this.saved.discovery;
  }
}

/** Follows redirects by hand (as a browser would) until one leaves `base`; returns that URL. */
async function followToClient(url, base) {
  let next = new URL(url);
  for (let hops = 0; hops < 5; hops++) {
    if (next.origin !== base) return next;
    const res = await fetch(next, { redirect: "manual" });
    const location = res.headers.get("location");
    if (res.status !== 302 || !location) throw new Error(`expected a redirect from ${next.pathname}, got ${res.status}: ${await res.text()}`);
    next = new URL(location, next);
  }
  throw new Error("too many redirects");
}

/** Connects an MCP client on `provider`; resolves with the connected Client. */
async function connect(serverUrl, provider) {
  const client = new Client({ name: "e2e", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider }));
  return client;
}

/**
 * The whole authorization with the SDK's client: a connect that gets 401 (discovery, dynamic
 * registration, PKCE authorization URL), the browser's trip through /authorize and /login,
 * finishAuth (the code exchange). Returns the redirect the client received.
 */
async function authorize(base, provider, serverPath = "/mcp") {
  const transport = new StreamableHTTPClientTransport(new URL(`${base}${serverPath}`), { authProvider: provider });
  const client = new Client({ name: "e2e", version: "1.0.0" });
  await client.connect(transport).then(
    () => {
      throw new Error("connected without authorization");
    },
    (err) => {
      if (!(err instanceof clientAuth.UnauthorizedError) && err.constructor.name !== "UnauthorizedError") throw err;
    },
  );
  const back = await followToClient(provider.authorizationUrl, base);
  const code = back.searchParams.get("code");
  if (code) await transport.finishAuth(code);
  return back;
}

/** The SDK client's refresh of `provider`'s tokens (refreshAuthorization, with the discovered metadata). */
function refresh(provider, refreshToken = provider.saved.tokens.refresh_token, resource) {
  const d = provider.saved.discovery;
  return clientAuth.refreshAuthorization(d.authorizationServerUrl, {
    metadata: d.authorizationServerMetadata,
    clientInformation: provider.saved.client,
    refreshToken,
    resource: resource ?? new URL(d.resourceMetadata.resource),
  });
}

/** POST /revoke (RFC 7009) as the client, client_secret_post. The SDK's client has no helper for it. */
function revoke(base, provider, token) {
  const body = new URLSearchParams({ token, client_id: provider.saved.client.client_id });
  if (provider.saved.client.client_secret) body.set("client_secret", provider.saved.client.client_secret);
  return fetch(`${base}/revoke`, { method: "POST", body });
}

/** A tool call on `path` with `accessToken`: the AuthInfo the tool saw, or the HTTP status of a refusal. */
async function whoami(base, accessToken, path = "/mcp") {
  const res = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${accessToken}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "whoami", arguments: {} } }),
  });
  if (res.status !== 200) return { status: res.status, body: await res.text() };
  const reply = await res.json();
  return { status: 200, authInfo: JSON.parse(reply.result.content[0].text) };
}

module.exports = { startServer, startProxy, serve, MemoryClientProvider, authorize, connect, refresh, revoke, whoami, clientAuth, express, NO_RATE_LIMIT };
