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

/// A stream `source` sends of its newest snapshot (`later`) on top of `base`, with the entries
/// of that snapshot replaced by `runs` (address, blocks) all carrying the sequence number of
/// its first entry: a crafted stream, framed correctly.
fn with_entries_of_one_seq(stream: &[u8], runs: &[(u64, u32)], bs: usize) -> Vec<u8> {
    use strata_engine::format::stream::*;
    let mut out = stream[..STREAM_HEADER_LEN].to_vec();
    let mut rest = &stream[STREAM_HEADER_LEN..];
    let mut crafted = false;
    while !rest.is_empty() {
        let (kind, payload, len) = decode_frame(rest).unwrap().unwrap();
        let payload = &rest[payload];
        match kind {
            FRAME_ENTRY if !crafted => {
                crafted = true;
                let (seq, timestamp) = (&payload[..8], &payload[8..16]);
                for (i, &(addr, blocks)) in runs.iter().enumerate() {
                    let mut entry = Vec::new();
                    entry.extend_from_slice(seq);
                    entry.extend_from_slice(timestamp);
                    entry.extend_from_slice(&addr.to_le_bytes());
                    entry.extend_from_slice(&blocks.to_le_bytes());
                    entry.extend_from_slice(&0u32.to_le_bytes());
                    entry.resize(32 + blocks as usize * bs, 0xA0 + i as u8);
                    encode_frame(&mut out, FRAME_ENTRY, &entry);
                }
            }
            FRAME_ENTRY => {}
            FRAME_VOLUME_END => {
                let mut end = payload.to_vec();
                end[8..16].copy_from_slice(&(runs.len() as u64).to_le_bytes());
                encode_frame(&mut out, kind, &end);
            }
            _ => encode_frame(&mut out, kind, payload),
        }
        rest = &rest[len..];
    }
    assert!(crafted, "the stream has an entry to replace");
    out
}

#[test]
fn runs_of_one_sequence_number_must_fit_a_record_and_not_overlap() {
    // Regression: a crafted stream repeating one sequence number gathered its entries into one
    // record with no limit: unbounded memory, and a record above the format's limits (or with
    // overlapping runs) that the store would refuse when reading it back.
    const BIG: u64 = 40_000;
    let mut source = block_on(Store::create(
        MemoryStorage::new(),
        CreateOptions::new(BIG).block_size(BS as u32),
        clock(),
    ))
    .unwrap();
    block_on(source.write(0, &block(1))).unwrap();
    let base = block_on(source.snapshot(Some("base"))).unwrap();
    block_on(source.write(1, &block(2))).unwrap();
    block_on(source.write(2, &block(3))).unwrap();
    block_on(source.snapshot(Some("later"))).unwrap();
    let full = send(
        &source,
        &SendOptions {
            upto: Some(base),
            ..SendOptions::default()
        },
    );
    let stream = send(
        &source,
        &SendOptions {
            base: Some(base),
            ..SendOptions::default()
        },
    );
    let storage = MemoryStorage::new();
    let mut receiver = StreamReceiver::new_store(storage.clone(), clock());
    block_on(receiver.push(&full)).unwrap();
    let (target, _) = block_on(receiver.finish()).unwrap();
    let before = snapshots_of(&target, 64);
    assert_eq!(before.len(), 1);
    drop(target);

    let refused = |runs: &[(u64, u32)], what: &str| {
        let crafted = with_entries_of_one_seq(&stream, runs, BS);
        let target = block_on(Store::open(storage.clone(), clock())).unwrap();
        let mut receiver = StreamReceiver::into_store(target);
        let err = block_on(async {
            receiver.push(&crafted).await?;
            receiver.finish().await.map(|_| ())
        })
        .expect_err(what);
        assert!(matches!(err, Error::BadStream(_)), "{what}: {err}");
        let target = block_on(Store::open(storage.clone(), clock())).unwrap();
        assert_eq!(snapshots_of(&target, 64), before, "{what}: nothing landed");
    };
    // One sequence number repeated past a record's data limit (16 MiB: 32768 blocks of 512).
    let runs: Vec<(u64, u32)> = (0..33).map(|i| (i * 1024, 1024)).collect();
    refused(&runs, "runs past the record limit");
    refused(&[(0, 2), (1, 2)], "overlapping runs");
    refused(&[(5, 1), (0, 1)], "runs out of address order");

    // The legitimate case, runs of a split entry in address order, is received.
    let crafted = with_entries_of_one_seq(&stream, &[(0, 2), (5, 3)], BS);
    let target = block_on(Store::open(storage.clone(), clock())).unwrap();
    let mut receiver = StreamReceiver::into_store(target);
    block_on(receiver.push(&crafted)).unwrap();
    let (target, _) = block_on(receiver.finish()).unwrap();
    drop(target);
    let target = block_on(Store::open(storage.clone(), clock())).unwrap();
    let after = snapshots_of(&target, 8);
    assert_eq!(after.len(), 2);
    let data = &after[1].3;
    assert_eq!(data[..2 * BS], vec![0xA0; 2 * BS][..]);
    assert_eq!(data[2 * BS..5 * BS], before[0].3[2 * BS..5 * BS]);
    assert_eq!(data[5 * BS..], vec![0xA1; 3 * BS][..]);
}

fn snapshots_of(
    store: &Store<MemoryStorage>,
    blocks: u64,
) -> Vec<(VolumeId, String, Option<VolumeId>, Vec<u8>)> {
    store
        .volumes()
        .into_iter()
        .filter(|v| v.kind == VolumeKind::Snapshot)
        .map(|v| {
            (
                v.id,
                v.label.clone(),
                v.parent,
                block_on(store.read_at(v.id, 0, blocks)).unwrap(),
            )
        })
        .collect()
}

/// Found by the model test (`engine/tests/model.proptest-regressions`): a copy that first
/// received the whole tree (snapshots 1, 2 and 3 on one line) and then an incremental stream of
/// the source's live chain, which a rollback had moved back to snapshot 2, grew its head from
/// snapshot 3 (the newest partition it held) and read snapshot 3's blocks as its head. The head
/// grows from the stream's last volume.
#[test]
fn an_incremental_stream_after_a_rollback_grows_the_copys_head_from_the_streams_newest() {
    let mut source = block_on(Store::create(
        MemoryStorage::new(),
        CreateOptions::new(BLOCKS).block_size(BS as u32),
        clock(),
    ))
    .unwrap();
    let first = block_on(source.snapshot(None)).unwrap();
    let second = block_on(source.snapshot(None)).unwrap();
    block_on(source.write(0, &block(1))).unwrap();
    block_on(source.snapshot(None)).unwrap();
    block_on(source.rollback(first, None)).unwrap();
    block_on(source.write(0, &block(0))).unwrap();

    // The whole tree, the head growing from snapshot 1 (the source's head's parent).
    let mut receiver = StreamReceiver::new_store(MemoryStorage::new(), clock());
    block_on(receiver.push(&send(&source, &SendOptions::default()))).unwrap();
    let (copy, _) = block_on(receiver.finish()).unwrap();
    assert_eq!(block_on(copy.read(0, 1)).unwrap(), block(0));

    // The source rolls back to snapshot 2: its live chain is 1, 2.
    block_on(source.rollback(second, None)).unwrap();
    let have = copy.volume(copy.head()).unwrap().parent.unwrap();
    assert_eq!(have, first);
    let stream = send(
        &source,
        &SendOptions {
            base: Some(have),
            ..SendOptions::default()
        },
    );
    let mut receiver = StreamReceiver::into_store(copy);
    block_on(receiver.push(&stream)).unwrap();
    let (copy, _) = block_on(receiver.finish()).unwrap();
    assert_eq!(copy.volume(copy.head()).unwrap().parent, Some(second));
    assert_eq!(
        block_on(copy.read(0, BLOCKS)).unwrap(),
        block_on(source.read_at(second, 0, BLOCKS)).unwrap()
    );
}
