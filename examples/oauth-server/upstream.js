"use strict";
// A stub of OpenRouter's OAuth PKCE key exchange, so that the example runs offline.
//
//   GET  /auth?callback_url=…&code_challenge=…&code_challenge_method=S256
//        stands for OpenRouter's login page: the "user" logs in at once and is sent back to
//        callback_url with ?code=…
//   POST /api/v1/auth/keys   { code, code_verifier, code_challenge_method }  →  { key, user_id }
//        exchanges that code (once, PKCE checked) for the user's API key.
const crypto = require("node:crypto");
const express = require("express");
const { listen, withParams } = require("./net");

const CODE_TTL_MS = 5 * 60 * 1000;

function createUpstreamApp() {
  const codes = new Map(); // code → { userId, challenge, method, expiresAt }
  const app = express();
  app.disable("x-powered-by");
  app.use(express.json());

  app.get("/auth", (req, res) => {
    const { callback_url: callbackUrl, code_challenge: challenge, code_challenge_method: method = "plain" } = req.query;
    if (typeof callbackUrl !== "string" || !URL.canParse(callbackUrl)) {
      return res.status(400).json({ error: "callback_url is required" });
    }
    const code = crypto.randomBytes(16).toString("hex");
    const userId = `user_${crypto.randomBytes(4).toString("hex")}`;
    codes.set(code, { userId, challenge, method, expiresAt: Date.now() + CODE_TTL_MS });
    res.redirect(302, withParams(callbackUrl, { code }));
  });

  app.post("/api/v1/auth/keys", (req, res) => {
    const { code, code_verifier: verifier } = req.body || {};
    const entry = typeof code === "string" ? codes.get(code) : undefined;
    codes.delete(code);
    if (!entry || entry.expiresAt < Date.now()) return res.status(403).json({ error: "invalid code" });
    if (entry.challenge) {
      const expected = entry.method === "S256" && typeof verifier === "string"
        ? crypto.createHash("sha256").update(verifier).digest("base64url")
        : verifier;
      if (expected !== entry.challenge) return res.status(403).json({ error: "invalid code_verifier" });
    }
    res.json({ key: `sk-or-v1-${crypto.randomBytes(32).toString("hex")}`, user_id: entry.userId });
  });

  return app;
}

/** Starts the stub on 127.0.0.1 (ephemeral port unless given); resolves the listening http.Server. */
function startUpstream({ port = 0 } = {}) {
  return listen(createUpstreamApp(), { port });
}

module.exports = { createUpstreamApp, startUpstream };
