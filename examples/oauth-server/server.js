"use strict";
// An example remote MCP server acting as an OAuth 2.1 authorization server, in the shape
// native-token-storage was written for. Its users log in at an upstream (a stub of
// OpenRouter's key exchange, ./upstream.js); the user's API key is kept with the tokens
// we issue. All OAuth state goes through the package, so any number of instances of this
// server share it and a restart loses nothing: ./tokenStorage.js is the one line
// `module.exports = require("native-token-storage")` (tokens, codes, pending logins,
// the atomic refresh grant), ./clientRegistry.js the one line
// `module.exports = require("native-token-storage/clients")`. Every call is synchronous.
//
// Run:  node examples/oauth-server/server.js
//   PORT           port on 127.0.0.1 (default 0: an ephemeral port, printed at start)
//   UPSTREAM_URL   the upstream's base URL (default: start the stub in this process)
//   TOKEN_STORAGE  memory | db | postgres   TOKEN_DB_PATH, TOKEN_DATABASE_URL (see the package's docs)
// Use from tests: createApp({ upstreamUrl }) or `await start({ port })`, then `await stop(server)`.
const crypto = require("node:crypto");
const express = require("express");
const tokenStorage = require("./tokenStorage");
const clientRegistry = require("./clientRegistry");
const { startUpstream } = require("./upstream");
const { listen, close, urlOf, withParams, mask } = require("./net");

const ACCESS_TOKEN_TTL_S = 3600;
const CODE_TTL_S = 600;
const PENDING_TTL_S = 600;
const UPSTREAM_TIMEOUT_MS = 5000;
const SCOPES_SUPPORTED = ["mcp"];

const randomToken = (prefix) => `${prefix}${crypto.randomBytes(32).toString("base64url")}`;
const s256 = (verifier) => crypto.createHash("sha256").update(verifier).digest("base64url");
/** A request parameter if it is a non-empty string (Express may hand over arrays or objects). */
const str = (value) => (typeof value === "string" && value !== "" ? value : undefined);
const isHttpUrl = (value) => typeof value === "string" && URL.canParse(value) && /^https?:$/.test(new URL(value).protocol);

function log(level, message, fields = {}) {
  console.log(JSON.stringify({ timestamp: new Date().toISOString(), level, message, ...fields }));
}

function oauthError(res, status, error, description) {
  return res.status(status).json({ error, error_description: description });
}

/**
 * The Express app. `store` defaults to the module-level functions of native-token-storage
 * (and its client registry); a `new TokenStorage(...)` has the same methods, the registry's
 * included, and can be passed instead.
 */
function createApp({ upstreamUrl, store = tokenStorage, accessTokenTtl = ACCESS_TOKEN_TTL_S } = {}) {
  if (!upstreamUrl) throw new Error("createApp: upstreamUrl is required");
  const clients = store === tokenStorage ? clientRegistry : store;

  const app = express();
  app.disable("x-powered-by");
  app.use(express.json());
  app.use(express.urlencoded({ extended: false }));
  const baseUrl = (req) => `${req.protocol}://${req.get("host")}`;

  app.get("/.well-known/oauth-authorization-server", (req, res) => {
    const base = baseUrl(req);
    res.json({
      issuer: base,
      authorization_endpoint: `${base}/oauth/authorize`,
      token_endpoint: `${base}/oauth/token`,
      registration_endpoint: `${base}/oauth/register`,
      introspection_endpoint: `${base}/oauth/introspect`,
      response_types_supported: ["code"],
      grant_types_supported: ["authorization_code", "refresh_token"],
      code_challenge_methods_supported: ["S256"],
      token_endpoint_auth_methods_supported: ["none"],
      scopes_supported: SCOPES_SUPPORTED,
    });
  });

  // Dynamic client registration (RFC 7591), public clients only (PKCE instead of a secret).
  app.post("/oauth/register", (req, res) => {
    const { redirect_uris: redirectUris, client_name: clientName } = req.body || {};
    const valid = Array.isArray(redirectUris) && redirectUris.length > 0 &&
      redirectUris.every(isHttpUrl);
    if (!valid) return oauthError(res, 400, "invalid_redirect_uri", "redirect_uris must be a non-empty array of http(s) URLs");
    // Stored with the tokens: the client is known to every instance, also after a restart.
    const { client_secret, ...client } = clients.registerClient({
      client_name: str(clientName),
      redirect_uris: redirectUris,
      grant_types: ["authorization_code", "refresh_token"],
      token_endpoint_auth_method: "none",
      scope: SCOPES_SUPPORTED.join(" "),
    });
    res.status(201).json(client);
  });

  app.get("/oauth/authorize", (req, res) => {
    const q = req.query;
    const client = str(q.client_id) ? clients.getClient(q.client_id) : null;
    if (!client) return oauthError(res, 400, "invalid_client", "unknown client_id");
    const redirectUri = str(q.redirect_uri);
    if (!client.redirect_uris.includes(redirectUri)) {
      return oauthError(res, 400, "invalid_request", "redirect_uri is not registered for this client");
    }
    // From here on errors go back to the client (RFC 6749 §4.1.2.1).
    const fail = (error, description) =>
      res.redirect(302, withParams(redirectUri, { error, error_description: description, state: str(q.state) }));
    if (q.response_type !== "code") return fail("unsupported_response_type", "response_type must be code");
    if (!str(q.state)) return fail("invalid_request", "state is required");
    if (q.code_challenge_method !== "S256") return fail("invalid_request", "code_challenge_method must be S256");
    if (!/^[A-Za-z0-9_-]{43}$/.test(str(q.code_challenge) || "")) {
      return fail("invalid_request", "code_challenge must be a BASE64URL SHA-256 (43 characters)");
    }
    const scopes = str(q.scope) ? q.scope.split(" ").filter(Boolean) : [...SCOPES_SUPPORTED];
    if (!scopes.every((scope) => SCOPES_SUPPORTED.includes(scope))) return fail("invalid_scope", "unknown scope");

    // We are a PKCE client of the upstream too: this verifier proves the upstream code is
    // ours. The callback may reach another instance: the login waits in the store.
    const session = randomToken("");
    const upstreamVerifier = randomToken("");
    store.storePendingAuthorization(session, {
      clientId: client.client_id, redirectUri, state: q.state, scopes,
      codeChallenge: q.code_challenge, upstreamVerifier,
    }, PENDING_TTL_S);
    res.redirect(302, withParams(`${upstreamUrl}/auth`, {
      callback_url: withParams(`${baseUrl(req)}/oauth/callback`, { session }),
      code_challenge: s256(upstreamVerifier),
      code_challenge_method: "S256",
    }));
  });

  // The upstream login sends the user back here with its code; we exchange it for the
  // user's API key and hand the client our own authorization code.
  // (Express 4 does not catch a rejected promise: errors are passed to next() by hand.)
  app.get("/oauth/callback", (req, res, next) => upstreamCallback(req, res).catch(next));
  async function upstreamCallback(req, res) {
    const session = str(req.query.session);
    const auth = session ? store.consumePendingAuthorization(session) : null;
    if (!auth) {
      return oauthError(res, 400, "invalid_request", "unknown or expired authorization session");
    }
    const back = (params) => res.redirect(302, withParams(auth.redirectUri, { ...params, state: auth.state }));
    const upstreamCode = str(req.query.code);
    if (!upstreamCode) return back({ error: "access_denied", error_description: "upstream login gave no code" });

    let exchange;
    try {
      const response = await fetch(`${upstreamUrl}/api/v1/auth/keys`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ code: upstreamCode, code_verifier: auth.upstreamVerifier, code_challenge_method: "S256" }),
        signal: AbortSignal.timeout(UPSTREAM_TIMEOUT_MS),
      });
      if (!response.ok) throw new Error(`upstream answered ${response.status}`);
      exchange = await response.json();
      if (!str(exchange.key)) throw new Error("upstream answered without a key");
    } catch (err) {
      log("warn", "upstream key exchange failed", { error: err.message });
      return back({ error: "server_error", error_description: "key exchange with the upstream failed" });
    }
    const code = randomToken("code_");
    store.storeAuthorizationCode(code, exchange.user_id ?? null, exchange.key, auth.clientId, auth.redirectUri,
      auth.codeChallenge, "S256", auth.scopes, CODE_TTL_S);
    back({ code });
  }

  function issueTokens(res, { apiKey, userId, clientId, scopes }) {
    const accessToken = randomToken("at_");
    const refreshToken = randomToken("rt_");
    store.storeAccessToken(accessToken, refreshToken, apiKey, userId, clientId, scopes,
      new Date(Date.now() + accessTokenTtl * 1000));
    sendTokens(res, { accessToken, refreshToken, scopes });
  }

  function sendTokens(res, { accessToken, refreshToken, scopes }) {
    res.json({
      access_token: accessToken,
      token_type: "Bearer",
      expires_in: accessTokenTtl,
      refresh_token: refreshToken,
      scope: scopes.join(" "),
    });
  }

  function authorizationCodeGrant(body, res) {
    const [code, verifier, redirectUri, clientId] =
      [body.code, body.code_verifier, body.redirect_uri, body.client_id].map(str);
    if (!code || !verifier || !redirectUri || !clientId) {
      return oauthError(res, 400, "invalid_request", "code, code_verifier, redirect_uri and client_id are required");
    }
    // Single use and PKCE S256 are checked by the store; any attempt uses the code up.
    const codeData = store.consumeAuthorizationCode(code, verifier);
    if (!codeData) {
      return oauthError(res, 400, "invalid_grant", "the code is unknown, expired or used, or the code_verifier does not match");
    }
    if (codeData.redirectUri !== redirectUri || codeData.clientId !== clientId) {
      return oauthError(res, 400, "invalid_grant", "redirect_uri or client_id differs from the authorization request");
    }
    issueTokens(res, codeData);
  }

  function refreshTokenGrant(body, res) {
    const [refreshToken, clientId] = [body.refresh_token, body.client_id].map(str);
    if (!refreshToken || !clientId) {
      return oauthError(res, 400, "invalid_request", "refresh_token and client_id are required");
    }
    // Rotation (OAuth 2.1 §4.3.1) in one atomic step: of concurrent refreshes with one
    // token, on any instance, one gets the new pair; a rotated-away token presented again
    // revokes its grant (which is why the token goes to rotateRefreshToken first, not
    // through a getRefreshToken check that would refuse it unseen).
    const rotated = store.rotateRefreshToken(refreshToken, randomToken("at_"), randomToken("rt_"),
      new Date(Date.now() + accessTokenTtl * 1000));
    if (!rotated || rotated.clientId !== clientId) {
      // Another client's token: the pair just made is given to no one.
      if (rotated) store.revokeRefreshToken(rotated.refreshToken);
      return oauthError(res, 400, "invalid_grant", "the refresh token is unknown, revoked or expired");
    }
    sendTokens(res, rotated);
  }

  app.post("/oauth/token", (req, res) => {
    res.set("Cache-Control", "no-store");
    const body = req.body || {};
    if (body.grant_type === "authorization_code") return authorizationCodeGrant(body, res);
    if (body.grant_type === "refresh_token") return refreshTokenGrant(body, res);
    oauthError(res, 400, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token");
  });

  // Token introspection (RFC 7662). A production server would also authenticate the caller.
  app.post("/oauth/introspect", (req, res) => {
    const token = str((req.body || {}).token);
    const tokenData = token ? store.getAccessToken(token) : null;
    if (!tokenData) return res.json({ active: false });
    res.json({
      active: true,
      token_type: "Bearer",
      client_id: tokenData.clientId,
      sub: tokenData.userId ?? undefined,
      scope: tokenData.scopes.join(" "),
      exp: tokenData.expiresAt ? Math.floor(tokenData.expiresAt.getTime() / 1000) : null,
      iat: Math.floor(tokenData.createdAt.getTime() / 1000),
    });
  });

  // Bearer authentication. getAccessToken is synchronous: `null` here really means "refused"
  // (with an async store, a Promise would be truthy and every token would pass).
  function requireBearer(req, res, next) {
    const match = /^Bearer (\S+)$/i.exec(req.get("authorization") || "");
    const tokenData = match ? store.getAccessToken(match[1]) : null;
    if (!tokenData) {
      res.set("WWW-Authenticate", 'Bearer error="invalid_token"');
      return oauthError(res, 401, "invalid_token", "missing, unknown or expired bearer token");
    }
    req.auth = tokenData;
    next();
  }

  app.get("/oauth/status", requireBearer, (req, res) => {
    const { userId, clientId, scopes, expiresAt } = req.auth;
    res.json({ authenticated: true, user_id: userId, client_id: clientId, scopes, expires_at: expiresAt });
  });

  // A minimal MCP endpoint (JSON-RPC 2.0 over POST) with one tool.
  app.post("/mcp", requireBearer, (req, res) => {
    const { id = null, method, params } = req.body || {};
    const result = (value) => res.json({ jsonrpc: "2.0", id, result: value });
    const error = (code, message) => res.json({ jsonrpc: "2.0", id, error: { code, message } });
    switch (method) {
      case "initialize":
        return result({
          protocolVersion: "2025-06-18",
          capabilities: { tools: {} },
          serverInfo: { name: "example-oauth-mcp-server", version: "0.1.0" },
        });
      case "tools/list":
        return result({
          tools: [{
            name: "whoami",
            description: "Tells who the bearer token belongs to",
            inputSchema: { type: "object", properties: {} },
          }],
        });
      case "tools/call":
        if (params?.name !== "whoami") return error(-32602, "unknown tool");
        return result({
          content: [{
            type: "text",
            text: `user ${req.auth.userId}, client ${mask(req.auth.clientId)}, API key ${mask(req.auth.apiKey)}`,
          }],
        });
      default:
        return error(-32601, "method not found");
    }
  });

  // Malformed JSON and anything thrown by a handler (including a store's TypeError).
  app.use((err, req, res, next) => {
    if (res.headersSent) return next(err);
    if (err.type === "entity.parse.failed") return oauthError(res, 400, "invalid_request", "malformed request body");
    log("error", "request failed", { path: req.path, error: err.message });
    oauthError(res, 500, "server_error", "internal error");
  });

  return app;
}

const ownUpstreams = new WeakMap(); // server → the stub upstream start() launched for it

/** Starts the server on 127.0.0.1 and resolves the listening http.Server. */
async function start({ port = Number(process.env.PORT) || 0, upstreamUrl = process.env.UPSTREAM_URL, store } = {}) {
  let upstream = null;
  if (!upstreamUrl) {
    upstream = await startUpstream();
    upstreamUrl = urlOf(upstream);
  }
  try {
    const server = await listen(createApp({ upstreamUrl, store }), { port });
    if (upstream) ownUpstreams.set(server, upstream);
    return server;
  } catch (err) {
    if (upstream) await close(upstream);
    throw err;
  }
}

/** Closes a server from start() (and the stub upstream it started), leaving no handle open. */
async function stop(server) {
  await close(server);
  const upstream = ownUpstreams.get(server);
  if (upstream) await close(upstream);
}

async function main() {
  // The store opens at first use; open it now, so a bad TOKEN_STORAGE stops the start
  // and the store's "which store, which file" line comes first.
  const stats = tokenStorage.getStats();
  const server = await start();
  log("info", "listening", { url: urlOf(server), tokens: stats.totalTokens });
  const shutdown = async () => {
    await stop(server);
    tokenStorage.closeDB();
    process.exit(0);
  };
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
}

if (require.main === module) {
  main().catch((err) => {
    log("error", "could not start", { error: err.message });
    process.exit(1);
  });
}

module.exports = { createApp, start, stop };
