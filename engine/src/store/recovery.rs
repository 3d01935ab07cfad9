//! Opening a store: choose the journal, replay it, check the baseline, load every sealed
//! partition's index and scan the head's segment (see `format.md`, "Recovery").
//!
//! Invariants checked here (anything else wrong is reported as corruption, never dropped):
//! * the first journal record is the store header and names the journal's own generation;
//! * a damaged journal record is acceptable only as the very last thing in the journal (a torn
//!   append that was never acknowledged);
//! * every partition's parent exists and was created before it; exactly one partition is the head.

use std::rc::Rc;

use rustc_hash::FxHashMap;

use super::types::{BaselineKind, RecoveryReport};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::format::baseline::{
    BASELINE_IMAGE, BASELINE_OBJECT, BASELINE_SUM_OBJECT, BASELINE_ZERO,
};
use crate::format::commit::{CommitPoint, COMMIT_OBJECT, COMMIT_SLOT_STRIDE};
use crate::format::meta::{MetaRecord, CREATED_FLAG_HEAD, META_MAGIC, REWRITTEN_FLAG_COMPACTED};
use crate::format::{self, meta_object, parse_meta_object, parse_segment_object, FORMAT_VERSION};
use crate::storage::{Commit, Storage};

/// Largest journal this build will read into memory (a journal grows ~100 bytes per snapshot);
/// an append that would pass it is refused.
pub(crate) const JOURNAL_BYTES_MAX: u64 = 256 << 20;

/// True if some valid journal record starts after `from`.
fn valid_record_after(bytes: &[u8], from: usize) -> bool {
    let magic = META_MAGIC.to_le_bytes();
    (from + 1..bytes.len().saturating_sub(3))
        .filter(|&i| bytes.get(i..i + 4) == Some(&magic[..]))
        .any(|i| {
            bytes
                .get(i..)
                .is_some_and(|rest| MetaRecord::decode(rest).is_ok())
        })
}

/// For a read-only view of an unfinished merge of `volume`: the snapshots older than `volume`
/// that the merge folds in are hidden, because the baseline blocks they would read may already
/// hold the merged data. `volume` and everything growing from it read only blocks the merge
/// leaves alone (or their own partitions, which stay intact until the merge finishes).
fn hide_merging_ancestors(partitions: &mut [JournalPartition], volume: u64) {
    let parent_of = |partitions: &[JournalPartition], v: u64| {
        partitions.iter().find(|p| p.volume == v).map(|p| p.parent)
    };
    let mut at = parent_of(partitions, volume).unwrap_or(0);
    // Bounded: each step moves to an older partition.
    for _ in 0..partitions.len() {
        if at == 0 {
            break;
        }
        let next = parent_of(partitions, at).unwrap_or(0);
        if let Some(p) = partitions.iter_mut().find(|p| p.volume == at) {
            p.hidden = true;
        }
        at = next;
    }
}

/// Checks an image baseline: `baseline` has exactly the image's size, `baseline.sum` one entry
/// per block, and (unless a merge is being redone, which rewrites some entries) the CRC-32C of
/// `baseline.sum` is the one the journal holds. `baseline.sum` is read a window at a time, so
/// memory stays fixed whatever the volume's size.
async fn check_baseline<S: Storage>(
    storage: &S,
    block_size: u32,
    block_count: u64,
    expected_crc: u32,
    merging: Option<u64>,
) -> Result<()> {
    let image_bytes = block_count * u64::from(block_size);
    let image_len = storage.len(BASELINE_OBJECT).await?;
    if image_len != Some(image_bytes) {
        return Err(Error::corrupt(
            BASELINE_OBJECT,
            image_len.unwrap_or(0),
            match image_len {
                None => "the baseline image is missing".to_string(),
                Some(len) => format!("the baseline image is {len} bytes, expected {image_bytes}"),
            },
        ));
    }
    let sum_bytes = block_count * 4;
    let sum_len = storage.len(BASELINE_SUM_OBJECT).await?;
    if sum_len != Some(sum_bytes) && merging.is_none() {
        return Err(Error::corrupt(
            BASELINE_SUM_OBJECT,
            sum_len.unwrap_or(0),
            match sum_len {
                None => "the baseline's checksums are missing".to_string(),
                Some(len) => format!("{len} bytes of block checksums, expected {sum_bytes}"),
            },
        ));
    }
    if merging.is_some() {
        return Ok(());
    }
    let crc = object_crc(storage, BASELINE_SUM_OBJECT, sum_bytes).await?;
    if crc != expected_crc {
        return Err(Error::ChecksumMismatch {
            object: BASELINE_SUM_OBJECT.into(),
            offset: 0,
            expected: expected_crc,
            actual: crc,
        });
    }
    Ok(())
}

/// The current commit point of the `commit` object, if it has a valid one.
async fn read_commit_point<S: Storage>(storage: &S) -> Result<Option<CommitPoint>> {
    let mut bytes = vec![0u8; (COMMIT_SLOT_STRIDE as usize) * 2];
    let filled = storage.read_at(COMMIT_OBJECT, 0, &mut bytes).await?;
    bytes.truncate(filled);
    Ok(CommitPoint::current(&bytes))
}

/// The error for storage that holds no journal: not a store at all, or a store whose journal is
/// gone (other store objects, or a commit point, are there).
fn missing_journal(names: &[String], commit_point: Option<CommitPoint>) -> Error {
    let store_object = names.iter().find(|n| {
        parse_segment_object(n).is_some()
            || n.as_str() == BASELINE_OBJECT
            || n.as_str() == BASELINE_SUM_OBJECT
    });
    match (commit_point, store_object) {
        (Some(point), _) => Error::corrupt(
            &meta_object(point.journal_generation),
            0,
            "the metadata journal is missing (the commit point names it)",
        ),
        (None, Some(other)) => Error::corrupt(
            "meta-*",
            0,
            format!("the metadata journal is missing, but the store's {other} is here"),
        ),
        (None, None) => Error::NotAStore,
    }
}

/// Checks the journal `object`, whose valid records end at `valid_len`, against the commit
/// point: it must hold at least what the commit point vouches for.
fn check_journal_claim(
    commit_point: Option<CommitPoint>,
    object: &str,
    valid_len: u64,
) -> Result<()> {
    let Some(point) = commit_point else {
        return Ok(());
    };
    let generation = parse_meta_object(object).unwrap_or(0);
    if point.journal_generation > generation {
        return Err(Error::corrupt(
            &meta_object(point.journal_generation),
            0,
            format!(
                "journal generation {} is missing (the commit point names it); only {object} is here",
                point.journal_generation
            ),
        ));
    }
    if point.journal_generation == generation && valid_len < point.journal_len {
        return Err(Error::corrupt(
            object,
            valid_len,
            format!(
                "the journal's records end at byte {valid_len}, but {} bytes of them were acknowledged (commit point): acknowledged metadata is missing or damaged",
                point.journal_len
            ),
        ));
    }
    Ok(())
}

/// Bytes read at a time by [`object_crc`].
const CRC_WINDOW_BYTES: u64 = 1 << 20;

/// The CRC-32C of the first `len` bytes of `object`, read a window at a time (memory stays fixed
/// whatever its size); corruption naming it if it is shorter.
pub(crate) async fn object_crc<S: Storage>(storage: &S, object: &str, len: u64) -> Result<u32> {
    let mut crc = 0u32;
    let mut window = vec![0u8; CRC_WINDOW_BYTES.min(len) as usize];
    let mut at = 0u64;
    while at < len {
        let n = (len - at).min(window.len() as u64) as usize;
        let filled = storage.read_at(object, at, &mut window[..n]).await?;
        if filled < n {
            return Err(Error::corrupt(object, at + filled as u64, "ends early"));
        }
        crc = format::crc_append(crc, &window[..n]);
        at += n as u64;
    }
    Ok(crc)
}

/// The pieces recovery assembles a store from.
pub(crate) struct Parts<S: Storage> {
    pub storage: S,
    pub clock: Rc<dyn Clock>,
    pub block_size: u32,
    pub block_count: u64,
    pub baseline: BaselineKind,
    pub format_version: u32,
    pub baseline_sum_crc: u32,
    pub store_id: u64,
    pub created_ms: u64,
    pub meta_object: String,
    pub meta_len: u64,
    pub recovery: RecoveryReport,
    pub read_only: bool,
    pub commit_point: Option<CommitPoint>,
    pub head_loss_vouched_elsewhere: bool,
}

/// A partition as the journal describes it.
pub(crate) struct JournalPartition {
    pub volume: u64,
    pub parent: u64,
    pub created_ms: u64,
    pub first_seq: u64,
    pub segment_generation: u32,
    /// Set once the partition is sealed.
    pub sealed: Option<JournalSeal>,
    pub compacted: bool,
    pub hidden: bool,
}

/// What the journal says of a sealed partition.
pub(crate) struct JournalSeal {
    pub sealed_ms: u64,
    pub segment_len: u64,
    pub next_seq: u64,
    pub label: String,
}

/// What replaying the journal gives: the pieces to assemble the store from, its partitions (in
/// creation order, dropped ones removed), the head's volume, the policy documents, and a merge
/// the journal started but did not finish.
pub(crate) struct Replayed<S: Storage> {
    pub parts: Parts<S>,
    pub partitions: Vec<JournalPartition>,
    pub head: u64,
    pub documents: Vec<(u16, String)>,
    pub merging: Option<u64>,
}

/// Replays the store's journal on `storage`: chooses the newest journal whose header verifies,
/// decodes it (cutting a torn last record, unless `read_only`), checks the store header, the
/// commit point's claims and the baseline, and gives the partitions the journal describes.
///
/// With `read_only`, nothing is written: a torn tail is ignored in memory, and an unfinished
/// merge is left unfinished (its partitions are still intact). With
/// `head_loss_vouched_elsewhere` (a mirror's secondary), synced head records the commit point
/// vouches for are cut like a torn tail when missing, and counted, instead of failing.
pub(crate) async fn replay<S: Storage>(
    mut storage: S,
    clock: Rc<dyn Clock>,
    read_only: bool,
    head_loss_vouched_elsewhere: bool,
) -> Result<Replayed<S>> {
    // The commit point first: read before the journal, it can only vouch for less than a writer
    // beside a read-only view has made durable since.
    let commit_point = read_commit_point(&storage).await?;
    let (object, bytes) = choose_journal(&storage, commit_point).await?;
    let (records, end) = decode_journal(&object, &bytes)?;
    check_journal_claim(commit_point, &object, end as u64)?;
    let mut recovery = RecoveryReport::default();
    if end < bytes.len() {
        recovery.journal_bytes_truncated = (bytes.len() - end) as u64;
        if !read_only {
            let mut commit = Commit::new(true);
            commit.truncate(&object, end as u64);
            storage.commit(commit).await?;
        }
    }
    let mut records = records.into_iter();
    let header = StoreHeader::check(records.next(), &object)?;
    if let Some(point) = commit_point.filter(|p| p.store_id != header.store_id) {
        return Err(Error::corrupt(
            COMMIT_OBJECT,
            0,
            format!(
                "the commit point belongs to store {:016x}, not to this store ({:016x})",
                point.store_id, header.store_id
            ),
        ));
    }
    let mut state = JournalState::new(
        object.clone(),
        header.baseline_kind,
        header.baseline_sum_crc,
    );
    for record in records {
        state.apply(record)?;
    }
    let (mut partitions, head) = state.partitions()?;
    let baseline = match state.baseline_kind {
        BASELINE_ZERO => BaselineKind::Zero,
        BASELINE_IMAGE => {
            let (size, count, crc) = (header.block_size, header.block_count, state.baseline_crc);
            check_baseline(&storage, size, count, crc, state.merging).await?;
            BaselineKind::Image
        }
        other => {
            return Err(Error::corrupt(
                &object,
                0,
                format!("unknown baseline kind {other}"),
            ))
        }
    };
    if let (true, Some(volume)) = (read_only, state.merging) {
        hide_merging_ancestors(&mut partitions, volume);
    }
    let parts = Parts {
        storage,
        clock,
        block_size: header.block_size,
        block_count: header.block_count,
        baseline,
        format_version: header.format_version,
        baseline_sum_crc: state.baseline_crc,
        store_id: header.store_id,
        created_ms: header.created_ms,
        meta_len: end as u64,
        meta_object: object,
        recovery,
        read_only,
        commit_point,
        head_loss_vouched_elsewhere,
    };
    Ok(Replayed {
        parts,
        partitions,
        head,
        documents: state.documents,
        merging: state.merging,
    })
}

/// The newest journal generation whose header verifies: (object name, its bytes). A newer one
/// with a bad header is a journal rewrite that never completed.
async fn choose_journal<S: Storage>(
    storage: &S,
    commit_point: Option<CommitPoint>,
) -> Result<(String, Vec<u8>)> {
    let names = storage.list().await?;
    let mut generations: Vec<u64> = names.iter().filter_map(|n| parse_meta_object(n)).collect();
    // Newest first.
    crate::order::sort_u64s(&mut generations);
    generations.reverse();
    if generations.is_empty() {
        return Err(missing_journal(&names, commit_point));
    }
    let mut first_error = None;
    for generation in generations {
        let object = meta_object(generation);
        let len = storage.len(&object).await?.unwrap_or(0);
        if len > JOURNAL_BYTES_MAX {
            return Err(Error::corrupt(
                &object,
                0,
                format!("journal of {len} bytes is implausibly large"),
            ));
        }
        let mut bytes = vec![0u8; len as usize];
        storage.read_at(&object, 0, &mut bytes).await?;
        match MetaRecord::decode(&bytes) {
            Ok((MetaRecord::Store { format_version, .. }, _))
                if format_version > FORMAT_VERSION =>
            {
                return Err(Error::UnsupportedVersion {
                    found: format_version,
                    supported: FORMAT_VERSION,
                });
            }
            Ok((MetaRecord::Store { generation: g, .. }, _)) if g == generation => {
                return Ok((object, bytes));
            }
            Ok(_) => {
                first_error.get_or_insert_with(|| {
                    Error::corrupt(&object, 0, "journal does not start with a store header")
                });
            }
            Err(e) => {
                first_error.get_or_insert_with(|| Error::corrupt(&object, e.at as u64, e.what));
            }
        }
    }
    Err(first_error.unwrap_or(Error::NotAStore))
}

/// Decodes a journal's records (groups flattened) and where the valid ones end. Damage is an
/// error unless it is the very last record (a torn append that was never acknowledged): intact
/// framing with undecodable contents, or valid records after the damage, are corruption.
fn decode_journal(object: &str, bytes: &[u8]) -> Result<(Vec<MetaRecord>, usize)> {
    let mut at = 0usize;
    let mut records = Vec::new();
    while at < bytes.len() {
        match MetaRecord::decode(&bytes[at..]) {
            Ok((MetaRecord::Group(group), len)) => {
                records.extend(group);
                at += len;
            }
            Ok((record, len)) => {
                records.push(record);
                at += len;
            }
            Err(e) => {
                if crate::format::meta::checksum_ok(&bytes[at..]) || valid_record_after(bytes, at) {
                    return Err(Error::corrupt(object, (at + e.at) as u64, e.what));
                }
                break;
            }
        }
    }
    Ok((records, at))
}

/// The journal's first record: the store's geometry and identity.
struct StoreHeader {
    format_version: u32,
    block_size: u32,
    block_count: u64,
    created_ms: u64,
    baseline_kind: u32,
    baseline_sum_crc: u32,
    store_id: u64,
}

impl StoreHeader {
    /// The header `first` holds, if it is one and its geometry is possible.
    fn check(first: Option<MetaRecord>, object: &str) -> Result<StoreHeader> {
        let Some(MetaRecord::Store {
            format_version,
            block_size,
            block_count,
            created_ms,
            baseline_kind,
            baseline_sum_crc,
            store_id,
            ..
        }) = first
        else {
            return Err(Error::corrupt(
                object,
                0,
                "journal does not start with a store header",
            ));
        };
        if !block_size.is_power_of_two()
            || !(format::BLOCK_SIZE_MIN..=format::BLOCK_SIZE_MAX).contains(&block_size)
            || block_count == 0
            || block_count.saturating_mul(u64::from(block_size)) > format::VOLUME_BYTES_MAX
            || format_version == 0
        {
            return Err(Error::corrupt(
                object,
                0,
                "store header has an impossible geometry",
            ));
        }
        if block_count > format::OPEN_BLOCK_COUNT_MAX {
            return Err(Error::LimitExceeded(format!(
                "the store has {block_count} blocks; this engine opens stores of at most {} blocks (its block index keeps 32-bit addresses)",
                format::OPEN_BLOCK_COUNT_MAX
            )));
        }
        Ok(StoreHeader {
            format_version,
            block_size,
            block_count,
            created_ms,
            baseline_kind,
            baseline_sum_crc,
            store_id,
        })
    }
}

/// The partitions as the journal's records leave them, one record at a time. Lookups by volume
/// go through a map; only a drop walks every partition (to move its children).
struct JournalState {
    /// The journal's name, for errors.
    object: String,
    /// In creation order; `None` where a partition was dropped.
    partitions: Vec<Option<JournalPartition>>,
    /// The index in `partitions` of every live partition's volume.
    live: FxHashMap<u64, usize>,
    head: Option<u64>,
    merging: Option<u64>,
    baseline_kind: u32,
    baseline_crc: u32,
    documents: Vec<(u16, String)>,
}

impl JournalState {
    fn new(object: String, baseline_kind: u32, baseline_crc: u32) -> Self {
        JournalState {
            object,
            partitions: Vec::new(),
            live: FxHashMap::default(),
            head: None,
            merging: None,
            baseline_kind,
            baseline_crc,
            documents: Vec::new(),
        }
    }

    fn corrupt(&self, what: impl Into<String>) -> Error {
        Error::corrupt(&self.object, 0, what)
    }

    fn get_mut(&mut self, volume: u64) -> Result<&mut JournalPartition> {
        match self.live.get(&volume) {
            Some(&i) => Ok(self.partitions[i]
                .as_mut()
                .expect("live partitions are kept")),
            None => Err(self.corrupt(format!("journal names unknown partition {volume}"))),
        }
    }

    /// Removes a live partition; its children grow from `to` from now on (a volume number may
    /// be used again after its partition is dropped, so they move now, not when read).
    fn remove(&mut self, volume: u64, to: u64) -> Result<JournalPartition> {
        let i = self
            .live
            .remove(&volume)
            .ok_or_else(|| self.corrupt(format!("journal names unknown partition {volume}")))?;
        let gone = self.partitions[i].take().expect("live partitions are kept");
        for p in self.partitions.iter_mut().flatten() {
            if p.parent == volume {
                p.parent = to;
            }
        }
        Ok(gone)
    }

    fn apply(&mut self, record: MetaRecord) -> Result<()> {
        match record {
            MetaRecord::Document { kind, json } => self.documents.push((kind, json)),
            MetaRecord::Store { .. } | MetaRecord::Group(_) => {
                return Err(self.corrupt("misplaced store header or group in journal"))
            }
            MetaRecord::PartitionCreated {
                volume,
                parent,
                created_ms,
                first_seq,
                segment_generation,
                flags,
            } => {
                let partition = JournalPartition {
                    volume,
                    parent,
                    created_ms,
                    first_seq,
                    segment_generation,
                    sealed: None,
                    compacted: false,
                    hidden: false,
                };
                self.created(partition, flags & CREATED_FLAG_HEAD != 0)?
            }
            MetaRecord::PartitionSealed {
                volume,
                sealed_ms,
                segment_len,
                next_seq,
                label,
            } => {
                let seal = JournalSeal {
                    sealed_ms,
                    segment_len,
                    next_seq,
                    label,
                };
                self.sealed(volume, seal)?
            }
            MetaRecord::PartitionRewritten {
                volume,
                segment_generation,
                flags,
                segment_len,
            } => {
                let p = self.get_mut(volume)?;
                let Some(sealed) = p.sealed.as_mut() else {
                    return Err(self.corrupt("rewrite of the unsealed head"));
                };
                sealed.segment_len = segment_len;
                p.segment_generation = segment_generation;
                p.compacted |= flags & REWRITTEN_FLAG_COMPACTED != 0;
            }
            MetaRecord::PartitionDropped { volume } => {
                if Some(volume) == self.head {
                    // Only as part of a rollback, whose group also names the new head.
                    self.head = None;
                }
                let parent = self.get_mut(volume)?.parent;
                self.remove(volume, parent)?;
            }
            MetaRecord::VolumeReleased { volume } => self.get_mut(volume)?.hidden = true,
            MetaRecord::MergeStarted { volume } => {
                if self.get_mut(volume)?.sealed.is_none() {
                    return Err(self.corrupt(format!("journal names unknown partition {volume}")));
                }
                self.merging = Some(volume);
            }
            MetaRecord::MergeFinished {
                volume,
                baseline_sum_crc,
            } => self.merge_finished(volume, baseline_sum_crc)?,
        }
        Ok(())
    }

    /// A partition created (`head`: as the live head), after checking it names a new volume
    /// and a known parent.
    fn created(&mut self, partition: JournalPartition, head: bool) -> Result<()> {
        let (volume, parent) = (partition.volume, partition.parent);
        let parent_known = parent == 0 || self.live.contains_key(&parent);
        if volume == 0
            || volume >= format::SEQ_MAX
            || partition.first_seq >= format::SEQ_MAX
            || !parent_known
            || self.live.contains_key(&volume)
        {
            return Err(self.corrupt(format!("bad partition {volume} (parent {parent})")));
        }
        if head {
            self.head = Some(volume);
        }
        self.live.insert(volume, self.partitions.len());
        self.partitions.push(Some(partition));
        Ok(())
    }

    /// Partition `volume` sealed; it must exist and not be sealed yet.
    fn sealed(&mut self, volume: u64, seal: JournalSeal) -> Result<()> {
        let unsealed = self
            .live
            .get(&volume)
            .and_then(|&i| self.partitions[i].as_mut().filter(|p| p.sealed.is_none()));
        let Some(p) = unsealed else {
            return Err(self.corrupt(format!("seal of unknown partition {volume}")));
        };
        p.sealed = Some(seal);
        Ok(())
    }

    /// The partition and its ancestors are now the baseline: they go, and whatever grew from
    /// them grows from the baseline.
    fn merge_finished(&mut self, volume: u64, baseline_sum_crc: u32) -> Result<()> {
        if self.merging != Some(volume) {
            return Err(self.corrupt("merge finished without a start"));
        }
        self.merging = None;
        let mut at = volume;
        while at != 0 {
            at = self.remove(at, 0)?.parent;
        }
        self.baseline_kind = BASELINE_IMAGE;
        self.baseline_crc = baseline_sum_crc;
        Ok(())
    }

    /// The live partitions in creation order, and the head's volume (which must be named, and
    /// not sealed).
    fn partitions(&mut self) -> Result<(Vec<JournalPartition>, u64)> {
        let head = self
            .head
            .ok_or_else(|| self.corrupt("journal names no head partition"))?;
        if self.get_mut(head)?.sealed.is_some() {
            return Err(self.corrupt("the head partition is sealed"));
        }
        let live = std::mem::take(&mut self.partitions).into_iter().flatten();
        Ok((live.collect(), head))
    }
}
