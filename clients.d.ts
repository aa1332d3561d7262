// native-token-storage/clients: a persistent drop-in for a clientRegistry.js of Maps.
import type { ClientMetadata, ClientRegistration, RegisteredClient } from "./index";

/** RFC 7591 registration: a new client id (16 random bytes, hex) and secret (32, hex), returned once. */
export declare function registerClient(metadata: ClientMetadata): RegisteredClient;
/** The stored registration, without `client_secret` (only its digest is kept), or null. */
export declare function getClient(clientId: string | null | undefined): ClientRegistration | null;
/** Whether `clientSecret` is the client's secret, compared in constant time. */
export declare function verifyClient(clientId: string | null | undefined, clientSecret: string | null | undefined): boolean;
/** Registers or updates a client of known id and secret (call it at every start). Default redirect_uris: ["http://localhost:*", "https://*"]. */
export declare function preRegisterClient(clientId: string, clientSecret: string | null, metadata?: ClientMetadata): void;
/** Every registered client's id. */
export declare function getAllClients(): string[];
