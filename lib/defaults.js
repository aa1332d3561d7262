"use strict";
// Every default of the package, in one place: what an argument or a setting is when the
// caller leaves it out. The operations (lib/operations.js), the configuration
// (lib/config.js, lib/default-store.js) and the store (lib/storage.js) read them from here.
//
// The native store has no defaults of its own: lib/config.js passes it every setting,
// filled from here when it was left out (src/napi/config.rs refuses a configuration that
// lacks one).

module.exports = Object.freeze({
  // ---- Arguments of the operations ----
  /** `cleanupExpiredTokens(batchSize)`: rows removed per transaction, so no single step holds the lock for long. */
  CLEANUP_BATCH_SIZE: 1000,
  /** `cleanupExpiredTokensAsync(batchSize)` (and `promises.cleanupExpiredTokens`): a writer in another thread or process waits at most one batch. */
  BACKGROUND_CLEANUP_BATCH_SIZE: 2000,
  /** The automatic cleanup's batches: each one a short transaction. */
  AUTO_CLEANUP_BATCH_SIZE: 500,
  /** Rows per transaction of a backup or copy's target. */
  COPY_BATCH_SIZE: 1000,
  /** `storeAuthorizationCode(…, expiresIn)`: seconds a code lives (also when null). */
  CODE_LIFETIME_SECONDS: 600,
  /** `storePendingAuthorization(…, ttlSeconds)`: seconds a pending authorization lives (also when null). */
  PENDING_LIFETIME_SECONDS: 600,

  // ---- Settings (options of `new TokenStorage`, or the environment) ----
  /** `storage` unset or "": the memory store. */
  STORAGE: "memory",
  /** `synchronous` unset or "": SQLite's synchronous=NORMAL (WAL). */
  SYNCHRONOUS: "normal",
  /** `path` unset: this file under the working directory (or beside the main script, see lib/config.js). */
  DB_FILE: "data/tokens.db",
  /** `busyTimeout` unset: milliseconds a SQLite write waits for another connection's lock before ERR_TOKEN_STORAGE_BUSY. */
  BUSY_TIMEOUT_MS: 5000,
  /** `schema` unset: PostgreSQL's default schema. */
  SCHEMA: "public",
  /** `prefix` unset (TOKEN_REDIS_PREFIX): put before every key of a Redis store, so that one Redis holds several stores. */
  REDIS_PREFIX: "nts:",
  /** `connectTimeout` unset: milliseconds opening a PostgreSQL connection may take before ERR_TOKEN_STORAGE_UNAVAILABLE. */
  CONNECT_TIMEOUT_MS: 5000,
  /** `queryTimeout` unset: milliseconds one call to a PostgreSQL store may take, round trips and lock waits included. */
  QUERY_TIMEOUT_MS: 5000,
  /** `poolSize` unset: connections a PostgreSQL store keeps at most (calls on the JS thread use one; Promise calls run on libuv's four threads). */
  POOL_SIZE: 4,
  /** `refreshGracePeriod` unset: seconds after a rotation during which the old refresh token, presented again, is taken for a retry (refused, nothing revoked) rather than a replay. */
  REFRESH_GRACE_SECONDS: 10,
  /** `cleanupInterval` unset: expired rows are removed in the background every this many seconds. */
  CLEANUP_INTERVAL_SECONDS: 60,
  /** TOKEN_MEMORY_SCOPE unset: one memory store per loaded copy of the package. */
  MEMORY_SCOPE: "module",

  // ---- The client registry (RFC 7591 defaults of the server's clientRegistry.js) ----
  /** A registration's metadata when the client gives none; every given field is kept as given. */
  CLIENT_METADATA: Object.freeze({
    grant_types: Object.freeze(["authorization_code"]),
    response_types: Object.freeze(["code"]),
    scope: "mcp:read mcp:write",
    token_endpoint_auth_method: "client_secret_basic",
    application_type: "web",
  }),
  /** `registerClient`'s redirect URIs when none are given. */
  REGISTERED_REDIRECT_URIS: Object.freeze([]),
  /** `preRegisterClient`'s (and MCP_CLIENT_ID's client's) redirect URIs when none are given. */
  PRE_REGISTERED_REDIRECT_URIS: Object.freeze(["http://localhost:*", "https://*"]),
});
