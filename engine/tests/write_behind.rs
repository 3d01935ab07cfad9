//! The store tells the backend which bytes it has written and will make durable later
//! ([`Storage::write_behind`]), so that a backend can write them to the medium while more are
//! prepared: a merge, window by window, and the write buffer each time it fills and goes to the
//! head's segment. Checked on a backend that records every write, hint and durable commit: each
//! such write is hinted after it is made and before the flush that makes it durable, and no hint
//! reaches past the writes it follows.

use std::cell::RefCell;
use std::rc::Rc;

use pollster::block_on;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_engine::clock::ManualClock;
use strata_engine::storage::memory::MemoryStorage;
use strata_engine::storage::{Change, Commit, Storage, StorageError};
use strata_engine::{CreateOptions, Store, VolumeId};

const BS: usize = 4096;
/// Enough blocks for several merge windows (4 MiB each, 1,024 blocks of 4 KiB).
const BLOCKS: u64 = 12_000;

#[derive(Debug, Clone, PartialEq)]
enum Event {
    /// A write by a commit that was not durable: (object, offset, length).
    Write(String, u64, u64),
    /// A write-behind hint: (object, offset, length).
    Hint(String, u64, u64),
    /// A durable commit.
    Durable,
}

#[derive(Clone)]
struct Recording {
    inner: MemoryStorage,
    events: Rc<RefCell<Vec<Event>>>,
}

impl Storage for Recording {
    fn kind(&self) -> &'static str {
        "recording"
    }

    async fn list(&self) -> Result<Vec<String>, StorageError> {
        self.inner.list().await
    }

    async fn len(&self, object: &str) -> Result<Option<u64>, StorageError> {
        self.inner.len(object).await
    }

    async fn read_at(
        &self,
        object: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StorageError> {
        self.inner.read_at(object, offset, buf).await
    }

    fn write_behind(&self, object: &str, offset: u64, len: u64) {
        let hint = Event::Hint(object.to_string(), offset, len);
        self.events.borrow_mut().push(hint);
    }

    async fn commit(&mut self, commit: Commit) -> Result<(), StorageError> {
        {
            let mut events = self.events.borrow_mut();
            for change in &commit.changes {
                if let Change::Write {
                    object,
                    offset,
                    data,
                } = change
                {
                    if !commit.durable && !commit.unsynced && !data.is_empty() {
                        events.push(Event::Write(object.clone(), *offset, data.len() as u64));
                    }
                }
            }
            if commit.durable {
                events.push(Event::Durable);
            }
        }
        self.inner.commit(commit).await
    }
}

#[test]
fn a_merge_hints_every_window_of_baseline_writes_before_the_flush_that_makes_them_durable() {
    let seed = std::env::var("STRATA_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261206u64);
    println!("seed {seed} (replay with STRATA_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let events = Rc::new(RefCell::new(Vec::new()));
    let storage = Recording {
        inner: MemoryStorage::new(),
        events: events.clone(),
    };
    let mut store = block_on(Store::create(
        storage,
        CreateOptions::new(BLOCKS).block_size(BS as u32),
        Rc::new(ManualClock::new(1_000)),
    ))
    .expect("create");
    // A third of the blocks, at random addresses (some written twice).
    for _ in 0..BLOCKS / 3 {
        let addr = rng.random_range(0..BLOCKS);
        let fill = rng.random_range(1..=255u8);
        block_on(store.write(addr, &vec![fill; BS])).expect("write");
    }
    let snapshot = block_on(store.snapshot(None)).expect("snapshot");
    let image = block_on(store.read_at(snapshot, 0, BLOCKS)).expect("read");
    events.borrow_mut().clear();
    block_on(store.merge(snapshot, &mut |_| true)).expect("merge");
    assert_eq!(
        block_on(store.read_at(VolumeId::BASELINE, 0, BLOCKS)).expect("read"),
        image,
        "the baseline reads the merged snapshot"
    );

    let events = events_of(&events.borrow(), "baseline");
    let (writes, hints) = check_hinted(&events);
    let windows = (BLOCKS / 3).div_ceil(1024) as usize;
    assert!(
        writes > hints && hints >= windows - 1 && hints <= windows,
        "{writes} writes, {hints} hints, about {windows} windows"
    );
}

#[test]
fn a_write_buffer_that_fills_is_hinted_as_it_goes_to_the_segment_and_a_sync_is_not() {
    let events = Rc::new(RefCell::new(Vec::new()));
    let storage = Recording {
        inner: MemoryStorage::new(),
        events: events.clone(),
    };
    let mut store = block_on(Store::create(
        storage,
        CreateOptions::new(BLOCKS).block_size(BS as u32),
        Rc::new(ManualClock::new(1_000)),
    ))
    .expect("create");
    store.set_write_buffer_bytes(64 << 10);
    events.borrow_mut().clear();
    // 1 MiB in 4 KiB blocks: the 64 KiB buffer fills and goes to the segment about 16 times.
    for addr in 0..256 {
        block_on(store.write(addr, &vec![(addr % 255) as u8 + 1; BS])).expect("write");
    }
    block_on(store.sync()).expect("sync");
    let events = events.borrow();
    let segment_writes: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::Write(o, ..) | Event::Hint(o, ..) if o.starts_with("seg")))
        .collect();
    let (writes, hints) = check_hinted(&segment_writes.into_iter().cloned().collect::<Vec<_>>());
    assert!(
        writes >= 15 && hints == writes,
        "{writes} buffer writes, {hints} hints"
    );
    assert_eq!(
        events.last(),
        Some(&Event::Durable),
        "the sync's own write is not hinted"
    );
}

/// The events of `object` (and every durable commit).
fn events_of(events: &[Event], object: &str) -> Vec<Event> {
    events
        .iter()
        .filter(|e| match e {
            Event::Write(o, ..) | Event::Hint(o, ..) => o == object,
            Event::Durable => true,
        })
        .cloned()
        .collect()
}

/// Checks that every write is hinted after it is made and before the next durable commit, each
/// hint spanning exactly the writes since the one before; returns (writes, hints).
fn check_hinted(events: &[Event]) -> (usize, usize) {
    let mut unhinted: Vec<(u64, u64)> = Vec::new();
    let (mut writes, mut hints) = (0, 0);
    for (i, event) in events.iter().enumerate() {
        match *event {
            Event::Write(_, offset, len) => {
                writes += 1;
                unhinted.push((offset, len));
            }
            Event::Hint(_, offset, len) => {
                hints += 1;
                assert!(
                    !unhinted.is_empty(),
                    "event {i}: a hint with no write before it"
                );
                let from = unhinted.iter().map(|w| w.0).min().unwrap_or(0);
                let to = unhinted.iter().map(|w| w.0 + w.1).max().unwrap_or(0);
                assert_eq!(
                    (offset, offset + len),
                    (from, to),
                    "event {i}: the hint spans the writes since the last hint"
                );
                unhinted.clear();
            }
            Event::Durable => assert!(
                unhinted.is_empty(),
                "event {i}: {} writes reach a flush unhinted, the first {:?}",
                unhinted.len(),
                unhinted.first()
            ),
        }
    }
    assert!(unhinted.is_empty(), "every write was hinted");
    (writes, hints)
}
