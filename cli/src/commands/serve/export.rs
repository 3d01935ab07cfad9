//! What `strata serve` exports and how NBD's byte ranges become whole-block operations on the
//! store: every branch's head (`head` is the active branch's) writable, by one client at a time
//! across the store (a write to a parked branch checks it out), and every volume read-only.
//!
//! NBD clients do not promise block alignment, so a write that starts or ends inside a block
//! reads that block from the head, patches it and writes it whole (read-modify-write), and a
//! read fetches the covering blocks and returns the bytes asked for. Zeroing (`TRIM`,
//! `WRITE_ZEROES`) records zero extents (metadata) for the whole blocks that do not read as
//! zeros already, so a client zeroing a fresh export writes nothing.

use std::cell::Cell;

use strata_engine::storage::dir::DirStorage;
use strata_engine::{Error, Managed, Store, VolumeId, LOCATE_BLOCKS_MAX};
use tokio::sync::Mutex;

use super::proto;
use crate::args::VolumeArg;

/// The store being served.
pub type Served = Managed<Store<DirStorage>>;

/// Most bytes put in one log record by a write or a zeroing (the engine's record limit is 16 MiB).
const WRITE_CHUNK_BYTES: u64 = 4 << 20;

/// An error answered to the client: the protocol's error value and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub errno: u32,
    pub message: String,
}

impl Refusal {
    pub fn new(errno: u32, message: impl Into<String>) -> Self {
        Refusal {
            errno,
            message: message.into(),
        }
    }
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        // A volume deleted under a read-only client, a damaged block, a failed commit: EIO.
        let errno = match &e {
            Error::BlockOutOfRange { .. } => proto::EINVAL,
            _ => proto::EIO,
        };
        Refusal::new(errno, format!("{}: {e}", e.code()))
    }
}

/// Which volume an export shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A branch's head, whatever its number becomes while the client is connected (`head`
    /// names the branch active when the client connects). Writes check the branch out first.
    Branch(String),
    /// One volume (a snapshot or the baseline), read-only.
    Volume(VolumeId),
}

/// An export a client asked for by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub target: Target,
    /// Size in bytes.
    pub size: u64,
    pub writable: bool,
    /// For people (`NBD_INFO_DESCRIPTION`, `NBD_OPT_LIST`).
    pub description: String,
}

/// The state every connection shares.
pub struct Server {
    store: Mutex<Served>,
    /// A client has the head open for writing.
    writer: Cell<bool>,
    /// `--read-only`: the head is exported read-only too.
    read_only: bool,
    block_size: u32,
    block_count: u64,
}

impl Server {
    pub fn new(store: Served, read_only: bool) -> Self {
        Server {
            block_size: store.block_size(),
            block_count: store.block_count(),
            store: Mutex::new(store),
            writer: Cell::new(false),
            read_only,
        }
    }

    /// The store back, once no connection is left.
    pub fn into_store(self) -> Served {
        self.store.into_inner()
    }

    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    pub fn size(&self) -> u64 {
        self.block_count * u64::from(self.block_size)
    }

    /// The store, for the server's own use (ticks, the final sync).
    pub fn store(&self) -> &Mutex<Served> {
        &self.store
    }

    /// Looks up an export: `""` or `head` (the active branch's head), a branch's name (its
    /// head), a volume number, `baseline`, or a label.
    pub async fn export(&self, name: &str) -> Result<Export, Refusal> {
        let store = self.store.lock().await;
        let target = match name.parse::<VolumeArg>() {
            _ if name.is_empty() => Target::Branch(store.active_branch().to_string()),
            Ok(VolumeArg::Head) => Target::Branch(store.active_branch().to_string()),
            Ok(VolumeArg::Label(label)) if store.branch_head(&label).is_ok() => {
                Target::Branch(label)
            }
            Ok(arg) => {
                let info = crate::commands::resolve(&store, arg)
                    .map_err(|e| Refusal::new(proto::EINVAL, format!("no export {name:?}: {e}")))?;
                Target::Volume(info.id)
            }
            Err(e) => return Err(Refusal::new(proto::EINVAL, e)),
        };
        let (writable, description) = match &target {
            Target::Branch(branch) => (
                !self.read_only,
                format!(
                    "branch {branch:?}'s head (volume {}), {}",
                    store.branch_head(branch).map_or(0, |v| v.0),
                    if self.read_only {
                        "read-only"
                    } else {
                        "writable"
                    }
                ),
            ),
            Target::Volume(id) if *id == store.head() => {
                (false, format!("volume {id} (the head), read-only"))
            }
            Target::Volume(id) => {
                let info = store
                    .volume(*id)
                    .map_err(|e| Refusal::new(proto::EINVAL, e.to_string()))?;
                let label = label_suffix(&info.label);
                (false, format!("volume {id}{label}, read-only"))
            }
        };
        Ok(Export {
            target,
            size: self.size(),
            writable,
            description,
        })
    }

    /// The exports `NBD_OPT_LIST` names: the head, every branch by name, then every other
    /// volume by number.
    pub async fn list(&self) -> Vec<(String, String)> {
        let store = self.store.lock().await;
        let mut out = vec![(
            "head".to_string(),
            format!("the head (volume {})", store.head()),
        )];
        for b in store.branches() {
            out.push((
                b.name.clone(),
                format!("branch {:?} (volume {})", b.name, b.head),
            ));
        }
        for v in store.volumes() {
            if !v.branch.is_empty() {
                continue;
            }
            let label = label_suffix(&v.label);
            out.push((
                v.id.0.to_string(),
                format!("volume {}{label}, read-only", v.id),
            ));
        }
        out
    }

    /// Takes the head for writing; false if another client has it.
    pub fn claim_writer(&self) -> bool {
        !self.writer.replace(true)
    }

    /// Gives the head back (the writer disconnected).
    pub fn release_writer(&self) {
        self.writer.set(false);
    }

    /// Checks a request's range against the export.
    pub fn check_range(&self, offset: u64, length: u64, errno: u32) -> Result<(), Refusal> {
        match offset.checked_add(length) {
            Some(end) if end <= self.size() => Ok(()),
            _ => Err(Refusal::new(
                errno,
                format!(
                    "bytes {offset}..+{length} are outside the export ({} bytes)",
                    self.size()
                ),
            )),
        }
    }

    /// Blocks `[first, end)` covering bytes `[offset, offset + length)`.
    fn blocks(&self, offset: u64, length: u64) -> (u64, u64) {
        let bs = u64::from(self.block_size);
        (offset / bs, (offset + length).div_ceil(bs))
    }

    /// `length` bytes at `offset` of `target` (checked by the caller: in range, at most
    /// [`proto::PAYLOAD_MAX`]).
    pub async fn read(
        &self,
        target: &Target,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, Refusal> {
        if length == 0 {
            return Ok(Vec::new());
        }
        let (first, end) = self.blocks(offset, length);
        let store = self.store.lock().await;
        let volume = resolve(&store, target)?;
        let data = store.read_at(volume, first, end - first).await?;
        let skip = (offset - first * u64::from(self.block_size)) as usize;
        let mut data = data;
        if skip > 0 {
            data.drain(..skip);
        }
        data.truncate(length as usize);
        Ok(data)
    }

    /// Writes `data` at byte `offset` of `target`'s head (a branch: checked out first); with
    /// `fua`, syncs before returning.
    pub async fn write(
        &self,
        target: &Target,
        offset: u64,
        data: &[u8],
        fua: bool,
    ) -> Result<(), Refusal> {
        let mut store = self.store.lock().await;
        check_out(&mut store, target).await?;
        let bs = u64::from(self.block_size);
        let mut at = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let block = at / bs;
            let within = (at % bs) as usize;
            if within != 0 || (rest.len() as u64) < bs {
                // An edge: read the block, patch it, write it whole.
                let take = rest.len().min(bs as usize - within);
                let mut whole = store.read_at(store.head(), block, 1).await?;
                whole[within..within + take].copy_from_slice(&rest[..take]);
                store.write(block, &whole).await?;
                at += take as u64;
                rest = &rest[take..];
                continue;
            }
            let whole_blocks = (rest.len() as u64 / bs).min(WRITE_CHUNK_BYTES / bs);
            let bytes = (whole_blocks * bs) as usize;
            store.write(block, &rest[..bytes]).await?;
            at += bytes as u64;
            rest = &rest[bytes..];
        }
        if fua {
            store.sync().await?;
        }
        Ok(())
    }

    /// Makes `length` bytes at `offset` of `target`'s head read as zeros; with `fua`, syncs.
    pub async fn zero(
        &self,
        target: &Target,
        offset: u64,
        length: u64,
        fua: bool,
    ) -> Result<(), Refusal> {
        if length == 0 {
            return Ok(());
        }
        let bs = u64::from(self.block_size);
        let end = offset + length;
        let whole_first = offset.div_ceil(bs);
        let whole_end = end / bs;
        if whole_first >= whole_end {
            // Within one block, or across one boundary without a whole block.
            return self.write_zero_bytes(target, offset, length, fua).await;
        }
        if offset < whole_first * bs {
            self.write_zero_bytes(target, offset, whole_first * bs - offset, false)
                .await?;
        }
        let mut store = self.store.lock().await;
        check_out(&mut store, target).await?;
        // Whole blocks become zero extents: metadata only, and only for the blocks that do not
        // read as zeros already.
        store
            .write_zeroes(whole_first, whole_end - whole_first)
            .await?;
        drop(store);
        if end > whole_end * bs {
            self.write_zero_bytes(target, whole_end * bs, end - whole_end * bs, false)
                .await?;
        }
        if fua {
            self.store.lock().await.sync().await?;
        }
        Ok(())
    }

    async fn write_zero_bytes(
        &self,
        target: &Target,
        offset: u64,
        length: u64,
        fua: bool,
    ) -> Result<(), Refusal> {
        self.write(target, offset, &vec![0u8; length as usize], fua)
            .await
    }

    /// The durability point.
    pub async fn flush(&self) -> Result<(), Refusal> {
        self.store.lock().await.sync().await?;
        Ok(())
    }

    /// `base:allocation` extents from `offset`: (length, flags) pairs, consecutive, covering at
    /// least the first byte and never past `offset + length`. Looks at most
    /// [`LOCATE_BLOCKS_MAX`] blocks (and at most 2 GiB) per call; the client asks again for
    /// the rest.
    pub async fn block_status(
        &self,
        target: &Target,
        offset: u64,
        length: u64,
        one: bool,
    ) -> Result<Vec<(u32, u32)>, Refusal> {
        let bs = u64::from(self.block_size);
        let limit = LOCATE_BLOCKS_MAX.min((1u64 << 31) / bs);
        let (first, end) = self.blocks(offset, length);
        let end = end.min(first + limit);
        let stop = (offset + length).min(end * bs);
        let store = self.store.lock().await;
        let volume = resolve(&store, target)?;
        let mut extents: Vec<(u32, u32)> = Vec::new();
        let mut at = offset;
        // Looked up in growing windows, so that a client asking for one extent at a time
        // (qemu sets NBD_CMD_FLAG_REQ_ONE) costs the length of that extent, not the limit's.
        let mut window = 64u64;
        let mut block = first;
        'windows: while block < end {
            let n = window.min(end - block);
            for (i, p) in store.locate(volume, block, n)?.iter().enumerate() {
                let block_end = ((block + i as u64 + 1) * bs).min(stop);
                if block_end <= at {
                    continue;
                }
                let status = if p.zero {
                    proto::STATE_HOLE | proto::STATE_ZERO
                } else {
                    0
                };
                let len = (block_end - at) as u32;
                match extents.last_mut() {
                    Some((l, s)) if *s == status => *l += len,
                    _ => {
                        if one && !extents.is_empty() {
                            break 'windows;
                        }
                        extents.push((len, status));
                    }
                }
                at = block_end;
            }
            block += n;
            window = (window * 2).min(limit);
        }
        Ok(extents)
    }
}

/// The volume `target` names now (a branch deleted since the client connected names none).
fn resolve(store: &Served, target: &Target) -> Result<VolumeId, Refusal> {
    match target {
        Target::Branch(branch) => Ok(store.branch_head(branch)?),
        Target::Volume(id) => Ok(*id),
    }
}

/// Makes `target`'s branch the active one before a write (one writer at a time, so this
/// switches only when the writer's branch was not active when it connected).
async fn check_out(store: &mut Served, target: &Target) -> Result<(), Refusal> {
    match target {
        Target::Branch(branch) if store.active_branch() != branch => {
            store.checkout(branch).await?;
            Ok(())
        }
        Target::Branch(_) => Ok(()),
        Target::Volume(id) => Err(Refusal::new(
            proto::EPERM,
            format!("volume {id} is read-only"),
        )),
    }
}

/// ` "label"`, or nothing for an unlabelled volume.
fn label_suffix(label: &str) -> String {
    if label.is_empty() {
        String::new()
    } else {
        format!(" {label:?}")
    }
}
