// Type definitions for native-token-storage/promises: the module's functions, each
// returning a Promise, the work done off the JavaScript thread.
import type { PromiseTokenStore } from "./index";

export { TokenStorage, TokenStorageError } from "./index";
export type * from "./index";

export declare const storeAccessToken: PromiseTokenStore["storeAccessToken"];
export declare const storeAccessTokens: PromiseTokenStore["storeAccessTokens"];
export declare const getAccessToken: PromiseTokenStore["getAccessToken"];
export declare const storeAuthorizationCode: PromiseTokenStore["storeAuthorizationCode"];
export declare const consumeAuthorizationCode: PromiseTokenStore["consumeAuthorizationCode"];
export declare const getRefreshToken: PromiseTokenStore["getRefreshToken"];
export declare const revokeRefreshToken: PromiseTokenStore["revokeRefreshToken"];
export declare const deleteToken: PromiseTokenStore["deleteToken"];
export declare const deleteUserTokens: PromiseTokenStore["deleteUserTokens"];
export declare const cleanupExpiredTokens: PromiseTokenStore["cleanupExpiredTokens"];
export declare const getStats: PromiseTokenStore["getStats"];
export declare const rotateRefreshToken: PromiseTokenStore["rotateRefreshToken"];
export declare const storePendingAuthorization: PromiseTokenStore["storePendingAuthorization"];
export declare const consumePendingAuthorization: PromiseTokenStore["consumePendingAuthorization"];
export declare const registerClient: PromiseTokenStore["registerClient"];
export declare const getClient: PromiseTokenStore["getClient"];
export declare const verifyClient: PromiseTokenStore["verifyClient"];
export declare const preRegisterClient: PromiseTokenStore["preRegisterClient"];
export declare const getAllClients: PromiseTokenStore["getAllClients"];
export declare const closeDB: PromiseTokenStore["closeDB"];
