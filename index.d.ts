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
}

export interface TokenStats {
  /** Live (unexpired) access tokens. */
  totalTokens: number;
  /** Distinct non-null user ids among live access tokens. */
  uniqueUsers: number;
  /** Which store answered. */
  storage: StorageKind;
}

export type StorageKind = "memory" | "sqlite" | "postgres";

/** Seconds from now, as in `storeAuthorizationCode(..., expiresIn)`. */
export type Seconds = number;

export interface TokenStorageOptions {
  /** `"memory"` (default), `"db"` / `"sqlite"` for a SQLite file, `"postgres"` / `"postgresql"` / `"pg"` for PostgreSQL. Case-insensitive. */
  storage?: "memory" | "db" | "sqlite" | "postgres" | "postgresql" | "pg" | (string & {});
  /** The SQLite file; relative paths resolve against the working directory. Default `data/tokens.db`. */
  path?: string;
  /** `"normal"` (default; WAL keeps the file consistent, a power loss may undo the last commits) or `"full"`. */
  synchronous?: "normal" | "full";
  /** How long a write waits for another process's lock, in milliseconds. Default 5000. */
  busyTimeout?: number;
  /** PostgreSQL: the connection string, URL (`postgres://user:password@host:5432/db?sslmode=require`) or key-value form. Required for `storage: "postgres"`. */
  url?: string;
  /** PostgreSQL: the schema that holds the tables, created if missing. Default `"public"`. */
  schema?: string;
  /** PostgreSQL: how long connecting may take, in milliseconds. Default 5000. */
  connectTimeout?: number;
  /** PostgreSQL: how long one call may take, round trips and lock waits included, in milliseconds. Default 5000. */
  queryTimeout?: number;
  /** PostgreSQL: how many connections the store keeps at most (1 to 100). Default 4. */
  poolSize?: number;
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

/** The functions shared by the module and by each `TokenStorage`. */
export interface TokenStore {
  storeAccessToken(
    accessToken: string,
    refreshToken: string | null | undefined,
    apiKey: string,
    userId: string | null | undefined,
    clientId: string,
    scopes?: string[],
    expiresAt?: Date | number | null,
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
}

/**
 * The functions of `TokenStore`, each returning a Promise: the work is done on a thread of
 * libuv's pool, with the same results and errors (a bad argument rejects with a TypeError).
 */
export type PromiseTokenStore = {
  [K in Exclude<keyof TokenStore, "cleanupExpiredTokensAsync">]: (
    ...args: Parameters<TokenStore[K]>
  ) => Promise<ReturnType<TokenStore[K]>>;
} & {
  /** Closes the store (as `close()`); the next call reopens it. */
  closeDB(): Promise<void>;
};

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
  storeAccessToken: TokenStore["storeAccessToken"];
  storeAccessTokens: TokenStore["storeAccessTokens"];
  getAccessToken: TokenStore["getAccessToken"];
  storeAuthorizationCode: TokenStore["storeAuthorizationCode"];
  consumeAuthorizationCode: TokenStore["consumeAuthorizationCode"];
  getRefreshToken: TokenStore["getRefreshToken"];
  revokeRefreshToken: TokenStore["revokeRefreshToken"];
  deleteToken: TokenStore["deleteToken"];
  deleteUserTokens: TokenStore["deleteUserTokens"];
  cleanupExpiredTokens: TokenStore["cleanupExpiredTokens"];
  cleanupExpiredTokensAsync: TokenStore["cleanupExpiredTokensAsync"];
  getStats: TokenStore["getStats"];
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
/** Closes the default store's SQLite file; the next call reopens it. */
export declare function closeDB(): void;
/** The version of the SQLite library built into the addon, e.g. `"3.54.1"`. */
export declare function sqliteVersion(): string;
