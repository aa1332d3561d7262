"use strict";
// native-token-storage/clients: a persistent drop-in for a server's utils/clientRegistry.js
// (RFC 7591 dynamic client registration kept in a Map). Same synchronous functions and
// shapes, stored with the tokens (the default store: TOKEN_STORAGE, TOKEN_DB_PATH,
// TOKEN_DATABASE_URL), so every instance knows every client, also after a restart.
// Secrets are stored as SHA-256 digests: getClient returns the registration without
// `client_secret`; check a secret with verifyClient.

const { defaultStore: store } = require("./lib/default-store");

function registerClient(metadata) {
  return store().registerClient(metadata);
}

function getClient(clientId) {
  return store().getClient(clientId);
}

function verifyClient(clientId, clientSecret) {
  return store().verifyClient(clientId, clientSecret);
}

function preRegisterClient(clientId, clientSecret, metadata = {}) {
  return store().preRegisterClient(clientId, clientSecret, metadata);
}

function getAllClients() {
  return store().getAllClients();
}

// Listed by name, so that Node finds them for `import { … } from` in ES modules.
module.exports = {
  registerClient,
  getClient,
  verifyClient,
  preRegisterClient,
  getAllClients,
};
