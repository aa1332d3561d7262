//! Access tokens this connection read recently, served again without a SQLite read as
//! long as nothing was committed to the file since, by any connection of any process.
//!
//! How a commit is noticed without a read transaction: in WAL mode every commit, by any
//! connection, rewrites the WAL-index header at the start of the `-shm` file, which every
//! connection to the file has mapped (its `iChange` counter goes up, and its frame count and
//! checksums change; see "WAL-mode File Format", walformat.html: processes running different
//! SQLite versions share it, so its layout is fixed). Before each read the header is copied
//! (its two copies, as SQLite's readers do, some bytes read from memory); if it differs from
//! the one seen before, every entry becomes stale at once (an epoch goes up). A commit that
//! returned in another process before this read started has written the header by then, so
//! a token it deleted, revoked or rotated is never served from here.
//!
//! What is not seen here, `Db::ensure_in_place` (called first, as for every read) sees: a
//! file deleted or replaced under the path. An entry is served only before its expiry, as
//! judged against the caller's `now`, and only the hits of reads found to be current are
//! kept: nothing expired, nothing missing. The bound is a number of entries, replaced
//! first in, first out; a token is kept at its second read, so that reads spread over far
//! more tokens than fit (a million, in uniform order) do not pay for copies never used.
//! What is kept is the reply itself, as `wire::access_token` wrote it: a hit is one copy of
//! one string, not a record of six strings cloned and then written out again.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashMap};
use rusqlite::ffi;
use rusqlite::Connection;

use crate::model::is_expired;

/// How many tokens are kept (about 1 KiB each with JWT-sized tokens: the token and its reply).
pub(super) const RECENT_TOKENS: usize = 16_384;
/// Sets of the filter that admits a token at its second read: `SEEN_WAYS` fingerprints of
/// tokens read once in each (256 KiB in all, allocated at the first read).
const SEEN_SETS: usize = 1 << 14;
const SEEN_WAYS: usize = 4;

/// The WAL-index header, both copies (2 × 48 bytes), as 8-byte words.
type Header = [u64; 12];

struct Entry {
    epoch: u64,
    expires_at: Option<i64>,
    /// The token's reply, as `wire::access_token` writes it.
    text: Box<str>,
}

pub(super) struct Recent {
    entries: HashMap<Arc<str>, Entry>,
    /// The keys of `entries`, oldest first.
    order: VecDeque<Arc<str>>,
    /// Fingerprints of tokens read once (by hash set); a token is kept at its second read.
    seen: Vec<[u32; SEEN_WAYS]>,
    /// The way of a full set that the next fingerprint replaces, in turn.
    next_way: usize,
    hasher: DefaultHashBuilder,
    /// The entries of this epoch are current; it goes up whenever the header changes.
    epoch: u64,
    /// The header when `epoch` began, if it was read whole.
    header: Option<Header>,
}

impl Recent {
    pub(super) fn new() -> Self {
        Recent {
            entries: HashMap::new(),
            order: VecDeque::new(),
            seen: Vec::new(),
            next_way: 0,
            hasher: DefaultHashBuilder::default(),
            epoch: 0,
            header: None,
        }
    }

    /// Checks the file for commits since the last call: if any (or if that cannot be
    /// told), every entry becomes stale. Returns whether entries may be kept and served
    /// in this epoch. Call before reading the file, so what the read finds is at least as
    /// new as the header seen.
    pub(super) fn sync(&mut self, conn: &Connection) -> bool {
        let now = wal_header(conn);
        if now.is_none() || now != self.header {
            self.epoch += 1;
            self.header = now;
        }
        self.header.is_some()
    }

    /// The epoch: it goes up whenever `sync` finds the header changed or unreadable.
    pub(super) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The token's reply, if kept in this epoch and not expired at `now`.
    pub(super) fn get(&self, token: &str, now: i64) -> Option<String> {
        let e = self.entries.get(token)?;
        (e.epoch == self.epoch && !is_expired(e.expires_at, now)).then(|| String::from(&*e.text))
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether `token` was noted as read once (then no longer noted); else notes it.
    fn seen_before(&mut self, token: &str) -> bool {
        if self.seen.is_empty() {
            self.seen = vec![[0; SEEN_WAYS]; SEEN_SETS];
        }
        let hash = self.hasher.hash_one(token);
        let set = &mut self.seen[(hash as usize) & (SEEN_SETS - 1)];
        // Never 0, the mark of an empty way.
        let mark = ((hash >> 32) as u32) | 1;
        if let Some(way) = set.iter_mut().find(|w| **w == mark) {
            *way = 0;
            return true;
        }
        if let Some(way) = set.iter_mut().find(|w| **w == 0) {
            *way = mark;
        } else {
            set[self.next_way] = mark;
            self.next_way = (self.next_way + 1) % SEEN_WAYS;
        }
        false
    }

    /// Keeps the reply `text` of a token just read from the file (after `sync` returned
    /// true), expiring at `expires_at`, if it was read before; else notes it.
    pub(super) fn keep(&mut self, token: &str, expires_at: Option<i64>, text: &str) {
        if let Some(e) = self.entries.get_mut(token) {
            e.epoch = self.epoch;
            e.expires_at = expires_at;
            if *e.text != *text {
                e.text = text.into();
            }
            return;
        }
        if !self.seen_before(token) {
            return;
        }
        if self.order.len() >= RECENT_TOKENS {
            if let Some(old) = self.order.pop_front() {
                self.entries.remove(&*old);
            }
        }
        let key: Arc<str> = Arc::from(token);
        self.order.push_back(Arc::clone(&key));
        self.entries.insert(
            key,
            Entry {
                epoch: self.epoch,
                expires_at,
                text: text.into(),
            },
        );
    }
}

/// The start of the WAL index (the `-shm` file's first region) as the connection maps it,
/// through the VFS's own `xShmMap`, which returns the region it already maps; `None` if
/// there is none. It stays mapped while the connection is open.
fn wal_index(conn: &Connection) -> Option<*const u8> {
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: the handle is this open connection's, used on this thread only (the store's
    // mutex is held); FILE_POINTER writes the main file's `sqlite3_file*` through the
    // pointer, which lives for the call. The file lives as long as the connection.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_FILE_POINTER,
            (&mut file as *mut *mut ffi::sqlite3_file).cast(),
        )
    };
    if rc != ffi::SQLITE_OK || file.is_null() {
        return None;
    }
    // SAFETY: `file` is the open main file; its methods table is SQLite's VFS's, static.
    let methods = unsafe { (*file).pMethods.as_ref()? };
    if methods.iVersion < 2 {
        return None;
    }
    let map = methods.xShmMap?;
    let mut region: *mut std::ffi::c_void = std::ptr::null_mut();
    // SAFETY: region 0 of 32 KiB (the WAL-index page size), not extended: the VFS returns
    // the region it already maps for this connection's WAL (or null if none is mapped).
    let rc = unsafe { map(file, 0, 32 * 1024, 0, &mut region) };
    if rc != ffi::SQLITE_OK || region.is_null() {
        return None;
    }
    Some(region.cast::<u8>().cast_const())
}

/// The WAL's length in frames and how many of them checkpoints copied back into the file
/// (`mxFrame` in the header, `nBackfill` after its two copies; walformat.html).
#[cfg(test)]
pub(super) fn wal_frames(conn: &Connection) -> Option<(u32, u32)> {
    let index = wal_index(conn)?;
    // SAFETY: both offsets are within the mapped region (see `wal_index`), 4-byte aligned;
    // other connections write them, hence volatile reads.
    unsafe {
        let frames = std::ptr::read_volatile(index.add(16).cast::<u32>());
        let copied = std::ptr::read_volatile(index.add(96).cast::<u32>());
        Some((frames, copied))
    }
}

/// The WAL-index header of the connection's main file, read from the `-shm` mapping
/// SQLite keeps, or `None` if there is none or its two copies differ (a commit writing it
/// right now).
fn wal_header(conn: &Connection) -> Option<Header> {
    let words = wal_index(conn)?.cast::<u64>();
    let mut h: Header = [0; 12];
    // SAFETY: the region is at least 32 KiB, page-aligned, mapped while the connection is
    // open; other processes write it, hence volatile reads. A writer writes the second copy,
    // then the first; read in the other order, equal copies are one whole header.
    unsafe {
        for (i, w) in h.iter_mut().enumerate().take(6) {
            *w = std::ptr::read_volatile(words.add(i));
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        for (i, w) in h.iter_mut().enumerate().skip(6) {
            *w = std::ptr::read_volatile(words.add(i));
        }
    }
    (h[..6] == h[6..]).then_some(h)
}
