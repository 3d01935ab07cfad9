//! Making a mirror: creating it, opening it, attaching a primary to an open store, and
//! bringing each leg in line with the secondary (the plan its header calls for).

use super::*;

impl<P: Storage, S: Storage> Mirror<P, S> {
    // ----- construction ----------------------------------------------------------------------

    /// Creates a new system: an empty secondary store on `secondary` and a primary on `legs`
    /// (at least one device; each must hold no primary of another store).
    pub async fn create(
        secondary: S,
        legs: Vec<P>,
        create: CreateOptions,
        options: MirrorOptions,
        clock: Rc<dyn Clock>,
    ) -> Result<Self> {
        Self::check_leg_count(legs.len())?;
        for (i, leg) in legs.iter().enumerate() {
            let mut bytes = [0u8; 2 * PRIMARY_HEADER_LEN];
            leg.read_at(HEADER_OBJECT, 0, &mut bytes).await?;
            if let HeaderState::Valid(h) = current_header(&bytes) {
                return Err(Error::InvalidArgument(format!(
                    "device {i} already holds the primary copy of store {:#018x}; open that store, \
                     or remove its primary.* objects first",
                    h.store_id
                )));
            }
        }
        let store = Store::create(secondary, create, clock).await?;
        Self::attach(store, legs, options).await
    }

    /// Opens the system: recovers the secondary, recognizes each leg by its header and brings
    /// lagging, blank or inconsistent legs up to date (see [`Mirror::open_report`]).
    pub async fn open(
        secondary: S,
        legs: Vec<P>,
        options: MirrorOptions,
        clock: Rc<dyn Clock>,
    ) -> Result<Self> {
        Self::check_leg_count(legs.len())?;
        let store = Store::open_secondary(secondary, clock).await?;
        Self::attach(store, legs, options).await
    }

    /// Puts a primary on `legs` beside an open store (for instance one created by importing a
    /// baseline image). Legs that hold this store's primary are reconciled, blank ones are filled;
    /// a device holding another store's primary is refused.
    pub async fn attach(secondary: Store<S>, legs: Vec<P>, options: MirrorOptions) -> Result<Self> {
        Self::check_leg_count(legs.len())?;
        // A store acts on no policy by itself (a `Managed` mirror does, through the controller),
        // so every change of the secondary's head goes through here and the primary keeps step.
        let zero_crc = crc(&vec![0u8; secondary.block_size() as usize]);
        let store_id = secondary.info().store_id;
        let mut this = Mirror {
            secondary,
            legs: legs.into_iter().map(Leg::new).collect(),
            options,
            pending: BTreeMap::new(),
            next_leg: 0,
            served_by_secondary: 0,
            unrecoverable_reads: 0,
            secondary_blocks_restored: 0,
            secondary_blocks_lost: 0,
            events: VecDeque::new(),
            open_report: Vec::new(),
            zero_crc,
            store_id,
        };
        let restored = this.restore_secondary_tail().await?;
        let mut plans = Vec::with_capacity(this.legs.len());
        for i in 0..this.legs.len() {
            let plan = match this.plan(i).await? {
                // The legs were the source of what the secondary got back; they may differ from
                // one another and from it in any block, whatever their headers say.
                Plan::InSync(h) | Plan::Incremental(h, _) if restored => {
                    Plan::Full(Mode::Verify, h.generation)
                }
                plan => plan,
            };
            plans.push(plan);
        }
        // In-sync legs go into service first, so the others can be rebuilt from them.
        for (i, plan) in plans.iter().enumerate() {
            let leg = &mut this.legs[i];
            match plan {
                Plan::InSync(h) => {
                    leg.generation = h.generation;
                    leg.synced = Some((VolumeId(h.head), h.next_seq));
                }
                Plan::Incremental(h, _) => {
                    leg.generation = h.generation;
                    leg.resilvering = true;
                }
                Plan::Full(_, generation) => {
                    leg.generation = *generation;
                    leg.resilvering = true;
                }
                Plan::Failed(_) => {}
            }
        }
        let mut report = Vec::with_capacity(plans.len());
        for (i, plan) in plans.into_iter().enumerate() {
            let outcome = match plan {
                Plan::InSync(_) => LegOpenOutcome::InSync,
                Plan::Failed(e) => {
                    this.degrade(i, &e, FoundBy::Resilver);
                    LegOpenOutcome::Failed(e.to_string())
                }
                Plan::Incremental(_, dirty) => {
                    match this.resilver(i, &dirty, Mode::CatchUp).await {
                        Ok(r) => LegOpenOutcome::Reconciled(r),
                        Err(e) => LegOpenOutcome::Failed(e.to_string()),
                    }
                }
                Plan::Full(mode, _) => {
                    let all = [(0, this.block_count())];
                    match this.resilver(i, &all, mode).await {
                        Ok(r) => LegOpenOutcome::Resilvered(r),
                        Err(e) => LegOpenOutcome::Failed(e.to_string()),
                    }
                }
            };
            report.push(outcome);
        }
        this.open_report = report;
        Ok(this)
    }

    /// Gives the secondary back the acknowledged writes it lost, from the primary. Returns
    /// whether it wrote anything.
    ///
    /// Recovery cannot tell damage to the last record of the head's segment from a write torn
    /// by a crash (no later record vouches that a sync covered it), so it cuts that record. The
    /// legs can vouch: the primary only ever receives blocks the secondary held durably, so a
    /// consistent leg header naming the secondary's head with a *later* sequence number than
    /// the secondary now has means the secondary lost entries it had acknowledged. Each block
    /// where the best such leg (the latest header; a copy failing its checksum is taken from the
    /// next) differs from the secondary's head is written back to the secondary as a new entry,
    /// and the secondary is synced, before the legs are reconciled with it.
    pub(super) async fn restore_secondary_tail(&mut self) -> Result<bool> {
        let (head, next_seq) = self.position();
        let mut sources: Vec<(u64, usize)> = Vec::new();
        for (i, leg) in self.legs.iter().enumerate() {
            let Some(device) = leg.device.as_ref() else {
                continue;
            };
            let mut bytes = [0u8; 2 * PRIMARY_HEADER_LEN];
            if device.read_at(HEADER_OBJECT, 0, &mut bytes).await.is_err() {
                continue;
            }
            if let HeaderState::Valid(h) = current_header(&bytes) {
                if h.store_id == self.store_id
                    && h.consistent()
                    && h.block_size == self.block_size()
                    && h.block_count == self.block_count()
                    && h.head == head.0
                    && h.next_seq > next_seq
                {
                    sources.push((h.next_seq, i));
                }
            }
        }
        if sources.is_empty() {
            return Ok(false);
        }
        // The latest header first; ties by leg order.
        sources.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let bs = self.block_size() as usize;
        let block_count = self.block_count();
        let chunk = self.chunk_blocks();
        let mut restored = 0u64;
        let mut lost = 0u64;
        let mut at = 0;
        // Bounded: each round moves `at` forward by at least one block.
        while at < block_count {
            let n = chunk.min(block_count - at);
            let mut copies = Vec::with_capacity(sources.len());
            for &(_, i) in &sources {
                if let Some(device) = self.legs[i].device.as_ref() {
                    if let Ok(copy) = read_leg(device, at, n, self.block_size()).await {
                        copies.push(copy);
                    }
                }
            }
            let mut writes: Vec<(u64, Vec<u8>)> = Vec::new();
            for k in 0..n {
                let addr = at + k;
                let j = k as usize;
                let good = copies.iter().find_map(|(image, sums)| {
                    let block = image.get(j * bs..(j + 1) * bs)?;
                    (sums.get(j) == Some(&block_crc(addr, block))).then_some(block)
                });
                let Some(good) = good else {
                    // No leg vouches for this block: whatever the secondary lost of it is gone.
                    lost += 1;
                    continue;
                };
                let mut current = vec![0u8; bs];
                let same = self
                    .secondary
                    .read_into(head, addr, &mut current)
                    .await
                    .is_ok_and(|()| current == good);
                if !same {
                    writes.push((addr, good.to_vec()));
                }
            }
            for (addr, data) in &writes {
                self.secondary.write(*addr, data).await?;
                restored += 1;
            }
            at += n;
        }
        self.secondary_blocks_lost += lost;
        if restored == 0 {
            return Ok(false);
        }
        self.secondary.sync().await?;
        self.secondary_blocks_restored += restored;
        Ok(true)
    }

    pub(super) fn check_leg_count(n: usize) -> Result<()> {
        if n == 0 || n > usize::from(u16::MAX) {
            return Err(Error::InvalidArgument(format!(
                "a primary needs between 1 and 65535 devices, not {n}"
            )));
        }
        Ok(())
    }

    /// Reads a device's header and decides how to bring it up to date.
    pub(super) async fn plan(&self, i: usize) -> Result<Plan> {
        let Some(device) = self.legs[i].device.as_ref() else {
            return Ok(Plan::Full(Mode::Blank, 0));
        };
        self.plan_device(i, device).await
    }

    pub(super) async fn plan_device(&self, i: usize, device: &P) -> Result<Plan> {
        let mut bytes = [0u8; 2 * PRIMARY_HEADER_LEN];
        if let Err(e) = device.read_at(HEADER_OBJECT, 0, &mut bytes).await {
            return Ok(Plan::Failed(e));
        }
        let header = match current_header(&bytes) {
            HeaderState::Blank => {
                // A device with no header but with our objects (say, a header lost to damage)
                // is compared rather than assumed empty.
                let has_objects =
                    match (device.len(IMAGE_OBJECT).await, device.len(SUM_OBJECT).await) {
                        (Ok(a), Ok(b)) => a.is_some() || b.is_some(),
                        (Err(e), _) | (_, Err(e)) => return Ok(Plan::Failed(e)),
                    };
                let mode = if has_objects {
                    Mode::Compare
                } else {
                    Mode::Blank
                };
                return Ok(Plan::Full(mode, 0));
            }
            HeaderState::Damaged => return Ok(Plan::Full(Mode::Compare, 0)),
            HeaderState::Unsupported(found) => {
                return Err(Error::UnsupportedVersion {
                    found,
                    supported: PRIMARY_LAYOUT_VERSION,
                })
            }
            HeaderState::Valid(h) => h,
        };
        if header.store_id != self.store_id {
            return Err(Error::InvalidArgument(format!(
                "device {i} holds the primary copy of store {:#018x}, not of this store ({:#018x})",
                header.store_id, self.store_id
            )));
        }
        if header.block_size != self.block_size()
            || header.block_count != self.block_count()
            || !header.consistent()
        {
            return Ok(Plan::Full(Mode::Compare, header.generation));
        }
        let (head, next_seq) = self.position();
        if header.head == head.0 && header.next_seq == next_seq {
            return Ok(Plan::InSync(header));
        }
        // If the log cannot be walked (say, a damaged record), compare everything instead.
        Ok(match self.written_since(&header).await.ok().flatten() {
            Some(dirty) => Plan::Incremental(header, dirty),
            None => Plan::Full(Mode::Verify, header.generation),
        })
    }

    /// The blocks that may differ between a leg and the head, as runs, if the log still tells:
    /// the header's volume must be the head or one of its visible ancestors, with the header's
    /// sequence number inside that partition. Then the leg holds the head as of that sequence
    /// number plus some later writes, and every block the head changed since is named by a log
    /// entry with a later sequence number (compaction and deletion keep the last write of each
    /// block some volume reads). Entries of every partition are taken, not only the head's
    /// ancestors (deleted ancestors are not listed as volumes): a superset is merely more work.
    pub(super) async fn written_since(
        &self,
        header: &PrimaryHeader,
    ) -> Result<Option<Vec<(u64, u64)>>> {
        let volumes = self.secondary.volumes();
        let find = |id: VolumeId| volumes.iter().find(|v| v.id == id);
        let mut at = Some(self.secondary.head());
        let mut found = None;
        for _ in 0..=volumes.len() {
            let Some(v) = at.and_then(find) else { break };
            if v.kind == VolumeKind::Baseline {
                break;
            }
            if v.id.0 == header.head {
                found = Some(v);
                break;
            }
            at = v.parent;
        }
        let Some(origin) = found else { return Ok(None) };
        if header.next_seq < origin.first_seq || header.next_seq > origin.next_seq {
            return Ok(None);
        }
        let limit = self.block_count() / 2;
        let mut dirty = BTreeSet::new();
        let mut cursor = self.secondary.cursor(CursorStart::Seq(header.next_seq))?;
        while let Some(entry) = self.secondary.next_entry(&mut cursor, false).await? {
            for a in entry.addr..entry.addr + u64::from(entry.blocks) {
                dirty.insert(a);
            }
            if dirty.len() as u64 > limit {
                return Ok(None); // comparing everything costs no more
            }
        }
        Ok(Some(runs(dirty)))
    }
}
