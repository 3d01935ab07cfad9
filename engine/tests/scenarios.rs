//! One scenario per test: each name says what it proves.

use std::rc::Rc;

use pollster::block_on;
use strata_engine::clock::ManualClock;
use strata_engine::format::FORMAT_VERSION;
use strata_engine::storage::memory::MemoryStorage;
use strata_engine::storage::sim::SimDisk;
use strata_engine::storage::Storage;
use strata_engine::{CreateOptions, CursorStart, Error, Store, VolumeId, VolumeKind};

const BS: usize = 4096;

fn clock() -> Rc<ManualClock> {
    Rc::new(ManualClock::new(1_700_000_000_000))
}

fn block(fill: u8) -> Vec<u8> {
    vec![fill; BS]
}

fn new_store(blocks: u64) -> (MemoryStorage, Store<MemoryStorage>) {
    let storage = MemoryStorage::new();
    let store = block_on(Store::create(
        storage.clone(),
        CreateOptions::new(blocks),
        clock(),
    ))
    .unwrap();
    (storage, store)
}

#[test]
fn never_written_blocks_read_as_zero_baseline() {
    let (_, store) = new_store(16);
    assert_eq!(block_on(store.read(0, 16)).unwrap(), vec![0; 16 * BS]);
}

#[test]
fn latest_write_wins_at_the_head() {
    let (_, mut store) = new_store(16);
    block_on(async {
        store.write(3, &block(1)).await.unwrap();
        store.write(3, &block(2)).await.unwrap();
        store
            .write(4, &[block(5), block(6)].concat())
            .await
            .unwrap();
        assert_eq!(store.read(3, 1).await.unwrap(), block(2));
        assert_eq!(
            store.read(4, 2).await.unwrap(),
            [block(5), block(6)].concat()
        );
    });
}

#[test]
fn snapshot_reads_as_it_was_when_taken() {
    let (_, mut store) = new_store(16);
    block_on(async {
        store.write(1, &block(1)).await.unwrap();
        let s1 = store.snapshot(Some("one")).await.unwrap();
        store.write(1, &block(2)).await.unwrap();
        store.write(2, &block(2)).await.unwrap();
        let s2 = store.snapshot(Some("two")).await.unwrap();
        store.write(1, &block(3)).await.unwrap();
        assert_eq!(
            store.read_at(s1, 1, 2).await.unwrap(),
            [block(1), block(0)].concat()
        );
        assert_eq!(
            store.read_at(s2, 1, 2).await.unwrap(),
            [block(2), block(2)].concat()
        );
        assert_eq!(
            store.read(1, 2).await.unwrap(),
            [block(3), block(2)].concat()
        );
        assert_eq!(
            store.read_at(VolumeId::BASELINE, 1, 1).await.unwrap(),
            block(0)
        );
    });
}

#[test]
fn snapshot_assigns_new_volume_ids_and_labels() {
    let (_, mut store) = new_store(4);
    block_on(async {
        let head0 = store.head();
        let s = store.snapshot(Some("nightly")).await.unwrap();
        assert_eq!(
            s, head0,
            "the sealed partition keeps the identifier it had as the head"
        );
        assert_ne!(store.head(), s);
        let volumes = store.volumes();
        let snap = volumes.iter().find(|v| v.id == s).unwrap();
        assert_eq!(snap.label, "nightly");
        assert_eq!(snap.kind, VolumeKind::Snapshot);
        let head = volumes.iter().find(|v| v.id == store.head()).unwrap();
        assert_eq!(head.kind, VolumeKind::Head);
        assert_eq!(head.parent, Some(s));
        assert_eq!(snap.parent, Some(VolumeId::BASELINE));
    });
}

#[test]
fn batch_entries_get_consecutive_sequence_numbers() {
    let (_, mut store) = new_store(8);
    block_on(async {
        let a = block(7);
        let first = store
            .write_batch(&[(0, &a), (5, &a), (2, &a)])
            .await
            .unwrap();
        let next = store.write(1, &a).await.unwrap();
        assert_eq!(next, first + 3);
    });
}

#[test]
fn cursor_walks_every_entry_in_order_across_partitions() {
    let (_, mut store) = new_store(8);
    block_on(async {
        store.write(0, &block(1)).await.unwrap();
        store.write(1, &block(2)).await.unwrap();
        let s = store.snapshot(None).await.unwrap();
        store
            .write_batch(&[(2, &block(3)), (3, &block(4))])
            .await
            .unwrap();
        let mut cursor = store.cursor(CursorStart::Beginning).unwrap();
        let mut seen = Vec::new();
        while let Some(e) = store.next_entry(&mut cursor, true).await.unwrap() {
            seen.push((e.seq, e.volume, e.addr, e.data.unwrap()[0]));
        }
        let head = store.head();
        assert_eq!(
            seen,
            vec![(1, s, 0, 1), (2, s, 1, 2), (3, head, 2, 3), (4, head, 3, 4)]
        );

        let mut from_seq = store.cursor(CursorStart::Seq(3)).unwrap();
        assert_eq!(
            store
                .next_entry(&mut from_seq, false)
                .await
                .unwrap()
                .unwrap()
                .seq,
            3
        );
        let mut from_volume = store.cursor(CursorStart::Volume(head)).unwrap();
        let e = store
            .next_entry(&mut from_volume, false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((e.seq, e.volume, e.data), (3, head, None));
    });
}

#[test]
fn data_survives_close_and_reopen() {
    let (storage, mut store) = new_store(32);
    block_on(async {
        store.write(9, &block(9)).await.unwrap();
        let s = store.snapshot(Some("a")).await.unwrap();
        store.write(9, &block(10)).await.unwrap();
        store.close().await.unwrap();
        let store = Store::open(storage, clock()).await.unwrap();
        assert_eq!(store.read(9, 1).await.unwrap(), block(10));
        assert_eq!(store.read_at(s, 9, 1).await.unwrap(), block(9));
        assert_eq!(store.volume(s).unwrap().label, "a");
        assert_eq!(store.info().next_seq, 3);
    });
}

#[test]
fn baseline_import_streams_and_reads_back() {
    let image: Vec<u8> = (0..64 * BS)
        .map(|i| (i / BS) as u8 ^ (i % 251) as u8)
        .collect();
    block_on(async {
        let storage = MemoryStorage::new();
        let mut import = Store::import_baseline(
            storage.clone(),
            4096,
            Some(image.len() as u64),
            None,
            clock(),
        )
        .await
        .unwrap();
        for chunk in image.chunks(10_000) {
            import.push(chunk).await.unwrap();
        }
        let mut store = import.finish().await.unwrap();
        assert_eq!(store.block_count(), 64);
        assert_eq!(store.read(0, 64).await.unwrap(), image);
        store.write(10, &block(0xEE)).await.unwrap();
        let mut exported = Vec::new();
        store
            .export(
                store.head(),
                |c| {
                    exported.extend_from_slice(c);
                    Ok(())
                },
                |_, _| {},
            )
            .await
            .unwrap();
        let mut expected = image.clone();
        expected[10 * BS..11 * BS].fill(0xEE);
        assert_eq!(exported, expected);
        assert_eq!(
            store.read_at(VolumeId::BASELINE, 10, 1).await.unwrap(),
            image[10 * BS..11 * BS]
        );
    });
}

#[test]
fn image_of_wrong_size_is_refused() {
    block_on(async {
        let mut import = Store::import_baseline(MemoryStorage::new(), 4096, None, None, clock())
            .await
            .unwrap();
        import.push(&[1u8; 5000]).await.unwrap();
        assert!(matches!(
            import.finish().await,
            Err(Error::ImageSize { actual: 5000, .. })
        ));
        let mut import =
            Store::import_baseline(MemoryStorage::new(), 4096, Some(8192), None, clock())
                .await
                .unwrap();
        assert!(matches!(
            import.push(&[1u8; 12288]).await,
            Err(Error::ImageSize { .. })
        ));
        assert!(matches!(
            Store::import_baseline(MemoryStorage::new(), 4096, Some(100), None, clock()).await,
            Err(Error::ImageSize { .. })
        ));
    });
}

#[test]
fn bad_arguments_give_typed_errors() {
    let (_, mut store) = new_store(8);
    block_on(async {
        assert!(matches!(
            store.write(8, &block(1)).await,
            Err(Error::BlockOutOfRange { addr: 8, .. })
        ));
        assert!(matches!(
            store.write(7, &[block(1), block(1)].concat()).await,
            Err(Error::BlockOutOfRange { .. })
        ));
        assert!(matches!(
            store.write(0, &[1u8; 100]).await,
            Err(Error::NotWholeBlocks { len: 100, .. })
        ));
        assert!(matches!(
            store.write(0, &[]).await,
            Err(Error::NotWholeBlocks { len: 0, .. })
        ));
        assert!(matches!(
            store.read(u64::MAX, 2).await,
            Err(Error::BlockOutOfRange { .. })
        ));
        assert!(matches!(
            store.read(0, 0).await,
            Err(Error::BlockOutOfRange { .. })
        ));
        assert!(matches!(
            store.read_at(VolumeId(99), 0, 1).await,
            Err(Error::UnknownVolume(VolumeId(99)))
        ));
        assert!(matches!(
            store.snapshot(Some("a\nb")).await,
            Err(Error::InvalidLabel(_))
        ));
        assert!(matches!(
            store.snapshot(Some(&"x".repeat(300))).await,
            Err(Error::InvalidLabel(_))
        ));
        assert!(matches!(
            store.write_batch(&[]).await,
            Err(Error::InvalidArgument(_))
        ));
    });
    for bs in [0u32, 100, 256, 131072] {
        let r = block_on(Store::create(
            MemoryStorage::new(),
            CreateOptions::new(4).block_size(bs),
            clock(),
        ));
        assert!(matches!(r, Err(Error::InvalidBlockSize(b)) if b == bs));
    }
    assert!(matches!(
        block_on(Store::create(
            MemoryStorage::new(),
            CreateOptions::new(0),
            clock()
        )),
        Err(Error::InvalidBlockCount(0))
    ));
}

#[test]
fn too_large_batch_is_refused() {
    let (_, mut store) = new_store(8192);
    let data = vec![0u8; 4097 * BS];
    assert!(matches!(
        block_on(store.write(0, &data)),
        Err(Error::BatchTooLarge { blocks: 4097, .. })
    ));
}

#[test]
fn empty_storage_is_not_a_store_and_create_twice_is_refused() {
    let storage = MemoryStorage::new();
    assert!(matches!(
        block_on(Store::open(storage.clone(), clock())),
        Err(Error::NotAStore)
    ));
    let store = block_on(Store::create(
        storage.clone(),
        CreateOptions::new(4),
        clock(),
    ))
    .unwrap();
    drop(store);
    assert!(matches!(
        block_on(Store::create(storage, CreateOptions::new(4), clock())),
        Err(Error::AlreadyExists)
    ));
}

#[test]
fn newer_format_version_is_refused() {
    let (storage, store) = new_store(4);
    drop(store);
    storage.with_objects(|objects| {
        let journal = objects.get_mut("meta-0000000000000001").unwrap();
        // Store header payload starts at 16; format version is its first u32. Re-checksum.
        journal[16..20].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        let len = u32::from_le_bytes(journal[8..12].try_into().unwrap()) as usize;
        let crc = crc32c::crc32c_append(crc32c::crc32c(&journal[..12]), &journal[16..16 + len]);
        journal[12..16].copy_from_slice(&crc.to_le_bytes());
    });
    assert!(matches!(
        block_on(Store::open(storage, clock())),
        Err(Error::UnsupportedVersion {
            found,
            supported: FORMAT_VERSION
        }) if found == FORMAT_VERSION + 1
    ));
}

#[test]
fn flipped_bit_in_a_block_is_detected_not_returned() {
    let disk = SimDisk::new();
    block_on(async {
        let mut store = Store::create(disk.clone(), CreateOptions::new(8), clock())
            .await
            .unwrap();
        store.write(2, &block(0x42)).await.unwrap();
        store.sync().await.unwrap();
        let segment = disk
            .object_lengths()
            .keys()
            .find(|k| k.starts_with("seg-"))
            .cloned()
            .unwrap();
        // The block's data is the last 4096 bytes of the only record.
        let len = disk.object_lengths()[&segment];
        assert!(disk.flip_bit(&segment, len - 100, 3));
        let err = store.read(2, 1).await.unwrap_err();
        assert!(err.is_corruption(), "{err}");
        assert_eq!(
            store.read(3, 1).await.unwrap(),
            block(0),
            "undamaged blocks still read"
        );
    });
}

#[test]
fn damaged_synced_record_is_reported_at_open_not_truncated() {
    let disk = SimDisk::new();
    block_on(async {
        let mut store = Store::create(disk.clone(), CreateOptions::new(8), clock())
            .await
            .unwrap();
        store.write(0, &block(1)).await.unwrap();
        store.sync().await.unwrap();
        store.write(1, &block(2)).await.unwrap();
        store.sync().await.unwrap();
        store.write(2, &block(3)).await.unwrap();
        store.sync().await.unwrap();
        drop(store);
        let segment = disk
            .object_lengths()
            .keys()
            .find(|k| k.starts_with("seg-"))
            .cloned()
            .unwrap();
        assert!(disk.flip_bit(&segment, 200, 0)); // inside the first record's data
        let err = Store::open(disk.clone(), clock()).await.unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    });
}

#[test]
fn torn_last_record_is_cut_at_open_and_earlier_data_kept() {
    let (storage, mut store) = new_store(8);
    block_on(async {
        store.write(0, &block(1)).await.unwrap();
        store.sync().await.unwrap();
        store
            .write(1, &[block(2), block(3)].concat())
            .await
            .unwrap();
        store.sync().await.unwrap();
        drop(store);
    });
    // Tear the last record: lose its last 1000 bytes, as a crash mid-append would.
    let segment = storage.with_objects(|objects| {
        let (name, bytes) = objects
            .iter_mut()
            .find(|(k, _)| k.starts_with("seg-"))
            .unwrap();
        bytes.truncate(bytes.len() - 1000);
        name.clone()
    });
    block_on(async {
        let store = Store::open(storage.clone(), clock()).await.unwrap();
        assert!(store.recovery().head_bytes_truncated > 0);
        assert_eq!(
            store.read(0, 3).await.unwrap(),
            [block(1), block(0), block(0)].concat()
        );
        assert_eq!(store.info().next_seq, 2);
        let len = storage.len(&segment).await.unwrap().unwrap();
        assert_eq!(len, 64 + 16 + 4 + 4096, "only the first record is left");
    });
}

#[test]
fn entry_counts_are_right_before_and_after_reopen() {
    // Regression: a partition written in this session reported 0 entries until reopened.
    let (storage, mut store) = new_store(8);
    block_on(async {
        store.write(0, &block(1)).await.unwrap();
        store
            .write_batch(&[(1, &block(2)), (2, &block(3))])
            .await
            .unwrap();
        let s = store.snapshot(None).await.unwrap();
        assert_eq!(store.volume(s).unwrap().entry_count, 3);
        store.close().await.unwrap();
        let store = Store::open(storage, clock()).await.unwrap();
        assert_eq!(store.volume(s).unwrap().entry_count, 3);
    });
}
