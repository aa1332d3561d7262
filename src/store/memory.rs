//! The in-process memory store, lost when the process ends.
//!
//! Laid out for a million tokens: each token is one slot in a slab, its token and refresh
//! token in one allocation; the two look-up tables hold only slot numbers; API keys, user
//! ids and (client id, scopes) pairs are shared between the tokens that have the same one
//! (a user's tokens all carry that user's key). About 300 bytes a token, where a JS `Map`
//! of objects takes more than twice that.

use std::collections::{btree_map, BTreeMap, BTreeSet, HashMap, HashSet as StdHashSet};
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashSet, HashTable};

use std::sync::{Mutex, MutexGuard};

use super::buckets::MEMORY_LEVEL_BITS;
use super::TokenStore;
use crate::error::{Result, StoreError};
use crate::model::{
    is_expired, AccessToken, AuthorizationCode, ClientRecord, NewAccessToken, RefreshToken,
    RotateRequest, Rotation, Stats,
};

/// `expires_at` of a token that never expires.
const NEVER: i64 = i64::MAX;
/// "No slot" in the per-user lists.
const NONE: u32 = u32::MAX;

struct Slot {
    /// The access token and the refresh token (may be empty), end to end.
    text: Box<str>,
    token_len: u32,
    api_key: Arc<str>,
    user_id: Option<Arc<str>>,
    /// Client id and scopes, shared by every token issued with the same pair.
    grant: Arc<Grant>,
    expires_at: i64,
    created_at: i64,
    /// The neighbours in the list of the user's tokens (`NONE` at either end).
    user_prev: u32,
    user_next: u32,
}

/// A user's tokens: how many, when the last one expires, and the head of their list.
struct UserEntry {
    tokens: u32,
    /// Tokens that never expire.
    nevers: u32,
    /// The latest expiry among the tokens that expire (`i64::MIN` if none do).
    max_finite: i64,
    head: u32,
}

impl UserEntry {
    /// When the user's last token expires: `NEVER` while one never does.
    fn until(&self) -> i64 {
        if self.nevers > 0 {
            NEVER
        } else {
            self.max_finite
        }
    }
}

/// How many tokens (or users) expire in each bucket of time, at each level of
/// `MEMORY_LEVEL_BITS`, so that stats can leave out the expired ones without visiting them.
#[derive(Default)]
struct Histogram {
    levels: [BTreeMap<i64, u32>; 4],
}

impl Histogram {
    fn add(&mut self, at: i64) {
        if at == NEVER {
            return;
        }
        for (map, bits) in self.levels.iter_mut().zip(MEMORY_LEVEL_BITS) {
            *map.entry(at >> bits).or_insert(0) += 1;
        }
    }

    fn sub(&mut self, at: i64) {
        if at == NEVER {
            return;
        }
        for (map, bits) in self.levels.iter_mut().zip(MEMORY_LEVEL_BITS) {
            if let btree_map::Entry::Occupied(mut e) = map.entry(at >> bits) {
                *e.get_mut() -= 1;
                if *e.get() == 0 {
                    e.remove();
                }
            }
        }
    }

    /// How many expire at or before `now`: the 17-minute buckets before now's, then at each
    /// finer level the buckets of the coarser bucket that holds `now`, before now's own,
    /// and at the last level (1 ms) now's own too.
    fn upto(&self, now: i64) -> u64 {
        let mut total = 0u64;
        let mut first = i64::MIN;
        for (i, (map, bits)) in self.levels.iter().zip(MEMORY_LEVEL_BITS).enumerate() {
            let own = now >> bits;
            let range = if bits == 0 {
                map.range(first..=own)
            } else {
                map.range(first..own)
            };
            total += range.map(|(_, &n)| u64::from(n)).sum::<u64>();
            if let Some(finer) = MEMORY_LEVEL_BITS.get(i + 1) {
                first = own << (bits - finer);
            }
        }
        total
    }
}

#[derive(PartialEq, Eq, Hash)]
struct Grant {
    client_id: String,
    scopes: Vec<String>,
}

impl Slot {
    fn token(&self) -> &str {
        self.text.get(..self.token_len as usize).unwrap_or_default()
    }
    fn refresh(&self) -> Option<&str> {
        let r = self.text.get(self.token_len as usize..).unwrap_or_default();
        (!r.is_empty()).then_some(r)
    }
    fn api_key(&self) -> &str {
        &self.api_key
    }
    fn expiry(&self) -> Option<i64> {
        (self.expires_at != NEVER).then_some(self.expires_at)
    }
}

fn too_long() -> StoreError {
    StoreError::InvalidArgument("a token longer than 4 GiB cannot be stored".into())
}

fn full() -> StoreError {
    StoreError::InvalidArgument("the memory store holds at most 2^32 - 1 tokens".into())
}

/// The store's tables, behind `MemoryStore`'s lock.
#[derive(Default)]
struct Tables {
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    by_token: HashTable<u32>,
    by_refresh: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// Tokens that expire, by expiry: cleanup and stats touch only expired ones.
    expiry: BTreeSet<(i64, u32)>,
    /// Tokens by expiry bucket, and users by the bucket of their last token's expiry.
    token_expiry: Histogram,
    user_expiry: Histogram,
    /// Tokens per user id; its keys are the user ids the slots share.
    users: HashMap<Arc<str>, UserEntry>,
    /// Shared API keys.
    strings: HashSet<Arc<str>>,
    grants: HashSet<Arc<Grant>>,
    codes: HashMap<Box<str>, AuthorizationCode>,
    /// The family of each refresh token a rotation issued (one issued by storeAccessToken
    /// is its own family's first), and each family's members.
    families: HashMap<Box<str>, Box<str>>,
    members: HashMap<Box<str>, StdHashSet<Box<str>>>,
    /// Refresh tokens rotated away: their family and when.
    retired: HashMap<Box<str>, (Box<str>, i64)>,
    /// Clients by id, with the order they were first registered in.
    clients: HashMap<Box<str>, (u64, ClientRecord)>,
    client_seq: u64,
    pending: HashMap<Box<str>, (String, i64)>,
}

impl Tables {
    fn slot(&self, i: u32) -> Option<&Slot> {
        self.slots.get(i as usize).and_then(Option::as_ref)
    }

    fn find_token(&self, token: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(token);
        let slots = &self.slots;
        self.by_token
            .find(hash, |&i| {
                slots
                    .get(i as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|s| s.token() == token)
            })
            .copied()
    }

    fn find_refresh(&self, refresh: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(refresh);
        let slots = &self.slots;
        self.by_refresh
            .find(hash, |&i| {
                slots
                    .get(i as usize)
                    .and_then(Option::as_ref)
                    .and_then(Slot::refresh)
                    .is_some_and(|r| r == refresh)
            })
            .copied()
    }

    /// Removes the refresh token of slot `i` from the refresh table (the slot keeps it).
    fn unlink_refresh(&mut self, i: u32) {
        let Some(refresh) = self.slot(i).and_then(Slot::refresh) else {
            return;
        };
        let hash = self.hasher.hash_one(refresh);
        if let Ok(entry) = self.by_refresh.find_entry(hash, |&j| j == i) {
            entry.remove();
        }
    }

    /// Removes the token in slot `i`, its refresh token, its expiry entry and user count.
    fn remove_slot(&mut self, i: u32) {
        self.unlink_refresh(i);
        self.unlink_user(i);
        let Some(slot) = self.slots.get_mut(i as usize).and_then(Option::take) else {
            return;
        };
        let hash = self.hasher.hash_one(slot.token());
        if let Ok(entry) = self.by_token.find_entry(hash, |&j| j == i) {
            entry.remove();
        }
        if slot.expires_at != NEVER {
            self.expiry.remove(&(slot.expires_at, i));
            self.token_expiry.sub(slot.expires_at);
        }
        // A shared value this slot held the last use of (the set holds the other) goes.
        if Arc::strong_count(&slot.api_key) == 2 {
            self.strings.remove(&slot.api_key);
        }
        if Arc::strong_count(&slot.grant) == 2 {
            self.grants.remove(&slot.grant);
        }
        self.free.push(i);
    }

    /// Puts slot `i` (in place) at the head of its user's list and counts it.
    fn link_user(&mut self, i: u32) {
        let Some(slot) = self.slot(i) else {
            return;
        };
        let Some(user) = slot.user_id.clone() else {
            return;
        };
        let at = slot.expires_at;
        let entry = self.users.entry(user).or_insert(UserEntry {
            tokens: 0,
            nevers: 0,
            max_finite: i64::MIN,
            head: NONE,
        });
        let old = (entry.tokens > 0).then(|| entry.until());
        entry.tokens += 1;
        if at == NEVER {
            entry.nevers += 1;
        } else {
            entry.max_finite = entry.max_finite.max(at);
        }
        let next = std::mem::replace(&mut entry.head, i);
        let new = entry.until();
        if let Some(s) = self.slots.get_mut(i as usize).and_then(Option::as_mut) {
            s.user_prev = NONE;
            s.user_next = next;
        }
        if let Some(s) = self.slots.get_mut(next as usize).and_then(Option::as_mut) {
            s.user_prev = i;
        }
        if old != Some(new) {
            if let Some(old) = old {
                self.user_expiry.sub(old);
            }
            self.user_expiry.add(new);
        }
    }

    /// Takes slot `i` (still in place) out of its user's list and counts. When it held the
    /// user's latest expiry, the next latest is found by walking the user's list.
    fn unlink_user(&mut self, i: u32) {
        let Some(slot) = self.slot(i) else {
            return;
        };
        let Some(user) = slot.user_id.clone() else {
            return;
        };
        let (at, prev, next) = (slot.expires_at, slot.user_prev, slot.user_next);
        if let Some(s) = self.slots.get_mut(prev as usize).and_then(Option::as_mut) {
            s.user_next = next;
        }
        if let Some(s) = self.slots.get_mut(next as usize).and_then(Option::as_mut) {
            s.user_prev = prev;
        }
        let Some(entry) = self.users.get_mut(&user) else {
            return;
        };
        if entry.head == i {
            entry.head = next;
        }
        let old = entry.until();
        entry.tokens -= 1;
        if entry.tokens == 0 {
            self.users.remove(&user);
            self.user_expiry.sub(old);
            return;
        }
        if at == NEVER {
            entry.nevers -= 1;
        } else if at == entry.max_finite {
            let mut latest = i64::MIN;
            let mut j = entry.head;
            while let Some(s) = self.slots.get(j as usize).and_then(Option::as_ref) {
                if s.expires_at != NEVER {
                    latest = latest.max(s.expires_at);
                }
                j = s.user_next;
            }
            entry.max_finite = latest;
        }
        let new = entry.until();
        if new != old {
            self.user_expiry.sub(old);
            self.user_expiry.add(new);
        }
    }

    /// The slots of a user's tokens.
    fn user_slots(&self, user_id: &str) -> Vec<u32> {
        let mut out = Vec::new();
        let mut j = self.users.get(user_id).map_or(NONE, |e| e.head);
        while let Some(s) = self.slot(j) {
            out.push(j);
            j = s.user_next;
        }
        out
    }

    /// The slot of a live token; an expired one is removed.
    fn live(&mut self, i: u32, now: i64) -> Option<&Slot> {
        if is_expired(self.slot(i)?.expiry(), now) {
            self.remove_slot(i);
            return None;
        }
        self.slot(i)
    }

    /// Checks that `tokens` fit, before any is stored (all or none).
    fn check_room(&self, tokens: &[NewAccessToken]) -> Result<()> {
        if tokens.iter().any(|t| u32::try_from(t.token.len()).is_err()) {
            return Err(too_long());
        }
        if self.slots.len() + tokens.len().saturating_sub(self.free.len()) > NONE as usize {
            return Err(full());
        }
        Ok(())
    }

    fn intern(&mut self, value: &str) -> Arc<str> {
        if let Some(c) = self.strings.get(value) {
            return c.clone();
        }
        let c: Arc<str> = value.into();
        self.strings.insert(c.clone());
        c
    }

    fn intern_grant(&mut self, client_id: &str, scopes: &[String]) -> Arc<Grant> {
        let grant = Grant {
            client_id: client_id.to_owned(),
            scopes: scopes.to_vec(),
        };
        if let Some(g) = self.grants.get(&grant) {
            return g.clone();
        }
        let g = Arc::new(grant);
        self.grants.insert(g.clone());
        g
    }

    fn intern_user(&mut self, user: &str) -> Arc<str> {
        match self.users.get_key_value(user) {
            Some((u, _)) => u.clone(),
            None => user.into(),
        }
    }

    fn access_token(s: &Slot) -> AccessToken {
        AccessToken {
            api_key: s.api_key().to_owned(),
            user_id: s.user_id.as_deref().map(str::to_owned),
            client_id: s.grant.client_id.clone(),
            scopes: s.grant.scopes.clone(),
            refresh_token: s.refresh().map(str::to_owned),
            expires_at: s.expiry(),
            created_at: s.created_at,
        }
    }
}

/// The operations (see `TokenStore` for what each promises).
impl Tables {
    fn store_access_token(&mut self, t: &NewAccessToken, now: i64) -> Result<()> {
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
                p.text = p.token().into();
            }
        }
        if !refresh.is_empty() {
            // A new grant: the refresh string starts a family of its own.
            self.set_family(refresh, None);
        }
        let token_len = u32::try_from(t.token.len()).map_err(|_| too_long())?;
        let mut text = String::with_capacity(t.token.len() + refresh.len());
        text.push_str(&t.token);
        text.push_str(refresh);
        let user_id = t.user_id.as_deref().map(|u| self.intern_user(u));
        let slot = Slot {
            text: text.into(),
            token_len,
            api_key: self.intern(&t.api_key),
            user_id,
            grant: self.intern_grant(&t.client_id, &t.scopes),
            expires_at: t.expires_at.unwrap_or(NEVER),
            created_at: now,
            user_prev: NONE,
            user_next: NONE,
        };
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
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

    fn get_access_token(&mut self, token: &str, now: i64) -> Result<Option<AccessToken>> {
        let Some(i) = self.find_token(token) else {
            return Ok(None);
        };
        Ok(self.live(i, now).map(Self::access_token))
    }

    fn store_authorization_code(&mut self, code: &str, data: &AuthorizationCode) -> Result<()> {
        self.codes.insert(code.into(), data.clone());
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
        let Some(i) = self.find_refresh(refresh_token) else {
            return Ok(None);
        };
        Ok(self.live(i, now).map(|s| RefreshToken {
            user_id: s.user_id.as_deref().map(str::to_owned),
            client_id: s.grant.client_id.clone(),
            scopes: s.grant.scopes.clone(),
            access_token: s.token().to_owned(),
            created_at: s.created_at,
        }))
    }

    fn revoke_refresh_token(&mut self, refresh_token: &str) -> Result<()> {
        if let Some(i) = self.find_refresh(refresh_token) {
            self.remove_slot(i);
        }
        Ok(())
    }

    fn delete_token(&mut self, token: &str) -> Result<()> {
        if let Some(i) = self.find_token(token) {
            self.remove_slot(i);
        }
        Ok(())
    }

    fn delete_user_tokens(&mut self, user_id: &str) -> Result<()> {
        for i in self.user_slots(user_id) {
            self.remove_slot(i);
        }
        self.codes
            .retain(|_, c| c.user_id.as_deref() != Some(user_id));
        Ok(())
    }

    fn cleanup_expired(&mut self, now: i64, limit: usize) -> Result<usize> {
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
    fn set_family(&mut self, refresh: &str, family: Option<&str>) {
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

    fn rotate_refresh_token(&mut self, req: &RotateRequest, now: i64) -> Result<Rotation> {
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

    fn put_client(&mut self, client: &ClientRecord) -> Result<()> {
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

    fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        Ok(self.clients.get(client_id).map(|(_, c)| c.clone()))
    }

    fn client_ids(&self) -> Result<Vec<String>> {
        let mut all: Vec<(u64, String)> = self
            .clients
            .values()
            .map(|(seq, c)| (*seq, c.client_id.clone()))
            .collect();
        all.sort_unstable();
        Ok(all.into_iter().map(|(_, id)| id).collect())
    }

    fn store_pending_authorization(
        &mut self,
        state: &str,
        data: &str,
        expires_at: i64,
    ) -> Result<()> {
        self.pending
            .insert(state.into(), (data.to_owned(), expires_at));
        Ok(())
    }

    fn take_pending_authorization(&mut self, state: &str, now: i64) -> Result<Option<String>> {
        Ok(self
            .pending
            .remove(state)
            .filter(|(_, at)| !is_expired(Some(*at), now))
            .map(|(data, _)| data))
    }

    fn stats(&mut self, now: i64) -> Result<Stats> {
        // Expired tokens not yet removed are left out, not removed (as the SQLite store
        // does), by the histograms: the cost does not grow with the number of tokens,
        // expired or not, nor with how many expire at the same moment.
        Ok(Stats {
            total_tokens: (self.by_token.len() as u64).saturating_sub(self.token_expiry.upto(now)),
            unique_users: (self.users.len() as u64).saturating_sub(self.user_expiry.upto(now)),
        })
    }
}

/// The in-process memory store: its tables behind one lock.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn tables(&self) -> Result<MutexGuard<'_, Tables>> {
        self.tables.lock().map_err(|_| StoreError::Poisoned)
    }
}

impl TokenStore for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn store_access_tokens(&self, tokens: &[NewAccessToken], now: i64) -> Result<()> {
        let mut tables = self.tables()?;
        // All or none: the only failure (a slab or token past 2^32) is checked first.
        tables.check_room(tokens)?;
        tokens
            .iter()
            .try_for_each(|t| tables.store_access_token(t, now))
    }

    fn get_access_token(&self, token: &str, now: i64) -> Result<Option<AccessToken>> {
        self.tables()?.get_access_token(token, now)
    }

    fn store_authorization_code(&self, code: &str, data: &AuthorizationCode) -> Result<()> {
        self.tables()?.store_authorization_code(code, data)
    }

    fn take_authorization_code(&self, code: &str, now: i64) -> Result<Option<AuthorizationCode>> {
        self.tables()?.take_authorization_code(code, now)
    }

    fn get_refresh_token(&self, refresh_token: &str, now: i64) -> Result<Option<RefreshToken>> {
        self.tables()?.get_refresh_token(refresh_token, now)
    }

    fn revoke_refresh_token(&self, refresh_token: &str) -> Result<()> {
        self.tables()?.revoke_refresh_token(refresh_token)
    }

    fn delete_token(&self, token: &str) -> Result<()> {
        self.tables()?.delete_token(token)
    }

    fn delete_user_tokens(&self, user_id: &str) -> Result<()> {
        self.tables()?.delete_user_tokens(user_id)
    }

    fn cleanup_expired(&self, now: i64, limit: usize) -> Result<usize> {
        self.tables()?.cleanup_expired(now, limit)
    }

    fn stats(&self, now: i64) -> Result<Stats> {
        self.tables()?.stats(now)
    }

    fn rotate_refresh_token(&self, request: &RotateRequest, now: i64) -> Result<Rotation> {
        self.tables()?.rotate_refresh_token(request, now)
    }

    fn put_client(&self, client: &ClientRecord) -> Result<()> {
        self.tables()?.put_client(client)
    }

    fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        self.tables()?.get_client(client_id)
    }

    fn client_ids(&self) -> Result<Vec<String>> {
        self.tables()?.client_ids()
    }

    fn store_pending_authorization(
        &self,
        state: &str,
        data: &str,
        expires_at: i64,
        _now: i64,
    ) -> Result<()> {
        self.tables()?
            .store_pending_authorization(state, data, expires_at)
    }

    fn take_pending_authorization(&self, state: &str, now: i64) -> Result<Option<String>> {
        self.tables()?.take_pending_authorization(state, now)
    }
}
