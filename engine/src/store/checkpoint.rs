//! Journal checkpointing: rewriting the append-only metadata journal `meta-<g>` as a new
//! generation `meta-<g+1>` that holds only what recovery needs to rebuild the current state (see
//! `format.md`, "Checkpoint the journal").
//!
//! Invariants:
//! * the new generation replays to exactly the partitions, baseline, policy, assignments, policy
//!   state and audit trail that replaying the old one gives (the in-memory state, which always
//!   follows what the journal says once an operation has finished);
//! * its body is durable before its header is written, so a journal whose header verifies is
//!   always complete: a crash before the header is durable leaves the old generation current
//!   (the new object is deleted at the next open), a crash after it leaves the new one current
//!   (the old object is deleted at the next open);
//! * nothing is checkpointed while a merge is unfinished, on a read-only or poisoned store, or
//!   while the policy executor is carrying out decisions;
//! * the automatic checkpoint runs only when the journal is over the threshold *and* more than
//!   [`JOURNAL_CHECKPOINT_RATIO`] times the size a checkpoint would have, so it never repeats
//!   itself on a state that does not shrink.

use super::*;
use crate::format::meta::REWRITTEN_FLAG_COMPACTED;

/// Default for [`Store::set_journal_checkpoint_bytes`]: 1 MiB.
pub(crate) const DEFAULT_JOURNAL_CHECKPOINT_BYTES: u64 = 1 << 20;
/// The automatic checkpoint waits until the journal is more than this many times the size of
/// the checkpoint that would replace it.
pub(crate) const JOURNAL_CHECKPOINT_RATIO: u64 = 4;

/// When the automatic checkpoint runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckpointTrigger {
    /// The journal must be larger than this.
    threshold: u64,
    /// The journal is not measured against a checkpoint again before it reaches this size.
    next_check: u64,
}

impl Default for CheckpointTrigger {
    fn default() -> Self {
        CheckpointTrigger {
            threshold: DEFAULT_JOURNAL_CHECKPOINT_BYTES,
            next_check: 0,
        }
    }
}

impl<S: Storage> Store<S> {
    /// Bytes of the metadata journal now (the `meta-…` object the store appends to).
    pub fn journal_bytes(&self) -> u64 {
        self.meta_len
    }

    /// Sets the journal size above which the store checkpoints its journal by itself after an
    /// operation (default 1 MiB); it does so only when the journal is also more than 4 times the
    /// size of the checkpoint that would replace it, so that a large state is not rewritten over
    /// and over.
    /// `u64::MAX` turns the automatic checkpoint off. Not persisted.
    pub fn set_journal_checkpoint_bytes(&mut self, bytes: u64) {
        self.checkpoint = CheckpointTrigger {
            threshold: bytes,
            next_check: 0,
        };
    }

    /// Rewrites the metadata journal as a new generation holding only the records that rebuild
    /// the store's current state, makes the store append to it, and deletes the old generation.
    /// Returns the new journal's size in bytes. Durable on return.
    ///
    /// The journal is otherwise only ever appended to (every snapshot, deletion and policy
    /// action adds a record), which makes opening slower over time; the store also does this by
    /// itself after an operation when the journal has grown large (see
    /// [`Store::set_journal_checkpoint_bytes`]). Crash-safe: after a crash the store opens with
    /// the old journal or with the new one, both describing the same state.
    ///
    /// Fails with [`Error::ReadOnly`] or [`Error::Poisoned`] on such a store, and with
    /// [`Error::InvalidArgument`] while a merge that failed part-way is unfinished (reopen the
    /// store to finish it first). Costs two durable commits.
    pub async fn checkpoint_journal(&mut self) -> Result<u64> {
        self.check_writable()?;
        if let Some(volume) = self.merging {
            return Err(Error::InvalidArgument(format!(
                "the merge of volume {volume} is unfinished; reopen the store to finish it before checkpointing the journal"
            )));
        }
        let generation = parse_meta_object(&self.meta_object)
            .and_then(|g| g.checked_add(1))
            .ok_or_else(|| Error::corrupt(&self.meta_object, 0, "bad journal generation"))?;
        let mut header = Vec::new();
        self.checkpoint_header(generation).encode(&mut header);
        let mut body = Vec::new();
        for record in self.checkpoint_records()? {
            record.encode(&mut body);
        }
        let object = meta_object(generation);
        let header_len = header.len() as u64;
        let len = header_len + body.len() as u64;
        // 1. The body, durably, behind an empty header slot: until the header is written the new
        //    generation does not verify and recovery keeps using the old one. The truncation
        //    cuts whatever an earlier, interrupted attempt may have left beyond it.
        let mut commit = Commit::new(true);
        commit
            .write(&object, header_len, body)
            .truncate(&object, len);
        self.commit(commit).await?;
        // 2. The header, durably: from here on the new generation is the journal.
        let mut commit = Commit::new(true);
        commit.write(&object, 0, header);
        self.commit(commit).await?;
        let old = std::mem::replace(&mut self.meta_object, object);
        self.meta_len = len;
        // The new generation holds the state the pending records describe.
        self.journal_pending.clear();
        self.format_version = FORMAT_VERSION;
        self.checkpoint.next_check = 0;
        // 3. The old generation goes (if this is lost, the next open deletes it).
        let mut commit = Commit::new(false);
        commit.delete(&old);
        self.commit(commit).await?;
        Ok(len)
    }

    /// Checkpoints the journal if it is over the threshold and more than
    /// [`JOURNAL_CHECKPOINT_RATIO`] times what a checkpoint would write. Called when an
    /// operation has finished; skipped while a merge is unfinished, and on read-only or
    /// poisoned stores. Returns an error only if the store is poisoned.
    pub(crate) async fn maybe_checkpoint_journal(&mut self) -> Result<()> {
        if self.read_only
            || self.poisoned
            || self.merging.is_some()
            || self.meta_len <= self.checkpoint.threshold
            || self.meta_len < self.checkpoint.next_check
        {
            return Ok(());
        }
        let Ok(records) = self.checkpoint_records() else {
            return Ok(());
        };
        let mut fresh = Vec::new();
        self.checkpoint_header(0).encode(&mut fresh);
        for record in records {
            record.encode(&mut fresh);
        }
        let limit = (fresh.len() as u64).saturating_mul(JOURNAL_CHECKPOINT_RATIO);
        if self.meta_len <= limit {
            // The state changes no faster than the journal grows: measure again only once the
            // journal could be past the ratio.
            self.checkpoint.next_check = limit.saturating_add(1);
            return Ok(());
        }
        match self.checkpoint_journal().await {
            Ok(_) => Ok(()),
            Err(e) if self.poisoned => Err(e),
            // The operation that called this is done; it must not fail for this.
            Err(_) => Ok(()),
        }
    }

    /// The store header of journal generation `generation`: the store's geometry, identity and
    /// current baseline.
    fn checkpoint_header(&self, generation: u64) -> MetaRecord {
        MetaRecord::Store {
            format_version: FORMAT_VERSION,
            block_size: self.block_size,
            block_count: self.block_count,
            created_ms: self.created_ms,
            baseline_kind: match self.baseline {
                BaselineKind::Zero => BASELINE_ZERO,
                BaselineKind::Image => BASELINE_IMAGE,
            },
            baseline_sum_crc: self.baseline_sum_crc,
            store_id: self.store_id,
            generation,
        }
    }

    /// The records after the header that rebuild the current state: per partition still there
    /// (in creation order, so parents come first) "created", "sealed", "rewritten" (compacted
    /// ones) and "released" (deleted ones); then the policy documents and the audit trail.
    fn checkpoint_records(&self) -> Result<Vec<MetaRecord>> {
        let mut records = Vec::new();
        let mut written = SlotSet::default();
        for (slot, p) in self.partitions.iter().enumerate() {
            if p.dropped {
                continue;
            }
            let slot = slot as u32;
            let is_head = slot == self.head;
            let parent = match p.parent {
                None => 0,
                Some(parent) if written.contains(parent) => {
                    self.partitions[parent as usize].volume.0
                }
                Some(_) => {
                    return Err(Error::corrupt(
                        &self.meta_object,
                        0,
                        format!("partition {} precedes its parent", p.volume),
                    ))
                }
            };
            records.push(MetaRecord::PartitionCreated {
                volume: p.volume.0,
                parent,
                created_ms: p.created_ms,
                first_seq: p.first_seq,
                segment_generation: p.generation,
                flags: if is_head { CREATED_FLAG_HEAD } else { 0 },
            });
            if !is_head {
                let Some(sealed_ms) = p.sealed_ms else {
                    return Err(Error::corrupt(
                        &self.meta_object,
                        0,
                        format!("partition {} is neither sealed nor the head", p.volume),
                    ));
                };
                records.push(MetaRecord::PartitionSealed {
                    volume: p.volume.0,
                    sealed_ms,
                    segment_len: p.segment_len,
                    next_seq: p.next_seq,
                    label: p.label.clone(),
                });
                if p.compacted {
                    records.push(MetaRecord::PartitionRewritten {
                        volume: p.volume.0,
                        segment_generation: p.generation,
                        flags: REWRITTEN_FLAG_COMPACTED,
                        segment_len: p.segment_len,
                    });
                }
            }
            if p.hidden {
                records.push(MetaRecord::VolumeReleased { volume: p.volume.0 });
            }
            written.insert(slot);
        }
        records.extend(self.documents.records());
        Ok(records)
    }
}
