//! The cache of access tokens read recently, and when it may answer: shared by the
//! PostgreSQL store (its feed: `postgres::listener`) and the Redis store (its feed:
//! `redis::tracking`, server-assisted client-side caching).
//!
//! A read of a cached token answers without a round trip only while the cache is trusted:
//! the feed (a connection of its own, on a thread of its own) is confirmed on a connection
//! that is still up, and a ping it sent through the server (PostgreSQL: a `NOTIFY` on a
//! channel of its own; Redis: a `PING` on the feed's own connection) came back, sent at most
//! `TRUST` ago and after this store's last write. The server delivers the feed's
//! invalidations in order with the ping's answer: when a ping comes back, every change
//! made before it was sent has been applied here. So a change made by any instance is
//! honoured by this one within `TRUST` (in practice as soon as its invalidation arrives,
//! well under a millisecond on a local network), and this store's own writes at once.
//! While the feed is down (the connection lost, the pings not coming back: a silent
//! network, a transaction-mode pooler), every read goes to the server.
//!
//! A fill (a read's answer put in the cache) is dropped when the feed reconnected or an
//! invalidation of its token (or of everything) arrived while it was on its way: a read
//! that raced a change never puts back what the change removed.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::model::{is_expired, AccessToken};

/// How old the latest ping that came back may be for the cache to answer.
pub(crate) const TRUST: Duration = Duration::from_millis(40);
/// How often the listener pings while the cache is in use.
pub(crate) const PING_EVERY: Duration = Duration::from_millis(10);
/// How long after the last read the cache counts as in use (pings go on).
pub(crate) const IN_USE: Duration = Duration::from_secs(2);
/// Tokens kept, at most.
const CAPACITY: usize = 20_000;
/// A token whose grant carries more than this (its `extra` and `resource`, up to 64 KiB
/// each) is not kept: 20,000 such would hold gigabytes. Its reads go to the server.
const LARGEST_KEPT: usize = 4096;
/// Invalidations remembered for the fills on their way.
const LOG: usize = 4096;

/// The first 16 bytes of a token's SHA-256, as the notifications name it.
pub(crate) type TokenDigest = u128;

pub(crate) fn digest(token: &str) -> TokenDigest {
    let d = Sha256::digest(token.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    u128::from_be_bytes(b)
}

/// A payload of the change feed: a token's digest (32 hex digits), or everything.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn parse_payload(payload: &str) -> Option<Option<TokenDigest>> {
    if payload == "*" {
        return Some(None);
    }
    if payload.len() != 32 {
        return None;
    }
    u128::from_str_radix(payload, 16).ok().map(Some)
}

/// What a read finds.
pub(crate) enum Lookup {
    Hit(AccessToken),
    /// Not answerable here; the ticket, if any, lets the server's answer be kept.
    Miss(Option<Ticket>),
}

/// When a read went to the server: the feed's epoch and the invalidations seen.
pub(crate) struct Ticket {
    epoch: u64,
    gen: u64,
}

/// A kept token, in `State::slots`.
struct Entry {
    /// The token itself (the key of `State::entries`).
    key: String,
    token: AccessToken,
    digest: TokenDigest,
    /// Read since the clock's hand last passed it (second chance).
    used: bool,
}

/// The tokens kept, and which goes when the cache is full: a clock (second chance). Each
/// read of a kept token marks it; when a fill needs room, the hand moves over the slots,
/// unmarking the marked and taking the first unmarked. So a token read again and again
/// stays, and one read once goes first, at the cost of one flag per read (an LRU list
/// would relink on every read).
struct State {
    /// Token → slot.
    entries: HashMap<String, usize>,
    by_digest: HashMap<TokenDigest, usize>,
    /// The kept tokens; `None` is a free slot (listed in `free`).
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    /// Where the clock's hand is in `slots`.
    hand: usize,
    /// Bumped whenever the feed is confirmed or lost: older tickets and entries are void.
    epoch: u64,
    /// Whether the listener's `LISTEN` is confirmed on a connection still up.
    live: bool,
    /// Invalidations counted, and the latest (`None`: everything).
    gen: u64,
    log: VecDeque<(u64, Option<TokenDigest>)>,
    /// When the latest ping that came back was sent.
    proved: Option<Instant>,
    /// When this store's latest write of access tokens ended.
    barrier: Option<Instant>,
    last_use: Instant,
}

/// The entries taken out of the cache when it is cleared, freed by their owner once the
/// lock is released: freeing up to `CAPACITY` records takes milliseconds, and a read waiting
/// for the lock meanwhile may be on the JS thread (`/promises`' answers at hand). A clear
/// comes with every feed reconnection and every `*` (any instance's cleanup of more than
/// 64 rows).
#[must_use = "drop it after the lock is released"]
#[allow(dead_code)] // held only to be dropped (the tests read it)
struct Cleared {
    entries: HashMap<String, usize>,
    by_digest: HashMap<TokenDigest, usize>,
    slots: Vec<Option<Entry>>,
}

/// How a cache wakes its feed's thread: a ping is wanted now.
pub(crate) trait Wake: Default + Send + Sync {
    fn wake(&self);
}

pub(crate) struct Cache<W: Wake> {
    state: Mutex<State>,
    /// Wakes the feed's thread: a ping is wanted now.
    pub(crate) wake: W,
    /// A ping came back once: the connections reach a session of their own (a direct
    /// server or a session pooler), which a transaction-mode pooler never shows.
    session: AtomicBool,
}

impl<W: Wake> Cache<W> {
    pub(crate) fn new() -> Cache<W> {
        Cache {
            state: Mutex::new(State {
                entries: HashMap::new(),
                by_digest: HashMap::new(),
                slots: Vec::new(),
                free: Vec::new(),
                hand: 0,
                epoch: 0,
                live: false,
                gen: 0,
                log: VecDeque::new(),
                proved: None,
                barrier: None,
                last_use: Instant::now(),
            }),
            wake: W::default(),
            session: AtomicBool::new(false),
        }
    }

    /// The cached record of `token` if the cache may answer now, live at `now`.
    pub(crate) fn lookup(&self, token: &str, now: i64) -> Lookup {
        let Ok(mut s) = self.state.lock() else {
            return Lookup::Miss(None);
        };
        let at = Instant::now();
        s.last_use = at;
        if !s.live {
            return Lookup::Miss(None);
        }
        let ticket = Some(Ticket {
            epoch: s.epoch,
            gen: s.gen,
        });
        let trusted = match (s.proved, s.barrier) {
            (Some(p), b) => b.is_none_or(|b| p >= b) && at.saturating_duration_since(p) <= TRUST,
            (None, _) => false,
        };
        if !trusted {
            drop(s);
            self.wake.wake();
            return Lookup::Miss(ticket);
        }
        let Some(&i) = s.entries.get(token) else {
            return Lookup::Miss(ticket);
        };
        match s.slots.get_mut(i).and_then(Option::as_mut) {
            Some(e) if !is_expired(e.token.expires_at, now) => {
                e.used = true;
                Lookup::Hit(e.token.clone())
            }
            _ => {
                s.remove_at(i);
                Lookup::Miss(ticket)
            }
        }
    }

    /// Keeps the server's answer to a read, unless something it may have missed happened
    /// since its ticket was taken.
    pub(crate) fn fill(&self, ticket: Ticket, token: &str, record: &AccessToken) {
        let carried = |v: &Option<String>| v.as_ref().map_or(0, String::len);
        if carried(&record.extra) + carried(&record.resource) > LARGEST_KEPT {
            return;
        }
        let d = digest(token);
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        if !s.live || s.epoch != ticket.epoch || s.invalidated_since(ticket.gen, d) {
            return;
        }
        if let Some(&i) = s.by_digest.get(&d) {
            match s.slots.get_mut(i).and_then(Option::as_mut) {
                Some(e) => {
                    // Another token of the same digest (never seen: 128 bits) is kept instead.
                    if e.key == token {
                        e.token = record.clone();
                        e.used = true;
                    }
                    return;
                }
                // A digest naming an empty slot (`remove_at` and `clear` change both
                // together, so never seen): dropped, and the token kept below.
                None => {
                    s.by_digest.remove(&d);
                }
            }
        }
        if s.slots.capacity() == 0 {
            s.reserve();
        }
        if s.entries.len() >= CAPACITY {
            s.evict();
        }
        let entry = Entry {
            key: token.to_owned(),
            token: record.clone(),
            digest: d,
            used: false,
        };
        let i = match s.free.pop() {
            Some(i) => {
                s.slots[i] = Some(entry);
                i
            }
            None => {
                s.slots.push(Some(entry));
                s.slots.len() - 1
            }
        };
        s.entries.insert(token.to_owned(), i);
        s.by_digest.insert(d, i);
    }

    /// A token removed or changed (`None`: everything), by the feed or by this store.
    pub(crate) fn invalidate(&self, what: Option<TokenDigest>) {
        let cleared = match self.state.lock() {
            Ok(mut s) => s.invalidate(what),
            Err(_) => None,
        };
        drop(cleared); // the lock released (see `Cleared`)
    }

    /// This store wrote access tokens (or may have: its outcome unknown): the cache answers
    /// again only once a ping sent after now came back. A ping is asked for now.
    pub(crate) fn barrier(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.barrier = Some(Instant::now());
            s.invalidate_fills();
        }
        self.wake.wake();
    }

    /// The listener's `LISTEN` is confirmed (or its connection lost): what was cached
    /// before is void either way.
    pub(crate) fn set_live(&self, live: bool) {
        let cleared = match self.state.lock() {
            Ok(mut s) => {
                s.live = live;
                s.epoch += 1;
                s.proved = None;
                s.invalidate_fills();
                Some(s.clear())
            }
            Err(_) => None,
        };
        drop(cleared); // the lock released (see `Cleared`)
    }

    /// A ping sent at `sent` came back.
    pub(crate) fn proved(&self, sent: Instant) {
        if let Ok(mut s) = self.state.lock() {
            if s.live && s.proved.is_none_or(|p| p < sent) {
                s.proved = Some(sent);
            }
        }
        self.session.store(true, Ordering::Release);
    }

    /// Whether a ping ever came back (see `session`).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn session_proved(&self) -> bool {
        self.session.load(Ordering::Acquire)
    }

    /// Whether a read used the cache lately, or a write waits for a ping.
    pub(crate) fn in_use(&self) -> bool {
        let Ok(s) = self.state.lock() else {
            return false;
        };
        s.last_use.elapsed() <= IN_USE
            || matches!((s.barrier, s.proved), (Some(b), p) if p.is_none_or(|p| p < b))
    }
}

impl State {
    /// How many tokens are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Sizes the tables at the first fill, so that no later fill grows one under the lock:
    /// growing them past 3,584, 7,168 and 14,336 tokens (a rehash of both maps) and 16,384 (a
    /// copy of the slots) took 1-15 ms on the benchmark machine, and a read waiting for the
    /// lock meanwhile may be on the JS thread (`/promises`' answers at hand, the synchronous
    /// calls). The maps get room for twice `CAPACITY`: a removal can leave a tombstone, and a
    /// table sized for `CAPACITY` ran out of room after some 50,000 evictions and grew then
    /// (4.8 ms); at twice, none grew over 1,000,000 fills. Pages untouched stay unmapped.
    fn reserve(&mut self) {
        self.entries.reserve(2 * CAPACITY);
        self.by_digest.reserve(2 * CAPACITY);
        self.slots.reserve_exact(CAPACITY);
        self.free.reserve_exact(CAPACITY);
    }

    /// Removes the token in slot `i`, if any.
    fn remove_at(&mut self, i: usize) {
        if let Some(e) = self.slots.get_mut(i).and_then(Option::take) {
            self.entries.remove(&e.key);
            self.by_digest.remove(&e.digest);
            self.free.push(i);
        }
    }

    /// Makes room for one token: the clock's hand moves on, giving each token read since
    /// it last passed a second chance, and removes the first that has none left. It
    /// stops within two turns (the second finds every mark taken off by the first).
    fn evict(&mut self) {
        for _ in 0..2 * self.slots.len() {
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            let i = self.hand;
            self.hand += 1;
            match self.slots[i].as_mut() {
                Some(e) if e.used => e.used = false,
                Some(_) => return self.remove_at(i),
                None => {}
            }
        }
    }

    /// Removes `what` (`None`: everything, handed back to be freed after the lock).
    fn invalidate(&mut self, what: Option<TokenDigest>) -> Option<Cleared> {
        let cleared = match what {
            Some(d) => {
                if let Some(&i) = self.by_digest.get(&d) {
                    self.remove_at(i);
                }
                None
            }
            None => Some(self.clear()),
        };
        self.gen += 1;
        let gen = self.gen;
        self.log.push_back((gen, what));
        if self.log.len() > LOG {
            self.log.pop_front();
        }
        cleared
    }

    /// Empties the cache, its tables keeping their capacity (one allocation each, no frees),
    /// and hands the entries back (see `Cleared`).
    fn clear(&mut self) -> Cleared {
        let entries = HashMap::with_capacity(self.entries.capacity());
        let by_digest = HashMap::with_capacity(self.by_digest.capacity());
        let slots = Vec::with_capacity(self.slots.capacity());
        self.free.clear();
        self.hand = 0;
        Cleared {
            entries: std::mem::replace(&mut self.entries, entries),
            by_digest: std::mem::replace(&mut self.by_digest, by_digest),
            slots: std::mem::replace(&mut self.slots, slots),
        }
    }

    /// Every fill on its way is dropped.
    fn invalidate_fills(&mut self) {
        self.gen += 1;
        let gen = self.gen;
        self.log.push_back((gen, None));
        if self.log.len() > LOG {
            self.log.pop_front();
        }
    }

    /// Whether an invalidation of `d` (or of everything) came after `gen`, or may have
    /// (the log no longer reaches back that far).
    fn invalidated_since(&self, gen: u64, d: TokenDigest) -> bool {
        if self.gen == gen {
            return false;
        }
        match self.log.front() {
            Some((first, _)) if *first <= gen + 1 => {}
            _ => return true,
        }
        self.log
            .iter()
            .rev()
            .take_while(|(g, _)| *g > gen)
            .any(|(_, w)| w.is_none_or(|w| w == d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct NoWake;

    impl Wake for NoWake {
        fn wake(&self) {}
    }

    type Cache = super::Cache<NoWake>;

    fn record(key: &str) -> AccessToken {
        AccessToken {
            api_key: key.into(),
            user_id: None,
            client_id: "c".into(),
            scopes: vec![],
            refresh_token: None,
            expires_at: Some(1_000),
            created_at: 0,
            resource: None,
            extra: None,
            links: None,
        }
    }

    fn ticket(c: &Cache, token: &str) -> Ticket {
        match c.lookup(token, 0) {
            Lookup::Miss(Some(t)) => t,
            _ => panic!("expected a miss with a ticket"),
        }
    }

    fn hit(c: &Cache, token: &str, now: i64) -> bool {
        matches!(c.lookup(token, now), Lookup::Hit(_))
    }

    /// A live feed whose latest ping, sent now, came back.
    fn live() -> Cache {
        let c = Cache::new();
        c.set_live(true);
        c.proved(Instant::now());
        c
    }

    #[test]
    fn a_fill_that_raced_an_invalidation_of_its_token_is_dropped() {
        let c = live();
        let t = ticket(&c, "a");
        let other = ticket(&c, "b");
        c.invalidate(Some(digest("a")));
        c.fill(t, "a", &record("old"));
        c.fill(other, "b", &record("b"));
        assert!(!hit(&c, "a", 0), "a stale row was put back");
        assert!(
            hit(&c, "b", 0),
            "an unrelated invalidation dropped the fill"
        );
        let t = ticket(&c, "c");
        c.invalidate(None);
        c.fill(t, "c", &record("c"));
        assert!(!hit(&c, "c", 0));
    }

    #[test]
    fn a_token_whose_grant_carries_more_than_4_kib_is_not_kept() {
        let c = live();
        let mut big = record("big");
        big.extra = Some("x".repeat(LARGEST_KEPT + 1));
        let t = ticket(&c, "big");
        c.fill(t, "big", &big);
        assert!(!hit(&c, "big", 0), "kept a large grant");
        let mut small = record("small");
        small.extra = Some("x".repeat(LARGEST_KEPT / 2));
        small.resource = Some("https://mcp.example/".into());
        let t = ticket(&c, "small");
        c.fill(t, "small", &small);
        assert!(hit(&c, "small", 0), "a grant of a few bytes is kept");
    }

    #[test]
    fn nothing_is_served_or_kept_across_a_lost_feed() {
        let c = live();
        let t = ticket(&c, "a");
        c.fill(t, "a", &record("a"));
        assert!(hit(&c, "a", 0));
        let t = ticket(&c, "b");
        c.set_live(false);
        assert!(!hit(&c, "a", 0));
        c.fill(t, "b", &record("b"));
        c.set_live(true);
        c.proved(Instant::now());
        assert!(!hit(&c, "a", 0) && !hit(&c, "b", 0));
    }

    #[test]
    fn the_cache_answers_only_with_a_recent_ping_sent_after_the_last_write() {
        let c = live();
        let t = ticket(&c, "a");
        c.fill(t, "a", &record("a"));
        assert!(hit(&c, "a", 0));
        c.barrier();
        assert!(
            !hit(&c, "a", 0),
            "served before a ping confirmed this store's write"
        );
        c.proved(Instant::now());
        assert!(hit(&c, "a", 0));
        std::thread::sleep(TRUST + Duration::from_millis(5));
        assert!(!hit(&c, "a", 0), "served on a ping older than TRUST");
    }

    /// A clear (the feed lost or confirmed, a `*`) frees nothing under the lock: the
    /// entries come out of the locked state whole, to be freed by the caller after it.
    #[test]
    fn a_clear_hands_the_entries_out_of_the_lock() {
        let c = live();
        for k in ["a", "b", "c"] {
            let t = ticket(&c, k);
            c.fill(t, k, &record(k));
        }
        let Ok(mut s) = c.state.lock() else {
            panic!("poisoned")
        };
        let Some(cleared) = s.invalidate(None) else {
            panic!("an invalidation of everything handed nothing back")
        };
        assert_eq!(
            (
                cleared.entries.len(),
                cleared.by_digest.len(),
                cleared.slots.len()
            ),
            (3, 3, 3)
        );
        assert!(s.entries.is_empty() && s.by_digest.is_empty() && s.slots.is_empty());
        assert!(
            s.entries.capacity() >= 3,
            "the table was not kept for the next fills"
        );
        assert!(s.invalidate(Some(digest("x"))).is_none());
        let cleared = s.clear();
        assert_eq!(cleared.entries.len(), 0);
        drop(s);
        assert!(!hit(&c, "a", 0));
    }

    /// Reads `token` and, on a miss, keeps the answer, as a store's read does; a hit?
    fn read(c: &Cache, token: &str) -> bool {
        c.proved(Instant::now()); // the feed's pings keep coming back
        match c.lookup(token, 0) {
            Lookup::Hit(_) => true,
            Lookup::Miss(t) => {
                if let Some(t) = t {
                    c.fill(t, token, &record(token));
                }
                false
            }
        }
    }

    /// A full cache keeps what is read again and again: a server that has read more
    /// distinct tokens than the cache holds still answers its hot tokens locally, the
    /// cold ones read once making room for them (once full, the cache used to evict
    /// whatever its table listed first, which was mostly what it had just kept).
    #[test]
    fn a_full_cache_keeps_the_tokens_read_again() {
        let c = live();
        for i in 0..CAPACITY + 100 {
            read(&c, &format!("cold{i}"));
        }
        let hot: Vec<String> = (0..500).map(|i| format!("hot{i}")).collect();
        let mut fresh = 0;
        let mut hits = 0;
        for round in 0..8 {
            hits = 0;
            for t in &hot {
                hits += usize::from(read(&c, t));
                // A cold token read once between two hot ones: a miss, kept, room made.
                read(&c, &format!("new{fresh}"));
                fresh += 1;
            }
            if round == 0 {
                assert_eq!(hits, 0);
            }
        }
        assert!(
            hits >= hot.len() * 95 / 100,
            "{hits} of {} hot reads were hits",
            hot.len()
        );
        let Ok(s) = c.state.lock() else {
            panic!("poisoned")
        };
        assert_eq!(s.len(), CAPACITY, "more kept than the capacity");
    }

    /// A digest left naming an empty slot (never made by the cache's own changes) does
    /// not stop the token from being kept: it used to be removed at the slot only, the
    /// digest staying, so the token was never kept again.
    #[test]
    fn a_stale_digest_does_not_keep_a_token_out() {
        let c = live();
        let t = ticket(&c, "a");
        {
            let Ok(mut s) = c.state.lock() else {
                panic!("poisoned")
            };
            s.slots.push(None);
            let i = s.slots.len() - 1;
            s.by_digest.insert(digest("a"), i);
        }
        c.fill(t, "a", &record("a"));
        assert!(hit(&c, "a", 0));
    }

    /// The tables are sized once, at the first fill: filling the cache to its capacity and
    /// far past it (evictions leave tombstones in the maps) never grows one under the lock
    /// (growing them took milliseconds).
    #[test]
    fn a_fill_never_grows_the_tables() {
        let c = live();
        read(&c, "first");
        let capacities = |c: &Cache| {
            let Ok(s) = c.state.lock() else {
                panic!("poisoned")
            };
            [
                s.entries.capacity(),
                s.by_digest.capacity(),
                s.slots.capacity(),
                s.free.capacity(),
            ]
        };
        let first = capacities(&c);
        assert!(first.iter().all(|&n| n >= CAPACITY), "{first:?}");
        let within = |c: &Cache| capacities(c).iter().zip(first).all(|(&n, f)| n <= f);
        for i in 0..5 * CAPACITY {
            read(&c, &format!("t{i}"));
            if i % 1000 == 0 {
                assert!(within(&c), "a fill grew a table: {:?}", capacities(&c));
            }
        }
        assert!(within(&c), "a fill grew a table: {:?}", capacities(&c));
        c.set_live(false);
        c.set_live(true);
        c.proved(Instant::now());
        read(&c, "after a clear");
        assert!(
            capacities(&c).iter().all(|&n| n >= CAPACITY),
            "the tables shrank at a clear"
        );
    }

    #[test]
    fn an_expired_entry_is_not_served() {
        let c = live();
        let t = ticket(&c, "a");
        c.fill(t, "a", &record("a"));
        assert!(hit(&c, "a", 999));
        assert!(!hit(&c, "a", 1_000));
    }

    #[test]
    fn payloads() {
        assert_eq!(parse_payload("*"), Some(None));
        let d = digest("tok");
        assert_eq!(parse_payload(&format!("{d:032x}")), Some(Some(d)));
        assert_eq!(parse_payload("xyz"), None);
    }
}
