// Type definitions for native-token-storage/promises: every function of the package's other
// two modules (index.js and clients.js), each returning a Promise, the work done off the
// JavaScript thread. Made from the declarations of index.d.ts (`PromiseTokenStore`), so an
// operation is declared once, there.
import type * as Index from "./index";

declare const promises: Index.PromiseTokenStore & {
  TokenStorage: typeof Index.TokenStorage;
  TokenStorageError: typeof Index.TokenStorageError;
  sqliteVersion: typeof Index.sqliteVersion;
};

/** The types of native-token-storage, also importable from here. */
declare namespace promises {
  export type AccessTokenRecord = Index.AccessTokenRecord;
  export type AccessTokenData = Index.AccessTokenData;
  export type RefreshTokenData = Index.RefreshTokenData;
  export type AuthorizationCodeData = Index.AuthorizationCodeData;
  export type TokenStats = Index.TokenStats;
  export type StorageKind = Index.StorageKind;
  export type Seconds = Index.Seconds;
  export type TokenStorageOptions = Index.TokenStorageOptions;
  export type TokenStorageErrorCode = Index.TokenStorageErrorCode;
  export type TokenStorageError = Index.TokenStorageError;
  export type ClientStore = Index.ClientStore;
  export type TokenStore = Index.TokenStore;
  export type MintedTokens = Index.MintedTokens;
  export type RotatedTokens = Index.RotatedTokens;
  export type ClientMetadata = Index.ClientMetadata;
  export type ClientRegistration = Index.ClientRegistration;
  export type RegisteredClient = Index.RegisteredClient;
  export type PromiseTokenStore = Index.PromiseTokenStore;
  export type TokenStorage = Index.TokenStorage;
}

export = promises;
