//! The memory store's tables: a slab of slots, the look-up tables by token and refresh
//! token, each user's list, the shared values, and the expiry indexes, kept consistent by
//! the few functions that add and remove a slot.

use std::collections::{BTreeSet, HashMap, HashSet as StdHashSet};
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashSet, HashTable};

use super::errors::{full, too_long};
use super::histogram::Histogram;
use super::huge::Huge;
use super::text::Text;
use crate::error::Result;
use crate::model::{is_expired, AccessToken, AuthorizationCode, ClientRecord, NewAccessToken};
use crate::wire::AccessTokenRef;

/// `expires_at` of a token that never expires.
pub(super) const NEVER: i64 = i64::MAX;
/// "No slot" in the per-user lists.
pub(super) const NONE: u32 = u32::MAX;

pub(super) struct Slot {
    /// The access token, the refresh token (may be empty) and the sealed links
    /// (`NewAccessToken::links`, empty in clear), end to end.
    pub(super) text: Text,
    pub(super) token_len: u32,
    /// The length of the links at the end of `text` (0 in clear).
    pub(super) links_len: u32,
    pub(super) api_key: Arc<str>,
    pub(super) user_id: Option<Arc<str>>,
    /// Client id and scopes, shared by every token issued with the same pair.
    pub(super) grant: Arc<Grant>,
    pub(super) expires_at: i64,
    pub(super) created_at: i64,
    /// The grant's resource and extra (`NewAccessToken`), boxed: most tokens have neither.
    pub(super) more: Option<Box<(Option<String>, Option<String>)>>,
    /// The neighbours in the list of the user's tokens (`NONE` at either end).
    pub(super) user_prev: u32,
    pub(super) user_next: u32,
}

/// A user's tokens: how many, when the last one expires, and the head of their list.
pub(super) struct UserEntry {
    pub(super) tokens: u32,
    /// Tokens that never expire.
    pub(super) nevers: u32,
    /// The latest expiry among the tokens that expire (`i64::MIN` if none do).
    pub(super) max_finite: i64,
    pub(super) head: u32,
}

impl UserEntry {
    /// When the user's last token expires: `NEVER` while one never does.
    pub(super) fn until(&self) -> i64 {
        if self.nevers > 0 {
            NEVER
        } else {
            self.max_finite
        }
    }
}

#[derive(PartialEq, Eq, Hash)]
pub(super) struct Grant {
    pub(super) client_id: String,
    pub(super) scopes: Vec<String>,
}

/// Asks the CPU to start loading the cache line at `p` (a hint: it reads nothing a program
/// sees and never faults, whatever `p` is).
#[inline(always)]
fn prefetch<T: ?Sized>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch has no effect but on the caches; SSE is in every x86-64 CPU.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0)
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl Slot {
    /// Starts loading what a reply reads besides the token text, which the look-up compares
    /// at once: the API key, the user id and the client id and scopes, each elsewhere in
    /// memory. At a million tokens each is a cache miss; loaded one after the other as the
    /// reply is written they cost one memory latency each, started together with the
    /// token's compare they overlap it.
    #[inline(always)]
    fn prefetch_reply(&self) {
        prefetch(Arc::as_ptr(&self.api_key));
        if let Some(user) = &self.user_id {
            prefetch(Arc::as_ptr(user));
        }
        prefetch(Arc::as_ptr(&self.grant));
    }

    pub(super) fn token(&self) -> &str {
        self.text
            .as_str()
            .get(..self.token_len as usize)
            .unwrap_or_default()
    }
    pub(super) fn refresh(&self) -> Option<&str> {
        let end = self.text.len() - self.links_len as usize;
        let r = self
            .text
            .as_str()
            .get(self.token_len as usize..end)
            .unwrap_or_default();
        (!r.is_empty()).then_some(r)
    }
    pub(super) fn links(&self) -> Option<&str> {
        let at = self.text.len() - self.links_len as usize;
        (self.links_len > 0).then(|| self.text.as_str().get(at..).unwrap_or_default())
    }
    pub(super) fn api_key(&self) -> &str {
        &self.api_key
    }
    pub(super) fn resource(&self) -> Option<&str> {
        self.more.as_ref().and_then(|m| m.0.as_deref())
    }
    pub(super) fn extra(&self) -> Option<&str> {
        self.more.as_ref().and_then(|m| m.1.as_deref())
    }
    pub(super) fn expiry(&self) -> Option<i64> {
        (self.expires_at != NEVER).then_some(self.expires_at)
    }
}

/// The store's tables, behind `MemoryStore`'s lock.
#[derive(Default)]
pub(super) struct Tables {
    pub(super) slots: Vec<Option<Slot>>,
    pub(super) free: Vec<u32>,
    pub(super) by_token: HashTable<u32, Huge>,
    pub(super) by_refresh: HashTable<u32, Huge>,
    pub(super) hasher: DefaultHashBuilder,
    /// Tokens that expire, by expiry: cleanup and stats touch only expired ones.
    pub(super) expiry: BTreeSet<(i64, u32)>,
    /// Tokens by expiry bucket, and users by the bucket of their last token's expiry.
    pub(super) token_expiry: Histogram,
    pub(super) user_expiry: Histogram,
    /// Tokens per user id; its keys are the user ids the slots share.
    pub(super) users: HashMap<Arc<str>, UserEntry>,
    /// Shared API keys.
    pub(super) strings: HashSet<Arc<str>>,
    pub(super) grants: HashSet<Arc<Grant>>,
    pub(super) codes: HashMap<Box<str>, AuthorizationCode>,
    /// The family of each refresh token a rotation issued (one issued by storeAccessToken
    /// is its own family's first), and each family's members.
    pub(super) families: HashMap<Box<str>, Box<str>>,
    pub(super) members: HashMap<Box<str>, StdHashSet<Box<str>>>,
    /// Refresh tokens rotated away: their family and when.
    pub(super) retired: HashMap<Box<str>, (Box<str>, i64)>,
    /// Clients by id, with the order they were first registered in.
    pub(super) clients: HashMap<Box<str>, (u64, ClientRecord)>,
    pub(super) client_seq: u64,
    pub(super) pending: HashMap<Box<str>, (String, i64)>,
    /// Whether the store is sealed (`TokenStore::seal_mark`).
    pub(super) seal_mark: Option<String>,
}

impl Tables {
    pub(super) fn slot(&self, i: u32) -> Option<&Slot> {
        self.slots.get(i as usize).and_then(Option::as_ref)
    }

    pub(super) fn find_token(&self, token: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(token);
        let slots = &self.slots;
        self.by_token
            .find(hash, |&i| {
                slots
                    .get(i as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|s| {
                        s.prefetch_reply();
                        s.token() == token
                    })
            })
            .copied()
    }

    pub(super) fn find_refresh(&self, refresh: &str) -> Option<u32> {
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
    pub(super) fn unlink_refresh(&mut self, i: u32) {
        let Some(refresh) = self.slot(i).and_then(Slot::refresh) else {
            return;
        };
        let hash = self.hasher.hash_one(refresh);
        if let Ok(entry) = self.by_refresh.find_entry(hash, |&j| j == i) {
            entry.remove();
        }
    }

    /// Removes the token in slot `i`, its refresh token, its expiry entry and user count.
    pub(super) fn remove_slot(&mut self, i: u32) {
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
    pub(super) fn link_user(&mut self, i: u32) {
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
    pub(super) fn unlink_user(&mut self, i: u32) {
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
    pub(super) fn user_slots(&self, user_id: &str) -> Vec<u32> {
        let mut out = Vec::new();
        let mut j = self.users.get(user_id).map_or(NONE, |e| e.head);
        while let Some(s) = self.slot(j) {
            out.push(j);
            j = s.user_next;
        }
        out
    }

    /// The slot of a live token; an expired one is removed.
    pub(super) fn live(&mut self, i: u32, now: i64) -> Option<&Slot> {
        if is_expired(self.slot(i)?.expiry(), now) {
            self.remove_slot(i);
            return None;
        }
        self.slot(i)
    }

    /// Checks that `tokens` fit, before any is stored (all or none).
    pub(super) fn check_room(&self, tokens: &[NewAccessToken]) -> Result<()> {
        if tokens.iter().any(|t| u32::try_from(t.token.len()).is_err()) {
            return Err(too_long());
        }
        if self.slots.len() + tokens.len().saturating_sub(self.free.len()) > NONE as usize {
            return Err(full());
        }
        Ok(())
    }

    pub(super) fn intern(&mut self, value: &str) -> Arc<str> {
        if let Some(c) = self.strings.get(value) {
            return c.clone();
        }
        let c: Arc<str> = value.into();
        self.strings.insert(c.clone());
        c
    }

    pub(super) fn intern_grant(&mut self, client_id: &str, scopes: &[String]) -> Arc<Grant> {
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

    pub(super) fn intern_user(&mut self, user: &str) -> Arc<str> {
        match self.users.get_key_value(user) {
            Some((u, _)) => u.clone(),
            None => user.into(),
        }
    }

    /// A slot's fields, borrowed.
    pub(super) fn access_token_ref(s: &Slot) -> AccessTokenRef<'_> {
        AccessTokenRef {
            api_key: s.api_key(),
            user_id: s.user_id.as_deref(),
            client_id: &s.grant.client_id,
            scopes: &s.grant.scopes,
            refresh_token: s.refresh(),
            expires_at: s.expiry(),
            created_at: s.created_at,
            resource: s.resource(),
            extra: s.extra(),
            links: s.links(),
        }
    }

    pub(super) fn access_token(s: &Slot) -> AccessToken {
        AccessToken {
            api_key: s.api_key().to_owned(),
            user_id: s.user_id.as_deref().map(str::to_owned),
            client_id: s.grant.client_id.clone(),
            scopes: s.grant.scopes.clone(),
            refresh_token: s.refresh().map(str::to_owned),
            expires_at: s.expiry(),
            created_at: s.created_at,
            resource: s.resource().map(str::to_owned),
            extra: s.extra().map(str::to_owned),
            links: s.links().map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slot is 216 bytes (`Text`'s 128 inline bytes and the rest): the slab's share of
    /// a token, as `mod.rs` and PROFILE.md give it.
    #[test]
    fn a_slot_stays_small() {
        let size = std::mem::size_of::<Option<Slot>>();
        assert!(size <= 216, "{size}");
    }
}
