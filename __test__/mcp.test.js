"use strict";
// native-token-storage/mcp end to end with the MCP SDK itself (no mock): a server on the SDK's
// mcpAuthRouter + requireBearerAuth + StreamableHTTPServerTransport and TokenStorageOAuthProvider,
// driven by the SDK's client-side OAuth (discovery, dynamic registration, PKCE authorization,
// code exchange, a tool call, refresh, revocation), on every store.
const { describe, it, beforeEach, afterEach } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { KINDS, storeOptions, tempDir, removeDir } = require("./helpers/setup");
const { TokenStorage } = require("..");
const { serve, startServer, startProxy, MemoryClientProvider, authorize, connect, refresh, revoke, whoami, clientAuth, NO_RATE_LIMIT } = require("./helpers/mcp");

for (const kind of KINDS) {
  describe(`MCP SDK end to end (${kind})`, () => {
    let dir;
    const open = (file = "tokens.db", extra = {}) => new TokenStorage({ ...storeOptions(kind, path.join(dir, file)), ...extra });
    beforeEach(() => {
      dir = tempDir("nts-mcp-");
    });
    afterEach(() => removeDir(dir));

    it("discovery, registration, PKCE authorization, code exchange, a tool call, refresh and revocation, with the SDK's client", async (t) => {
      const server = await serve(t, () => open());
      const client = new MemoryClientProvider();
      const back = await authorize(server.base, client);
      assert.equal(back.searchParams.get("error"), null, back.href);
      assert.equal(back.searchParams.get("state"), client.lastState, "the redirect carries the client's state");

      // Dynamic registration: the SDK's metadata given back, a secret on registration only.
      const registered = client.saved.client;
      assert.match(registered.client_id, /^[0-9a-f]{32}$/);
      assert.match(registered.client_secret, /^[0-9a-f]{64}$/);
      assert.equal(typeof registered.client_id_issued_at, "number");
      assert.ok(registered.client_secret_expires_at > registered.client_id_issued_at);
      assert.equal(registered.client_name, "e2e");
      assert.deepEqual(registered.grant_types, ["authorization_code", "refresh_token"]);
      const stored = await server.provider.clientsStore.getClient(registered.client_id);
      assert.notEqual(stored.client_secret, registered.client_secret, "getClient outside a token request never gives the secret");
      assert.equal(stored.client_name, "e2e");

      // The tool call, through the SDK's client: the AuthInfo the tool sees.
      const tokens = client.saved.tokens;
      assert.equal(tokens.token_type, "Bearer");
      assert.equal(tokens.expires_in, 3600);
      assert.equal(tokens.scope, "mcp:tools");
      const mcp = await connect(`${server.base}/mcp`, client);
      const result = await mcp.callTool({ name: "whoami", arguments: {} });
      await mcp.close();
      const info = JSON.parse(result.content[0].text);
      assert.equal(info.token, tokens.access_token);
      assert.equal(info.clientId, registered.client_id);
      assert.deepEqual(info.scopes, ["mcp:tools"]);
      assert.equal(info.resource, `${server.base}/mcp`);
      assert.deepEqual(info.extra, { userId: "alice", apiKey: "sk-upstream-alice" });
      const now = Date.now() / 1000;
      assert.ok(info.expiresAt > now + 3590 && info.expiresAt < now + 3610, `expiresAt in seconds: ${info.expiresAt}`);

      // Refresh (the SDK's refreshAuthorization): a new pair, the old access token refused.
      const renewed = await refresh(client);
      assert.notEqual(renewed.access_token, tokens.access_token);
      assert.notEqual(renewed.refresh_token, tokens.refresh_token);
      assert.equal((await whoami(server.base, tokens.access_token)).status, 401);
      const after = await whoami(server.base, renewed.access_token);
      assert.equal(after.status, 200);
      assert.deepEqual(after.authInfo.extra, { userId: "alice", apiKey: "sk-upstream-alice" }, "rotation keeps the grant's data");
      assert.equal(after.authInfo.resource, `${server.base}/mcp`);

      // Revocation (RFC 7009): the refresh token, then its access token is refused too; an unknown token is not an error.
      assert.equal((await revoke(server.base, client, renewed.refresh_token)).status, 200);
      assert.equal((await whoami(server.base, renewed.access_token)).status, 401);
      await assert.rejects(refresh(client, renewed.refresh_token), clientAuth.InvalidGrantError ?? Error);
      assert.equal((await revoke(server.base, client, "no-such-token")).status, 200);
    });

    it("revoking an access token ends it; another client's token is left alone", async (t) => {
      const server = await serve(t, () => open());
      const a = new MemoryClientProvider();
      const b = new MemoryClientProvider();
      await authorize(server.base, a);
      await authorize(server.base, b);
      assert.equal((await revoke(server.base, b, a.saved.tokens.access_token)).status, 200);
      assert.equal((await whoami(server.base, a.saved.tokens.access_token)).status, 200, "b cannot revoke a's token");
      assert.equal((await revoke(server.base, a, a.saved.tokens.access_token)).status, 200);
      assert.equal((await whoami(server.base, a.saved.tokens.access_token)).status, 401);
    });

    it("a public client (token_endpoint_auth_method none) gets no secret and authorizes with PKCE alone", async (t) => {
      const server = await serve(t, () => open());
      const client = new MemoryClientProvider({ authMethod: "none" });
      await authorize(server.base, client);
      assert.equal(client.saved.client.client_secret, undefined);
      assert.equal((await whoami(server.base, client.saved.tokens.access_token)).status, 200);
      assert.ok((await refresh(client)).access_token);
    });

    it("a refresh token outlives its access token: refused once expired, the grant refreshed after", async (t) => {
      const server = await serve(t, () => open(), { providerOptions: { accessTokenLifetime: 1 } });
      const client = new MemoryClientProvider();
      await authorize(server.base, client);
      const tokens = client.saved.tokens;
      assert.equal(tokens.expires_in, 1);
      const live = await whoami(server.base, tokens.access_token);
      assert.equal(live.status, 200);
      const issued = Date.now() / 1000;
      // In whole seconds, rounded up (never before the token's end: the SDK refuses a token
      // whose expiresAt has passed).
      assert.ok(live.authInfo.expiresAt < issued + 2 && live.authInfo.expiresAt > issued - 1, `expiresAt: the access token's, ${live.authInfo.expiresAt}`);
      const record = await server.provider.promises.getAccessToken(tokens.access_token);
      assert.ok(live.authInfo.expiresAt * 1000 >= record.createdAt.getTime() + 1000, "expiresAt is never before the token's end");
      await new Promise((resolve) => setTimeout(resolve, 1100));
      assert.equal((await whoami(server.base, tokens.access_token)).status, 401, "the access token's lifetime has passed");
      const renewed = await refresh(client);
      assert.equal((await whoami(server.base, renewed.access_token)).status, 200, "its refresh token still works");
      assert.equal((await whoami(server.base, tokens.access_token)).status, 401);
    });

    it("concurrent refreshes of one token: exactly one wins (the others, within the grace period, revoke nothing)", async (t) => {
      const server = await serve(t, () => open());
      const client = new MemoryClientProvider();
      await authorize(server.base, client);
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => refresh(client)));
      const won = results.filter((r) => r.status === "fulfilled");
      assert.equal(won.length, 1, JSON.stringify(results.map((r) => r.status)));
      for (const r of results.filter((r) => r.status === "rejected")) assert.equal(r.reason.errorCode ?? r.reason.code, "invalid_grant", String(r.reason));
      assert.equal((await whoami(server.base, won[0].value.access_token)).status, 200);
    });

    it("a replayed refresh token revokes the grant", async (t) => {
      // No grace period: a rotated-away token presented again is a replay at once.
      const app = await serve(t, () => open("strict.db", { refreshGracePeriod: 0 }));
      const client = new MemoryClientProvider();
      await authorize(app.base, client);
      const stolen = client.saved.tokens.refresh_token;
      const renewed = await refresh(client);
      await assert.rejects(refresh(client, stolen), (err) => err.errorCode === "invalid_grant");
      assert.equal((await whoami(app.base, renewed.access_token)).status, 401, "the tokens descended from the grant are revoked");
      await assert.rejects(refresh(client, renewed.refresh_token), (err) => err.errorCode === "invalid_grant");
    });

    it("a token minted for one resource is refused by another, and cannot be refreshed for it", async (t) => {
      const server = await serve(t, () => open());
      const client = new MemoryClientProvider();
      await authorize(server.base, client);
      const token = client.saved.tokens.access_token;
      assert.equal((await whoami(server.base, token, "/mcp")).status, 200);
      const other = await whoami(server.base, token, "/other");
      assert.equal(other.status, 401);
      assert.match(other.body, /invalid_token/);
      await assert.rejects(refresh(client, undefined, new URL(`${server.base}/other`)), (err) => err.errorCode === "invalid_target");
      assert.ok((await refresh(client)).access_token, "a refused refresh changes nothing");
    });

    it("scopes may only narrow at refresh", async (t) => {
      const server = await serve(t, () => open(), { providerOptions: { scopes: ["read", "write"] } });
      await server.store.promises.preRegisterClient("cli", "s3cret-s3cret", {
        redirect_uris: ["http://127.0.0.1:1/callback"],
        grant_types: ["authorization_code", "refresh_token"],
        token_endpoint_auth_method: "client_secret_post",
        scope: "read write",
      });
      const client = await server.provider.clientsStore.getClient("cli");
      const login = await server.provider.beginAuthorization(client, { redirectUri: "http://127.0.0.1:1/callback", codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", scopes: ["read", "write"] });
      const url = await server.provider.completeAuthorization(login, { userId: "bob" });
      const code = new URL(url).searchParams.get("code");
      const tokens = await server.provider.exchangeAuthorizationCode(client, code, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
      await assert.rejects(server.provider.exchangeRefreshToken(client, tokens.refresh_token, ["read", "admin"]), (err) => err.errorCode === "invalid_scope");
      const narrowed = await server.provider.exchangeRefreshToken(client, tokens.refresh_token, ["read"]);
      assert.equal(narrowed.scope, "read");
      assert.deepEqual((await server.provider.verifyAccessToken(narrowed.access_token)).scopes, ["read"]);
      const again = await server.provider.exchangeRefreshToken(client, narrowed.refresh_token);
      assert.equal(again.scope, "read write", "the refresh token keeps the original grant (RFC 6749 §6)");
    });

    it("a confidential client's secret is checked at the token endpoint, from its digest", async (t) => {
      const server = await serve(t, () => open());
      const client = new MemoryClientProvider();
      await authorize(server.base, client);
      const { client_id } = client.saved.client;
      const post = (body) => fetch(`${server.base}/token`, { method: "POST", body: new URLSearchParams(body) });
      const base = { grant_type: "refresh_token", refresh_token: client.saved.tokens.refresh_token, client_id };
      for (const secret of [undefined, "wrong"]) {
        const res = await post(secret ? { ...base, client_secret: secret } : base);
        assert.equal(res.status, 400);
        assert.equal((await res.json()).error, "invalid_client");
      }
      // getClient's answer outside a token request (an admin page, a log line of the client
      // given to authorize) holds a value that is no secret: replayed, it is refused.
      const leaked = (await server.provider.clientsStore.getClient(client_id)).client_secret;
      for (const url of [`${server.base}/token`, `${server.base}/revoke`]) {
        const res = await fetch(url, { method: "POST", body: new URLSearchParams({ ...base, token: "x", client_secret: leaked }) });
        assert.equal(res.status, 400, url);
        assert.equal((await res.json()).error, "invalid_client", url);
      }
      // HTTP Basic (client_secret_basic) is read too.
      const basic = Buffer.from(`${client_id}:${client.saved.client.client_secret}`).toString("base64");
      const res = await fetch(`${server.base}/token`, {
        method: "POST",
        headers: { authorization: `Basic ${basic}` },
        body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: client.saved.tokens.refresh_token }),
      });
      assert.equal(res.status, 200, await res.clone().text());
    });

    it("a code is single use, bound to its client and PKCE verifier", async (t) => {
      const server = await serve(t, () => open());
      const client = new MemoryClientProvider();
      await authorize(server.base, client);
      const provider = server.provider;
      const registration = await provider.clientsStore.getClient(client.saved.client.client_id);
      const params = { redirectUri: client.redirectUrl, codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", scopes: [] };
      const issue = async () => new URL(await provider.completeAuthorization(await provider.beginAuthorization(registration, params), { userId: "u" })).searchParams.get("code");
      const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
      const code = await issue();
      assert.equal(await provider.challengeForAuthorizationCode(registration, code), params.codeChallenge);
      await assert.rejects(provider.exchangeAuthorizationCode(registration, code, `${verifier.slice(0, -1)}X`), (e) => e.errorCode === "invalid_grant");
      await assert.rejects(provider.exchangeAuthorizationCode(registration, code, verifier), (e) => e.errorCode === "invalid_grant", "a failed attempt uses the code up");
      const other = { ...registration, client_id: "someone-else" };
      await assert.rejects(provider.exchangeAuthorizationCode(other, await issue(), verifier), (e) => e.errorCode === "invalid_grant");
      await assert.rejects(provider.exchangeAuthorizationCode(registration, await issue(), verifier, "http://127.0.0.1:1/elsewhere"), (e) => e.errorCode === "invalid_grant");
      const ok = await provider.exchangeAuthorizationCode(registration, await issue(), verifier);
      const info = await provider.verifyAccessToken(ok.access_token);
      assert.equal(info.resource, undefined, "no resource asked, none bound");
      await assert.rejects(provider.verifyAccessToken("nope"), (e) => e.errorCode === "invalid_token");
    });
  });
}

for (const kind of KINDS.filter((k) => k !== "memory")) {
  describe(`MCP SDK: two instances behind a round-robin proxy, one restarted midway (${kind})`, () => {
    it("the whole flow, each step on whichever instance the proxy picks", async (t) => {
      const dir = tempDir("nts-mcp-two-");
      const options = storeOptions(kind, path.join(dir, "tokens.db"));
      const instances = [];
      let proxy = null;
      t.after(async () => {
        await proxy?.close();
        for (const i of instances) {
          await i.server.close();
          i.store.close();
        }
        removeDir(dir);
      });
      const launch = async (slot) => {
        const store = new TokenStorage(options);
        instances[slot] = { store, server: await startServer(store, { baseUrl: proxy.base }) };
      };
      proxy = await startProxy(() => instances.map((i) => i.server.own));
      await launch(0);
      await launch(1);

      const client = new MemoryClientProvider();
      const back = await authorize(proxy.base, client);
      assert.ok(back.searchParams.get("code"), back.href);
      const first = await whoami(proxy.base, client.saved.tokens.access_token);
      assert.equal(first.status, 200);
      assert.equal(first.authInfo.resource, `${proxy.base}/mcp`);

      // Instance 0 stops (its store closed) and starts again on a new port, mid-session.
      await instances[0].server.close();
      instances[0].store.close();
      await launch(0);

      // On PostgreSQL an instance that read a token moments ago answers from its cache, and
      // honours another instance's revocation within 40 ms (docs/postgresql.md): allow 1 s on
      // a busy machine, then both instances must refuse the token, and keep refusing it.
      const refusedEverywhere = async (token) => {
        const t0 = Date.now();
        for (;;) {
          const [a, b] = [await whoami(proxy.base, token), await whoami(proxy.base, token)]; // one on each instance
          if (a.status === 401 && b.status === 401) break;
          assert.ok(Date.now() - t0 < 1000, "an instance still serves a token another one revoked, after 1 s");
        }
        for (let i = 0; i < 2; i++) assert.equal((await whoami(proxy.base, token)).status, 401, "and keeps refusing it");
      };
      const renewed = await refresh(client);
      for (let i = 0; i < 4; i++) assert.equal((await whoami(proxy.base, renewed.access_token)).status, 200, "each instance knows the new token");
      await refusedEverywhere(client.saved.tokens.access_token);
      assert.equal((await revoke(proxy.base, client, renewed.refresh_token)).status, 200);
      await refusedEverywhere(renewed.access_token);
      assert.equal(proxy.served.size, 3, "two instances and the restarted one all served requests");
    });
  });
}

describe("MCP SDK: a provider limited to its resources", () => {
  it("authorizing for a resource it does not serve redirects with invalid_target", async (t) => {
    const server = await serve(t, () => new TokenStorage(), { resources: (base) => [`${base}/mcp`] });
    const client = new MemoryClientProvider();
    const back = await authorize(server.base, client);
    assert.equal(back.searchParams.get("error"), null, "its own resource is served");
    const params = new URL(client.authorizationUrl).searchParams;
    params.set("resource", `${server.base}/other`);
    const res = await fetch(`${server.base}/authorize?${params}`, { redirect: "manual" });
    const refused = new URL(res.headers.get("location"));
    assert.equal(refused.searchParams.get("error"), "invalid_target");
    assert.equal(refused.searchParams.get("state"), params.get("state"));
  });
});

describe("MCP provider: what a request or another writer of the store cannot forge", () => {
  const CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
  const VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  const { TokenStorageOAuthProvider } = require("../mcp");
  const provider = (store, options = {}) => new TokenStorageOAuthProvider({ store, authorize() {}, ...options });

  it("a confidential client's right secret is accepted behind async middleware (the body arrived but was not read yet)", async (t) => {
    const server = await serve(t, () => new TokenStorage(), { before: async (req, res, next) => setTimeout(next, 5) });
    const client = new MemoryClientProvider();
    await authorize(server.base, client);
    const renewed = await refresh(client);
    assert.equal((await whoami(server.base, renewed.access_token)).status, 200);
  });

  it("completeAuthorization's { client, params } form takes only what the SDK gave authorize, never an object from a form", async (t) => {
    const store = new TokenStorage();
    t.after(() => store.close());
    let url = null;
    const p = provider(store, { authorize: async (client, params, res, self) => (url = await self.completeAuthorization({ client, params }, { userId: "u" }, res)) });
    const client = { client_id: "c", redirect_uris: ["http://127.0.0.1:1/cb"] };
    await p.authorize(client, { redirectUri: "http://127.0.0.1:1/cb", codeChallenge: CHALLENGE, scopes: [] }, null);
    assert.match(url, /^http:\/\/127\.0\.0\.1:1\/cb\?code=mcp_/, "a login finished in the request itself");
    // What express.urlencoded({ extended: true }) makes of login[client][client_id]=…&login[params][redirectUri]=…
    const forged = { client: { client_id: "attacker" }, params: { redirectUri: "https://attacker.example/cb", codeChallenge: CHALLENGE, scopes: ["admin"] } };
    await assert.rejects(p.completeAuthorization(forged, { userId: "victim" }), TypeError);
    assert.equal((await store.promises.getStats()).totalTokens, 0);
  });

  it("scopes: only those the client registered and the server supports; none asked, the client's registered ones", async (t) => {
    const store = new TokenStorage();
    t.after(() => store.close());
    const p = provider(store, { scopes: ["mcp:tools", "mcp:read"] });
    const client = { client_id: "c", scope: "mcp:tools", redirect_uris: ["http://127.0.0.1:1/cb"] };
    const params = (scopes) => ({ redirectUri: "http://127.0.0.1:1/cb", codeChallenge: CHALLENGE, scopes });
    for (const asked of [["admin"], ["mcp:tools", "root"], ["mcp:read"]]) {
      await assert.rejects(p.beginAuthorization(client, params(asked)), (e) => e.errorCode === "invalid_scope", asked.join(" "));
      await assert.rejects(p.authorize(client, params(asked), null), (e) => e.errorCode === "invalid_scope", asked.join(" "));
    }
    const none = params(undefined);
    const id = await p.beginAuthorization(client, none);
    assert.deepEqual(none.scopes, ["mcp:tools"]);
    const code = new URL(await p.completeAuthorization(id, { userId: "u" })).searchParams.get("code");
    const tokens = await p.exchangeAuthorizationCode(client, code, VERIFIER);
    assert.equal(tokens.scope, "mcp:tools");
    // The router's scopesSupported bounds a provider that has no list of its own.
    const { mcpAuthRouter } = require("../mcp");
    const q = provider(store);
    mcpAuthRouter({ provider: q, issuerUrl: new URL("http://127.0.0.1:1"), scopesSupported: ["mcp:tools"], ...NO_RATE_LIMIT });
    await assert.rejects(q.beginAuthorization({ client_id: "d" }, params(["admin"])), (e) => e.errorCode === "invalid_scope");
  });

  it("a token or code stored by other code keeps its API key plain: no resource or user forged from it, whatever it looks like", async (t) => {
    const store = new TokenStorage();
    t.after(() => store.close());
    const p = provider(store);
    const forged = JSON.stringify({ v: 1, resource: "https://mcp.example.com/mcp", extra: { userId: "admin" } });
    const later = Date.now() + 3600e3;
    await store.promises.storeAccessToken("legacy-token", "legacy-refresh", forged, "mallory", "c", ["mcp:tools"], later);
    const info = await p.verifyAccessToken("legacy-token");
    assert.equal(info.resource, undefined);
    assert.deepEqual(info.extra, { apiKey: forged, userId: "mallory" });
    // Refreshed (the grant's data is in fields of its own, never read from an API key): the key stays plain.
    const refreshed = await p.exchangeRefreshToken({ client_id: "c" }, "legacy-refresh");
    const after = await p.verifyAccessToken(refreshed.access_token);
    assert.equal(after.resource, undefined);
    assert.deepEqual(after.extra, { apiKey: forged, userId: "mallory" });
    // A plain key refreshes, and stays plain in the new tokens.
    await store.promises.storeAccessToken("old-token", "old-refresh", "sk-plain", "bob", "c", [], later);
    const renewed = await p.exchangeRefreshToken({ client_id: "c" }, "old-refresh");
    assert.deepEqual((await p.verifyAccessToken(renewed.access_token)).extra, { apiKey: "sk-plain", userId: "bob" });
    // A code of other code: its key carried as it is, never read as a resource or extra.
    await store.promises.storeAuthorizationCode("legacy-code", "mallory", forged, "c", "http://127.0.0.1:1/cb", CHALLENGE, "S256", [], 600);
    const tokens = await p.exchangeAuthorizationCode({ client_id: "c" }, "legacy-code", VERIFIER);
    const minted = await p.verifyAccessToken(tokens.access_token);
    assert.equal(minted.resource, undefined);
    assert.deepEqual(minted.extra, { apiKey: forged, userId: "mallory" });
  });
});

for (const kind of KINDS) {
  describe(`MCP provider: the grant's data in the store's fields (${kind})`, () => {
    const CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const { TokenStorageOAuthProvider } = require("../mcp");
    let dir;
    beforeEach(() => {
      dir = tempDir("nts-mcp-fields-");
    });
    afterEach(() => removeDir(dir));

    it("a minted token reads back with getAccessToken in the plain shape: no JSON in apiKey, its resource and extra in their fields, kept by refresh", async (t) => {
      const store = new TokenStorage(storeOptions(kind, path.join(dir, "tokens.db")));
      t.after(() => store.close());
      const p = new TokenStorageOAuthProvider({ store, authorize() {} });
      const client = { client_id: "c", redirect_uris: ["http://127.0.0.1:1/cb"] };
      const id = await p.beginAuthorization(client, { redirectUri: "http://127.0.0.1:1/cb", codeChallenge: CHALLENGE, scopes: ["mcp:tools"], resource: new URL("https://mcp.example.com/mcp") });
      const extra = { apiKey: "sk-upstream", plan: { tier: "pro" } };
      const code = new URL(await p.completeAuthorization(id, { userId: "alice", extra })).searchParams.get("code");
      const tokens = await p.exchangeAuthorizationCode(client, code, VERIFIER);
      const stored = store.getAccessToken(tokens.access_token);
      assert.equal(stored.apiKey, "-");
      assert.equal(stored.resource, "https://mcp.example.com/mcp");
      assert.deepEqual(stored.extra, extra);
      assert.equal(stored.userId, "alice");
      const info = await p.verifyAccessToken(tokens.access_token);
      assert.deepEqual(info.extra, { ...extra, userId: "alice" });
      assert.equal(info.resource.href, "https://mcp.example.com/mcp");
      const renewed = await p.exchangeRefreshToken(client, tokens.refresh_token, undefined, new URL("https://mcp.example.com/mcp"));
      const again = store.getAccessToken(renewed.access_token);
      assert.deepEqual([again.apiKey, again.resource, again.extra], ["-", "https://mcp.example.com/mcp", extra]);
      // Another resource is refused at refresh.
      await assert.rejects(p.exchangeRefreshToken(client, renewed.refresh_token, undefined, new URL("https://other.example.com/mcp")), (e) => e.errorCode === "invalid_target");
      // A login without extra: AuthInfo.extra is the user alone.
      const id2 = await p.beginAuthorization(client, { redirectUri: "http://127.0.0.1:1/cb", codeChallenge: CHALLENGE, scopes: [] });
      const code2 = new URL(await p.completeAuthorization(id2, { userId: "bob" })).searchParams.get("code");
      const plain = await p.exchangeAuthorizationCode(client, code2, VERIFIER);
      assert.deepEqual((await p.verifyAccessToken(plain.access_token)).extra, { userId: "bob" });
      const bare = store.getAccessToken(plain.access_token);
      assert.deepEqual(Object.keys(bare).sort(), ["apiKey", "clientId", "createdAt", "expiresAt", "refreshToken", "scopes", "userId"]);
    });
  });
}
