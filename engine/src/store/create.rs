//! Creating a store: empty (a zero baseline) or from a baseline image, streamed in.

use super::*;

fn check_geometry(block_size: u32, block_count: u64) -> Result<()> {
    if !block_size.is_power_of_two()
        || !(format::BLOCK_SIZE_MIN..=format::BLOCK_SIZE_MAX).contains(&block_size)
    {
        return Err(Error::InvalidBlockSize(block_size));
    }
    if block_count == 0 || block_count > format::BLOCK_COUNT_MAX {
        return Err(Error::InvalidBlockCount(block_count));
    }
    Ok(())
}

async fn has_store<S: Storage>(storage: &S) -> Result<bool> {
    Ok(storage
        .list()
        .await?
        .iter()
        .any(|n| parse_meta_object(n).is_some()))
}

fn derive_store_id(created_ms: u64, block_count: u64) -> u64 {
    // Tells stores apart in copy streams. `RandomState` is seeded from the operating system's
    // randomness where there is one; the counter and the time keep two stores made in one
    // process (or on a platform without randomness) apart. Callers that have a better source
    // (the browser's `crypto`) pass `CreateOptions::store_id`.
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(created_ms);
    hasher.write_u64(block_count);
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

/// Streams a raw image into a new store's baseline; see [`Store::import_baseline`].
pub struct BaselineImport<S: Storage> {
    storage: S,
    clock: Rc<dyn Clock>,
    block_size: u32,
    expected_bytes: Option<u64>,
    store_id: Option<u64>,
    written: u64,
    partial: Vec<u8>,
    /// CRC-32C of the `baseline.sum` bytes written so far (the sums go out with the blocks, so
    /// an import's memory does not grow with the image).
    sum_crc: u32,
}

impl<S: Storage> BaselineImport<S> {
    /// Bytes accepted so far.
    pub fn bytes_imported(&self) -> u64 {
        self.written + self.partial.len() as u64
    }

    /// Adds the next bytes of the image.
    pub async fn push(&mut self, bytes: &[u8]) -> Result<()> {
        let total = self.bytes_imported() + bytes.len() as u64;
        let limit = self
            .expected_bytes
            .unwrap_or(format::BLOCK_COUNT_MAX * u64::from(self.block_size));
        if total > limit {
            return Err(Error::ImageSize {
                expected: limit,
                actual: total,
            });
        }
        self.partial.extend_from_slice(bytes);
        if self.partial.len() >= IMAGE_CHUNK_BYTES {
            self.write_whole_blocks().await?;
        }
        Ok(())
    }

    pub(super) async fn write_whole_blocks(&mut self) -> Result<()> {
        let block_size = self.block_size as usize;
        let whole = self.partial.len() / block_size * block_size;
        if whole == 0 {
            return Ok(());
        }
        let rest = self.partial.split_off(whole);
        let chunk = std::mem::replace(&mut self.partial, rest);
        let first_block = self.written / u64::from(self.block_size);
        // Zero blocks are left as holes: their checksum entry is zero (which stands for a zero
        // block, as after a merge into a zero baseline) and their bytes are never written, so
        // a sparse image stays sparse. Runs of data blocks go in one write each.
        let mut sums = Vec::with_capacity(whole / block_size * 4);
        let mut commit = Commit::new(false);
        let mut run: Option<usize> = None; // first block of the current run of data blocks
        let blocks = whole / block_size;
        for (i, block) in chunk.chunks_exact(block_size).enumerate() {
            let zero = block.iter().all(|&b| b == 0);
            let sum = if zero {
                0
            } else {
                block_crc(first_block + i as u64, block)
            };
            sums.extend_from_slice(&sum.to_le_bytes());
            match (zero, run) {
                (false, None) => run = Some(i),
                (true, Some(first)) => {
                    commit.write(
                        BASELINE_OBJECT,
                        self.written + (first * block_size) as u64,
                        chunk[first * block_size..i * block_size].to_vec(),
                    );
                    run = None;
                }
                _ => {}
            }
        }
        if let Some(first) = run {
            commit.write(
                BASELINE_OBJECT,
                self.written + (first * block_size) as u64,
                chunk[first * block_size..blocks * block_size].to_vec(),
            );
        }
        self.sum_crc = format::crc_append(self.sum_crc, &sums);
        commit.write(BASELINE_SUM_OBJECT, first_block * 4, sums);
        let start = self.written;
        self.written += whole as u64;
        self.storage.commit(commit).await?;
        // Written to the device while the next chunk arrives: `finish` flushes less.
        self.storage
            .write_behind(BASELINE_OBJECT, start, whole as u64);
        Ok(())
    }

    /// Adds `bytes` bytes of zeros (whole blocks, at a block boundary) without reading or
    /// writing them: they stay holes. For the holes of a sparse input (found with `SEEK_DATA`),
    /// and the all-zero chunks a copy stream leaves out of a baseline.
    pub async fn push_zeros(&mut self, bytes: u64) -> Result<()> {
        self.write_whole_blocks().await?;
        let block_size = u64::from(self.block_size);
        if !self.partial.is_empty() || !bytes.is_multiple_of(block_size) {
            return Err(Error::InvalidArgument(
                "zeros are skipped in whole blocks, at a block boundary".into(),
            ));
        }
        let total = self.written.saturating_add(bytes);
        let limit = self
            .expected_bytes
            .unwrap_or(format::BLOCK_COUNT_MAX * block_size);
        if total > limit {
            return Err(Error::ImageSize {
                expected: limit,
                actual: total,
            });
        }
        // The checksum entries of zero blocks are zeros, which `baseline.sum`'s final length
        // leaves as holes; the object's CRC still covers them.
        let zeros = [0u8; 4096];
        let mut left = bytes / block_size * 4;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            self.sum_crc = format::crc_append(self.sum_crc, &zeros[..n]);
            left -= n as u64;
        }
        self.written = total;
        Ok(())
    }

    /// Completes the import: checks the size, makes the baseline durable, writes the store's
    /// metadata and opens the store.
    pub async fn finish(mut self) -> Result<Store<S>> {
        self.write_whole_blocks().await?;
        let actual = self.bytes_imported();
        let block_size = u64::from(self.block_size);
        let expected = self
            .expected_bytes
            .unwrap_or(actual.div_ceil(block_size) * block_size);
        if !self.partial.is_empty() || actual != expected || actual == 0 {
            return Err(Error::ImageSize { expected, actual });
        }
        let block_count = actual / block_size;
        check_geometry(self.block_size, block_count)?;
        let sum_crc = self.sum_crc;
        let mut commit = Commit::new(true);
        commit
            .truncate(BASELINE_OBJECT, actual)
            .truncate(BASELINE_SUM_OBJECT, block_count * 4);
        self.storage.commit(commit).await?;
        write_initial_journal(
            &mut self.storage,
            self.clock.as_ref(),
            self.block_size,
            block_count,
            BASELINE_IMAGE,
            sum_crc,
            self.store_id,
        )
        .await?;
        Store::open(self.storage, self.clock).await
    }
}

async fn write_initial_journal<S: Storage>(
    storage: &mut S,
    clock: &dyn Clock,
    block_size: u32,
    block_count: u64,
    baseline_kind: u32,
    baseline_sum_crc: u32,
    store_id: Option<u64>,
) -> Result<()> {
    let created_ms = clock.now_ms();
    let mut bytes = Vec::new();
    MetaRecord::Store {
        format_version: FORMAT_VERSION,
        block_size,
        block_count,
        created_ms,
        baseline_kind,
        baseline_sum_crc,
        store_id: store_id.unwrap_or_else(|| derive_store_id(created_ms, block_count)),
        generation: 1,
    }
    .encode(&mut bytes);
    MetaRecord::PartitionCreated {
        volume: 1,
        parent: 0,
        created_ms,
        first_seq: 1,
        segment_generation: 0,
        flags: CREATED_FLAG_HEAD,
    }
    .encode(&mut bytes);
    let mut commit = Commit::new(true);
    // A commit point left by an earlier store in this place would vouch for objects this store
    // never had.
    commit
        .delete(COMMIT_OBJECT)
        .write(&meta_object(1), 0, bytes);
    if storage.new_objects_cost_a_flush() {
        // The first partitions' segments, in the directory flush the journal needs anyway
        // (see `Store::add_spare_segments`).
        for volume in 1..=1 + SPARE_SEGMENTS {
            commit.write(&segment_object(volume, 0), 0, Vec::new());
        }
    }
    storage.commit(commit).await?;
    Ok(())
}

impl<S: Storage> Store<S> {
    /// Creates an empty store (baseline of zeros) on `storage`, which must hold no store.
    pub async fn create(
        mut storage: S,
        options: CreateOptions,
        clock: Rc<dyn Clock>,
    ) -> Result<Self> {
        check_geometry(options.block_size, options.block_count)?;
        if has_store(&storage).await? {
            return Err(Error::AlreadyExists);
        }
        write_initial_journal(
            &mut storage,
            clock.as_ref(),
            options.block_size,
            options.block_count,
            BASELINE_ZERO,
            0,
            options.store_id,
        )
        .await?;
        Store::open(storage, clock).await
    }

    /// Starts creating a store whose baseline is a raw image, streamed in with
    /// [`BaselineImport::push`]. `expected_bytes`, when known, is checked as the bytes arrive.
    pub async fn import_baseline(
        storage: S,
        block_size: u32,
        expected_bytes: Option<u64>,
        store_id: Option<u64>,
        clock: Rc<dyn Clock>,
    ) -> Result<BaselineImport<S>> {
        check_geometry(block_size, 1)?;
        if let Some(expected) = expected_bytes {
            if expected == 0 || expected % u64::from(block_size) != 0 {
                return Err(Error::ImageSize {
                    expected: expected
                        .div_ceil(u64::from(block_size))
                        .saturating_mul(u64::from(block_size)),
                    actual: expected,
                });
            }
            check_geometry(block_size, expected / u64::from(block_size))?;
        }
        if has_store(&storage).await? {
            return Err(Error::AlreadyExists);
        }
        Ok(BaselineImport {
            storage,
            clock,
            block_size,
            expected_bytes,
            store_id,
            written: 0,
            partial: Vec::new(),
            sum_crc: 0,
        })
    }
}
