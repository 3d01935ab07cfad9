//! What the buttons do: async calls to the store through [`crate::client`], reported back to the
//! reducer as [`Action`]s. Components never call the client themselves; they get callbacks from
//! the app, which spawns these.

use std::future::Future;
use std::rc::Rc;

use gloo_file::futures::read_as_bytes;
use gloo_file::{Blob, ObjectUrl};
use gloo_storage::{LocalStorage, Storage};
use yew::UseReducerDispatcher;

use crate::client::{
    self, Backend, Canceller, Client, ClientError, ClientResult, CompactReport, LongOp,
};
use crate::components::policy_panel::PolicyAction;
use crate::components::volume_actions::VolumeAction;
use crate::components::write_form::WriteRequest;
use crate::scheme::{select_layers, Change, Scheme, SCHEME_BUCKETS, SCHEME_LAYERS_MAX};
use crate::state::{
    Action, BlockDetail, BlockMap, Busy, DashboardState, KnownStore, LogCursor, MirrorView, Notice,
    OpenStore, PolicyData, Transition,
};

pub type Dispatch = UseReducerDispatcher<DashboardState>;

/// Cells of the block map at most: small volumes (and zoomed regions) get one cell per block.
pub const MAP_CELLS_MAX: u64 = 4096;
/// Log entries read per page.
pub const LOG_PAGE_ENTRIES: u64 = 500;
const KNOWN_STORES_KEY: &str = "strata-dashboard.stores";

/// Whether this page may use localStorage. gloo's [`LocalStorage`] throws when it may not (the
/// browser blocks site data), and the dashboard then only goes without the list of stores.
fn local_storage_usable() -> bool {
    web_sys::window().is_some_and(|w| matches!(w.local_storage(), Ok(Some(_))))
}

/// The stores this browser opened before (JSON under [`KNOWN_STORES_KEY`]).
pub fn load_known() -> Vec<KnownStore> {
    if !local_storage_usable() {
        return Vec::new();
    }
    LocalStorage::get(KNOWN_STORES_KEY).unwrap_or_default()
}

fn save_known(known: &[KnownStore]) {
    if local_storage_usable() {
        // A full or refused localStorage only loses the list, not the stores.
        let _ = LocalStorage::set(KNOWN_STORES_KEY, known);
    }
}

fn remember(dispatch: &Dispatch, name: &str, backend: Backend) {
    let mut known = load_known();
    if !known.iter().any(|k| k.name == name && k.backend == backend) {
        known.push(KnownStore {
            name: name.to_string(),
            backend,
        });
        save_known(&known);
    }
    dispatch.dispatch(Action::Known(known));
}

fn forget(dispatch: &Dispatch, name: &str, backend: Backend) {
    let mut known = load_known();
    known.retain(|k| !(k.name == name && k.backend == backend));
    save_known(&known);
    dispatch.dispatch(Action::Known(known));
}

fn fail(dispatch: &Dispatch, error: ClientError) {
    dispatch.dispatch(Action::Notice(Some(Notice::Error(error))));
}

fn info(dispatch: &Dispatch, text: impl Into<String>) {
    dispatch.dispatch(Action::Notice(Some(Notice::Info(text.into()))));
}

/// Reports an outcome. A success is reported after the views are refreshed, so that what the
/// message says is already on screen; a failure at once (after a cancellation the worker may
/// still be busy finishing the operation, and the refresh waits for it).
async fn report(
    dispatch: &Dispatch,
    client: &Client,
    selected: Option<u64>,
    outcome: ClientResult<String>,
) {
    match outcome {
        Ok(text) => {
            let refreshed = refresh(dispatch, client, selected, None).await;
            dispatch.dispatch(Action::Busy(None));
            match refreshed {
                Ok(()) => info(dispatch, text),
                Err(error) => fail(dispatch, error),
            }
        }
        Err(error) => {
            dispatch.dispatch(Action::Busy(None));
            fail(dispatch, error.clone());
            // Keep the failure on screen: a failed refresh after it only matters if it is new.
            if let Err(refresh_error) = refresh(dispatch, client, selected, None).await {
                if refresh_error != error {
                    fail(dispatch, refresh_error);
                }
            }
        }
    }
}

/// Runs `work` with a busy indicator labelled `label`; reports its outcome (the success text, or
/// the error with its code) and refreshes the views.
pub fn run<F>(dispatch: Dispatch, client: Client, selected: Option<u64>, label: &str, work: F)
where
    F: Future<Output = ClientResult<String>> + 'static,
{
    dispatch.dispatch(Action::Busy(Some(Busy {
        label: label.to_string(),
        done_bytes: 0.0,
        total_bytes: 0.0,
        canceller: None,
    })));
    yew::platform::spawn_local(async move {
        // Every change is made durable before it is reported: a reload keeps what was shown.
        let outcome = match work.await {
            Ok(text) => client.sync().await.map(|()| text),
            Err(error) => Err(error),
        };
        report(&dispatch, &client, selected, outcome).await;
    });
}

/// Like [`run`], for an operation with progress and a Cancel button: `work` gets the
/// [`LongOp`] to hand to the client.
pub fn run_long<F, Fut>(
    dispatch: Dispatch,
    client: Client,
    selected: Option<u64>,
    label: &str,
    work: F,
) where
    F: FnOnce(LongOp) -> Fut + 'static,
    Fut: Future<Output = ClientResult<String>> + 'static,
{
    let canceller = match Canceller::new() {
        Ok(c) => c,
        Err(error) => return fail(&dispatch, error),
    };
    dispatch.dispatch(Action::Busy(Some(Busy {
        label: label.to_string(),
        done_bytes: 0.0,
        total_bytes: 0.0,
        canceller: Some(canceller.clone()),
    })));
    let progress_dispatch = dispatch.clone();
    let op = LongOp {
        on_progress: Rc::new(move |done_bytes, total_bytes| {
            progress_dispatch.dispatch(Action::Progress {
                done_bytes,
                total_bytes,
            })
        }),
        canceller,
    };
    yew::platform::spawn_local(async move {
        let outcome = match work(op).await {
            Ok(text) => client.sync().await.map(|()| text),
            Err(error) => Err(error),
        };
        report(&dispatch, &client, selected, outcome).await;
    });
}

/// The block map of `volume`: one cell per block when that is at most [`MAP_CELLS_MAX`] cells
/// (whole volume or zoomed range), else buckets over the whole volume.
pub async fn load_map(
    client: &Client,
    volume: u64,
    block_count: u64,
    range: Option<(u64, u64)>,
) -> ClientResult<BlockMap> {
    let (first, blocks) = range.unwrap_or((0, block_count));
    let cells = if blocks <= MAP_CELLS_MAX {
        client
            .locate(volume, first, blocks)
            .await?
            .into_iter()
            .map(Into::into)
            .collect()
    } else {
        client
            .block_map(volume, MAP_CELLS_MAX)
            .await?
            .into_iter()
            .map(Into::into)
            .collect()
    };
    Ok(BlockMap {
        volume,
        range: range.filter(|(_, blocks)| *blocks <= MAP_CELLS_MAX),
        cells,
    })
}

/// Reads the store's info, volumes, space and block map again.
pub async fn refresh(
    dispatch: &Dispatch,
    client: &Client,
    selected: Option<u64>,
    range: Option<(u64, u64)>,
) -> ClientResult<()> {
    let info = client.info().await?;
    let volumes = client.volumes().await?;
    let space = client.space().await?;
    let volume = selected
        .filter(|s| volumes.iter().any(|v| v.id.0 == *s))
        .unwrap_or(info.head.0);
    let map = load_map(client, volume, info.block_count, range).await?;
    dispatch.dispatch(Action::Refreshed {
        info,
        volumes,
        space,
        map,
    });
    Ok(())
}

/// Opens (or creates) a store, closing the one open before.
pub fn open_store(
    dispatch: Dispatch,
    previous: Option<Client>,
    name: String,
    backend: Backend,
    geometry: Option<(u64, u64)>,
) {
    dispatch.dispatch(Action::Busy(Some(Busy {
        label: format!("Opening {name}"),
        done_bytes: 0.0,
        total_bytes: 0.0,
        canceller: None,
    })));
    yew::platform::spawn_local(async move {
        let outcome = async {
            if let Some(previous) = previous {
                previous.close().await?;
                dispatch.dispatch(Action::Closed);
            }
            let client = client::open(&name, backend, geometry).await?;
            adopt(&dispatch, client).await
        }
        .await;
        dispatch.dispatch(Action::Busy(None));
        match outcome {
            Ok(()) => {
                remember(&dispatch, &name, backend);
                info(
                    &dispatch,
                    format!("Opened store {name} ({})", backend.as_str()),
                );
            }
            Err(error) => fail(&dispatch, error),
        }
    });
}

/// Makes an open client the dashboard's store.
async fn adopt(dispatch: &Dispatch, client: Client) -> ClientResult<()> {
    let info = client.info().await?;
    let volumes = client.volumes().await?;
    let space = client.space().await?;
    let map = load_map(&client, info.head.0, info.block_count, None).await?;
    dispatch.dispatch(Action::Opened(OpenStore {
        client,
        info,
        volumes,
        space,
    }));
    dispatch.dispatch(Action::Map(map));
    Ok(())
}

/// Closes the open store.
pub fn close_store(dispatch: Dispatch, client: Client) {
    yew::platform::spawn_local(async move {
        match client.close().await {
            Ok(()) => {
                dispatch.dispatch(Action::Closed);
                info(&dispatch, format!("Closed store {}", client.name));
            }
            Err(error) => fail(&dispatch, error),
        }
    });
}

/// Deletes a store (closing it first if it is the open one).
pub fn delete_store(dispatch: Dispatch, open: Option<Client>, name: String, backend: Backend) {
    yew::platform::spawn_local(async move {
        let outcome = async {
            if let Some(client) = open.filter(|c| c.name == name && c.backend == backend) {
                client.close().await?;
                dispatch.dispatch(Action::Closed);
            }
            client::destroy(&name, backend).await
        }
        .await;
        match outcome {
            Ok(()) => {
                forget(&dispatch, &name, backend);
                info(&dispatch, format!("Deleted store {name}"));
            }
            Err(error) => fail(&dispatch, error),
        }
    });
}

/// Creates a store from a raw image file (its baseline) and opens it.
pub fn import_store(
    dispatch: Dispatch,
    previous: Option<Client>,
    name: String,
    backend: Backend,
    block_size: u64,
    file: web_sys::File,
) {
    let busy = format!("Importing {}", file.name());
    let done = format!("Imported {} as the baseline of store {name}", file.name());
    let store_name = name.clone();
    replace_store_from_file(dispatch, previous, name, backend, &file, busy, done, {
        let file = file.clone();
        async move { client::import_image(&store_name, backend, block_size, &file).await }
    });
}

/// Creates a store as a copy of another, from a full copy stream file, and opens it.
pub fn import_stream_store(
    dispatch: Dispatch,
    previous: Option<Client>,
    name: String,
    backend: Backend,
    file: web_sys::File,
) {
    let busy = format!("Copying from {}", file.name());
    let done = format!("Created store {name} as a copy from {}", file.name());
    let store_name = name.clone();
    replace_store_from_file(dispatch, previous, name, backend, &file, busy, done, {
        let file = file.clone();
        async move { client::import_stream(&store_name, backend, &file).await }
    });
}

/// Closes `previous`, then creates and opens a store with `create` (reading `file`), showing
/// progress as `busy` and `done` once it is open.
#[allow(clippy::too_many_arguments)]
fn replace_store_from_file(
    dispatch: Dispatch,
    previous: Option<Client>,
    name: String,
    backend: Backend,
    file: &web_sys::File,
    busy: String,
    done: String,
    create: impl Future<Output = ClientResult<Client>> + 'static,
) {
    dispatch.dispatch(Action::Busy(Some(Busy {
        label: busy,
        done_bytes: 0.0,
        total_bytes: file.size(),
        canceller: None,
    })));
    yew::platform::spawn_local(async move {
        let outcome = async {
            if let Some(previous) = previous {
                previous.close().await?;
                dispatch.dispatch(Action::Closed);
            }
            adopt(&dispatch, create.await?).await
        }
        .await;
        dispatch.dispatch(Action::Busy(None));
        match outcome {
            Ok(()) => {
                remember(&dispatch, &name, backend);
                info(&dispatch, done);
            }
            Err(error) => fail(&dispatch, error),
        }
    });
}

/// Shows `volume` in the map (and zooms to `range`).
pub fn show_map(
    dispatch: Dispatch,
    client: Client,
    volume: u64,
    block_count: u64,
    range: Option<(u64, u64)>,
) {
    yew::platform::spawn_local(async move {
        match load_map(&client, volume, block_count, range).await {
            Ok(map) => dispatch.dispatch(Action::Map(map)),
            Err(error) => fail(&dispatch, error),
        }
    });
}

/// Opens block `addr` of `volume`: its bytes and where they come from.
pub fn open_block(dispatch: Dispatch, client: Client, volume: u64, addr: u64) {
    yew::platform::spawn_local(async move {
        let outcome = async {
            let data = client.read_at(volume, addr, 1).await?;
            let provenance = client.locate(volume, addr, 1).await?.into_iter().next();
            Ok::<_, ClientError>(BlockDetail {
                volume,
                addr,
                data,
                provenance,
            })
        }
        .await;
        match outcome {
            Ok(detail) => dispatch.dispatch(Action::Detail(Some(detail))),
            Err(error) => fail(&dispatch, error),
        }
    });
}

/// Reads the next page of the log after `after_seq` (`None`: from the start, replacing).
pub fn load_log(dispatch: Dispatch, client: Client, after_seq: Option<u64>) {
    yew::platform::spawn_local(async move {
        let from = after_seq.map_or(0, |s| s + 1);
        match client.log_page(from, LOG_PAGE_ENTRIES).await {
            Ok(entries) => {
                let end = (entries.len() as u64) < LOG_PAGE_ENTRIES;
                dispatch.dispatch(Action::LogPage {
                    entries,
                    reset: after_seq.is_none(),
                    end,
                })
            }
            Err(error) => fail(&dispatch, error),
        }
    });
}

/// Reads the policy, assignments, a dry run and the audit trail.
pub async fn load_policy(dispatch: &Dispatch, client: &Client) -> ClientResult<()> {
    let policy_json = client.policy().await?;
    let assignments = client.assignments().await?;
    let decisions = client.dry_run(None).await?;
    let audit = client.audit().await?;
    dispatch.dispatch(Action::Policy(crate::state::PolicyData {
        policy_json,
        assignments,
        decisions,
        audit,
        simulation: Vec::new(),
    }));
    Ok(())
}

/// Offers `blob` as a download named `file_name`.
pub fn download(blob: &web_sys::Blob, file_name: &str) -> ClientResult<()> {
    use wasm_bindgen::JsCast;
    let url = ObjectUrl::from(blob.clone());
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| ClientError::dashboard("no document"))?;
    let anchor: web_sys::HtmlAnchorElement = document
        .create_element("a")
        .map_err(|_| ClientError::dashboard("cannot create a link"))?
        .unchecked_into();
    anchor.set_href(&url);
    anchor.set_download(file_name);
    anchor.click();
    // The URL is not revoked at once: the download may still be reading it. An `ObjectUrl`
    // revokes its URL when dropped, so it is never dropped.
    std::mem::forget(url);
    Ok(())
}

/// The bytes of a picked file.
pub async fn file_bytes(file: &web_sys::File) -> ClientResult<Vec<u8>> {
    read_as_bytes(&Blob::from(file.clone()))
        .await
        .map_err(|_| ClientError::dashboard(format!("cannot read {}", file.name())))
}

/// The writes a [`WriteRequest`] stands for, cut into whole blocks of `block_size`.
pub fn writes_for(
    request: &WriteRequest,
    block_size: u64,
    block_count: u64,
) -> Result<Vec<(u64, Vec<u8>)>, String> {
    let size = block_size as usize;
    let padded = |mut bytes: Vec<u8>| {
        let blocks = bytes.len().div_ceil(size).max(1);
        bytes.resize(blocks * size, 0);
        bytes
    };
    Ok(match request {
        WriteRequest::Text { addr, text } => vec![(*addr, padded(text.as_bytes().to_vec()))],
        WriteRequest::Hex { addr, hex } => vec![(*addr, padded(crate::format::parse_hex(hex)?))],
        WriteRequest::Pattern { addr, byte, blocks } => {
            let len = usize::try_from(*blocks)
                .ok()
                .and_then(|b| b.checked_mul(size))
                .filter(|len| *len <= 64 << 20)
                .ok_or("at most 64 MiB per write")?;
            vec![(*addr, vec![*byte; len])]
        }
        WriteRequest::RandomBurst { writes } => {
            if *writes > 10_000 {
                return Err("at most 10000 writes per burst".into());
            }
            let random = || js_sys::Math::random();
            (0..*writes)
                .map(|_| {
                    let addr = (random() * block_count as f64) as u64 % block_count.max(1);
                    let data = (0..size).map(|_| (random() * 256.0) as u8).collect();
                    (addr, data)
                })
                .collect()
        }
    })
}

/// Carries out a [`WriteRequest`].
pub fn write(dispatch: Dispatch, store: &OpenStore, selected: Option<u64>, request: WriteRequest) {
    let writes = match writes_for(
        &request,
        u64::from(store.info.block_size),
        store.info.block_count,
    ) {
        Ok(writes) => writes,
        Err(message) => return fail(&dispatch, ClientError::dashboard(message)),
    };
    let client = store.client.clone();
    run(dispatch, client.clone(), selected, "Writing", async move {
        let first = if writes.len() == 1 {
            client.write(writes[0].0, &writes[0].1).await?
        } else {
            client.write_batch(&writes).await?
        };
        Ok(format!(
            "Appended {} entr{} to the head from sequence {first}",
            writes.len(),
            if writes.len() == 1 { "y" } else { "ies" }
        ))
    });
}

/// Carries out a [`VolumeAction`].
pub fn volume_action(
    dispatch: Dispatch,
    store: &OpenStore,
    selected: Option<u64>,
    action: VolumeAction,
) {
    let client = store.client.clone();
    let c = client.clone();
    match action {
        VolumeAction::Snapshot { label } => run(dispatch, c, selected, "Snapshot", async move {
            let volume = client.snapshot(&label).await?;
            Ok(format!("Sealed the head as snapshot {volume}"))
        }),
        VolumeAction::Compact(volume) => {
            run_long(dispatch, c, selected, "Compacting", move |op| async move {
                let r = client.compact(volume, op).await?;
                Ok(compacted_text(volume, &r))
            })
        }
        VolumeAction::Merge(volume) => {
            run_long(dispatch, c, selected, "Merging", move |op| async move {
                let merged = client.merge(volume, op).await?;
                Ok(merged_text(merged))
            })
        }
        VolumeAction::Delete(volume) => run(dispatch, c, selected, "Deleting", async move {
            let r = client.delete(volume).await?;
            Ok(deleted_text(volume, &r))
        }),
        VolumeAction::Rollback { volume, label } => {
            run(dispatch, c, selected, "Rolling back", async move {
                let label = if label.is_empty() {
                    "before-rollback".to_string()
                } else {
                    label
                };
                let head = client.rollback(volume, &label).await?;
                Ok(format!("Rolled back to volume {volume}: new head {head}"))
            })
        }
        VolumeAction::Diff(a, b) => {
            let d = dispatch.clone();
            run(dispatch, c, selected, "Comparing", async move {
                let extents = client.diff(a, b).await?;
                let blocks: u64 = extents.iter().map(|e| e.blocks).sum();
                d.dispatch(Action::Diff(Some((a, b, extents))));
                Ok(format!("Volumes {a} and {b} differ in {blocks} blocks"))
            })
        }
        VolumeAction::Export(volume) => {
            let name = format!("{}-volume-{volume}.img", client.name);
            run_long(dispatch, c, selected, "Exporting", move |op| async move {
                let blob = client.export_image(volume, op).await?;
                download(&blob, &name)?;
                Ok(format!(
                    "Exported volume {volume} as {name} ({} bytes)",
                    blob.size()
                ))
            })
        }
        VolumeAction::Send => {
            let name = format!("{}.stream", client.name);
            run(dispatch, c, selected, "Sending", async move {
                let (blob, report) = client.send().await?;
                download(&blob, &name)?;
                Ok(format!(
                    "Sent {} volume(s), {} entries as {name} ({} bytes)",
                    report.volumes, report.entries, report.stream_bytes
                ))
            })
        }
        VolumeAction::Receive(file) => run(dispatch, c, selected, "Receiving", async move {
            let bytes = file_bytes(&file).await?;
            let report = client.receive(&bytes).await?;
            Ok(format!(
                "Received {} volume(s), {} entries from {}",
                report.volumes,
                report.entries,
                file.name()
            ))
        }),
    }
}

/// Carries out a [`PolicyAction`], then reloads the policy view.
pub fn policy_action(
    dispatch: Dispatch,
    client: Client,
    selected: Option<u64>,
    action: PolicyAction,
) {
    let d = dispatch.clone();
    let c = client.clone();
    run(dispatch, client, selected, "Policies", async move {
        let text = match action {
            PolicyAction::Load => "Policy loaded".to_string(),
            PolicyAction::SetPolicy(json) => {
                c.set_policy(&json).await?;
                "Policy valid and saved".into()
            }
            PolicyAction::SetAssignments(json) => {
                c.set_assignments(&json).await?;
                "Assignments saved".into()
            }
            PolicyAction::DryRun(event) => {
                let decisions = c.dry_run(event.as_deref()).await?;
                let mut data = policy_snapshot(&c).await?;
                data.decisions = decisions;
                let n = data.decisions.len();
                d.dispatch(Action::Policy(data));
                return Ok(format!("Dry run: {n} decision(s)"));
            }
            PolicyAction::Simulate {
                hours,
                step_minutes,
            } => {
                let timeline = c
                    .simulate_policies(hours * 3_600_000, step_minutes.max(1) * 60_000)
                    .await?;
                let mut data = policy_snapshot(&c).await?;
                let n = timeline.len();
                data.simulation = timeline;
                d.dispatch(Action::Policy(data));
                return Ok(format!("Simulated {hours} h: {n} decision(s)"));
            }
            PolicyAction::Event(name) => {
                let done = c.event(&name).await?;
                format!("Event {name}: {} decision(s) carried out", done.len())
            }
            PolicyAction::Run => {
                let done = c.run_policies().await?;
                format!("Policies ran: {} decision(s) carried out", done.len())
            }
        };
        load_policy(&d, &c).await?;
        Ok(text)
    });
}

async fn policy_snapshot(client: &Client) -> ClientResult<PolicyData> {
    Ok(PolicyData {
        policy_json: client.policy().await?,
        assignments: client.assignments().await?,
        decisions: Vec::new(),
        audit: client.audit().await?,
        simulation: Vec::new(),
    })
}

/// Name of the tour's demo store (in memory).
pub const TOUR_STORE: &str = "tour";

/// Runs step `step` of the guided tour.
pub fn tour_step(dispatch: Dispatch, open: Option<Client>, step: usize) {
    let client = open
        .clone()
        .filter(|c| c.name == TOUR_STORE && c.backend == Backend::Memory);
    let advance = {
        let d = dispatch.clone();
        move || d.dispatch(Action::TourStep(step + 1))
    };
    match (step, client) {
        (0, _) => {
            open_store(
                dispatch.clone(),
                open,
                TOUR_STORE.into(),
                Backend::Memory,
                Some((4096, 256)),
            );
            advance();
        }
        (6, Some(_)) => {
            dispatch.dispatch(Action::View(crate::state::View::Log));
            advance();
        }
        (_, None) => fail(
            &dispatch,
            ClientError::dashboard("the tour's store is not open: start the tour again"),
        ),
        (step, Some(client)) => {
            let c = client.clone();
            let text = move |bytes: &str| {
                let mut block = bytes.as_bytes().to_vec();
                block.resize(4096, 0);
                block
            };
            run(
                dispatch.clone(),
                c,
                None,
                crate::components::tour::STEPS[step.min(6)].title,
                async move {
                    match step {
                        1 => {
                            for addr in 0..8u64 {
                                client
                                    .write(addr, &text(&format!("block {addr}, first version")))
                                    .await?;
                            }
                            for addr in 0..4u64 {
                                client
                                    .write(addr, &text(&format!("block {addr}, second version")))
                                    .await?;
                            }
                            Ok("Appended 12 entries to the head".into())
                        }
                        2 => Ok(format!("Sealed snapshot {}", client.snapshot("v1").await?)),
                        3 => {
                            for addr in 4..6u64 {
                                client
                                    .write(addr, &text(&format!("block {addr}, after v1")))
                                    .await?;
                            }
                            Ok("Appended 2 entries to the new head".into())
                        }
                        4 => {
                            let op = LongOp {
                                on_progress: Rc::new(|_, _| {}),
                                canceller: Canceller::new()?,
                            };
                            let r = client.compact(1, op).await?;
                            Ok(format!(
                                "Compacted v1: {} → {} bytes, {} blocks dropped",
                                r.bytes_before, r.bytes_after, r.blocks_dropped
                            ))
                        }
                        _ => {
                            let op = LongOp {
                                on_progress: Rc::new(|_, _| {}),
                                canceller: Canceller::new()?,
                            };
                            let merged = client.merge(1, op).await?;
                            Ok(format!("Merged {merged} partition into the baseline"))
                        }
                    }
                },
            );
            advance();
        }
    }
}

/// Asks the browser to persist this origin's storage, and reports whether it is.
pub fn persist(dispatch: Dispatch) {
    yew::platform::spawn_local(async move {
        let Some(storage) = web_sys::window().map(|w| w.navigator().storage()) else {
            return;
        };
        if let Ok(promise) = storage.persist() {
            if let Ok(answer) = wasm_bindgen_futures::JsFuture::from(promise).await {
                dispatch.dispatch(Action::Persisted(answer.as_bool() == Some(true)));
            }
        }
    });
}

fn compacted_text(volume: u64, r: &CompactReport) -> String {
    format!(
        "Compacted volume {volume}: {} → {} bytes, {} blocks kept, {} dropped{}",
        r.bytes_before,
        r.bytes_after,
        r.blocks_kept,
        r.blocks_dropped,
        if r.removed { ", partition removed" } else { "" }
    )
}

fn merged_text(merged: u64) -> String {
    format!("Merged {merged} partition(s) into the baseline")
}

fn deleted_text(volume: u64, r: &CompactReport) -> String {
    format!(
        "Deleted volume {volume}: {} blocks kept for descendants, {} dropped",
        r.blocks_kept, r.blocks_dropped
    )
}

// ----- the scheme -------------------------------------------------------------------------------

/// Reads the store as a [`Scheme`]: every volume's block map in [`SCHEME_BUCKETS`] buckets (one
/// `blockMap` call per volume, each bounded whatever the volume's size) and the read path of
/// `read_volume` (the head if it is gone or not given).
pub async fn read_scheme(client: &Client, read_volume: Option<u64>) -> ClientResult<Scheme> {
    let info = client.info().await?;
    let volumes = client.volumes().await?;
    let read = read_volume
        .filter(|r| volumes.iter().any(|v| v.id.0 == *r))
        .unwrap_or(info.head.0);
    let (volumes, omitted) = select_layers(&volumes, read, SCHEME_LAYERS_MAX);
    let mut maps = Vec::with_capacity(volumes.len());
    for volume in &volumes {
        maps.push((
            volume.id.0,
            client.block_map(volume.id.0, SCHEME_BUCKETS).await?,
        ));
    }
    Ok(Scheme::build(
        info.block_count,
        &volumes,
        &maps,
        read,
        &omitted,
    ))
}

/// Loads the scheme into the state (after the store changed, or another volume was chosen).
pub fn load_scheme(dispatch: Dispatch, client: Client, read_volume: Option<u64>) {
    yew::platform::spawn_local(async move {
        match read_scheme(&client, read_volume).await {
            Ok(scheme) => dispatch.dispatch(Action::Scheme(scheme)),
            Err(error) => fail(&dispatch, error),
        }
    });
}

/// What the scheme view can do to a layer, shown before and after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reshape {
    Compact(u64),
    Merge(u64),
    Delete(u64),
}

/// Runs a [`Reshape`] and records the scheme read just before it (`before`, as drawn) and just
/// after it as a [`Transition`], with the report in words.
pub fn reshape(
    dispatch: Dispatch,
    client: Client,
    selected: Option<u64>,
    before: Scheme,
    reshape: Reshape,
) {
    let (d, c) = (dispatch.clone(), client.clone());
    let record = move |operation: String, report: String| async move {
        let after = read_scheme(&c, selected).await?;
        let change = Change::between(&before, &after);
        d.dispatch(Action::Transition(Some(Transition {
            operation,
            report: report.clone(),
            before,
            after,
            change,
        })));
        Ok(report)
    };
    match reshape {
        Reshape::Compact(volume) => run_long(
            dispatch,
            client.clone(),
            selected,
            "Compacting",
            move |op| async move {
                let report = compacted_text(volume, &client.compact(volume, op).await?);
                record(format!("Compact volume {volume}"), report).await
            },
        ),
        Reshape::Merge(volume) => run_long(
            dispatch,
            client.clone(),
            selected,
            "Merging",
            move |op| async move {
                let report = merged_text(client.merge(volume, op).await?);
                record(format!("Merge up to volume {volume}"), report).await
            },
        ),
        Reshape::Delete(volume) => {
            run(dispatch, client.clone(), selected, "Deleting", async move {
                let report = deleted_text(volume, &client.delete(volume).await?);
                record(format!("Delete volume {volume}"), report).await
            })
        }
    }
}

/// Moves the log cursor to the entry after the one it is on (or to the first).
pub fn cursor_step(dispatch: Dispatch, client: Client, cursor: LogCursor) {
    yew::platform::spawn_local(async move {
        let from = cursor.entry.as_ref().map_or(0, |e| e.seq + 1);
        match client.log_page(from, 1).await {
            Ok(entries) => {
                let next = match entries.into_iter().next() {
                    Some(entry) => LogCursor {
                        entry: Some(entry),
                        steps: cursor.steps + 1,
                        end: false,
                    },
                    None => LogCursor {
                        end: true,
                        ..cursor
                    },
                };
                dispatch.dispatch(Action::Cursor(next));
            }
            Err(error) => fail(&dispatch, error),
        }
    });
}

// ----- the mirror -------------------------------------------------------------------------------

/// What the mirror view can do.
#[derive(Clone, Debug, PartialEq)]
pub enum MirrorAction {
    /// Open (or create, with `blocks` blocks) the mirror `name`: its secondary on `backend`,
    /// leg `i` on `legs[i]`.
    Open {
        name: String,
        backend: Backend,
        legs: Vec<Backend>,
        blocks: u64,
    },
    /// Write `blocks` random blocks at random addresses, then sync (the legs get them).
    WriteAndSync {
        blocks: u64,
    },
    Snapshot,
    Scrub,
    Replace(u64),
    Close,
}

/// Blocks of the demo mirror.
const MIRROR_BLOCK_SIZE: u64 = 4096;

/// Reads the mirror's status, volumes and new fault events into `view`.
async fn mirror_refresh(mut view: MirrorView) -> ClientResult<MirrorView> {
    view.status = view.client.status().await?;
    view.volumes = view.client.volumes().await?;
    view.events.extend(view.client.events().await?);
    Ok(view)
}

/// Carries out a [`MirrorAction`] on the mirror view's mirror (`current`), with a busy indicator
/// and the outcome as the notice.
pub fn mirror_action(dispatch: Dispatch, current: Option<MirrorView>, action: MirrorAction) {
    dispatch.dispatch(Action::Busy(Some(Busy {
        label: "Mirror".into(),
        done_bytes: 0.0,
        total_bytes: 0.0,
        canceller: None,
    })));
    let d = dispatch.clone();
    yew::platform::spawn_local(async move {
        let outcome: ClientResult<String> = async {
            let need = |current: Option<MirrorView>| {
                current.ok_or_else(|| ClientError::dashboard("no mirror is open"))
            };
            match action {
                MirrorAction::Open {
                    name,
                    backend,
                    legs,
                    blocks,
                } => {
                    if let Some(previous) = current {
                        previous.client.close().await?;
                        d.dispatch(Action::Mirror(None));
                    }
                    let client =
                        client::open_mirror(&name, backend, &legs, MIRROR_BLOCK_SIZE, blocks)
                            .await?;
                    let view = MirrorView {
                        status: client.status().await?,
                        volumes: client.volumes().await?,
                        client,
                        scrub: None,
                        resilver: None,
                        events: Vec::new(),
                    };
                    let where_legs: Vec<&str> = legs.iter().map(|leg| leg.as_str()).collect();
                    d.dispatch(Action::Mirror(Some(view)));
                    Ok(format!(
                        "Opened mirror {name}: {} legs ({}) and a secondary on {}",
                        legs.len(),
                        where_legs.join(", "),
                        backend.as_str()
                    ))
                }
                MirrorAction::WriteAndSync { blocks } => {
                    let view = need(current)?;
                    let block_count = view.client.block_count().await?;
                    let random = js_sys::Math::random;
                    for _ in 0..blocks {
                        let addr = (random() * block_count as f64) as u64 % block_count.max(1);
                        let data: Vec<u8> = (0..MIRROR_BLOCK_SIZE)
                            .map(|_| (random() * 256.0) as u8)
                            .collect();
                        view.client.write(addr, &data).await?;
                    }
                    view.client.sync().await?;
                    let view = mirror_refresh(view).await?;
                    let legs = view.status.healthy_legs;
                    d.dispatch(Action::Mirror(Some(view)));
                    Ok(format!(
                        "Wrote {blocks} blocks to the secondary's log and synced them to {legs} legs"
                    ))
                }
                MirrorAction::Snapshot => {
                    let view = need(current)?;
                    let volume = view.client.snapshot().await?;
                    d.dispatch(Action::Mirror(Some(mirror_refresh(view).await?)));
                    Ok(format!("Sealed the mirror's head as snapshot {volume}"))
                }
                MirrorAction::Scrub => {
                    let mut view = need(current)?;
                    let report = view.client.scrub().await?;
                    let text = format!(
                        "Scrubbed: {} copies of {} blocks checked, {} bad, {} repaired",
                        report.copies_checked,
                        report.blocks_checked,
                        report.detected,
                        report.repaired
                    );
                    view.scrub = Some(report);
                    d.dispatch(Action::Mirror(Some(mirror_refresh(view).await?)));
                    Ok(text)
                }
                MirrorAction::Replace(leg) => {
                    let mut view = need(current)?;
                    let report = view.client.replace(leg).await?;
                    let text = format!(
                        "Replaced leg {leg}: {} blocks checked, {} written to the new leg",
                        report.blocks_checked, report.blocks_written
                    );
                    view.resilver = Some(report);
                    d.dispatch(Action::Mirror(Some(mirror_refresh(view).await?)));
                    Ok(text)
                }
                MirrorAction::Close => {
                    let view = need(current)?;
                    view.client.close().await?;
                    d.dispatch(Action::Mirror(None));
                    Ok(format!("Closed mirror {}", view.client.name))
                }
            }
        }
        .await;
        dispatch.dispatch(Action::Busy(None));
        match outcome {
            Ok(text) => info(&dispatch, text),
            Err(error) => fail(&dispatch, error),
        }
    });
}
