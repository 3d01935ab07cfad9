//! Reads: plan where each block comes from, fetch the runs in one batch, verify every block.

use super::*;

/// One contiguous piece of a read: blocks that come from the same place.
#[derive(Debug, Clone, Copy)]
enum Source {
    Zero,
    Baseline,
    Segment(u32, u64),
    Pending(u64),
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
        // Plan: one source per block, merged into runs of adjacent blocks.
        let mut runs: Vec<(Source, u64, u64, Vec<u32>)> = Vec::new(); // source, first addr, blocks, crcs
        for i in 0..blocks {
            let a = addr + i;
            // Baseline checksums are read from `baseline.sum` with the blocks (below).
            let (source, crc) = match self.index.lookup(a, |s| ancestry.contains(s)) {
                Some(v) if v.slot == self.head && v.offset >= self.head_state.flushed => {
                    (Source::Pending(v.offset - self.head_state.flushed), v.crc)
                }
                Some(v) => (Source::Segment(v.slot, v.offset), v.crc),
                None if self.baseline == BaselineKind::Zero => (Source::Zero, 0),
                None => (Source::Baseline, 0),
            };
            if let Some((last, _, n, crcs)) = runs.last_mut() {
                let bs = block_size as u64;
                let extends = match (*last, source) {
                    (Source::Zero, Source::Zero) | (Source::Baseline, Source::Baseline) => true,
                    (Source::Segment(s1, o1), Source::Segment(s2, o2)) => {
                        s1 == s2 && o1 + *n * bs == o2
                    }
                    (Source::Pending(o1), Source::Pending(o2)) => o1 + *n * bs == o2,
                    _ => false,
                };
                if extends {
                    *n += 1;
                    crcs.push(crc);
                    continue;
                }
            }
            runs.push((source, a, 1, vec![crc]));
        }
        // The baseline runs' checksums: one read of `baseline.sum` per run, with the data.
        let mut sum_bufs: Vec<Vec<u8>> = runs
            .iter()
            .filter(|r| matches!(r.0, Source::Baseline))
            .map(|r| vec![0u8; r.2 as usize * 4])
            .collect();
        // Carve the buffer into one slice per run and fill what needs no I/O.
        let mut requests: Vec<ReadRequest<'_>> = Vec::new();
        let mut sum_requests: Vec<ReadRequest<'_>> = runs
            .iter()
            .filter(|r| matches!(r.0, Source::Baseline))
            .zip(sum_bufs.iter_mut())
            .map(|(r, buf)| ReadRequest {
                object: BASELINE_SUM_OBJECT,
                offset: r.1 * 4,
                buf,
                filled: 0,
            })
            .collect();
        let mut checks: Vec<(String, u64, u64, &[u32])> = Vec::new(); // object, offset, first addr, crcs
        let mut rest: &mut [u8] = buf;
        for (source, first, n, crcs) in &runs {
            let (chunk, tail) = std::mem::take(&mut rest).split_at_mut(*n as usize * block_size);
            rest = tail;
            match *source {
                Source::Zero => chunk.fill(0),
                Source::Pending(offset) => {
                    let start = offset as usize;
                    let src = self
                        .head_state
                        .pending
                        .get(start..start + chunk.len())
                        .ok_or_else(|| {
                            Error::corrupt(
                                "pending",
                                offset,
                                "pending buffer shorter than its index",
                            )
                        })?;
                    chunk.copy_from_slice(src);
                    checks.push(("pending".into(), offset, *first, crcs));
                }
                Source::Baseline => {
                    let offset = first * block_size as u64;
                    checks.push((BASELINE_OBJECT.into(), offset, *first, crcs));
                    requests.push(ReadRequest {
                        object: BASELINE_OBJECT,
                        offset,
                        buf: chunk,
                        filled: 0,
                    });
                }
                Source::Segment(slot, offset) => {
                    let object = &self.partitions[slot as usize].segment;
                    checks.push((object.clone(), offset, *first, crcs));
                    requests.push(ReadRequest {
                        object,
                        offset,
                        buf: chunk,
                        filled: 0,
                    });
                }
            }
        }
        requests.append(&mut sum_requests);
        self.storage.read_many(&mut requests).await?;
        for r in &requests {
            if r.filled < r.buf.len() {
                return Err(Error::corrupt(
                    r.object,
                    r.offset + r.filled as u64,
                    "object ends before data its index points to",
                ));
            }
        }
        drop(requests);
        let mut baseline_sums = sum_bufs.iter();
        // Verify every block against its checksum: damage is reported, never returned.
        let mut at = 0usize;
        for (source, first, n, _) in &runs {
            let run_len = *n as usize * block_size;
            if !matches!(source, Source::Zero) {
                let (object, offset, _, crcs) = checks.remove(0);
                let sums = match source {
                    Source::Baseline => baseline_sums.next().map(|b| b.as_slice()),
                    _ => None,
                };
                for (i, block) in buf[at..at + run_len].chunks_exact(block_size).enumerate() {
                    let actual = block_crc(first + i as u64, block);
                    let expected = match sums {
                        Some(sums) => format::u32_at(sums, i * 4),
                        None => crcs.get(i).copied().unwrap_or_default(),
                    };
                    // A zero entry in `baseline.sum` stands for a zero block (a merge into an
                    // empty baseline leaves the entries of blocks it never wrote as holes).
                    let zero_block =
                        sums.is_some() && expected == 0 && block.iter().all(|&b| b == 0);
                    if actual != expected && !zero_block {
                        return Err(Error::ChecksumMismatch {
                            object: if sums.is_some() {
                                format!("{object} (checked against {BASELINE_SUM_OBJECT})")
                            } else {
                                object
                            },
                            offset: offset + (i * block_size) as u64,
                            expected,
                            actual,
                        });
                    }
                }
            }
            at += run_len;
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
