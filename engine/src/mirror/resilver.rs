//! Resilvering: bringing a leg up to date (catch-up, compare, verify, blank), replacing a leg
//! and rebuilding the whole primary.

use super::*;

impl<P: Storage, S: Storage> Mirror<P, S> {
    // ----- resilvering -----------------------------------------------------------------------

    /// Brings leg `i` (marked resilvering, so that it is no source) up to date over `spans`,
    /// from the legs in service or the secondary, then marks it consistent and puts it in
    /// service. On a device failure the leg is degraded and the error returned.
    pub(super) async fn resilver(
        &mut self,
        i: usize,
        spans: &[(u64, u64)],
        mode: Mode,
    ) -> Result<ResilverReport> {
        self.legs[i].resilvering = true;
        // The leg is rewritten from what its device holds: its table is read again afterwards.
        self.legs[i].sums.clear();
        let mut report = ResilverReport {
            leg: i,
            ..ResilverReport::default()
        };
        // Any rewrite but a catch-up clears the CONSISTENT flag first: until it ends, the header
        // names no state of the image (a rollback's rewrite, for one, moves the image to a state
        // no later log entry describes).
        if mode != Mode::CatchUp && !self.write_header(i, false, FoundBy::Resilver).await {
            return Err(self.leg_failure(i));
        }
        let chunk = self.chunk_blocks();
        for &(first, count) in spans {
            let mut at = first;
            while at < first + count {
                let n = chunk.min(first + count - at);
                self.resilver_chunk(i, at, n, mode, &mut report).await?;
                at += n;
            }
        }
        // Data durable first, then the header that vouches for it.
        if !self
            .commit_leg(i, Commit::new(true), FoundBy::Resilver)
            .await
            || !self.write_header(i, true, FoundBy::Resilver).await
        {
            return Err(self.leg_failure(i));
        }
        let leg = &mut self.legs[i];
        leg.resilvering = false;
        leg.state = LegState::Healthy;
        leg.reason = None;
        Ok(report)
    }

    /// The error of a resilver whose leg `i` failed (the leg is degraded already).
    fn leg_failure(&self, i: usize) -> Error {
        Error::Storage(StorageError::Io {
            object: IMAGE_OBJECT.to_string(),
            message: self.legs[i]
                .reason
                .clone()
                .unwrap_or_else(|| "the device failed".into()),
        })
    }

    /// One chunk of a resilver: blocks `at..at + n`, fetched from a good copy, compared with
    /// what the leg holds (compare, verify), rewritten where they differ, counted in `report`.
    async fn resilver_chunk(
        &mut self,
        i: usize,
        at: u64,
        n: u64,
        mode: Mode,
        report: &mut ResilverReport,
    ) -> Result<()> {
        let bs = self.block_size() as usize;
        let mut truth = vec![0u8; n as usize * bs];
        let failures = self
            .fetch(at, &mut truth, (0..n).collect(), FoundBy::Resilver)
            .await;
        let lost: BTreeSet<u64> = failures.iter().map(|(a, _, _)| *a).collect();
        report.unrecoverable.extend(lost.iter().copied());
        let current = if matches!(mode, Mode::Compare | Mode::Verify) {
            let Some(device) = self.legs[i].device.as_ref() else {
                return Err(self.leg_failure(i));
            };
            match read_leg(device, at, n, self.block_size()).await {
                Ok(r) => Some(r),
                Err(e) => {
                    self.degrade(i, &e, FoundBy::Resilver);
                    return Err(self.leg_failure(i));
                }
            }
        } else {
            None
        };
        let (rewrite, damaged) = choose_rewrites(at, bs, &truth, &lost, current.as_ref(), mode);
        report.blocks_checked += n;
        let commit = if mode == Mode::Blank {
            self.blank_commit(at, &truth, &lost, &rewrite)
        } else {
            self.rewrite_commit(at, &truth, &lost, &rewrite)
        };
        if !commit.changes.is_empty() && !self.commit_leg(i, commit, FoundBy::Resilver).await {
            return Err(self.leg_failure(i));
        }
        report.blocks_written += rewrite.len() as u64;
        report.damaged_found += damaged.len() as u64;
        let leg = &mut self.legs[i];
        leg.resilvered += rewrite.len() as u64;
        leg.detected += damaged.len() as u64;
        leg.repaired += damaged.len() as u64;
        for addr in damaged {
            self.event(i, Some(addr), FaultKind::Checksum, FoundBy::Resilver, true);
        }
        Ok(())
    }

    /// The commit that fills a blank device with the chunk from `at`: every checksum entry
    /// (zero blocks included, a poisoned one for a block with no good copy), image bytes only
    /// where a block is not zero.
    fn blank_commit(&self, at: u64, truth: &[u8], lost: &BTreeSet<u64>, rewrite: &[u64]) -> Commit {
        let bs = self.block_size() as usize;
        let n = (truth.len() / bs) as u64;
        let mut commit = Commit::new(false);
        let mut sums = Vec::with_capacity(n as usize * 4);
        for k in 0..n {
            let addr = at + k;
            let block = &truth[k as usize * bs..][..bs];
            let c = if lost.contains(&addr) {
                !zero_block_crc(addr, self.zero_crc, self.block_size())
            } else if block.iter().all(|&b| b == 0) {
                zero_block_crc(addr, self.zero_crc, self.block_size())
            } else {
                block_crc(addr, block)
            };
            sums.extend_from_slice(&c.to_le_bytes());
        }
        commit.write(SUM_OBJECT, at * SUM_ENTRY_LEN, sums);
        for (f, c) in runs(rewrite.iter().copied()) {
            let bytes = truth[f as usize * bs..][..c as usize * bs].to_vec();
            commit.write(IMAGE_OBJECT, (at + f) * bs as u64, bytes);
        }
        commit
    }

    /// The commit that rewrites the chosen blocks of the chunk from `at`, with their checksum
    /// entries, and makes sure the leg cannot serve a block no copy anywhere holds good.
    fn rewrite_commit(
        &self,
        at: u64,
        truth: &[u8],
        lost: &BTreeSet<u64>,
        rewrite: &[u64],
    ) -> Commit {
        let bs = self.block_size() as usize;
        let mut commit = Commit::new(false);
        for (f, c) in runs(rewrite.iter().copied()) {
            let bytes = truth[f as usize * bs..][..c as usize * bs].to_vec();
            commit.write(
                SUM_OBJECT,
                (at + f) * SUM_ENTRY_LEN,
                sum_entries(at + f, &bytes, bs),
            );
            commit.write(IMAGE_OBJECT, (at + f) * bs as u64, bytes);
        }
        for &addr in lost {
            let poison = !zero_block_crc(addr, self.zero_crc, self.block_size());
            commit.write(IMAGE_OBJECT, addr * bs as u64, vec![0u8; bs]);
            commit.write(
                SUM_OBJECT,
                addr * SUM_ENTRY_LEN,
                poison.to_le_bytes().to_vec(),
            );
        }
        commit
    }

    /// Puts `device` in leg position `i` (replacing a degraded, missing or healthy leg) and
    /// resilvers it from the other legs in service, or from the secondary. Every block is
    /// compared (a device that held this leg before keeps what is still right). Refuses a device
    /// holding another store's primary.
    pub async fn replace(&mut self, i: usize, device: P) -> Result<ResilverReport> {
        if i >= self.legs.len() {
            return Err(Error::InvalidArgument(format!(
                "there is no leg {i}: the primary has {} legs",
                self.legs.len()
            )));
        }
        self.sync().await?;
        let mode = self.device_mode(i, &device).await?;
        let leg = &mut self.legs[i];
        leg.device = Some(device);
        leg.sums.clear();
        leg.state = LegState::Healthy;
        leg.reason = None;
        leg.resilvering = true;
        leg.synced = None;
        leg.replacements += 1;
        self.resilver(i, &[(0, self.block_count())], mode.0).await
    }

    /// Resilver mode and header generation for a device about to be filled.
    pub(super) async fn device_mode(&mut self, i: usize, device: &P) -> Result<(Mode, u64)> {
        match self.plan_device(i, device).await? {
            Plan::Failed(e) => Err(Error::Storage(e)),
            Plan::Full(Mode::Blank, g) => {
                self.legs[i].generation = g;
                Ok((Mode::Blank, g))
            }
            Plan::InSync(h) | Plan::Incremental(h, _) => {
                self.legs[i].generation = h.generation;
                Ok((Mode::Verify, h.generation))
            }
            Plan::Full(mode, g) => {
                self.legs[i].generation = g;
                Ok((mode, g))
            }
        }
    }

    /// Replaces every leg with `devices` and rebuilds them, the first from the secondary's head
    /// and the next ones from the legs already rebuilt. For use after all legs were lost.
    pub async fn rebuild_primary(&mut self, devices: Vec<P>) -> Result<Vec<ResilverReport>> {
        Self::check_leg_count(devices.len())?;
        self.sync().await?;
        let old: Vec<u64> = self.legs.iter().map(|l| l.replacements).collect();
        let mut legs: Vec<Leg<P>> = Vec::with_capacity(devices.len());
        let mut modes = Vec::with_capacity(devices.len());
        for (i, device) in devices.into_iter().enumerate() {
            let mode = match self.plan_device(i, &device).await? {
                Plan::Failed(e) => return Err(Error::Storage(e)),
                Plan::Full(Mode::Blank, g) => (Mode::Blank, g),
                Plan::InSync(h) | Plan::Incremental(h, _) => (Mode::Verify, h.generation),
                Plan::Full(mode, g) => (mode, g),
            };
            let mut leg = Leg::new(device);
            leg.resilvering = true;
            leg.generation = mode.1;
            leg.replacements = old.get(i).copied().unwrap_or(0) + 1;
            legs.push(leg);
            modes.push(mode.0);
        }
        self.legs = legs;
        let mut reports = Vec::with_capacity(modes.len());
        for (i, mode) in modes.into_iter().enumerate() {
            reports.push(self.resilver(i, &[(0, self.block_count())], mode).await?);
        }
        Ok(reports)
    }

    /// Takes the device out of leg position `i` (the leg becomes missing) and gives it back.
    pub fn detach(&mut self, i: usize) -> Result<P> {
        let leg = self
            .legs
            .get_mut(i)
            .ok_or_else(|| Error::InvalidArgument(format!("there is no leg {i}")))?;
        let device = leg
            .device
            .take()
            .ok_or_else(|| Error::InvalidArgument(format!("leg {i} has no device")))?;
        leg.state = LegState::Missing;
        leg.synced = None;
        leg.resilvering = false;
        leg.sums.clear();
        Ok(device)
    }
}

/// Which blocks of the chunk from `at` a resilver rewrites (offsets in the chunk), and which it
/// found damaged (addresses; only `Verify` counts them): with what the leg holds (`current`:
/// image and checksum entries), those that fail their checksum or differ from `truth`; without
/// it, every block (a blank device: every block that is not zero). Blocks in `lost` have no good
/// copy and are left out.
fn choose_rewrites(
    at: u64,
    bs: usize,
    truth: &[u8],
    lost: &BTreeSet<u64>,
    current: Option<&(Vec<u8>, Vec<u32>)>,
    mode: Mode,
) -> (Vec<u64>, Vec<u64>) {
    let n = (truth.len() / bs) as u64;
    let mut rewrite = Vec::new();
    let mut damaged = Vec::new();
    for k in 0..n {
        let addr = at + k;
        if lost.contains(&addr) {
            continue;
        }
        let block = &truth[k as usize * bs..][..bs];
        let write = match (current, mode) {
            (Some((image, sums)), _) => {
                let theirs = &image[k as usize * bs..][..bs];
                let valid = block_crc(addr, theirs) == sums[k as usize];
                if !valid && mode == Mode::Verify {
                    damaged.push(addr);
                }
                !valid || theirs != block
            }
            (None, Mode::Blank) => block.iter().any(|&b| b != 0),
            (None, _) => true,
        };
        if write {
            rewrite.push(k);
        }
    }
    (rewrite, damaged)
}
