//! The memory store's big arrays (the slab of slots and the two look-up tables) asked to be
//! backed by 2 MiB pages where the kernel offers them ("transparent huge pages",
//! `madvise` mode: Debian's and Ubuntu's default). At a million tokens a get reads the
//! look-up table and the slot at random places in ~300 MB; with 4 KiB pages each read is
//! also a page-table walk (two nested ones in a virtual machine), with 2 MiB pages the
//! CPU's TLB covers them (PROFILE.md, "Memory at 1M").
//!
//! Only advice: `madvise(MADV_HUGEPAGE)` on whole 2 MiB pages inside a block the store
//! owns changes which pages back it, never what it holds, and a kernel that refuses (or
//! another system) leaves it on ordinary pages. The blocks themselves come from the global
//! allocator as before, so growing the slab is still `realloc` (a move of the mapping, no
//! copy).

use std::alloc::Layout;
use std::ptr::NonNull;

use allocator_api2::alloc::{AllocError, Allocator, Global};

/// Blocks smaller than this are not advised: a huge page would hold the whole block and
/// its neighbours in the heap.
const MIN_ADVISED: usize = 4 << 20;
const HUGE_PAGE: usize = 2 << 20;

/// Advises the whole 2 MiB pages of `len` bytes at `start` (of a block the caller owns).
pub(super) fn advise(start: *const u8, len: usize) {
    if len < MIN_ADVISED {
        return;
    }
    let first = (start as usize).next_multiple_of(HUGE_PAGE);
    let end = (start as usize + len) / HUGE_PAGE * HUGE_PAGE;
    if end <= first {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: the range lies inside a block the caller owns, and MADV_HUGEPAGE changes only
    // which physical pages back it, never its contents; a failure (no THP in this kernel)
    // changes nothing and is ignored.
    unsafe {
        libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
    }
}

/// Advises a vector's whole buffer (its capacity); call when the capacity changed.
pub(super) fn advise_vec<T>(v: &Vec<T>) {
    advise(v.as_ptr().cast(), v.capacity() * std::mem::size_of::<T>());
}

/// The global allocator, with each large block advised as it is handed out: the look-up
/// tables' (`hashbrown::HashTable` allocates a new table and moves the entries when it
/// grows).
#[derive(Clone, Copy, Default)]
pub(super) struct Huge;

// SAFETY: every block comes from `Global` and goes back to it with the same layout, so
// `Global`'s guarantees hold; `advise` does not change a block's contents or validity.
unsafe impl Allocator for Huge {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let block = Global.allocate(layout)?;
        advise(block.as_ptr().cast::<u8>(), block.len());
        Ok(block)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's promise (`ptr` from `allocate` with `layout`) is passed on.
        unsafe { Global.deallocate(ptr, layout) }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use hashbrown::HashTable;

    /// The `VmFlags` of the mapping that holds `at` (from /proc/self/smaps).
    fn flags_at(at: usize) -> String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((a, b)) = range.split_once('-') {
                    if let (Ok(a), Ok(b)) =
                        (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                    {
                        inside = a <= at && at < b;
                        continue;
                    }
                }
            }
            if inside {
                if let Some(flags) = line.strip_prefix("VmFlags:") {
                    return flags.to_owned();
                }
            }
        }
        String::new()
    }

    /// Whether the mapping at `at` is advised; true where this kernel has no transparent
    /// huge pages at all (then `madvise` refuses and only the contents can be checked).
    fn advised(at: usize) -> bool {
        !std::path::Path::new("/sys/kernel/mm/transparent_hugepage").exists()
            || flags_at(at).split_whitespace().any(|f| f == "hg")
    }

    #[test]
    fn a_grown_vector_is_advised_a_small_one_is_not() {
        let small: Vec<u64> = Vec::with_capacity(1024);
        advise_vec(&small);
        assert!(!advised(small.as_ptr() as usize));
        let mut big: Vec<u64> = Vec::with_capacity(1024);
        big.resize(3 << 20, 7); // 24 MiB
        advise_vec(&big);
        let middle = big.as_ptr() as usize + (12 << 20);
        assert!(advised(middle), "{}", flags_at(middle));
        assert!(big.iter().all(|&v| v == 7));
    }

    #[test]
    fn a_large_table_is_advised_and_keeps_its_entries() {
        let mut table: HashTable<u64, Huge> = HashTable::new_in(Huge);
        let hash = |v: &u64| v.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for v in 0..2_000_000u64 {
            table.insert_unique(hash(&v), v, hash);
        }
        let any = table.find(hash(&1_000_000), |&v| v == 1_000_000).unwrap();
        assert!(advised(any as *const u64 as usize));
        assert!((0..2_000_000u64).all(|v| table.find(hash(&v), |&w| w == v).is_some()));
    }
}
