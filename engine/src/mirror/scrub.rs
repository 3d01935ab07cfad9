//! Scrubbing: checking every copy of every block against its checksum and the secondary, and
//! rewriting the bad ones that can be rewritten.

use super::*;

/// Every leg's copy of a chunk: the leg, its image bytes and its checksum entries.
type Copies = Vec<(usize, Vec<u8>, Vec<u32>)>;
/// Per leg, the blocks a scrub rewrites: address, the good data, what was wrong.
type Repairs = BTreeMap<usize, Vec<(u64, Vec<u8>, FaultKind)>>;

/// One block of a chunk being scrubbed: its address, its index in the chunk, the legs' copies
/// of the chunk and the secondary's, when read ahead.
struct ScrubbedBlock<'a> {
    addr: u64,
    k: usize,
    copies: &'a Copies,
    secondary_chunk: Option<&'a [u8]>,
}

impl<P: Storage, S: Storage> Mirror<P, S> {
    // ----- scrub -----------------------------------------------------------------------------

    /// Verifies every block of every leg in service against its checksum, against the other legs
    /// and against the secondary's head, and rewrites every bad copy it can (see
    /// [`ScrubOptions`]; this is the thorough default). Syncs first.
    pub async fn scrub(&mut self) -> Result<ScrubReport> {
        self.scrub_with(ScrubOptions::default()).await
    }

    /// [`Mirror::scrub`] with options.
    pub async fn scrub_with(&mut self, options: ScrubOptions) -> Result<ScrubReport> {
        self.sync().await?;
        let block_count = self.block_count();
        let chunk = self.chunk_blocks();
        let mut report = ScrubReport {
            legs: (0..self.legs.len())
                .map(|leg| LegScrubReport {
                    leg,
                    ..LegScrubReport::default()
                })
                .collect(),
            ..ScrubReport::default()
        };
        let mut at = 0;
        while at < block_count {
            let n = chunk.min(block_count - at);
            self.scrub_chunk(at, n, &options, &mut report).await;
            at += n;
        }
        Ok(report)
    }

    /// Scrubs blocks `at..at + n`: every copy checked, the bad ones rewritten leg by leg.
    async fn scrub_chunk(
        &mut self,
        at: u64,
        n: u64,
        options: &ScrubOptions,
        report: &mut ScrubReport,
    ) {
        let copies = self.read_copies(at, n, report).await;
        if copies.is_empty() && !options.compare_with_secondary {
            return;
        }
        let secondary_chunk = if options.compare_with_secondary {
            self.secondary.read(at, n).await.ok()
        } else {
            None
        };
        let mut repairs = Repairs::new();
        for k in 0..n as usize {
            let scrubbed = ScrubbedBlock {
                addr: at + k as u64,
                k,
                copies: &copies,
                secondary_chunk: secondary_chunk.as_deref(),
            };
            self.scrub_block(scrubbed, options, report, &mut repairs)
                .await;
        }
        self.commit_repairs(repairs, report).await;
    }

    /// Every leg's copy of blocks `at..at + n` (image and checksum entries); a leg that cannot
    /// be read is taken out of service and its error reported.
    async fn read_copies(&mut self, at: u64, n: u64, report: &mut ScrubReport) -> Copies {
        let mut copies = Copies::new();
        for i in 0..self.legs.len() {
            if !self.in_service(i) {
                continue;
            }
            let Some(device) = self.legs[i].device.as_ref() else {
                continue;
            };
            match read_leg(device, at, n, self.block_size()).await {
                Ok((image, sums)) => copies.push((i, image, sums)),
                Err(e) => {
                    report.legs[i].io_error = Some(e.to_string());
                    self.degrade(i, &e, FoundBy::Scrub);
                }
            }
        }
        copies
    }

    /// Checks every copy of one block against its checksums and the truth (the secondary when it
    /// answers, else the copies' agreement); queues the bad copies that have a good one for
    /// rewriting and reports the others.
    async fn scrub_block(
        &mut self,
        block: ScrubbedBlock<'_>,
        options: &ScrubOptions,
        report: &mut ScrubReport,
        repairs: &mut Repairs,
    ) {
        let ScrubbedBlock {
            addr, k, copies, ..
        } = block;
        let bs = self.block_size() as usize;
        report.blocks_checked += 1;
        // A copy is good if its data matches the device's checksum entry and the one the
        // controller holds in memory (if loaded): damage to either entry is found here.
        let crcs: Vec<(u32, bool)> = copies
            .iter()
            .map(|(i, image, sums)| {
                let c = block_crc(addr, &image[k * bs..][..bs]);
                let cached = self.legs[*i].sums.get(addr);
                (c, c == sums[k] && cached.is_none_or(|s| s == c))
            })
            .collect();
        let valid: BTreeSet<u32> = crcs.iter().filter(|(_, ok)| *ok).map(|(c, _)| *c).collect();
        let need_secondary = options.compare_with_secondary || valid.len() != 1;
        let from_secondary = if need_secondary {
            self.secondary_block(&block, report).await
        } else {
            None
        };
        // The truth: the secondary when it answered, else the copies' agreement.
        let truth: Option<(u32, Vec<u8>)> = match from_secondary {
            Some(data) => Some((block_crc(addr, &data), data)),
            None if valid.len() == 1 => {
                let c = *valid.iter().next().unwrap_or(&0);
                let j = crcs.iter().position(|&(x, ok)| ok && x == c).unwrap_or(0);
                Some((c, copies[j].1[k * bs..][..bs].to_vec()))
            }
            None => None,
        };
        let mut lost = false;
        for (j, &(c, ok)) in crcs.iter().enumerate() {
            let i = copies[j].0;
            report.copies_checked += 1;
            report.legs[i].checked += 1;
            let kind = match &truth {
                _ if !ok => FaultKind::Checksum,
                Some((t, data)) if *t != c || copies[j].1[k * bs..][..bs] != data[..] => {
                    FaultKind::Stale
                }
                Some(_) => continue,
                // Valid copies that disagree, and no secondary to decide.
                None => FaultKind::Stale,
            };
            report.mismatches += 1;
            report.legs[i].mismatches += 1;
            self.legs[i].detected += 1;
            match &truth {
                Some((_, data)) => repairs
                    .entry(i)
                    .or_default()
                    .push((addr, data.clone(), kind)),
                None => {
                    lost = true;
                    self.event(i, Some(addr), kind, FoundBy::Scrub, false);
                }
            }
        }
        if lost {
            report.unrecoverable.push(addr);
        }
    }

    /// The secondary's copy of a scrubbed block: from the chunk read ahead, or read alone
    /// (a block the secondary cannot give is reported as damaged there).
    async fn secondary_block(
        &self,
        block: &ScrubbedBlock<'_>,
        report: &mut ScrubReport,
    ) -> Option<Vec<u8>> {
        let bs = self.block_size() as usize;
        match block.secondary_chunk {
            Some(data) => Some(data[block.k * bs..][..bs].to_vec()),
            None => match self.secondary.read(block.addr, 1).await {
                Ok(data) => Some(data),
                Err(_) => {
                    report.secondary_damaged.push(block.addr);
                    None
                }
            },
        }
    }

    /// Rewrites the queued copies, one durable commit per leg, and records each fault event
    /// (repaired if the commit went through).
    async fn commit_repairs(&mut self, repairs: Repairs, report: &mut ScrubReport) {
        let bs = self.block_size() as usize;
        for (i, blocks) in repairs {
            let mut commit = Commit::new(true);
            for (addr, data, _) in &blocks {
                commit.write(
                    SUM_OBJECT,
                    addr * SUM_ENTRY_LEN,
                    block_crc(*addr, data).to_le_bytes().to_vec(),
                );
                commit.write(IMAGE_OBJECT, addr * bs as u64, data.clone());
            }
            let ok = self.commit_leg(i, commit, FoundBy::Scrub).await;
            if ok {
                report.repaired += blocks.len() as u64;
                report.legs[i].repaired += blocks.len() as u64;
                self.legs[i].repaired += blocks.len() as u64;
            } else if let Some(reason) = &self.legs[i].reason {
                report.legs[i].io_error = Some(reason.clone());
            }
            for (addr, _, kind) in blocks {
                self.event(i, Some(addr), kind, FoundBy::Scrub, ok);
            }
        }
    }
}
