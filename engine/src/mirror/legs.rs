//! The legs' bookkeeping: which are in service, the fault events, taking a leg out of service,
//! and committing data and headers to the legs.

use super::*;

impl<P: Storage, S: Storage> Mirror<P, S> {
    pub(super) fn position(&self) -> (VolumeId, u64) {
        let head = self.secondary.head();
        let next_seq = self.secondary.volume(head).map_or(0, |v| v.next_seq);
        (head, next_seq)
    }

    pub(super) fn in_service(&self, i: usize) -> bool {
        let l = &self.legs[i];
        l.device.is_some() && l.state == LegState::Healthy && !l.resilvering
    }

    pub(super) fn event(
        &mut self,
        leg: usize,
        addr: Option<u64>,
        kind: FaultKind,
        found_by: FoundBy,
        repaired: bool,
    ) {
        if self.events.len() >= EVENTS_MAX {
            self.events.pop_front();
        }
        self.events.push_back(FaultEvent {
            leg,
            addr,
            kind,
            found_by,
            repaired,
        });
    }

    /// Takes a leg out of service after an I/O failure.
    pub(super) fn degrade(&mut self, i: usize, error: &StorageError, found_by: FoundBy) {
        let leg = &mut self.legs[i];
        leg.io_errors += 1;
        leg.state = LegState::Degraded;
        leg.resilvering = false;
        leg.synced = None;
        leg.sums.clear();
        leg.reason = Some(format!("device failed: {error}"));
        self.event(i, None, FaultKind::Io, found_by, false);
    }

    /// Commits to a leg; a failure degrades it. Returns whether it succeeded. The leg's
    /// in-memory checksum table follows every checksum entry the commit writes (it is dropped
    /// if the commit fails).
    pub(super) async fn commit_leg(&mut self, i: usize, commit: Commit, found_by: FoundBy) -> bool {
        let Leg {
            device: Some(device),
            sums,
            ..
        } = &mut self.legs[i]
        else {
            return false;
        };
        // Patched before the commit, which takes it: on failure `degrade` drops the table.
        sums.apply(&commit);
        match device.commit(commit).await {
            Ok(()) => true,
            Err(e) => {
                self.degrade(i, &e, found_by);
                false
            }
        }
    }

    /// Writes a new header generation to leg `i` (durably). `consistent`: the image reflects
    /// the secondary's current head and next sequence number.
    pub(super) async fn write_header(
        &mut self,
        i: usize,
        consistent: bool,
        found_by: FoundBy,
    ) -> bool {
        let header = self.next_header(i, consistent);
        if !self.commit_leg(i, header_commit(&header), found_by).await {
            return false;
        }
        self.header_written(i, &header);
        true
    }

    /// The next header generation of leg `i`, naming the secondary's current head and next
    /// sequence number. `consistent`: the image reflects them.
    pub(super) fn next_header(&self, i: usize, consistent: bool) -> PrimaryHeader {
        let (head, next_seq) = self.position();
        PrimaryHeader {
            store_id: self.store_id,
            block_size: self.block_size(),
            flags: if consistent { FLAG_CONSISTENT } else { 0 },
            block_count: self.block_count(),
            generation: self.legs[i].generation.saturating_add(1),
            head: head.0,
            next_seq,
            leg_index: i as u16,
            leg_count: self.legs.len() as u16,
        }
    }

    /// Records that `header` is now leg `i`'s current header.
    pub(super) fn header_written(&mut self, i: usize, header: &PrimaryHeader) {
        let leg = &mut self.legs[i];
        leg.generation = header.generation;
        leg.synced = header
            .consistent()
            .then_some((VolumeId(header.head), header.next_seq));
    }

    /// Makes `data` (if any) durable on each of `legs` and then, on each leg whose data commit
    /// succeeded, a new consistent header naming the secondary's current position.
    ///
    /// The legs are handled concurrently ([`join_all`]): each leg's future commits its data and
    /// then its header, in that order (the header vouches for the data, so it is written only
    /// once the data is durable on that leg), while the other legs' I/O proceeds alongside. A
    /// leg whose device fails is degraded, as [`Mirror::commit_leg`] does.
    pub(super) async fn commit_legs(
        &mut self,
        legs: &[usize],
        data: Option<&Commit>,
        found_by: FoundBy,
    ) {
        let headers: Vec<PrimaryHeader> = legs.iter().map(|&i| self.next_header(i, true)).collect();
        if let Some(data) = data {
            // Patched before the commits; a leg whose commit fails is degraded, which drops it.
            for &i in legs {
                if let Some(leg) = self.legs.get_mut(i) {
                    leg.sums.apply(data);
                }
            }
        }
        let results = {
            let mut devices: Vec<Option<&mut P>> =
                self.legs.iter_mut().map(|l| l.device.as_mut()).collect();
            let futures: Vec<_> = legs
                .iter()
                .zip(&headers)
                .map(|(&i, header)| {
                    // Each device is lent to one future at most.
                    let device = devices.get_mut(i).and_then(Option::take);
                    async move {
                        let Some(device) = device else {
                            return Err(None);
                        };
                        if let Some(data) = data {
                            device.commit(data.clone()).await.map_err(Some)?;
                        }
                        device.commit(header_commit(header)).await.map_err(Some)
                    }
                })
                .collect();
            join_all(futures).await
        };
        for ((&i, header), result) in legs.iter().zip(&headers).zip(results) {
            match result {
                Ok(()) => self.header_written(i, header),
                Err(Some(e)) => self.degrade(i, &e, found_by),
                Err(None) => {}
            }
        }
    }

    pub(super) fn chunk_blocks(&self) -> u64 {
        (CHUNK_BYTES / u64::from(self.block_size())).max(1)
    }

    pub(super) fn check_range(&self, addr: u64, blocks: u64) -> Result<()> {
        let block_count = self.block_count();
        if blocks == 0 || addr >= block_count || blocks > block_count - addr {
            return Err(Error::BlockOutOfRange {
                addr,
                blocks,
                block_count,
            });
        }
        Ok(())
    }
}
