"use strict";
// native-token-storage/clients: a persistent drop-in for a server's utils/clientRegistry.js
// (RFC 7591 dynamic client registration kept in a Map). Same synchronous functions and
// shapes, stored with the tokens (the default store: TOKEN_STORAGE, TOKEN_DB_PATH,
// TOKEN_DATABASE_URL), so every instance knows every client, also after a restart.
// Secrets are stored as SHA-256 digests: getClient returns the registration without
// `client_secret`; check a secret with verifyClient.

const { defaultStore: store } = require("./lib/default-store");

module.exports = {
  registerClient: (metadata) => store().registerClient(metadata),
  getClient: (clientId) => store().getClient(clientId),
  verifyClient: (clientId, clientSecret) => store().verifyClient(clientId, clientSecret),
  preRegisterClient: (clientId, clientSecret, metadata = {}) => store().preRegisterClient(clientId, clientSecret, metadata),
  getAllClients: () => store().getAllClients(),
};
