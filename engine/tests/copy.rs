//! Copying log entries to a tertiary volume: full, incremental, resumed, damaged and filtered
//! streams.

use std::rc::Rc;

use pollster::block_on;
use strata_engine::clock::ManualClock;
use strata_engine::storage::memory::MemoryStorage;
use strata_engine::{
    CreateOptions, Error, SendOptions, Store, StreamReceiver, VolumeId, VolumeKind,
};

const BS: usize = 512;
const BLOCKS: u64 = 64;

fn clock() -> Rc<ManualClock> {
    Rc::new(ManualClock::new(10_000))
}

fn block(fill: u8) -> Vec<u8> {
    vec![fill; BS]
}

/// A source with an image baseline and three snapshots (one of them compacted).
fn source() -> Store<MemoryStorage> {
    let image: Vec<u8> = (0..BLOCKS as usize * BS).map(|i| (i / 7) as u8).collect();
    let mut import = block_on(Store::import_baseline(
        MemoryStorage::new(),
        BS as u32,
        None,
        None,
        clock(),
    ))
    .unwrap();
    block_on(import.push(&image)).unwrap();
    let mut store = block_on(import.finish()).unwrap();
    for round in 0..3u8 {
        for i in 0..5u64 {
            block_on(store.write(i * 3 + u64::from(round), &block(round * 10 + i as u8))).unwrap();
            block_on(store.write(1, &block(round))).unwrap();
        }
        let s = block_on(store.snapshot(Some(&format!("round-{round}")))).unwrap();
        if round == 1 {
            block_on(store.compact(s, &mut |_| true)).unwrap();
        }
    }
    store
}

fn send(store: &Store<MemoryStorage>, options: &SendOptions) -> Vec<u8> {
    let mut stream = Vec::new();
    block_on(store.send(options, &mut |chunk| {
        stream.extend_from_slice(chunk);
        Ok(())
    }))
    .unwrap();
    stream
}

fn snapshots(store: &Store<MemoryStorage>) -> Vec<(VolumeId, String, Option<VolumeId>, Vec<u8>)> {
    store
        .volumes()
        .into_iter()
        .filter(|v| v.kind == VolumeKind::Snapshot)
        .map(|v| {
            (
                v.id,
                v.label.clone(),
                v.parent,
                block_on(store.read_at(v.id, 0, BLOCKS)).unwrap(),
            )
        })
        .collect()
}

fn receive_new(stream: &[u8], chunk: usize) -> Result<Store<MemoryStorage>, Error> {
    let mut receiver = StreamReceiver::new_store(MemoryStorage::new(), clock());
    for piece in stream.chunks(chunk) {
        block_on(receiver.push(piece))?;
    }
    block_on(receiver.finish()).map(|(store, _)| store)
}

#[test]
fn full_copy_reproduces_every_volume() {
    let source = source();
    let stream = send(&source, &SendOptions::default());
    let target = receive_new(&stream, 4093).unwrap();
    assert_eq!(snapshots(&target), snapshots(&source));
    assert_eq!(
        block_on(target.read_at(VolumeId::BASELINE, 0, BLOCKS)).unwrap(),
        block_on(source.read_at(VolumeId::BASELINE, 0, BLOCKS)).unwrap()
    );
    let newest = snapshots(&source).last().unwrap().0;
    assert_eq!(target.volume(target.head()).unwrap().parent, Some(newest));
    assert_eq!(
        block_on(target.read(0, BLOCKS)).unwrap(),
        block_on(source.read_at(newest, 0, BLOCKS)).unwrap()
    );
}

#[test]
fn incremental_copy_sends_only_what_the_target_lacks() {
    let mut source = source();
    let target = receive_new(&send(&source, &SendOptions::default()), 1 << 20).unwrap();
    let base = snapshots(&source).last().unwrap().0;
    let changed = 6u64;
    for i in 0..changed {
        block_on(source.write(40 + i, &block(0xEE))).unwrap();
    }
    block_on(source.snapshot(Some("later"))).unwrap();
    let stream = send(
        &source,
        &SendOptions {
            base: Some(base),
            ..SendOptions::default()
        },
    );
    let changed_bytes = changed * BS as u64;
    println!(
        "incremental stream: {} bytes for {changed_bytes} bytes of changed data",
        stream.len()
    );
    let mut receiver = StreamReceiver::into_store(target);
    block_on(receiver.push(&stream)).unwrap();
    let (target, report) = block_on(receiver.finish()).unwrap();
    assert_eq!((report.volumes, report.entries), (1, changed));
    assert_eq!(snapshots(&target), snapshots(&source));
    // Framing costs 48 bytes per entry plus fixed headers; with 4 KiB blocks that is about 1.2%.
    assert!(stream.len() as u64 <= changed_bytes + 48 * changed + 64 + 200);
}

#[test]
fn resumed_receive_skips_volumes_it_has() {
    let source = source();
    let stream = send(&source, &SendOptions::default());
    let storage = MemoryStorage::new();
    let mut receiver = StreamReceiver::new_store(storage.clone(), clock());
    block_on(receiver.push(&stream[..stream.len() - 700])).unwrap();
    assert!(block_on(receiver.finish()).is_err());
    let target = block_on(Store::open(storage, clock())).unwrap();
    assert_eq!(
        snapshots(&target).len(),
        2,
        "two volumes landed before the break"
    );
    // Resume: send only what the target lacks, from the newest volume it has.
    let have = snapshots(&target).last().unwrap().0;
    let rest = send(
        &source,
        &SendOptions {
            base: Some(have),
            ..SendOptions::default()
        },
    );
    let mut receiver = StreamReceiver::into_store(target);
    block_on(receiver.push(&rest)).unwrap();
    let (target, report) = block_on(receiver.finish()).unwrap();
    assert_eq!(report.volumes, 1);
    assert_eq!(snapshots(&target), snapshots(&source));
    // Re-applying a stream the target already has lands nothing and changes nothing.
    let mut receiver = StreamReceiver::into_store(target);
    block_on(receiver.push(&rest)).unwrap();
    let (target, report) = block_on(receiver.finish()).unwrap();
    assert_eq!((report.volumes, report.volumes_skipped), (0, 1));
    assert_eq!(snapshots(&target), snapshots(&source));
}

#[test]
fn damaged_stream_is_refused_and_the_damaged_volume_does_not_land() {
    let source = source();
    let mut stream = send(&source, &SendOptions::default());
    let at = stream.len() - 300;
    stream[at] ^= 0x40;
    let storage = MemoryStorage::new();
    let mut receiver = StreamReceiver::new_store(storage.clone(), clock());
    let err = block_on(receiver.push(&stream)).unwrap_err();
    assert!(matches!(err, Error::BadStream(_)), "{err}");
    drop(receiver);
    let target = block_on(Store::open(storage.clone(), clock())).unwrap();
    assert_eq!(snapshots(&target).len(), 2);
    assert!(
        !storage.with_objects(|o| o.keys().any(|k| k.starts_with("seg-0000000000000003"))),
        "no trace of the damaged volume"
    );
}

#[test]
fn stream_whose_base_the_target_lacks_is_refused_and_changes_nothing() {
    let mut source = source();
    let first = snapshots(&source)[0].0;
    // The target has only the first snapshot.
    let storage = MemoryStorage::new();
    let mut receiver = StreamReceiver::new_store(storage.clone(), clock());
    block_on(receiver.push(&send(
        &source,
        &SendOptions {
            upto: Some(first),
            ..SendOptions::default()
        },
    )))
    .unwrap();
    let (target, _) = block_on(receiver.finish()).unwrap();
    let base = snapshots(&source).last().unwrap().0;
    block_on(source.write(3, &block(3))).unwrap();
    block_on(source.snapshot(None)).unwrap();
    let stream = send(
        &source,
        &SendOptions {
            base: Some(base),
            ..SendOptions::default()
        },
    );
    let before = storage.with_objects(|o| o.clone());
    let mut receiver = StreamReceiver::into_store(target);
    let err = block_on(receiver.push(&stream)).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument(ref m) if m.contains("base")),
        "{err}"
    );
    assert_eq!(storage.with_objects(|o| o.clone()), before);
    // And a new store refuses an incremental stream.
    assert!(receive_new(&stream, 1000).is_err());
}

#[test]
fn stream_from_another_store_is_refused() {
    let source = source();
    let stream = send(&source, &SendOptions::default());
    let other = block_on(Store::create(
        MemoryStorage::new(),
        CreateOptions::new(BLOCKS).block_size(BS as u32),
        clock(),
    ))
    .unwrap();
    let mut receiver = StreamReceiver::into_store(other);
    let err = block_on(receiver.push(&stream)).unwrap_err();
    assert!(
        matches!(err, Error::BadStream(ref m) if m.contains("comes from store")),
        "{err}"
    );
}

#[test]
fn a_filtered_copy_is_not_mistaken_for_a_full_one() {
    // Regression: volumes received from a filtered stream were later skipped as "already here"
    // by a full stream, leaving partial data in place.
    let source = source();
    let partial = send(
        &source,
        &SendOptions {
            blocks: Some(1..2),
            ..SendOptions::default()
        },
    );
    let storage = MemoryStorage::new();
    let mut receiver = StreamReceiver::new_store(storage.clone(), clock());
    block_on(receiver.push(&partial)).unwrap();
    let (target, _) = block_on(receiver.finish()).unwrap();
    let full = send(&source, &SendOptions::default());
    let mut receiver = StreamReceiver::into_store(target);
    assert!(matches!(
        block_on(receiver.push(&full)),
        Err(Error::BadStream(_))
    ));
}

#[test]
fn not_a_stream_is_refused() {
    let err = receive_new(&[7u8; 200], 50).err().unwrap();
    assert!(matches!(err, Error::BadStream(_)), "{err}");
    let err = receive_new(&[], 50).err().unwrap();
    assert!(matches!(err, Error::BadStream(_)), "{err}");
}

#[test]
fn block_range_filter_sends_only_those_blocks() {
    let source = source();
    let stream = send(
        &source,
        &SendOptions {
            blocks: Some(0..2),
            ..SendOptions::default()
        },
    );
    let full = send(&source, &SendOptions::default());
    assert!(stream.len() < full.len());
    let target = receive_new(&stream, 1 << 16).unwrap();
    for (id, _, _, image) in snapshots(&source) {
        let got = block_on(target.read_at(id, 0, 2)).unwrap();
        assert_eq!(got, image[..2 * BS]);
    }
}
