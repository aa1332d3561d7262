//! The expiry buckets of the memory store: how many tokens (or users) expire in each
//! bucket of each level of `MEMORY_LEVEL_BITS`.

use std::collections::{btree_map, BTreeMap};

use super::tables::NEVER;
use crate::store::buckets::MEMORY_LEVEL_BITS;

/// How many tokens (or users) expire in each bucket of time, at each level of
/// `MEMORY_LEVEL_BITS`, so that stats can leave out the expired ones without visiting them.
#[derive(Default)]
pub(super) struct Histogram {
    levels: [BTreeMap<i64, u32>; 4],
}

impl Histogram {
    pub(super) fn add(&mut self, at: i64) {
        if at == NEVER {
            return;
        }
        for (map, bits) in self.levels.iter_mut().zip(MEMORY_LEVEL_BITS) {
            *map.entry(at >> bits).or_insert(0) += 1;
        }
    }

    pub(super) fn sub(&mut self, at: i64) {
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
    pub(super) fn upto(&self, now: i64) -> u64 {
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
