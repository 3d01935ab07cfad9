//! `StrataMirror` in a dedicated worker: the redundant system over memory legs and over a mirror
//! of OPFS and IndexedDB, under faults injected behind its back through the backends (bit flips,
//! garbage and zeroed blocks, zeroed checksum entries, a leg's storage destroyed while closed or
//! deleted while open, every leg lost, the same block bad on every copy).
//!
//! Faults are injected while the mirror is closed (OPFS sync access handles are exclusive, and
//! the IndexedDB backend caches what it read), except on the memory backend, whose named stores
//! share their objects with the open mirror. Each test uses fresh names and destroys what it made.
#![cfg(all(target_arch = "wasm32", feature = "mirror"))]

use std::cell::Cell;
use std::collections::BTreeSet;

use js_sys::{Array, Object, Reflect};
use strata_engine::storage::{Commit, Storage};
use strata_wasm::backend::{
    acquire_store_lock, destroy_backend, open_backend, BackendKind, IdbStorage,
};
use strata_wasm::{leg_store_name, StrataError, StrataMirror, StrataStore};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_dedicated_worker);

const BS: usize = 4096;
const BLOCKS: u64 = 64;
const IMAGE: &str = "primary.img";
const SUMS: &str = "primary.sum";

/// Where the secondary and the two legs live.
#[derive(Clone, Copy)]
struct Setup {
    backend: BackendKind,
    legs: [BackendKind; 2],
}

const MEMORY: Setup = Setup {
    backend: BackendKind::Memory,
    legs: [BackendKind::Memory, BackendKind::Memory],
};

/// A mirror across OPFS and IndexedDB, the secondary on OPFS.
const OPFS_IDB: Setup = Setup {
    backend: BackendKind::Opfs,
    legs: [BackendKind::Opfs, BackendKind::IndexedDb],
};

thread_local! {
    static COUNTER: Cell<u32> = const { Cell::new(0) };
}

fn unique(prefix: &str) -> String {
    let n = COUNTER.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    format!(
        "mirror-{prefix}-{}-{n}-{}",
        js_sys::Date::now() as u64,
        (js_sys::Math::random() * 1e9) as u64
    )
}

/// A block whose bytes depend on `seed` and position (never all zeros).
fn block(seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(0x9E37_79B9);
    (0..BS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn set(target: &Object, key: &str, value: impl Into<JsValue>) {
    Reflect::set(target, &key.into(), &value.into()).expect("set a property");
}

fn options(name: &str, setup: Setup, blocks: Option<u64>) -> JsValue {
    let options = Object::new();
    set(&options, "name", name);
    set(&options, "backend", setup.backend.as_str());
    let legs: Array = setup
        .legs
        .iter()
        .map(|b| JsValue::from_str(b.as_str()))
        .collect();
    set(&options, "legs", legs);
    if let Some(blocks) = blocks {
        set(&options, "blocks", blocks as f64);
    }
    options.into()
}

fn get(value: &JsValue, key: &str) -> JsValue {
    Reflect::get(value, &key.into()).unwrap_or_else(|_| panic!("no {key}"))
}

fn num(value: &JsValue, key: &str) -> u64 {
    get(value, key)
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number: {value:?}")) as u64
}

fn text(value: &JsValue, key: &str) -> String {
    get(value, key)
        .as_string()
        .unwrap_or_else(|| panic!("{key} is not a string: {value:?}"))
}

fn items(value: &JsValue) -> Vec<JsValue> {
    Array::from(value).iter().collect()
}

fn numbers(value: &JsValue) -> Vec<u64> {
    items(value)
        .iter()
        .map(|n| n.as_f64().expect("a number") as u64)
        .collect()
}

fn legs(status: &JsValue) -> Vec<JsValue> {
    items(&get(status, "legs"))
}

async fn open(name: &str, setup: Setup, blocks: Option<u64>) -> StrataMirror {
    StrataMirror::open(options(name, setup, blocks))
        .await
        .unwrap_or_else(|e| panic!("open {name}: {e}"))
}

async fn destroy(name: &str, setup: Setup) {
    StrataMirror::destroy(options(name, setup, None))
        .await
        .unwrap_or_else(|e| panic!("destroy {name}: {e}"));
}

fn code<T>(result: Result<T, StrataError>) -> &'static str {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.code(),
    }
}

/// Writes every block (the first half one by one, the rest as one batch), mirrored in `model`.
async fn fill(m: &StrataMirror, model: &mut [u8], seed: u32) {
    let half = BLOCKS / 2;
    for addr in 0..half {
        let data = block(seed * 1000 + addr as u32);
        model[addr as usize * BS..][..BS].copy_from_slice(&data);
        m.write(addr as f64, data).await.expect("write");
    }
    let batch = Array::new();
    for addr in half..BLOCKS {
        let data = block(seed * 1000 + addr as u32);
        model[addr as usize * BS..][..BS].copy_from_slice(&data);
        let pair = Array::new();
        pair.push(&JsValue::from_f64(addr as f64));
        pair.push(&js_sys::Uint8Array::from(data.as_slice()));
        batch.push(&pair);
    }
    m.write_batch(batch.into()).await.expect("writeBatch");
}

/// Reads the whole head twice (reads use the legs in turn, so both legs serve once).
async fn check(m: &StrataMirror, model: &[u8], context: &str) {
    for _ in 0..2 {
        let got = m.read(0.0, BLOCKS as f64).await.expect("read");
        assert!(got == model, "{context}: the head reads wrong data");
    }
}

fn assert_healthy(status: &JsValue, context: &str) {
    assert_eq!(num(status, "healthyLegs"), 2, "{context}: {status:?}");
    assert_eq!(get(status, "degraded"), JsValue::FALSE, "{context}");
    for leg in legs(status) {
        assert_eq!(text(&leg, "state"), "healthy", "{context}: {leg:?}");
    }
}

/// Opens leg `leg`'s storage of mirror `name` directly, and changes `len` bytes of `object`
/// at `offset` with `change`.
async fn tamper(
    setup: Setup,
    name: &str,
    leg: usize,
    object: &str,
    offset: u64,
    len: usize,
    change: impl FnOnce(&mut [u8]),
) {
    let kind = setup.legs[leg];
    let (mut storage, _) = open_backend(kind, &leg_store_name(name, leg))
        .await
        .expect("open the leg's storage");
    let mut bytes = vec![0u8; len];
    storage
        .read_at(object, offset, &mut bytes)
        .await
        .expect("read");
    change(&mut bytes);
    let mut commit = Commit::new(true);
    commit.write(object, offset, bytes);
    storage.commit(commit).await.expect("tamper");
}

async fn flip_bit(setup: Setup, name: &str, leg: usize, addr: u64) {
    tamper(setup, name, leg, IMAGE, addr * BS as u64 + 100, 1, |b| {
        b[0] ^= 1 << 3
    })
    .await;
}

async fn garbage_block(setup: Setup, name: &str, leg: usize, addr: u64) {
    tamper(setup, name, leg, IMAGE, addr * BS as u64, BS, |b| {
        b.fill(0x5a)
    })
    .await;
}

async fn zero_block(setup: Setup, name: &str, leg: usize, addr: u64) {
    tamper(setup, name, leg, IMAGE, addr * BS as u64, BS, |b| b.fill(0)).await;
}

async fn zero_checksum(setup: Setup, name: &str, leg: usize, addr: u64) {
    tamper(setup, name, leg, SUMS, addr * 4, 4, |b| b.fill(0)).await;
}

/// `(leg, addr, kind, foundBy, repaired)` of each fault event.
async fn events(m: &StrataMirror) -> Vec<(u64, u64, String, String, bool)> {
    items(&m.events().await.expect("events").into())
        .iter()
        .map(|e| {
            (
                num(e, "leg"),
                get(e, "addr").as_f64().map_or(u64::MAX, |a| a as u64),
                text(e, "kind"),
                text(e, "foundBy"),
                get(e, "repaired") == JsValue::TRUE,
            )
        })
        .collect()
}

// ----- round trip and reopen ---------------------------------------------------------------------

async fn check_round_trip(setup: Setup) {
    let name = unique("round-trip");
    let m = open(&name, setup, Some(BLOCKS)).await;
    assert_eq!(m.backend(), setup.backend.as_str());
    assert_eq!(m.name(), name);
    let mut model = vec![0u8; BLOCKS as usize * BS];
    fill(&m, &mut model, 1).await;
    m.sync().await.expect("sync");
    let snapshot = m.snapshot(Some("one".into())).await.expect("snapshot");
    let volume = num(&snapshot, "volume");
    assert_eq!(volume, 1);
    assert!(get(&snapshot, "compacted").is_null());
    let before = model.clone();
    for addr in [3u64, 10, 63] {
        let data = block(2000 + addr as u32);
        model[addr as usize * BS..][..BS].copy_from_slice(&data);
        m.write(addr as f64, data).await.expect("overwrite");
    }
    // Unsynced writes read back from the buffer, synced ones from the primary.
    check(&m, &model, "before the sync").await;
    m.sync().await.expect("sync");
    check(&m, &model, "after the sync").await;
    let old = m
        .read_at(volume as f64, 0.0, BLOCKS as f64)
        .await
        .expect("readAt");
    assert!(old == before, "the snapshot reads its own data");

    let status = m.status().await.expect("status");
    assert_healthy(&status, "new mirror");
    assert_eq!(num(&status, "pendingBlocks"), 0);
    assert_eq!(num(&status, "blocksServedBySecondary"), 0);
    for (i, leg) in legs(&status).iter().enumerate() {
        assert_eq!(num(leg, "leg"), i as u64);
        assert_eq!(text(leg, "backend"), setup.legs[i].as_str());
        assert_eq!(text(leg, "store"), format!("{name}.leg{i}"));
        assert!(!get(leg, "synced").is_null());
    }
    let info = m.info().await.expect("info");
    assert_eq!(num(&info, "blockCount"), BLOCKS);
    assert_eq!(num(&info, "blockSize"), BS as u64);
    assert_eq!(text(&info, "name"), name);
    assert_eq!(text(&info, "backend"), setup.backend.as_str());
    let leg_backends: Vec<String> = items(&get(&info, "legs"))
        .iter()
        .map(|b| b.as_string().unwrap())
        .collect();
    assert_eq!(leg_backends, setup.legs.map(|b| b.as_str().to_string()));
    let kinds: Vec<String> = items(&m.volumes().await.expect("volumes").into())
        .iter()
        .map(|v| text(v, "kind"))
        .collect();
    assert_eq!(kinds, ["baseline", "snapshot", "head"]);
    assert!(events(&m).await.is_empty(), "no faults");

    m.close().await.expect("close");
    m.close().await.expect("closing twice is allowed");
    assert_eq!(code(m.read(0.0, 1.0).await), "CLOSED");

    // Reopened without geometry: everything is there and every leg is in sync.
    let m = open(&name, setup, None).await;
    let status = m.status().await.expect("status");
    assert_healthy(&status, "reopened");
    for leg in legs(&status) {
        assert_eq!(text(&leg, "open"), "inSync");
    }
    check(&m, &model, "reopened").await;
    let old = m
        .read_at(volume as f64, 0.0, BLOCKS as f64)
        .await
        .expect("readAt");
    assert!(old == before, "the snapshot survives a reopen");
    m.close().await.expect("close");

    // The wrong geometry is refused; the locks are released for the next try.
    assert_eq!(
        code(StrataMirror::open(options(&name, setup, Some(BLOCKS + 1))).await),
        "INVALID_ARGUMENT"
    );
    destroy(&name, setup).await;
    // Gone: opening without `blocks` has nothing to open.
    assert_eq!(
        code(StrataMirror::open(options(&name, setup, None)).await),
        "INVALID_ARGUMENT"
    );
    destroy(&name, setup).await;
}

#[wasm_bindgen_test]
async fn memory_round_trip_and_reopen() {
    check_round_trip(MEMORY).await;
}

#[wasm_bindgen_test]
async fn opfs_indexeddb_round_trip_and_reopen() {
    check_round_trip(OPFS_IDB).await;
}

// ----- a leg corrupted behind the store's back ---------------------------------------------------

async fn check_corruption_repaired(setup: Setup) {
    let name = unique("corrupt");
    let m = open(&name, setup, Some(BLOCKS)).await;
    let mut model = vec![0u8; BLOCKS as usize * BS];
    fill(&m, &mut model, 3).await;
    m.close().await.expect("close");

    // Five faults: three on leg 0, two on leg 1, at different blocks.
    flip_bit(setup, &name, 0, 3).await;
    flip_bit(setup, &name, 0, 10).await;
    zero_checksum(setup, &name, 0, 20).await;
    garbage_block(setup, &name, 1, 5).await;
    zero_block(setup, &name, 1, 30).await;
    let injected: BTreeSet<(u64, u64)> = [(0, 3), (0, 10), (0, 20), (1, 5), (1, 30)].into();

    let m = open(&name, setup, None).await;
    let report = m.scrub().await.expect("scrub");
    assert_eq!(num(&report, "blocksChecked"), BLOCKS);
    assert_eq!(num(&report, "copiesChecked"), 2 * BLOCKS);
    assert_eq!(num(&report, "detected"), 5, "{report:?}");
    assert_eq!(
        num(&report, "repaired"),
        5,
        "every fault detected is repaired"
    );
    assert!(numbers(&get(&report, "unrecoverable")).is_empty());
    assert!(numbers(&get(&report, "secondaryDamaged")).is_empty());
    let per_leg: Vec<(u64, u64, u64)> = items(&get(&report, "legs"))
        .iter()
        .map(|l| (num(l, "checked"), num(l, "detected"), num(l, "repaired")))
        .collect();
    assert_eq!(per_leg, [(BLOCKS, 3, 3), (BLOCKS, 2, 2)]);
    let found = events(&m).await;
    assert_eq!(found.len(), 5, "{found:?}");
    assert!(found
        .iter()
        .all(|(_, _, kind, by, repaired)| kind == "checksum" && by == "scrub" && *repaired));
    let found: BTreeSet<(u64, u64)> = found.iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(found, injected);
    check(&m, &model, "after the scrub").await;
    let again = m.scrub().await.expect("scrub");
    assert_eq!(num(&again, "detected"), 0, "the repairs hold");
    m.close().await.expect("close");

    // The same found by reads: each read uses one leg and falls back to the other per block.
    flip_bit(setup, &name, 0, 7).await;
    garbage_block(setup, &name, 0, 8).await;
    zero_checksum(setup, &name, 1, 40).await;
    let m = open(&name, setup, None).await;
    check(&m, &model, "reads over damaged legs").await;
    let found = events(&m).await;
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found.iter().all(|e| e.3 == "read" && e.4), "{found:?}");
    let status = m.status().await.expect("status");
    let counts: Vec<(u64, u64)> = legs(&status)
        .iter()
        .map(|l| (num(l, "errorsDetected"), num(l, "errorsRepaired")))
        .collect();
    assert_eq!(counts, [(2, 2), (1, 1)]);
    assert_eq!(num(&status, "blocksServedBySecondary"), 0);
    assert_eq!(num(&m.scrub().await.expect("scrub"), "detected"), 0);
    m.close().await.expect("close");
    destroy(&name, setup).await;
}

#[wasm_bindgen_test]
async fn memory_corrupted_leg_is_repaired() {
    check_corruption_repaired(MEMORY).await;
}

#[wasm_bindgen_test]
async fn opfs_indexeddb_corrupted_leg_is_repaired() {
    check_corruption_repaired(OPFS_IDB).await;
}

// ----- a leg whose storage is destroyed ----------------------------------------------------------

async fn check_destroyed_leg(setup: Setup) {
    let name = unique("destroyed");
    let m = open(&name, setup, Some(BLOCKS)).await;
    let mut model = vec![0u8; BLOCKS as usize * BS];
    fill(&m, &mut model, 4).await;
    m.close().await.expect("close");
    destroy_backend(setup.legs[1], &leg_store_name(&name, 1))
        .await
        .expect("destroy leg 1");

    let m = open(&name, setup, None).await;
    let status = m.status().await.expect("status");
    assert_eq!(get(&status, "degraded"), JsValue::TRUE, "{status:?}");
    assert_eq!(num(&status, "healthyLegs"), 1);
    let leg = &legs(&status)[1];
    assert_eq!(text(leg, "state"), "degraded");
    assert_eq!(text(leg, "open"), "failed");
    assert!(text(leg, "reason").contains("holds no primary"), "{leg:?}");
    assert_eq!(text(&legs(&status)[0], "state"), "healthy");
    check(&m, &model, "one leg left").await;
    // Writes go on with one leg.
    for addr in 0..8u64 {
        let data = block(5000 + addr as u32);
        model[addr as usize * BS..][..BS].copy_from_slice(&data);
        m.write(addr as f64, data).await.expect("write");
    }
    m.sync().await.expect("sync");
    check(&m, &model, "written with one leg").await;

    assert_eq!(code(m.replace(2.0).await), "INVALID_ARGUMENT");
    let report = m.replace(1.0).await.expect("replace");
    assert_eq!(num(&report, "leg"), 1);
    assert_eq!(text(&report, "backend"), setup.legs[1].as_str());
    assert_eq!(num(&report, "blocksChecked"), BLOCKS);
    assert_eq!(
        num(&report, "blocksWritten"),
        BLOCKS,
        "every block is non-zero"
    );
    assert!(numbers(&get(&report, "unrecoverable")).is_empty());
    let status = m.status().await.expect("status");
    assert_healthy(&status, "after replace");
    assert_eq!(num(&legs(&status)[1], "replacements"), 1);
    assert_eq!(num(&m.scrub().await.expect("scrub"), "detected"), 0);
    check(&m, &model, "after replace").await;
    m.close().await.expect("close");

    let m = open(&name, setup, None).await;
    let status = m.status().await.expect("status");
    assert_healthy(&status, "reopened after replace");
    for leg in legs(&status) {
        assert_eq!(text(&leg, "open"), "inSync");
    }
    check(&m, &model, "reopened after replace").await;
    m.close().await.expect("close");
    destroy(&name, setup).await;
}

#[wasm_bindgen_test]
async fn memory_destroyed_leg_is_degraded_until_replaced() {
    check_destroyed_leg(MEMORY).await;
}

#[wasm_bindgen_test]
async fn opfs_indexeddb_destroyed_leg_is_degraded_until_replaced() {
    check_destroyed_leg(OPFS_IDB).await;
}

#[wasm_bindgen_test]
async fn indexeddb_leg_deleted_while_open_is_taken_out_of_service() {
    let setup = OPFS_IDB;
    let name = unique("deleted-open");
    let m = open(&name, setup, Some(BLOCKS)).await;
    let mut model = vec![0u8; BLOCKS as usize * BS];
    fill(&m, &mut model, 6).await;
    m.sync().await.expect("sync");
    // The mirror's connection to leg 1 closes itself when asked, so the deletion goes through.
    IdbStorage::destroy(&leg_store_name(&name, 1))
        .await
        .expect("delete the leg's database");
    for addr in 10..20u64 {
        let data = block(6000 + addr as u32);
        model[addr as usize * BS..][..BS].copy_from_slice(&data);
        m.write(addr as f64, data).await.expect("write");
    }
    m.sync()
        .await
        .expect("a leg failing does not fail the sync");
    let status = m.status().await.expect("status");
    assert_eq!(get(&status, "degraded"), JsValue::TRUE, "{status:?}");
    let leg = &legs(&status)[1];
    assert_eq!(text(leg, "state"), "degraded");
    assert!(num(leg, "ioErrors") >= 1);
    assert!(events(&m).await.iter().any(|e| e.0 == 1 && e.2 == "io"));
    check(&m, &model, "one leg left").await;
    m.replace(1.0).await.expect("replace");
    assert_healthy(&m.status().await.expect("status"), "after replace");
    check(&m, &model, "after replace").await;
    m.close().await.expect("close");
    destroy(&name, setup).await;
}

// ----- every leg lost ----------------------------------------------------------------------------

async fn check_rebuild(setup: Setup) {
    let name = unique("rebuild");
    let m = open(&name, setup, Some(BLOCKS)).await;
    let mut model = vec![0u8; BLOCKS as usize * BS];
    fill(&m, &mut model, 7).await;
    m.snapshot(None).await.expect("snapshot");
    for addr in 30..40u64 {
        let data = block(7000 + addr as u32);
        model[addr as usize * BS..][..BS].copy_from_slice(&data);
        m.write(addr as f64, data).await.expect("write");
    }
    m.close().await.expect("close");
    for leg in 0..2 {
        destroy_backend(setup.legs[leg], &leg_store_name(&name, leg))
            .await
            .expect("destroy a leg");
    }

    let m = open(&name, setup, None).await;
    let status = m.status().await.expect("status");
    assert_eq!(num(&status, "healthyLegs"), 0, "{status:?}");
    assert_eq!(get(&status, "degraded"), JsValue::TRUE);
    check(&m, &model, "no leg: from the secondary").await;
    let served = num(
        &m.status().await.expect("status"),
        "blocksServedBySecondary",
    );
    assert_eq!(served, 2 * BLOCKS);

    let reports = items(&m.rebuild().await.expect("rebuild").into());
    assert_eq!(reports.len(), 2);
    for (i, report) in reports.iter().enumerate() {
        assert_eq!(num(report, "leg"), i as u64);
        assert_eq!(num(report, "blocksWritten"), BLOCKS);
        assert!(numbers(&get(report, "unrecoverable")).is_empty());
    }
    let status = m.status().await.expect("status");
    assert_healthy(&status, "rebuilt");
    check(&m, &model, "rebuilt").await;
    assert_eq!(
        num(
            &m.status().await.expect("status"),
            "blocksServedBySecondary"
        ),
        served,
        "the rebuilt primary serves the reads"
    );
    assert_eq!(num(&m.scrub().await.expect("scrub"), "detected"), 0);
    m.close().await.expect("close");

    let m = open(&name, setup, None).await;
    assert_healthy(&m.status().await.expect("status"), "rebuilt, reopened");
    check(&m, &model, "rebuilt, reopened").await;
    m.close().await.expect("close");
    destroy(&name, setup).await;
}

#[wasm_bindgen_test]
async fn memory_all_legs_lost_are_rebuilt() {
    check_rebuild(MEMORY).await;
}

#[wasm_bindgen_test]
async fn opfs_indexeddb_all_legs_lost_are_rebuilt() {
    check_rebuild(OPFS_IDB).await;
}

// ----- the same block bad everywhere -------------------------------------------------------------

/// Flips a bit of `needle`'s copy in one of the secondary's segments (a memory store, shared
/// with the open mirror).
async fn damage_in_secondary(name: &str, needle: &[u8]) {
    let (mut storage, _) = open_backend(BackendKind::Memory, name)
        .await
        .expect("open the secondary");
    for object in storage.list().await.expect("list") {
        if !object.starts_with("seg-") {
            continue;
        }
        let len = storage.len(&object).await.expect("len").unwrap_or(0) as usize;
        let mut bytes = vec![0u8; len];
        storage
            .read_at(&object, 0, &mut bytes)
            .await
            .expect("read a segment");
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
            let mut commit = Commit::new(true);
            commit.write(&object, at as u64 + 11, vec![bytes[at + 11] ^ 0x10]);
            storage.commit(commit).await.expect("damage");
            return;
        }
    }
    panic!("the block is in no segment of the secondary");
}

#[wasm_bindgen_test]
async fn the_same_block_bad_on_every_copy_is_unrecoverable_never_data() {
    let setup = MEMORY;
    let name = unique("unrecoverable");
    let m = open(&name, setup, Some(BLOCKS)).await;
    let mut model = vec![0u8; BLOCKS as usize * BS];
    fill(&m, &mut model, 8).await;
    m.sync().await.expect("sync");
    let addr = 21u64;
    flip_bit(setup, &name, 0, addr).await;
    zero_checksum(setup, &name, 1, addr).await;
    damage_in_secondary(&name, &model[addr as usize * BS..][..BS]).await;

    for _ in 0..2 {
        assert_eq!(code(m.read(addr as f64, 1.0).await), "CORRUPT");
        assert_eq!(code(m.read(addr as f64 - 3.0, 8.0).await), "CORRUPT");
    }
    let head = m.read(0.0, addr as f64).await.expect("before the block");
    assert!(head == model[..addr as usize * BS]);
    let tail = m
        .read(addr as f64 + 1.0, (BLOCKS - addr - 1) as f64)
        .await
        .expect("after the block");
    assert!(tail == model[(addr as usize + 1) * BS..]);
    let report = m.scrub().await.expect("scrub");
    assert_eq!(numbers(&get(&report, "unrecoverable")), [addr]);
    assert_eq!(numbers(&get(&report, "secondaryDamaged")), [addr]);
    assert_eq!((num(&report, "detected"), num(&report, "repaired")), (2, 0));
    let status = m.status().await.expect("status");
    assert!(num(&status, "unrecoverableReads") >= 4, "{status:?}");
    assert_eq!(code(m.read(addr as f64, 1.0).await), "CORRUPT");

    // Writing the block again heals it everywhere.
    let fresh = block(9999);
    m.write(addr as f64, fresh.clone()).await.expect("rewrite");
    m.sync().await.expect("sync");
    assert!(m.read(addr as f64, 1.0).await.expect("read") == fresh);
    let report = m.scrub().await.expect("scrub");
    assert_eq!(num(&report, "detected"), 0);
    assert!(numbers(&get(&report, "unrecoverable")).is_empty());
    m.close().await.expect("close");
    destroy(&name, setup).await;
}

// ----- locks and arguments -----------------------------------------------------------------------

#[wasm_bindgen_test]
async fn a_mirror_or_a_leg_open_elsewhere_is_locked() {
    let setup = OPFS_IDB;
    let name = unique("locked");
    let m = open(&name, setup, Some(BLOCKS)).await;
    assert_eq!(
        code(StrataMirror::open(options(&name, setup, None)).await),
        "LOCKED"
    );
    // Each part is locked under its own store name.
    for (store, backend) in [
        (name.clone(), "opfs"),
        (leg_store_name(&name, 0), "opfs"),
        (leg_store_name(&name, 1), "indexeddb"),
    ] {
        let plain = Object::new();
        set(&plain, "name", store.as_str());
        set(&plain, "backend", backend);
        assert_eq!(
            code(StrataStore::open(plain.into()).await),
            "LOCKED",
            "{store}"
        );
    }
    assert_eq!(
        code(StrataMirror::destroy(options(&name, setup, None)).await),
        "LOCKED"
    );
    m.close().await.expect("close");

    // A leg held elsewhere: the open fails, and gives the locks it took back.
    let held = acquire_store_lock(&leg_store_name(&name, 1))
        .await
        .expect("take leg 1's lock");
    assert_eq!(
        code(StrataMirror::open(options(&name, setup, None)).await),
        "LOCKED"
    );
    held.release_and_wait().await;
    let m = open(&name, setup, None).await;
    assert_healthy(&m.status().await.expect("status"), "reopened");
    m.close().await.expect("close");
    destroy(&name, setup).await;
}

#[wasm_bindgen_test]
async fn bad_options_are_refused_and_compaction_on_snapshot_runs() {
    let name = unique("options");
    let bad = |change: &dyn Fn(&Object)| {
        let o: Object = options(&name, MEMORY, Some(BLOCKS)).into();
        change(&o);
        JsValue::from(o)
    };
    for options in [
        bad(&|o| set(o, "legs", JsValue::UNDEFINED)),
        bad(&|o| set(o, "legs", Array::new())),
        bad(&|o| set(o, "legs", Array::of1(&"floppy".into()))),
        bad(&|o| set(o, "legs", "opfs")),
        bad(&|o| set(o, "name", "")),
        bad(&|o| set(o, "compactOnSnapshot", "sometimes")),
        bad(&|o| set(o, "blocks", -1.0)),
    ] {
        assert_eq!(code(StrataMirror::open(options).await), "INVALID_ARGUMENT");
    }

    // Every snapshot merges the oldest ones so that at most one remains.
    let keep = Object::new();
    set(&keep, "keepSnapshots", 1.0);
    let m = StrataMirror::open(bad(&|o| set(o, "compactOnSnapshot", keep.clone())))
        .await
        .expect("open");
    let mut merged = 0;
    for i in 0..3u32 {
        m.write(0.0, block(i)).await.expect("write");
        let report = m.snapshot(None).await.expect("snapshot");
        merged += num(&report, "mergedPartitions");
    }
    assert!(merged >= 2, "merged {merged} partitions");
    let snapshots = items(&m.volumes().await.expect("volumes").into())
        .iter()
        .filter(|v| text(v, "kind") == "snapshot")
        .count();
    assert_eq!(snapshots, 1);
    assert!(m.read(0.0, 1.0).await.expect("read") == block(2));
    m.close().await.expect("close");
    destroy(&name, MEMORY).await;

    // In place: the new snapshot is compacted.
    let m = StrataMirror::open(bad(&|o| set(o, "compactOnSnapshot", "inPlace")))
        .await
        .expect("open");
    m.write(0.0, block(1)).await.expect("write");
    let report = m.snapshot(None).await.expect("snapshot");
    assert!(!get(&report, "compacted").is_null(), "{report:?}");
    m.close().await.expect("close");
    destroy(&name, MEMORY).await;
}

// ----- history: snapshots, compaction, merge, deletion, rollback, diff, the log ---------------------

/// Writes `block(seed * 1000 + addr)` at each of `addrs`, one by one, mirrored in `model`.
async fn overwrite(m: &StrataMirror, model: &mut [u8], seed: u32, addrs: &[u64]) {
    for &addr in addrs {
        let data = block(seed * 1000 + addr as u32);
        model[addr as usize * BS..][..BS].copy_from_slice(&data);
        m.write(addr as f64, data).await.expect("write");
    }
}

async fn snapshot(m: &StrataMirror, label: &str) -> u64 {
    num(
        &m.snapshot(Some(label.into())).await.expect("snapshot"),
        "volume",
    )
}

/// `(addr, blocks)` of each extent of `diff(a, b)`.
async fn diff(m: &StrataMirror, a: u64, b: u64) -> Vec<(u64, u64)> {
    items(&m.diff(a as f64, b as f64).await.expect("diff").into())
        .iter()
        .map(|e| (num(e, "addr"), num(e, "blocks")))
        .collect()
}

/// `(id, kind, label)` of every volume.
async fn volumes(m: &StrataMirror) -> Vec<(u64, String, String)> {
    items(&m.volumes().await.expect("volumes").into())
        .iter()
        .map(|v| (num(v, "id"), text(v, "kind"), text(v, "label")))
        .collect()
}

async fn read_volume(m: &StrataMirror, volume: u64) -> Vec<u8> {
    m.read_at(volume as f64, 0.0, BLOCKS as f64)
        .await
        .expect("readAt")
}

/// The primary and the secondary agree, on `model`: the head read from the primary (twice, so
/// that both legs serve) equals `model` and the plain read of the secondary's head; a scrub
/// finds nothing; both legs are healthy, and their headers name the secondary's head; no fault
/// was recorded.
async fn in_step(m: &StrataMirror, model: &[u8], context: &str) {
    check(m, model, context).await;
    let head = num(&m.info().await.expect("info"), "head");
    assert!(
        read_volume(m, head).await == model,
        "{context}: the secondary's head reads otherwise"
    );
    let report = m.scrub().await.expect("scrub");
    assert_eq!(
        (num(&report, "detected"), num(&report, "repaired")),
        (0, 0),
        "{context}: {report:?}"
    );
    assert_eq!(num(&report, "blocksChecked"), BLOCKS, "{context}");
    assert!(
        numbers(&get(&report, "unrecoverable")).is_empty(),
        "{context}"
    );
    assert!(
        numbers(&get(&report, "secondaryDamaged")).is_empty(),
        "{context}"
    );
    let status = m.status().await.expect("status");
    assert_healthy(&status, context);
    assert_eq!(num(&status, "head"), head, "{context}");
    for leg in legs(&status) {
        assert_eq!(
            num(&get(&leg, "synced"), "head"),
            head,
            "{context}: {leg:?}"
        );
    }
    assert!(events(m).await.is_empty(), "{context}: faults recorded");
}

/// A JS progress callback counting its calls, returning `answer`.
fn progress(answer: bool) -> (js_sys::Function, std::rc::Rc<Cell<u32>>) {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    let calls = std::rc::Rc::new(Cell::new(0u32));
    let counter = calls.clone();
    let closure = Closure::<dyn FnMut(f64, f64) -> bool>::new(move |done: f64, total: f64| {
        assert!(done <= total, "progress {done} of {total}");
        counter.set(counter.get() + 1);
        answer
    });
    let function = closure.as_ref().unchecked_ref::<js_sys::Function>().clone();
    closure.forget();
    (function, calls)
}

async fn check_history(setup: Setup) {
    let name = unique("history");
    let m = open(&name, setup, Some(BLOCKS)).await;
    let mut model = vec![0u8; BLOCKS as usize * BS];
    fill(&m, &mut model, 1).await;
    let v1 = snapshot(&m, "one").await;
    let at_v1 = model.clone();
    // Block 2 twice: the second write makes the first one droppable by compaction.
    overwrite(&m, &mut model, 2, &[2, 3, 4, 40]).await;
    overwrite(&m, &mut model, 3, &[2]).await;
    let v2 = snapshot(&m, "two").await;
    let at_v2 = model.clone();
    overwrite(&m, &mut model, 4, &[4, 5, 50, 63]).await;
    let v3 = snapshot(&m, "three").await;
    let at_v3 = model.clone();
    // Unsynced head writes: every operation below syncs them first.
    overwrite(&m, &mut model, 5, &[0, 10, 11]).await;
    let head = num(&m.info().await.expect("info"), "head");
    assert!(v1 < v2 && v2 < v3 && v3 < head);
    in_step(&m, &model, "after the snapshots").await;

    // diff: the secondary's extents between volumes, either way round.
    assert_eq!(diff(&m, v1, v2).await, [(2, 3), (40, 1)]);
    assert_eq!(diff(&m, v2, v1).await, [(2, 3), (40, 1)]);
    assert_eq!(diff(&m, v2, v3).await, [(4, 2), (50, 1), (63, 1)]);
    assert_eq!(diff(&m, v3, head).await, [(0, 1), (10, 2)]);
    assert!(diff(&m, v3, v3).await.is_empty());
    assert_eq!(code(m.diff(v1 as f64, 999.0).await), "UNKNOWN_VOLUME");

    // The log: 64 entries of the fill (a batch is one entry per write), then 5, 4 and 3.
    let cursor = m.cursor(JsValue::UNDEFINED).await.expect("cursor");
    let entries = items(
        &m.next_entries(&cursor, 1000.0, false)
            .await
            .expect("nextEntries")
            .into(),
    );
    assert_eq!(entries.len(), 64 + 5 + 4 + 3);
    let seqs: Vec<u64> = entries.iter().map(|e| num(e, "seq")).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let in_volume = |v: u64| entries.iter().filter(|e| num(e, "volume") == v).count();
    assert_eq!(
        [in_volume(v1), in_volume(v2), in_volume(v3), in_volume(head)],
        [64, 5, 4, 3]
    );
    assert!(entries.iter().all(|e| get(e, "data").is_null()));
    assert_eq!(cursor.next_seq() as u64, seqs[seqs.len() - 1] + 1);
    assert!(m
        .next_entry(&cursor, false)
        .await
        .expect("nextEntry")
        .is_null());
    // From a sequence number, with the data, verified.
    let start = Object::new();
    set(&start, "seq", seqs[seqs.len() - 1] as f64);
    let cursor = m.cursor(start.into()).await.expect("cursor at a seq");
    let last = m.next_entry(&cursor, true).await.expect("nextEntry");
    assert_eq!((num(&last, "addr"), num(&last, "blocks")), (11, 1));
    let data = js_sys::Uint8Array::from(get(&last, "data")).to_vec();
    assert!(data == model[11 * BS..][..BS], "the entry's data");
    let start = Object::new();
    set(&start, "volume", v3 as f64);
    let cursor = m.cursor(start.into()).await.expect("cursor at a volume");
    let first = m.next_entry(&cursor, false).await.expect("nextEntry");
    assert_eq!((num(&first, "volume"), num(&first, "addr")), (v3, 4));
    assert_eq!(
        code(m.cursor(JsValue::from_str("middle")).await),
        "INVALID_ARGUMENT"
    );

    // space: one entry per partition, every volume but the baseline visible.
    let space = items(&m.space().await.expect("space").into());
    let visible: BTreeSet<u64> = space
        .iter()
        .filter(|s| get(s, "visible") == JsValue::TRUE)
        .map(|s| num(s, "volume"))
        .collect();
    assert_eq!(visible, BTreeSet::from([v1, v2, v3, head]));
    for s in &space {
        assert!(num(s, "liveBytes") <= num(s, "totalBytes"), "{s:?}");
    }

    // compact: cancelled by its progress callback, then done; the head cannot be compacted.
    let (stop, stops) = progress(false);
    assert_eq!(code(m.compact(v2 as f64, Some(stop)).await), "CANCELLED");
    assert!(stops.get() >= 1);
    assert!(
        read_volume(&m, v2).await == at_v2,
        "v2 after a cancelled compaction"
    );
    in_step(&m, &model, "after a cancelled compaction").await;
    let (go, calls) = progress(true);
    let report = m.compact(v2 as f64, Some(go)).await.expect("compact");
    assert!(calls.get() >= 1, "no progress reported");
    assert_eq!(
        (num(&report, "blocksKept"), num(&report, "blocksDropped")),
        (4, 1),
        "{report:?}"
    );
    assert!(num(&report, "bytesAfter") < num(&report, "bytesBefore"));
    assert_eq!(code(m.compact(head as f64, None).await), "INVALID_ARGUMENT");
    assert!(
        read_volume(&m, v2).await == at_v2,
        "v2 after its compaction"
    );
    assert!(
        read_volume(&m, v1).await == at_v1,
        "v1 after v2's compaction"
    );
    in_step(&m, &model, "after compact").await;

    // merge: v1 goes into the baseline.
    let (go, calls) = progress(true);
    assert_eq!(m.merge(v1 as f64, Some(go)).await.expect("merge"), 1.0);
    assert!(calls.get() >= 1, "no progress reported");
    let kinds: Vec<(u64, String)> = volumes(&m)
        .await
        .into_iter()
        .map(|(id, kind, _)| (id, kind))
        .collect();
    assert_eq!(
        kinds,
        [
            (0, "baseline".into()),
            (v2, "snapshot".into()),
            (v3, "snapshot".into()),
            (head, "head".into())
        ]
    );
    assert!(read_volume(&m, 0).await == at_v1, "the baseline holds v1");
    assert_eq!(code(m.read_at(v1 as f64, 0.0, 1.0).await), "UNKNOWN_VOLUME");
    assert!(read_volume(&m, v2).await == at_v2, "v2 after the merge");
    in_step(&m, &model, "after merge").await;

    // deleteVolume: v2 goes; v3, which reads through it, does not change.
    let report = m.delete_volume(v2 as f64).await.expect("deleteVolume");
    assert!(get(&report, "removed").as_bool().is_some(), "{report:?}");
    assert!(volumes(&m).await.iter().all(|(id, _, _)| *id != v2));
    assert_eq!(code(m.read_at(v2 as f64, 0.0, 1.0).await), "UNKNOWN_VOLUME");
    assert_eq!(code(m.delete_volume(head as f64).await), "INVALID_ARGUMENT");
    assert!(
        read_volume(&m, v3).await == at_v3,
        "v3 after v2 was deleted"
    );
    in_step(&m, &model, "after deleteVolume").await;

    // rollback: the head reads as v3 again, from the primary too; the old head is kept.
    let before = model.clone();
    let new_head = m
        .rollback(v3 as f64, Some("before".into()))
        .await
        .expect("rollback") as u64;
    assert!(new_head > head);
    let model = at_v3.clone();
    in_step(&m, &model, "after rollback").await;
    let kept = volumes(&m)
        .await
        .into_iter()
        .find(|(_, _, label)| label == "before")
        .expect("the old head, kept as a snapshot");
    assert_eq!(kept.1, "snapshot");
    assert!(read_volume(&m, kept.0).await == before, "the old head");
    assert!(diff(&m, v3, new_head).await.is_empty());
    assert_eq!(diff(&m, new_head, kept.0).await, [(0, 1), (10, 2)]);
    assert_eq!(
        code(m.rollback(new_head as f64, None).await),
        "INVALID_ARGUMENT"
    );
    in_step(&m, &model, "after the refused calls").await;
    m.close().await.expect("close");
    assert_eq!(code(m.space().await), "CLOSED");
    assert_eq!(code(m.compact(v3 as f64, None).await), "CLOSED");

    // Reopened: every leg in step without work; then the secondary alone, as a plain store.
    let m = open(&name, setup, None).await;
    for leg in legs(&m.status().await.expect("status")) {
        assert_eq!(text(&leg, "open"), "inSync", "{leg:?}");
    }
    in_step(&m, &model, "reopened").await;
    m.close().await.expect("close");
    let plain = Object::new();
    set(&plain, "name", name.as_str());
    set(&plain, "backend", setup.backend.as_str());
    let store = StrataStore::open(plain.into())
        .await
        .expect("open the secondary");
    let head = store.read(0.0, BLOCKS as f64).await.expect("read");
    assert!(head == model, "the secondary, opened as a plain store");
    store.close().await.expect("close");
    destroy(&name, setup).await;
}

#[wasm_bindgen_test]
async fn memory_history_operations_keep_primary_and_secondary_in_step() {
    check_history(MEMORY).await;
}

#[wasm_bindgen_test]
async fn opfs_indexeddb_history_operations_keep_primary_and_secondary_in_step() {
    check_history(OPFS_IDB).await;
}
