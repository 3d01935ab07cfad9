//! The JavaScript operations a store and a mirror share, written once over [`Volume`], and
//! their storage management: each class holds its volume as a [`Managed`] one, so the policy
//! methods (`setPolicy`, `runPolicies`, `audit`, ...) are written once here too.
//!
//! wasm-bindgen exports no generics, so [`crate::StrataStore`] and [`crate::StrataMirror`] each
//! keep a one-line exported method that calls the function here; what differs between them
//! (whether the volume may change, what a failure does to the session) is the [`Binding`]
//! each implements.

use std::cell::RefCell;
use std::future::Future;

use js_sys::{Array, Function};
use strata_engine::policy::{
    apply_to_model, simulate, Policy, Trigger, VolumeAssignments, SIMULATION_STEPS_MAX,
};
use strata_engine::{LogCursor, Managed, Volume};
use wasm_bindgen::prelude::*;

use crate::convert;
use crate::error::StrataError;
use crate::exclusive::Exclusive;

type Result<T, E = StrataError> = std::result::Result<T, E>;

/// A position in a store's or a mirror's log; see `cursor()`.
#[wasm_bindgen]
pub struct StrataCursor {
    /// For a mirror, a position in its secondary's log.
    pub(crate) cursor: RefCell<LogCursor>,
}

impl StrataCursor {
    pub(crate) fn new(cursor: LogCursor) -> Self {
        StrataCursor {
            cursor: RefCell::new(cursor),
        }
    }
}

#[wasm_bindgen]
impl StrataCursor {
    /// The lowest sequence number the cursor may still return.
    #[wasm_bindgen(getter, js_name = nextSeq)]
    pub fn next_seq(&self) -> f64 {
        self.cursor.borrow().next_seq() as f64
    }
}

/// How the shared operations reach an exported class's open volume.
pub(crate) trait Binding {
    /// What the class holds while open.
    type Session;
    /// The volume inside it (under storage management).
    type Volume: Volume;

    /// The session, taken in turns (see `exclusive.rs`).
    fn session(&self) -> &Exclusive<Self::Session>;

    /// The open volume (an error once closed, or while it is busy otherwise).
    fn volume(session: &mut Self::Session) -> Result<&mut Managed<Self::Volume>>;

    /// The origin's free quota for `quota_free_bytes` thresholds (`None`: not known, e.g. in
    /// memory).
    fn quota_free_bytes(&self) -> impl Future<Output = Option<u64>> {
        crate::place::quota_free_bytes()
    }

    /// Fails with `READ_ONLY` if the volume may not change.
    fn check_writable(&self) -> Result<()> {
        Ok(())
    }

    /// True if the volume was opened as a read-only view (`sync` then has nothing to do).
    fn read_only(&self) -> bool {
        false
    }

    /// The outcome of a change, after whatever a failure calls for (see
    /// `StrataStore::settle`).
    fn settle<T>(
        &self,
        session: &mut Self::Session,
        outcome: strata_engine::Result<T>,
    ) -> impl Future<Output = Result<T>> {
        let _ = session;
        std::future::ready(outcome.map_err(StrataError::from))
    }
}

pub(crate) async fn write<B: Binding>(b: &B, addr: f64, data: Vec<u8>) -> Result<f64> {
    b.check_writable()?;
    let addr = convert::to_u64(addr, "addr")?;
    let mut session = b.session().lock().await;
    let outcome = B::volume(&mut session)?.write(addr, &data).await;
    Ok(b.settle(&mut session, outcome).await? as f64)
}

pub(crate) async fn write_batch<B: Binding>(b: &B, writes: JsValue) -> Result<f64> {
    b.check_writable()?;
    let owned = convert::write_batch(&writes)?;
    let writes: Vec<(u64, &[u8])> = owned.iter().map(|(a, d)| (*a, d.as_slice())).collect();
    let mut session = b.session().lock().await;
    let outcome = B::volume(&mut session)?.write_batch(&writes).await;
    Ok(b.settle(&mut session, outcome).await? as f64)
}

pub(crate) async fn sync<B: Binding>(b: &B) -> Result<()> {
    let mut session = b.session().lock().await;
    if b.read_only() {
        return Ok(());
    }
    let outcome = B::volume(&mut session)?.sync().await;
    b.settle(&mut session, outcome).await
}

pub(crate) async fn read<B: Binding>(b: &B, addr: f64, blocks: f64) -> Result<Vec<u8>> {
    let addr = convert::to_u64(addr, "addr")?;
    let blocks = convert::to_u64(blocks, "blocks")?;
    let mut session = b.session().lock().await;
    Ok(B::volume(&mut session)?.read(addr, blocks).await?)
}

pub(crate) async fn read_at<B: Binding>(
    b: &B,
    volume: f64,
    addr: f64,
    blocks: f64,
) -> Result<Vec<u8>> {
    let volume = convert::to_volume(volume, "volume")?;
    let addr = convert::to_u64(addr, "addr")?;
    let blocks = convert::to_u64(blocks, "blocks")?;
    let mut session = b.session().lock().await;
    Ok(B::volume(&mut session)?
        .read_at(volume, addr, blocks)
        .await?)
}

pub(crate) async fn volumes<B: Binding>(b: &B) -> Result<Array> {
    let mut session = b.session().lock().await;
    let volumes = B::volume(&mut session)?.volumes();
    convert::to_js_array(&volumes)
}

pub(crate) async fn space<B: Binding>(b: &B) -> Result<Array> {
    let mut session = b.session().lock().await;
    let space = B::volume(&mut session)?.space();
    convert::to_js_array(&space)
}

pub(crate) async fn cursor<B: Binding>(b: &B, start: JsValue) -> Result<StrataCursor> {
    let start = convert::cursor_start(&start)?;
    let mut session = b.session().lock().await;
    let cursor = B::volume(&mut session)?.cursor(start)?;
    Ok(StrataCursor::new(cursor))
}

pub(crate) async fn next_entry<B: Binding>(
    b: &B,
    cursor: &StrataCursor,
    with_data: bool,
) -> Result<JsValue> {
    let entries = next_entries(b, cursor, 1.0, with_data).await?;
    // `null` at the end of the log, as the type says (`Array::get` past the end gives
    // `undefined`).
    Ok(match entries.length() {
        0 => JsValue::NULL,
        _ => entries.get(0),
    })
}

pub(crate) async fn next_entries<B: Binding>(
    b: &B,
    cursor: &StrataCursor,
    max: f64,
    with_data: bool,
) -> Result<Array> {
    let max = convert::to_u64(max, "max")?;
    let mut session = b.session().lock().await;
    let store = B::volume(&mut session)?.store();
    convert::next_entries(store, &cursor.cursor, max, with_data).await
}

pub(crate) async fn compact<B: Binding>(
    b: &B,
    volume: f64,
    on_progress: Option<Function>,
) -> Result<JsValue> {
    b.check_writable()?;
    let volume = convert::to_volume(volume, "volume")?;
    let mut session = b.session().lock().await;
    let mut progress = convert::progress_callback(&on_progress);
    let outcome = B::volume(&mut session)?
        .compact(volume, &mut progress)
        .await;
    let report = b.settle(&mut session, outcome).await?;
    convert::to_js(&report)
}

pub(crate) async fn merge<B: Binding>(
    b: &B,
    volume: f64,
    on_progress: Option<Function>,
) -> Result<f64> {
    b.check_writable()?;
    let volume = convert::to_volume(volume, "volume")?;
    let mut session = b.session().lock().await;
    let mut progress = convert::progress_callback(&on_progress);
    let outcome = B::volume(&mut session)?.merge(volume, &mut progress).await;
    Ok(f64::from(b.settle(&mut session, outcome).await?))
}

pub(crate) async fn delete_volume<B: Binding>(b: &B, volume: f64) -> Result<JsValue> {
    b.check_writable()?;
    let volume = convert::to_volume(volume, "volume")?;
    let mut session = b.session().lock().await;
    let outcome = B::volume(&mut session)?.delete_volume(volume).await;
    let report = b.settle(&mut session, outcome).await?;
    convert::to_js(&report)
}

pub(crate) async fn rollback<B: Binding>(b: &B, volume: f64, label: Option<String>) -> Result<f64> {
    b.check_writable()?;
    let volume = convert::to_volume(volume, "volume")?;
    let mut session = b.session().lock().await;
    let outcome = B::volume(&mut session)?
        .rollback(volume, label.as_deref())
        .await;
    Ok(b.settle(&mut session, outcome).await?.0 as f64)
}

pub(crate) async fn diff<B: Binding>(b: &B, a: f64, c: f64) -> Result<Array> {
    let a = convert::to_volume(a, "a")?;
    let c = convert::to_volume(c, "b")?;
    let mut session = b.session().lock().await;
    let extents = B::volume(&mut session)?.diff(a, c).await?;
    convert::diff_extents(&extents)
}

// ----- storage management ------------------------------------------------------------------------

pub(crate) async fn set_policy<B: Binding>(b: &B, policy: JsValue) -> Result<()> {
    b.check_writable()?;
    let policy = if policy.is_null() || policy.is_undefined() {
        None
    } else {
        let json = convert::json_text(&policy, "policy")?;
        Some(
            Policy::from_json(&json)
                .map_err(|e| StrataError::invalid_argument(format!("policy: {e}")))?,
        )
    };
    let mut session = b.session().lock().await;
    let outcome = B::volume(&mut session)?.set_policy(policy).await;
    b.settle(&mut session, outcome).await
}

pub(crate) async fn policy<B: Binding>(b: &B) -> Result<JsValue> {
    let mut session = b.session().lock().await;
    match B::volume(&mut session)?.policy() {
        Some(policy) => convert::via_json(policy),
        None => Ok(JsValue::NULL),
    }
}

pub(crate) async fn set_assignments<B: Binding>(b: &B, assignments: JsValue) -> Result<()> {
    b.check_writable()?;
    let json = convert::json_text(&assignments, "assignments")?;
    let assignments: VolumeAssignments = serde_json::from_str(&json)
        .map_err(|e| StrataError::invalid_argument(format!("assignments: {e}")))?;
    let mut session = b.session().lock().await;
    let outcome = B::volume(&mut session)?.set_assignments(assignments).await;
    b.settle(&mut session, outcome).await
}

pub(crate) async fn assignments<B: Binding>(b: &B) -> Result<JsValue> {
    let mut session = b.session().lock().await;
    convert::via_json(B::volume(&mut session)?.assignments())
}

pub(crate) async fn event<B: Binding>(
    b: &B,
    name: String,
    on_copy: Option<Function>,
) -> Result<Array> {
    b.check_writable()?;
    let mut session = b.session().lock().await;
    let mut copy = convert::copy_sink(&on_copy);
    let outcome = B::volume(&mut session)?.event(&name, &mut copy).await;
    let entries = b.settle(&mut session, outcome).await?;
    convert::audit_entries(&entries)
}

pub(crate) async fn run_policies<B: Binding>(b: &B, on_copy: Option<Function>) -> Result<Array> {
    b.check_writable()?;
    let quota = b.quota_free_bytes().await;
    let mut session = b.session().lock().await;
    let mut copy = convert::copy_sink(&on_copy);
    let outcome = B::volume(&mut session)?
        .run_policies(Trigger::Tick, quota, &mut copy)
        .await;
    let entries = b.settle(&mut session, outcome).await?;
    convert::audit_entries(&entries)
}

pub(crate) async fn dry_run<B: Binding>(b: &B, event: Option<String>) -> Result<Array> {
    let trigger = match event {
        Some(name) => Trigger::Event(name),
        None => Trigger::Tick,
    };
    let quota = b.quota_free_bytes().await;
    let mut session = b.session().lock().await;
    convert::decisions(&B::volume(&mut session)?.policy_dry_run(trigger, quota))
}

pub(crate) async fn audit<B: Binding>(b: &B) -> Result<Array> {
    let mut session = b.session().lock().await;
    convert::audit_entries(B::volume(&mut session)?.audit())
}

pub(crate) async fn simulate_policies<B: Binding>(
    b: &B,
    duration_ms: f64,
    step_ms: f64,
) -> Result<Array> {
    let duration_ms = convert::to_u64(duration_ms, "durationMs")?;
    let step_ms = convert::to_u64(step_ms, "stepMs")?;
    if step_ms == 0 || duration_ms / step_ms > SIMULATION_STEPS_MAX {
        return Err(StrataError::invalid_argument(format!(
            "stepMs must be positive and durationMs / stepMs at most {SIMULATION_STEPS_MAX}"
        )));
    }
    let quota = b.quota_free_bytes().await;
    let mut session = b.session().lock().await;
    let managed = B::volume(&mut session)?;
    let Some(policy) = managed.policy() else {
        return Ok(Array::new());
    };
    let now_ms = crate::place::clock().now_ms();
    let simulation = simulate(
        policy,
        managed.assignments(),
        managed.policy_view(quota),
        now_ms,
        now_ms.saturating_add(duration_ms),
        step_ms,
        apply_to_model,
    )
    .map_err(|e| StrataError::invalid_argument(format!("policy: {e}")))?;
    let out = Array::new();
    for entry in &simulation.timeline {
        out.push(&convert::via_json(entry)?);
    }
    Ok(out)
}
