"use strict";
// rotateRefreshToken(refreshToken, mint): the refresh grant for a server whose new access
// token is built from the grant (a JWT that carries the user, client and scopes), so the new
// tokens cannot be made before the grant is read. The steps, written once as a generator that
// yields each store call (and the call of `mint`) to the sync or the Promise runner of
// TokenStorage:
//
// 1. Read the grant. Not live (unknown, expired, rotated away): the store still sees the
//    token presented, through a rotation that cannot succeed, so that a rotated-away token
//    replayed after the grace period revokes its grant as `rotateRefreshToken` always does.
//    Reading first with getRefreshToken alone would refuse the replay without the store
//    ever knowing of it.
// 2. `mint(grant)` makes the new tokens. It throws, or answers null: nothing has changed.
// 3. Rotate atomically. Of concurrent refreshes of one token, every one may have read the
//    grant and minted, but exactly one rotation wins; the others get null (within the grace
//    period) as with the four-argument form.

const crypto = require("node:crypto");
const args = require("./args");

/** What the generator yields for the call of `mint` (the store calls are operation names). */
const MINT = Symbol("mint");
const FN = "rotateRefreshToken";

/** A string no client holds: the new pair of a rotation that is only there to be refused. */
const unguessable = () => `nts-unused-${crypto.randomBytes(24).toString("base64url")}`;

function* mintedRotation(given) {
  const [refreshToken, mint, ...rest] = given;
  // The module's functions pass their defaults on (`expiresAt = null`): null is no argument.
  if (rest.some((a) => a !== undefined && a !== null)) {
    throw new TypeError(`${FN}: with a mint function give no other arguments: the new tokens and their expiry come from mint`);
  }
  const key = args.lookupKey(FN, "refreshToken", refreshToken);
  if (key === null) return null;
  const grant = yield ["getRefreshToken", [key]];
  if (grant === null) {
    const refused = yield ["rotateRefreshToken", [key, unguessable(), unguessable()]];
    // Only a token stored again under the same string between the two calls gets here.
    if (refused !== null) yield ["revokeRefreshToken", [refused.refreshToken]];
    return null;
  }
  const minted = yield [MINT, { mint, grant }];
  if (minted === null || minted === undefined) return null;
  if (typeof minted !== "object") {
    throw new TypeError(`${FN}: mint must return { accessToken, refreshToken, expiresAt } or null, not ${typeof minted}`);
  }
  const { accessToken, refreshToken: nextRefreshToken, expiresAt = null } = minted;
  for (const [name, value] of [["accessToken", accessToken], ["refreshToken", nextRefreshToken]]) {
    if (typeof value !== "string" || value === "") {
      throw new TypeError(`${FN}: the ${name} that mint returned must be a non-empty string`);
    }
  }
  return yield ["rotateRefreshToken", [key, accessToken, nextRefreshToken, expiresAt]];
}

module.exports = { mintedRotation, MINT };
