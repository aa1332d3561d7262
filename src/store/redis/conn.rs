//! One connection: a socket (TLS for `rediss://`) with the query timeout on each read and
//! write, logged in (`AUTH`) and on its database (`SELECT`); commands sent and answered one
//! at a time; the store's Lua scripts run by their digest (`EVALSHA`), loaded once.

use std::io::{self, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use super::resp::{read_reply, write_command, Reply};
use super::scripts::Script;
use super::url::Target;
use crate::error::StoreError;
use crate::store::spin::Spin;

/// Why a command failed: the socket (its outcome unknown, the connection dropped), an
/// error reply of the server (its text, of which only the first word is ever shown), or
/// the store's own.
#[derive(Debug)]
pub(super) enum Failure {
    Io(io::Error),
    Server(String),
    Store(StoreError),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

enum Stream {
    Tcp(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Tcp(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

/// Whether the socket is open with nothing waiting to be read: a peek that would block. On
/// Unix one `recv(MSG_PEEK | MSG_DONTWAIT)`, where switching the socket to non-blocking and
/// back took two more system calls on every call of the store (about 5 µs a get here).
#[cfg(unix)]
fn nothing_to_read(tcp: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut b = [0u8; 1];
    // SAFETY: a valid open socket of `tcp`, and a buffer of the length given.
    let n = unsafe {
        libc::recv(
            tcp.as_raw_fd(),
            b.as_mut_ptr().cast(),
            b.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
}

#[cfg(not(unix))]
fn nothing_to_read(tcp: &TcpStream) -> bool {
    if tcp.set_nonblocking(true).is_err() {
        return false;
    }
    let mut b = [0u8; 1];
    let peeked = tcp.peek(&mut b);
    let back = tcp.set_nonblocking(false).is_ok();
    back && matches!(peeked, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// An open, logged-in connection.
pub(super) struct Conn {
    stream: BufReader<Stream>,
    out: Vec<u8>,
    /// Whether a command polls for its answer before sleeping on the socket.
    spin: Spin,
    /// The store's epoch when it was opened (`RedisStore::close` ends older ones).
    pub(super) epoch: u64,
    /// The server it reached: the first 16 hex digits of its `run_id` (`INFO server`), 0
    /// if not known (a user not allowed `INFO`). A process's own, so a failover behind one
    /// host name shows as another server (see `tracking`).
    pub(super) server: u64,
}

impl Conn {
    /// Connects to `target` within `connect_timeout` (each address tried), with `timeout`
    /// on every later read and write, and logs in.
    pub(super) fn open(
        target: &Target,
        tls: Option<&Arc<rustls::ClientConfig>>,
        connect_timeout: Duration,
        timeout: Duration,
        epoch: u64,
    ) -> Result<Conn, Failure> {
        let addrs = (target.host.as_str(), target.port).to_socket_addrs()?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
        let mut tcp = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, connect_timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let tcp = tcp.ok_or(last)?;
        tcp.set_nodelay(true)?;
        // The handshake and login within the connect timeout; commands within the query's.
        tcp.set_read_timeout(Some(connect_timeout))?;
        tcp.set_write_timeout(Some(connect_timeout))?;
        let stream = match tls {
            None => Stream::Tcp(tcp),
            Some(config) => {
                let name = ServerName::try_from(target.host.clone()).map_err(|_| {
                    Failure::Store(StoreError::Config(format!(
                        "{}: the host is not a valid TLS server name",
                        target.shown
                    )))
                })?;
                let session = rustls::ClientConnection::new(config.clone(), name).map_err(|_| {
                    Failure::Store(StoreError::Internal("rustls cannot start a session"))
                })?;
                let mut s = rustls::StreamOwned::new(session, tcp);
                while s.conn.is_handshaking() {
                    s.conn.complete_io(&mut s.sock)?;
                }
                Stream::Tls(Box::new(s))
            }
        };
        let mut conn = Conn {
            stream: BufReader::new(stream),
            out: Vec::new(),
            spin: Spin::default(),
            epoch,
            server: 0,
        };
        if let Some(password) = &target.password {
            match &target.user {
                Some(user) => conn.command(&[b"AUTH", user.as_bytes(), password.as_bytes()])?,
                None => conn.command(&[b"AUTH", password.as_bytes()])?,
            };
        }
        // A Cluster node would refuse the scripts' keys (computed, not declared): refused
        // here by name instead. A user not allowed INFO is not asked. Its `run_id` in the
        // same round trip (two sections: Redis 7.0, Valkey).
        let info = match conn.command(&[b"INFO", b"server", b"cluster"]) {
            Ok(reply) => reply.text().unwrap_or_default(),
            Err(Failure::Server(_)) => String::new(),
            Err(e) => return Err(e),
        };
        conn.server = run_id(&info);
        if info.contains("cluster_enabled:1") {
            return Err(Failure::Store(StoreError::Config(format!(
                "{} is a Redis Cluster node, and Redis Cluster is not supported; give the URL \
                 of a single server or primary",
                target.shown
            ))));
        }
        if target.db != 0 {
            conn.command(&[b"SELECT", target.db.to_string().as_bytes()])?;
        }
        let tcp = conn.stream.get_ref().tcp();
        tcp.set_read_timeout(Some(timeout))?;
        tcp.set_write_timeout(Some(timeout))?;
        Ok(conn)
    }

    /// Whether the server has not closed the connection while it was kept (a restart, an
    /// idle timeout, `CLIENT KILL`): nothing is waiting to be read, and the socket is open.
    /// Checked before a kept connection is used, so that a write is not sent on a dead one
    /// (its outcome would then be unknown).
    pub(super) fn still_open(&self) -> bool {
        if !self.stream.buffer().is_empty() {
            return false;
        }
        nothing_to_read(self.stream.get_ref().tcp())
    }

    /// Sends one command and reads its reply; an error reply is `Failure::Server`.
    pub(super) fn command(&mut self, args: &[&[u8]]) -> Result<Reply, Failure> {
        self.out.clear();
        write_command(&mut self.out, args);
        let stream = self.stream.get_mut();
        stream.write_all(&self.out)?;
        stream.flush()?;
        #[cfg(unix)]
        if self.stream.buffer().is_empty() {
            use std::os::fd::AsRawFd;
            let fd = self.stream.get_ref().tcp().as_raw_fd();
            self.spin.wait(fd);
        }
        match read_reply(&mut self.stream)? {
            Reply::Error(e) => Err(Failure::Server(e)),
            reply => Ok(reply),
        }
    }

    /// Runs `script` with `args` (its `ARGV`; no `KEYS`) by its digest, loading it first if
    /// this process does not know its digest yet; a server that lost it (restarted,
    /// `SCRIPT FLUSH`) answers `NOSCRIPT` before running anything, and is sent the script.
    pub(super) fn eval(&mut self, script: &Script, args: &[Vec<u8>]) -> Result<Reply, Failure> {
        let sha = match script.sha() {
            Some(sha) => sha,
            None => {
                let loaded = self
                    .command(&[b"SCRIPT", b"LOAD", script.source().as_bytes()])?
                    .text()
                    .ok_or(StoreError::Internal("SCRIPT LOAD gave no digest"))?;
                script.set_sha(loaded)
            }
        };
        let mut all: Vec<&[u8]> = Vec::with_capacity(args.len() + 3);
        all.extend_from_slice(&[b"EVALSHA", sha.as_bytes(), b"0"]);
        all.extend(args.iter().map(Vec::as_slice));
        match self.command(&all) {
            Err(Failure::Server(e)) if e.starts_with("NOSCRIPT") => {
                all[0] = b"EVAL";
                all[1] = script.source().as_bytes();
                self.command(&all)
            }
            other => other,
        }
    }
}

/// What the cache's invalidation connection (`tracking`) needs besides `command`: its
/// commands sent without waiting, its replies and pushes read as they come.
impl Conn {
    /// Sends one command; its reply is read later (`read`).
    pub(super) fn send(&mut self, args: &[&[u8]]) -> io::Result<()> {
        self.out.clear();
        write_command(&mut self.out, args);
        let stream = self.stream.get_mut();
        stream.write_all(&self.out)?;
        stream.flush()
    }

    /// The next reply or push, waited for up to the read timeout.
    pub(super) fn read(&mut self) -> io::Result<Reply> {
        read_reply(&mut self.stream)
    }

    /// Whether a reply has begun to arrive within `within` (then read it with `read`, which
    /// waits up to `answer` for the rest); an error if the server closed the connection.
    pub(super) fn readable(&mut self, within: Duration, answer: Duration) -> io::Result<bool> {
        if !self.stream.buffer().is_empty() || self.tls_plaintext()? {
            return Ok(true);
        }
        let tcp = self.stream.get_ref().tcp();
        tcp.set_read_timeout(Some(within.max(Duration::from_millis(1))))?;
        let mut b = [0u8; 1];
        let peeked = tcp.peek(&mut b);
        tcp.set_read_timeout(Some(answer))?;
        match peeked {
            Ok(0) => Err(closed()),
            Ok(_) => match self.stream.get_mut() {
                Stream::Tcp(_) => Ok(true),
                // Bytes on the socket need not be a reply (a TLS 1.3 session ticket): the
                // records there are read (without waiting: they are there) and decrypted.
                Stream::Tls(s) => {
                    if s.conn.read_tls(&mut s.sock)? == 0 {
                        return Err(closed());
                    }
                    self.tls_plaintext()
                }
            },
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether TLS records already read from the socket hold data not read yet.
    fn tls_plaintext(&mut self) -> io::Result<bool> {
        let Stream::Tls(s) = self.stream.get_mut() else {
            return Ok(false);
        };
        let state = s
            .conn
            .process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(state.plaintext_bytes_to_read() > 0)
    }

    /// A handle on the socket, to shut it down from another thread.
    pub(super) fn socket(&self) -> io::Result<TcpStream> {
        self.stream.get_ref().tcp().try_clone()
    }
}

/// The first 16 hex digits of `run_id` in an `INFO` reply (40 hex digits, random at the
/// server's start), 0 if none.
pub(super) fn run_id(info: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix("run_id:"))
        .and_then(|id| id.trim().get(..16))
        .and_then(|id| u64::from_str_radix(id, 16).ok())
        .map_or(0, |n| n.max(1))
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the server closed the connection",
    )
}

/// Arguments of a script or command, built in order.
#[derive(Default)]
pub(super) struct Args(pub Vec<Vec<u8>>);

impl Args {
    /// Starting with the key prefix, every script's `ARGV[1]`.
    pub(super) fn new(prefix: &str) -> Args {
        Args(vec![prefix.as_bytes().to_vec()])
    }

    pub(super) fn push(&mut self, v: impl AsRef<[u8]>) -> &mut Args {
        self.0.push(v.as_ref().to_vec());
        self
    }

    /// An optional value: `""` for none, `=` and the value for one.
    pub(super) fn opt(&mut self, v: Option<impl AsRef<[u8]>>) -> &mut Args {
        let mut a = Vec::new();
        if let Some(v) = v {
            a.push(b'=');
            a.extend_from_slice(v.as_ref());
        }
        self.0.push(a);
        self
    }
}
