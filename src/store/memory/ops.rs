//! The store operations on the memory store's tables (see `TokenStore` for what each
//! promises).

use std::hash::BuildHasher;

use super::errors::{full, too_long};
use super::tables::{Slot, Tables, NEVER, NONE};
use super::huge;
use super::text::Text;
use crate::error::Result;
use crate::model::{
    is_expired, AccessToken, AuthorizationCode, ClientRecord, NewAccessToken, RefreshToken,
    RotateRequest, Rotation, Stats,
};
use crate::wire::{self, AccessTokenRef};

impl Tables {
    pub(super) fn store_access_token(&mut self, t: &NewAccessToken, now: i64) -> Result<()> {
        if let Some(old) = self.find_token(&t.token) {
            self.remove_slot(old);
        }
        let refresh = t.refresh_token.as_deref().unwrap_or_default();
        if let Some(prev) = (!refresh.is_empty())
            .then(|| self.find_refresh(refresh))
            .flatten()
        {
            // A refresh token string re-used for a new token leaves the old one.
            self.unlink_refresh(prev);
            if let Some(p) = self.slots.get_mut(prev as usize).and_then(Option::as_mut) {
                p.text = Text::new(&[p.token()]);
                p.links_len = 0;
            }
        }
        if !refresh.is_empty() {
            // A new grant: the refresh string starts a family of its own.
            self.set_family(refresh, None);
        }
        let token_len = u32::try_from(t.token.len()).map_err(|_| too_long())?;
        let links = t.links.as_deref().unwrap_or_default();
        let links_len = u32::try_from(links.len()).map_err(|_| too_long())?;
        let text = Text::new(&[&t.token, refresh, links]);
        let user_id = t.user_id.as_deref().map(|u| self.intern_user(u));
        let slot = Slot {
            text,
            token_len,
            links_len,
            api_key: self.intern(&t.api_key),
            user_id,
            grant: self.intern_grant(&t.client_id, &t.scopes),
            expires_at: t.expires_at.unwrap_or(NEVER),
            created_at: now,
            more: (t.resource.is_some() || t.extra.is_some())
                .then(|| Box::new((t.resource.clone(), t.extra.clone()))),
            user_prev: NONE,
            user_next: NONE,
        };
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                let capacity = self.slots.capacity();
                self.slots.push(None);
                if self.slots.capacity() != capacity {
                    huge::advise_vec(&self.slots);
                }
                u32::try_from(self.slots.len() - 1).map_err(|_| full())?
            }
        };
        let token_hash = self.hasher.hash_one(slot.token());
        let refresh_hash = slot.refresh().map(|r| self.hasher.hash_one(r));
        if slot.expires_at != NEVER {
            self.expiry.insert((slot.expires_at, i));
            self.token_expiry.add(slot.expires_at);
        }
        match self.slots.get_mut(i as usize) {
            Some(place) => *place = Some(slot),
            None => self.slots.push(Some(slot)), // `i` was just taken or pushed: never
        }
        self.link_user(i);
        let (hasher, slots) = (&self.hasher, &self.slots);
        let slot_at = |j: &u32| slots.get(*j as usize).and_then(Option::as_ref);
        self.by_token.insert_unique(token_hash, i, |j| {
            slot_at(j).map_or(0, |s| hasher.hash_one(s.token()))
        });
        if let Some(hash) = refresh_hash {
            self.by_refresh.insert_unique(hash, i, |j| {
                slot_at(j)
                    .and_then(Slot::refresh)
                    .map_or(0, |r| hasher.hash_one(r))
            });
        }
        Ok(())
    }

    pub(super) fn get_access_token(
        &mut self,
        token: &str,
        now: i64,
    ) -> Result<Option<AccessToken>> {
        let Some(i) = self.find_token(token) else {
            return Ok(None);
        };
        Ok(self.live(i, now).map(Self::access_token))
    }

    /// `get_access_token` written straight from the slot (see `TokenStore::get_access_token_text`).
    pub(super) fn get_access_token_text(
        &mut self,
        token: &str,
        now: i64,
    ) -> Result<Option<String>> {
        let Some(i) = self.find_token(token) else {
            return Ok(None);
        };
        Ok(self
            .live(i, now)
            .map(|s| wire::access_token_of(Self::access_token_ref(s))))
    }

    /// `write` of the live token's fields and links, lent from its slot (see
    /// `TokenStore::with_access_token_linked`).
    pub(super) fn with_access_token_linked(
        &mut self,
        token: &str,
        now: i64,
        write: &mut dyn FnMut(AccessTokenRef<'_>) -> Result<String>,
    ) -> Result<Option<String>> {
        let Some(i) = self.find_token(token) else {
            return Ok(None);
        };
        self.live(i, now)
            .map(|s| write(Self::access_token_ref(s)))
            .transpose()
    }

    pub(super) fn store_authorization_code(
        &mut self,
        code: &str,
        data: &AuthorizationCode,
    ) -> Result<()> {
        self.codes.insert(code.into(), data.clone());
        Ok(())
    }

    pub(super) fn take_authorization_code(
        &mut self,
        code: &str,
        now: i64,
    ) -> Result<Option<AuthorizationCode>> {
        Ok(self
            .codes
            .remove(code)
            .filter(|c| !is_expired(Some(c.expires_at), now)))
    }

    pub(super) fn get_refresh_token(
        &mut self,
        refresh_token: &str,
        now: i64,
    ) -> Result<Option<RefreshToken>> {
        let Some(i) = self.find_refresh(refresh_token) else {
            return Ok(None);
        };
        Ok(self.live(i, now).map(|s| RefreshToken {
            user_id: s.user_id.as_deref().map(str::to_owned),
            client_id: s.grant.client_id.clone(),
            scopes: s.grant.scopes.clone(),
            access_token: s.token().to_owned(),
            created_at: s.created_at,
            links: s.links().map(str::to_owned),
        }))
    }

    pub(super) fn revoke_refresh_token(&mut self, refresh_token: &str) -> Result<()> {
        if let Some(i) = self.find_refresh(refresh_token) {
            self.remove_slot(i);
        }
        Ok(())
    }

    pub(super) fn delete_token(&mut self, token: &str) -> Result<()> {
        if let Some(i) = self.find_token(token) {
            self.remove_slot(i);
        }
        Ok(())
    }

    pub(super) fn delete_user_tokens(&mut self, user_id: &str) -> Result<u64> {
        let slots = self.user_slots(user_id);
        let removed = slots.len() as u64;
        for i in slots {
            self.remove_slot(i);
        }
        self.codes
            .retain(|_, c| c.user_id.as_deref() != Some(user_id));
        Ok(removed)
    }

    pub(super) fn cleanup_expired(&mut self, now: i64, limit: usize) -> Result<usize> {
        let mut removed = 0;
        while removed < limit {
            match self.expiry.first() {
                Some(&(t, i)) if t <= now => self.remove_slot(i),
                _ => break,
            }
            removed += 1;
        }
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
        if removed < limit {
            let expired: Vec<Box<str>> = self
                .pending
                .iter()
                .filter(|(_, (_, at))| is_expired(Some(*at), now))
                .map(|(k, _)| k.clone())
                .take(limit - removed)
                .collect();
            for k in expired {
                self.pending.remove(&k);
                removed += 1;
            }
        }
        if removed < limit {
            self.prune_families();
        }
        Ok(removed)
    }

    /// Puts `refresh` in `family` (`None`: no family but its own).
    pub(super) fn set_family(&mut self, refresh: &str, family: Option<&str>) {
        if let Some(old) = self.families.remove(refresh) {
            if let Some(set) = self.members.get_mut(&old) {
                set.remove(refresh);
                if set.is_empty() {
                    self.members.remove(&old);
                }
            }
        }
        if let Some(f) = family {
            self.families.insert(refresh.into(), f.into());
            self.members
                .entry(f.into())
                .or_default()
                .insert(refresh.into());
        }
    }

    /// The family of a live refresh token: the one a rotation gave it, else its own.
    fn family_of(&self, refresh: &str) -> Box<str> {
        self.families
            .get(refresh)
            .cloned()
            .unwrap_or_else(|| refresh.into())
    }

    /// Forgets family entries of refresh tokens that are gone, and rotated-away tokens
    /// whose family has no live token left (a replay of one could revoke nothing).
    fn prune_families(&mut self) {
        let gone: Vec<Box<str>> = self
            .families
            .keys()
            .filter(|r| self.find_refresh(r).is_none())
            .cloned()
            .collect();
        for r in gone {
            self.set_family(&r, None);
        }
        let members = &self.members;
        self.retired
            .retain(|_, (family, _)| members.contains_key(family));
    }

    pub(super) fn rotate_refresh_token(
        &mut self,
        req: &RotateRequest,
        now: i64,
    ) -> Result<Rotation> {
        if let Some(i) = self.find_refresh(&req.refresh_token) {
            let Some(old) = self.live(i, now).map(Self::access_token) else {
                return Ok(Rotation::Unknown);
            };
            let family = self.family_of(&req.refresh_token);
            let new = req.successor(&old);
            self.check_room(std::slice::from_ref(&new))?;
            self.remove_slot(i);
            self.set_family(&req.refresh_token, None);
            self.retired
                .insert(req.refresh_token.as_str().into(), (family.clone(), now));
            self.store_access_token(&new, now)?;
            self.set_family(&req.new_refresh_token, Some(&family));
            return Ok(req.rotated(old));
        }
        let Some((family, at)) = self.retired.get(req.refresh_token.as_str()).cloned() else {
            return Ok(Rotation::Unknown);
        };
        if now - at < req.grace_ms {
            return Ok(Rotation::Reused {
                within_grace: true,
                revoked: 0,
            });
        }
        let members: Vec<Box<str>> = self
            .members
            .get(&family)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default();
        let mut revoked = 0;
        for m in members {
            if let Some(i) = self.find_refresh(&m) {
                self.remove_slot(i);
                revoked += 1;
            }
            self.set_family(&m, None);
        }
        Ok(Rotation::Reused {
            within_grace: false,
            revoked,
        })
    }

    pub(super) fn put_client(&mut self, client: &ClientRecord) -> Result<()> {
        let seq = match self.clients.get(client.client_id.as_str()) {
            Some((seq, _)) => *seq,
            None => {
                self.client_seq += 1;
                self.client_seq
            }
        };
        self.clients
            .insert(client.client_id.as_str().into(), (seq, client.clone()));
        Ok(())
    }

    pub(super) fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        Ok(self.clients.get(client_id).map(|(_, c)| c.clone()))
    }

    pub(super) fn client_ids(&self) -> Result<Vec<String>> {
        let mut all: Vec<(u64, String)> = self
            .clients
            .values()
            .map(|(seq, c)| (*seq, c.client_id.clone()))
            .collect();
        all.sort_unstable();
        Ok(all.into_iter().map(|(_, id)| id).collect())
    }

    pub(super) fn store_pending_authorization(
        &mut self,
        state: &str,
        data: &str,
        expires_at: i64,
    ) -> Result<()> {
        self.pending
            .insert(state.into(), (data.to_owned(), expires_at));
        Ok(())
    }

    pub(super) fn take_pending_authorization(
        &mut self,
        state: &str,
        now: i64,
    ) -> Result<Option<String>> {
        Ok(self
            .pending
            .remove(state)
            .filter(|(_, at)| !is_expired(Some(*at), now))
            .map(|(data, _)| data))
    }

    pub(super) fn stats(&mut self, now: i64) -> Result<Stats> {
        // Expired tokens not yet removed are left out, not removed (as the SQLite store
        // does), by the histograms: the cost does not grow with the number of tokens,
        // expired or not, nor with how many expire at the same moment.
        Ok(Stats {
            total_tokens: (self.by_token.len() as u64).saturating_sub(self.token_expiry.upto(now)),
            unique_users: (self.users.len() as u64).saturating_sub(self.user_expiry.upto(now)),
        })
    }
}
