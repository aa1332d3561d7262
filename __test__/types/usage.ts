// Uses every export of index.d.ts the way a TypeScript server would; compiled with
// `tsc --noEmit --strict` by __test__/types.test.js. Each `@ts-expect-error` line must
// fail to compile (tsc reports an unused one), which proves the types are precise.
import {
  storeAccessToken,
  storeAccessTokens,
  getAccessToken,
  storeAuthorizationCode,
  consumeAuthorizationCode,
  getRefreshToken,
  revokeRefreshToken,
  deleteToken,
  deleteUserTokens,
  cleanupExpiredTokens,
  cleanupExpiredTokensAsync,
  getStats,
  closeDB,
  backup,
  sqliteVersion,
  rotateRefreshToken,
  storePendingAuthorization,
  consumePendingAuthorization,
  TokenStorage,
  TokenStorageError,
} from "native-token-storage";
import * as clients from "native-token-storage/clients";
import * as promises from "native-token-storage/promises";
import { registerClient as registerClientAsync, TokenStorage as PromiseStorageClass } from "native-token-storage/promises";
import type { RegisteredClient as PromiseRegisteredClient, TokenStorage as PromiseStorage } from "native-token-storage/promises";
import type {
  ClientStore,
  PromiseTokenStore,
  AccessTokenRecord,
  GrantOptions,
  AccessTokenData,
  RefreshTokenData,
  AuthorizationCodeData,
  TokenStats,
  StorageKind,
  Seconds,
  TokenStorageOptions,
  TokenStorageErrorCode,
  TokenStore,
  RotatedTokens,
  MintedTokens,
  ClientMetadata,
  ClientRegistration,
  RegisteredClient,
  BackupOptions,
  BackupReport,
  RowCounts,
} from "native-token-storage";

// The module-level functions, with the arguments the old server passes.
const nothing: void = storeAccessToken("at", "rt", "sk-key", "user-1", "client-1", ["mcp"], new Date());
const grant: GrantOptions = { resource: "https://mcp.example/mcp", extra: { apiKey: "sk-up" } };
storeAccessToken("at", "rt", "sk-key", "user-1", "client-1", ["mcp"], new Date(), grant);
storeAuthorizationCode("c", null, "sk", "client", "https://a/cb", null, null, [], 60, grant);
const grantedExtra: Record<string, unknown> | undefined = getAccessToken("at")?.extra;
const grantedResource: string | undefined = consumeAuthorizationCode("c")?.resource;
void [grantedExtra, grantedResource];
// @ts-expect-error: extra is an object, not JSON text
storeAccessToken("at", "rt", "sk-key", "user-1", "client-1", ["mcp"], new Date(), { extra: "{}" });
storeAccessToken("at", null, "sk-key", null, "client-1", [], Date.now() + 3600_000);
storeAccessToken("at", undefined, "sk-key", undefined, "client-1");
storeAccessToken("at", "rt", "sk-key", "user-1", "client-1", ["mcp"], null);

// Many at once (a migration): the same fields by name; returns the count.
const records: AccessTokenRecord[] = [
  { accessToken: "a1", refreshToken: "r1", apiKey: "k", userId: "u", clientId: "c", scopes: ["mcp"], expiresAt: new Date() },
  { accessToken: "a2", apiKey: "k", clientId: "c" },
];
const stored: number = storeAccessTokens(records);
void stored;
// @ts-expect-error a record needs its apiKey
storeAccessTokens([{ accessToken: "a3", clientId: "c" }]);

const token: AccessTokenData | null = getAccessToken("at");
if (token) {
  const exp: number | null = token.expiresAt ? Math.floor(token.expiresAt.getTime() / 1000) : null;
  const scope: string = token.scopes.join(" ");
  const created: Date = token.createdAt;
  const user: string | null = token.userId;
  const refresh: string | null = token.refreshToken;
  void [exp, scope, created, user, refresh];
  // @ts-expect-error expiresAt is a Date or null, not a number
  const wrong: number = token.expiresAt;
  void wrong;
}
// @ts-expect-error the result may be null
getAccessToken("at").apiKey;
// @ts-expect-error a token is a string
getAccessToken(42);
getAccessToken(null);
getAccessToken(undefined);

storeAuthorizationCode("code", "user-1", "sk-key", "client-1", "https://app/cb", "challenge", "S256", ["mcp"]);
storeAuthorizationCode("code", null, "sk-key", "client-1", "https://app/cb", null, null, [], 60);
const ttl: Seconds = 600;
storeAuthorizationCode("code", "user-1", "sk-key", "client-1", "https://app/cb", "v", "plain", ["mcp"], ttl);
const codeData: AuthorizationCodeData | null = consumeAuthorizationCode("code", "verifier");
if (codeData) {
  const ms: number = codeData.expiresAt + codeData.createdAt;
  const redirect: string = codeData.redirectUri;
  const method: string | null = codeData.codeChallengeMethod;
  void [ms, redirect, method];
  // @ts-expect-error a code's expiresAt is epoch milliseconds, not a Date
  const asDate: Date = codeData.expiresAt;
  void asDate;
}
consumeAuthorizationCode(null, undefined);

const refreshData: RefreshTokenData | null = getRefreshToken("rt");
if (refreshData) {
  const created: Date = refreshData.createdAt;
  const at: string = refreshData.accessToken;
  void [created, at];
}
revokeRefreshToken("rt");
deleteToken("at");
deleteUserTokens("user-1");
deleteUserTokens(null);
const removed: number = cleanupExpiredTokens();
const removedBatched: number = cleanupExpiredTokens(100);
const pending: Promise<number> = cleanupExpiredTokensAsync(100);
const stats: TokenStats = getStats();
const total: number = stats.totalTokens + stats.uniqueUsers;
const kind: StorageKind = stats.storage;
closeDB();
const backupOptions: BackupOptions = { overwrite: true, batchSize: 500 };
const backedUp: BackupReport = backup("/var/backups/tokens.db", backupOptions);
const backedUpRows: RowCounts = backedUp.counts;
const backedUpTotal: number = backedUpRows.accessTokens + backedUpRows.retiredRefreshTokens + backedUp.bytes + backedUp.ms;
const backedUpPath: string = backup("tokens-copy.db").path;
// @ts-expect-error overwrite is a boolean
backup("tokens.db", { overwrite: "yes" });
void [backedUpTotal, backedUpPath];
const version: string = sqliteVersion();
void [nothing, removed, removedBatched, pending, total, kind, version];

// @ts-expect-error apiKey is a string
storeAccessToken("at", "rt", 42, "user-1", "client-1");
// @ts-expect-error scopes is an array of strings
storeAccessToken("at", "rt", "sk-key", "user-1", "client-1", "mcp");
// @ts-expect-error scopes holds strings only
storeAccessToken("at", "rt", "sk-key", "user-1", "client-1", [1]);
// @ts-expect-error expiresAt is a Date, epoch ms or null, not a string
storeAccessToken("at", "rt", "sk-key", "user-1", "client-1", [], "2030-01-01");
// @ts-expect-error clientId is required
storeAccessToken("at", "rt", "sk-key", "user-1");
// @ts-expect-error expiresIn is a number of seconds
storeAuthorizationCode("code", "u", "k", "c", "https://app/cb", null, null, [], "600");
// @ts-expect-error the functions are synchronous: no Promise to await into a number
const notAsync: Promise<number> = cleanupExpiredTokens();
// @ts-expect-error the async cleanup gives a Promise
const notSync: number = cleanupExpiredTokensAsync();
void [notAsync, notSync];

// Explicit stores.
const options: TokenStorageOptions = { storage: "db", path: "data/tokens.db", synchronous: "full", busyTimeout: 5000 };
const store = new TokenStorage(options);
const memory = new TokenStorage({ storage: "memory" });
const dflt = new TokenStorage();
const asInterface: TokenStore = store;
const where: string | null = store.path;
const which: StorageKind = memory.storage;
store.open();
asInterface.storeAccessToken("at", "rt", "sk-key", "user-1", "client-1", ["mcp"], new Date());
const fromStore: AccessTokenData | null = store.getAccessToken("at");
store.close();
store.closeDB();
dflt.close();
void [where, which, fromStore];
// @ts-expect-error storage is a string
new TokenStorage({ storage: 42 });
// @ts-expect-error busyTimeout is a number
new TokenStorage({ busyTimeout: "5s" });
// @ts-expect-error path is read-only
store.path = "/tmp/x.db";

// Errors.
try {
  getStats();
} catch (err) {
  const e = err as TokenStorageError;
  const code: TokenStorageErrorCode = e.code;
  if (code === "ERR_TOKEN_STORAGE_OPEN" || code === "ERR_TOKEN_STORAGE_NOT_A_DATABASE") {
    const message: string = e.message;
    void message;
  }
  // @ts-expect-error codes are a closed set
  const other: TokenStorageErrorCode = "ERR_SOMETHING_ELSE";
  void other;
  if (err instanceof TokenStorageError) {
    const narrowed: TokenStorageErrorCode = err.code;
    void narrowed;
  }
}
const made: Error = new TokenStorageError("x", "ERR_TOKEN_STORAGE_BUSY");
void made;

// The Promise API: the module's (native-token-storage/promises) and an instance's.
async function usePromises(): Promise<void> {
  const nothingYet: void = await promises.storeAccessToken("at", "rt", "sk-key", "user-1", "client-1", ["mcp"], new Date());
  const count: number = await promises.storeAccessTokens([{ accessToken: "a", apiKey: "k", clientId: "c" }]);
  const found: AccessTokenData | null = await promises.getAccessToken("at");
  await promises.storeAuthorizationCode("code", "user-1", "sk-key", "client-1", "https://app/cb", null, null, []);
  const exchanged: AuthorizationCodeData | null = await promises.consumeAuthorizationCode("code", "verifier");
  const refreshed: RefreshTokenData | null = await promises.getRefreshToken("rt");
  await promises.revokeRefreshToken("rt");
  await promises.deleteToken("at");
  await promises.deleteUserTokens("user-1");
  const cleaned: number = await promises.cleanupExpiredTokens();
  const counted: TokenStats = await promises.getStats();
  const backedUpAsync: BackupReport = await promises.backup("/var/backups/tokens.db", null);
  void backedUpAsync;
  await promises.closeDB();
  const mine = new promises.TokenStorage({ storage: "memory" });
  const viaInstance: PromiseTokenStore = mine.promises;
  const again: AccessTokenData | null = await viaInstance.getAccessToken("at");
  await mine.promises.close();
  const failed: boolean = (await promises.getStats().catch((e: unknown) => e instanceof promises.TokenStorageError)) === true;
  void [nothingYet, count, found, exchanged, refreshed, cleaned, counted, again, failed];
  // @ts-expect-error a Promise, not the record
  const notAwaited: AccessTokenData | null = promises.getAccessToken("at");
  void notAwaited;
}
void usePromises;

// The rest of the OAuth state: rotation, pending authorizations, clients.
function useOAuthState(): void {
  const rotated: RotatedTokens | null = rotateRefreshToken("rt", "at-2", "rt-2", new Date());
  const again: RotatedTokens | null = rotateRefreshToken("rt", "at-3", "rt-3");
  const mint = (grant: RefreshTokenData): MintedTokens => ({
    accessToken: `jwt.${grant.userId}.${grant.clientId}.${grant.scopes.join(" ")}`,
    refreshToken: "rt-4",
    expiresAt: Date.now() + 3600e3,
  });
  const minted: RotatedTokens | null = rotateRefreshToken("rt", mint);
  const refused: RotatedTokens | null = rotateRefreshToken("rt", () => null);
  // @ts-expect-error the synchronous form takes no async mint
  rotateRefreshToken("rt", async () => ({ accessToken: "a", refreshToken: "b" }));
  const fromAsyncMint: Promise<RotatedTokens | null> = new TokenStorage().promises.rotateRefreshToken("rt", async (g) => ({ accessToken: g.clientId, refreshToken: "r" }));
  void [minted, refused, fromAsyncMint];
  storePendingAuthorization("state", { codeVerifier: "v", redirectUri: "https://app/cb" }, 600);
  const pending = consumePendingAuthorization<{ codeVerifier: string }>("state");
  const verifier: string | undefined = pending?.codeVerifier;
  const store = new TokenStorage({ storage: "memory", refreshGracePeriod: 0 });
  const metadata: ClientMetadata = { redirect_uris: ["https://app/cb"], client_name: "App" };
  const registered: RegisteredClient = store.registerClient(metadata);
  const secret: string = registered.client_secret;
  const stored: ClientRegistration | null = store.getClient(registered.client_id);
  const ok: boolean = store.verifyClient(registered.client_id, secret);
  store.preRegisterClient("static", "secret", { redirect_uris: ["https://*"] });
  const ids: string[] = store.getAllClients();
  const where: string | null = store.location;
  const viaModule: RegisteredClient = clients.registerClient({});
  clients.preRegisterClient("static", null);
  const known: boolean = clients.verifyClient(viaModule.client_id, viaModule.client_secret);
  const all: string[] = clients.getAllClients();
  const one: ClientRegistration | null = clients.getClient("static");
  void [rotated, again, verifier, stored, ok, ids, where, known, all, one];
  // @ts-expect-error redirect_uris is an array of strings
  store.registerClient({ redirect_uris: "https://app/cb" });
}
void useOAuthState;

// native-token-storage/promises has every name of the other two modules (its declarations
// are made from index.d.ts's), the types too; /clients's are ClientStore's.
async function usePromiseModuleNames(): Promise<void> {
  const registered: PromiseRegisteredClient = await registerClientAsync({});
  const ok: boolean = await promises.verifyClient(registered.client_id, registered.client_secret);
  const ids: string[] = await promises.getAllClients();
  const cleaned: number = await promises.cleanupExpiredTokensAsync();
  const version: string = promises.sqliteVersion();
  const storage: PromiseStorage = new PromiseStorageClass({ storage: "memory" });
  const viaClients: ClientStore["getClient"] = clients.getClient;
  void [ok, ids, cleaned, version, storage, viaClients];
  // @ts-expect-error a Promise of a boolean, not a boolean
  const notAwaited: boolean = promises.verifyClient("id", "secret");
  void notAwaited;
}
void usePromiseModuleNames;
