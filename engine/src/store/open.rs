//! Opening a store: recovery replays the journal (`recovery.rs`), then the partitions are
//! assembled here: each sealed partition's index loaded, the head's segment scanned.

use super::recovery::{self, JournalPartition, Parts};
use super::*;
use crate::format::footer::IndexReader;
use crate::format::DecodeError;
use crate::storage::ReadRequest;

/// Sealed partitions whose tails open reads together: one `read_many` for their footers, one
/// for their index sections. The directory backend asks the kernel for a whole batch before
/// reading it (a cold open waits for the device about once per batch, not once per read);
/// memory holds at most this many index sections at once.
const SEALED_BATCH: usize = 64;

/// A sealed segment's footer, checked against its partition, and its index section's bytes.
pub(super) struct SealedTail {
    footer: footer::Footer,
    index: Vec<u8>,
}

impl<S: Storage> Store<S> {
    /// Replays the journal, assembles the store, and (unless read-only) finishes an
    /// interrupted merge and removes what no partition refers to.
    async fn recover(
        storage: S,
        clock: Rc<dyn Clock>,
        read_only: bool,
        head_loss_vouched_elsewhere: bool,
    ) -> Result<Self> {
        let replayed =
            recovery::replay(storage, clock, read_only, head_loss_vouched_elsewhere).await?;
        let mut store = Store::assemble(replayed.parts, replayed.partitions, replayed.head).await?;
        store.documents = Documents::from_journal(replayed.documents);
        store.load_branches()?;
        if read_only {
            return Ok(store);
        }
        if let Some(volume) = replayed.merging {
            store.finish_merge(VolumeId(volume), &mut |_| true).await?;
        }
        store.remove_orphans().await?;
        Ok(store)
    }

    /// Opens the store on `storage`, recovering from a crash if needed (see `format.md`). The
    /// store keeps its policy documents but does not act on them: [`crate::Managed`] does.
    pub async fn open(storage: S, clock: Rc<dyn Clock>) -> Result<Self> {
        let mut store = Self::recover(storage, clock, false, false).await?;
        store.maybe_checkpoint_journal().await?;
        Ok(store)
    }

    /// Opens the secondary of a mirror: as [`Store::open`], except that synced records of the head that the commit point vouches for but that are missing or
    /// damaged at the end of the head's segment are cut as a torn tail would be (and counted in
    /// [`RecoveryReport::head_bytes_lost`]) instead of failing the open: the mirror's legs hold
    /// those writes and give them back.
    pub(crate) async fn open_secondary(storage: S, clock: Rc<dyn Clock>) -> Result<Self> {
        let mut store = Self::recover(storage, clock, false, true).await?;
        store.maybe_checkpoint_journal().await?;
        Ok(store)
    }

    /// Opens the store on `storage` as a read-only view that writes nothing at all, so that it
    /// may sit beside a writer that is mid-compaction, mid-merge or mid-receive.
    ///
    /// Unlike [`Store::open`], recovery changes nothing: a torn journal or head-segment tail is
    /// ignored in memory only (not truncated), segments no partition refers to are left alone
    /// (they may be a writer's work in progress), and an unfinished merge is not redone: the
    /// partitions are read as they are, since the merged partitions stay intact until the merge
    /// finishes (see `format.md`); the older snapshots that merge folds in are hidden, and the
    /// baseline itself may show blocks already merged. Every change (writes, sync, snapshots,
    /// compaction, merges, policies, receiving copies) fails with [`Error::ReadOnly`], automatic
    /// policies are off, and [`Store::close`] just gives the storage back.
    pub async fn open_read_only(storage: S, clock: Rc<dyn Clock>) -> Result<Self> {
        Self::recover(storage, clock, true, false).await
    }

    /// True if the store was opened with [`Store::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }
}

impl<S: Storage> Store<S> {
    /// Builds a store from the journal's partitions (in creation order; dropped ones already
    /// removed), loading each sealed partition's index and scanning the head's segment.
    pub(crate) async fn assemble(
        parts: Parts<S>,
        journal: Vec<JournalPartition>,
        head_volume: u64,
    ) -> Result<Self> {
        let mut store = Store {
            storage: parts.storage,
            clock: parts.clock,
            block_size: parts.block_size,
            block_count: parts.block_count,
            baseline: parts.baseline,
            format_version: parts.format_version,
            store_id: parts.store_id,
            created_ms: parts.created_ms,
            meta_object: parts.meta_object,
            meta_len: parts.meta_len,
            partitions: PartitionTree::default(),
            head: 0,
            head_state: HeadState::default(),
            head_ancestry: SlotSet::default(),
            index: BlockIndex::default(),
            write_buffer_bytes: DEFAULT_WRITE_BUFFER_BYTES,
            baseline_sum_crc: parts.baseline_sum_crc,
            epoch: 0,
            documents: Documents::default(),
            branches: Default::default(),
            checkpoint: checkpoint::CheckpointTrigger::default(),
            merging: None,
            next_volume: 1,
            spare_until: 0,
            poisoned: false,
            read_only: parts.read_only,
            recovery: parts.recovery,
            commit_point: parts.commit_point,
            head_loss_vouched_elsewhere: parts.head_loss_vouched_elsewhere,
            journal_pending: Vec::new(),
        };
        let head_slot = store.build_tree(&journal, head_volume)?;
        store.load_sealed_partitions(&journal, head_slot).await?;
        store.set_head(head_slot);
        // A head whose segment records its own seal was snapshotted after the journal's last
        // record (see `seal_head_and_open_then`): the seal is redone, and its successor, the
        // new head, is scanned in turn. Bounded: each turn needs another sealed segment.
        let mut redone = Vec::new();
        while let Some(records) = store.scan_head().await? {
            redone.extend(records);
        }
        store.index.finish_load();
        store.check_invariants();
        if !redone.is_empty() && !store.read_only {
            store.journal_pending = redone;
            store.write_journal_pending().await?;
        }
        Ok(store)
    }

    /// The partition tree from the journal's partitions (in creation order); returns the head's
    /// slot.
    fn build_tree(&mut self, journal: &[JournalPartition], head_volume: u64) -> Result<u32> {
        let mut head_slot = None;
        for jp in journal {
            let parent = if jp.parent == 0 {
                None
            } else {
                let slot = self.partitions.slot(VolumeId(jp.parent));
                Some(slot.ok_or_else(|| {
                    Error::corrupt(
                        &self.meta_object,
                        0,
                        format!("partition {} has unknown parent {}", jp.volume, jp.parent),
                    )
                })?)
            };
            let slot = self.partitions.push(
                VolumeId(jp.volume),
                parent,
                jp.created_ms,
                jp.first_seq,
                jp.segment_generation,
            );
            let p = &mut self.partitions[slot as usize];
            p.compacted = jp.compacted;
            p.hidden = jp.hidden;
            self.next_volume = self.next_volume.max(jp.volume.saturating_add(1));
            if jp.volume == head_volume {
                head_slot = Some(slot);
            }
        }
        head_slot.ok_or_else(|| Error::corrupt(&self.meta_object, 0, "no live head partition"))
    }

    /// Loads every sealed partition's index, in sequence order so that every block's versions
    /// end up oldest first; every partition but the head must be sealed. The tails are read
    /// [`SEALED_BATCH`] partitions at a time, each batch in two `read_many` calls (footers, then
    /// index sections), so that the backend can fetch them concurrently, one batch ahead.
    async fn load_sealed_partitions(
        &mut self,
        journal: &[JournalPartition],
        head_slot: u32,
    ) -> Result<()> {
        let order =
            crate::order::order_by(self.partitions.len(), |s| (self.partitions[s].first_seq, 0));
        let mut sealed = Vec::with_capacity(order.len());
        for slot in order.into_iter().map(|s| s as u32) {
            let jp = &journal[slot as usize];
            match &jp.sealed {
                Some(seal) => sealed.push((slot, seal)),
                None if slot == head_slot => {}
                None => {
                    return Err(Error::corrupt(
                        &self.meta_object,
                        0,
                        format!("partition {} is neither sealed nor the head", jp.volume),
                    ))
                }
            }
        }
        let batches: Vec<Vec<(u32, u64)>> = sealed
            .chunks(SEALED_BATCH)
            .map(|batch| {
                batch
                    .iter()
                    .map(|(slot, seal)| (*slot, seal.segment_len))
                    .collect()
            })
            .collect();
        // A pipeline: the next batch's footers are read, and its index sections asked for,
        // before this batch's sections are read and decoded, so that the device fetches them
        // while this batch decodes (a cold open waits for the device, not for both in turn).
        let mut next = match batches.first() {
            Some(parts) => Some(self.read_sealed_footers(parts).await?),
            None => None,
        };
        for (k, (batch, parts)) in sealed.chunks(SEALED_BATCH).zip(&batches).enumerate() {
            let mut tails = next.take().unwrap_or_default();
            if let Some(following) = batches.get(k + 1) {
                next = Some(self.read_sealed_footers(following).await?);
            }
            self.read_index_sections(parts, &mut tails).await?;
            for ((slot, seal), tail) in batch.iter().zip(tails) {
                // Set first: a tail rebuilt from the records carries them (its seal block).
                let p = &mut self.partitions[*slot as usize];
                p.sealed_ms = Some(seal.sealed_ms);
                p.label = seal.label.clone();
                self.load_sealed_from(*slot, seal.segment_len, seal.next_seq, tail)
                    .await?;
            }
        }
        Ok(())
    }

    pub(super) fn apply_record_to_index(&mut self, slot: u32, offset: u64, meta: &RecordMeta) {
        let mut data_offset = offset + meta.header.data_offset();
        let mut block = 0usize;
        for (e, entry) in meta.entries.iter().enumerate() {
            if entry.zero {
                let at = zero_entry_offset(offset, e);
                for i in 0..u64::from(entry.blocks) {
                    self.index.load(
                        entry.addr + i,
                        Version {
                            slot,
                            crc: 0,
                            offset: at,
                        },
                    );
                }
                continue;
            }
            for i in 0..u64::from(entry.blocks) {
                self.index.load(
                    entry.addr + i,
                    Version {
                        slot,
                        crc: meta.block_crcs.get(block).copied().unwrap_or_default(),
                        offset: data_offset,
                    },
                );
                block += 1;
                data_offset += u64::from(self.block_size);
            }
        }
        let p = &mut self.partitions[slot as usize];
        p.entries += u64::from(meta.header.entry_count);
        p.records.push(RecordRef {
            offset,
            first_seq: meta.header.first_seq,
        });
        p.records_end = offset + meta.header.record_len();
        p.next_seq = meta.next_seq();
        p.blocks_written += u64::from(meta.header.block_count);
    }

    /// Checks that a record belongs where it was found.
    pub(super) fn check_record_place(
        &self,
        slot: u32,
        offset: u64,
        header: &RecordHeader,
    ) -> Result<(), &'static str> {
        let p = &self.partitions[slot as usize];
        if header.volume != p.volume.0 {
            return Err("record belongs to another partition");
        }
        if header.block_size != self.block_size {
            return Err("record block size differs from the store's");
        }
        if header.flags & RECORD_FLAG_ZERO_ENTRIES != 0 && !self.writes_zero_extents() {
            return Err("zero extents in a store whose format version predates them");
        }
        // Compaction leaves gaps in the sequence numbers; otherwise they are contiguous.
        let in_order = if p.compacted {
            header.first_seq >= p.next_seq
        } else {
            header.first_seq == p.next_seq && header.flags & RECORD_FLAG_SEQ_TABLE == 0
        };
        if !in_order {
            return Err("record sequence number out of order");
        }
        if offset != p.records_end {
            return Err("record not contiguous with the previous one");
        }
        Ok(())
    }

    pub(super) fn check_entries_in_range(&self, meta: &RecordMeta) -> Result<(), &'static str> {
        for e in &meta.entries {
            if e.addr >= self.block_count || u64::from(e.blocks) > self.block_count - e.addr {
                return Err("entry addresses blocks outside the volume");
            }
        }
        Ok(())
    }

    /// Reads and verifies a sealed segment's footer and index section.
    pub(super) async fn read_sealed_index(
        &self,
        slot: u32,
        segment_len: u64,
    ) -> Result<(footer::Footer, Vec<(u64, RecordMeta)>)> {
        let tail = self.read_sealed_tail(slot, segment_len).await??;
        if segment_len == 0 {
            return Ok((tail.footer, Vec::new()));
        }
        let object = &self.partitions[slot as usize].segment;
        let records = decode_index(&tail.footer, &tail.index)
            .map_err(|e| Error::corrupt(object, tail.footer.records_end, e.what))?;
        Ok((tail.footer, records))
    }

    /// One sealed partition's tail ([`Store::read_sealed_tails`]): the outer error is an I/O
    /// failure, the inner one a tail that cannot be used.
    async fn read_sealed_tail(&self, slot: u32, segment_len: u64) -> Result<Result<SealedTail>> {
        let mut tails = self.read_sealed_tails(&[(slot, segment_len)]).await?;
        Ok(tails.pop().unwrap_or_else(|| {
            Err(Error::corrupt(
                &self.partitions[slot as usize].segment,
                0,
                "no tail",
            ))
        }))
    }

    /// Reads the footers of the sealed segments `parts` names (slot, length from the journal),
    /// checks each against its partition, then reads the index sections of those that pass:
    /// two `read_many` calls in all. One result per part, in the order of `parts`: an `Err`
    /// is a tail that cannot be used (short, missing, damaged); I/O failures fail the call.
    async fn read_sealed_tails(&self, parts: &[(u32, u64)]) -> Result<Vec<Result<SealedTail>>> {
        let mut tails = self.read_sealed_footers(parts).await?;
        self.read_index_sections(parts, &mut tails).await?;
        Ok(tails)
    }

    /// The first half of [`Store::read_sealed_tails`]: the footers, checked; the backend is
    /// told that their index sections will be read ([`Storage::prefetch`]), so that it can
    /// fetch them while other work goes on.
    async fn read_sealed_footers(&self, parts: &[(u32, u64)]) -> Result<Vec<Result<SealedTail>>> {
        // Each footer is the last 64 bytes the journal says the segment has: a short read means
        // a short (or missing) segment, so no object's length is asked for first.
        let mut footer_bytes = vec![[0u8; FOOTER_LEN]; parts.len()];
        let mut filled = vec![0usize; parts.len()];
        let mut asked = Vec::with_capacity(parts.len());
        let mut requests: Vec<ReadRequest<'_>> = footer_bytes
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| parts[*i].1 >= FOOTER_LEN as u64)
            .map(|(i, buf)| {
                asked.push(i);
                ReadRequest {
                    object: &self.partitions[parts[i].0 as usize].segment,
                    offset: parts[i].1 - FOOTER_LEN as u64,
                    buf,
                    filled: 0,
                }
            })
            .collect();
        self.storage.read_many(&mut requests).await?;
        for (request, &i) in requests.iter().zip(&asked) {
            filled[i] = request.filled;
        }
        drop(requests);
        let mut tails = Vec::with_capacity(parts.len());
        for (i, (&(slot, segment_len), bytes)) in parts.iter().zip(&footer_bytes).enumerate() {
            let p = &self.partitions[slot as usize];
            if segment_len == 0 {
                // An empty sealed partition has no segment object (a new branch's head, see
                // `branch.rs`): no records, and its range of sequence numbers is empty.
                let footer = footer::Footer {
                    volume: p.volume.0,
                    records_end: 0,
                    index_len: 0,
                    record_count: 0,
                    next_seq: p.first_seq,
                    index_crc: 0,
                    seal_len: 0,
                    seal_crc: 0,
                };
                tails.push(Ok(SealedTail {
                    footer,
                    index: Vec::new(),
                }));
                continue;
            }
            if filled[i] < FOOTER_LEN {
                let actual_len = self.storage.len(&p.segment).await?.unwrap_or(0);
                tails.push(Err(Error::corrupt(
                    &p.segment,
                    actual_len,
                    format!("sealed segment is {actual_len} bytes, the journal says {segment_len}"),
                )));
                continue;
            }
            let footer_at = segment_len - FOOTER_LEN as u64;
            let footer = decode_footer(bytes)
                .map_err(|e| Error::corrupt(&p.segment, footer_at, e.what))
                .and_then(|f| {
                    if f.volume != p.volume.0 || f.footer_at() != Some(footer_at) {
                        return Err(Error::corrupt(
                            &p.segment,
                            footer_at,
                            "footer disagrees with the journal",
                        ));
                    }
                    Ok(f)
                });
            // The index section's buffer is made when it is read (`read_index_sections`), so
            // that a batch read ahead holds only its footers.
            tails.push(footer.map(|f| SealedTail {
                footer: f,
                index: Vec::new(),
            }));
        }
        let sections: Vec<(&str, u64, u64)> = parts
            .iter()
            .zip(&tails)
            .filter_map(|(&(slot, len), tail)| match tail {
                Ok(tail) if len != 0 => Some((
                    self.partitions[slot as usize].segment.as_str(),
                    tail.footer.records_end,
                    tail.footer.index_len,
                )),
                _ => None,
            })
            .collect();
        self.storage.prefetch(&sections);
        Ok(tails)
    }

    /// The second half of [`Store::read_sealed_tails`]: the index sections of the usable
    /// `tails` of `parts`, in one `read_many`.
    async fn read_index_sections(
        &self,
        parts: &[(u32, u64)],
        tails: &mut [Result<SealedTail>],
    ) -> Result<()> {
        let mut requests: Vec<ReadRequest<'_>> = parts
            .iter()
            .zip(tails.iter_mut())
            .filter_map(|(&(slot, len), tail)| match tail {
                Ok(tail) if len != 0 => {
                    // Bounded by the object's real length: the footer was read whole at its
                    // end, and its sections end where it begins.
                    tail.index = vec![0u8; tail.footer.index_len as usize];
                    Some(ReadRequest {
                        object: &self.partitions[slot as usize].segment,
                        offset: tail.footer.records_end,
                        buf: &mut tail.index,
                        filled: 0,
                    })
                }
                _ => None,
            })
            .collect();
        Ok(self.storage.read_many(&mut requests).await?)
    }

    pub(super) async fn load_sealed(
        &mut self,
        slot: u32,
        segment_len: u64,
        next_seq: u64,
    ) -> Result<()> {
        let tail = self.read_sealed_tail(slot, segment_len).await?;
        self.load_sealed_from(slot, segment_len, next_seq, tail)
            .await
    }

    /// Indexes a sealed partition from its tail or, when the tail cannot be used (a crash lost
    /// it: a snapshot after a sync writes it without a flush; or it is damaged), from its
    /// records ([`Store::rebuild_sealed_tail`]).
    async fn load_sealed_from(
        &mut self,
        slot: u32,
        segment_len: u64,
        next_seq: u64,
        tail: Result<SealedTail>,
    ) -> Result<()> {
        let tail = match tail {
            Ok(tail) => tail,
            Err(unusable) => {
                return self
                    .rebuild_sealed_tail(slot, segment_len, next_seq, unusable)
                    .await
            }
        };
        match self.check_sealed_tail(slot, segment_len, next_seq, &tail) {
            Ok(reader) => self.apply_sealed_tail(slot, segment_len, next_seq, &tail.footer, reader),
            Err(unusable) => {
                self.rebuild_sealed_tail(slot, segment_len, next_seq, unusable)
                    .await
            }
        }
    }

    /// Checks what can be checked of a tail before anything is indexed from it: the footer's
    /// next sequence number, the index section's length, checksum and record count. Returns
    /// the reader of its records (none for a partition without a segment).
    fn check_sealed_tail<'t>(
        &self,
        slot: u32,
        segment_len: u64,
        next_seq: u64,
        tail: &'t SealedTail,
    ) -> Result<Option<IndexReader<'t>>> {
        let object = &self.partitions[slot as usize].segment;
        let f = &tail.footer;
        if f.next_seq != next_seq {
            return Err(Error::corrupt(
                object,
                segment_len.saturating_sub(FOOTER_LEN as u64),
                "footer disagrees with the journal",
            ));
        }
        if segment_len == 0 {
            return Ok(None);
        }
        IndexReader::new(f, &tail.index)
            .map(Some)
            .map_err(|e| Error::corrupt(object, f.records_end, e.what))
    }

    /// Indexes a sealed partition from the records of its checked tail, checking each one's
    /// place and entries.
    fn apply_sealed_tail(
        &mut self,
        slot: u32,
        segment_len: u64,
        next_seq: u64,
        f: &footer::Footer,
        reader: Option<IndexReader<'_>>,
    ) -> Result<()> {
        let object = self.partitions[slot as usize].segment.clone();
        if let Some(mut reader) = reader {
            let corrupt = |e: DecodeError| Error::corrupt(&object, f.records_end, e.what);
            self.partitions[slot as usize]
                .records
                .reserve(reader.capacity());
            // One `RecordMeta` for every record: no allocation per record.
            let mut meta = RecordMeta::default();
            while let Some(offset) = reader.next_into(&mut meta).map_err(corrupt)? {
                self.check_record_place(slot, offset, &meta.header)
                    .and_then(|()| self.check_entries_in_range(&meta))
                    .map_err(|what| Error::corrupt(&object, offset, what))?;
                self.apply_record_to_index(slot, offset, &meta);
            }
        }
        self.finish_sealed(slot, segment_len, next_seq, f.records_end)
            .map_err(|what| Error::corrupt(&object, f.records_end, what))
    }

    /// Checks that the records indexed for `slot` end at `records_end` and reach the journal's
    /// next sequence number, and settles the partition's lengths.
    fn finish_sealed(
        &mut self,
        slot: u32,
        segment_len: u64,
        next_seq: u64,
        records_end: u64,
    ) -> Result<(), &'static str> {
        let p = &mut self.partitions[slot as usize];
        let seq_ok = p.next_seq == next_seq || (p.compacted && p.next_seq <= next_seq);
        if p.records_end != records_end || !seq_ok {
            return Err("index does not cover the records");
        }
        p.next_seq = next_seq;
        p.segment_len = segment_len;
        // A sealed partition's list never grows again.
        p.records.shrink_to_fit();
        Ok(())
    }

    /// Rebuilds a sealed partition's index and footer from its records, when its tail cannot
    /// be used. The records must all verify and end exactly where the journal's seal says the
    /// tail starts (the seal's segment length less the rebuilt tail's, and its next sequence
    /// number): then the partition is exactly what was sealed, and the tail is written again
    /// (unless read-only) and counted in [`RecoveryReport::sealed_tails_rebuilt`]. Otherwise
    /// `unusable` (why the tail was refused) is the error: records are missing or damaged.
    async fn rebuild_sealed_tail(
        &mut self,
        slot: u32,
        segment_len: u64,
        next_seq: u64,
        unusable: Error,
    ) -> Result<()> {
        let object = self.partitions[slot as usize].segment.clone();
        // A missing object reads as empty: a partition sealed with no records may have lost
        // its only write, the tail; with records, the length check below fails.
        let end = self.storage.len(&object).await?.unwrap_or(0);
        let mut index = Vec::new();
        footer::begin_index(&mut index);
        let (records_end, _) = self
            .scan_records(slot, &object, end.min(segment_len), &mut index)
            .await?;
        let p = &self.partitions[slot as usize];
        let rebuild = |seal: Option<&footer::Seal>| {
            footer::finish_index_and_footer(
                p.volume.0,
                records_end,
                next_seq,
                p.records.len() as u64,
                &index,
                seal,
            )
        };
        let mut tail = rebuild(None);
        if records_end.checked_add(tail.len() as u64) != Some(segment_len) {
            // A tail written with a seal block (a snapshot with unsynced writes) is rebuilt
            // with one: the journal's seal, and the head created from it if it is still here
            // (its volume is only informative once the journal holds the seal).
            if let Some(sealed_ms) = p.sealed_ms {
                let successor = self
                    .partitions
                    .iter()
                    .find(|c| c.parent == Some(slot) && c.first_seq == next_seq)
                    .map_or(0, |c| c.volume.0);
                tail = rebuild(Some(&footer::Seal {
                    sealed_ms,
                    successor,
                    label: p.label.clone(),
                }));
            }
        }
        if records_end.checked_add(tail.len() as u64) != Some(segment_len)
            || self
                .finish_sealed(slot, segment_len, next_seq, records_end)
                .is_err()
        {
            return Err(unusable);
        }
        self.recovery.sealed_tails_rebuilt += 1;
        if !self.read_only {
            let mut commit = Commit::new(true);
            commit.write(&object, records_end, tail);
            self.commit(commit).await?;
        }
        Ok(())
    }

    /// Reads and fully verifies the record at `offset` of a segment ending at `end`.
    pub(super) async fn verify_record_at(
        &self,
        object: &str,
        offset: u64,
        end: u64,
    ) -> Option<(RecordMeta, u64)> {
        if end.saturating_sub(offset) < RECORD_HEADER_LEN as u64 {
            return None;
        }
        let mut header_bytes = [0u8; RECORD_HEADER_LEN];
        self.storage
            .read_at(object, offset, &mut header_bytes)
            .await
            .ok()?;
        let header = decode_header(&header_bytes).ok()?;
        let len = header.record_len();
        if offset.checked_add(len)? > end {
            return None;
        }
        // Checksum of header and tables first: only then is the data worth reading.
        let mut tables = vec![0u8; header.tables_len()];
        self.storage
            .read_at(object, offset + RECORD_HEADER_LEN as u64, &mut tables)
            .await
            .ok()?;
        let meta = decode_tables(&header_bytes, &tables).ok()?;
        let mut data = vec![0u8; (len - header.data_offset()) as usize];
        self.storage
            .read_at(object, offset + header.data_offset(), &mut data)
            .await
            .ok()?;
        verify_data(&meta, &data).ok()?;
        Some((meta, len))
    }

    /// Replays the head's segment, verifying every record; cuts a torn tail and reports damage
    /// below a completed sync. If what follows the records is the tail of a seal (a snapshot
    /// the journal has not recorded yet), redoes the seal instead: the head is sealed, its
    /// successor becomes the head, and the journal records to append are returned.
    pub(super) async fn scan_head(&mut self) -> Result<Option<[MetaRecord; 2]>> {
        let slot = self.head;
        let object = self.partitions[slot as usize].segment.clone();
        let len = self.storage.len(&object).await?;
        let end = len.unwrap_or(0);
        let mut index = std::mem::take(&mut self.head_state.index);
        let scanned = self.scan_records(slot, &object, end, &mut index).await;
        self.head_state.index = index;
        let (offset, mut durable_claim) = scanned?;
        self.check_head_claim(slot, &object, offset, len.is_some())?;
        if offset < end {
            // A footer with a seal block at the segment's end (read once for both checks).
            let sealed = self.seal_footer(slot, &object, end).await?;
            if let Some(f) = &sealed {
                if let Some(seal) = self.seal_in_tail(slot, &object, offset, end, f).await? {
                    return self.redo_seal(slot, end, seal).map(Some);
                }
            }
            // Something after `offset` does not verify. A torn tail if nothing later claims that
            // a sync (or a snapshot) covered it; damage otherwise.
            durable_claim =
                durable_claim.max(self.later_sync_claim(slot, &object, offset, end).await?);
            if let Some(f) = &sealed {
                durable_claim = durable_claim.max(self.later_seal_claim(&object, f).await?);
            }
            if durable_claim > offset {
                return Err(Error::corrupt(
                    &object,
                    offset,
                    format!("a damaged record lies below the synced length {durable_claim}"),
                ));
            }
            self.recovery.head_bytes_truncated = end - offset;
            // A read-only view leaves the tail to the writer; it reads only up to `offset`.
            if !self.read_only {
                let mut commit = Commit::new(true);
                commit.truncate(&object, offset);
                self.commit(commit).await?;
            }
        }
        let p = &mut self.partitions[slot as usize];
        p.segment_len = p.records_end;
        self.head_state.flushed = p.records_end;
        self.head_state.durable = p.records_end;
        Ok(None)
    }

    /// The footer at the end of head `slot`'s segment (which ends at `end`), if it verifies,
    /// names this partition, lies where its lengths say and has a seal block of a possible
    /// length: the only footer a head's segment can hold (a snapshot the journal has not
    /// recorded yet, or one torn by a crash). Its seal block is not read here.
    async fn seal_footer(
        &self,
        slot: u32,
        object: &str,
        end: u64,
    ) -> Result<Option<footer::Footer>> {
        if end < FOOTER_LEN as u64 {
            return Ok(None);
        }
        let mut footer_bytes = [0u8; FOOTER_LEN];
        let filled = self
            .storage
            .read_at(object, end - FOOTER_LEN as u64, &mut footer_bytes)
            .await?;
        let Ok(f) = decode_footer(&footer_bytes[..filled]) else {
            return Ok(None);
        };
        let usable = f.seal_len != 0
            && f.seal_len as usize <= footer::SEAL_LABEL_OFFSET + LABEL_BYTES_MAX
            && f.volume == self.partitions[slot as usize].volume.0
            && f.footer_at() == Some(end - FOOTER_LEN as u64);
        Ok(usable.then_some(f))
    }

    /// The seal that head `slot`'s segment records after its records (which end at `offset`;
    /// the segment at `end`, with footer `f` from [`Store::seal_footer`]), if the whole tail is
    /// exactly the one a snapshot of these records writes: index section and seal block
    /// verify, and the tail rebuilt from the scanned records and that seal is the same bytes.
    /// Anything less (a crash tore the snapshot's write, which was then never acknowledged) is
    /// `None`: a torn tail.
    async fn seal_in_tail(
        &self,
        slot: u32,
        object: &str,
        offset: u64,
        end: u64,
        f: &footer::Footer,
    ) -> Result<Option<footer::Seal>> {
        let p = &self.partitions[slot as usize];
        let index = &self.head_state.index;
        // Checked before anything more is read: the tail's length is then bounded by the
        // index this scan built and the largest seal block.
        if f.records_end != offset || f.index_len != index.len() as u64 {
            return Ok(None);
        }
        let mut tail = vec![0u8; (end - offset) as usize];
        if self.storage.read_at(object, offset, &mut tail).await? < tail.len() {
            return Ok(None);
        }
        let seal_bytes = &tail[index.len()..index.len() + f.seal_len as usize];
        let Ok(seal) = footer::decode_seal(f, seal_bytes) else {
            return Ok(None);
        };
        let expected = footer::finish_index_and_footer(
            p.volume.0,
            offset,
            p.next_seq,
            p.records.len() as u64,
            index,
            Some(&seal),
        );
        Ok((expected == tail).then_some(seal))
    }

    /// Where the records of a head end according to the seal its segment records (footer `f`
    /// from [`Store::seal_footer`]), if that snapshot certainly returned: its new head holds a
    /// valid record, written only after it did (0 otherwise). Damage below it is then damage
    /// to acknowledged writes, not a torn snapshot.
    async fn later_seal_claim(&self, object: &str, f: &footer::Footer) -> Result<u64> {
        let Some(seal_at) = f.records_end.checked_add(f.index_len) else {
            return Ok(0);
        };
        let mut seal_bytes = vec![0u8; f.seal_len as usize];
        if self
            .storage
            .read_at(object, seal_at, &mut seal_bytes)
            .await?
            < seal_bytes.len()
        {
            return Ok(0);
        }
        let Ok(seal) = footer::decode_seal(f, &seal_bytes) else {
            return Ok(0);
        };
        let successor = segment_object(seal.successor, 0);
        let successor_end = self.storage.len(&successor).await?.unwrap_or(0);
        let written = self
            .verify_record_at(&successor, 0, successor_end)
            .await
            .is_some_and(|(meta, _)| meta.header.volume == seal.successor);
        Ok(if written { f.records_end } else { 0 })
    }

    /// Redoes the seal of head `slot` (its segment ends at `end`) that its segment records:
    /// the head becomes a snapshot as `seal` says, and the successor partition it names is
    /// the new head. Returns the journal records of both. A successor that is already a
    /// partition is corruption: a seal is journaled before any later partition is.
    fn redo_seal(&mut self, slot: u32, end: u64, seal: footer::Seal) -> Result<[MetaRecord; 2]> {
        let successor = VolumeId(seal.successor);
        let p = &self.partitions[slot as usize];
        if seal.successor == 0
            || seal.successor > crate::format::SEQ_MAX
            || self.partitions.slot(successor).is_some()
        {
            return Err(Error::corrupt(
                &p.segment,
                end - FOOTER_LEN as u64,
                format!(
                    "the segment's seal names volume {} as the new head, which cannot be one",
                    seal.successor
                ),
            ));
        }
        let (volume, next_seq) = (p.volume, p.next_seq);
        let p = &mut self.partitions[slot as usize];
        p.sealed_ms = Some(seal.sealed_ms);
        p.segment_len = end;
        p.label = seal.label.clone();
        p.records.shrink_to_fit();
        self.next_volume = self.next_volume.max(seal.successor + 1);
        let new_slot = self
            .partitions
            .push(successor, Some(slot), seal.sealed_ms, next_seq, 0);
        self.set_head(new_slot);
        self.recovery.seals_redone += 1;
        Ok([
            MetaRecord::PartitionSealed {
                volume: volume.0,
                sealed_ms: seal.sealed_ms,
                segment_len: end,
                next_seq,
                label: seal.label,
            },
            MetaRecord::PartitionCreated {
                volume: successor.0,
                parent: volume.0,
                created_ms: seal.sealed_ms,
                first_seq: next_seq,
                segment_generation: 0,
                flags: CREATED_FLAG_HEAD,
            },
        ])
    }

    /// Reads a segment record by record (a window at a time) while each verifies and lies where
    /// it should, indexing each and appending it to `index` (an index section being built);
    /// returns where the valid records end and the largest synced length they claim.
    async fn scan_records(
        &mut self,
        slot: u32,
        object: &str,
        end: u64,
        index: &mut Vec<u8>,
    ) -> Result<(u64, u64)> {
        let mut window: Vec<u8> = Vec::new();
        let mut window_start = 0u64;
        let mut offset = 0u64;
        let mut durable_claim = 0u64;
        loop {
            if offset >= end {
                break;
            }
            // Make sure the window holds the header, then the whole record.
            let mut need = RECORD_HEADER_LEN as u64;
            let mut parsed = None;
            for _ in 0..2 {
                let have = (window_start + window.len() as u64).saturating_sub(offset);
                if offset < window_start || have < need {
                    let len = need.max(SCAN_WINDOW_BYTES).min(end - offset);
                    window = vec![0u8; len as usize];
                    self.storage.read_at(object, offset, &mut window).await?;
                    window_start = offset;
                }
                let at = (offset - window_start) as usize;
                let Some(header_bytes) = window.get(at..at + RECORD_HEADER_LEN) else {
                    break;
                };
                let Ok(header) = decode_header(header_bytes) else {
                    break;
                };
                let len = header.record_len();
                if offset + len > end {
                    break;
                }
                if (window_start + window.len() as u64) < offset + len {
                    need = len;
                    continue;
                }
                let record = &window[at..at + len as usize];
                let (head_bytes, rest) = record.split_at(RECORD_HEADER_LEN);
                let (tables, data) = rest.split_at(header.tables_len());
                if let Ok(meta) = decode_tables(head_bytes, tables) {
                    if verify_data(&meta, data).is_ok()
                        && self.check_record_place(slot, offset, &meta.header).is_ok()
                        && self.check_entries_in_range(&meta).is_ok()
                    {
                        parsed = Some((meta, len, head_bytes.to_vec(), tables.to_vec()));
                    }
                }
                break;
            }
            let Some((meta, len, head_bytes, tables)) = parsed else {
                break;
            };
            durable_claim = durable_claim.max(meta.header.durable_offset);
            index.extend_from_slice(&offset.to_le_bytes());
            index.extend_from_slice(&head_bytes);
            index.extend_from_slice(&tables);
            self.apply_record_to_index(slot, offset, &meta);
            offset += len;
        }
        Ok((offset, durable_claim))
    }

    /// The commit point vouches for the synced length it saw (if this volume is still the
    /// head): records ending below it are acknowledged writes lost, reported (or, for a mirror's
    /// secondary, counted).
    fn check_head_claim(
        &mut self,
        slot: u32,
        object: &str,
        offset: u64,
        exists: bool,
    ) -> Result<()> {
        if let Some(point) = self
            .commit_point
            .filter(|p| p.head_volume == self.partitions[slot as usize].volume.0)
        {
            if offset < point.head_len && self.head_loss_vouched_elsewhere {
                self.recovery.head_bytes_lost = point.head_len - offset;
            } else if offset < point.head_len {
                let what = if exists {
                    format!(
                        "the head's records end at byte {offset}, but syncs up to byte {} were acknowledged (commit point): acknowledged writes are missing or damaged",
                        point.head_len
                    )
                } else {
                    format!(
                        "the head's segment is missing, but syncs up to byte {} of it were acknowledged (commit point)",
                        point.head_len
                    )
                };
                return Err(Error::corrupt(object, offset, what));
            }
        }
        Ok(())
    }

    /// The largest synced length claimed by a valid record of this head found after `offset`
    /// (0 if none): such a record means the damage at `offset` lies below an acknowledged sync.
    async fn later_sync_claim(
        &self,
        slot: u32,
        object: &str,
        offset: u64,
        end: u64,
    ) -> Result<u64> {
        let mut durable_claim = 0u64;
        let mut candidate = offset + 1;
        let mut probe = vec![0u8; SCAN_WINDOW_BYTES as usize];
        while candidate + RECORD_HEADER_LEN as u64 <= end {
            let n = self.storage.read_at(object, candidate, &mut probe).await?;
            let magic = RECORD_MAGIC.to_le_bytes();
            let mut found = None;
            for (i, w) in probe[..n].windows(4).enumerate() {
                if w != magic {
                    continue;
                }
                // Only a record claiming that a sync covered `offset` changes the verdict;
                // look at its header before reading anything more.
                let Some(Ok(header)) = probe.get(i..i + RECORD_HEADER_LEN).map(decode_header)
                else {
                    continue;
                };
                if header.volume != self.partitions[slot as usize].volume.0
                    || header.durable_offset <= offset
                {
                    continue;
                }
                let at = candidate + i as u64;
                if let Some((meta, _)) = self.verify_record_at(object, at, end).await {
                    found = Some(meta.header.durable_offset);
                    durable_claim = durable_claim.max(meta.header.durable_offset);
                    break;
                }
            }
            if found.is_some() || n < probe.len() {
                break;
            }
            candidate += (n - 3) as u64;
        }
        Ok(durable_claim)
    }
}
