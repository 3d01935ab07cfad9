//! Opening a store: choose the journal, replay it, check the baseline, load every sealed
//! partition's index and scan the head's segment (see `format.md`, "Recovery").
//!
//! Invariants checked here (anything else wrong is reported as corruption, never dropped):
//! * the first journal record is the store header and names the journal's own generation;
//! * a damaged journal record is acceptable only as the very last thing in the journal (a torn
//!   append that was never acknowledged);
//! * every partition's parent exists and was created before it; exactly one partition is the head.

use std::rc::Rc;

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

/// With `read_only`, nothing is written: torn tails are ignored in memory, an unfinished merge
/// is left unfinished (its partitions are still intact) and orphans are kept.
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

/// With `head_loss_vouched_elsewhere` (a mirror's secondary), synced head records the commit
/// point vouches for are cut like a torn tail when missing, and counted, instead of failing.
pub(crate) async fn replay<S: Storage>(
    mut storage: S,
    clock: Rc<dyn Clock>,
    read_only: bool,
    head_loss_vouched_elsewhere: bool,
) -> Result<Replayed<S>> {
    // The commit point first: read before the journal, it can only vouch for less than a writer
    // beside a read-only view has made durable since.
    let commit_point = read_commit_point(&storage).await?;
    let names = storage.list().await?;
    let mut generations: Vec<u64> = names.iter().filter_map(|n| parse_meta_object(n)).collect();
    // Newest first.
    crate::order::sort_u64s(&mut generations);
    generations.reverse();
    if generations.is_empty() {
        return Err(missing_journal(&names, commit_point));
    }
    // The newest generation whose header verifies wins; a newer one with a bad header is a
    // journal rewrite that never completed.
    let mut chosen = None;
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
                chosen = Some((object, bytes));
                break;
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
    let Some((object, bytes)) = chosen else {
        return Err(first_error.unwrap_or(Error::NotAStore));
    };

    let mut recovery = RecoveryReport::default();
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
                // Intact framing but undecodable contents, or damage with valid records after
                // it: reported. Only a damaged last record is a torn append.
                if crate::format::meta::checksum_ok(&bytes[at..]) || valid_record_after(&bytes, at)
                {
                    return Err(Error::corrupt(&object, (at + e.at) as u64, e.what));
                }
                break;
            }
        }
    }
    check_journal_claim(commit_point, &object, at as u64)?;
    if at < bytes.len() && read_only {
        recovery.journal_bytes_truncated = (bytes.len() - at) as u64;
    } else if at < bytes.len() {
        recovery.journal_bytes_truncated = (bytes.len() - at) as u64;
        let mut commit = Commit::new(true);
        commit.truncate(&object, at as u64);
        storage.commit(commit).await?;
    }

    let mut records = records.into_iter();
    let Some(MetaRecord::Store {
        format_version,
        block_size,
        block_count,
        created_ms,
        baseline_kind,
        baseline_sum_crc,
        store_id,
        ..
    }) = records.next()
    else {
        return Err(Error::corrupt(
            &object,
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
            &object,
            0,
            "store header has an impossible geometry",
        ));
    }

    let mut partitions: Vec<JournalPartition> = Vec::new();
    let mut head = None;
    let mut baseline_kind = baseline_kind;
    let mut baseline_sum_crc = baseline_sum_crc;
    let mut merging = None;
    let mut documents = Vec::new();
    let unknown = |volume: u64| {
        Error::corrupt(
            &object,
            0,
            format!("journal names unknown partition {volume}"),
        )
    };
    for record in records {
        match record {
            MetaRecord::Document { kind, json } => documents.push((kind, json)),
            MetaRecord::Store { .. } | MetaRecord::Group(_) => {
                return Err(Error::corrupt(
                    &object,
                    0,
                    "misplaced store header or group in journal",
                ))
            }
            MetaRecord::PartitionCreated {
                volume,
                parent,
                created_ms,
                first_seq,
                segment_generation,
                flags,
            } => {
                let parent_known = parent == 0 || partitions.iter().any(|p| p.volume == parent);
                if volume == 0
                    || volume >= format::SEQ_MAX
                    || first_seq >= format::SEQ_MAX
                    || !parent_known
                    || partitions.iter().any(|p| p.volume == volume)
                {
                    return Err(Error::corrupt(
                        &object,
                        0,
                        format!("bad partition {volume} (parent {parent})"),
                    ));
                }
                if flags & CREATED_FLAG_HEAD != 0 {
                    head = Some(volume);
                }
                partitions.push(JournalPartition {
                    volume,
                    parent,
                    created_ms,
                    first_seq,
                    segment_generation,
                    sealed: None,
                    compacted: false,
                    hidden: false,
                });
            }
            MetaRecord::PartitionSealed {
                volume,
                sealed_ms,
                segment_len,
                next_seq,
                label,
            } => {
                let p = partitions
                    .iter_mut()
                    .find(|p| p.volume == volume && p.sealed.is_none())
                    .ok_or_else(|| {
                        Error::corrupt(&object, 0, format!("seal of unknown partition {volume}"))
                    })?;
                p.sealed = Some(JournalSeal {
                    sealed_ms,
                    segment_len,
                    next_seq,
                    label,
                });
            }
            MetaRecord::PartitionRewritten {
                volume,
                segment_generation,
                flags,
                segment_len,
            } => {
                let p = partitions
                    .iter_mut()
                    .find(|p| p.volume == volume)
                    .ok_or_else(|| unknown(volume))?;
                let Some(sealed) = p.sealed.as_mut() else {
                    return Err(Error::corrupt(&object, 0, "rewrite of the unsealed head"));
                };
                sealed.segment_len = segment_len;
                p.segment_generation = segment_generation;
                p.compacted |= flags & REWRITTEN_FLAG_COMPACTED != 0;
            }
            MetaRecord::PartitionDropped { volume } => {
                let index = partitions
                    .iter()
                    .position(|p| p.volume == volume)
                    .ok_or_else(|| unknown(volume))?;
                if Some(volume) == head {
                    // Only as part of a rollback, whose group also names the new head.
                    head = None;
                }
                let dropped = partitions.remove(index);
                for p in partitions.iter_mut().filter(|p| p.parent == volume) {
                    p.parent = dropped.parent;
                }
            }
            MetaRecord::VolumeReleased { volume } => {
                let p = partitions
                    .iter_mut()
                    .find(|p| p.volume == volume)
                    .ok_or_else(|| unknown(volume))?;
                p.hidden = true;
            }
            MetaRecord::MergeStarted { volume } => {
                if !partitions
                    .iter()
                    .any(|p| p.volume == volume && p.sealed.is_some())
                {
                    return Err(unknown(volume));
                }
                merging = Some(volume);
            }
            MetaRecord::MergeFinished {
                volume,
                baseline_sum_crc: crc,
            } => {
                if merging != Some(volume) {
                    return Err(Error::corrupt(&object, 0, "merge finished without a start"));
                }
                merging = None;
                // The partition and its ancestors are now the baseline: they go, and the
                // partition's children grow from the baseline.
                let mut at = volume;
                while at != 0 {
                    let index = partitions
                        .iter()
                        .position(|p| p.volume == at)
                        .ok_or_else(|| unknown(at))?;
                    let gone = partitions.remove(index);
                    for p in partitions.iter_mut().filter(|p| p.parent == at) {
                        p.parent = 0;
                    }
                    at = gone.parent;
                }
                baseline_kind = BASELINE_IMAGE;
                baseline_sum_crc = crc;
            }
        }
    }
    if let Some(point) = commit_point.filter(|p| p.store_id != store_id) {
        return Err(Error::corrupt(
            COMMIT_OBJECT,
            0,
            format!(
                "the commit point belongs to store {:016x}, not to this store ({store_id:016x})",
                point.store_id
            ),
        ));
    }
    let head = head.ok_or_else(|| Error::corrupt(&object, 0, "journal names no head partition"))?;
    if partitions
        .iter()
        .any(|p| p.volume == head && p.sealed.is_some())
    {
        return Err(Error::corrupt(&object, 0, "the head partition is sealed"));
    }

    let baseline = match baseline_kind {
        BASELINE_ZERO => BaselineKind::Zero,
        BASELINE_IMAGE => {
            check_baseline(&storage, block_size, block_count, baseline_sum_crc, merging).await?;
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

    if let (true, Some(volume)) = (read_only, merging) {
        hide_merging_ancestors(&mut partitions, volume);
    }
    let parts = Parts {
        storage,
        clock,
        block_size,
        block_count,
        baseline,
        format_version,
        baseline_sum_crc,
        store_id,
        created_ms,
        meta_len: at as u64,
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
        documents,
        merging,
    })
}
