//! The store tells the backend which bytes it has written and will make durable later
//! ([`Storage::write_behind`]), so that a backend can write them to the medium while more are
//! prepared: a merge, window by window, the write buffer each time it fills and goes to the
//! head's segment, an imported baseline chunk by chunk, and a received volume's records.
//! Checked on a backend that records every write, hint and durable commit: each such write is
//! hinted after it is made and before the flush that makes it durable, and no hint reaches past
//! the writes it follows.

use std::cell::RefCell;
use std::rc::Rc;

mod common;

use pollster::block_on;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_engine::clock::ManualClock;
use strata_engine::storage::memory::MemoryStorage;
use strata_engine::storage::{Change, Commit, Storage, StorageError};
use strata_engine::{CreateOptions, SendOptions, Store, StreamReceiver, VolumeId};

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

/// A new store of [`BLOCKS`] blocks on a [`Recording`] backend, and its events.
fn recording_store() -> (Store<Recording>, Rc<RefCell<Vec<Event>>>) {
    let events = Rc::new(RefCell::new(Vec::new()));
    let storage = Recording {
        inner: MemoryStorage::new(),
        events: events.clone(),
    };
    let store = block_on(Store::create(
        storage,
        CreateOptions::new(BLOCKS).block_size(BS as u32),
        Rc::new(ManualClock::new(1_000)),
    ))
    .expect("create");
    (store, events)
}

#[test]
fn a_merge_hints_every_window_of_baseline_writes_before_the_flush_that_makes_them_durable() {
    let mut rng = StdRng::seed_from_u64(common::seed_or(20261206));
    let (mut store, events) = recording_store();
    // A third of the blocks, at random addresses (some written twice).
    let mut written = std::collections::BTreeSet::new();
    for _ in 0..BLOCKS / 3 {
        let addr = rng.random_range(0..BLOCKS);
        let fill = rng.random_range(1..=255u8);
        block_on(store.write(addr, &vec![fill; BS])).expect("write");
        written.insert(addr);
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
    // A merge copies 1 MiB of blocks per window (`MERGE_WINDOW_BYTES` in store/ops.rs).
    let windows = written.len().div_ceil((1 << 20) / BS);
    assert!(
        writes > hints && hints == windows,
        "{writes} writes, {hints} hints, {windows} windows"
    );
}

#[test]
fn a_write_buffer_that_fills_is_hinted_as_it_goes_to_the_segment_and_a_sync_is_not() {
    let (mut store, events) = recording_store();
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

#[test]
fn an_import_and_a_receive_hint_what_they_write_before_they_flush() {
    let events = Rc::new(RefCell::new(Vec::new()));
    let recording = || Recording {
        inner: MemoryStorage::new(),
        events: events.clone(),
    };
    let clock = Rc::new(ManualClock::new(1_000));
    // A 4 MiB image of data blocks, pushed 256 KiB at a time (imported 1 MiB per chunk).
    let image: Vec<u8> = (0..4u32 << 20)
        .map(|i| (i / 4096 % 251) as u8 + 1)
        .collect();
    let mut import = block_on(Store::import_baseline(
        recording(),
        BS as u32,
        Some(image.len() as u64),
        None,
        clock.clone(),
    ))
    .expect("import");
    for piece in image.chunks(256 << 10) {
        block_on(import.push(piece)).expect("push");
    }
    let mut store = block_on(import.finish()).expect("finish");
    let baseline = events_of(&events.borrow(), "baseline");
    let (writes, hints) = check_hinted(&baseline);
    assert!(
        writes >= 4 && hints >= 4,
        "import: {writes} writes, {hints} hints"
    );
    // 3 MiB of log in one snapshot, sent and received into a new store.
    for addr in 0..768u64 {
        block_on(store.write(addr, &vec![(addr % 200) as u8 + 7; BS])).expect("write");
    }
    block_on(store.snapshot(None)).expect("snapshot");
    let mut stream = Vec::new();
    block_on(store.send(&SendOptions::default(), &mut |chunk| {
        stream.extend_from_slice(chunk);
        Ok(())
    }))
    .expect("send");
    events.borrow_mut().clear();
    let mut receiver = StreamReceiver::new_store(recording(), clock);
    block_on(receiver.push(&stream)).expect("receive");
    let (copy, _) = block_on(receiver.finish()).expect("finish");
    let snapshot = store.volumes()[1].id;
    assert_eq!(
        block_on(copy.read_at(snapshot, 0, 768)).expect("read"),
        block_on(store.read_at(snapshot, 0, 768)).expect("read")
    );
    let events = events.borrow();
    let segments: Vec<Event> = events
        .iter()
        .filter(|e| match e {
            Event::Write(o, ..) | Event::Hint(o, ..) => o.starts_with("seg"),
            Event::Durable => true,
        })
        .cloned()
        .collect();
    let hinted = segments
        .iter()
        .filter(|e| matches!(e, Event::Hint(..)))
        .count();
    assert!(hinted >= 1, "the received volume's records are hinted");
    // Every hint follows a write of the same range that no flush came between.
    for (i, event) in segments.iter().enumerate() {
        if let Event::Hint(object, offset, len) = event {
            let written = segments[..i]
                .iter()
                .rev()
                .take_while(|e| **e != Event::Durable)
                .any(|e| *e == Event::Write(object.clone(), *offset, *len));
            assert!(
                written,
                "event {i}: {event:?} hints a write not made since the last flush"
            );
        }
    }
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
