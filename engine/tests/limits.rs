//! Resource bounds (issue #12): every limit is enforced when an operation is accepted, with a
//! clear error, so that no accepted operation leaves a store that the reader refuses.
//!
//! * the largest policy and the most rules, the most volume assignments, none on the baseline;
//! * journal records: a version-2 store takes records of up to 1 MiB, a version-1 store keeps
//!   the 64 KiB its readers accept (a 1,000-rule policy bricked version-1 stores before);
//! * block counts above 2^28 are refused by create, import and receive;
//! * copy streams whose identifiers or counts a store cannot represent are refused before
//!   anything is written, and the target still opens.

use std::rc::Rc;

use pollster::block_on;
use strata_engine::clock::ManualClock;
use strata_engine::format::stream::{
    decode_frame, encode_frame, StreamHeader, FRAME_VOLUME_BEGIN, STREAM_HEADER_LEN,
};
use strata_engine::format::BLOCK_COUNT_MAX;
use strata_engine::policy::{
    Assignment, Policy, PolicyError, VolumeAssignments, ASSIGNMENTS_MAX, POLICY_BYTES_MAX,
    RULES_MAX,
};
use strata_engine::storage::memory::MemoryStorage;
use strata_engine::{CreateOptions, Error, Managed, SendOptions, Store, StreamReceiver, VolumeId};

mod common;
use common::{edit_store_header, set_header_version};

fn clock() -> Rc<ManualClock> {
    Rc::new(ManualClock::new(1_700_000_000_000))
}

/// A new store under storage management (policies and assignments are the executor's).
fn new_store() -> (MemoryStorage, Managed<Store<MemoryStorage>>) {
    let storage = MemoryStorage::new();
    let store = block_on(Store::create(
        storage.clone(),
        CreateOptions::new(64).block_size(512),
        clock(),
    ))
    .expect("create");
    (storage, Managed::new(store).expect("managed"))
}

/// A policy of `n` event rules, each with a name and a label template, like the one that
/// bricked stores (1,000 of these are 73 KB of JSON).
fn event_policy(n: usize) -> String {
    let rules: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"name":"rule-{i:05}","kind":"event","event":"deploy-{i:05}","action":"snapshot","label":"{{event}}-{{date}}-{{n}}"}}"#
            )
        })
        .collect();
    format!(r#"{{"rules":[{}]}}"#, rules.join(","))
}

#[test]
fn a_thousand_rule_policy_is_kept_and_the_store_reopens() {
    let (storage, mut store) = new_store();
    let json = event_policy(1000);
    assert!(json.len() > 64 * 1024, "{} bytes", json.len());
    let policy = Policy::from_json(&json).expect("1,000 rules are within the limits");
    block_on(store.set_policy(Some(policy.clone()))).expect("set");
    block_on(store.close()).expect("close");
    let store = block_on(Managed::open_store(storage, clock(), true)).expect("reopens");
    assert_eq!(store.policy(), Some(&policy));
}

#[test]
fn policies_past_the_limits_are_refused_with_the_limit_named() {
    let too_many = event_policy(RULES_MAX + 1);
    let error = Policy::from_json(&too_many).expect_err("too many rules");
    assert!(
        error.to_string().contains(&RULES_MAX.to_string()),
        "{error}"
    );
    let huge = format!(
        r#"{{"rules":[{{"kind":"event","event":"x","action":"snapshot","label":"{}"}}]}}"#,
        "a".repeat(POLICY_BYTES_MAX)
    );
    assert!(matches!(
        Policy::from_json(&huge),
        Err(PolicyError::TooLarge { bytes_max, .. }) if bytes_max == POLICY_BYTES_MAX
    ));
    assert!(matches!(
        Policy::from_json("[]"),
        Err(PolicyError::Parse(_))
    ));
    // The engine checks a policy built in code too, before writing anything.
    let (_, mut store) = new_store();
    let mut policy = Policy::from_json(&event_policy(RULES_MAX)).expect("at the limit");
    policy.rules.push(policy.rules[0].clone());
    let error = block_on(store.set_policy(Some(policy))).expect_err("over the limit");
    assert_eq!(error.code(), "INVALID_ARGUMENT");
    assert!(store.policy().is_none());
}

#[test]
fn a_version_1_store_refuses_records_its_readers_would_refuse_and_stays_openable() {
    let (storage, store) = new_store();
    drop(store);
    set_header_version(&storage, 1);
    let mut store = block_on(Managed::open_store(storage.clone(), clock(), true)).expect("open v1");
    let policy = Policy::from_json(&event_policy(1000)).expect("valid");
    let error = block_on(store.set_policy(Some(policy.clone()))).expect_err("too big for v1");
    assert_eq!(error.code(), "LIMIT_EXCEEDED");
    assert!(error.to_string().contains("65536"), "{error}");
    drop(store);
    // Nothing was written: the store opens, and a checkpoint (which writes a version-2 header)
    // lifts the limit.
    let mut store =
        block_on(Managed::open_store(storage.clone(), clock(), true)).expect("still opens");
    assert!(store.policy().is_none());
    block_on(store.checkpoint_journal()).expect("checkpoint");
    block_on(store.set_policy(Some(policy.clone()))).expect("version 2 takes it");
    drop(store);
    let store = block_on(Managed::open_store(storage, clock(), true)).expect("reopens");
    assert_eq!(store.policy(), Some(&policy));
    assert!(
        store.journal_bytes() > 64 * 1024,
        "the policy's record is past the version-1 limit"
    );
}

#[test]
fn assignments_are_bounded_and_the_baseline_cannot_be_held() {
    let (_, mut store) = new_store();
    let mut on_baseline = VolumeAssignments::new();
    on_baseline.set(
        VolumeId::BASELINE,
        Assignment {
            hold: true,
            ttl_ms: None,
        },
    );
    let error = block_on(store.set_assignments(on_baseline)).expect_err("baseline");
    assert!(error.to_string().contains("baseline"), "{error}");
    let mut many = VolumeAssignments::new();
    for v in 1..=ASSIGNMENTS_MAX as u64 + 1 {
        many.set(
            VolumeId(v),
            Assignment {
                hold: true,
                ttl_ms: None,
            },
        );
    }
    let error = block_on(store.set_assignments(many)).expect_err("too many");
    assert!(
        error.to_string().contains(&ASSIGNMENTS_MAX.to_string()),
        "{error}"
    );
}

#[test]
fn block_counts_past_the_limit_are_refused_at_create_and_import() {
    for blocks in [BLOCK_COUNT_MAX + 1, 1 << 40, u64::MAX] {
        let error = block_on(Store::create(
            MemoryStorage::new(),
            CreateOptions::new(blocks),
            clock(),
        ))
        .expect_err("too many blocks");
        assert_eq!(error.code(), "INVALID_BLOCK_COUNT", "{blocks}");
        assert!(error.to_string().contains("2^28"), "{error}");
        let import = block_on(Store::import_baseline(
            MemoryStorage::new(),
            4096,
            Some(blocks.saturating_mul(4096)),
            None,
            clock(),
        ));
        assert!(import.is_err(), "{blocks}");
    }
    let error = block_on(Store::import_baseline(
        MemoryStorage::new(),
        4096,
        Some(0),
        None,
        clock(),
    ))
    .err()
    .expect("an empty image");
    assert!(error.to_string().contains("empty"), "{error}");
}

/// A store header claiming more blocks than the block index addresses (2^32, which no version
/// creates: create stops at 2^28) is refused at open with the limit named, not indexed wrongly.
#[test]
fn a_store_claiming_more_than_2_pow_32_blocks_is_refused_at_open() {
    use strata_engine::format::OPEN_BLOCK_COUNT_MAX;
    for (blocks, opens) in [
        (OPEN_BLOCK_COUNT_MAX, true),
        (OPEN_BLOCK_COUNT_MAX + 1, false),
    ] {
        let (storage, store) = new_store();
        drop(store);
        edit_store_header(&storage, |payload| {
            payload[8..16].copy_from_slice(&blocks.to_le_bytes())
        });
        match block_on(Store::open(storage, clock())) {
            Ok(store) => {
                assert!(opens, "{blocks} blocks opened");
                assert_eq!(store.block_count(), blocks);
            }
            Err(error) => {
                assert!(!opens, "{blocks} blocks refused: {error}");
                assert_eq!(error.code(), "LIMIT_EXCEEDED");
                assert!(error.to_string().contains("4294967296"), "{error}");
            }
        }
    }
}

/// A real stream of a store with one snapshot, and the store it came from.
fn stream() -> Vec<u8> {
    let (_, mut store) = new_store();
    block_on(store.write(3, &[7; 512])).expect("write");
    block_on(store.snapshot(Some("one"))).expect("snapshot");
    let mut bytes = Vec::new();
    block_on(store.send(&SendOptions::default(), &mut |chunk| {
        bytes.extend_from_slice(chunk);
        Ok(())
    }))
    .expect("send");
    bytes
}

/// Re-encodes `header` at the front of `bytes` with a valid checksum.
fn patch_header(bytes: &mut [u8], edit: impl FnOnce(&mut StreamHeader)) {
    let mut header = StreamHeader::decode(bytes).expect("decodes");
    edit(&mut header);
    bytes[..STREAM_HEADER_LEN].copy_from_slice(&header.encode());
}

/// Rewrites the first frame of `kind` with `edit` applied to its payload, re-checksummed.
fn patch_frame(bytes: &mut Vec<u8>, kind: u16, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut at = STREAM_HEADER_LEN;
    while let Some((k, payload, len)) = decode_frame(&bytes[at..]).expect("frame") {
        if k == kind {
            let mut p = bytes[at + payload.start..at + payload.end].to_vec();
            edit(&mut p);
            let mut frame = Vec::new();
            encode_frame(&mut frame, kind, &p);
            bytes.splice(at..at + len, frame);
            return;
        }
        at += len;
    }
    panic!("no frame of kind {kind}");
}

fn receive(bytes: &[u8]) -> (MemoryStorage, Result<(), Error>) {
    let target = MemoryStorage::new();
    let mut receiver = StreamReceiver::new_store(target.clone(), clock());
    let result =
        block_on(receiver.push(bytes)).and_then(|()| block_on(receiver.finish()).map(|_| ()));
    (target, result)
}

#[test]
fn streams_with_identifiers_a_store_cannot_hold_are_refused_and_the_target_still_opens() {
    let good = stream();
    assert!(receive(&good).1.is_ok(), "the unpatched stream lands");
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut s = good.clone();
    patch_header(&mut s, |h| h.source_next_volume = u64::MAX);
    cases.push(("next volume 2^64-1", s));
    let mut s = good.clone();
    patch_header(&mut s, |h| h.source_next_seq = u64::MAX);
    cases.push(("next sequence 2^64-1", s));
    let mut s = good.clone();
    patch_header(&mut s, |h| h.block_count = 1 << 40);
    cases.push(("2^40 blocks", s));
    let mut s = good.clone();
    patch_frame(&mut s, FRAME_VOLUME_BEGIN, |p| {
        p[..8].copy_from_slice(&u64::MAX.to_le_bytes())
    });
    cases.push(("volume 2^64-1", s));
    let mut s = good.clone();
    patch_frame(&mut s, FRAME_VOLUME_BEGIN, |p| {
        p[32..40].copy_from_slice(&u64::MAX.to_le_bytes())
    });
    cases.push(("next seq 2^64-1 in a volume", s));
    for (what, bytes) in cases {
        let (target, result) = receive(&bytes);
        let error = result.expect_err(what);
        assert!(
            matches!(error.code(), "BAD_STREAM" | "INVALID_BLOCK_COUNT"),
            "{what}: {error}"
        );
        // Whatever was created before the refusal opens and reads.
        if let Ok(store) = block_on(Managed::open_store(target, clock(), true)) {
            assert!(store.volumes().iter().all(|v| v.id.0 < 1 << 62), "{what}");
        }
    }
}

#[test]
fn the_longest_label_and_the_largest_batch_work_and_one_more_is_refused() {
    use strata_engine::format::meta::LABEL_BYTES_MAX;
    use strata_engine::format::record::RECORD_DATA_BYTES_MAX;
    let storage = MemoryStorage::new();
    let blocks = RECORD_DATA_BYTES_MAX / 4096;
    let mut store = block_on(Store::create(
        storage.clone(),
        CreateOptions::new(blocks + 1),
        clock(),
    ))
    .expect("create");
    // The largest batch one record holds: 16 MiB.
    let big = vec![0x42u8; RECORD_DATA_BYTES_MAX as usize];
    block_on(store.write(0, &big)).expect("the largest batch");
    let too_big = vec![0x43u8; RECORD_DATA_BYTES_MAX as usize + 4096];
    let error = block_on(store.write(0, &too_big)).expect_err("one block more");
    assert_eq!(error.code(), "BATCH_TOO_LARGE");
    // The longest label, then one byte more.
    let label = "é".repeat(LABEL_BYTES_MAX / 2) + "x";
    assert_eq!(label.len(), LABEL_BYTES_MAX);
    let snap = block_on(store.snapshot(Some(&label))).expect("the longest label");
    let error = block_on(store.snapshot(Some(&(label.clone() + "y")))).expect_err("too long");
    assert_eq!(error.code(), "INVALID_LABEL");
    // Both travel through a copy stream (a frame at its largest) and a reopen.
    let mut stream = Vec::new();
    block_on(store.send(&SendOptions::default(), &mut |chunk| {
        stream.extend_from_slice(chunk);
        Ok(())
    }))
    .expect("send");
    let (target, result) = receive(&stream);
    result.expect("the stream lands");
    let copy = block_on(Managed::open_store(target, clock(), true)).expect("open the copy");
    assert_eq!(copy.volume(snap).expect("the snapshot").label, label);
    assert_eq!(block_on(copy.read_at(snap, 0, blocks)).expect("read"), big);
    drop(store);
    let store = block_on(Managed::open_store(storage, clock(), true)).expect("reopen");
    assert_eq!(store.volume(snap).expect("the snapshot").label, label);
}
