//! The engine's storage conformance suite (`strata_engine::storage::conformance`: the backend
//! contract checked against the in-memory reference backend, and the real engine on top) over
//! every browser backend (memory, IndexedDB, OPFS), plus what only the browser has: the Web Lock
//! and OPFS handle-locking behaviour, read-only views beside a writer.
//!
//! Runs in a dedicated worker (the only place OPFS sync access handles exist). There is no
//! "skip if unsupported" path: a missing API fails the test. Each test uses a fresh store name
//! and destroys its store at the end.
#![cfg(target_arch = "wasm32")]

use std::cell::Cell;
use std::rc::Rc;

use js_sys::{Function, Promise, Reflect};
use strata_engine::storage::conformance::{self, Backend};
use strata_engine::storage::memory::MemoryStorage;
use strata_engine::storage::{Commit, Storage, StorageError};
use strata_engine::{CreateOptions, Error, Store, VolumeId};
use strata_wasm::backend::{
    acquire_store_lock, destroy_backend, open_backend, open_backend_mode, AnyStorage, BackendKind,
    IdbStorage, JsClock, OpfsStorage,
};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_dedicated_worker);

const BLOCK: usize = 4096;
const BLOCKS: u64 = 96;

thread_local! {
    static COUNTER: Cell<u32> = const { Cell::new(0) };
}

/// A store name no other test (or earlier run) uses.
fn unique(prefix: &str) -> String {
    let n = COUNTER.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    format!(
        "conf-{prefix}-{}-{n}-{}",
        js_sys::Date::now() as u64,
        (js_sys::Math::random() * 1e9) as u64
    )
}

fn clock() -> Rc<dyn strata_engine::clock::Clock> {
    Rc::new(JsClock)
}

/// A block whose bytes depend on `seed` and position, so shifted, short or zeroed reads show.
fn block(seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(0x9E37_79B9);
    (0..BLOCK)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn blocks(seed: u32, n: usize) -> Vec<u8> {
    (0..n as u32).flat_map(|i| block(seed * 1000 + i)).collect()
}

async fn open(kind: BackendKind, name: &str) -> AnyStorage {
    let (storage, chosen) = open_backend(kind, name)
        .await
        .unwrap_or_else(|e| panic!("{kind}: open_backend({name}) failed: {e}"));
    assert_eq!(chosen, kind, "open_backend chose another backend");
    assert_eq!(storage.kind(), kind.as_str());
    storage
}

async fn destroy(kind: BackendKind, name: &str) {
    destroy_backend(kind, name)
        .await
        .unwrap_or_else(|e| panic!("{kind}: destroy {name} failed: {e}"));
}

async fn sleep_ms(ms: i32) {
    let promise = Promise::new(&mut |resolve: Function, _reject: Function| {
        let set_timeout: Function = Reflect::get(&js_sys::global(), &"setTimeout".into())
            .unwrap()
            .into();
        set_timeout
            .call2(&JsValue::UNDEFINED, &resolve, &JsValue::from(ms))
            .unwrap();
    });
    JsFuture::from(promise).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// The engine's storage conformance suite (`strata_engine::storage::conformance`, which the native
// backends run too), per browser backend.

/// One named browser store under test.
struct Browser {
    kind: BackendKind,
    name: String,
}

impl Backend for Browser {
    type Storage = AnyStorage;
    fn name(&self) -> String {
        self.kind.to_string()
    }
    async fn open(&mut self) -> AnyStorage {
        open(self.kind, &self.name).await
    }
    async fn destroy(&mut self) {
        destroy(self.kind, &self.name).await;
    }
    fn clock(&self) -> Rc<dyn strata_engine::clock::Clock> {
        clock()
    }
}

fn browser(kind: BackendKind, what: &str) -> Browser {
    Browser {
        kind,
        name: unique(what),
    }
}

/// `conformance::assert_same` with the backend's name.
async fn assert_same(kind: BackendKind, what: &str, storage: &AnyStorage, model: &MemoryStorage) {
    conformance::assert_same(kind.as_str(), what, storage, model).await;
}

/// `conformance::apply` with the backend's name.
async fn apply(kind: BackendKind, storage: &mut AnyStorage, model: &mut MemoryStorage, c: Commit) {
    conformance::apply(kind.as_str(), storage, model, c).await;
}

macro_rules! per_backend {
    ($module:ident, $kind:expr) => {
        mod $module {
            use super::*;

            #[wasm_bindgen_test]
            async fn engine_round_trip() {
                conformance::engine_round_trip(&mut browser($kind, "round-trip")).await;
            }

            #[wasm_bindgen_test]
            async fn engine_compact_merge_delete() {
                conformance::engine_compact_merge_delete(&mut browser($kind, "maintenance")).await;
            }

            #[wasm_bindgen_test]
            async fn engine_detects_corruption() {
                conformance::engine_detects_corruption(&mut browser($kind, "corrupt")).await;
            }

            #[wasm_bindgen_test]
            async fn backend_contract() {
                conformance::backend_contract(&mut browser($kind, "contract")).await;
            }
        }
    };
}

per_backend!(memory, BackendKind::Memory);
per_backend!(indexeddb, BackendKind::IndexedDb);
per_backend!(opfs, BackendKind::Opfs);

// ---------------------------------------------------------------------------------------------
// Backend-specific behaviour.

#[wasm_bindgen_test]
async fn auto_picks_opfs_in_a_dedicated_worker() {
    let name = unique("auto");
    let (storage, chosen) = open_backend(BackendKind::Auto, &name).await.unwrap();
    assert_eq!(chosen, BackendKind::Opfs);
    assert_eq!(storage.kind(), "opfs");
    drop(storage);
    destroy(BackendKind::Opfs, &name).await;
}

#[wasm_bindgen_test]
async fn indexed_db_aborted_commit_leaves_the_store_as_it_was() {
    let name = unique("idb-abort");
    let mut storage = IdbStorage::open(&name).await.unwrap();
    let mut model = MemoryStorage::new();
    let mut c = Commit::new(true);
    c.write("obj", 0, blocks(1, 40));
    model.commit(c.clone()).await.unwrap();
    storage.commit(c).await.unwrap();

    storage.abort_next_commit();
    let mut c = Commit::new(true);
    c.write("obj", 100, vec![0x55; 100_000]);
    c.truncate("obj", 1000);
    c.write("new", 0, vec![1; 10]);
    c.delete("obj");
    let err = storage
        .commit(c)
        .await
        .expect_err("the aborted commit succeeded");
    assert!(matches!(err, StorageError::Io { .. }), "{err}");

    let mut storage = AnyStorage::IndexedDb(storage);
    assert_same(
        BackendKind::IndexedDb,
        "after an aborted commit",
        &storage,
        &model,
    )
    .await;
    let mut c = Commit::new(true);
    c.write("obj", 5, vec![2; 5]);
    apply(BackendKind::IndexedDb, &mut storage, &mut model, c).await;
    drop(storage);
    let storage = AnyStorage::IndexedDb(IdbStorage::open(&name).await.unwrap());
    assert_same(
        BackendKind::IndexedDb,
        "reopened after an abort",
        &storage,
        &model,
    )
    .await;
    drop(storage);
    IdbStorage::destroy(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn opfs_second_handle_is_locked() {
    let name = unique("opfs-lock");
    let mut first = OpfsStorage::open(&name).await.unwrap();
    let mut c = Commit::new(true);
    c.write("held", 0, vec![1, 2, 3]);
    first.commit(c).await.unwrap();

    let second = OpfsStorage::open(&name).await.unwrap();
    let mut buf = [0u8; 3];
    match second.read_at("held", 0, &mut buf).await {
        Err(StorageError::Locked(_)) => {}
        other => panic!("a second handle on a held file gave {other:?}, not Locked"),
    }
    // Released by the first, the file opens.
    first.close();
    assert_eq!(second.read_at("held", 0, &mut buf).await.unwrap(), 3);
    assert_eq!(buf, [1, 2, 3]);
    drop(second);
    drop(first);
    OpfsStorage::destroy(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn opfs_destroy_while_open_is_locked_not_silent() {
    let name = unique("opfs-destroy");
    let mut storage = OpfsStorage::open(&name).await.unwrap();
    let mut c = Commit::new(true);
    c.write("f", 0, vec![1]);
    storage.commit(c).await.unwrap();
    match OpfsStorage::destroy(&name).await {
        Err(StorageError::Locked(_)) => {}
        other => panic!("destroying a store with open files gave {other:?}"),
    }
    drop(storage);
    OpfsStorage::destroy(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn second_store_lock_is_refused_until_released() {
    let name = unique("lock");
    let guard = acquire_store_lock(&name).await.expect("first lock");
    match acquire_store_lock(&name).await {
        Err(StorageError::Locked(_)) => {}
        other => panic!("a second lock gave {other:?}, not Locked"),
    }
    drop(guard);
    // The release reaches the lock manager asynchronously.
    let mut again = Err(StorageError::Locked(String::new()));
    for _ in 0..50 {
        again = acquire_store_lock(&name).await;
        if again.is_ok() {
            break;
        }
        sleep_ms(10).await;
    }
    let again = again.expect("the lock after release");
    // Another store's lock is independent.
    let other = acquire_store_lock(&unique("lock-other"))
        .await
        .expect("other lock");
    drop((again, other));
}

#[wasm_bindgen_test]
async fn released_and_waited_lock_is_granted_at_once() {
    // Regression: closing a store and opening it again at once got LOCKED, because the Web
    // Lock's release reaches the lock manager a moment later.
    let name = unique("lock-wait");
    for _ in 0..3 {
        let guard = acquire_store_lock(&name).await.expect("lock");
        guard.release_and_wait().await;
    }
}

/// A read-only view on `kind` of a store whose writer keeps its storage open.
async fn check_read_only_view(kind: BackendKind) {
    let name = unique(&format!("view-{kind}"));
    let (mut writer, _) = open_backend(kind, &name).await.unwrap();
    let mut c = Commit::new(true);
    c.write("seg", 0, block(1));
    writer.commit(c).await.unwrap();

    let (mut view, chosen) = open_backend_mode(kind, &name, true).await.unwrap();
    assert_eq!(chosen, kind);
    let mut buf = vec![0u8; BLOCK];
    assert_eq!(view.len("seg").await.unwrap(), Some(BLOCK as u64));
    assert_eq!(view.read_at("seg", 0, &mut buf).await.unwrap(), BLOCK);
    assert_eq!(buf, block(1), "{kind}: the view reads the writer's bytes");
    assert_eq!(view.len("missing").await.unwrap(), None);

    // Recovery's truncations are left to the writer; anything else is refused.
    let mut cut = Commit::new(true);
    cut.truncate("seg", 10);
    view.commit(cut).await.unwrap();
    let mut write = Commit::new(true);
    write.write("seg", 0, vec![9; 8]);
    assert!(
        matches!(view.commit(write).await, Err(StorageError::Io { .. })),
        "{kind}: a read-only view refuses writes"
    );
    // The writer is not disturbed (OPFS: no sync access handle was taken from it).
    let mut more = Commit::new(true);
    more.write("seg", BLOCK as u64, block(2));
    writer.commit(more).await.unwrap();
    assert_eq!(writer.len("seg").await.unwrap(), Some(2 * BLOCK as u64));
    assert_eq!(view.read_at("seg", 0, &mut buf).await.unwrap(), BLOCK);
    assert_eq!(buf, block(1), "{kind}: the view's truncation did nothing");
    drop(view);
    drop(writer);
    destroy_backend(kind, &name).await.unwrap();
}

#[wasm_bindgen_test]
async fn opfs_read_only_view_beside_a_writer() {
    check_read_only_view(BackendKind::Opfs).await;
}

#[wasm_bindgen_test]
async fn indexeddb_read_only_view_beside_a_writer() {
    check_read_only_view(BackendKind::IndexedDb).await;
}

/// Everything `source` sends from `base` (exclusive) to its newest snapshot.
async fn send_from(source: &Store<MemoryStorage>, base: Option<VolumeId>) -> Vec<u8> {
    let mut stream = Vec::new();
    let options = strata_engine::SendOptions {
        base,
        ..Default::default()
    };
    source
        .send(&options, &mut |chunk| {
            stream.extend_from_slice(chunk);
            Ok(())
        })
        .await
        .unwrap();
    stream
}

/// A read-only engine view on `kind` beside a writer that is mid-receive (its partial volume's
/// segment is on storage, no journal names it yet): it opens, reads what the writer's volumes
/// read, and writes nothing (the partial segment stays for the writer).
async fn check_read_only_store_beside_a_receive(kind: BackendKind) {
    let mut source = Store::create(MemoryStorage::new(), CreateOptions::new(BLOCKS), clock())
        .await
        .unwrap();
    source.write(0, &blocks(5, 8)).await.unwrap();
    let first = source.snapshot(None).await.unwrap();
    let full = send_from(&source, None).await;
    // More than the receiver's write buffer, so that part of the volume reaches storage
    // before the volume is complete.
    for round in 0..24 {
        source.write(8, &blocks(100 + round, 64)).await.unwrap();
    }
    source.write(8, &blocks(6, 64)).await.unwrap();
    source.snapshot(None).await.unwrap();
    let incremental = send_from(&source, Some(first)).await;

    let name = unique(&format!("view-receive-{kind}"));
    let mut receiver = strata_engine::StreamReceiver::new_store(open(kind, &name).await, clock());
    receiver.push(&full).await.unwrap();
    let (writer, _) = receiver.finish().await.unwrap();
    let before = writer.read(0, BLOCKS).await.unwrap();
    assert_eq!(before[..8 * BLOCK], blocks(5, 8)[..], "{kind}");
    let mut receiver = strata_engine::StreamReceiver::into_store(writer);
    // Push until the new volume's segment is on storage, before any journal names it: the
    // state a writer's open would take for a crash and clean up.
    let mut pushed = 0;
    let (view, listed) = loop {
        assert!(
            pushed + 1 < incremental.len(),
            "{kind}: no partial segment appeared"
        );
        let end = (pushed + 4096).min(incremental.len() - 1);
        receiver.push(&incremental[pushed..end]).await.unwrap();
        pushed = end;
        let (storage, _) = open_backend_mode(kind, &name, true).await.unwrap();
        let listed = storage.list().await.unwrap();
        let view = Store::open_read_only(storage, clock()).await.expect("view");
        let partial = listed.iter().any(|n| {
            strata_engine::format::parse_segment_object(n)
                .is_some_and(|(volume, _)| view.volume(VolumeId(volume)).is_err())
        });
        if partial {
            break (view, listed);
        }
    };
    let mut view = view;
    assert_eq!(view.read(0, BLOCKS).await.unwrap(), before, "{kind}");
    let mut now = view.storage().list().await.unwrap();
    now.sort();
    let mut listed = listed;
    listed.sort();
    assert_eq!(now, listed, "{kind}: the view changed nothing");
    assert!(matches!(
        view.write(0, &block(1)).await,
        Err(Error::ReadOnly)
    ));
    drop(view);
    // A writer's open would take the partial segment for a crash's leftover and delete it,
    // which a read-only backend refuses.
    let (storage, _) = open_backend_mode(kind, &name, true).await.unwrap();
    assert!(Store::open(storage, clock()).await.is_err(), "{kind}");

    receiver.push(&incremental[pushed..]).await.unwrap();
    let (store, _) = receiver.finish().await.expect("the receive completes");
    let volumes = store.volumes();
    let newest = volumes.iter().rev().find(|v| v.id != store.head()).unwrap();
    assert_eq!(
        store.read_at(newest.id, 8, 64).await.unwrap(),
        blocks(6, 64),
        "{kind}"
    );
    drop(store);
    destroy_backend(kind, &name).await.unwrap();
}

#[wasm_bindgen_test]
async fn opfs_read_only_store_beside_a_receive() {
    check_read_only_store_beside_a_receive(BackendKind::Opfs).await;
}

#[wasm_bindgen_test]
async fn indexeddb_read_only_store_beside_a_receive() {
    check_read_only_store_beside_a_receive(BackendKind::IndexedDb).await;
}

#[wasm_bindgen_test]
async fn read_only_open_on_the_memory_backend_is_refused() {
    let options = js_sys::Object::new();
    Reflect::set(&options, &"name".into(), &unique("view-memory").into()).unwrap();
    Reflect::set(&options, &"backend".into(), &"memory".into()).unwrap();
    Reflect::set(&options, &"readOnly".into(), &true.into()).unwrap();
    let error = strata_wasm::StrataStore::open(options.into())
        .await
        .err()
        .expect("refused");
    assert_eq!(error.code(), "INVALID_ARGUMENT");
}

/// Opens a new memory store of 16 blocks with `automaticPolicies` as given (absent: default),
/// assigns "more than 1 write since the last snapshot: snapshot", writes 3 blocks and returns
/// how many snapshots the store then has.
async fn snapshots_after_writes(automatic: Option<bool>) -> u32 {
    let name = unique("automatic-policies");
    let options = js_sys::Object::new();
    Reflect::set(&options, &"name".into(), &name.clone().into()).unwrap();
    Reflect::set(&options, &"backend".into(), &"memory".into()).unwrap();
    Reflect::set(&options, &"blocks".into(), &16.into()).unwrap();
    if let Some(automatic) = automatic {
        Reflect::set(&options, &"automaticPolicies".into(), &automatic.into()).unwrap();
    }
    let store = strata_wasm::StrataStore::open(options.into())
        .await
        .unwrap();
    let policy = r#"{ "rules": [ { "kind": "threshold", "status": "writes_since_snapshot",
        "above": 1, "action": "snapshot" } ] }"#;
    store.set_policy(policy.into()).await.unwrap();
    for addr in 0..3 {
        store.write(addr as f64, block(addr)).await.unwrap();
    }
    let snapshots = store
        .volumes()
        .await
        .unwrap()
        .iter()
        .filter(|v| Reflect::get(v, &"kind".into()).unwrap() == JsValue::from_str("snapshot"))
        .count() as u32;
    store.close().await.unwrap();
    destroy_backend(BackendKind::Memory, &name).await.unwrap();
    snapshots
}

#[wasm_bindgen_test]
async fn automatic_policies_open_option() {
    // By default the store acts on a crossed threshold by itself; with automaticPolicies: false
    // it leaves every decision to runPolicies / event / the worker's timer.
    assert!(snapshots_after_writes(None).await >= 1);
    assert_eq!(snapshots_after_writes(Some(false)).await, 0);
}
