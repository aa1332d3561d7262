"use strict";
// native-token-storage/mcp: an OAuthServerProvider for the official MCP TypeScript SDK
// (`@modelcontextprotocol/sdk`), on the Promise API of a store: clients in the client
// registry, codes, tokens and logins in the store, so every instance shares them and they
// survive restarts. Everything but the login itself (see docs/mcp.md).
//
// The SDK is passed in (`createMcp(sdk)`), never required here: mcp.js gives the CommonJS
// build of the SDK, mcp.mjs its ES module build, so the errors thrown here are the classes
// the SDK's handlers test with `instanceof` in either world.
//
// Per-grant data (the RFC 8707 resource and the author's `extra`) is kept in the store's
// grant fields of codes and tokens (`options` of storeAuthorizationCode / storeAccessToken),
// which rotation carries to the new access token.

const crypto = require("node:crypto");
const querystring = require("node:querystring");
const { AsyncLocalStorage } = require("node:async_hooks");

/** At most this many characters of the author's `extra` as JSON (the store's bound). */
const MAX_EXTRA_LENGTH = 64 * 1024;
/**
 * The `apiKey` of the codes and tokens this provider mints: they have none (the store's
 * field is required); their data is in the grant's `extra`.
 */
const NO_API_KEY = "-";
/** At most this many bytes of a token or revocation request body read by `clientCredentials`. */
const MAX_FORM_BYTES = 100 * 1024;

const random = () => crypto.randomBytes(32).toString("base64url");

/** How the codes and tokens this provider mints begin. */
const MINTED = "mcp_";
const mint = () => `${MINTED}${random()}`;
const minted = (value) => typeof value === "string" && value.startsWith(MINTED);

/** The author's `extra` of completeAuthorization, checked: a plain object, or null. */
function checkedExtra(extra) {
  if (extra === undefined || extra === null) return null;
  if (typeof extra !== "object" || Array.isArray(extra)) {
    throw new TypeError("completeAuthorization: extra must be a plain object (readable as AuthInfo.extra)");
  }
  if (JSON.stringify(extra).length > MAX_EXTRA_LENGTH) {
    throw new RangeError(`completeAuthorization: extra must be at most ${MAX_EXTRA_LENGTH} characters as JSON`);
  }
  return extra;
}

/**
 * A grant's `extra` as AuthInfo.extra gives it (before `userId`): the stored one; a grant
 * without one (stored by other code on the same store, an older login) carries its plain
 * API key, read as `{ apiKey }`, never as a resource or anything else.
 */
function grantExtra(record) {
  if (record.extra !== undefined) return record.extra;
  return record.apiKey === NO_API_KEY ? {} : { apiKey: record.apiKey };
}

/** The store's grant options of a resource and an extra (each null: none). */
const grantOptions = (resource, extra) => ({ resource: resource ?? null, extra: extra ?? null });

/** A resource as RFC 8707 compares it: the URL without its fragment, one trailing slash aside. */
function resourceKey(resource) {
  if (resource === undefined || resource === null) return null;
  const url = new URL(String(resource));
  url.hash = "";
  return url.href.replace(/\/$/, "");
}

/** The Promise API of `store`: a TokenStorage, its `promises`, or the /promises module (the default). */
function promisesOf(store) {
  if (store === undefined || store === null) return require("../promises");
  if (store.promises && typeof store.promises.getAccessToken === "function") return store.promises;
  if (typeof store.getAccessToken === "function" && typeof store.registerClient === "function") return store;
  throw new TypeError("store must be a TokenStorage, its `promises`, or native-token-storage/promises");
}

function createMcp(sdk) {
  const E = sdk.errors;
  /** The client credentials of the token or revocation request being handled (see clientCredentials). */
  const presented = new AsyncLocalStorage();

  /**
   * OAuthRegisteredClientsStore on the client registry. Secrets are kept as digests, so the
   * SDK's own secret check (a string comparison in its token and revocation handlers) sees
   * the secret the request presented when it verified, and a value matching nothing else.
   */
  class TokenStorageClientsStore {
    constructor(options = {}) {
      this.promises = promisesOf(options.store);
    }

    async getClient(clientId) {
      if (typeof clientId !== "string" || clientId === "") return undefined;
      const registration = await this.promises.getClient(clientId);
      if (!registration) return undefined;
      const client = { ...registration };
      if (client.token_endpoint_auth_method === "none") return client;
      const request = presented.getStore();
      const secret = request?.clientId === clientId ? request.clientSecret : undefined;
      const verified = typeof secret === "string" && secret !== "" && (await this.promises.verifyClient(clientId, secret));
      // Not verified: a value made for this answer alone (never one that a leaked getClient
      // answer, a log line of the client, could replay as the secret).
      client.client_secret = verified ? secret : `unverified:${random()}`;
      return client;
    }

    async registerClient(client) {
      const { client_id, client_secret, client_id_issued_at, ...metadata } = client;
      const registered = await this.promises.registerClient(metadata);
      if (registered.token_endpoint_auth_method === "none") {
        const { client_secret: unused, ...pub } = registered;
        return pub;
      }
      return { ...registered, client_secret_expires_at: registered.client_secret_expires_at ?? 0 };
    }
  }

  /**
   * Connect middleware: for the POSTs to `paths` (the token and revocation endpoints), reads
   * the form body (unless a parser did) and the client's credentials (body, or HTTP Basic),
   * and runs the rest of the request with them, for TokenStorageClientsStore.getClient.
   */
  function clientCredentials({ paths = ["/token", "/revoke"] } = {}) {
    const wanted = new Set(paths);
    return function tokenStorageClientCredentials(req, res, next) {
      const path = (req.originalUrl ?? req.url ?? "").split("?")[0];
      if (req.method !== "POST" || !wanted.has(path)) return next();
      const run = () => {
        const body = req.body && typeof req.body === "object" ? req.body : (req.body = {});
        const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? "");
        if (basic) {
          const text = Buffer.from(basic[1], "base64").toString("utf8");
          const colon = text.indexOf(":");
          if (colon > 0) {
            const decode = (s) => {
              try {
                return decodeURIComponent(s.replace(/\+/g, " "));
              } catch {
                return s;
              }
            };
            body.client_id ??= decode(text.slice(0, colon));
            body.client_secret ??= decode(text.slice(colon + 1));
          }
        }
        const clientId = typeof body.client_id === "string" ? body.client_id : null;
        const clientSecret = typeof body.client_secret === "string" ? body.client_secret : null;
        presented.run({ clientId, clientSecret }, next);
      };
      // Read by a parser already (req.complete only says the body arrived, not that anyone read it).
      const parsed = req._body || req.readableEnded;
      const form = /^application\/x-www-form-urlencoded\b/i.test(req.headers["content-type"] ?? "");
      if (parsed || !form) return run();
      const chunks = [];
      let size = 0;
      let failed = false;
      req.on("data", (chunk) => {
        size += chunk.length;
        if (size > MAX_FORM_BYTES && !failed) {
          failed = true;
          // Answered at once; the rest is read and dropped (a reset could lose the answer), then the connection closes.
          res.writeHead(413, { "Content-Type": "application/json", Connection: "close" });
          res.end(JSON.stringify({ error: "invalid_request", error_description: "request body too large" }));
        } else if (!failed) chunks.push(chunk);
      });
      req.on("error", (err) => {
        if (!failed) {
          failed = true;
          next(err);
        }
      });
      req.on("end", () => {
        if (failed) return;
        req.body = { ...querystring.parse(Buffer.concat(chunks).toString("utf8")) };
        req._body = true;
        run();
      });
    };
  }

  /** The SDK's mcpAuthRouter, with clientCredentials in front of its token and revocation endpoints. */
  function mcpAuthRouter(options) {
    const router = sdk.mcpAuthRouter(options);
    // The scopes a client may be granted: the provider's own list, else the router's.
    if (options.provider instanceof TokenStorageOAuthProvider && options.provider.scopes === null && Array.isArray(options.scopesSupported)) {
      options.provider.scopes = new Set(options.scopesSupported);
    }
    const metadata = sdk.createOAuthMetadata(options);
    const paths = [metadata.token_endpoint, metadata.revocation_endpoint].filter(Boolean).map((u) => new URL(u).pathname);
    const credentials = clientCredentials({ paths });
    return function tokenStorageAuthRouter(req, res, next) {
      credentials(req, res, (err) => (err ? next(err) : router(req, res, next)));
    };
  }

  /**
   * OAuthServerProvider on a store. The author gives `authorize(client, params, res, provider)`,
   * which shows a login and ends in `provider.completeAuthorization(...)` (or
   * `denyAuthorization`); everything else is here.
   */
  class TokenStorageOAuthProvider {
    constructor(options = {}) {
      if (typeof options.authorize !== "function") {
        throw new TypeError("TokenStorageOAuthProvider: options.authorize(client, params, res, provider) is required: it shows the login");
      }
      this.promises = promisesOf(options.store);
      this._clientsStore = options.clientsStore ?? new TokenStorageClientsStore({ store: this.promises });
      this._authorize = options.authorize;
      this.accessTokenLifetime = seconds("accessTokenLifetime", options.accessTokenLifetime, 3600);
      // A refresh token lives as long as its access token's row in the store (the store's
      // contract): the row is stored for the refresh token's lifetime, and the access token
      // is refused by verifyAccessToken once accessTokenLifetime has passed since it was made.
      this.refreshTokenLifetime = seconds("refreshTokenLifetime", options.refreshTokenLifetime, 30 * 24 * 3600);
      this.codeLifetime = seconds("codeLifetime", options.codeLifetime, 600);
      this.loginLifetime = seconds("loginLifetime", options.loginLifetime, 600);
      this.scopes = options.scopes === undefined || options.scopes === null ? null : new Set(options.scopes);
      /** The params objects the SDK gave authorize() (completeAuthorization's `{ client, params }` form takes only these). */
      this._handed = new WeakSet();
      const resources = options.resources;
      this.resources = resources === undefined || resources === null ? null : new Set([resources].flat().map(resourceKey));
      // PKCE is checked by the store when the code is consumed (one atomic step): the SDK
      // then passes the verifier to exchangeAuthorizationCode instead of checking it itself.
      this.skipLocalPkceValidation = true;
    }

    get clientsStore() {
      return this._clientsStore;
    }

    async authorize(client, params, res) {
      this._checkResource(params.resource);
      this._checkScopes(client, params);
      this._handed.add(params);
      await this._authorize(client, params, res, this);
    }

    /** Keeps an authorization request for a login that ends in another request (maybe on another instance); returns its id. */
    async beginAuthorization(client, params) {
      this._checkResource(params.resource);
      this._checkScopes(client, params);
      const id = random();
      await this.promises.storePendingAuthorization(id, requestRecord(client, params), this.loginLifetime);
      return id;
    }

    /**
     * Issues the code of a finished login and redirects (when `res` is given) to the client
     * with `code` and `state`; returns that URL, or null when the login id is unknown,
     * used or expired. `request` is a `beginAuthorization` id or `{ client, params }`.
     * `grant`: `{ userId, scopes (default: those requested), extra (a JSON object, AuthInfo.extra) }`.
     */
    async completeAuthorization(request, grant = {}, res) {
      const r = await this._request(request);
      if (!r) return null;
      if (typeof r.codeChallenge !== "string" || r.codeChallenge === "") {
        throw new TypeError("completeAuthorization: the request has no PKCE code challenge (the SDK's /authorize requires one)");
      }
      const scopes = grant.scopes ?? r.scopes;
      const extra = checkedExtra(grant.extra);
      const code = `${mint()}.${r.codeChallenge}`;
      await this.promises.storeAuthorizationCode(code, grant.userId ?? null, NO_API_KEY, r.clientId, r.redirectUri, r.codeChallenge, "S256", scopes, this.codeLifetime, grantOptions(r.resource, extra));
      return redirect(res, r.redirectUri, { code, state: r.state });
    }

    /** Ends a login refused by the user: redirects with `error=access_denied`; returns the URL, or null for an unknown login id. */
    async denyAuthorization(request, res, description = "The user denied the request") {
      const r = await this._request(request);
      if (!r) return null;
      return redirect(res, r.redirectUri, { error: "access_denied", error_description: description, state: r.state });
    }

    async challengeForAuthorizationCode(client, authorizationCode) {
      // The code carries its (public) challenge; the store checks the verifier against the stored one.
      const dot = typeof authorizationCode === "string" ? authorizationCode.lastIndexOf(".") : -1;
      if (dot < 1) throw new E.InvalidGrantError("Invalid authorization code");
      return authorizationCode.slice(dot + 1);
    }

    async exchangeAuthorizationCode(client, authorizationCode, codeVerifier, redirectUri, resource) {
      if (!codeVerifier) throw new E.InvalidGrantError("code_verifier is required");
      const code = await this.promises.consumeAuthorizationCode(authorizationCode, codeVerifier);
      if (!code) throw new E.InvalidGrantError("Invalid or expired authorization code, or code_verifier does not match the challenge");
      if (code.clientId !== client.client_id) throw new E.InvalidGrantError("Authorization code was not issued to this client");
      if (redirectUri !== undefined && redirectUri !== code.redirectUri) throw new E.InvalidGrantError("redirect_uri does not match the authorization request");
      const bound = this._bindResource(code.resource ?? null, resource);
      const accessToken = mint();
      const refreshToken = mint();
      await this.promises.storeAccessToken(accessToken, refreshToken, code.apiKey, code.userId, code.clientId, code.scopes, this._expiry(), grantOptions(bound, code.extra));
      return this._tokens(accessToken, refreshToken, code.scopes);
    }

    async exchangeRefreshToken(client, refreshToken, scopes, resource) {
      let refusal = null;
      let granted = null;
      const pair = await this.promises.rotateRefreshToken(refreshToken, async (grant) => {
        if (grant.clientId !== client.client_id) {
          refusal = new E.InvalidGrantError("Refresh token was not issued to this client");
          return null;
        }
        if (scopes && scopes.some((s) => !grant.scopes.includes(s))) {
          refusal = new E.InvalidScopeError("Requested scopes exceed those granted");
          return null;
        }
        const current = await this.promises.getAccessToken(grant.accessToken);
        if (!current) return null;
        try {
          this._bindResource(current.resource ?? null, resource, true);
        } catch (err) {
          refusal = err;
          return null;
        }
        const asked = scopes ? [...new Set(scopes)] : null;
        granted = asked && asked.length < grant.scopes.length ? asked : null;
        const accessToken = granted ? `${mint()}~${Buffer.from(granted.join(" ")).toString("base64url")}` : mint();
        return { accessToken, refreshToken: mint(), expiresAt: this._expiry() };
      });
      if (refusal) throw refusal;
      if (!pair) throw new E.InvalidGrantError("Invalid, expired or already used refresh token");
      return this._tokens(pair.accessToken, pair.refreshToken, granted ?? pair.scopes);
    }

    async verifyAccessToken(token) {
      const data = await this.promises.getAccessToken(token);
      const ends = data ? data.createdAt.getTime() + this.accessTokenLifetime * 1000 : 0;
      if (!data || Date.now() >= ends) throw new E.InvalidTokenError("Invalid or expired token");
      const info = {
        token,
        clientId: data.clientId,
        scopes: narrowedScopes(token, data.scopes),
        // Rounded up: the SDK refuses a token whose expiresAt (whole seconds) is before now,
        // so rounding down took up to a second off every token's life (a 1 s token was
        // refused a few ms after its refresh); the exact end is checked above.
        expiresAt: Math.ceil(Math.min(ends, data.expiresAt ? data.expiresAt.getTime() : Infinity) / 1000),
        extra: { ...grantExtra(data), userId: data.userId },
      };
      if (data.resource) info.resource = new URL(data.resource);
      return info;
    }

    async revokeToken(client, request) {
      const token = request?.token;
      if (typeof token !== "string" || token === "") return;
      const refresh = async () => {
        const r = await this.promises.getRefreshToken(token);
        if (!r || r.clientId !== client.client_id) return false;
        await this.promises.revokeRefreshToken(token);
        return true;
      };
      const access = async () => {
        const a = await this.promises.getAccessToken(token);
        if (!a || a.clientId !== client.client_id) return false;
        await this.promises.deleteToken(token);
        return true;
      };
      // RFC 7009: the hint orders the lookups; an unknown token (or another client's) is not an error.
      if (request.token_type_hint === "access_token") (await access()) || (await refresh());
      else (await refresh()) || (await access());
    }

    /** The request of `request`: a beginAuthorization id (consumed) or `{ client, params }`. */
    async _request(request) {
      if (typeof request === "string") return this.promises.consumePendingAuthorization(request);
      // Only the objects the SDK gave authorize(): never one a body parser built from a form
      // (login[client][client_id]=…), which would skip the SDK's redirect_uri check.
      if (request && request.client && request.params && this._handed.has(request.params)) return requestRecord(request.client, request.params);
      throw new TypeError("completeAuthorization: request must be a beginAuthorization id (a string) or the { client, params } given to authorize");
    }

    /**
     * The requested scopes must be among the client's registered `scope` (when it has one) and
     * the provider's `scopes` (or the router's scopesSupported); none requested: the client's
     * registered scopes, else none.
     */
    _checkScopes(client, params) {
      const registered = typeof client.scope === "string" && client.scope.trim() !== "" ? client.scope.trim().split(/\s+/) : null;
      if (!params.scopes || params.scopes.length === 0) {
        params.scopes = (registered ?? []).filter((s) => this.scopes === null || this.scopes.has(s));
        return;
      }
      const refused = params.scopes.filter((s) => (registered !== null && !registered.includes(s)) || (this.scopes !== null && !this.scopes.has(s)));
      if (refused.length > 0) throw new E.InvalidScopeError(`Scopes not allowed for this client: ${refused.join(" ")}`);
    }

    _checkResource(resource) {
      if (resource && this.resources && !this.resources.has(resourceKey(resource))) {
        throw new E.InvalidTargetError("This authorization server does not issue tokens for that resource");
      }
    }

    /** The resource the tokens are for: the one of the grant; a requested one must be that one. */
    _bindResource(granted, requested, refreshing = false) {
      if (requested === undefined || requested === null) return granted;
      const wanted = resourceKey(requested);
      if (granted !== null) {
        if (resourceKey(granted) !== wanted) throw new E.InvalidTargetError("The grant was not issued for that resource");
        return granted;
      }
      if (refreshing) throw new E.InvalidTargetError("The grant was issued for no resource");
      this._checkResource(requested);
      return wanted;
    }

    /** The expiry of a new pair's row in the store: the refresh token's (the access token's ends earlier, see verifyAccessToken). */
    _expiry() {
      return new Date(Date.now() + Math.max(this.accessTokenLifetime, this.refreshTokenLifetime) * 1000);
    }

    _tokens(accessToken, refreshToken, scopes) {
      const tokens = { access_token: accessToken, token_type: "Bearer", expires_in: this.accessTokenLifetime, refresh_token: refreshToken };
      if (scopes.length) tokens.scope = scopes.join(" ");
      return tokens;
    }
  }

  return { TokenStorageOAuthProvider, TokenStorageClientsStore, clientCredentials, mcpAuthRouter };
}

function seconds(name, value, fallback) {
  if (value === undefined || value === null) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`TokenStorageOAuthProvider: ${name} must be a whole number of seconds above 0`);
  return value;
}

/** What an authorization request keeps for its code (a pending authorization's data). */
function requestRecord(client, params) {
  return {
    clientId: client.client_id,
    redirectUri: params.redirectUri,
    codeChallenge: params.codeChallenge,
    scopes: params.scopes ?? [],
    state: params.state ?? null,
    resource: params.resource ? resourceKey(params.resource) : null,
  };
}

/**
 * A token minted at a refresh that asked for fewer scopes carries them after a `~` (the store
 * keeps the grant's, for the next refresh): its scopes are the grant's, narrowed to those.
 */
function narrowedScopes(token, scopes) {
  const mark = minted(token) ? token.lastIndexOf("~") : -1;
  if (mark < 0) return scopes;
  const narrowed = Buffer.from(token.slice(mark + 1), "base64url").toString("utf8").split(" ");
  return scopes.filter((s) => narrowed.includes(s));
}

function redirect(res, redirectUri, params) {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined) url.searchParams.set(k, v);
  if (res && typeof res.redirect === "function") res.redirect(302, url.href);
  else if (res) res.writeHead(302, { Location: url.href }).end();
  return url.href;
}

/** The SDK's modules, or an error that says how to install it. */
function missingSdk(cause) {
  const err = new Error(
    "native-token-storage/mcp needs @modelcontextprotocol/sdk (1.x; tested with 1.32.2), an optional peer dependency: npm install @modelcontextprotocol/sdk",
    { cause },
  );
  err.code = "MODULE_NOT_FOUND";
  return err;
}

module.exports = { createMcp, missingSdk };
