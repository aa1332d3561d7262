//! The cache's feed: Redis's server-assisted client-side caching. One connection per store,
//! on a thread of its own, speaks RESP3 (`HELLO 3`) and asks for `CLIENT TRACKING on BCAST
//! PREFIX <prefix>at:`: from then on the server pushes an `invalidate` message to it, naming
//! the keys, whenever any client (any instance, a script's write, an expiry, an eviction)
//! changes a key under the store's access tokens (a null for everything: `FLUSHDB`,
//! `FLUSHALL`). The thread evicts from the cache (`store::cache`) what each names, and
//! pings on the same connection while the cache is in use: the server answers a ping
//! after the invalidations it queued before it, which is what lets the cache answer.
//!
//! Broadcast rather than `REDIRECT`: with `REDIRECT <id>` every data connection would have
//! to turn tracking on (and again each time the feed reconnects, under a new id), and a
//! data connection still redirecting to a lost feed gets no word of it in RESP2 (its
//! invalidations are dropped): a read could be kept that no invalidation will ever reach.
//! Broadcast needs nothing of the data connections (they stay RESP2, pooled as before):
//! the feed alone says whether the cache may answer. It costs one message per change of any
//! token (not only the tokens this instance read) to each instance, which a token store's
//! write rate (a login, a refresh) makes small, and the server keeps no table of keys read.
//!
//! A failover behind one host name (a managed service's primary endpoint, whose name moves
//! to the new primary while connections made before stay where they were): the feed must
//! be on the primary, or it hears of the new primary's writes only through replication
//! (late, or never while the link is down). So its pings are `HELLO 3` rather than `PING`:
//! answered in order as a ping is, and its answer says the server's `role`. The cache
//! answers only while the latest answer says `master`; one that says otherwise (the server
//! demoted) empties the cache at once, drops the store's kept command connections (they are
//! most likely on the same server) and connects again, which resolves the host name again.
//! `HELLO` rather than `ROLE` (or `INFO replication`): `ROLE` is `@admin @dangerous`, which
//! a user restricted by ACL (`-@dangerous`) lacks, while `HELLO` is every user's and the feed
//! needs it anyway; a second `HELLO 3` keeps the connection's tracking as it is. A `HELLO`
//! answer that says no role (a proxy's own) leaves the cache off, as a refusal does.
//! And on the same server as the command connections: each connection knows its server's
//! `run_id` (`conn`, read with `INFO` at open; a process's own, so a demoted primary that
//! a new one replaced is another server), the feed publishes its own while it is up
//! (`Hot::server`), and a kept command connection on another server is not used again, nor
//! is a read that went to another server kept in the cache. A user not allowed `INFO` has
//! no `run_id`s to compare: the role is still checked.
//!
//! A server that refuses `HELLO 3` or tracking (a proxy that speaks RESP2 only, a user
//! without the right) leaves the cache off: every read goes to the server, as before; any
//! other failure to start (a login refused, too many clients, a server loading its data) is
//! tried again after a pause. A lost
//! connection makes the cache void at once; the thread connects again after a pause. A
//! native thread keeps no Node event loop alive; `close` (or the store dropped) stops it.

use std::collections::VecDeque;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::conn::{Conn, Failure};
use super::resp::Reply;
use super::url::Target;
use super::RedisStore;
use crate::store::cache::{self, Wake, PING_EVERY};

/// The cache of a Redis store.
pub(super) type Cache = cache::Cache<Wanted>;

/// A ping asked for by a read or a write, taken by the feed's thread at its next turn.
#[derive(Default)]
pub(super) struct Wanted(AtomicBool);

impl Wake for Wanted {
    fn wake(&self) {
        self.0.store(true, Ordering::Release);
    }
}

impl Wanted {
    fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

/// The pause before connecting again, doubled up to `MAX_PAUSE` while connecting fails.
const PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(5);
/// How long a ping or a reply may take before the connection counts as lost.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);
/// How long the thread waits for the server at a time while the cache is not in use
/// (a read then finds the cache untrusted, and wakes it: `Wanted`).
const IDLE_WAIT: Duration = Duration::from_millis(20);
/// Pings on their way, at most.
const MAX_SENT: usize = 64;
/// What the server lists the feed's connection as (`CLIENT LIST`).
const NAME: &[u8] = b"native-token-storage-cache";

/// The cache and its feed, one per store.
pub(super) struct Hot {
    pub(super) cache: Arc<Cache>,
    feed: Mutex<Option<Feed>>,
    /// The feed connection's `CLIENT ID` while it is up (0: none), for the tests.
    pub(super) client_id: Arc<AtomicI64>,
    /// The feed's server (`Conn::server`) while it is up on a primary, else 0.
    pub(super) server: Arc<AtomicU64>,
    /// Reads of an access token sent to the server (the tests count them).
    #[cfg(test)]
    pub(super) server_reads: std::sync::atomic::AtomicU64,
}

impl Hot {
    pub(super) fn new() -> Hot {
        Hot {
            cache: Arc::new(Cache::new()),
            feed: Mutex::new(None),
            client_id: Arc::new(AtomicI64::new(0)),
            server: Arc::new(AtomicU64::new(0)),
            #[cfg(test)]
            server_reads: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Stops the feed (the cache is void until it runs again). Under the lock, so that no
    /// new feed starts before the old one stopped.
    pub(super) fn stop(&self) {
        if let Ok(mut f) = self.feed.lock() {
            drop(f.take());
        }
        self.client_id.store(0, Ordering::Release);
        self.server.store(0, Ordering::Release);
        self.cache.set_live(false);
    }
}

impl RedisStore {
    /// Starts the cache's feed if it is not running (it ends by itself on a server that
    /// refuses it, and is not started again until `close`).
    pub(super) fn ensure_feed(&self) {
        let Ok(mut f) = self.hot.feed.lock() else {
            return;
        };
        if f.is_some() {
            return;
        }
        let Ok((target, tls)) = self.target() else {
            return;
        };
        let to = Server {
            target: target.clone(),
            tls: tls.clone(),
            prefix: format!("{}at:", self.settings.prefix).into_bytes(),
            connect_timeout: self.settings.connect_timeout,
            pool: self.epoch.clone(),
        };
        let up = Up {
            client_id: self.hot.client_id.clone(),
            server: self.hot.server.clone(),
        };
        *f = Feed::start(self.hot.cache.clone(), up, to);
    }
}

/// Where the feed connects, and what it tracks.
struct Server {
    target: Target,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The keys of the store's access tokens: `<prefix>at:`.
    prefix: Vec<u8>,
    connect_timeout: Duration,
    /// The store's epoch: bumped when the feed finds its server demoted, so that the kept
    /// command connections are not used again.
    pool: Arc<AtomicU64>,
}

/// What the feed publishes while it is up: its `CLIENT ID` and its server.
struct Up {
    client_id: Arc<AtomicI64>,
    server: Arc<AtomicU64>,
}

impl Up {
    fn down(&self) {
        self.client_id.store(0, Ordering::Release);
        self.server.store(0, Ordering::Release);
    }
}

/// The feed's thread.
struct Feed {
    cache: Arc<Cache>,
    stop: Arc<Stop>,
    thread: Option<JoinHandle<()>>,
}

/// Tells the thread to end, and ends its connection (a wait on it returns at once).
#[derive(Default)]
struct Stop {
    flag: AtomicBool,
    socket: Mutex<Option<TcpStream>>,
    /// The thread is connecting (which may take the connect timeout, and cannot be cut).
    connecting: AtomicBool,
}

// `flag` and `connecting` are sequentially consistent: `Feed::drop` stores `flag` and then
// loads `connecting`, the thread stores `connecting` and then loads `flag`, so at least one
// of them sees the other's store (a thread about to connect either sees the stop, or is seen
// connecting and not waited for).
impl Stop {
    fn stopping(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Keeps a handle on the connection's socket; false if stopping already.
    fn hold(&self, socket: Option<TcpStream>) -> bool {
        if let Ok(mut s) = self.socket.lock() {
            *s = socket;
        }
        !self.stopping()
    }
}

impl Feed {
    /// Starts the thread; `None` if no thread can start (the cache stays off).
    fn start(cache: Arc<Cache>, up: Up, to: Server) -> Option<Feed> {
        let stop = Arc::new(Stop::default());
        let (c, st) = (cache.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("nts-redis-tracking".into())
            .spawn(move || run(&c, &st, &up, &to))
            .ok()?;
        Some(Feed {
            cache,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Feed {
    /// Stops the thread and waits for it: its connection is shut down, so a wait on the
    /// server ends at once. A thread still connecting is not waited for (a server that does
    /// not answer would hold `close` for the connect timeout): it ends once connected or
    /// not, without a word to the server.
    fn drop(&mut self) {
        self.stop.flag.store(true, Ordering::SeqCst);
        if let Ok(s) = self.stop.socket.lock() {
            if let Some(s) = s.as_ref() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        self.cache.set_live(false);
        if let Some(t) = self.thread.take() {
            if !self.stop.connecting.load(Ordering::SeqCst) {
                let _ = t.join();
            }
        }
        self.cache.set_live(false);
    }
}

enum Outcome {
    Stopped,
    /// The server refuses RESP3 or tracking: the cache stays off.
    Refused,
    /// Could not connect or start tracking.
    Failed,
    /// Was tracking, then lost the connection.
    Lost,
}

fn run(cache: &Cache, stop: &Stop, up: &Up, to: &Server) {
    let mut pause = PAUSE;
    loop {
        let outcome = session(cache, stop, up, to);
        // Stopped: the cache is the stopper's (and perhaps already a new feed's) to void.
        if stop.stopping() {
            return;
        }
        cache.set_live(false);
        up.down();
        stop.hold(None);
        let wait = match outcome {
            Outcome::Stopped | Outcome::Refused => return,
            Outcome::Failed => {
                let wait = pause;
                pause = (pause * 2).min(MAX_PAUSE);
                wait
            }
            Outcome::Lost => {
                pause = PAUSE;
                PAUSE
            }
        };
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if stop.stopping() {
                return;
            }
            std::thread::sleep(IDLE_WAIT);
        }
        if stop.stopping() {
            return;
        }
    }
}

/// A server that cannot give the feed what it needs refuses the cache for the store's life:
/// a command it does not know (`HELLO`, `CLIENT TRACKING`: a proxy that speaks RESP2 only),
/// a protocol it does not speak (`NOPROTO`), a user not allowed a command (`NOPERM`), or a
/// configuration the store's own calls report (a Cluster node). Anything else fails this try
/// only, and the feed connects again after a pause: the socket, a login refused while a
/// password is rotated, too many clients, a server loading its data.
fn refused(f: Failure) -> Outcome {
    match f {
        Failure::Server(e) => {
            let word = super::errors::first_word(&e);
            let unknown = e.starts_with("ERR unknown command") || e.starts_with("ERR unknown subcommand");
            if unknown || word == "NOPROTO" || word == "NOPERM" {
                Outcome::Refused
            } else {
                Outcome::Failed
            }
        }
        Failure::Store(_) => Outcome::Refused,
        Failure::Io(_) => Outcome::Failed,
    }
}

fn session(cache: &Cache, stop: &Stop, up: &Up, to: &Server) -> Outcome {
    stop.connecting.store(true, Ordering::SeqCst);
    // A stop that came before `connecting` was seen: not waited for, so not connecting.
    if stop.stopping() {
        stop.connecting.store(false, Ordering::SeqCst);
        return Outcome::Stopped;
    }
    let opened = Conn::open(
        &to.target,
        to.tls.as_ref(),
        to.connect_timeout,
        ANSWER_WITHIN,
        0,
    );
    stop.connecting.store(false, Ordering::SeqCst);
    let mut conn = match opened {
        Ok(c) => c,
        // A configuration the store's own calls report (a Cluster node, a bad login).
        Err(f) => return refused(f),
    };
    if !stop.hold(conn.socket().ok()) {
        return Outcome::Stopped;
    }
    match conn.command(&[b"HELLO", b"3", b"SETNAME", NAME]) {
        Ok(hello) => match primary(&hello) {
            Some(true) => {}
            Some(false) => return demoted(to),
            None => return Outcome::Refused,
        },
        Err(f) => return refused(f),
    }
    let id = match conn.command(&[b"CLIENT", b"ID"]) {
        Ok(r) => r.int().unwrap_or(0),
        Err(f) => return refused(f),
    };
    let tracking: [&[u8]; 6] = [b"CLIENT", b"TRACKING", b"ON", b"BCAST", b"PREFIX", &to.prefix];
    if let Err(f) = conn.command(&tracking) {
        return refused(f);
    }
    // The first ping. From here on pushes can come before a reply: its answer is the first
    // reply that is not one (they are dropped: the cache is emptied when it goes live
    // below), so that no later answer is taken for it.
    if let Err(o) = first_pong(&mut conn, to) {
        return o;
    }
    // Every change made from now on is pushed to this connection, from a primary.
    up.client_id.store(id, Ordering::Release);
    up.server.store(conn.server, Ordering::Release);
    cache.set_live(true);
    match track(cache, stop, &mut conn, to) {
        Ok(o) => o,
        Err(_) if stop.stopping() => Outcome::Stopped,
        Err(_) => Outcome::Lost,
    }
}

/// The feed's ping: `HELLO 3` again (see the top), whose answer says the server's role.
const PING: [&[u8]; 2] = [b"HELLO", b"3"];

/// Whether a `HELLO` answer (a map: pairs in an array) says the server is a primary;
/// `None` if it says no role (a proxy's own answer: the cache cannot know, and stays off).
fn primary(hello: &Reply) -> Option<bool> {
    let Reply::Array(items) = hello else {
        return None;
    };
    let text = |r: &Reply| match r {
        Reply::Bulk(b) => b.clone(),
        Reply::Status(s) => s.clone().into_bytes(),
        _ => Vec::new(),
    };
    items
        .chunks_exact(2)
        .find(|kv| text(&kv[0]) == b"role")
        .map(|kv| matches!(text(&kv[1]).as_slice(), b"master" | b"primary"))
}

/// The feed's server is not a primary (demoted, or a replica behind the host name): the
/// store's kept connections are dropped too (its caller empties the cache), and the feed
/// connects again after a pause, resolving the host name again.
fn demoted(to: &Server) -> Outcome {
    to.pool.fetch_add(1, Ordering::AcqRel);
    Outcome::Failed
}

/// Sends the first ping and reads up to its answer, past the pushes before it.
fn first_pong(conn: &mut Conn, to: &Server) -> Result<(), Outcome> {
    conn.send(&PING).map_err(|_| Outcome::Failed)?;
    loop {
        match conn.read() {
            Ok(Reply::Push(_)) => continue,
            Ok(Reply::Error(e)) => return Err(refused(Failure::Server(e))),
            Ok(hello) => match primary(&hello) {
                Some(true) => return Ok(()),
                Some(false) => return Err(demoted(to)),
                None => return Err(Outcome::Refused),
            },
            Err(_) => return Err(Outcome::Failed),
        }
    }
}

/// Reads the pushes and pings' answers, and pings while the cache is in use, until stopped
/// or the connection is lost (an error).
fn track(cache: &Cache, stop: &Stop, conn: &mut Conn, to: &Server) -> std::io::Result<Outcome> {
    let prefix = to.prefix.as_slice();
    let mut sent: VecDeque<Instant> = VecDeque::new();
    let mut last_ping: Option<Instant> = None;
    loop {
        if stop.stopping() {
            return Ok(Outcome::Stopped);
        }
        let in_use = cache.in_use();
        let now = Instant::now();
        let due = in_use && last_ping.is_none_or(|t| now >= t + PING_EVERY);
        if (cache.wake.take() || due) && sent.len() < MAX_SENT {
            conn.send(&PING)?;
            sent.push_back(now);
            last_ping = Some(now);
        }
        if sent.front().is_some_and(|t| t.elapsed() > ANSWER_WITHIN) {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        let wait = match (in_use, last_ping) {
            (true, Some(t)) => (t + PING_EVERY).saturating_duration_since(Instant::now()),
            _ => IDLE_WAIT,
        };
        if !conn.readable(wait, ANSWER_WITHIN)? {
            continue;
        }
        match conn.read()? {
            Reply::Push(items) => invalidate(cache, prefix, items),
            Reply::Error(_) => return Err(std::io::ErrorKind::InvalidData.into()),
            // A ping's answer: the oldest on its way (the server answers in order), from a
            // primary; from a demoted one, the cache is emptied (by `run`) at once.
            hello => {
                match primary(&hello) {
                    Some(true) => {}
                    Some(false) => {
                        demoted(to);
                        return Ok(Outcome::Lost);
                    }
                    None => return Err(std::io::ErrorKind::InvalidData.into()),
                }
                if let Some(at) = sent.pop_front() {
                    cache.proved(at);
                }
            }
        }
    }
}

/// An `invalidate` push: its keys evicted, or everything (a null: a flush, or the server
/// lost track).
fn invalidate(cache: &Cache, prefix: &[u8], items: Vec<Reply>) {
    let mut items = items.into_iter();
    if !matches!(items.next(), Some(Reply::Bulk(kind)) if kind == b"invalidate") {
        return;
    }
    match items.next() {
        Some(Reply::Array(keys)) => {
            for key in keys {
                let token = match &key {
                    Reply::Bulk(k) => k
                        .strip_prefix(prefix)
                        .and_then(|t| std::str::from_utf8(t).ok()),
                    _ => None,
                };
                match token {
                    Some(t) => cache.invalidate(Some(cache::digest(t))),
                    // Not a key of the form this store writes: to be safe, everything.
                    None => cache.invalidate(None),
                }
            }
        }
        _ => cache.invalidate(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AccessToken;
    use crate::store::cache::Lookup;

    fn record() -> AccessToken {
        AccessToken {
            api_key: "k".into(),
            user_id: None,
            client_id: "c".into(),
            scopes: vec![],
            refresh_token: None,
            expires_at: None,
            created_at: 0,
            resource: None,
            extra: None,
            links: None,
        }
    }

    /// A live cache, trusted now, holding `tokens`.
    fn holding(tokens: &[&str]) -> Cache {
        let c = Cache::new();
        c.set_live(true);
        c.proved(Instant::now());
        for t in tokens {
            if let Lookup::Miss(Some(ticket)) = c.lookup(t, 0) {
                c.fill(ticket, t, &record());
            }
        }
        c
    }

    fn held(c: &Cache, t: &str) -> bool {
        matches!(c.lookup(t, 0), Lookup::Hit(_))
    }

    fn push(keys: Reply) -> Vec<Reply> {
        vec![Reply::Bulk(b"invalidate".to_vec()), keys]
    }

    #[test]
    fn an_invalidate_push_evicts_what_it_names_or_everything() {
        let c = holding(&["a", "b"]);
        let key = |k: &str| Reply::Bulk(format!("p:at:{k}").into_bytes());
        invalidate(&c, b"p:at:", push(Reply::Array(vec![key("a")])));
        assert!(!held(&c, "a") && held(&c, "b"));
        // Another kind of push is not an invalidation.
        invalidate(&c, b"p:at:", vec![Reply::Bulk(b"message".to_vec())]);
        assert!(held(&c, "b"));
        // A null (a flush, or the server lost track): everything.
        invalidate(&c, b"p:at:", push(Reply::Nil));
        assert!(!held(&c, "b"));
        // A key of another form: everything, to be safe.
        let c = holding(&["a"]);
        invalidate(&c, b"p:at:", push(Reply::Array(vec![Reply::Bulk(b"x".to_vec())])));
        assert!(!held(&c, "a"));
    }

    #[test]
    fn only_a_hello_answer_saying_master_is_a_primary() {
        let bulk = |t: &str| Reply::Bulk(t.as_bytes().to_vec());
        let hello = |role: &str| {
            Reply::Array(vec![
                bulk("server"),
                bulk("redis"),
                bulk("proto"),
                Reply::Int(3),
                bulk("role"),
                bulk(role),
                bulk("modules"),
                Reply::Array(vec![]),
            ])
        };
        assert_eq!(primary(&hello("master")), Some(true));
        assert_eq!(primary(&hello("primary")), Some(true));
        assert_eq!(primary(&hello("replica")), Some(false));
        assert_eq!(primary(&hello("slave")), Some(false));
        // No role said (a proxy's own answer, a PONG): not known, the cache stays off.
        assert_eq!(primary(&Reply::Array(vec![bulk("server"), bulk("redis")])), None);
        assert_eq!(primary(&Reply::Status("PONG".into())), None);
    }

    #[test]
    fn a_servers_identity_is_its_run_id() {
        use super::super::conn::run_id;
        let info = "# Server\r\nredis_version:7.0.15\r\nrun_id:9c7b6606ba11f954338900853efb4b61971a4a1b\r\n";
        assert_eq!(run_id(info), 0x9c7b_6606_ba11_f954);
        assert_eq!(run_id("# Cluster\r\ncluster_enabled:0\r\n"), 0);
        assert_eq!(run_id("run_id:short\r\n"), 0);
        assert!(super::super::same_server(0, 7) && super::super::same_server(7, 7));
        assert!(!super::super::same_server(7, 8));
    }

    #[test]
    fn a_refusal_turns_the_cache_off_but_other_failures_are_tried_again() {
        for (e, off) in [
            ("ERR unknown command 'HELLO'", true),
            ("ERR unknown subcommand 'TRACKING'", true),
            ("NOPROTO sorry, this protocol version is not supported", true),
            ("NOPERM this user has no permissions", true),
            ("LOADING Redis is loading the dataset in memory", false),
            ("BUSY Redis is busy running a script", false),
            ("WRONGPASS invalid username-password pair", false),
            ("ERR max number of clients reached", false),
            ("OOM command not allowed when used memory > 'maxmemory'", false),
        ] {
            let o = refused(Failure::Server(e.into()));
            assert_eq!(matches!(o, Outcome::Refused), off, "{e}");
        }
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(matches!(refused(Failure::Io(io)), Outcome::Failed));
    }
}
