//! Reads of the live volume from the primary, verified block by block, with bad copies
//! repaired from another leg or the secondary.

use super::*;

impl<P: Storage, S: Storage> Mirror<P, S> {
    // ----- reads -----------------------------------------------------------------------------

    /// The most recent data of `blocks` blocks from `addr`, from the primary (verified, with
    /// fallback and repair; see the module documentation).
    pub async fn read(&mut self, addr: u64, blocks: u64) -> Result<Vec<u8>> {
        self.check_range(addr, blocks)?;
        let len = crate::store::check_read_len(blocks, self.block_size())?;
        let mut buf = vec![0u8; len];
        self.read_into(addr, &mut buf).await?;
        Ok(buf)
    }

    /// Like [`Mirror::read`], into a caller's buffer (a whole number of blocks).
    pub async fn read_into(&mut self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let bs = self.block_size() as usize;
        if buf.is_empty() || !buf.len().is_multiple_of(bs) {
            return Err(Error::NotWholeBlocks {
                len: buf.len(),
                block_size: self.block_size(),
            });
        }
        let blocks = (buf.len() / bs) as u64;
        self.check_range(addr, blocks)?;
        let mut need = Vec::new();
        for i in 0..blocks {
            match self.pending.get(&(addr + i)) {
                Some(data) => buf[i as usize * bs..][..bs].copy_from_slice(data),
                None => need.push(i),
            }
        }
        if need.is_empty() {
            return Ok(());
        }
        let failures = self.fetch(addr, buf, need, FoundBy::Read).await;
        if let Some((a, error, leg_copies_bad)) = failures.into_iter().next() {
            if !leg_copies_bad {
                return Err(error);
            }
            return Err(Error::Corrupt {
                object: IMAGE_OBJECT.to_string(),
                offset: a * bs as u64,
                what: format!(
                    "block {a}: no leg of the primary holds a copy that passes its checksum, and \
                     the secondary's copy failed too ({error})"
                ),
            });
        }
        Ok(())
    }

    /// Reads the head straight from the secondary (baseline + log), bypassing the primary (for
    /// comparisons and benchmarks).
    pub async fn read_secondary(&self, addr: u64, blocks: u64) -> Result<Vec<u8>> {
        self.secondary.read(addr, blocks).await
    }

    /// Fills the blocks `need` (indices from `addr`) of `buf` with verified synced data: from the
    /// legs in service in turn, then from the secondary's head; rewrites every bad leg copy found
    /// from the good one. Returns the blocks no source could supply: (address, the secondary's
    /// error, whether some leg copy was tried and found bad).
    pub(super) async fn fetch(
        &mut self,
        addr: u64,
        buf: &mut [u8],
        mut need: Vec<u64>,
        found_by: FoundBy,
    ) -> Vec<(u64, Error, bool)> {
        let n = self.legs.len();
        let start = self.next_leg % n;
        self.next_leg = self.next_leg.wrapping_add(1);
        let order: Vec<usize> = (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| self.in_service(i))
            .collect();
        let mut bad: Vec<(usize, u64)> = Vec::new();
        for i in order {
            if need.is_empty() {
                break;
            }
            if let Some(still) = self
                .fetch_from_leg(i, addr, buf, &need, found_by, &mut bad)
                .await
            {
                need = still;
            }
        }
        let failures = self
            .fetch_from_secondary(addr, buf, need, &bad, found_by)
            .await;
        if found_by == FoundBy::Read {
            self.unrecoverable_reads += failures.len() as u64;
        }
        self.repair_bad_copies(addr, buf, bad, &failures, found_by)
            .await;
        failures
    }

    /// Reads the blocks `need` from leg `i` into `buf`, keeping the copies that pass their
    /// checksum; records the bad ones in `bad`. Returns the blocks still needed, or `None` if
    /// the leg could not be read (it is then taken out of service).
    async fn fetch_from_leg(
        &mut self,
        i: usize,
        addr: u64,
        buf: &mut [u8],
        need: &[u64],
        found_by: FoundBy,
        bad: &mut Vec<(usize, u64)>,
    ) -> Option<Vec<u64>> {
        let (&lo, &hi) = (need.first()?, need.last()?);
        let block_size = self.block_size();
        let bs = block_size as usize;
        let Leg {
            device: Some(device),
            sums: cache,
            ..
        } = &mut self.legs[i]
        else {
            return None;
        };
        // When the blocks still needed are one run (the usual case), the leg's image is read
        // straight into `buf`; otherwise into a scratch buffer, and the good blocks copied.
        let span = (hi - lo + 1) as usize;
        let direct = need.len() == span;
        let mut scratch = Vec::new();
        let result = if direct {
            let target = &mut buf[lo as usize * bs..][..span * bs];
            read_leg_cached(device, cache, addr + lo, target, block_size).await
        } else {
            scratch = vec![0u8; span * bs];
            read_leg_cached(device, cache, addr + lo, &mut scratch, block_size).await
        };
        let sums = match result {
            Ok(sums) => sums,
            Err(e) => {
                self.degrade(i, &e, found_by);
                return None;
            }
        };
        let mut still = Vec::new();
        for &k in need {
            let j = (k - lo) as usize;
            let at = k as usize * bs;
            let good = if direct {
                block_crc(addr + k, &buf[at..][..bs]) == sums[j]
            } else {
                let block = &scratch[j * bs..][..bs];
                let good = block_crc(addr + k, block) == sums[j];
                if good {
                    buf[at..][..bs].copy_from_slice(block);
                }
                good
            };
            if !good {
                // A bad copy never stays in the caller's buffer.
                if direct {
                    buf[at..][..bs].fill(0);
                }
                still.push(k);
                bad.push((i, k));
                self.legs[i].detected += 1;
            }
        }
        Some(still)
    }

    /// Fills the blocks `need` that no leg supplied from the secondary's head, a run at a time,
    /// block by block where a run fails. Returns the blocks it could not supply either.
    async fn fetch_from_secondary(
        &mut self,
        addr: u64,
        buf: &mut [u8],
        need: Vec<u64>,
        bad: &[(usize, u64)],
        found_by: FoundBy,
    ) -> Vec<(u64, Error, bool)> {
        let bs = self.block_size() as usize;
        let mut failures = Vec::new();
        for (first, count) in runs(need) {
            let span = &mut buf[first as usize * bs..][..count as usize * bs];
            let head = self.secondary.head();
            match self.secondary.read_into(head, addr + first, span).await {
                Ok(()) if found_by == FoundBy::Read => self.served_by_secondary += count,
                Ok(()) => {}
                Err(_) => {
                    for k in first..first + count {
                        let block = &mut buf[k as usize * bs..][..bs];
                        match self.secondary.read_into(head, addr + k, block).await {
                            Ok(()) if found_by == FoundBy::Read => self.served_by_secondary += 1,
                            Ok(()) => {}
                            Err(e) => {
                                block.fill(0);
                                let tried = bad.iter().any(|&(_, b)| b == k);
                                failures.push((addr + k, e, tried));
                            }
                        }
                    }
                }
            }
        }
        failures
    }

    /// Rewrites the bad leg copies in `bad` that now have a good one in `buf`, one commit per
    /// leg, and records a fault event for each (repaired or not).
    async fn repair_bad_copies(
        &mut self,
        addr: u64,
        buf: &[u8],
        bad: Vec<(usize, u64)>,
        failures: &[(u64, Error, bool)],
        found_by: FoundBy,
    ) {
        let bs = self.block_size() as usize;
        let mut by_leg: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        for (i, k) in bad {
            by_leg.entry(i).or_default().push(k);
        }
        for (i, mut ks) in by_leg {
            ks.sort_unstable();
            let (fixable, broken): (Vec<u64>, Vec<u64>) = ks
                .into_iter()
                .partition(|&k| !failures.iter().any(|(a, _, _)| *a == addr + k));
            let mut commit = Commit::new(true);
            for (first, count) in runs(fixable.iter().copied()) {
                let bytes = buf[first as usize * bs..][..count as usize * bs].to_vec();
                commit.write(
                    SUM_OBJECT,
                    (addr + first) * SUM_ENTRY_LEN,
                    sum_entries(addr + first, &bytes, bs),
                );
                commit.write(IMAGE_OBJECT, (addr + first) * bs as u64, bytes);
            }
            let repaired = !commit.changes.is_empty() && self.commit_leg(i, commit, found_by).await;
            if repaired {
                self.legs[i].repaired += fixable.len() as u64;
            }
            for k in fixable {
                self.event(i, Some(addr + k), FaultKind::Checksum, found_by, repaired);
            }
            for k in broken {
                self.event(i, Some(addr + k), FaultKind::Checksum, found_by, false);
            }
        }
    }
}
