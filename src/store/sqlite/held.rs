//! One read transaction kept open across the synchronous `getAccessToken`s of one turn of
//! the JS thread (issue 18), instead of one begun and ended by each.
//!
//! A statement run outside a transaction begins a read transaction and ends it: it takes a
//! read mark in the WAL index and a shared lock on it (`fcntl`s on the `-shm` file), then
//! drops them, and the next read starts over. At a million tokens, where most gets are a
//! SQLite read (`recent` keeps only 16k replies), that was ~30 % of a get
//! (benchmark/PROFILE.md, "SQLite reads: one read transaction per turn").
//!
//! A held read is only ever served while it is the newest state of the file: before each
//! read, `recent::sync` compares the WAL-index header with the one seen before (every commit,
//! by any connection of any process, rewrites it; see `recent`). A changed header (or one
//! that cannot be read) ends the held transaction, and the read begins a new one, which
//! sees that commit. So a token deleted, revoked or rotated in another process before this
//! read started is never served from an older snapshot, as without holding.
//!
//! What ends it, besides a change seen:
//! - `SqliteStore::main`, before every other call on the connection: writes (`BEGIN
//!   IMMEDIATE` cannot start inside it, and must not commit the read as a write), getStats,
//!   the Promise API's reads, a backup;
//! - `Db::tidy`, the one write a holding get makes (removing the expired row it found);
//! - closing the connection, which rolls it back;
//! - `end_reads`, which the JS layer calls in a microtask after the first synchronous get of
//!   a turn, so the read never outlives the synchronous code that made it: while it is
//!   open, no checkpoint (by any process) can copy frames past its snapshot, so the WAL
//!   cannot start over.

use super::connection::Db;
use crate::error::Result;

impl Db {
    /// Holds a read transaction for the read about to run: a new one unless one is held
    /// and `fresh` is false (no commit seen since it began).
    pub(super) fn hold_read(&self, fresh: bool) -> Result<()> {
        if self.held.get() {
            if !fresh {
                return Ok(());
            }
            self.end_read()?;
        }
        if !self.conn.is_autocommit() {
            // Inside a transaction this connection did not begin for holding (never the
            // case on the store's paths): read within it, hold nothing.
            return Ok(());
        }
        // Deferred: the read transaction begins at the read, with the file as it is then.
        self.conn
            .prepare_cached("BEGIN")
            .and_then(|mut s| s.execute([]))
            .map_err(|e| self.err(e))?;
        self.held.set(true);
        Ok(())
    }

    /// Ends the held read transaction, if any.
    pub(super) fn end_read(&self) -> Result<()> {
        if !self.held.replace(false) || self.conn.is_autocommit() {
            return Ok(());
        }
        self.conn
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]))
            .map(drop)
            .map_err(|e| self.err(e))
    }
}
