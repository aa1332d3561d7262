//! The in-process memory store: hash maps plus an expiry index, lost when the process ends.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::{validate_authorization_code, validate_new_access_token, TokenStore};
use crate::error::Result;
use crate::model::{
    is_expired, AccessToken, AuthorizationCode, NewAccessToken, RefreshToken, Stats,
};

struct AccessEntry {
    api_key: Box<str>,
    user_id: Option<Box<str>>,
    client_id: Box<str>,
    scopes: Box<[String]>,
    refresh_token: Option<Box<str>>,
    expires_at: Option<i64>,
    created_at: i64,
}

/// A refresh token shares user, client and scopes with its access token, stored once.
struct RefreshEntry {
    access_token: Arc<str>,
    created_at: i64,
}

#[derive(Default)]
pub struct MemoryStore {
    access: HashMap<Arc<str>, AccessEntry>,
    refresh: HashMap<Box<str>, RefreshEntry>,
    codes: HashMap<Box<str>, AuthorizationCode>,
    /// Access tokens that expire, by expiry: cleanup and stats touch only expired ones.
    expiry: BTreeSet<(i64, Arc<str>)>,
    /// Live access tokens per user id, for `uniqueUsers`.
    users: HashMap<Box<str>, u32>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes an access token, its expiry entry, its user count and its refresh token.
    fn remove_access(&mut self, token: &str) -> Option<AccessEntry> {
        let (key, entry) = self.access.remove_entry(token)?;
        if let Some(t) = entry.expires_at {
            self.expiry.remove(&(t, key.clone()));
        }
        if let Some(user) = entry.user_id.as_deref() {
            if let Some(n) = self.users.get_mut(user) {
                *n -= 1;
                if *n == 0 {
                    self.users.remove(user);
                }
            }
        }
        if let Some(rt) = entry.refresh_token.as_deref() {
            // Only the refresh token that still points at this access token goes.
            if self
                .refresh
                .get(rt)
                .is_some_and(|r| *r.access_token == *key)
            {
                self.refresh.remove(rt);
            }
        }
        Some(entry)
    }

    /// Removes expired access tokens, at most `limit`; returns how many.
    fn purge_expired_access(&mut self, now: i64, limit: usize) -> usize {
        let mut removed = 0;
        while removed < limit {
            let Some((t, key)) = self.expiry.first().cloned() else {
                break;
            };
            if t > now {
                break;
            }
            self.remove_access(&key);
            removed += 1;
        }
        removed
    }

    /// The access token entry if it is live; an expired one is removed.
    fn live_access(&mut self, token: &str, now: i64) -> Option<&AccessEntry> {
        let expired = is_expired(self.access.get(token)?.expires_at, now);
        if expired {
            self.remove_access(token);
            return None;
        }
        self.access.get(token)
    }
}

impl TokenStore for MemoryStore {
    fn store_access_token(&mut self, t: NewAccessToken, now: i64) -> Result<()> {
        validate_new_access_token(&t)?;
        self.remove_access(&t.token);
        let key: Arc<str> = Arc::from(t.token);
        let refresh_token = t.refresh_token.filter(|r| !r.is_empty());
        if let Some(rt) = refresh_token.as_deref() {
            // A refresh token string re-used for a new access token leaves the old one.
            if let Some(old) = self.refresh.remove(rt) {
                if let Some(prev) = self.access.get_mut(&old.access_token) {
                    prev.refresh_token = None;
                }
            }
            self.refresh.insert(
                rt.into(),
                RefreshEntry {
                    access_token: key.clone(),
                    created_at: now,
                },
            );
        }
        if let Some(exp) = t.expires_at {
            self.expiry.insert((exp, key.clone()));
        }
        if let Some(user) = t.user_id.as_deref() {
            *self.users.entry(user.into()).or_insert(0) += 1;
        }
        self.access.insert(
            key,
            AccessEntry {
                api_key: t.api_key.into(),
                user_id: t.user_id.map(Into::into),
                client_id: t.client_id.into(),
                scopes: t.scopes.into(),
                refresh_token: refresh_token.map(Into::into),
                expires_at: t.expires_at,
                created_at: now,
            },
        );
        Ok(())
    }

    fn get_access_token(&mut self, token: &str, now: i64) -> Result<Option<AccessToken>> {
        Ok(self.live_access(token, now).map(|e| AccessToken {
            api_key: e.api_key.to_string(),
            user_id: e.user_id.as_deref().map(str::to_owned),
            client_id: e.client_id.to_string(),
            scopes: e.scopes.to_vec(),
            refresh_token: e.refresh_token.as_deref().map(str::to_owned),
            expires_at: e.expires_at,
            created_at: e.created_at,
        }))
    }

    fn store_authorization_code(&mut self, code: &str, data: AuthorizationCode) -> Result<()> {
        validate_authorization_code(code, &data)?;
        self.codes.insert(code.into(), data);
        Ok(())
    }

    fn take_authorization_code(
        &mut self,
        code: &str,
        now: i64,
    ) -> Result<Option<AuthorizationCode>> {
        Ok(self
            .codes
            .remove(code)
            .filter(|c| !is_expired(Some(c.expires_at), now)))
    }

    fn get_refresh_token(&mut self, refresh_token: &str, now: i64) -> Result<Option<RefreshToken>> {
        let Some(r) = self.refresh.get(refresh_token) else {
            return Ok(None);
        };
        let (access_token, created_at) = (r.access_token.clone(), r.created_at);
        Ok(self.live_access(&access_token, now).map(|e| RefreshToken {
            user_id: e.user_id.as_deref().map(str::to_owned),
            client_id: e.client_id.to_string(),
            scopes: e.scopes.to_vec(),
            access_token: access_token.to_string(),
            created_at,
        }))
    }

    fn revoke_refresh_token(&mut self, refresh_token: &str) -> Result<()> {
        if let Some(r) = self.refresh.remove(refresh_token) {
            self.remove_access(&r.access_token);
        }
        Ok(())
    }

    fn delete_token(&mut self, token: &str) -> Result<()> {
        self.remove_access(token);
        Ok(())
    }

    fn delete_user_tokens(&mut self, user_id: &str) -> Result<()> {
        if self.users.contains_key(user_id) {
            let tokens: Vec<Arc<str>> = self
                .access
                .iter()
                .filter(|(_, e)| e.user_id.as_deref() == Some(user_id))
                .map(|(k, _)| k.clone())
                .collect();
            for t in tokens {
                self.remove_access(&t);
            }
        }
        self.codes
            .retain(|_, c| c.user_id.as_deref() != Some(user_id));
        Ok(())
    }

    fn cleanup_expired(&mut self, now: i64, limit: usize) -> Result<usize> {
        let mut removed = self.purge_expired_access(now, limit);
        if removed < limit {
            let expired: Vec<Box<str>> = self
                .codes
                .iter()
                .filter(|(_, c)| is_expired(Some(c.expires_at), now))
                .map(|(k, _)| k.clone())
                .take(limit - removed)
                .collect();
            for k in expired {
                self.codes.remove(&k);
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn stats(&mut self, now: i64) -> Result<Stats> {
        // Expired tokens not yet removed are left out, not removed (as the SQLite store
        // does): the cost is the number of expired tokens, nothing when cleanup keeps up.
        let mut expired = 0u64;
        let mut expired_per_user: HashMap<&str, u32> = HashMap::new();
        for (_, key) in self.expiry.range(..(now.saturating_add(1), Arc::from(""))) {
            expired += 1;
            if let Some(user) = self.access.get(key).and_then(|e| e.user_id.as_deref()) {
                *expired_per_user.entry(user).or_insert(0) += 1;
            }
        }
        let users_gone = expired_per_user
            .iter()
            .filter(|(user, n)| self.users.get(**user) == Some(*n))
            .count() as u64;
        Ok(Stats {
            total_tokens: self.access.len() as u64 - expired,
            unique_users: self.users.len() as u64 - users_gone,
        })
    }
}
