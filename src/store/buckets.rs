//! The expiry buckets every store counts tokens by, so that `getStats` leaves out expired
//! tokens without visiting them: a token expiring at `t` (epoch ms) is in bucket
//! `t >> bits` of each level.

/// The memory store's levels, coarsest first: buckets of 2^20 ms (17.5 min), 2^14 ms
/// (16 s), 2^8 ms (256 ms) and 1 ms. Below the 17-minute buckets, the count of everything
/// expired by `now` sums at most 64 + 64 + 256 entries, however many tokens expire at the
/// same moment.
pub const MEMORY_LEVEL_BITS: [u32; 4] = [20, 14, 8, 0];

/// The finest counter buckets of SQLite and PostgreSQL: 2^12 ms (4 s), `expires_at >> 12`,
/// as SQLite's triggers (its migration 3) and PostgreSQL's (its migration 1) compute them.
/// A released migration is never edited: this value and the next stay.
pub const FINE_BUCKET_BITS: u32 = 12;

/// SQLite's coarse counter buckets: 2^20 ms (17.5 min), `expires_at >> 20` (PostgreSQL's
/// counters have it too, and one of 2^16 ms between, computed only in its SQL).
pub const COARSE_BUCKET_BITS: u32 = 20;
