//! Smoke tests of the two browser storage media the engine will sit on: OPFS sync access handles
//! and IndexedDB.
//!
//! They run in a dedicated worker because `FileSystemSyncAccessHandle` exists nowhere else, and
//! the engine itself will live in such a worker. A missing or broken API fails the test: there is
//! deliberately no "skip if unsupported" path, because a silent skip would hide exactly the
//! breakage these tests exist to catch.
#![cfg(target_arch = "wasm32")]

use js_sys::{Function, Promise, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::{
    Event, FileSystemDirectoryHandle, FileSystemFileHandle, FileSystemGetFileOptions,
    FileSystemReadWriteOptions, FileSystemSyncAccessHandle, IdbDatabase, IdbFactory,
    IdbOpenDbRequest, IdbRequest, IdbTransaction, IdbTransactionMode, IdbVersionChangeEvent,
    WorkerGlobalScope,
};

wasm_bindgen_test_configure!(run_in_dedicated_worker);

const BLOCK_BYTES: usize = 4096;

/// A block whose bytes depend on their position, so a short, shifted or zeroed read is caught.
fn patterned_block() -> Vec<u8> {
    (0..BLOCK_BYTES).map(|i| (i * 31 % 251) as u8).collect()
}

fn worker_scope() -> Result<WorkerGlobalScope, JsValue> {
    js_sys::global()
        .dyn_into::<WorkerGlobalScope>()
        .map_err(|_| JsValue::from_str("these tests must run in a dedicated worker"))
}

// ---------------------------------------------------------------------------------------------
// OPFS

#[wasm_bindgen_test]
async fn opfs_sync_access_handle_round_trips_a_flushed_block() -> Result<(), JsValue> {
    let file_name = "strata-smoke-opfs.bin";
    let root: FileSystemDirectoryHandle =
        JsFuture::from(worker_scope()?.navigator().storage().get_directory())
            .await?
            .dyn_into()?;

    let create = FileSystemGetFileOptions::new();
    create.set_create(true);
    let file: FileSystemFileHandle =
        JsFuture::from(root.get_file_handle_with_options(file_name, &create))
            .await?
            .dyn_into()?;
    let handle: FileSystemSyncAccessHandle = JsFuture::from(file.create_sync_access_handle())
        .await?
        .dyn_into()?;

    // Only one sync access handle may be open per file, so close it whatever happened before
    // reporting, or the next run would fail with NoModificationAllowedError.
    let written = patterned_block();
    let outcome = write_flush_read(&handle, &written);
    handle.close();
    JsFuture::from(root.remove_entry(file_name)).await?;

    let (size_bytes, read_back) = outcome?;
    assert_eq!(size_bytes, BLOCK_BYTES as f64, "file size after one block");
    assert_eq!(
        read_back, written,
        "bytes read back differ from bytes written"
    );
    Ok(())
}

/// Writes `block` at offset 0 of an emptied file, flushes, and reads the whole block back.
/// Returns the file size and the bytes read.
fn write_flush_read(
    handle: &FileSystemSyncAccessHandle,
    block: &[u8],
) -> Result<(f64, Vec<u8>), JsValue> {
    // An earlier run that failed half-way may have left the file behind: start from empty.
    handle.truncate_with_u32(0)?;

    let at_start = FileSystemReadWriteOptions::new();
    at_start.set_at(0.0);
    let written_bytes = handle.write_with_u8_array_and_options(block, &at_start)?;
    if written_bytes != block.len() as f64 {
        return Err(JsValue::from_str(&format!(
            "short write: {written_bytes} of {} bytes",
            block.len()
        )));
    }
    handle.flush()?;

    let size_bytes = handle.get_size()?;
    let mut read_back = vec![0u8; block.len()];
    let read_bytes = handle.read_with_u8_array_and_options(&mut read_back, &at_start)?;
    if read_bytes != block.len() as f64 {
        return Err(JsValue::from_str(&format!(
            "short read: {read_bytes} of {} bytes",
            block.len()
        )));
    }
    Ok((size_bytes, read_back))
}

// ---------------------------------------------------------------------------------------------
// IndexedDB

const DATABASE_NAME: &str = "strata-smoke-idb";
const STORE_NAME: &str = "blocks";

#[wasm_bindgen_test]
async fn indexed_db_put_is_committed_and_read_back_in_a_new_transaction() -> Result<(), JsValue> {
    let factory: IdbFactory = worker_scope()?
        .indexed_db()?
        .ok_or_else(|| JsValue::from_str("IndexedDB is not available in this worker"))?;

    // Start clean in case an earlier failed run left the database behind.
    delete_database(&factory).await?;
    let database = open_database(&factory).await?;

    let outcome = put_then_get(&database).await;
    database.close();
    delete_database(&factory).await?;

    let (written, read_back) = outcome?;
    assert_eq!(read_back, written, "value read back differs from value put");
    Ok(())
}

/// Opens the test database at version 1, creating its one object store.
async fn open_database(factory: &IdbFactory) -> Result<IdbDatabase, JsValue> {
    let request = factory.open_with_u32(DATABASE_NAME, 1)?;
    // Returning an error from this handler throws inside `upgradeneeded`, which aborts the
    // version change and makes the open request fail: the error surfaces in `await_request`.
    let on_upgrade_needed = Closure::<dyn FnMut(IdbVersionChangeEvent) -> Result<(), JsValue>>::new(
        |event: IdbVersionChangeEvent| {
            let request: IdbOpenDbRequest = event
                .target()
                .ok_or_else(|| JsValue::from_str("upgradeneeded without a target"))?
                .dyn_into()?;
            let database: IdbDatabase = request.result()?.dyn_into()?;
            database.create_object_store(STORE_NAME)?;
            Ok(())
        },
    );
    request.set_onupgradeneeded(Some(on_upgrade_needed.as_ref().unchecked_ref()));
    let database = await_request(&request).await?.dyn_into()?;
    // Keep the closure alive until the open request has settled.
    drop(on_upgrade_needed);
    Ok(database)
}

async fn delete_database(factory: &IdbFactory) -> Result<(), JsValue> {
    let request = factory.delete_database(DATABASE_NAME)?;
    await_request(&request).await.map(drop)
}

/// Puts one block in a read-write transaction, waits for `complete` (the only signal that the
/// write is committed), then reads it back in a fresh read-only transaction.
async fn put_then_get(database: &IdbDatabase) -> Result<(Vec<u8>, Vec<u8>), JsValue> {
    let written = patterned_block();
    let key = JsValue::from_str("block-0");

    let transaction =
        database.transaction_with_str_and_mode(STORE_NAME, IdbTransactionMode::Readwrite)?;
    transaction
        .object_store(STORE_NAME)?
        .put_with_key(&Uint8Array::from(written.as_slice()), &key)?;
    await_transaction(&transaction).await?;

    let transaction = database.transaction_with_str(STORE_NAME)?;
    let value = await_request(&transaction.object_store(STORE_NAME)?.get(&key)?).await?;
    let read_back = value
        .dyn_into::<Uint8Array>()
        .map_err(|value| JsValue::from_str(&format!("expected a Uint8Array, got {value:?}")))?
        .to_vec();
    Ok((written, read_back))
}

/// Waits for an IndexedDB request to succeed and returns its result, or its error.
async fn await_request(request: &IdbRequest) -> Result<JsValue, JsValue> {
    // The promise's own resolve and reject functions serve directly as the event handlers.
    // A `blocked` event on an open or delete request is not a failure: it only says that the
    // request waits for other connections to close (`IdbDatabase::close` waits for the
    // connection's transactions to finish). A real hang is caught by the runner's timeout.
    let settled = Promise::new(&mut |resolve: Function, reject: Function| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
    });
    let outcome = JsFuture::from(settled).await;
    request.set_onsuccess(None);
    request.set_onerror(None);
    match outcome {
        Ok(_) => request.result(),
        Err(event) => Err(request
            .error()
            .ok()
            .flatten()
            .map_or_else(|| unexplained_failure(&event), JsValue::from)),
    }
}

/// Waits for a transaction's `complete` event; `error` or `abort` fail with the transaction's
/// error.
async fn await_transaction(transaction: &IdbTransaction) -> Result<(), JsValue> {
    let settled = Promise::new(&mut |resolve: Function, reject: Function| {
        transaction.set_oncomplete(Some(&resolve));
        transaction.set_onerror(Some(&reject));
        transaction.set_onabort(Some(&reject));
    });
    JsFuture::from(settled).await.map(drop).map_err(|event| {
        transaction
            .error()
            .map_or_else(|| unexplained_failure(&event), JsValue::from)
    })
}

/// An error for a failure event that came without a `DOMException` (an `abort` after an
/// explicit `abort()`, say), naming the event so the test output says what happened.
fn unexplained_failure(event: &JsValue) -> JsValue {
    let event_type = event
        .dyn_ref::<Event>()
        .map_or_else(|| format!("{event:?}"), Event::type_);
    JsValue::from_str(&format!(
        "IndexedDB failed with a `{event_type}` event and no error"
    ))
}
