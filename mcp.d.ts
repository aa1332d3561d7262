// Type definitions for native-token-storage/mcp: a persistent OAuthServerProvider for the
// official MCP TypeScript SDK (@modelcontextprotocol/sdk), typed against the SDK's own types.
import type { AuthorizationParams, OAuthServerProvider } from "@modelcontextprotocol/sdk/server/auth/provider.js";
import type { OAuthRegisteredClientsStore } from "@modelcontextprotocol/sdk/server/auth/clients.js";
import type { AuthRouterOptions, mcpAuthRouter as sdkAuthRouter } from "@modelcontextprotocol/sdk/server/auth/router.js";
import type { AuthInfo } from "@modelcontextprotocol/sdk/server/auth/types.js";
import type {
  OAuthClientInformationFull,
  OAuthTokenRevocationRequest,
  OAuthTokens,
} from "@modelcontextprotocol/sdk/shared/auth.js";
import type { PromiseTokenStore, TokenStorage } from "./index";

/** Express's response, as the SDK's provider interface names it. */
export type Response = Parameters<OAuthServerProvider["authorize"]>[2];
/** Express middleware, as the SDK's router returns it. */
export type RequestHandler = ReturnType<typeof sdkAuthRouter>;

/** Where the provider keeps its state: a `TokenStorage`, its `promises`, or native-token-storage/promises (the default store, when omitted). */
export type McpStore = TokenStorage | PromiseTokenStore;

/** A JSON object kept with the grant and given back as `AuthInfo.extra` (with `userId`). */
export type GrantExtra = { [key: string]: unknown };

/** What a finished login grants. */
export interface GrantOptions {
  /** The user the tokens are for (`AuthInfo.extra.userId`). */
  userId?: string | null;
  /** The scopes granted; default: those requested. */
  scopes?: string[];
  /** Per-grant data, such as an upstream API key: kept with the code and the tokens, given back as `AuthInfo.extra`. */
  extra?: GrantExtra | null;
}

/** An authorization request: a `beginAuthorization` id, or the request itself. */
export type AuthorizationRequest = string | { client: OAuthClientInformationFull; params: AuthorizationParams };

/** Shows the login for an authorization request; ends, now or in a later request, in `provider.completeAuthorization` or `provider.denyAuthorization`. */
export type ShowLogin = (
  client: OAuthClientInformationFull,
  params: AuthorizationParams,
  res: Response,
  provider: TokenStorageOAuthProvider,
) => void | Promise<void>;

export interface TokenStorageOAuthProviderOptions {
  /** How the login is shown (required). */
  authorize: ShowLogin;
  /** Default: native-token-storage/promises (the default store, from the environment). */
  store?: McpStore;
  /** Default: a `TokenStorageClientsStore` on the same store. */
  clientsStore?: OAuthRegisteredClientsStore;
  /** Seconds an access token lives (default 3600). */
  accessTokenLifetime?: number;
  /** Seconds a refresh token lives, renewed at each refresh (default 30 days). */
  refreshTokenLifetime?: number;
  /** Seconds an authorization code lives (default 600). */
  codeLifetime?: number;
  /** Seconds a login begun with `beginAuthorization` may take (default 600). */
  loginLifetime?: number;
  /** The scopes the server grants (a client gets those it registered among these); default: the scopesSupported of this package's mcpAuthRouter. */
  scopes?: string[];
  /** The RFC 8707 resources (MCP server URLs) tokens may be issued for; default: any. */
  resources?: string | URL | Array<string | URL>;
}

/** The SDK's `OAuthRegisteredClientsStore` on the client registry (secrets kept as digests). */
export declare class TokenStorageClientsStore implements OAuthRegisteredClientsStore {
  constructor(options?: { store?: McpStore });
  getClient(clientId: string): Promise<OAuthClientInformationFull | undefined>;
  registerClient(client: Omit<OAuthClientInformationFull, "client_id" | "client_id_issued_at">): Promise<OAuthClientInformationFull>;
}

/** The SDK's `OAuthServerProvider` on a store: everything but the login. */
export declare class TokenStorageOAuthProvider implements OAuthServerProvider {
  constructor(options: TokenStorageOAuthProviderOptions);
  get clientsStore(): OAuthRegisteredClientsStore;
  /** Always true: the store checks PKCE when it consumes the code. */
  readonly skipLocalPkceValidation: boolean;
  readonly accessTokenLifetime: number;
  readonly refreshTokenLifetime: number;
  /** The scopes the server grants, or null: see `scopes` of the options. */
  scopes: Set<string> | null;
  readonly codeLifetime: number;
  readonly loginLifetime: number;
  authorize(client: OAuthClientInformationFull, params: AuthorizationParams, res: Response): Promise<void>;
  /** Keeps the request for a login that ends in a later request (on any instance); returns its id. */
  beginAuthorization(client: OAuthClientInformationFull, params: AuthorizationParams): Promise<string>;
  /** Issues the code and redirects (when `res` is given) with `code` and `state`; the URL, or null for an unknown, used or expired login id. */
  completeAuthorization(request: AuthorizationRequest, grant?: GrantOptions, res?: Response): Promise<string | null>;
  /** Redirects with `error=access_denied`; the URL, or null for an unknown, used or expired login id. */
  denyAuthorization(request: AuthorizationRequest, res?: Response, description?: string): Promise<string | null>;
  challengeForAuthorizationCode(client: OAuthClientInformationFull, authorizationCode: string): Promise<string>;
  exchangeAuthorizationCode(
    client: OAuthClientInformationFull,
    authorizationCode: string,
    codeVerifier?: string,
    redirectUri?: string,
    resource?: URL,
  ): Promise<OAuthTokens>;
  exchangeRefreshToken(client: OAuthClientInformationFull, refreshToken: string, scopes?: string[], resource?: URL): Promise<OAuthTokens>;
  verifyAccessToken(token: string): Promise<AuthInfo>;
  revokeToken(client: OAuthClientInformationFull, request: OAuthTokenRevocationRequest): Promise<void>;
}

/** Middleware giving `TokenStorageClientsStore` the credentials of token and revocation requests (`mcpAuthRouter` installs it). */
export declare function clientCredentials(options?: { paths?: string[] }): RequestHandler;

/** The SDK's `mcpAuthRouter` with `clientCredentials` in front: install it at the application root. */
export declare function mcpAuthRouter(options: AuthRouterOptions): RequestHandler;
