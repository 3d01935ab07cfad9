//! The in-memory copy of one leg's checksum table (`primary.sum`), and a small join of futures.
//!
//! A head read from the primary checks each block against its checksum entry. Reading that entry
//! from the device on every read costs a second I/O per read (it made random reads from the
//! primary slower than from the secondary, whose checksums live in memory). So the controller
//! keeps what it knows of each leg's table in memory, in *pages* of [`SUM_PAGE_ENTRIES`] entries
//! (4 KiB of table, covering 1024 blocks):
//!
//! * A page is **loaded lazily**, from the device, the first time a read needs one of its
//!   entries, and then **kept**: a read is then one image read and an in-memory compare.
//! * Every commit the controller makes to the leg **patches** the loaded pages it touches
//!   ([`SumCache::apply`]), so the copy stays in step with writes, repairs, scrubs and
//!   resilvers; a failed commit (the leg is degraded) or a resilver, replacement or rebuild drops
//!   the leg's pages ([`SumCache::clear`]), and they are loaded again from the device later.
//! * A loaded entry is what the device held (or what the controller wrote) — it is not trusted
//!   more than the device was: a block whose data fails it is taken from another copy and the
//!   leg is repaired (data and entry), exactly as before.
//!
//! **Memory**: 4 bytes per block per leg, for the pages read so far: 256 KiB per leg for a
//! 256 MiB volume in 4 KiB blocks, 256 MiB per leg for a 256 GiB volume. At most
//! [`SUM_CACHE_MAX_PAGES`] pages are kept per leg (64 MiB, covering 64 GiB of volume in 4 KiB
//! blocks, 8 GiB in 512-byte blocks); past that a page is evicted and later read from the device
//! again (the behaviour without a cache).
//!
//! **What it changes**: damage to a checksum entry *on the device* after its page was loaded is
//! no longer seen by reads (they compare with the copy in memory, which is right); it is found
//! and repaired by [`scrub`](super::Mirror::scrub), which reads the device's table and
//! checks it against the data and against this copy. Damage to a leg's *data* is still found by
//! the first read of the block.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use rustc_hash::FxHashMap;

use super::layout::{SUM_ENTRY_LEN, SUM_OBJECT};
use crate::storage::{Change, Commit};

/// Checksum entries per page of a leg's in-memory table.
pub(crate) const SUM_PAGE_ENTRIES: u64 = 1024;
/// Bytes per page of a leg's in-memory table (one 4 KiB read).
pub(crate) const SUM_PAGE_BYTES: usize = (SUM_PAGE_ENTRIES * SUM_ENTRY_LEN) as usize;
/// Most pages kept per leg: 64 MiB of checksums.
pub(crate) const SUM_CACHE_MAX_PAGES: usize = 16384;

type Page = Box<[u8; SUM_PAGE_BYTES]>;

/// The loaded pages of one leg's checksum table (see the [module documentation](self)).
#[derive(Debug)]
pub(crate) struct SumCache {
    pages: FxHashMap<u64, Page>,
    /// The loaded pages in the order they were loaded: the first is evicted when full.
    loaded: std::collections::VecDeque<u64>,
    max_pages: usize,
}

impl Default for SumCache {
    fn default() -> Self {
        SumCache::with_max_pages(SUM_CACHE_MAX_PAGES)
    }
}

impl SumCache {
    /// An empty cache keeping at most `max_pages` pages (at least one).
    pub(crate) fn with_max_pages(max_pages: usize) -> Self {
        SumCache {
            pages: FxHashMap::default(),
            loaded: std::collections::VecDeque::new(),
            max_pages: max_pages.max(1),
        }
    }

    /// The page holding block `addr`'s entry.
    pub(crate) fn page_of(addr: u64) -> u64 {
        addr / SUM_PAGE_ENTRIES
    }

    /// Whether page `page` is loaded.
    pub(crate) fn has_page(&self, page: u64) -> bool {
        self.pages.contains_key(&page)
    }

    /// Block `addr`'s entry, if its page is loaded.
    pub(crate) fn get(&self, addr: u64) -> Option<u32> {
        let page = self.pages.get(&Self::page_of(addr))?;
        let at = ((addr % SUM_PAGE_ENTRIES) * SUM_ENTRY_LEN) as usize;
        let b = page.get(at..at + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Stores page `page` as read from the device (`bytes`: the table from byte
    /// `page * SUM_PAGE_BYTES`; missing bytes read as zero). When full, evicts the page loaded
    /// longest ago (first in, first out: a scan larger than the cache cycles through it rather
    /// than evicting one hash bucket's page over and over).
    pub(crate) fn insert_page(&mut self, page: u64, bytes: &[u8]) {
        if !self.pages.contains_key(&page) {
            while self.pages.len() >= self.max_pages {
                match self.loaded.pop_front() {
                    Some(victim) => {
                        self.pages.remove(&victim);
                    }
                    None => break,
                }
            }
            self.loaded.push_back(page);
        }
        let mut p: Page = Box::new([0u8; SUM_PAGE_BYTES]);
        let n = bytes.len().min(SUM_PAGE_BYTES);
        p[..n].copy_from_slice(&bytes[..n]);
        self.pages.insert(page, p);
    }

    /// Brings the loaded pages in step with a commit that reached the device: every write to
    /// the checksum table is copied into the pages it overlaps; a truncation or deletion of the
    /// table drops every page.
    pub(crate) fn apply(&mut self, commit: &Commit) {
        for change in &commit.changes {
            match change {
                Change::Write {
                    object,
                    offset,
                    data,
                } if object == SUM_OBJECT => self.write(*offset, data),
                Change::Truncate { object, .. } | Change::Delete { object }
                    if object == SUM_OBJECT =>
                {
                    self.clear()
                }
                _ => {}
            }
        }
    }

    /// Copies `data`, written at byte `offset` of the table, into the loaded pages.
    fn write(&mut self, offset: u64, data: &[u8]) {
        if self.pages.is_empty() || data.is_empty() {
            return;
        }
        let page_bytes = SUM_PAGE_BYTES as u64;
        let end = offset.saturating_add(data.len() as u64);
        let mut at = offset;
        // Bounded: each round moves `at` to the next page boundary or to `end`.
        while at < end {
            let page = at / page_bytes;
            let in_page = (at % page_bytes) as usize;
            let n = (SUM_PAGE_BYTES - in_page).min((end - at) as usize);
            if let Some(p) = self.pages.get_mut(&page) {
                let from = (at - offset) as usize;
                p[in_page..in_page + n].copy_from_slice(&data[from..from + n]);
            }
            at += n as u64;
        }
    }

    /// Drops every page.
    pub(crate) fn clear(&mut self) {
        self.pages = FxHashMap::default();
        self.loaded.clear();
    }

    /// Number of pages loaded.
    #[cfg(test)]
    pub(crate) fn pages(&self) -> usize {
        self.pages.len()
    }
}

/// Runs `futures` concurrently on the calling task and returns their outputs in order.
///
/// Every pending future is polled again whenever the task is woken, so futures that wait on
/// separate devices (IndexedDB transactions, a thread per device) make progress together. A
/// backend whose futures complete on their first poll (the directory backend does its I/O
/// synchronously) runs them one after the other, in order.
pub(crate) async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut running: Vec<Option<Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = running.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, out) in running.iter_mut().zip(outputs.iter_mut()) {
            if let Some(fut) = slot {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *out = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_bytes(fill: u8) -> Vec<u8> {
        vec![fill; SUM_PAGE_BYTES]
    }

    #[test]
    fn writes_patch_only_loaded_pages() {
        let mut cache = SumCache::default();
        cache.insert_page(1, &page_bytes(0));
        assert_eq!(cache.get(5), None);
        assert_eq!(cache.get(SUM_PAGE_ENTRIES), Some(0));
        // A write spanning pages 0, 1 and 2: only page 1 is loaded and patched.
        let first = SUM_PAGE_ENTRIES - 2;
        let entries: Vec<u8> = (0..SUM_PAGE_ENTRIES + 4)
            .flat_map(|k| (first + k).wrapping_mul(2654435761).to_le_bytes()[..4].to_vec())
            .collect();
        let mut commit = Commit::new(true);
        commit.write(SUM_OBJECT, first * SUM_ENTRY_LEN, entries.clone());
        commit.write("primary.img", 0, vec![1; 16]);
        cache.apply(&commit);
        assert_eq!(cache.pages(), 1);
        for addr in SUM_PAGE_ENTRIES..2 * SUM_PAGE_ENTRIES {
            let want = (addr.wrapping_mul(2654435761) as u32).to_le_bytes();
            assert_eq!(cache.get(addr), Some(u32::from_le_bytes(want)), "{addr}");
        }
        assert_eq!(cache.get(2 * SUM_PAGE_ENTRIES), None);
        // A write not aligned on an entry patches exactly its bytes.
        let mut commit = Commit::new(false);
        commit.write(SUM_OBJECT, SUM_PAGE_BYTES as u64 + 2, vec![0xAB]);
        cache.apply(&commit);
        let b = cache.get(SUM_PAGE_ENTRIES).unwrap_or(0).to_le_bytes();
        assert_eq!(b[2], 0xAB);
        // Truncating the table drops everything.
        let mut commit = Commit::new(false);
        commit.truncate(SUM_OBJECT, 0);
        cache.apply(&commit);
        assert_eq!(cache.pages(), 0);
    }

    #[test]
    fn short_pages_read_as_zero_and_the_cache_is_bounded() {
        let mut cache = SumCache::with_max_pages(3);
        cache.insert_page(0, &[0xFF; 8]);
        assert_eq!(cache.get(1), Some(u32::MAX));
        assert_eq!(cache.get(2), Some(0));
        for page in 1..10 {
            cache.insert_page(page, &page_bytes(page as u8));
            assert!(cache.pages() <= 3);
            assert!(cache.has_page(page));
            // First in, first out: the three newest pages are the ones kept.
            if page >= 2 {
                assert!(
                    cache.has_page(page - 1) && cache.has_page(page - 2),
                    "{page}"
                );
            }
        }
        // Reloading a page that is in the cache evicts nothing.
        cache.insert_page(8, &page_bytes(8));
        assert!(cache.has_page(7) && cache.has_page(8) && cache.has_page(9));
        cache.clear();
        assert_eq!(cache.pages(), 0);
        assert_eq!(cache.get(0), None);
    }

    #[test]
    fn join_all_keeps_the_order_and_interleaves() {
        use std::cell::RefCell;
        let log = RefCell::new(Vec::new());
        let yield_once = || {
            let mut done = false;
            std::future::poll_fn(move |cx| {
                if done {
                    Poll::Ready(())
                } else {
                    done = true;
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            })
        };
        let futures: Vec<_> = (0..3)
            .map(|i| {
                let log = &log;
                async move {
                    log.borrow_mut().push((i, 'a'));
                    yield_once().await;
                    log.borrow_mut().push((i, 'b'));
                    i * 10
                }
            })
            .collect();
        let out = pollster::block_on(join_all(futures));
        assert_eq!(out, vec![0, 10, 20]);
        // Every future started before any finished: they ran concurrently.
        let log = log.into_inner();
        assert_eq!(&log[..3], &[(0, 'a'), (1, 'a'), (2, 'a')]);
        assert_eq!(&log[3..], &[(0, 'b'), (1, 'b'), (2, 'b')]);
    }
}
