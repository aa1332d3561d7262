// Type definitions for native-token-storage.
// Every function is synchronous, as the Map-based module it replaces.

/** One record of `storeAccessTokens`: the arguments of `storeAccessToken`, by name. */
export interface AccessTokenRecord {
  accessToken: string;
  refreshToken?: string | null;
  apiKey: string;
  userId?: string | null;
  clientId: string;
  scopes?: string[];
  expiresAt?: Date | number | null;
  /** As `GrantOptions.resource`. */
  resource?: string | null;
  /** As `GrantOptions.extra`. */
  extra?: Record<string, unknown> | null;
}

/**
 * A grant's optional data, kept with a code or token (the last argument of
 * `storeAccessToken` and `storeAuthorizationCode`), carried by `rotateRefreshToken` to the
 * new access token, and given back only when stored.
 */
export interface GrantOptions {
  /** The RFC 8707 resource the grant is for (at most 2048 bytes as UTF-8); kept in clear. */
  resource?: string | null;
  /** Any plain object (at most 64 KiB as JSON), sealed at rest under TOKEN_ENCRYPTION_KEYS; given back as a copy. */
  extra?: Record<string, unknown> | null;
}

/** What `getAccessToken` returns for a live token. */
export interface AccessTokenData {
  apiKey: string;
  /** `null` when the token was stored without a user id. */
  userId: string | null;
  clientId: string;
  scopes: string[];
  refreshToken: string | null;
  /** `null`: never expires. */
  expiresAt: Date | null;
  createdAt: Date;
  /** Only when the token was stored with one (`GrantOptions`). */
  resource?: string;
  /** Only when the token was stored with one (`GrantOptions`). */
  extra?: Record<string, unknown>;
}

/** What `getRefreshToken` returns while its access token is live. */
export interface RefreshTokenData {
  userId: string | null;
  clientId: string;
  scopes: string[];
  accessToken: string;
  createdAt: Date;
}

/** What `consumeAuthorizationCode` returns, once, for a live code that passes PKCE. */
export interface AuthorizationCodeData {
  userId: string | null;
  apiKey: string;
  clientId: string;
  redirectUri: string;
  codeChallenge: string | null;
  codeChallengeMethod: string | null;
  scopes: string[];
  /** Epoch milliseconds. */
  expiresAt: number;
  /** Epoch milliseconds. */
  createdAt: number;
  /** Only when the code was stored with one (`GrantOptions`). */
  resource?: string;
  /** Only when the code was stored with one (`GrantOptions`). */
  extra?: Record<string, unknown>;
}

export interface TokenStats {
  /** Live (unexpired) access tokens. */
  totalTokens: number;
  /** Distinct non-null user ids among live access tokens. */
  uniqueUsers: number;
  /** Which store answered. */
  storage: StorageKind;
}

export type StorageKind = "memory" | "sqlite" | "postgres" | "redis";

/** Seconds from now, as in `storeAuthorizationCode(..., expiresIn)`. */
export type Seconds = number;

export interface TokenStorageOptions {
  /** `"memory"` (default), `"db"` / `"sqlite"` for a SQLite file, `"postgres"` / `"postgresql"` / `"pg"` for PostgreSQL, `"redis"` / `"valkey"` for Redis or Valkey. Case-insensitive. */
  storage?: "memory" | "db" | "sqlite" | "postgres" | "postgresql" | "pg" | "redis" | "valkey" | (string & {});
  /** The SQLite file; relative paths resolve against the working directory. Default `data/tokens.db`. */
  path?: string;
  /** `"normal"` (default; WAL keeps the file consistent, a power loss may undo the last commits) or `"full"`. */
  synchronous?: "normal" | "full";
  /** How long a write waits for another process's lock, in milliseconds. Default 5000. */
  busyTimeout?: number;
  /** PostgreSQL: the connection string, URL (`postgres://user:password@host:5432/db?sslmode=require`) or key-value form. Required for `storage: "postgres"`. Redis: its URL (`redis://[user:password@]host:6379[/db]`, `rediss://…` for TLS), required for `storage: "redis"`. */
  url?: string;
  /** Redis: put before every key of the store, so that one Redis holds several stores. Default `"nts:"`. */
  prefix?: string;
  /** PostgreSQL: the schema that holds the tables, created if missing. Default `"public"`. */
  schema?: string;
  /** PostgreSQL and Redis: how long connecting may take, in milliseconds. Default 5000. */
  connectTimeout?: number;
  /** PostgreSQL and Redis: how long one call may take, round trips and lock waits included, in milliseconds. Default 5000. */
  queryTimeout?: number;
  /** PostgreSQL and Redis: how many connections the store keeps at most (1 to 100). Default 4. */
  poolSize?: number;
  /** Seconds after a rotation during which the old refresh token, presented again, is refused without revoking its grant (a client's retry). 0 to 3600, default 10. */
  refreshGracePeriod?: number;
  /** Seconds between automatic removals of expired rows (off the JS thread, on an unreferenced timer). 0 turns them off; default 60. */
  cleanupInterval?: number;
  /** Encryption at rest: a keyring `id:key,id:key,…` (each key 32 random bytes in base64, the first active). Sealed so far: authorization codes and pending authorizations (see docs/configuration.md). The module-level store reads `TOKEN_ENCRYPTION_KEYS`. Unset: no encryption. */
  encryptionKeys?: string;
}

/** The `code` of every error the store throws (argument `TypeError`s and `RangeError`s from the JS checks carry none). */
export type TokenStorageErrorCode =
  | "ERR_TOKEN_STORAGE_CONFIG"
  | "ERR_TOKEN_STORAGE_INVALID_ARGUMENT"
  | "ERR_TOKEN_STORAGE_OPEN"
  | "ERR_TOKEN_STORAGE_NOT_A_DATABASE"
  | "ERR_TOKEN_STORAGE_BUSY"
  | "ERR_TOKEN_STORAGE_FULL"
  | "ERR_TOKEN_STORAGE_READONLY"
  | "ERR_TOKEN_STORAGE_MOVED"
  | "ERR_TOKEN_STORAGE_SQLITE"
  | "ERR_TOKEN_STORAGE_UNAVAILABLE"
  | "ERR_TOKEN_STORAGE_POSTGRES"
  | "ERR_TOKEN_STORAGE_REDIS"
  | "ERR_TOKEN_STORAGE_BAD_ENCRYPTION_KEY"
  | "ERR_TOKEN_STORAGE_CANNOT_DECRYPT"
  | "ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH"
  | "ERR_TOKEN_STORAGE_INTERNAL"
  | "ERR_TOKEN_STORAGE_NOT_BUILT";

/**
 * What the store throws when it fails (not for bad arguments, which are `TypeError`s and
 * `RangeError`s): `err instanceof TokenStorageError`, and `err.code` says what failed.
 */
export declare class TokenStorageError extends Error {
  constructor(message: string, code: TokenStorageErrorCode);
  code: TokenStorageErrorCode;
}

/**
 * The client registry's functions (RFC 7591), those of native-token-storage/clients: a
 * persistent drop-in for a Map-based clientRegistry.js.
 */
export interface ClientStore {
  /** RFC 7591 dynamic registration: a new client id (16 random bytes, hex) and secret (32, hex), the secret returned here only. */
  registerClient(metadata: ClientMetadata): RegisteredClient;
  /** The stored registration, without `client_secret` (only its digest is kept), or null. */
  getClient(clientId: string | null | undefined): ClientRegistration | null;
  /** Whether `clientSecret` is the client's secret, compared in constant time. */
  verifyClient(clientId: string | null | undefined, clientSecret: string | null | undefined): boolean;
  /** Registers or updates a client of known id and secret; call it at every start. Default redirect_uris: ["http://localhost:*", "https://*"]. */
  preRegisterClient(clientId: string, clientSecret: string | null, metadata?: ClientMetadata): void;
  /** Every registered client's id, in registration order. */
  getAllClients(): string[];
}

/** The functions shared by the module (and native-token-storage/clients) and by each `TokenStorage`. */
export interface TokenStore extends ClientStore {
  storeAccessToken(
    accessToken: string,
    refreshToken: string | null | undefined,
    apiKey: string,
    userId: string | null | undefined,
    clientId: string,
    scopes?: string[],
    expiresAt?: Date | number | null,
    options?: GrantOptions | null,
  ): void;
  /**
   * Stores many tokens at once, all or none (one transaction on SQLite); returns how many
   * tokens the call left stored (a token given twice counts once; the last one wins).
   */
  storeAccessTokens(records: Iterable<AccessTokenRecord>): number;
  getAccessToken(token: string | null | undefined): AccessTokenData | null;
  storeAuthorizationCode(
    code: string,
    userId: string | null | undefined,
    apiKey: string,
    clientId: string,
    redirectUri: string,
    codeChallenge: string | null | undefined,
    codeChallengeMethod: "S256" | "plain" | null | undefined,
    scopes: string[] | undefined,
    expiresIn?: Seconds | null,
    options?: GrantOptions | null,
  ): void;
  consumeAuthorizationCode(
    code: string | null | undefined,
    codeVerifier?: string | null,
  ): AuthorizationCodeData | null;
  getRefreshToken(refreshToken: string | null | undefined): RefreshTokenData | null;
  revokeRefreshToken(refreshToken: string | null | undefined): void;
  deleteToken(token: string | null | undefined): void;
  deleteUserTokens(userId: string | null | undefined): void;
  /** Removes expired access tokens (with their refresh tokens) and codes; returns how many. */
  cleanupExpiredTokens(batchSize?: number): number;
  /** The same, each batch of `batchSize` rows (default 2000) on a background thread. */
  cleanupExpiredTokensAsync(batchSize?: number): Promise<number>;
  getStats(): TokenStats;
  /**
   * A consistent snapshot of the store, taken while others keep writing, as a new SQLite
   * file at `destination` (created 0600, checked before it is reported done). A file already
   * there is refused unless `options.overwrite`. `new TokenStorage({ storage: "db", path })` opens it.
   */
  backup(destination: string, options?: BackupOptions | null): BackupReport;
  /**
   * The refresh grant in one atomic step: if `refreshToken` is live, its pair is replaced by
   * the new one (same API key, user, client and scopes); returns the new pair, or null. Of
   * concurrent rotations of one token, one wins. A token rotated away and presented again
   * after the grace period (`refreshGracePeriod`, 10 s) revokes every token of its grant.
   */
  rotateRefreshToken(
    refreshToken: string | null | undefined,
    newAccessToken: string,
    newRefreshToken: string,
    expiresAt?: Date | number | null,
  ): RotatedTokens | null;
  /**
   * The same for a server whose new access token is built from the grant (a JWT): `mint`
   * gets the grant and returns the new tokens (or null: nothing happens). Of concurrent
   * refreshes one wins; a replay after the grace period revokes the grant; a mint that
   * throws changes nothing. `mint` must answer at once here; the Promise API takes an async one.
   */
  rotateRefreshToken(refreshToken: string | null | undefined, mint: (grant: RefreshTokenData) => MintedTokens | null): RotatedTokens | null;
  /** Keeps `data` under `state` for `ttlSeconds` (default 600), for one consume. */
  storePendingAuthorization(state: string, data: Record<string, unknown>, ttlSeconds?: Seconds | null): void;
  /** The data stored under `state`, once; null if unknown, already taken or expired. */
  consumePendingAuthorization<T = Record<string, unknown>>(state: string | null | undefined): T | null;
}

/** `backup`'s options. */
export interface BackupOptions {
  /** Replace a file already at the destination (default false: refused). */
  overwrite?: boolean;
  /** Rows per transaction of the backup file (default 1000). */
  batchSize?: number;
}

/** How many rows of each kind a backup or copy wrote (expired ones included). */
export interface RowCounts {
  accessTokens: number;
  refreshTokens: number;
  authorizationCodes: number;
  clients: number;
  pendingAuthorizations: number;
  refreshFamilies: number;
  retiredRefreshTokens: number;
}

/** What `backup` wrote: the file's absolute path, its rows, its size and how long it took. */
export interface BackupReport {
  path: string;
  counts: RowCounts;
  bytes: number;
  ms: number;
}

/** What the `mint` of `rotateRefreshToken(refreshToken, mint)` returns: the new pair and its expiry. */
export interface MintedTokens {
  accessToken: string;
  refreshToken: string;
  /** The new access token's expiry, as in `storeAccessToken`; absent or null: never. */
  expiresAt?: Date | number | null;
}

/** What `rotateRefreshToken` returns: the new pair and what it carries over. */
export interface RotatedTokens {
  userId: string | null;
  clientId: string;
  scopes: string[];
  apiKey: string;
  accessToken: string;
  refreshToken: string;
}

/** RFC 7591 client metadata: any fields, kept as given; `redirect_uris` an array of strings. */
export interface ClientMetadata {
  redirect_uris?: string[];
  grant_types?: string[];
  response_types?: string[];
  scope?: string;
  token_endpoint_auth_method?: string;
  application_type?: string;
  client_name?: string;
  [field: string]: unknown;
}

/** A stored registration (no secret). */
export interface ClientRegistration extends ClientMetadata {
  client_id: string;
  client_id_issued_at: number;
  redirect_uris: string[];
  grant_types: string[];
  response_types: string[];
  scope: string;
  token_endpoint_auth_method: string;
}

/** What `registerClient` returns: the registration with its secret, shown this once. */
export interface RegisteredClient extends ClientRegistration {
  client_secret: string;
}

/**
 * The functions of `TokenStore`, each returning a Promise: the work is done off the event
 * loop (on a thread of libuv's pool; a PostgreSQL store's round trips are awaited in the
 * event loop itself, as `pg` does), with the same results and errors (a bad argument
 * rejects with a TypeError).
 */
export type PromiseTokenStore = {
  [K in Exclude<keyof TokenStore, "rotateRefreshToken">]: (
    ...args: Parameters<TokenStore[K]>
  ) => Promise<Awaited<ReturnType<TokenStore[K]>>>;
} & {
  rotateRefreshToken(
    refreshToken: string | null | undefined,
    newAccessToken: string,
    newRefreshToken: string,
    expiresAt?: Date | number | null,
  ): Promise<RotatedTokens | null>;
  /** `mint` may be async here. */
  rotateRefreshToken(
    refreshToken: string | null | undefined,
    mint: (grant: RefreshTokenData) => MintedTokens | null | Promise<MintedTokens | null>,
  ): Promise<RotatedTokens | null>;
  /** Closes the store (as `close()`); the next call reopens it. */
  closeDB(): Promise<void>;
};

/** A store of its own, for tests and for servers that keep more than one; its methods are `TokenStore`'s (declared once, there). */
export interface TokenStorage extends TokenStore {}
/** A store of its own, for tests and for servers that keep more than one. */
export declare class TokenStorage implements TokenStore {
  constructor(options?: TokenStorageOptions);
  readonly storage: StorageKind;
  /** The database file's absolute path; `null` for the memory store. */
  readonly path: string | null;
  /** Opens the store now (the first call opens it anyway). */
  open(): void;
  /** Closes a SQLite store's file; the next call reopens it. A memory store keeps its tokens. */
  close(): void;
  /** Same as `close()`. */
  closeDB(): void;
  /** Where the tokens are: the file's path, PostgreSQL's `host:port/database`, or null. */
  readonly location: string | null;
  /** The same methods, returning Promises (`await storage.promises.getAccessToken(token)`). */
  readonly promises: PromiseTokenStore & { close(): Promise<void> };
}

export declare const storeAccessToken: TokenStore["storeAccessToken"];
export declare const storeAccessTokens: TokenStore["storeAccessTokens"];
export declare const getAccessToken: TokenStore["getAccessToken"];
export declare const storeAuthorizationCode: TokenStore["storeAuthorizationCode"];
export declare const consumeAuthorizationCode: TokenStore["consumeAuthorizationCode"];
export declare const getRefreshToken: TokenStore["getRefreshToken"];
export declare const revokeRefreshToken: TokenStore["revokeRefreshToken"];
export declare const deleteToken: TokenStore["deleteToken"];
export declare const deleteUserTokens: TokenStore["deleteUserTokens"];
export declare const cleanupExpiredTokens: TokenStore["cleanupExpiredTokens"];
export declare const cleanupExpiredTokensAsync: TokenStore["cleanupExpiredTokensAsync"];
export declare const getStats: TokenStore["getStats"];
export declare const backup: TokenStore["backup"];
export declare const rotateRefreshToken: TokenStore["rotateRefreshToken"];
export declare const storePendingAuthorization: TokenStore["storePendingAuthorization"];
export declare const consumePendingAuthorization: TokenStore["consumePendingAuthorization"];
/** Closes the default store's SQLite file; the next call reopens it. */
export declare function closeDB(): void;
/** The version of the SQLite library built into the addon, e.g. `"3.54.1"`. */
export declare function sqliteVersion(): string;
