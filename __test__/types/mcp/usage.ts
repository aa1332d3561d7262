// mcp.d.ts against the SDK's own types: a server's whole wiring, with lines that must fail.
// (skipLibCheck: the SDK's own declarations need @types/express, which this package does not install.)
import { mcpAuthRouter, clientCredentials, TokenStorageClientsStore, TokenStorageOAuthProvider } from "native-token-storage/mcp";
import type { GrantOptions, McpStore, RequestHandler, Response, ShowLogin } from "native-token-storage/mcp";
import { TokenStorage } from "native-token-storage";
import * as promises from "native-token-storage/promises";
import type { OAuthServerProvider } from "@modelcontextprotocol/sdk/server/auth/provider.js";
import type { OAuthRegisteredClientsStore } from "@modelcontextprotocol/sdk/server/auth/clients.js";
import type { AuthInfo } from "@modelcontextprotocol/sdk/server/auth/types.js";

const store: McpStore = new TokenStorage({ storage: "sqlite" });
const showLogin: ShowLogin = async (client, params, res: Response, provider) => {
  const id: string = await provider.beginAuthorization(client, params);
  res.redirect(`/login?id=${id}`);
};
const provider = new TokenStorageOAuthProvider({ store, authorize: showLogin, accessTokenLifetime: 900, resources: ["https://mcp.example.com/mcp"] });
new TokenStorageOAuthProvider({ store: promises, authorize: () => {} });
// @ts-expect-error the login is the author's: authorize is required
new TokenStorageOAuthProvider({ store });
const asSdk: OAuthServerProvider = provider;
const clients: OAuthRegisteredClientsStore = new TokenStorageClientsStore({ store: store });
const grant: GrantOptions = { userId: "u", scopes: ["mcp:tools"], extra: { apiKey: "sk" } };
const router: RequestHandler = mcpAuthRouter({ provider, issuerUrl: new URL("https://mcp.example.com") });
const credentials: RequestHandler = clientCredentials({ paths: ["/token"] });

async function flow(): Promise<void> {
  const url: string | null = await provider.completeAuthorization("login-id", grant);
  await provider.denyAuthorization("login-id");
  const info: AuthInfo = await provider.verifyAccessToken("token");
  const seconds: number | undefined = info.expiresAt;
  // @ts-expect-error extra is a JSON object
  await provider.completeAuthorization("login-id", { extra: "sk" });
  void [url, seconds, asSdk, clients, router, credentials];
}
void flow;
