//! The dashboard's state: one reducer, changed only through [`Action`]s.

use std::rc::Rc;

use yew::Reducible;

use crate::client::{
    Assignment, Backend, Bucket, Canceller, Client, ClientError, Extent, FaultEvent, LogEntry,
    MirrorClient, MirrorStatus, Provenance, ResilverReport, ScrubReport, SpaceInfo, StoreInfo,
    VolumeInfo,
};
use crate::scheme::{Change, Scheme};

/// What the browser reports about this origin's storage (`navigator.storage.estimate()`).
#[derive(Clone, Debug, PartialEq)]
pub enum StorageUsage {
    /// The estimate has been asked for and has not arrived yet.
    Measuring,
    Measured {
        usage_bytes: u64,
        quota_bytes: u64,
    },
    /// The browser refused or lacks the API; `reason` is shown to the user as is.
    Unavailable {
        reason: String,
    },
}

/// The main views, one tab each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Blocks,
    Scheme,
    Log,
    Policies,
    Mirror,
    Tour,
}

impl View {
    pub const ALL: [View; 6] = [
        View::Blocks,
        View::Scheme,
        View::Log,
        View::Policies,
        View::Mirror,
        View::Tour,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Blocks => "Volumes & blocks",
            View::Scheme => "Layers",
            View::Log => "Log",
            View::Policies => "Policies",
            View::Mirror => "Mirror",
            View::Tour => "Guided tour",
        }
    }

    pub fn id(self) -> &'static str {
        match self {
            View::Blocks => "blocks",
            View::Scheme => "scheme",
            View::Log => "log",
            View::Policies => "policies",
            View::Mirror => "mirror",
            View::Tour => "tour",
        }
    }
}

/// A store this browser has opened before (kept in `localStorage`, per backend).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KnownStore {
    pub name: String,
    pub backend: Backend,
}

/// The store open now and what it last reported.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenStore {
    pub client: Client,
    pub info: StoreInfo,
    pub volumes: Vec<VolumeInfo>,
    pub space: Vec<SpaceInfo>,
}

/// A long operation in flight.
#[derive(Clone, Debug, PartialEq)]
pub struct Busy {
    pub label: String,
    pub done_bytes: f64,
    pub total_bytes: f64,
    /// Present when the operation can be cancelled.
    pub canceller: Option<Canceller>,
}

/// The message line under the header.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    Info(String),
    Error(ClientError),
}

/// One cell of the block map: a block, or a region of blocks in a large volume.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub first_addr: u64,
    pub blocks: u64,
    /// `"zero"`, `"baseline"` or `"partition"`.
    pub origin: String,
    pub volume: Option<u64>,
    pub deleted: bool,
    pub log_blocks: u64,
    pub origins: u64,
    pub record_seq: Option<u64>,
}

impl From<Bucket> for Cell {
    fn from(b: Bucket) -> Self {
        Cell {
            first_addr: b.first_addr,
            blocks: b.blocks,
            origin: b.origin,
            volume: b.volume,
            deleted: b.deleted,
            log_blocks: b.log_blocks,
            origins: b.origins,
            record_seq: None,
        }
    }
}

impl From<Provenance> for Cell {
    fn from(p: Provenance) -> Self {
        let from_log = p.origin == "partition";
        Cell {
            first_addr: p.addr,
            blocks: 1,
            origin: p.origin,
            volume: p.volume,
            deleted: p.deleted,
            log_blocks: u64::from(from_log),
            origins: 1,
            record_seq: p.record_seq,
        }
    }
}

/// The block map of one volume, over the whole volume or a zoomed range.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct BlockMap {
    pub volume: u64,
    /// `Some((first, blocks))` when zoomed into a region.
    pub range: Option<(u64, u64)>,
    pub cells: Vec<Cell>,
}

/// A block opened for reading.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockDetail {
    pub volume: u64,
    pub addr: u64,
    pub data: Vec<u8>,
    pub provenance: Option<Provenance>,
}

/// The policy view's data.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct PolicyData {
    pub policy_json: Option<String>,
    pub assignments: Vec<Assignment>,
    pub decisions: Vec<serde_json::Value>,
    pub audit: Vec<serde_json::Value>,
    /// A simulated run of the clock: decisions with their simulated times.
    pub simulation: Vec<serde_json::Value>,
}

/// A compaction, merge or deletion run from the scheme: the drawing before and after it, from
/// the engine's data read on each side of the call, and the report's numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// What was done, e.g. "Compact volume 2".
    pub operation: String,
    /// The engine's report, in words.
    pub report: String,
    pub before: Scheme,
    pub after: Scheme,
    pub change: Change,
}

/// The log cursor the scheme walks, one entry per step.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LogCursor {
    /// The entry the cursor is on.
    pub entry: Option<LogEntry>,
    /// Entries stepped over since the start.
    pub steps: u64,
    /// The last step found no entry after the current one.
    pub end: bool,
}

/// The mirror open in the mirror view, and what it last reported.
#[derive(Clone, Debug, PartialEq)]
pub struct MirrorView {
    pub client: MirrorClient,
    pub status: MirrorStatus,
    /// The secondary's volumes (baseline, snapshots, head).
    pub volumes: Vec<VolumeInfo>,
    pub scrub: Option<ScrubReport>,
    pub resilver: Option<ResilverReport>,
    /// Faults found on the legs, newest last (collected from `events()` after each action).
    pub events: Vec<FaultEvent>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DashboardState {
    /// The version of the dashboard (the workspace's, which the engine shares).
    pub engine_version: &'static str,
    pub storage: StorageUsage,
    pub persisted: Option<bool>,
    pub known: Vec<KnownStore>,
    pub store: Option<OpenStore>,
    /// The volume the map shows; `None` follows the head.
    pub selected: Option<u64>,
    pub map: BlockMap,
    pub detail: Option<BlockDetail>,
    pub diff: Option<(u64, u64, Vec<Extent>)>,
    pub busy: Option<Busy>,
    pub notice: Option<Notice>,
    pub log: Vec<LogEntry>,
    /// The last page read came back short: the log ends there (until more is written).
    pub log_end: bool,
    pub policy: PolicyData,
    pub view: View,
    pub tour_step: usize,
    /// The scheme of the open store, when the scheme view has loaded it.
    pub scheme: Option<Scheme>,
    pub transition: Option<Transition>,
    pub cursor: LogCursor,
    pub mirror: Option<MirrorView>,
}

impl Default for DashboardState {
    fn default() -> Self {
        Self {
            engine_version: env!("CARGO_PKG_VERSION"),
            storage: StorageUsage::Measuring,
            persisted: None,
            known: Vec::new(),
            store: None,
            selected: None,
            map: BlockMap::default(),
            detail: None,
            diff: None,
            busy: None,
            notice: None,
            log: Vec::new(),
            log_end: false,
            policy: PolicyData::default(),
            view: View::Blocks,
            tour_step: 0,
            scheme: None,
            transition: None,
            cursor: LogCursor::default(),
            mirror: None,
        }
    }
}

impl DashboardState {
    /// The volume the views show: the selected one, else the head.
    pub fn shown_volume(&self) -> Option<u64> {
        self.selected
            .or_else(|| self.store.as_ref().map(|s| s.info.head.0))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    StorageMeasured {
        usage_bytes: u64,
        quota_bytes: u64,
    },
    StorageUnavailable {
        reason: String,
    },
    Persisted(bool),
    Known(Vec<KnownStore>),
    Opened(OpenStore),
    Closed,
    Refreshed {
        info: StoreInfo,
        volumes: Vec<VolumeInfo>,
        space: Vec<crate::client::SpaceInfo>,
        map: BlockMap,
    },
    Map(BlockMap),
    Select(Option<u64>),
    Detail(Option<BlockDetail>),
    Diff(Option<(u64, u64, Vec<Extent>)>),
    Busy(Option<Busy>),
    Progress {
        done_bytes: f64,
        total_bytes: f64,
    },
    Notice(Option<Notice>),
    /// Log entries read; `reset` replaces what was loaded instead of appending.
    LogPage {
        entries: Vec<LogEntry>,
        reset: bool,
        end: bool,
    },
    Policy(PolicyData),
    View(View),
    TourStep(usize),
    Scheme(Scheme),
    Transition(Option<Transition>),
    Cursor(LogCursor),
    /// The mirror view's mirror: opened or refreshed, or closed (`None`).
    Mirror(Option<MirrorView>),
}

impl Reducible for DashboardState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut next = (*self).clone();
        match action {
            Action::StorageMeasured {
                usage_bytes,
                quota_bytes,
            } => {
                next.storage = StorageUsage::Measured {
                    usage_bytes,
                    quota_bytes,
                }
            }
            Action::StorageUnavailable { reason } => {
                next.storage = StorageUsage::Unavailable { reason }
            }
            Action::Persisted(persisted) => next.persisted = Some(persisted),
            Action::Known(known) => next.known = known,
            Action::Opened(store) => {
                next.store = Some(store);
                next.scheme = None;
                next.transition = None;
                next.cursor = LogCursor::default();
                next.selected = None;
                next.map = BlockMap::default();
                next.detail = None;
                next.diff = None;
                next.log = Vec::new();
                next.log_end = false;
                next.policy = PolicyData::default();
            }
            Action::Closed => {
                next.store = None;
                next.scheme = None;
                next.transition = None;
                next.cursor = LogCursor::default();
                next.selected = None;
                next.map = BlockMap::default();
                next.detail = None;
                next.diff = None;
                next.log = Vec::new();
                next.log_end = false;
                next.policy = PolicyData::default();
            }
            Action::Refreshed {
                info,
                volumes,
                space,
                map,
            } => {
                if let Some(store) = next.store.as_mut() {
                    // A selected volume that no longer exists (deleted, merged) falls back to
                    // the head.
                    if let Some(selected) = next.selected {
                        if !volumes.iter().any(|v| v.id.0 == selected) {
                            next.selected = None;
                        }
                    }
                    store.info = info;
                    store.volumes = volumes;
                    store.space = space;
                    next.map = map;
                    // More may have been written since the log said it ended.
                    next.log_end = false;
                }
            }
            Action::Map(map) => next.map = map,
            Action::Select(volume) => {
                next.selected = volume;
                next.detail = None;
            }
            Action::Detail(detail) => next.detail = detail,
            Action::Diff(diff) => next.diff = diff,
            Action::Busy(busy) => next.busy = busy,
            Action::Progress {
                done_bytes,
                total_bytes,
            } => {
                if let Some(busy) = next.busy.as_mut() {
                    busy.done_bytes = done_bytes;
                    busy.total_bytes = total_bytes;
                }
            }
            Action::Notice(notice) => next.notice = notice,
            Action::LogPage {
                entries,
                reset,
                end,
            } => {
                if reset {
                    next.log = entries;
                } else {
                    next.log.extend(entries);
                }
                next.log_end = end;
            }
            Action::Policy(policy) => next.policy = policy,
            Action::View(view) => next.view = view,
            Action::TourStep(step) => next.tour_step = step,
            Action::Scheme(scheme) => next.scheme = Some(scheme),
            Action::Transition(transition) => next.transition = transition,
            Action::Cursor(cursor) => next.cursor = cursor,
            Action::Mirror(mirror) => next.mirror = mirror,
        }
        Rc::new(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_measuring_with_the_workspace_version_and_no_store() {
        let state = DashboardState::default();
        assert_eq!(state.engine_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(state.storage, StorageUsage::Measuring);
        assert!(state.store.is_none());
        assert_eq!(state.shown_volume(), None);
    }

    #[test]
    fn a_measurement_replaces_only_the_storage_usage() {
        let before = Rc::new(DashboardState::default());
        let after = before.clone().reduce(Action::StorageMeasured {
            usage_bytes: 10,
            quota_bytes: 100,
        });
        assert_eq!(
            after.storage,
            StorageUsage::Measured {
                usage_bytes: 10,
                quota_bytes: 100
            }
        );
        assert_eq!(after.view, before.view);
    }

    #[test]
    fn log_pages_append_until_reset() {
        let entry = |seq| LogEntry {
            seq,
            volume: strata_engine::VolumeId(1),
            addr: 0,
            blocks: 1,
            timestamp_ms: 0,
            zero: false,
            data: None,
        };
        let state = Rc::new(DashboardState::default())
            .reduce(Action::LogPage {
                entries: vec![entry(1)],
                reset: true,
                end: false,
            })
            .reduce(Action::LogPage {
                entries: vec![entry(2)],
                reset: false,
                end: true,
            });
        assert_eq!(state.log.len(), 2);
        assert!(state.log_end);
        let state = state.reduce(Action::LogPage {
            entries: vec![entry(5)],
            reset: true,
            end: false,
        });
        assert_eq!(state.log, vec![entry(5)]);
    }

    #[test]
    fn progress_only_moves_an_operation_in_flight() {
        let state = Rc::new(DashboardState::default()).reduce(Action::Progress {
            done_bytes: 1.0,
            total_bytes: 2.0,
        });
        assert!(state.busy.is_none());
        let state = state
            .reduce(Action::Busy(Some(Busy {
                label: "Compacting".into(),
                done_bytes: 0.0,
                total_bytes: 0.0,
                canceller: None,
            })))
            .reduce(Action::Progress {
                done_bytes: 1.0,
                total_bytes: 2.0,
            });
        assert!(matches!(&state.busy, Some(b) if b.done_bytes == 1.0 && b.total_bytes == 2.0));
    }
}
