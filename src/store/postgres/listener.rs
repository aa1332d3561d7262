//! The listener: one connection per store, on a thread of its own (the shared I/O thread
//! runs only while a call runs), that `LISTEN`s on the schema's change feed (migration 7)
//! and evicts from the cache what each notification names, and pings itself through the
//! server (a `NOTIFY` on a channel of its own) while the cache is in use, which is what
//! lets the cache answer (see `cache`). A lost connection makes the cache void at once;
//! the listener connects again after a pause. A native thread keeps no Node event loop
//! alive; `close` (or the store dropped) stops it and waits for its goodbye to the server.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::cache::{parse_payload, Cache, PING_EVERY};

/// The pause before connecting again, doubled up to `MAX_PAUSE` while connecting fails.
const PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(5);
/// A connection whose pings never come back (a transaction-mode pooler) is given up,
/// and tried again after `GIVE_UP_PAUSE`: meanwhile the cache is off.
const NO_PING_BACK: Duration = Duration::from_secs(5);
const GIVE_UP_PAUSE: Duration = Duration::from_secs(60);
/// How long a ping or `LISTEN` may take before the connection counts as lost.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);
/// Pings asked for by reads or writes, at most one per this (a read flood while the
/// pings do not come back sends no flood of pings).
const MIN_PING_GAP: Duration = Duration::from_millis(1);

/// The schema's change feed channel (`nts_channel` of migration 7).
pub(super) fn channel(schema: &str) -> String {
    let d = Sha256::digest(schema.as_bytes());
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("nts_{}", &hex[..24])
}

pub(super) struct Listener {
    cache: Arc<Cache>,
    stop: Arc<Stop>,
    thread: Option<JoinHandle<()>>,
}

/// Tells one listener's thread to end.
struct Stop {
    flag: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Stop {
    fn stopping(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

impl Listener {
    /// Starts the listener's thread; `None` if no thread can start (the cache stays off).
    pub(super) fn start(
        cache: Arc<Cache>,
        config: tokio_postgres::Config,
        tls: MakeRustlsConnect,
        schema: &str,
        connect_timeout: Duration,
    ) -> Option<Listener> {
        let feed = channel(schema);
        let mut config = config;
        let mut name = format!("native-token-storage listener {schema}");
        name.truncate(63);
        config.application_name(&name);
        let own = format!("{feed}_{:08x}_{:08x}", std::process::id(), rand_u32());
        let c = cache.clone();
        let stop = Arc::new(Stop {
            flag: AtomicBool::new(false),
            notify: tokio::sync::Notify::new(),
        });
        let st = stop.clone();
        let thread = std::thread::Builder::new()
            .name("nts-pg-listener".into())
            .spawn(move || {
                let Some(rt) = super::runtime::build() else {
                    return;
                };
                let to = Server {
                    config,
                    tls,
                    feed,
                    own,
                    connect_timeout,
                };
                rt.block_on(run(&c, &st, &to));
            })
            .ok()?;
        Some(Listener {
            cache,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it (it says goodbye to the server first).
    pub(super) fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.flag.store(true, Ordering::Release);
        self.stop.notify.notify_one();
        self.cache.set_live(false);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.cache.set_live(false);
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.halt();
    }
}

/// A number unlikely to be another process's or store's (the private channel's name).
fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish() as u32
}

/// Where the listener connects, and the channels it listens on.
struct Server {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    /// The schema's change feed.
    feed: String,
    /// This store's own channel, for its pings.
    own: String,
    connect_timeout: Duration,
}

async fn run(cache: &Cache, stop: &Stop, to: &Server) {
    let mut pause = PAUSE;
    while !stop.stopping() {
        let outcome = session(cache, stop, to).await;
        cache.set_live(false);
        let wait = match outcome {
            Outcome::Stopped => return,
            Outcome::Failed => pause,
            Outcome::Lost => {
                pause = PAUSE;
                PAUSE
            }
            Outcome::NoPingBack => GIVE_UP_PAUSE,
        };
        if matches!(outcome, Outcome::Failed) {
            pause = (pause * 2).min(MAX_PAUSE);
        }
        if stop.stopping() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.notify.notified() => return,
        }
    }
}

enum Outcome {
    Stopped,
    /// Could not connect or listen.
    Failed,
    /// Was listening, then lost the connection.
    Lost,
    /// Listening, but its pings never came back.
    NoPingBack,
}

async fn session(cache: &Cache, stop: &Stop, to: &Server) -> Outcome {
    // The only waiter on `stop` while it runs (one `notify_one` wakes one waiter).
    let (client, mut connection) = match connect(stop, to).await {
        Connected::Yes(c) => *c,
        Connected::Stopped => return Outcome::Stopped,
        Connected::Failed => return Outcome::Failed,
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(m)) = messages.next().await {
            if let AsyncMessage::Notification(n) = m {
                if tx.send(n).is_err() {
                    break;
                }
            }
        }
    });
    // The pings go through a second connection: a ping comes back only if the server
    // delivers to the listening connection while it runs no statement of its own, which a
    // transaction-mode pooler does not (it hands the server connection to others between
    // transactions, and their notifications with it).
    let outcome = match connect(stop, to).await {
        Connected::Yes(c) => {
            let (pinger, pinger_connection) = *c;
            let pinger_driver = tokio::spawn(async move {
                let _ = pinger_connection.await;
            });
            let outcome = listen(cache, stop, &client, &pinger, &mut rx, &to.feed, &to.own).await;
            // A ping may still be on its way (its future dropped, not its statement): one more
            // statement, answered after it, so that the socket closes with nothing the server
            // is still to write ("connection to client lost" in its log otherwise).
            if !matches!(outcome, Outcome::Lost) {
                let _ = tokio::time::timeout(ANSWER_WITHIN, pinger.batch_execute("")).await;
            }
            drop(pinger);
            let _ = tokio::time::timeout(Duration::from_millis(500), pinger_driver).await;
            outcome
        }
        Connected::Stopped => Outcome::Stopped,
        Connected::Failed => Outcome::Failed,
    };
    if matches!(outcome, Outcome::Stopped | Outcome::NoPingBack) {
        // No notification is sent after this answers (those before it are read): the
        // socket is closed with nothing unread, so the server never writes to a closed
        // one ("connection to client lost" in its log).
        let _ = tokio::time::timeout(ANSWER_WITHIN, client.batch_execute("UNLISTEN *")).await;
    }
    // Goodbye to the server: the client dropped, its connection ends (Terminate, close).
    drop(client);
    let _ = tokio::time::timeout(Duration::from_millis(500), driver).await;
    outcome
}

type Connection = tokio_postgres::Connection<
    tokio_postgres::Socket,
    <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>>::Stream,
>;

enum Connected {
    Yes(Box<(tokio_postgres::Client, Connection)>),
    Stopped,
    Failed,
}

/// How long a stop waits for a connection under way to finish its handshake, so that it
/// can end it properly.
const HANDSHAKE_WITHIN: Duration = Duration::from_millis(250);

/// A connection, or `Stopped` if the store closes meanwhile. A handshake under way is let
/// finish (briefly) and the connection then ended with a goodbye: a socket closed in the
/// middle of it is one the server writes to after it closed ("could not send data to
/// client", "connection to client lost" in its log).
async fn connect(stop: &Stop, to: &Server) -> Connected {
    let connecting = tokio::time::timeout(
        to.connect_timeout.max(ANSWER_WITHIN),
        to.config.connect(to.tls.clone()),
    );
    tokio::pin!(connecting);
    tokio::select! {
        c = &mut connecting => match c {
            Ok(Ok(c)) => Connected::Yes(Box::new(c)),
            _ => Connected::Failed,
        },
        _ = stop.notify.notified() => {
            if let Ok(Ok(Ok((client, connection)))) =
                tokio::time::timeout(HANDSHAKE_WITHIN, &mut connecting).await
            {
                drop(client);
                let _ = tokio::time::timeout(HANDSHAKE_WITHIN, connection).await;
            }
            Connected::Stopped
        }
    }
}

async fn listen(
    cache: &Cache,
    stop: &Stop,
    client: &tokio_postgres::Client,
    pinger: &tokio_postgres::Client,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<tokio_postgres::Notification>,
    feed: &str,
    own: &str,
) -> Outcome {
    let sql = format!("LISTEN \"{feed}\"; LISTEN \"{own}\"");
    match tokio::time::timeout(ANSWER_WITHIN, client.batch_execute(&sql)).await {
        Ok(Ok(())) => {}
        _ => return Outcome::Failed,
    }
    // Changes committed from now on are delivered to this connection.
    cache.set_live(true);
    let since = Instant::now();
    let mut came_back = false;
    let mut seq: u64 = 0;
    let mut sent: VecDeque<(u64, Instant)> = VecDeque::new();
    let mut last_ping: Option<Instant> = None;
    loop {
        if stop.stopping() {
            return Outcome::Stopped;
        }
        if !came_back && since.elapsed() > NO_PING_BACK && !sent.is_empty() {
            return Outcome::NoPingBack;
        }
        // A first ping whatever the cache's use if none ever came back: it is what lets the
        // store's calls send named statements (see `call::PostgresStore::named_ok`).
        let prove = last_ping.is_none() && !cache.session_proved();
        let next = match (prove || cache.in_use(), last_ping) {
            (true, Some(t)) => t + PING_EVERY,
            (true, None) => Instant::now(),
            (false, _) => Instant::now() + Duration::from_secs(1),
        };
        let ping = tokio::select! {
            biased;
            _ = stop.notify.notified() => return Outcome::Stopped,
            n = rx.recv() => {
                let Some(n) = n else { return Outcome::Lost };
                if n.channel() == own {
                    if let Ok(k) = n.payload().parse::<u64>() {
                        while let Some(&(s, at)) = sent.front() {
                            if s > k {
                                break;
                            }
                            sent.pop_front();
                            if s == k {
                                came_back = true;
                                cache.proved(at);
                            }
                        }
                    }
                } else if let Some(what) = parse_payload(n.payload()) {
                    cache.invalidate(what);
                } else {
                    cache.invalidate(None);
                }
                false
            }
            _ = cache.wake.notified() => {
                if let Some(t) = last_ping {
                    let gap = t + MIN_PING_GAP;
                    if gap > Instant::now() {
                        tokio::time::sleep_until(gap.into()).await;
                    }
                }
                true
            }
            _ = tokio::time::sleep_until(next.into()) => prove || cache.in_use(),
        };
        if ping {
            seq += 1;
            let at = Instant::now();
            sent.push_back((seq, at));
            if sent.len() > 1024 {
                sent.pop_front();
            }
            last_ping = Some(at);
            let sql = format!("NOTIFY \"{own}\", '{seq}'");
            match tokio::time::timeout(ANSWER_WITHIN, pinger.batch_execute(&sql)).await {
                Ok(Ok(())) => {}
                _ => return Outcome::Lost,
            }
        }
    }
}
