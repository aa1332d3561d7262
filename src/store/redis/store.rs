//! The `TokenStore` operations of the Redis store: each one command (a read of one key) or
//! one script (see `scripts`: the keys and why every write is a script), run by `call`.

use std::sync::atomic::Ordering;

use super::conn::Args;
use super::resp::Reply;
use super::rows::{access, client, code, code_json, count, hash, packed, score};
use super::scripts::{self as s, Script};
use crate::store::cache::{digest, Lookup};
use super::RedisStore;
use crate::error::{Result, StoreError};
use crate::model::{
    is_expired, AccessToken, AuthorizationCode, ClientRecord, NewAccessToken, RefreshToken,
    RotateRequest, Rotated, Rotation, Stats,
};
use crate::store::TokenStore;

impl RedisStore {
    /// The key `name` under the store's prefix.
    pub(super) fn key(&self, name: &str, id: &str) -> Vec<u8> {
        let p = &self.settings.prefix;
        let mut k = Vec::with_capacity(p.len() + name.len() + id.len());
        k.extend_from_slice(p.as_bytes());
        k.extend_from_slice(name.as_bytes());
        k.extend_from_slice(id.as_bytes());
        k
    }

    pub(super) fn args(&self) -> Args {
        Args::new(&self.settings.prefix)
    }

    /// Runs a script; `read` as for `call`.
    pub(super) fn script(&self, read: bool, script: &Script, args: &Args) -> Result<Reply> {
        self.call(read, |c| c.eval(script, &args.0))
    }

    /// The access token's hash, read in one command, and the server that answered
    /// (`Conn::server`).
    fn read_access(&self, token: &str) -> Result<(Option<AccessToken>, u64)> {
        #[cfg(test)]
        self.hot.server_reads.fetch_add(1, Ordering::Relaxed);
        let key = self.key("at:", token);
        let mut server = 0;
        let reply = self.call(true, |c| {
            server = c.server;
            c.command(&[b"HGETALL", key.as_slice()])
        })?;
        Ok((access(&hash(reply))?, server))
    }

    /// Removes an access token that a read found expired, unless it was stored again
    /// since. The read's answer does not depend on it: a failure is left for the TTL.
    fn remove_if_expired(&self, token: &str, now: i64) {
        let mut a = self.args();
        a.push(token).push(now.to_string());
        let _ = self.script(false, &s::REMOVE_IF_EXPIRED, &a);
        self.hot.cache.invalidate(Some(digest(token)));
    }

    /// This store wrote (or may have written) access tokens: the cache answers again once
    /// the invalidations of the write are in (see `store::cache`).
    pub(super) fn written(&self) {
        self.hot.cache.barrier();
    }

    /// A token read from the server (never the cache), and the server; an expired one is
    /// removed.
    fn read_live(&self, token: &str, now: i64) -> Result<(Option<AccessToken>, u64)> {
        match self.read_access(token)? {
            (Some(t), server) if is_expired(t.expires_at, now) => {
                self.remove_if_expired(token, now);
                Ok((None, server))
            }
            found => Ok(found),
        }
    }
}

impl TokenStore for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn location(&self) -> Option<String> {
        self.target().ok().map(|(t, _)| t.shown.clone())
    }

    fn open(&self) -> Result<bool> {
        self.call(true, |c| c.command(&[b"PING"]))?;
        self.check_durability();
        Ok(self.opened.swap(false, Ordering::AcqRel))
    }

    fn take_warnings(&self) -> Vec<crate::store::Warning> {
        self.warnings
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }

    /// Closes every kept connection and the cache's feed; the next call connects again.
    fn close(&self) -> Result<()> {
        self.hot.stop();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let kept = std::mem::take(&mut *self.idle.lock().map_err(|_| StoreError::Poisoned)?);
        drop(kept);
        Ok(())
    }

    /// One script: every token in order, all in one atomic step.
    fn store_access_tokens(&self, tokens: &[NewAccessToken], now: i64) -> Result<()> {
        let mut a = self.args();
        for t in tokens {
            a.push(packed(t, now));
        }
        let done = self.script(false, &s::STORE_TOKENS, &a).map(|_| ());
        self.written();
        done
    }

    /// From the cache while it is trusted (see `tracking`), else `HGETALL` of its key; an
    /// expired one (by `now`, whether or not Redis removed it yet) is never served, and is
    /// removed.
    fn get_access_token(&self, token: &str, now: i64) -> Result<Option<AccessToken>> {
        self.ensure_feed();
        let ticket = match self.hot.cache.lookup(token, now) {
            Lookup::Hit(t) => return Ok(Some(t)),
            Lookup::Miss(ticket) => ticket,
        };
        let (found, server) = self.read_live(token, now)?;
        // Kept only if read on the feed's server (a primary): not from a server a failover
        // left behind, which the feed's invalidations do not speak for.
        let feed = self.hot.server.load(Ordering::Acquire);
        if let (Some(t), Some(ticket)) = (&found, ticket) {
            if super::same_server(server, feed) {
                self.hot.cache.fill(ticket, token, t);
            }
        }
        Ok(found)
    }

    /// Read from the server, never from the cache: only the sealed layer reads this (as
    /// PostgreSQL's).
    fn get_access_token_linked(&self, token: &str, now: i64) -> Result<Option<AccessToken>> {
        Ok(self.read_live(token, now)?.0)
    }

    /// The same lookup as `get_access_token`'s first step: a hit only while the cache is
    /// trusted; anything else goes to the server.
    fn get_access_token_at_hand(&self, token: &str, now: i64) -> Option<Option<String>> {
        match self.hot.cache.lookup(token, now) {
            Lookup::Hit(t) => Some(Some(crate::wire::access_token(&t))),
            Lookup::Miss(_) => None,
        }
    }

    fn store_authorization_code(&self, c: &str, data: &AuthorizationCode) -> Result<()> {
        let mut a = self.args();
        a.push(c)
            .opt(data.user_id.as_deref())
            .push(code_json(data))
            .push(data.expires_at.to_string())
            .push(data.created_at.to_string());
        self.script(false, &s::STORE_CODE, &a).map(|_| ())
    }

    /// One script reads and removes it: of any number of concurrent takes, on any number
    /// of hosts, one gets it. Never retried: its outcome may be unknown.
    fn take_authorization_code(&self, c: &str, now: i64) -> Result<Option<AuthorizationCode>> {
        let mut a = self.args();
        a.push(c);
        let taken = match self.script(false, &s::TAKE_CODE, &a)?.text() {
            Some(text) => code(&text)?,
            None => return Ok(None),
        };
        Ok(Some(taken).filter(|d| !is_expired(Some(d.expires_at), now)))
    }

    fn get_refresh_token(&self, refresh_token: &str, now: i64) -> Result<Option<RefreshToken>> {
        let mut a = self.args();
        a.push(refresh_token);
        let mut items = self.script(true, &s::GET_REFRESH, &a)?.items().into_iter();
        let (Some(token), Some(fields)) = (items.next().and_then(Reply::text), items.next())
        else {
            return Ok(None);
        };
        let Some(t) = access(&hash(fields))? else {
            return Ok(None);
        };
        if t.refresh_token.as_deref() != Some(refresh_token) {
            return Ok(None);
        }
        if is_expired(t.expires_at, now) {
            self.remove_if_expired(&token, now);
            return Ok(None);
        }
        Ok(Some(RefreshToken {
            user_id: t.user_id,
            client_id: t.client_id,
            scopes: t.scopes,
            access_token: token,
            created_at: t.created_at,
            links: t.links,
        }))
    }

    fn revoke_refresh_token(&self, refresh_token: &str) -> Result<()> {
        let mut a = self.args();
        a.push(refresh_token);
        let done = self.script(false, &s::REVOKE_REFRESH, &a).map(|_| ());
        self.written();
        done
    }

    fn delete_token(&self, token: &str) -> Result<()> {
        let mut a = self.args();
        a.push(token);
        let done = self.script(false, &s::DELETE_TOKEN, &a).map(|_| ());
        // It removes this token's hash (and its refresh token's key) only.
        self.hot.cache.invalidate(Some(digest(token)));
        done
    }

    fn delete_user_tokens(&self, user_id: &str) -> Result<u64> {
        if user_id.is_empty() {
            return Ok(0);
        }
        let mut a = self.args();
        a.push(user_id);
        let done = self.script(false, &s::DELETE_USER, &a);
        self.written();
        done?
            .int()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or(StoreError::Internal("delete_user_tokens gave no count"))
    }

    /// Expired tokens first, then codes, then pending authorizations, by their sorted sets
    /// (entries of keys Redis already removed count too, as the other stores count rows);
    /// then the retired refresh tokens whose family has no live token left.
    fn cleanup_expired(&self, now: i64, limit: usize) -> Result<usize> {
        let mut a = self.args();
        a.push(now.to_string()).push(limit.to_string());
        let removed = self.script(false, &s::CLEANUP, &a);
        // The tokens expired at `now` (which another clock may not think expired).
        self.written();
        let removed = removed?;
        Ok(removed.int().and_then(|n| usize::try_from(n).ok()).unwrap_or(0))
    }

    /// Each script call is a round trip; other writers are not blocked between them.
    fn cleanup_slice(&self) -> std::time::Duration {
        std::time::Duration::from_millis(100)
    }

    fn rotate_refresh_token(&self, req: &RotateRequest, now: i64) -> Result<Rotation> {
        let mut a = self.args();
        a.push(&req.refresh_token)
            .push(&req.new_access_token)
            .push(&req.new_refresh_token)
            .opt(req.expires_at.map(|e| e.to_string()))
            .push(now.to_string())
            .push(req.grace_ms.to_string())
            .opt(req.links.as_deref());
        let done = self.script(false, &s::ROTATE, &a);
        // The old access token, or the whole family (a reuse).
        self.written();
        let items = done?.items();
        let mut items = items.into_iter();
        let what = items.next().and_then(Reply::text).unwrap_or_default();
        match what.as_str() {
            "rotated" => {
                let mut next = || items.next().and_then(Reply::text);
                let api_key = next().ok_or(StoreError::Internal("a rotation gave no API key"))?;
                let user_id = next();
                let client_id = next().ok_or(StoreError::Internal("a rotation gave no client"))?;
                let scopes = next().ok_or(StoreError::Internal("a rotation gave no scopes"))?;
                let scopes = serde_json::from_str(&scopes)
                    .map_err(|_| StoreError::Internal("a Redis token record's scopes are not JSON"))?;
                Ok(Rotation::Rotated(Rotated {
                    user_id,
                    client_id,
                    scopes,
                    api_key,
                    access_token: req.new_access_token.clone(),
                    refresh_token: req.new_refresh_token.clone(),
                }))
            }
            "grace" => Ok(Rotation::Reused {
                within_grace: true,
                revoked: 0,
            }),
            "reused" => Ok(Rotation::Reused {
                within_grace: false,
                revoked: items
                    .next()
                    .and_then(|r| r.int())
                    .and_then(|n| usize::try_from(n).ok())
                    .unwrap_or(0),
            }),
            _ => Ok(Rotation::Unknown),
        }
    }

    fn put_client(&self, c: &ClientRecord) -> Result<()> {
        let mut a = self.args();
        a.push(&c.client_id)
            .opt(c.secret_digest.as_deref())
            .push(&c.metadata)
            .push(c.created_at.to_string());
        self.script(false, &s::PUT_CLIENT, &a).map(|_| ())
    }

    fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        let key = self.key("cl:", client_id);
        let reply = self.call(true, |c| c.command(&[b"HGETALL", key.as_slice()]))?;
        client(client_id, &hash(reply))
    }

    fn client_ids(&self) -> Result<Vec<String>> {
        let key = self.key("clients", "");
        let reply = self.call(true, |c| c.command(&[b"ZRANGE", key.as_slice(), b"0", b"-1"]))?;
        Ok(reply.items().into_iter().filter_map(Reply::text).collect())
    }

    fn store_pending_authorization(
        &self,
        state: &str,
        data: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<()> {
        let mut a = self.args();
        a.push(state)
            .push(data)
            .push(expires_at.to_string())
            .push(now.to_string());
        self.script(false, &s::STORE_PENDING, &a).map(|_| ())
    }

    fn take_pending_authorization(&self, state: &str, now: i64) -> Result<Option<String>> {
        let mut a = self.args();
        a.push(state);
        let mut items = self.script(false, &s::TAKE_PENDING, &a)?.items().into_iter();
        let Some(data) = items.next().and_then(Reply::text) else {
            return Ok(None);
        };
        let expires = items.next().and_then(Reply::text).and_then(|e| score(&e));
        Ok((!is_expired(expires, now)).then_some(data))
    }

    /// Two `ZCOUNT`s in one script: O(log n) each, however many tokens expire at once.
    fn stats(&self, now: i64) -> Result<Stats> {
        let mut a = self.args();
        a.push(now.to_string());
        let items = self.script(true, &s::STATS, &a)?.items();
        Ok(Stats {
            total_tokens: count(&items, 0),
            unique_users: count(&items, 1),
        })
    }

    fn seal_mark(&self) -> Result<(Option<String>, bool)> {
        let items = self.script(true, &s::SEAL_MARK, &self.args())?.items();
        let mut items = items.into_iter();
        let mark = items.next().and_then(Reply::text);
        let holds = items.next().and_then(|h| h.int()) == Some(1);
        Ok((mark, holds))
    }

    /// Keeps `NewAccessToken::links` in each token's hash (`l`).
    fn seals_tokens(&self) -> bool {
        true
    }

    fn set_seal_mark(&self, old: Option<&str>, new: &str, only_if_empty: bool) -> Result<bool> {
        let mut a = self.args();
        a.opt(old)
            .push(new)
            .push(if only_if_empty { "1" } else { "0" });
        let done = self.script(false, &s::SET_SEAL_MARK, &a)?;
        Ok(done.int() == Some(1))
    }
}
