//! [`Volume`]: what a block volume with snapshots offers, whether it is one [`Store`] or a
//! mirror ([`Mirror`]: a store, the secondary, beside a primary copy of the head mirrored
//! on several devices).
//!
//! Reads of history, the log cursor and every query are answered by the store that holds the
//! history ([`Volume::store`]), so they are written once, here. Changes are each type's own: a
//! mirror writes its primary legs too, syncs them with the store, and reads the head from them.
//!
//! The futures are not `Send`: the engine runs on one thread (a browser worker, or natively
//! `pollster::block_on`).

use crate::mirror::Mirror;
use crate::storage::Storage;
use crate::store::{
    CompactReport, CursorStart, Document, Documents, Extent, LogCursor, LogEntry, Progress,
    SpaceInfo, Store, StoreInfo, VolumeInfo,
};
use crate::{Result, VolumeId};

/// A block volume with snapshots: the live head, sealed snapshot volumes and the baseline,
/// written, read, snapshotted and reshaped the same way whatever keeps it.
#[allow(async_fn_in_trait)] // single-threaded by design (see the module documentation)
pub trait Volume {
    /// The storage the history lives on.
    type Storage: Storage;

    /// The store that holds the volume's history (for a mirror: its secondary).
    fn store(&self) -> &Store<Self::Storage>;

    /// Writes whole blocks from block `addr` as one log entry; returns its sequence number.
    /// Durable after the next [`Volume::sync`].
    async fn write(&mut self, addr: u64, data: &[u8]) -> Result<u64>;

    /// Writes several entries as one atomic record; returns the first entry's sequence number.
    async fn write_batch(&mut self, writes: &[(u64, &[u8])]) -> Result<u64>;

    /// Makes `blocks` blocks from `addr` read as zeros (trim, discard, write-zeroes); returns
    /// how many did not already (see [`Store::write_zeroes`]). Durable after the next
    /// [`Volume::sync`].
    async fn write_zeroes(&mut self, addr: u64, blocks: u64) -> Result<u64>;

    /// The durability point: every write so far survives a crash once this returns.
    async fn sync(&mut self) -> Result<()>;

    /// Seals the head as a snapshot labelled `label`; returns the snapshot's identifier.
    async fn snapshot(&mut self, label: Option<&str>) -> Result<VolumeId>;

    /// The most recent data of `blocks` blocks from `addr` (a mirror may repair what it reads).
    async fn read(&mut self, addr: u64, blocks: u64) -> Result<Vec<u8>>;

    /// In-place compaction of snapshot `volume`; `progress` may return `false` to cancel.
    async fn compact(
        &mut self,
        volume: VolumeId,
        progress: &mut dyn FnMut(Progress) -> bool,
    ) -> Result<CompactReport>;

    /// Folds the oldest partitions, up to and including snapshot `volume`, into the baseline;
    /// returns how many partitions were merged.
    async fn merge(
        &mut self,
        volume: VolumeId,
        progress: &mut dyn FnMut(Progress) -> bool,
    ) -> Result<u32>;

    /// Deletes snapshot `volume` (what its descendants need stays).
    async fn delete_volume(&mut self, volume: VolumeId) -> Result<CompactReport>;

    /// Makes the head read as `to` does, keeping the old head as a snapshot labelled `label`;
    /// returns the new head's identifier.
    async fn rollback(&mut self, to: VolumeId, label: Option<&str>) -> Result<VolumeId>;

    /// Appends documents of the layers above (the policy executor's) to the store's journal, as
    /// one durable commit (see [`Store::append_documents`]).
    async fn append_documents(&mut self, documents: &[Document]) -> Result<()>;

    /// Closes the volume after a final sync (a store writes its commit point, so the next open
    /// is quick; see [`Store::close`]).
    async fn close(self) -> Result<()>
    where
        Self: Sized;

    /// The documents the store's journal keeps for the layers above.
    fn documents(&self) -> &Documents {
        self.store().documents()
    }

    /// Block size in bytes.
    fn block_size(&self) -> u32 {
        self.store().block_size()
    }

    /// Number of blocks in the volume.
    fn block_count(&self) -> u64 {
        self.store().block_count()
    }

    /// The live head's volume identifier.
    fn head(&self) -> VolumeId {
        self.store().head()
    }

    /// Facts about the store.
    fn info(&self) -> StoreInfo {
        self.store().info()
    }

    /// Every volume: the baseline first, then the partitions in creation order.
    fn volumes(&self) -> Vec<VolumeInfo> {
        self.store().volumes()
    }

    /// Information about one volume.
    fn volume(&self, id: VolumeId) -> Result<VolumeInfo> {
        self.store().volume(id)
    }

    /// Space accounting for every partition.
    fn space(&self) -> Vec<SpaceInfo> {
        self.store().space()
    }

    /// The data of `blocks` blocks from `addr` exactly as volume `volume` holds them.
    async fn read_at(&self, volume: VolumeId, addr: u64, blocks: u64) -> Result<Vec<u8>> {
        self.store().read_at(volume, addr, blocks).await
    }

    /// The block extents whose contents differ between volumes `a` and `b`.
    async fn diff(&self, a: VolumeId, b: VolumeId) -> Result<Vec<Extent>> {
        self.store().diff(a, b).await
    }

    /// A cursor over the log in sequence order (read-next-entry).
    fn cursor(&self, start: CursorStart) -> Result<LogCursor> {
        self.store().cursor(start)
    }

    /// The entry at `cursor`, advancing it; `None` at the end of the log.
    async fn next_entry(
        &self,
        cursor: &mut LogCursor,
        with_data: bool,
    ) -> Result<Option<LogEntry>> {
        self.store().next_entry(cursor, with_data).await
    }
}

impl<S: Storage> Volume for Store<S> {
    type Storage = S;

    fn store(&self) -> &Store<S> {
        self
    }

    async fn write(&mut self, addr: u64, data: &[u8]) -> Result<u64> {
        Store::write(self, addr, data).await
    }

    async fn write_batch(&mut self, writes: &[(u64, &[u8])]) -> Result<u64> {
        Store::write_batch(self, writes).await
    }

    async fn write_zeroes(&mut self, addr: u64, blocks: u64) -> Result<u64> {
        Store::write_zeroes(self, addr, blocks).await
    }

    async fn sync(&mut self) -> Result<()> {
        Store::sync(self).await
    }

    async fn snapshot(&mut self, label: Option<&str>) -> Result<VolumeId> {
        Store::snapshot(self, label).await
    }

    async fn read(&mut self, addr: u64, blocks: u64) -> Result<Vec<u8>> {
        Store::read(self, addr, blocks).await
    }

    async fn compact(
        &mut self,
        volume: VolumeId,
        progress: &mut dyn FnMut(Progress) -> bool,
    ) -> Result<CompactReport> {
        Store::compact(self, volume, progress).await
    }

    async fn merge(
        &mut self,
        volume: VolumeId,
        progress: &mut dyn FnMut(Progress) -> bool,
    ) -> Result<u32> {
        Store::merge(self, volume, progress).await
    }

    async fn delete_volume(&mut self, volume: VolumeId) -> Result<CompactReport> {
        Store::delete_volume(self, volume).await
    }

    async fn rollback(&mut self, to: VolumeId, label: Option<&str>) -> Result<VolumeId> {
        Store::rollback(self, to, label).await
    }

    async fn append_documents(&mut self, documents: &[Document]) -> Result<()> {
        Store::append_documents(self, documents).await
    }

    async fn close(self) -> Result<()> {
        Store::close(self).await.map(drop)
    }
}

impl<P: Storage, S: Storage> Volume for Mirror<P, S> {
    type Storage = S;

    fn store(&self) -> &Store<S> {
        self.secondary()
    }

    async fn write(&mut self, addr: u64, data: &[u8]) -> Result<u64> {
        Mirror::write(self, addr, data).await
    }

    async fn write_batch(&mut self, writes: &[(u64, &[u8])]) -> Result<u64> {
        Mirror::write_batch(self, writes).await
    }

    async fn write_zeroes(&mut self, addr: u64, blocks: u64) -> Result<u64> {
        Mirror::write_zeroes(self, addr, blocks).await
    }

    async fn sync(&mut self) -> Result<()> {
        Mirror::sync(self).await
    }

    async fn snapshot(&mut self, label: Option<&str>) -> Result<VolumeId> {
        Ok(Mirror::snapshot(self, label).await?.volume)
    }

    async fn read(&mut self, addr: u64, blocks: u64) -> Result<Vec<u8>> {
        Mirror::read(self, addr, blocks).await
    }

    async fn compact(
        &mut self,
        volume: VolumeId,
        progress: &mut dyn FnMut(Progress) -> bool,
    ) -> Result<CompactReport> {
        Mirror::compact(self, volume, progress).await
    }

    async fn merge(
        &mut self,
        volume: VolumeId,
        progress: &mut dyn FnMut(Progress) -> bool,
    ) -> Result<u32> {
        Mirror::merge(self, volume, progress).await
    }

    async fn delete_volume(&mut self, volume: VolumeId) -> Result<CompactReport> {
        Mirror::delete_volume(self, volume).await
    }

    async fn rollback(&mut self, to: VolumeId, label: Option<&str>) -> Result<VolumeId> {
        Mirror::rollback(self, to, label).await
    }

    async fn append_documents(&mut self, documents: &[Document]) -> Result<()> {
        Mirror::append_documents(self, documents).await
    }

    async fn close(self) -> Result<()> {
        Mirror::close(self).await.map(drop)
    }
}
