//! Copying selected log entries to a tertiary volume: [`Store::send`] writes a copy stream
//! (`format::stream`), [`StreamReceiver`] applies one to another store.
//!
//! Invariants:
//! * a volume lands in the target only when its whole frame sequence has arrived and verified:
//!   its segment (records, index, footer) is made durable first, then one journal group creates
//!   and seals it; a damaged or truncated volume leaves nothing behind (its partial segment is
//!   deleted, or removed as an orphan at the next open after a crash);
//! * volumes keep their identifiers, labels, parents, timestamps and sequence numbers, so each
//!   reads byte-identical to the source;
//! * re-applying a stream skips volumes the target already has, so an interrupted copy continues
//!   where it stopped.

use super::*;
use crate::format::footer::begin_index;
use crate::format::meta::REWRITTEN_FLAG_COMPACTED;
use crate::format::stream::*;
use crate::format::{Decoder, Encode};

/// What to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// The volume the target already has: only partitions after it are sent. `None` sends
    /// everything, the baseline included (a full copy).
    pub base: Option<VolumeId>,
    /// The newest snapshot to send; `None`: the newest snapshot of the live chain (the head's
    /// parent, or its nearest ancestor that was not deleted).
    pub upto: Option<VolumeId>,
    /// Send only entries at or after this sequence number.
    pub since_seq: Option<u64>,
    /// Send only the parts of entries inside this block range.
    pub blocks: Option<std::ops::Range<u64>>,
}

/// What a send or receive moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyReport {
    /// Volumes carried (received: landed).
    pub volumes: u64,
    /// Volumes the target already had (receive only).
    pub volumes_skipped: u64,
    /// Log entries carried.
    pub entries: u64,
    /// Block data bytes carried (entries and baseline).
    pub data_bytes: u64,
    /// Bytes of the stream.
    pub stream_bytes: u64,
}

const VOLUME_FLAG_HIDDEN: u32 = 1;

/// A copy stream being written: frames gather in `bytes` and go to `sink` about
/// [`IMAGE_CHUNK_BYTES`] at a time.
struct StreamOut<'a> {
    bytes: Vec<u8>,
    report: CopyReport,
    sink: &'a mut dyn FnMut(&[u8]) -> Result<()>,
}

impl StreamOut<'_> {
    /// Hands the gathered bytes to the sink once there are enough of them (or now, with `force`).
    fn emit(&mut self, force: bool) -> Result<()> {
        if force || self.bytes.len() >= IMAGE_CHUNK_BYTES {
            self.report.stream_bytes += self.bytes.len() as u64;
            (self.sink)(&self.bytes)?;
            self.bytes.clear();
        }
        Ok(())
    }
}

impl<S: Storage> Store<S> {
    /// Writes a copy stream of the selected volumes and entries to `sink` (chunks of about
    /// 1 MiB). Only sealed snapshots are sent (take a snapshot first to include recent writes),
    /// along the chain from the baseline to `upto`.
    pub async fn send(
        &self,
        options: &SendOptions,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<CopyReport> {
        let (header, to_send) = self.send_plan(options)?;
        let mut out = StreamOut {
            bytes: header.encode(),
            report: CopyReport::default(),
            sink,
        };
        if header.flags & STREAM_FLAG_BASELINE != 0 {
            self.send_baseline(&mut out).await?;
        }
        for &slot in &to_send {
            self.send_volume(slot, options, &mut out).await?;
        }
        if Self::sends_whole_tree(options) {
            // The volume the target's head grows from, then the registry as the journal keeps it.
            let mut payload = self.newest_snapshot().0.to_le_bytes().to_vec();
            if let MetaRecord::Document { json, .. } = self.branches.document() {
                payload.extend_from_slice(json.as_bytes());
            }
            encode_frame(&mut out.bytes, FRAME_BRANCHES, &payload);
        }
        let mut payload = Vec::new();
        payload.put_u64(out.report.volumes);
        encode_frame(&mut out.bytes, FRAME_END, &payload);
        out.emit(true)?;
        Ok(out.report)
    }

    /// A full send without `upto` or filters carries the whole tree: every branch, every
    /// snapshot, and the branch registry.
    fn sends_whole_tree(options: &SendOptions) -> bool {
        options.base.is_none()
            && options.upto.is_none()
            && options.since_seq.is_none()
            && options.blocks.is_none()
    }

    /// Every sealed partition some sealed volume reads: the visible ones and the deleted ones
    /// kept for them, oldest first (parents before children). A deleted partition kept only for
    /// the live head holds just what the head does not override, so it is not sent.
    fn whole_tree(&self) -> Vec<u32> {
        let mut needed = SlotSet::default();
        for (slot, p) in self.partitions.iter().enumerate() {
            let slot = slot as u32;
            if p.dropped || p.hidden || slot == self.head || p.sealed_ms.is_none() {
                continue;
            }
            for s in self.partitions.lineage(Some(slot)) {
                needed.insert(s);
            }
        }
        (0..self.partitions.len() as u32)
            .filter(|&s| needed.contains(s))
            .collect()
    }

    /// What a send with `options` writes: the stream's header, and the partitions (slots) whose
    /// volumes it carries, oldest first.
    fn send_plan(&self, options: &SendOptions) -> Result<(StreamHeader, Vec<u32>)> {
        let upto = match options.upto {
            Some(v) => Some(self.sealed_slot(v)?),
            // The newest snapshot of the live chain. A deleted volume's partition kept for the
            // head is not one: it holds only the blocks the head does not override, so a target
            // whose head grew from it would read a mix of it and older data.
            None => match self
                .partitions
                .visible_ancestor(self.partitions[self.head as usize].parent)
            {
                VolumeId::BASELINE => None,
                newest => self.partitions.slot_of(newest)?,
            },
        };
        if upto.is_none() && options.base.is_some() {
            return Err(Error::InvalidArgument(
                "there is no snapshot to send; take one first".into(),
            ));
        }
        let chain = match upto {
            Some(slot) => self.chain_to_root(slot)?,
            None => Vec::new(),
        };
        let base_slot = match options.base {
            None | Some(VolumeId::BASELINE) => None,
            Some(v) => Some(self.partitions.slot_of(v)?.unwrap_or(0)),
        };
        let to_send: Vec<u32> = match base_slot {
            None if Self::sends_whole_tree(options) => self.whole_tree(),
            None => chain.clone(),
            Some(base) => {
                let at = chain.iter().position(|&s| s == base).ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "volume {} is not an ancestor of the volume being sent",
                        self.partitions[base as usize].volume
                    ))
                })?;
                chain[at + 1..].to_vec()
            }
        };
        let filtered = options.since_seq.is_some() || options.blocks.is_some();
        let full = options.base.is_none();
        let header = StreamHeader {
            store_id: self.store_id,
            block_size: self.block_size,
            flags: if full && self.baseline == BaselineKind::Image {
                STREAM_FLAG_BASELINE
            } else {
                0
            } | if filtered { STREAM_FLAG_FILTERED } else { 0 },
            block_count: self.block_count,
            base_volume: base_slot.map_or(0, |s| self.partitions[s as usize].volume.0),
            source_next_volume: self.next_volume,
            source_next_seq: self.partitions[self.head as usize].next_seq,
        };
        Ok((header, to_send))
    }

    /// The baseline image as frames of about [`IMAGE_CHUNK_BYTES`].
    async fn send_baseline(&self, out: &mut StreamOut<'_>) -> Result<()> {
        let chunk_blocks = (IMAGE_CHUNK_BYTES as u64 / u64::from(self.block_size)).max(1);
        let mut addr = 0;
        while addr < self.block_count {
            let n = chunk_blocks.min(self.block_count - addr);
            let data = self.read_at(VolumeId::BASELINE, addr, n).await?;
            addr += n;
            // All-zero chunks are left out: the receiver leaves them as holes.
            if data.iter().all(|&b| b == 0) {
                continue;
            }
            let mut payload = (addr - n).to_le_bytes().to_vec();
            payload.extend_from_slice(&data);
            encode_frame(&mut out.bytes, FRAME_BASELINE, &payload);
            out.report.data_bytes += data.len() as u64;
            out.emit(false)?;
        }
        Ok(())
    }

    /// One volume: its description, its entries (those `options` selects), and its end.
    async fn send_volume(
        &self,
        slot: u32,
        options: &SendOptions,
        out: &mut StreamOut<'_>,
    ) -> Result<()> {
        let p = &self.partitions[slot as usize];
        let mut payload = Vec::new();
        payload.put_u64(p.volume.0);
        payload.put_u64(p.parent.map_or(0, |s| self.partitions[s as usize].volume.0));
        payload.put_u64(p.created_ms);
        payload.put_u64(p.sealed_ms.unwrap_or(p.created_ms));
        payload.put_u64(p.first_seq);
        payload.put_u64(p.next_seq);
        payload.put_u32(if p.hidden { VOLUME_FLAG_HIDDEN } else { 0 });
        payload.put_u32(p.label.len() as u32);
        payload.extend_from_slice(p.label.as_bytes());
        encode_frame(&mut out.bytes, FRAME_VOLUME_BEGIN, &payload);
        let block_size = u64::from(self.block_size);
        let mut entries = 0u64;
        let mut cursor = LogCursor::at(p.first_seq);
        while let Some(entry) = self.next_entry(&mut cursor, true).await? {
            if entry.volume != p.volume {
                break;
            }
            if options.since_seq.is_some_and(|s| entry.seq < s) {
                continue;
            }
            let data = entry.data.unwrap_or_default();
            let (mut addr, mut blocks, mut bytes) =
                (entry.addr, u64::from(entry.blocks), &data[..]);
            if let Some(range) = &options.blocks {
                let start = addr.max(range.start);
                let end = (addr + blocks).min(range.end);
                if start >= end {
                    continue;
                }
                if !entry.zero {
                    bytes = &data[((start - addr) * block_size) as usize
                        ..((end - addr) * block_size) as usize];
                }
                addr = start;
                blocks = end - start;
            }
            let mut payload = Vec::with_capacity(32 + bytes.len());
            payload.put_u64(entry.seq);
            payload.put_u64(entry.timestamp_ms);
            payload.put_u64(addr);
            payload.put_u32(blocks as u32);
            // A zero extent travels as metadata: the flag, no data.
            payload.put_u32(if entry.zero { ENTRY_FLAG_ZERO } else { 0 });
            payload.extend_from_slice(bytes);
            encode_frame(&mut out.bytes, FRAME_ENTRY, &payload);
            entries += 1;
            out.report.data_bytes += bytes.len() as u64;
            out.emit(false)?;
        }
        let mut payload = Vec::new();
        payload.put_u64(p.volume.0);
        payload.put_u64(entries);
        encode_frame(&mut out.bytes, FRAME_VOLUME_END, &payload);
        out.report.volumes += 1;
        out.report.entries += entries;
        Ok(())
    }

    /// Gets the target ready to take volumes from a source: its head must hold no entries, and
    /// it is moved clear of the source's identifiers and sequence numbers.
    async fn prepare_receive(&mut self, header: &StreamHeader) -> Result<()> {
        self.check_writable()?;
        if header.block_size != self.block_size || header.block_count != self.block_count {
            return Err(Error::InvalidArgument(format!(
                "stream is for {} blocks of {} bytes; this store has {} blocks of {} bytes",
                header.block_count, header.block_size, self.block_count, self.block_size
            )));
        }
        if copy_store_id(header) != self.store_id {
            return Err(stream_error(format!(
                "the stream comes from store {:016x}, this store is a copy of {:016x}; receive a full stream into an empty location to start a new copy",
                header.store_id, self.store_id
            )));
        }
        if !self.partitions[self.head as usize].records.is_empty() {
            return Err(Error::InvalidArgument(
                "the target's head has local writes; receive only into a store whose head is empty (roll back first)".into(),
            ));
        }
        if header.base_volume != 0
            && self
                .partitions
                .slot_of(VolumeId(header.base_volume))
                .is_err()
        {
            return Err(Error::InvalidArgument(format!(
                "the stream needs volume {} as its base, and this store does not have it",
                header.base_volume
            )));
        }
        // Received volumes may hold zero extents: a store of an older format version is
        // upgraded first (a journal checkpoint writes the current version's header).
        if !self.writes_zero_extents() {
            self.checkpoint_journal().await?;
        }
        let head = &self.partitions[self.head as usize];
        let head_volume = head.volume.0;
        let head_first_seq = head.first_seq;

        self.next_volume = self.next_volume.max(header.source_next_volume);
        if head_volume < header.source_next_volume || head_first_seq < header.source_next_seq {
            let parent = head.parent;
            let next_seq = head_first_seq.max(header.source_next_seq);
            self.partitions[self.head as usize].next_seq = next_seq;
            self.seal_head_and_open_with("", Some(parent), true).await?;
        }
        Ok(())
    }

    /// The end of a whole-tree stream: the source's branch registry becomes this store's (if it
    /// has no branches of its own), and the head grows from `head_parent`, in one journal group.
    async fn adopt_branches(
        &mut self,
        branches: super::branch::Branches,
        head_parent: u64,
    ) -> Result<()> {
        let parent = self
            .partitions
            .slot_of(VolumeId(head_parent))
            .map_err(|_| stream_error(format!("the head's volume {head_parent} did not arrive")))?;
        // A store with branches of its own keeps its registry.
        let adopt =
            self.branches.parked.is_empty() && branches != super::branch::Branches::default();
        if adopt {
            self.check_registry(&branches)
                .map_err(|what| stream_error(format!("branch registry: {what}")))?;
        }
        let extra = if adopt {
            if !self.writes_zero_extents() {
                self.checkpoint_journal().await?;
            }
            vec![branches.document()]
        } else {
            Vec::new()
        };
        if self.partitions[self.head as usize].parent != parent || !extra.is_empty() {
            self.seal_head_and_open_then("", Some(parent), true, extra)
                .await?;
        }
        if adopt {
            self.set_branches(branches);
        }
        self.operation_done().await
    }

    /// Lands one received volume whose segment `object` is complete and durable.
    async fn land_volume(&mut self, volume: &ReceivingVolume, segment_len: u64) -> Result<()> {
        let mut group = vec![
            MetaRecord::PartitionCreated {
                volume: volume.volume,
                parent: volume.parent,
                created_ms: volume.created_ms,
                first_seq: volume.first_seq,
                segment_generation: 0,
                flags: 0,
            },
            MetaRecord::PartitionSealed {
                volume: volume.volume,
                sealed_ms: volume.sealed_ms,
                segment_len,
                next_seq: volume.next_seq,
                label: volume.label.clone(),
            },
            MetaRecord::PartitionRewritten {
                volume: volume.volume,
                segment_generation: 0,
                flags: REWRITTEN_FLAG_COMPACTED,
                segment_len,
            },
        ];
        if volume.hidden {
            group.push(MetaRecord::VolumeReleased {
                volume: volume.volume,
            });
        }
        self.append_journal(&group).await?;
        let parent = match volume.parent {
            0 => None,
            p => Some(
                self.partitions
                    .slot(VolumeId(p))
                    .ok_or(Error::UnknownVolume(VolumeId(p)))?,
            ),
        };
        self.partitions.push(
            VolumeId(volume.volume),
            parent,
            volume.created_ms,
            volume.first_seq,
            0,
        );
        let slot = self.partitions.len() as u32 - 1;
        let p = &mut self.partitions[slot as usize];
        p.compacted = true;
        p.hidden = volume.hidden;
        p.sealed_ms = Some(volume.sealed_ms);
        p.label = volume.label.clone();
        self.next_volume = self.next_volume.max(volume.volume + 1);
        self.load_sealed(slot, segment_len, volume.next_seq).await?;
        self.index.finish_load();
        self.epoch += 1;
        Ok(())
    }
}

/// The identifier a new store made from `header` gets: the source's, so that later incremental
/// streams from the source are accepted; but a filtered stream makes a partial copy, which gets
/// an identifier of its own so that no later stream mistakes it for a full one.
fn copy_store_id(header: &StreamHeader) -> u64 {
    if header.flags & STREAM_FLAG_FILTERED != 0 {
        header.store_id.rotate_left(17) ^ 0x5041_5254_4941_4c21
    } else {
        header.store_id
    }
}

/// A volume being received.
#[derive(Debug, Clone)]
struct ReceivingVolume {
    volume: u64,
    parent: u64,
    created_ms: u64,
    sealed_ms: u64,
    first_seq: u64,
    next_seq: u64,
    hidden: bool,
    label: String,
    /// The target has it already: frames are checked and skipped.
    skip: bool,
    entries: u64,
    last_seq: Option<u64>,
    /// Blocks carried so far by the entries of `last_seq`, and the address just past its last
    /// run: the runs of one sequence number become one record, so together they must fit a
    /// record and be in increasing address order without overlap.
    seq_blocks: u64,
    seq_entries: u64,
    seq_end: u64,
    segment: String,
    pending: Vec<u8>,
    written: u64,
    index: Vec<u8>,
    records: u64,
    /// Entries of one sequence number not yet encoded: (address, data, or the block count of
    /// a zero extent). Compaction splits an entry partly overwritten in its partition into runs
    /// that keep its sequence number; they are written as one record, since records' first
    /// sequence numbers increase strictly.
    group: Vec<(u64, std::result::Result<Vec<u8>, u32>)>,
    group_seq: u64,
    group_timestamp_ms: u64,
}

impl ReceivingVolume {
    /// Encodes the pending group of entries as one record.
    fn flush_group(&mut self, block_size: u32) {
        if self.group.is_empty() {
            return;
        }
        let group = std::mem::take(&mut self.group);
        let writes: Vec<(u64, Payload<'_>)> = group
            .iter()
            .map(|(a, d)| match d {
                Ok(data) => (*a, Payload::Data(data)),
                Err(n) => (*a, Payload::Zero(*n)),
            })
            .collect();
        let has_zero = writes.iter().any(|(_, p)| matches!(p, Payload::Zero(_)));
        let record = RecordHeader {
            flags: RECORD_FLAG_SEQ_TABLE
                | if has_zero {
                    RECORD_FLAG_ZERO_ENTRIES
                } else {
                    0
                },
            volume: self.volume,
            first_seq: self.group_seq,
            timestamp_ms: self.group_timestamp_ms,
            entry_count: writes.len() as u32,
            block_count: writes
                .iter()
                .map(|(_, p)| p.data_blocks(block_size as usize) as u32)
                .sum(),
            durable_offset: 0,
            block_size,
        };
        let offset = self.written + self.pending.len() as u64;
        let start = self.pending.len();
        encode_record(&mut self.pending, &record, &writes, &vec![0; writes.len()]);
        self.index.extend_from_slice(&offset.to_le_bytes());
        self.index
            .extend_from_slice(&self.pending[start..start + record.data_offset() as usize]);
        self.records += 1;
    }
}

enum Target<S: Storage> {
    /// A new store: created from the stream's baseline (or empty) at the first volume.
    New {
        storage: Option<S>,
        clock: Rc<dyn Clock>,
        import: Option<BaselineImport<S>>,
    },
    Open(Box<Store<S>>),
}

/// Applies a copy stream to a store, bytes pushed in as they arrive (from a file, a socket, a
/// worker message). See the module invariants for what lands when.
pub struct StreamReceiver<S: Storage> {
    target: Target<S>,
    buffer: Vec<u8>,
    header: Option<StreamHeader>,
    volume: Option<ReceivingVolume>,
    /// The branch registry of a whole-tree stream and the volume the head grows from, applied
    /// at its end.
    branches: Option<(super::branch::Branches, u64)>,
    /// The stream's last volume, landed or already here: the newest of the chain it carries,
    /// which the head grows from at its end.
    last_volume: Option<u64>,
    ended: bool,
    report: CopyReport,
}

fn stream_error(what: impl Into<String>) -> Error {
    Error::BadStream(what.into())
}

impl<S: Storage> StreamReceiver<S> {
    /// Receives a full stream into `storage`, which must hold no store: the store is created
    /// from the stream.
    pub fn new_store(storage: S, clock: Rc<dyn Clock>) -> Self {
        Self::with_target(Target::New {
            storage: Some(storage),
            clock,
            import: None,
        })
    }

    /// Receives a stream into an existing store (an incremental copy, or a full copy of a source
    /// with a zero baseline).
    pub fn into_store(store: Store<S>) -> Self {
        Self::with_target(Target::Open(Box::new(store)))
    }

    fn with_target(target: Target<S>) -> Self {
        StreamReceiver {
            target,
            buffer: Vec::new(),
            header: None,
            volume: None,
            branches: None,
            last_volume: None,
            ended: false,
            report: CopyReport::default(),
        }
    }

    /// What has been received so far.
    pub fn report(&self) -> CopyReport {
        self.report
    }

    /// Feeds the next bytes of the stream.
    pub async fn push(&mut self, bytes: &[u8]) -> Result<()> {
        self.report.stream_bytes += bytes.len() as u64;
        self.buffer.extend_from_slice(bytes);
        let mut at = 0;
        let result = self.process(&mut at).await;
        self.buffer.drain(..at);
        if result.is_err() {
            self.abandon_volume().await;
        }
        result
    }

    async fn process(&mut self, at: &mut usize) -> Result<()> {
        if self.header.is_none() {
            if self.buffer.len() < STREAM_HEADER_LEN {
                return Ok(());
            }
            let header = StreamHeader::decode(&self.buffer).map_err(|e| stream_error(e.what))?;
            if let Target::Open(store) = &mut self.target {
                store.prepare_receive(&header).await?;
            } else if header.base_volume != 0 {
                return Err(Error::InvalidArgument(format!(
                    "the stream is incremental (its base is volume {}); receive it into the store that has that volume",
                    header.base_volume
                )));
            }
            self.header = Some(header);
            *at = STREAM_HEADER_LEN;
        }
        // Bounded: each round consumes one whole frame.
        while let Some((kind, payload, len)) =
            decode_frame(&self.buffer[*at..]).map_err(|e| stream_error(e.what))?
        {
            if self.ended {
                return Err(stream_error("bytes after the end of the stream"));
            }
            let start = *at;
            let payload = self.buffer[start + payload.start..start + payload.end].to_vec();
            self.frame(kind, &payload).await?;
            *at += len;
        }
        Ok(())
    }

    async fn store(&mut self) -> Result<&mut Store<S>> {
        if let Target::New {
            storage,
            clock,
            import,
        } = &mut self.target
        {
            let header = self
                .header
                .ok_or_else(|| stream_error("frame before the header"))?;
            let store = match import.take() {
                Some(mut import) => {
                    // The baseline's trailing all-zero chunks were left out of the stream.
                    let image_bytes = header
                        .block_count
                        .saturating_mul(u64::from(header.block_size));
                    if let Some(gap) = image_bytes.checked_sub(import.bytes_imported()) {
                        if gap > 0 {
                            import.push_zeros(gap).await?;
                        }
                    }
                    import.finish().await?
                }
                None => {
                    let storage = storage
                        .take()
                        .ok_or_else(|| stream_error("store already created"))?;
                    let options = CreateOptions {
                        block_size: header.block_size,
                        block_count: header.block_count,
                        store_id: Some(copy_store_id(&header)),
                    };
                    Store::create(storage, options, clock.clone()).await?
                }
            };
            self.target = Target::Open(Box::new(store));
            if let Target::Open(store) = &mut self.target {
                store.prepare_receive(&header).await?;
            }
        }
        match &mut self.target {
            Target::Open(store) => Ok(store),
            Target::New { .. } => Err(stream_error("store not created")),
        }
    }

    async fn frame(&mut self, kind: u16, payload: &[u8]) -> Result<()> {
        let header = self
            .header
            .ok_or_else(|| stream_error("frame before the header"))?;
        match kind {
            FRAME_BASELINE => self.baseline_frame(header, payload).await,
            FRAME_VOLUME_BEGIN => self.volume_begin(header, payload).await,
            FRAME_ENTRY => self.entry_frame(header, payload).await,
            FRAME_VOLUME_END => self.volume_end(header, payload).await,
            FRAME_END => self.stream_end(payload).await,
            FRAME_BRANCHES => {
                if self.volume.is_some() || self.branches.is_some() {
                    return Err(stream_error("branch registry out of place"));
                }
                let mut d = Decoder::new(payload);
                let head_parent = d.u64("head parent").map_err(|e| stream_error(e.what))?;
                let branches = std::str::from_utf8(&payload[8..])
                    .ok()
                    .and_then(|json| super::branch::Branches::from_json(json).ok())
                    .ok_or_else(|| stream_error("branch registry is not valid JSON"))?;
                self.branches = Some((branches, head_parent));
                Ok(())
            }
            _ => Err(stream_error(format!("unknown frame kind {kind}"))),
        }
    }

    /// A chunk of the baseline image (only into a new store, in address order).
    async fn baseline_frame(&mut self, header: StreamHeader, payload: &[u8]) -> Result<()> {
        let mut d = Decoder::new(payload);
        let bad = |e: crate::format::DecodeError| stream_error(e.what);
        let Target::New {
            storage,
            clock,
            import,
        } = &mut self.target
        else {
            return Err(stream_error(
                "baseline frames are only accepted by a new store",
            ));
        };
        if header.flags & STREAM_FLAG_BASELINE == 0 {
            return Err(stream_error(
                "baseline frame in a stream without a baseline",
            ));
        }
        let addr = d.u64("baseline address").map_err(bad)?;
        if import.is_none() {
            let storage = storage
                .take()
                .ok_or_else(|| stream_error("store already created"))?;
            let bytes = header
                .block_count
                .saturating_mul(u64::from(header.block_size));
            *import = Some(
                Store::import_baseline(
                    storage,
                    header.block_size,
                    Some(bytes),
                    Some(copy_store_id(&header)),
                    clock.clone(),
                )
                .await?,
            );
        }
        let import = import.as_mut().ok_or_else(|| stream_error("no import"))?;
        // Frames come in address order; the all-zero chunks between them were left out.
        let at = addr.saturating_mul(u64::from(header.block_size));
        if at < import.bytes_imported() {
            return Err(stream_error("baseline frames out of order"));
        }
        if at > import.bytes_imported() {
            let gap = at - import.bytes_imported();
            import.push_zeros(gap).await?;
        }
        let data = &payload[8..];
        import.push(data).await?;
        self.report.data_bytes += data.len() as u64;

        Ok(())
    }

    /// A volume begins: its description is checked, and a volume this store has already is skipped.
    async fn volume_begin(&mut self, header: StreamHeader, payload: &[u8]) -> Result<()> {
        let mut d = Decoder::new(payload);
        let bad = |e: crate::format::DecodeError| stream_error(e.what);
        if self.volume.is_some() {
            return Err(stream_error("volume begins inside another volume"));
        }
        let volume = d.u64("volume").map_err(bad)?;
        let parent = d.u64("parent").map_err(bad)?;
        let created_ms = d.u64("created").map_err(bad)?;
        let sealed_ms = d.u64("sealed").map_err(bad)?;
        let first_seq = d.u64("first seq").map_err(bad)?;
        let next_seq = d.u64("next seq").map_err(bad)?;
        let flags = d.u32("flags").map_err(bad)?;
        let label_len = d.u32("label length").map_err(bad)? as usize;
        let label = std::str::from_utf8(d.bytes(label_len, "label").map_err(bad)?)
            .map_err(|_| stream_error("label is not UTF-8"))?
            .to_string();
        check_label(&label)?;
        // Identifiers and sequence numbers must fit what the stream's header announced
        // (checked against the store's limits when it was decoded).
        if volume == 0
            || volume >= header.source_next_volume
            || parent >= volume
            || first_seq == 0
            || first_seq > next_seq
            || next_seq > header.source_next_seq
            || flags & !VOLUME_FLAG_HIDDEN != 0
        {
            return Err(stream_error("impossible volume description"));
        }
        let store = self.store().await?;
        let existing = store.partitions.slot(VolumeId(volume));
        let skip = match existing {
            Some(slot) => {
                let p = &store.partitions[slot as usize];
                if p.next_seq != next_seq || p.sealed_ms.is_none() {
                    return Err(Error::InvalidArgument(format!(
                        "volume {volume} exists here with different contents; the stream does not belong to this store"
                    )));
                }
                true
            }
            None => false,
        };
        if !skip {
            store.check_partition_room(1)?;
        }
        if !skip && parent != 0 && store.partitions.slot(VolumeId(parent)).is_none() {
            return Err(Error::InvalidArgument(format!(
                "volume {volume} grows from volume {parent}, which this store does not have"
            )));
        }
        let mut index = Vec::new();
        begin_index(&mut index);
        self.volume = Some(ReceivingVolume {
            volume,
            parent,
            created_ms,
            sealed_ms,
            first_seq,
            next_seq,
            hidden: flags & VOLUME_FLAG_HIDDEN != 0,
            label,
            skip,
            entries: 0,
            last_seq: None,
            seq_blocks: 0,
            seq_entries: 0,
            seq_end: 0,
            segment: segment_object(volume, 0),
            pending: Vec::new(),
            written: 0,
            index,
            records: 0,
            group: Vec::new(),
            group_seq: 0,
            group_timestamp_ms: 0,
        });

        Ok(())
    }

    /// One entry of the current volume: checked, then gathered into the record of its sequence number.
    async fn entry_frame(&mut self, header: StreamHeader, payload: &[u8]) -> Result<()> {
        let mut d = Decoder::new(payload);
        let bad = |e: crate::format::DecodeError| stream_error(e.what);
        let seq = d.u64("seq").map_err(bad)?;
        let timestamp_ms = d.u64("timestamp").map_err(bad)?;
        let addr = d.u64("address").map_err(bad)?;
        let blocks = d.u32("blocks").map_err(bad)?;
        let flags = d.u32("entry flags").map_err(bad)?;
        let zero = flags == ENTRY_FLAG_ZERO;
        if flags & !ENTRY_FLAG_ZERO != 0 {
            return Err(stream_error(format!("entry {seq} has unknown flags")));
        }
        let data = &payload[32..];
        let block_size = u64::from(header.block_size);
        let v = self
            .volume
            .as_mut()
            .ok_or_else(|| stream_error("entry outside a volume"))?;
        // Equal sequence numbers: the runs of one entry split by compaction.
        let in_order = v.last_seq.is_none_or(|last| seq >= last);
        let data_len = if zero {
            0
        } else {
            u64::from(blocks) * block_size
        };
        if blocks == 0
            || data.len() as u64 != data_len
            || (zero && blocks > ZERO_EXTENT_BLOCKS_MAX)
            || addr >= header.block_count
            || u64::from(blocks) > header.block_count - addr
            || seq < v.first_seq
            || seq >= v.next_seq
            || !in_order
        {
            return Err(stream_error(format!("entry {seq} is out of place")));
        }
        // Runs of one sequence number become one record: they must fit its limits and
        // come in increasing address order without overlap.
        let repeat = v.last_seq == Some(seq);
        let seq_blocks = if repeat { v.seq_blocks } else { 0 } + data_len / block_size;
        let seq_entries = if repeat { v.seq_entries } else { 0 } + 1;
        if (repeat && addr < v.seq_end)
            || seq_blocks > u64::from(RECORD_BLOCKS_MAX)
            || seq_entries > u64::from(RECORD_BLOCKS_MAX)
            || seq_blocks * block_size > RECORD_DATA_BYTES_MAX
        {
            return Err(stream_error(format!(
                "entry {seq} overlaps its other runs or is too large for a record"
            )));
        }
        v.seq_blocks = seq_blocks;
        v.seq_entries = seq_entries;
        v.seq_end = addr + u64::from(blocks);
        v.last_seq = Some(seq);
        v.entries += 1;
        self.report.entries += 1;
        self.report.data_bytes += data.len() as u64;
        if v.skip {
            return Ok(());
        }
        if v.group.is_empty() || v.group_seq != seq {
            v.flush_group(header.block_size);
            v.group_seq = seq;
            v.group_timestamp_ms = timestamp_ms;
        }
        v.group
            .push((addr, if zero { Err(blocks) } else { Ok(data.to_vec()) }));
        if v.pending.len() >= DEFAULT_WRITE_BUFFER_BYTES {
            let bytes = std::mem::take(&mut v.pending);
            let (segment, at, len) = (v.segment.clone(), v.written, bytes.len() as u64);
            v.written += len;
            let mut commit = Commit::new(false);
            commit.write(&segment, at, bytes);
            let store = self.store().await?;
            store.commit(commit).await?;
            // Written to the device while more arrive: the volume's end flushes less.
            store.storage.write_behind(&segment, at, len);
        }

        Ok(())
    }

    /// The current volume ends: its segment is finished and it lands in the store.
    async fn volume_end(&mut self, header: StreamHeader, payload: &[u8]) -> Result<()> {
        let mut d = Decoder::new(payload);
        let bad = |e: crate::format::DecodeError| stream_error(e.what);
        let volume = d.u64("volume").map_err(bad)?;
        let entries = d.u64("entries").map_err(bad)?;
        let mut v = self
            .volume
            .take()
            .ok_or_else(|| stream_error("volume end outside a volume"))?;
        if v.volume != volume || v.entries != entries {
            self.volume = Some(v);
            return Err(stream_error(format!(
                "volume {volume} ended with missing entries"
            )));
        }
        self.last_volume = Some(volume);
        if v.skip {
            self.report.volumes_skipped += 1;
            return Ok(());
        }
        v.flush_group(header.block_size);
        let records_end = v.written + v.pending.len() as u64;
        let tail = footer::finish_index_and_footer(
            v.volume,
            records_end,
            v.next_seq,
            v.records,
            &v.index,
            None,
        );
        let segment_len = records_end + tail.len() as u64;
        let mut bytes = v.pending.clone();
        bytes.extend_from_slice(&tail);
        let mut commit = Commit::new(true);
        commit.write(&v.segment, v.written, bytes);
        let store = self.store().await?;
        store.commit(commit).await?;
        store.land_volume(&v, segment_len).await?;
        self.report.volumes += 1;

        Ok(())
    }

    /// The stream ends: every volume arrived, and the head grows from the newest one.
    async fn stream_end(&mut self, payload: &[u8]) -> Result<()> {
        let mut d = Decoder::new(payload);
        let bad = |e: crate::format::DecodeError| stream_error(e.what);
        let volumes = d.u64("volumes").map_err(bad)?;
        if self.volume.is_some() || volumes != self.report.volumes + self.report.volumes_skipped {
            return Err(stream_error("the stream ended with volumes missing"));
        }
        let branches = self.branches.take();
        let last_volume = self.last_volume;
        let store = self.store().await?;
        if let Some((branches, head_parent)) = branches {
            return store.adopt_branches(branches, head_parent).await.map(|()| {
                self.ended = true;
            });
        }
        // The head now grows from the stream's last volume: the newest of the chain it carries
        // (not the store's newest partition, which may be of another line the store received
        // before, e.g. a whole tree, while this stream's chain ends at an older snapshot).
        let newest = last_volume.and_then(|v| store.partitions.slot(VolumeId(v)));
        if volumes > 0 && store.partitions[store.head as usize].parent != newest {
            store
                .seal_head_and_open_with("", Some(newest), true)
                .await?;
        }
        self.ended = true;

        Ok(())
    }

    /// Deletes the partial segment of a volume that will not land.
    async fn abandon_volume(&mut self) {
        if let (Some(v), Target::Open(store)) = (self.volume.take(), &mut self.target) {
            if !v.skip && v.written > 0 {
                let mut commit = Commit::new(false);
                commit.delete(&v.segment);
                let _ = store.storage.commit(commit).await;
            }
        }
    }

    /// Completes the receive: refuses a stream that stopped early (volumes that landed before the
    /// break stay, so the copy can resume) and returns the store.
    pub async fn finish(mut self) -> Result<(Store<S>, CopyReport)> {
        if !self.ended || !self.buffer.is_empty() {
            self.abandon_volume().await;
            return Err(stream_error(if self.ended {
                "bytes after the end of the stream"
            } else {
                "the stream is truncated: it stops before its end frame"
            }));
        }
        match self.target {
            Target::Open(mut store) => {
                // The volumes are committed; a journal checkpoint that fails poisons the store.
                store.operation_done().await?;
                Ok((*store, self.report))
            }
            Target::New { .. } => Err(stream_error("the stream carried no volumes and no end")),
        }
    }
}
