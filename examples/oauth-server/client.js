"use strict";
// What an MCP client does against the example server, one function a step, over real HTTP.
// Used by scripts/demo.js and the tests. Every request has a timeout; redirects are
// followed by hand, as a client's browser and local callback listener would.
const crypto = require("node:crypto");

const REQUEST_TIMEOUT_MS = 5000;
// Where the client would listen for the redirect; never contacted, only compared.
const REDIRECT_URI = "http://127.0.0.1:33418/callback";

/** One HTTP request; resolves { status, headers, body } (body parsed when JSON). */
async function request(url, { method = "GET", token, json, form } = {}) {
  const headers = {};
  let body;
  if (token) headers.authorization = `Bearer ${token}`;
  if (json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = new URLSearchParams(form); // fetch sets application/x-www-form-urlencoded
  }
  const response = await fetch(url, {
    method, headers, body, redirect: "manual", signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await response.text();
  const isJson = (response.headers.get("content-type") || "").includes("application/json");
  return { status: response.status, headers: response.headers, body: isJson ? JSON.parse(text) : text };
}

/** A PKCE pair (RFC 7636): a random verifier and its S256 challenge. */
function pkce() {
  const verifier = crypto.randomBytes(32).toString("base64url");
  return { verifier, challenge: crypto.createHash("sha256").update(verifier).digest("base64url") };
}

/** Follows one redirect: returns the Location of a 302 answer, or throws naming the step. */
async function redirectFrom(url, step) {
  const response = await request(url);
  const location = response.headers.get("location");
  if (response.status !== 302 || !location) {
    throw new Error(`${step}: expected a redirect, got ${response.status} ${JSON.stringify(response.body)}`);
  }
  return location;
}

/** Dynamic client registration; resolves the client_id. */
async function register(base, { redirectUri = REDIRECT_URI, name = "example MCP client" } = {}) {
  const response = await request(`${base}/oauth/register`, {
    method: "POST", json: { client_name: name, redirect_uris: [redirectUri] },
  });
  if (response.status !== 201) throw new Error(`register: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body.client_id;
}

/**
 * The browser part of the flow: /oauth/authorize → upstream login → our callback → the
 * client's redirect_uri. Resolves { code, verifier, hops } where hops lists the URLs visited.
 */
async function authorize(base, clientId, { redirectUri = REDIRECT_URI, scope = "mcp" } = {}) {
  const { verifier, challenge } = pkce();
  const state = crypto.randomBytes(16).toString("base64url");
  const authorizeUrl = new URL(`${base}/oauth/authorize`);
  authorizeUrl.search = new URLSearchParams({
    response_type: "code", client_id: clientId, redirect_uri: redirectUri, scope, state,
    code_challenge: challenge, code_challenge_method: "S256",
  });
  const upstreamLogin = await redirectFrom(authorizeUrl, "authorize");
  const callback = await redirectFrom(upstreamLogin, "upstream login");
  const final = new URL(await redirectFrom(callback, "callback"));
  if (`${final.origin}${final.pathname}` !== redirectUri) throw new Error(`callback: redirected to ${final.origin}${final.pathname}`);
  const params = final.searchParams;
  if (params.get("error")) throw new Error(`callback: ${params.get("error")}: ${params.get("error_description")}`);
  if (params.get("state") !== state) throw new Error("callback: state does not match");
  return { code: params.get("code"), verifier, hops: [upstreamLogin, callback, final.toString()] };
}

/** grant_type=authorization_code; resolves the raw response. */
function exchangeCode(base, { clientId, code, verifier, redirectUri = REDIRECT_URI }) {
  return request(`${base}/oauth/token`, {
    method: "POST",
    form: { grant_type: "authorization_code", code, code_verifier: verifier, redirect_uri: redirectUri, client_id: clientId },
  });
}

/** grant_type=refresh_token; resolves the raw response. */
function refresh(base, { clientId, refreshToken }) {
  return request(`${base}/oauth/token`, {
    method: "POST", form: { grant_type: "refresh_token", refresh_token: refreshToken, client_id: clientId },
  });
}

function introspect(base, token) {
  return request(`${base}/oauth/introspect`, { method: "POST", form: { token } });
}

function status(base, token) {
  return request(`${base}/oauth/status`, { token });
}

/** A JSON-RPC call to the protected MCP endpoint. */
function callMcp(base, token, method = "tools/list", params = {}) {
  return request(`${base}/mcp`, { method: "POST", token, json: { jsonrpc: "2.0", id: 1, method, params } });
}

/** Register, authorize and exchange the code: resolves { clientId, tokens } or throws. */
async function login(base) {
  const clientId = await register(base);
  const { code, verifier } = await authorize(base, clientId);
  const response = await exchangeCode(base, { clientId, code, verifier });
  if (response.status !== 200) throw new Error(`token: ${response.status} ${JSON.stringify(response.body)}`);
  return { clientId, tokens: response.body };
}

module.exports = {
  REDIRECT_URI, request, pkce, register, authorize, exchangeCode, refresh, introspect, status, callMcp, login,
};
