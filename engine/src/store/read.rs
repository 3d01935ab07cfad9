//! Reads: plan where each block comes from, fetch the runs in one batch, verify every block.

use super::*;

/// Where the blocks of one run come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A zero baseline or a zero extent: nothing to read.
    Zero,
    /// The baseline image (checked against `baseline.sum`).
    Baseline,
    /// A partition's segment, at a byte offset.
    Segment(u32, u64),
    /// The head's records not yet handed to storage, at an offset into `pending`.
    Pending(u64),
}

/// Blocks adjacent in the volume whose data lies adjacent in one source.
#[derive(Debug)]
struct Run {
    source: Source,
    first: u64,
    blocks: u64,
    /// Each block's expected checksum (for segments and pending records; the baseline's are
    /// read from `baseline.sum` with the data).
    crcs: Vec<u32>,
}

/// Plans a read of `blocks` blocks from `addr`: `locate` gives each block's source and checksum,
/// and adjacent blocks whose data is adjacent in one source share a run (one storage read).
fn plan_read(
    addr: u64,
    blocks: u64,
    block_size: u64,
    mut locate: impl FnMut(u64) -> (Source, u32),
) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for a in addr..addr + blocks {
        let (source, crc) = locate(a);
        if let Some(run) = runs.last_mut() {
            let extends = match (run.source, source) {
                (Source::Zero, Source::Zero) | (Source::Baseline, Source::Baseline) => true,
                (Source::Segment(s1, o1), Source::Segment(s2, o2)) => {
                    s1 == s2 && o1 + run.blocks * block_size == o2
                }
                (Source::Pending(o1), Source::Pending(o2)) => o1 + run.blocks * block_size == o2,
                _ => false,
            };
            if extends {
                run.blocks += 1;
                run.crcs.push(crc);
                continue;
            }
        }
        runs.push(Run {
            source,
            first: a,
            blocks: 1,
            crcs: vec![crc],
        });
    }
    runs
}

impl<S: Storage> Store<S> {
    // ----- reads -----------------------------------------------------------------------------

    /// The most recent data of `blocks` blocks from `addr`.
    pub async fn read(&self, addr: u64, blocks: u64) -> Result<Vec<u8>> {
        self.read_at(self.head(), addr, blocks).await
    }

    /// The data of `blocks` blocks from `addr` exactly as volume `volume` holds them (for a
    /// snapshot: as they were when it was taken; for the baseline: the baseline image).
    pub async fn read_at(&self, volume: VolumeId, addr: u64, blocks: u64) -> Result<Vec<u8>> {
        self.check_range(addr, blocks)?;
        let len = check_read_len(blocks, self.block_size)?;
        let mut buf = vec![0u8; len];
        self.read_into(volume, addr, &mut buf).await?;
        Ok(buf)
    }

    /// Like [`Store::read_at`], into a caller's buffer (a whole number of blocks).
    pub async fn read_into(&self, volume: VolumeId, addr: u64, buf: &mut [u8]) -> Result<()> {
        let block_size = self.block_size as usize;
        if buf.is_empty() || !buf.len().is_multiple_of(block_size) {
            return Err(Error::NotWholeBlocks {
                len: buf.len(),
                block_size: self.block_size,
            });
        }
        let blocks = (buf.len() / block_size) as u64;
        self.check_range(addr, blocks)?;
        let slot = self.partitions.slot_of(volume)?;
        let computed;
        let ancestry = if slot == Some(self.head) {
            &self.head_ancestry
        } else {
            computed = self.partitions.ancestry(slot);
            &computed
        };
        let runs = plan_read(addr, blocks, block_size as u64, |a| {
            match self.visible_version(a, slot, ancestry) {
                Some(v) if v.is_zero() => (Source::Zero, 0),
                Some(v) if v.slot == self.head && v.offset >= self.head_state.flushed => {
                    (Source::Pending(v.offset - self.head_state.flushed), v.crc)
                }
                Some(v) => (Source::Segment(v.slot, v.offset), v.crc),
                None if self.baseline == BaselineKind::Zero => (Source::Zero, 0),
                None => (Source::Baseline, 0),
            }
        });
        let baseline_sums = self.fetch_runs(&runs, buf).await?;
        self.verify_runs(&runs, buf, &baseline_sums)
    }

    /// The version of block `addr` that volume `slot` (`None`: the baseline) reads, its
    /// `ancestry` given: the newest in an ancestor, found by `BlockIndex::lookup_at` (no
    /// partition that starts after `slot`'s own can be an ancestor). Reads and `locate` share it.
    pub(super) fn visible_version(
        &self,
        addr: u64,
        slot: Option<u32>,
        ancestry: &SlotSet,
    ) -> Option<Version> {
        let limit = slot.map_or(0, |s| self.partitions[s as usize].first_seq);
        self.index.lookup_at(
            addr,
            limit,
            |s| self.partitions[s as usize].first_seq,
            |s| ancestry.contains(s),
        )
    }

    /// The object and byte offset a run's data comes from (for reads and error messages).
    fn run_place(&self, run: &Run) -> (&str, u64) {
        match run.source {
            Source::Zero => ("", 0),
            Source::Pending(offset) => ("pending", offset),
            Source::Baseline => (BASELINE_OBJECT, run.first * u64::from(self.block_size)),
            Source::Segment(slot, offset) => (&self.partitions[slot as usize].segment, offset),
        }
    }

    /// Fills `buf` (one slice per run, in order) with every run's data: zeros and pending
    /// records at once, the rest in one batch of storage reads, together with the checksums of
    /// the baseline runs from `baseline.sum` (returned, one buffer per baseline run).
    async fn fetch_runs(&self, runs: &[Run], buf: &mut [u8]) -> Result<Vec<Vec<u8>>> {
        let block_size = self.block_size as usize;
        let mut sum_bufs: Vec<Vec<u8>> = runs
            .iter()
            .filter(|r| r.source == Source::Baseline)
            .map(|r| vec![0u8; r.blocks as usize * 4])
            .collect();
        let mut requests: Vec<ReadRequest<'_>> = Vec::new();
        let mut rest: &mut [u8] = buf;
        for run in runs {
            let (chunk, tail) =
                std::mem::take(&mut rest).split_at_mut(run.blocks as usize * block_size);
            rest = tail;
            let (object, offset) = self.run_place(run);
            match run.source {
                Source::Zero => chunk.fill(0),
                Source::Pending(_) => {
                    let start = offset as usize;
                    let src = self
                        .head_state
                        .pending
                        .get(start..start + chunk.len())
                        .ok_or_else(|| {
                            Error::corrupt(object, offset, "pending buffer shorter than its index")
                        })?;
                    chunk.copy_from_slice(src);
                }
                Source::Baseline | Source::Segment(..) => requests.push(ReadRequest {
                    object,
                    offset,
                    buf: chunk,
                    filled: 0,
                }),
            }
        }
        let baseline_runs = runs.iter().filter(|r| r.source == Source::Baseline);
        for (run, buf) in baseline_runs.zip(sum_bufs.iter_mut()) {
            requests.push(ReadRequest {
                object: BASELINE_SUM_OBJECT,
                offset: run.first * 4,
                buf,
                filled: 0,
            });
        }
        self.storage.read_many(&mut requests).await?;
        if let Some(r) = requests.iter().find(|r| r.filled < r.buf.len()) {
            return Err(Error::corrupt(
                r.object,
                r.offset + r.filled as u64,
                "object ends before data its index points to",
            ));
        }
        drop(requests);
        Ok(sum_bufs)
    }

    /// Verifies every block of `buf` against its checksum: damage is reported, never returned.
    fn verify_runs(&self, runs: &[Run], buf: &[u8], baseline_sums: &[Vec<u8>]) -> Result<()> {
        let block_size = self.block_size as usize;
        let mut baseline_sums = baseline_sums.iter();
        let mut at = 0usize;
        for run in runs {
            let run_len = run.blocks as usize * block_size;
            let data = &buf[at..at + run_len];
            at += run_len;
            let sums = match run.source {
                Source::Zero => continue,
                Source::Baseline => baseline_sums.next().map(|b| b.as_slice()),
                Source::Segment(..) | Source::Pending(_) => None,
            };
            for (i, block) in data.chunks_exact(block_size).enumerate() {
                let actual = block_crc(run.first + i as u64, block);
                let expected = match sums {
                    Some(sums) => format::u32_at(sums, i * 4),
                    None => run.crcs.get(i).copied().unwrap_or_default(),
                };
                // A zero entry in `baseline.sum` stands for a zero block (a merge into an
                // empty baseline leaves the entries of blocks it never wrote as holes).
                let zero_block = sums.is_some() && expected == 0 && block.iter().all(|&b| b == 0);
                if actual != expected && !zero_block {
                    let (object, offset) = self.run_place(run);
                    return Err(Error::ChecksumMismatch {
                        object: if sums.is_some() {
                            format!("{object} (checked against {BASELINE_SUM_OBJECT})")
                        } else {
                            object.to_string()
                        },
                        offset: offset + (i * block_size) as u64,
                        expected,
                        actual,
                    });
                }
            }
        }
        Ok(())
    }

    /// Streams volume `volume` as a raw image: `sink` receives consecutive chunks (at most
    /// [`IMAGE_CHUNK_BYTES`] each) and `progress` (bytes done, bytes total) after each.
    pub async fn export(
        &self,
        volume: VolumeId,
        mut sink: impl FnMut(&[u8]) -> Result<()>,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<()> {
        self.partitions.slot_of(volume)?;
        let block_size = u64::from(self.block_size);
        let chunk_blocks = (IMAGE_CHUNK_BYTES as u64 / block_size).max(1);
        let total = self.block_count * block_size;
        let mut buf = vec![0u8; (chunk_blocks * block_size) as usize];
        let mut addr = 0;
        while addr < self.block_count {
            let n = chunk_blocks.min(self.block_count - addr);
            let slice = &mut buf[..(n * block_size) as usize];
            self.read_into(volume, addr, slice).await?;
            sink(slice)?;
            addr += n;
            progress(addr * block_size, total);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacent_blocks_adjacent_in_one_source_share_a_run() {
        // Blocks 10..17: two baseline blocks, three adjacent in slot 1's segment, one that is
        // not adjacent there, one pending, one more baseline.
        let sources = [
            Source::Baseline,
            Source::Baseline,
            Source::Segment(1, 0),
            Source::Segment(1, 512),
            Source::Segment(1, 1024),
            Source::Segment(1, 4096),
            Source::Pending(0),
            Source::Baseline,
        ];
        let runs = plan_read(10, 8, 512, |a| (sources[(a - 10) as usize], a as u32));
        let shape: Vec<(Source, u64, u64)> =
            runs.iter().map(|r| (r.source, r.first, r.blocks)).collect();
        assert_eq!(
            shape,
            vec![
                (Source::Baseline, 10, 2),
                (Source::Segment(1, 0), 12, 3),
                (Source::Segment(1, 4096), 15, 1),
                (Source::Pending(0), 16, 1),
                (Source::Baseline, 17, 1),
            ]
        );
        assert_eq!(runs[1].crcs, vec![12, 13, 14]);
    }

    #[test]
    fn the_same_segment_offset_in_another_slot_starts_a_run() {
        let runs = plan_read(0, 2, 4096, |a| (Source::Segment(a as u32, 0), 0));
        assert_eq!(runs.len(), 2);
    }
}
