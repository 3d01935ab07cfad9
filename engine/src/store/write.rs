//! Writes into the head, syncs, the journal's appends, and snapshots (sealing the head).

use super::*;

/// State only the live head has.
#[derive(Debug, Default)]
pub(super) struct HeadState {
    /// Records not yet handed to storage, starting at `flushed`.
    pub pending: Vec<u8>,
    pub flushed: u64,
    pub durable: u64,
    /// The index section body being built for sealing (see `format::footer::begin_index`).
    pub index: Vec<u8>,
}

impl<S: Storage> Store<S> {
    // ----- writes ----------------------------------------------------------------------------

    pub(super) fn check_range(&self, addr: u64, blocks: u64) -> Result<()> {
        if blocks == 0 || addr >= self.block_count || blocks > self.block_count - addr {
            return Err(Error::BlockOutOfRange {
                addr,
                blocks,
                block_count: self.block_count,
            });
        }
        Ok(())
    }

    /// Fails with [`Error::ReadOnly`] on a read-only view and [`Error::Poisoned`] once a
    /// storage commit has failed.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        Ok(())
    }

    /// Appends one entry: `data` (whole blocks) written from block `addr`. Returns its sequence
    /// number. Durable once a later [`Store::sync`] returns. (A store acts on no policy: a
    /// [`crate::Managed`] store carries out the threshold rules a write makes due.)
    pub async fn write(&mut self, addr: u64, data: &[u8]) -> Result<u64> {
        self.write_batch(&[(addr, data)]).await
    }

    /// Appends several entries as one atomic record: after a crash either all of them or none is
    /// there. Returns the first entry's sequence number; the others follow in order. An entry
    /// whose data is all zeros is kept as a zero extent (16 bytes of metadata, no data) in
    /// stores of format version 3 and later.
    pub async fn write_batch(&mut self, writes: &[(u64, &[u8])]) -> Result<u64> {
        self.check_writable()?;
        if writes.is_empty() {
            return Err(Error::InvalidArgument(
                "a batch needs at least one write".into(),
            ));
        }
        let block_size = self.block_size as usize;
        let mut total_blocks: u64 = 0;
        for (addr, data) in writes {
            if data.is_empty() || data.len() % block_size != 0 {
                return Err(Error::NotWholeBlocks {
                    len: data.len(),
                    block_size: self.block_size,
                });
            }
            let blocks = (data.len() / block_size) as u64;
            self.check_range(*addr, blocks)?;
            total_blocks += blocks;
        }
        let max_blocks = self.record_blocks_max();
        if total_blocks > max_blocks || writes.len() as u64 > max_blocks {
            return Err(Error::BatchTooLarge {
                blocks: total_blocks,
                max: max_blocks,
            });
        }
        let zero_extents = self.writes_zero_extents();
        let payloads: Vec<(u64, Payload<'_>)> = writes
            .iter()
            .map(|&(addr, data)| {
                if zero_extents && data.iter().all(|&b| b == 0) {
                    (addr, Payload::Zero((data.len() / block_size) as u32))
                } else {
                    (addr, Payload::Data(data))
                }
            })
            .collect();
        let seq = self.append_record(&payloads)?;
        if self.head_state.pending.len() >= self.write_buffer_bytes {
            self.flush(false).await?;
        }
        self.operation_done().await?;
        Ok(seq)
    }

    /// Most blocks (and entries) one record may hold in this store.
    fn record_blocks_max(&self) -> u64 {
        u64::from(RECORD_BLOCKS_MAX).min(RECORD_DATA_BYTES_MAX / u64::from(self.block_size))
    }

    /// Whether this store records zero blocks as zero extents: its format version (3 and later)
    /// says its readers understand them.
    pub(crate) fn writes_zero_extents(&self) -> bool {
        self.format_version >= 3
    }

    /// Makes `blocks` blocks from `addr` read as zeros in the head: trim, discard and
    /// write-zeroes are all this. Only blocks that do not already read as zeros are recorded,
    /// as zero extents (16 bytes each, however long; stores of format version 2 write blocks
    /// of zeros instead), so trimming a range frees what the log would spend on it once
    /// compaction or a merge drops the data it hides. Returns the number of blocks recorded.
    /// Durable once a later [`Store::sync`] returns; the range may be recorded in several
    /// records, each atomic, so a crash before the sync can leave a part of it zeroed.
    pub async fn write_zeroes(&mut self, addr: u64, blocks: u64) -> Result<u64> {
        let runs = self.write_zeroes_runs(addr, blocks).await?;
        Ok(runs.iter().map(|&(_, n)| n).sum())
    }

    /// [`Store::write_zeroes`], returning the runs (first block, length) it recorded.
    pub(crate) async fn write_zeroes_runs(
        &mut self,
        addr: u64,
        blocks: u64,
    ) -> Result<Vec<(u64, u64)>> {
        self.check_writable()?;
        self.check_range(addr, blocks)?;
        let runs = self.nonzero_runs(addr, blocks).await?;
        let recorded: u64 = runs.iter().map(|&(_, n)| n).sum();
        if self.writes_zero_extents() {
            let max_entries = self.record_blocks_max() as usize;
            let mut entries: Vec<(u64, Payload<'_>)> = Vec::new();
            for &(start, n) in &runs {
                let mut at = start;
                while at < start + n {
                    let take = (start + n - at).min(u64::from(ZERO_EXTENT_BLOCKS_MAX));
                    entries.push((at, Payload::Zero(take as u32)));
                    at += take;
                }
            }
            for record in entries.chunks(max_entries) {
                self.append_record(record)?;
                if self.head_state.pending.len() >= self.write_buffer_bytes {
                    self.flush(false).await?;
                }
            }
        } else {
            let chunk = self.record_blocks_max();
            let zeros =
                vec![0u8; (chunk.min(recorded.max(1)) * u64::from(self.block_size)) as usize];
            for &(start, n) in &runs {
                let mut at = start;
                while at < start + n {
                    let take = (start + n - at).min(chunk);
                    let len = (take * u64::from(self.block_size)) as usize;
                    self.append_record(&[(at, Payload::Data(&zeros[..len]))])?;
                    if self.head_state.pending.len() >= self.write_buffer_bytes {
                        self.flush(false).await?;
                    }
                    at += take;
                }
            }
        }
        self.operation_done().await?;
        Ok(runs)
    }

    /// The runs (first block, length) of `blocks` blocks from `addr` that do not read as zeros
    /// in the head. With a zero baseline only blocks written in the head's lineage can, so the
    /// work follows the blocks mapped, not the length of the range; an image baseline's blocks
    /// are checked against `baseline.sum` (a zero entry, or the checksum of a zero block).
    async fn nonzero_runs(&self, addr: u64, blocks: u64) -> Result<Vec<(u64, u64)>> {
        let end = addr + blocks;
        let ancestry = &self.head_ancestry;
        // `Some(true)`: a version that reads as data; `Some(false)`: one that reads as zeros;
        // `None`: no version in the lineage (the baseline shows through).
        let visible = |versions: &[Version]| {
            versions
                .iter()
                .rev()
                .find(|v| ancestry.contains(v.slot))
                .map(|v| !v.is_zero())
        };
        let mut nonzero: Vec<u64> = Vec::new();
        if self.baseline == BaselineKind::Zero {
            if blocks > self.index.mapped_blocks() as u64 {
                self.index.for_each(|a, versions| {
                    if (addr..end).contains(&a) && visible(versions) == Some(true) {
                        nonzero.push(a);
                    }
                });
                crate::order::sort_u64s(&mut nonzero);
            } else {
                for a in addr..end {
                    if self
                        .index
                        .lookup(a, |s| ancestry.contains(s))
                        .is_some_and(|v| !v.is_zero())
                    {
                        nonzero.push(a);
                    }
                }
            }
        } else {
            let chunk = (IMAGE_CHUNK_BYTES / 4) as u64;
            let zero_block = vec![0u8; self.block_size as usize];
            let mut sums = vec![0u8; (chunk.min(blocks) * 4) as usize];
            let mut at = addr;
            while at < end {
                let n = chunk.min(end - at);
                let sums = &mut sums[..(n * 4) as usize];
                self.storage
                    .read_at(BASELINE_SUM_OBJECT, at * 4, sums)
                    .await?;
                for i in 0..n {
                    let a = at + i;
                    let reads_data = match self.index.lookup(a, |s| ancestry.contains(s)) {
                        Some(v) => !v.is_zero(),
                        None => {
                            let sum = format::u32_at(sums, (i * 4) as usize);
                            sum != 0 && sum != block_crc(a, &zero_block)
                        }
                    };
                    if reads_data {
                        nonzero.push(a);
                    }
                }
                at += n;
            }
        }
        Ok(crate::order::runs(nonzero))
    }

    /// Appends one record of `entries` (validated by the caller) to the head, in memory, and
    /// maps its blocks. Returns its first sequence number.
    fn append_record(&mut self, entries: &[(u64, Payload<'_>)]) -> Result<u64> {
        let block_size = self.block_size as usize;
        let head_slot = self.head;
        let head = &mut self.partitions[head_slot as usize];
        if head.next_seq + entries.len() as u64 > format::SEQ_MAX {
            return Err(Error::InvalidArgument(
                "the store has used up its sequence numbers".into(),
            ));
        }
        let has_zero = entries.iter().any(|(_, p)| matches!(p, Payload::Zero(_)));
        let data_blocks: u64 = entries.iter().map(|(_, p)| p.data_blocks(block_size)).sum();
        let header = RecordHeader {
            flags: if has_zero {
                RECORD_FLAG_ZERO_ENTRIES
            } else {
                0
            },
            volume: head.volume.0,
            first_seq: head.next_seq,
            timestamp_ms: self.clock.now_ms(),
            entry_count: entries.len() as u32,
            block_count: data_blocks as u32,
            durable_offset: self.head_state.durable,
            block_size: self.block_size,
        };
        let offset = head.records_end;
        let start = self.head_state.pending.len();
        let crcs = encode_record(&mut self.head_state.pending, &header, entries, &[]);
        let meta_end = start + header.data_offset() as usize;
        self.head_state
            .index
            .extend_from_slice(&offset.to_le_bytes());
        self.head_state
            .index
            .extend_from_slice(&self.head_state.pending[start..meta_end]);
        let mut data_offset = offset + header.data_offset();
        let mut crc_iter = crcs.into_iter();
        for (i, (addr, payload)) in entries.iter().enumerate() {
            match payload {
                Payload::Data(data) => {
                    for k in 0..(data.len() / block_size) as u64 {
                        let crc = crc_iter.next().unwrap_or_default();
                        self.index.insert(
                            addr + k,
                            Version {
                                slot: head_slot,
                                crc,
                                offset: data_offset,
                            },
                        );
                        data_offset += block_size as u64;
                    }
                }
                Payload::Zero(n) => {
                    let entry_at = zero_entry_offset(offset, i);
                    for k in 0..u64::from(*n) {
                        self.index.insert(
                            addr + k,
                            Version {
                                slot: head_slot,
                                crc: 0,
                                offset: entry_at,
                            },
                        );
                    }
                }
            }
        }
        head.records.push(RecordRef {
            offset,
            first_seq: header.first_seq,
        });
        head.records_end += header.record_len();
        head.segment_len = head.records_end;
        head.next_seq += u64::from(header.entry_count);
        head.entries += u64::from(header.entry_count);
        head.blocks_written += data_blocks;
        Ok(header.first_seq)
    }

    /// The capacity a write buffer starts with, so that filling it never regrows (and re-copies)
    /// it: the buffer's size and room for one more record.
    fn write_buffer_capacity(&self) -> usize {
        self.write_buffer_bytes.clamp(64 << 10, 64 << 20) + (64 << 10)
    }

    /// Hands pending records to storage; with `durable`, makes everything written so far durable.
    pub(super) async fn flush(&mut self, durable: bool) -> Result<()> {
        self.check_writable()?;
        let head = &self.partitions[self.head as usize];
        if self.head_state.pending.is_empty()
            && (!durable || self.head_state.durable == head.records_end)
        {
            return Ok(());
        }
        let mut commit = Commit::new(durable);
        let end = head.records_end;
        if !self.head_state.pending.is_empty() {
            // The buffer goes to storage; its successor starts at full size, so that filling it
            // again never regrows (and re-copies) it.
            let capacity = self.write_buffer_capacity();
            let bytes =
                std::mem::replace(&mut self.head_state.pending, Vec::with_capacity(capacity));
            commit.write(&head.segment, self.head_state.flushed, bytes);
        }
        self.commit(commit).await?;
        if !durable {
            // The device writes these records while more are written: the next sync waits for
            // less.
            let head = &self.partitions[self.head as usize];
            let from = self.head_state.flushed;
            self.storage.write_behind(&head.segment, from, end - from);
        }
        self.head_state.flushed = end;
        if durable {
            self.head_state.durable = end;
        }
        Ok(())
    }

    /// Commits to storage; a failure poisons the handle (a failed flush is never retried).
    pub(super) async fn commit(&mut self, commit: Commit) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        match self.storage.commit(commit).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.poisoned = true;
                Err(e.into())
            }
        }
    }

    /// The durability point: when this returns `Ok`, every write so far survives a crash.
    pub async fn sync(&mut self) -> Result<()> {
        self.flush(true).await?;
        self.operation_done().await
    }

    /// The largest journal record payload this store may write: what its format version's
    /// readers accept.
    pub(super) fn journal_payload_max(&self) -> usize {
        if self.format_version >= 2 {
            META_PAYLOAD_MAX
        } else {
            META_PAYLOAD_MAX_V1
        }
    }

    pub(super) async fn append_journal(&mut self, records: &[MetaRecord]) -> Result<()> {
        self.append_journal_with(records, Commit::new(true)).await
    }

    /// Adds to `commit` the creation of the (empty) segment objects of the volumes after
    /// `head` (the head just created, whose own one is included when missing), when none is
    /// left after it: [`SPARE_SEGMENTS`] at a time. On a backend where a new object costs a
    /// directory flush, the commit pays it once for all of them, and each of those partitions'
    /// first sync flushes only its data. Nothing is added on other backends. Returns where the
    /// spares will end once the commit succeeds (`spare_until`'s next value).
    pub(super) fn add_spare_segments(&self, commit: &mut Commit, head: u64) -> u64 {
        if !self.storage.new_objects_cost_a_flush() || self.spare_until > head + 1 {
            return self.spare_until;
        }
        let end = head + 1 + SPARE_SEGMENTS;
        for volume in self.spare_until.max(head)..end {
            commit.write(&segment_object(volume, 0), 0, Vec::new());
        }
        end
    }

    /// Asks the backend to create the next partitions' segment objects off the caller's path
    /// ([`Storage::create_ahead`]) once fewer than half of [`SPARE_SEGMENTS`] are left, so that
    /// no snapshot waits for their creation; [`Store::add_spare_segments`] stays for a backend
    /// that cannot (or when this one could not).
    pub(super) fn create_spares_ahead(&mut self) {
        if !self.storage.new_objects_cost_a_flush()
            || self.spare_until >= self.next_volume + SPARE_SEGMENTS / 2
        {
            return;
        }
        let from = self.spare_until.max(self.next_volume);
        let end = self.next_volume + SPARE_SEGMENTS;
        let names: Vec<String> = (from..end).map(|v| segment_object(v, 0)).collect();
        if self.storage.create_ahead(&names) {
            self.spare_until = end;
        }
    }

    /// [`Store::append_journal`] in `commit` (durable), after what it already holds. Records
    /// snapshots left pending go first, in the same group, so that the journal stays in the
    /// order things happened; if both are too large for one record, the pending ones are
    /// appended alone first.
    pub(super) async fn append_journal_with(
        &mut self,
        records: &[MetaRecord],
        commit: Commit,
    ) -> Result<()> {
        if !self.journal_pending.is_empty() {
            let all: Vec<MetaRecord> = self
                .journal_pending
                .iter()
                .chain(records)
                .cloned()
                .collect();
            match self.encode_journal_append(&all) {
                Ok(bytes) => return self.write_journal_append(bytes, commit).await,
                Err(_) if !records.is_empty() => {
                    let pending = self.journal_pending.clone();
                    let bytes = self.encode_journal_append(&pending)?;
                    self.write_journal_append(bytes, Commit::new(true)).await?;
                }
                Err(e) => return Err(e),
            }
        }
        let bytes = self.encode_journal_append(records)?;
        self.write_journal_append(bytes, commit).await
    }

    /// `records` as one journal record (a group if several, so that a torn append keeps all of
    /// them or none), refused if a reader of this store would refuse it or the journal would
    /// grow past what open reads. Nothing is written: the limits are checked before the
    /// operation changes anything.
    fn encode_journal_append(&self, records: &[MetaRecord]) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let record = match records {
            [one] => one.clone(),
            many => MetaRecord::Group(many.to_vec()),
        };
        // An older store keeps the encoding its version's readers accept.
        if self.format_version >= 4 {
            record.encode(&mut bytes);
        } else {
            record.encode_v3(&mut bytes);
        }
        let payload = bytes.len() - META_HEADER_LEN;
        if payload > self.journal_payload_max() {
            return Err(Error::LimitExceeded(format!(
                "the operation needs a journal record of {payload} bytes; a store of format version {} takes records of at most {} bytes",
                self.format_version,
                self.journal_payload_max()
            )));
        }
        // The journal is checkpointed by itself after operations long before this (see
        // `maybe_checkpoint_journal`); past it, open could not read it.
        if self.meta_len + bytes.len() as u64 > super::recovery::JOURNAL_BYTES_MAX {
            return Err(Error::LimitExceeded(format!(
                "the metadata journal would pass {} bytes; checkpoint it (Store::checkpoint_journal)",
                super::recovery::JOURNAL_BYTES_MAX
            )));
        }
        Ok(bytes)
    }

    /// Appends encoded journal records in `commit`, durably; the pending records are in them.
    async fn write_journal_append(&mut self, bytes: Vec<u8>, mut commit: Commit) -> Result<()> {
        let len = bytes.len() as u64;
        commit.durable = true;
        commit.write(&self.meta_object, self.meta_len, bytes);
        self.commit(commit).await?;
        self.meta_len += len;
        self.journal_pending.clear();
        Ok(())
    }

    /// Appends the journal records snapshots left pending, if any (durably).
    pub(super) async fn write_journal_pending(&mut self) -> Result<()> {
        if self.journal_pending.is_empty() {
            return Ok(());
        }
        self.append_journal(&[]).await
    }

    /// Takes a snapshot: seals the head partition (it becomes a read-only snapshot volume with
    /// `label`), opens a new head partition whose parent it is, and assigns the new partition a
    /// volume identifier. Returns the snapshot's volume identifier. Durable on return.
    ///
    /// Writes the sealed partition's index (a few dozen bytes per record) and copies no data.
    /// It costs one flush. After a [`Store::sync`], the journal's: the index is written without
    /// a flush and rebuilt from the records at open if a crash lost it. With unsynced writes,
    /// the segment's: records, index and a seal block go to the segment in one durable commit,
    /// and the journal's records of the seal wait for the next journal append (recovery redoes
    /// the seal from the segment if a crash comes first).
    pub async fn snapshot(&mut self, label: Option<&str>) -> Result<VolumeId> {
        let sealed = self.head();
        self.seal_head_and_open(label.unwrap_or(""), None).await?;
        self.operation_done().await?;
        Ok(sealed)
    }

    /// Seals the head (it becomes a snapshot volume labelled `label`) and opens a new head whose
    /// parent is `new_parent` (`None`: the sealed head; `Some(None)`: the baseline;
    /// `Some(Some(slot))`: that partition). With `drop_if_empty`, an empty head is removed
    /// instead of sealed. Returns the new head's identifier.
    pub(super) async fn seal_head_and_open_with(
        &mut self,
        label: &str,
        new_parent: Option<Option<u32>>,
        drop_if_empty: bool,
    ) -> Result<VolumeId> {
        self.seal_head_and_open_then(label, new_parent, drop_if_empty, Vec::new())
            .await
    }

    /// [`Store::seal_head_and_open_with`], with `extra` journal records appended in the same
    /// atomic group (a branch switch records the registry with the seal).
    pub(super) async fn seal_head_and_open_then(
        &mut self,
        label: &str,
        new_parent: Option<Option<u32>>,
        drop_if_empty: bool,
        extra: Vec<MetaRecord>,
    ) -> Result<VolumeId> {
        self.check_writable()?;
        check_label(label)?;
        let now = self.clock.now_ms();
        let head_slot = self.head;
        let head = &self.partitions[head_slot as usize];
        let drop_head = drop_if_empty && head.records.is_empty();
        if !drop_head {
            self.check_partition_room(1)?;
        }
        let head = &self.partitions[head_slot as usize];
        let sealed_volume = head.volume;
        let next_seq = head.next_seq;
        let new_volume = VolumeId(self.next_volume);
        let parent_slot = new_parent.unwrap_or(Some(head_slot));
        let mut segment_len = 0;
        // Set when the segment's own tail records the seal and the journal's records wait.
        let mut seal_in_segment = None;
        if !drop_head {
            // 1. Records, index and footer reach the segment.
            // With every record already durable (a sync came first) the tail need not be: open
            // rebuilds a missing or torn one from the records, which the journal's seal vouches
            // for (its length and next sequence number). The snapshot then costs one flush, the
            // journal's. Otherwise the segment must be flushed anyway: its tail then carries the
            // seal too (a seal block, format version 4), and that one flush is the snapshot's
            // durability point; the journal's records of it wait for the next journal append,
            // and recovery redoes the seal from the segment if a crash comes first. A seal that
            // names another parent or carries more records (a rollback, a branch switch) is
            // journaled at once, as is one past [`JOURNAL_PENDING_MAX`].
            let records_durable =
                self.head_state.pending.is_empty() && self.head_state.durable == head.records_end;
            let seal = (!records_durable
                && new_parent.is_none()
                && extra.is_empty()
                && self.format_version >= 4
                && self.journal_pending.len() + 2 <= JOURNAL_PENDING_MAX)
                .then(|| footer::Seal {
                    sealed_ms: now,
                    successor: new_volume.0,
                    label: label.to_string(),
                });
            let tail = footer::finish_index_and_footer(
                head.volume.0,
                head.records_end,
                head.next_seq,
                head.records.len() as u64,
                &self.head_state.index,
                seal.as_ref(),
            );
            segment_len = head.records_end + tail.len() as u64;
            let mut commit = if records_durable {
                Commit::unsynced()
            } else {
                Commit::new(true)
            };
            if !self.head_state.pending.is_empty() {
                let bytes = std::mem::take(&mut self.head_state.pending);
                commit.write(&head.segment, self.head_state.flushed, bytes);
            }
            commit.write(&head.segment, head.records_end, tail);
            if seal.is_some() {
                seal_in_segment = Some(self.add_spare_segments(&mut commit, new_volume.0));
            }
            self.commit(commit).await?;
        }
        // 2. The journal records the seal (or removal) and the new head in one durable append
        //    (or, when the segment holds the seal, later).
        let first = if drop_head {
            MetaRecord::PartitionDropped {
                volume: sealed_volume.0,
            }
        } else {
            MetaRecord::PartitionSealed {
                volume: sealed_volume.0,
                sealed_ms: now,
                segment_len,
                next_seq,
                label: label.to_string(),
            }
        };
        let mut group = vec![
            first,
            MetaRecord::PartitionCreated {
                volume: new_volume.0,
                parent: parent_slot.map_or(0, |s| self.partitions[s as usize].volume.0),
                created_ms: now,
                first_seq: next_seq,
                segment_generation: 0,
                flags: CREATED_FLAG_HEAD,
            },
        ];
        group.extend(extra);
        if let Some(spare_until) = seal_in_segment {
            self.journal_pending.extend(group);
            self.spare_until = spare_until;
        } else {
            let mut commit = Commit::new(true);
            let spare_until = self.add_spare_segments(&mut commit, new_volume.0);
            self.append_journal_with(&group, commit).await?;
            self.spare_until = spare_until;
        }
        // 3. Memory follows what is now durable.
        if drop_head {
            self.drop_slot(head_slot);
        } else {
            let head = &mut self.partitions[head_slot as usize];
            head.sealed_ms = Some(now);
            head.segment_len = segment_len;
            head.label = label.to_string();
        }
        self.next_volume += 1;
        self.partitions
            .push(new_volume, parent_slot, now, next_seq, 0);
        self.set_head(self.partitions.len() as u32 - 1);
        self.create_spares_ahead();
        Ok(new_volume)
    }

    pub(super) async fn seal_head_and_open(
        &mut self,
        label: &str,
        new_parent: Option<Option<u32>>,
    ) -> Result<VolumeId> {
        self.seal_head_and_open_with(label, new_parent, false).await
    }

    /// Refuses an operation that would leave more than [`PARTITIONS_MAX`] partitions.
    pub(crate) fn check_partition_room(&self, more: usize) -> Result<()> {
        let now = self.partitions.iter().filter(|p| !p.dropped).count();
        if now + more > PARTITIONS_MAX {
            return Err(Error::LimitExceeded(format!(
                "a store holds at most {PARTITIONS_MAX} partitions (snapshots, the head and deleted snapshots kept for their descendants); it has {now}: merge or delete snapshots first"
            )));
        }
        Ok(())
    }

    /// Forgets a partition in memory (the journal already says it is gone): its children move up
    /// to its parent and its versions leave the index.
    pub(super) fn drop_slot(&mut self, slot: u32) {
        self.partitions.drop_slot(slot);
        self.index.remove_slot(slot);
        self.epoch += 1;
        if self.head != slot {
            self.head_ancestry = self.partitions.ancestry(Some(self.head));
        }
    }

    pub(super) fn set_head(&mut self, slot: u32) {
        self.head = slot;
        // The write buffer and the index keep their memory for the new head (emptied): freeing
        // and then faulting in a 2 MiB buffer again cost a tenth of a snapshot's time. A buffer
        // a large write grew past its usual size is let go.
        let mut pending = std::mem::take(&mut self.head_state.pending);
        pending.clear();
        if pending.capacity() > self.write_buffer_capacity() {
            pending = Vec::new();
        }
        let mut index = std::mem::take(&mut self.head_state.index);
        index.clear();
        self.head_state = HeadState {
            pending,
            index,
            ..HeadState::default()
        };
        footer::begin_index(&mut self.head_state.index);
        self.head_ancestry = self.partitions.ancestry(Some(slot));
    }
}
