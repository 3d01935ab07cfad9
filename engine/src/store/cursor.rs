//! The read-next-entry cursor over the log, in sequence order across partitions.

use super::*;

/// A position in the log (see [`Store::cursor`] and [`Store::next_entry`]).
#[derive(Debug, Clone)]
pub struct LogCursor {
    /// The first sequence number not yet returned; used to find the place again after the store
    /// moved records (compaction, merge, deletion).
    seek_seq: u64,
    /// The record being walked, while the store's records have not moved since.
    current: Option<Place>,
}

/// Where a cursor stands inside one record.
#[derive(Debug, Clone)]
struct Place {
    /// The store's epoch when the place was found (records moved since if it differs).
    epoch: u64,
    slot: u32,
    /// Index of the record in its partition's record list.
    record: usize,
    /// The next entry of the record to return.
    entry: usize,
    /// The record's decoded tables.
    meta: RecordMeta,
}

impl Place {
    /// True once every entry of the record has been returned.
    fn record_done(&self) -> bool {
        self.entry >= self.meta.entries.len()
    }
}

impl LogCursor {
    /// A cursor that returns entries from sequence number `seq` on.
    pub(super) fn at(seq: u64) -> Self {
        LogCursor {
            seek_seq: seq,
            current: None,
        }
    }

    /// The lowest sequence number the cursor may still return.
    pub fn next_seq(&self) -> u64 {
        self.seek_seq
    }
}

impl<S: Storage> Store<S> {
    // ----- the log cursor --------------------------------------------------------------------

    /// A cursor over the log in sequence order, crossing partition boundaries.
    pub fn cursor(&self, start: CursorStart) -> Result<LogCursor> {
        let seek_seq = match start {
            CursorStart::Beginning => 0,
            CursorStart::Seq(seq) => seq,
            CursorStart::Volume(v) => match self.partitions.slot_of(v)? {
                None => 0,
                Some(slot) => self.partitions[slot as usize].first_seq,
            },
        };
        Ok(LogCursor::at(seek_seq))
    }

    /// Finds the first entry with sequence number `>= seq`: (slot, record index, entry index).
    pub(super) async fn seek(&self, seq: u64) -> Result<Option<(u32, usize, usize, RecordMeta)>> {
        let mut seq = seq;
        // Bounded: each round moves to a later partition.
        for _ in 0..=self.partitions.len() {
            let Some(slot) = self.partitions.at_or_after(seq) else {
                return Ok(None);
            };
            let partition = &self.partitions[slot as usize];
            // Records' first sequence numbers increase strictly; take the last one at or
            // before `seq` (or the first record).
            let record_index = partition
                .records
                .partition_point(|r| r.first_seq <= seq)
                .saturating_sub(1);
            for (index, record) in partition.records.iter_from(record_index) {
                let meta = self.read_record_meta(slot, record.offset).await?;
                if let Some(entry) = (0..meta.entries.len()).find(|&i| meta.entry_seq(i) >= seq) {
                    return Ok(Some((slot, index, entry, meta)));
                }
            }
            seq = seq.max(partition.next_seq);
        }
        Ok(None)
    }

    /// Read-next-entry: the entry at the cursor, advancing it; `None` at the end of the log.
    /// With `with_data`, the entry's blocks are read and verified.
    ///
    /// After compaction the cursor shows the compacted entries: the last write of each block in
    /// the partition, with its original sequence number (so sequence numbers may have gaps, and
    /// an entry partly overwritten in its partition shows only its surviving blocks).
    pub async fn next_entry(
        &self,
        cursor: &mut LogCursor,
        with_data: bool,
    ) -> Result<Option<LogEntry>> {
        self.advance(cursor).await?;
        let LogCursor { seek_seq, current } = cursor;
        let Some(place) = current.as_mut() else {
            return Ok(None);
        };
        let i = place.entry;
        let entry = place.meta.entries[i];
        let seq = place.meta.entry_seq(i);
        let partition = &self.partitions[place.slot as usize];
        let data = if with_data && !entry.zero {
            Some(self.entry_data(place).await?)
        } else {
            None
        };
        place.entry += 1;
        *seek_seq = seq.saturating_add(1);
        // At the end of a partition, continue with the next one in sequence order.
        if place.record_done() && place.record + 1 >= partition.records.len() {
            *seek_seq = (*seek_seq).max(partition.next_seq);
        }
        Ok(Some(LogEntry {
            seq,
            volume: partition.volume,
            addr: entry.addr,
            blocks: entry.blocks,
            timestamp_ms: place.meta.header.timestamp_ms,
            zero: entry.zero,
            data,
        }))
    }

    /// Moves the cursor's place to the next entry to return: seeks again if the store moved
    /// records since (or the partition is done), steps to the next record at a record's end.
    async fn advance(&self, cursor: &mut LogCursor) -> Result<()> {
        let stale = cursor.current.as_ref().is_none_or(|place| {
            place.epoch != self.epoch
                || place.record_done()
                    && place.record + 1 >= self.partitions[place.slot as usize].records.len()
        });
        if stale {
            cursor.current =
                self.seek(cursor.seek_seq)
                    .await?
                    .map(|(slot, record, entry, meta)| Place {
                        epoch: self.epoch,
                        slot,
                        record,
                        entry,
                        meta,
                    });
        } else if let Some(place) = cursor.current.as_mut().filter(|p| p.record_done()) {
            place.record += 1;
            place.entry = 0;
            let partition = &self.partitions[place.slot as usize];
            let offset = partition
                .records
                .get(place.record)
                .ok_or_else(|| {
                    Error::corrupt(&partition.segment, 0, "the cursor passed the records")
                })?
                .offset;
            place.meta = self.read_record_meta(place.slot, offset).await?;
        }
        Ok(())
    }

    /// The blocks of the entry at `place`, read and verified against the record's checksums.
    async fn entry_data(&self, place: &Place) -> Result<Vec<u8>> {
        let meta = &place.meta;
        let entry = meta.entries[place.entry];
        let partition = &self.partitions[place.slot as usize];
        let record = partition.records.get(place.record).ok_or_else(|| {
            Error::corrupt(&partition.segment, 0, "the cursor passed the records")
        })?;
        let block_size = self.block_size as usize;
        let blocks_before: u64 = meta.entries[..place.entry]
            .iter()
            .filter(|e| !e.zero)
            .map(|e| u64::from(e.blocks))
            .sum();
        let offset =
            record.offset + meta.header.data_offset() + blocks_before * u64::from(self.block_size);
        let mut data = vec![0u8; entry.blocks as usize * block_size];
        self.read_segment(place.slot, offset, &mut data).await?;
        for (k, block) in data.chunks_exact(block_size).enumerate() {
            let expected = meta.block_crcs[blocks_before as usize + k];
            let actual = block_crc(entry.addr + k as u64, block);
            if actual != expected {
                return Err(Error::ChecksumMismatch {
                    object: partition.segment.clone(),
                    offset: offset + (k * block_size) as u64,
                    expected,
                    actual,
                });
            }
        }
        Ok(data)
    }

    /// Reads bytes of a partition's segment, from storage or from the pending buffer.
    pub(super) async fn read_segment(&self, slot: u32, offset: u64, buf: &mut [u8]) -> Result<()> {
        let partition = &self.partitions[slot as usize];
        if slot == self.head && offset >= self.head_state.flushed {
            let start = (offset - self.head_state.flushed) as usize;
            let src = self
                .head_state
                .pending
                .get(start..start + buf.len())
                .ok_or_else(|| {
                    Error::corrupt(&partition.segment, offset, "read past the pending records")
                })?;
            buf.copy_from_slice(src);
            return Ok(());
        }
        let filled = self
            .storage
            .read_at(&partition.segment, offset, buf)
            .await?;
        if filled < buf.len() {
            return Err(Error::corrupt(
                &partition.segment,
                offset + filled as u64,
                "segment ends early",
            ));
        }
        Ok(())
    }

    pub(super) async fn read_record_meta(&self, slot: u32, offset: u64) -> Result<RecordMeta> {
        let object = self.partitions[slot as usize].segment.clone();
        let mut header_bytes = [0u8; RECORD_HEADER_LEN];
        self.read_segment(slot, offset, &mut header_bytes).await?;
        let header =
            decode_header(&header_bytes).map_err(|e| Error::corrupt(&object, offset, e.what))?;
        // The record must be the one the index (loaded and verified at open) says is here: a
        // damaged copy in the segment must not steer the cursor or its allocations.
        let p = &self.partitions[slot as usize];
        let expected = p.records.at_offset(offset);
        let in_place = header.volume == p.volume.0
            && header.block_size == self.block_size
            && expected.is_some_and(|r| r.first_seq == header.first_seq)
            && offset.saturating_add(header.record_len()) <= p.records_end;
        if !in_place {
            return Err(Error::corrupt(
                &object,
                offset,
                "record does not match the partition's index",
            ));
        }
        let mut tables = vec![0u8; header.tables_len()];
        self.read_segment(slot, offset + RECORD_HEADER_LEN as u64, &mut tables)
            .await?;
        let meta = decode_tables(&header_bytes, &tables)
            .map_err(|e| Error::corrupt(&object, offset, e.what))?;
        self.check_entries_in_range(&meta)
            .map_err(|what| Error::corrupt(&object, offset, what))?;
        Ok(meta)
    }
}
