//! The command line, as clap derive structures. Each subcommand's long help explains the concept
//! it works with and ends with an example.

use std::path::PathBuf;
use std::str::FromStr;

use clap::{ArgGroup, Args, Parser, Subcommand};

const ABOUT_LONG: &str = "\
Incremental block storage on a directory.

A strata store holds one block volume as a baseline partition (a raw image, or all zeros) plus an \
incremental log of block writes. The log is cut into snapshot partitions: `strata snapshot` seals \
the partition being written as a read-only snapshot and starts a new writable head on top of it. \
Every partition has a volume identifier: 0 is the baseline, then 1, 2, 3, ... in creation order, \
the newest being the head. Any volume can be read, listed and exported exactly as it was.

Snapshots can be compacted in place (`compact`), folded into the baseline (`merge`), deleted \
(`delete`), rolled back to (`rollback`), compared block by block (`diff`), accounted for (`du`) \
and copied to another store (`send` and `receive`).

Exit codes: 0 success, 1 an engine error (printed as `error[CODE]: message`), 2 a usage error.";

const AFTER_HELP: &str = "\
Example:
  strata create ./vol --blocks 1024
  strata write ./vol --addr 10 --pattern 0xab --blocks 4
  strata snapshot ./vol --label before
  strata write ./vol --addr 10 --file new.bin
  strata read ./vol --addr 10 --volume 1 --hex
  strata log ./vol";

/// A volume given on the command line: a number, `head` or `baseline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeArg {
    /// The live head, whatever its number.
    Head,
    /// A volume by identifier (`baseline` is 0).
    Id(u64),
}

impl FromStr for VolumeArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "head" => Ok(VolumeArg::Head),
            "baseline" | "base" => Ok(VolumeArg::Id(0)),
            other => other
                .parse::<u64>()
                .map(VolumeArg::Id)
                .map_err(|_| format!("`{s}` is not a volume: give a number, `head` or `baseline`")),
        }
    }
}

/// Parses a byte: decimal (`171`), hexadecimal (`0xab`) or binary (`0b1010_1011`).
pub fn parse_byte(s: &str) -> Result<u8, String> {
    let t = s.replace('_', "");
    let parsed = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u8::from_str_radix(hex, 16)
    } else if let Some(bin) = t.strip_prefix("0b").or_else(|| t.strip_prefix("0B")) {
        u8::from_str_radix(bin, 2)
    } else {
        t.parse::<u8>()
    };
    parsed.map_err(|_| format!("`{s}` is not a byte (0..=255, e.g. 171, 0xab or 0b10101011)"))
}

#[derive(Debug, Parser)]
#[command(
    name = "strata",
    version,
    about = "Incremental block storage: a baseline image plus a snapshot-partitioned log",
    long_about = ABOUT_LONG,
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// Hide progress bars and informational messages
    #[arg(short, long, global = true, display_order = 900)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Create(CreateArgs),
    Write(WriteArgs),
    Snapshot(SnapshotArgs),
    Read(ReadArgs),
    Log(LogArgs),
    Volumes(VolumesArgs),
    Export(ExportArgs),
    Stat(StatArgs),
    Compact(CompactArgs),
    Merge(MergeArgs),
    Delete(DeleteArgs),
    Rollback(RollbackArgs),
    Diff(DiffArgs),
    Du(DuArgs),
    Send(SendArgs),
    Receive(ReceiveArgs),
}

/// Create a store: an empty baseline of zeros, or a baseline imported from a raw image
#[derive(Debug, Args)]
#[command(
    long_about = "\
Create a store: an empty baseline of zeros, or a baseline imported from a raw image.

The baseline partition (volume 0) is the image every other volume starts from. It never changes \
after creation: writes go to the incremental log on top of it. With --blocks the baseline is all \
zeros and costs no space; with --baseline a raw image file is streamed in 1 MiB at a time, \
checksummed block by block, and the block count is the image size divided by the block size (it \
must divide exactly). The directory is created if missing and must not already hold a store.",
    after_help = "\
Examples:
  strata create ./vol --blocks 262144                  # 1 GiB of zeros in 4 KiB blocks
  strata create ./vol --baseline disk.raw --block-size 512",
    group(ArgGroup::new("source").required(true).args(["blocks", "baseline"]))
)]
pub struct CreateArgs {
    /// Directory to create the store in (created if missing)
    pub dir: PathBuf,
    /// Number of blocks of an empty (all-zero) baseline
    #[arg(long, value_name = "N")]
    pub blocks: Option<u64>,
    /// Raw image to import as the baseline
    #[arg(long, value_name = "IMAGE")]
    pub baseline: Option<PathBuf>,
    /// Block size in bytes: a power of two from 512 to 65536
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    pub block_size: u32,
}

/// Write whole blocks (from a file, stdin or a fill pattern) to the head, then sync
#[derive(Debug, Args)]
#[command(
    long_about = "\
Write whole blocks to the head volume, then sync.

Writes never modify the baseline or a snapshot: each one is appended to the incremental log, in \
the head's partition, with a sequence number, a timestamp and per-block checksums. The input is \
written from block --addr onwards in batches of at most 1024 blocks; each batch is one atomic log \
record (after a crash it is there entirely or not at all) and the whole write is made durable by a \
final sync. The input must be a whole, non-zero number of blocks. A file (or stdin redirected from \
a file) is checked before anything is written; input from a pipe is written as it arrives, so if \
it ends with a partial block the whole batches before it stay written (and synced).",
    after_help = "\
Examples:
  strata write ./vol --addr 100 --file blocks.bin
  head -c 8192 /dev/urandom | strata write ./vol --addr 0
  strata write ./vol --addr 0 --pattern 0xff --blocks 16"
)]
pub struct WriteArgs {
    /// Store directory
    pub dir: PathBuf,
    /// First block address to write
    #[arg(long, value_name = "A")]
    pub addr: u64,
    /// Read the data from this file (default: stdin)
    #[arg(short, long, value_name = "FILE", conflicts_with = "pattern")]
    pub file: Option<PathBuf>,
    /// Write blocks filled with this byte instead of input data (decimal, 0x.. or 0b..)
    #[arg(long, value_name = "BYTE", value_parser = parse_byte, requires = "blocks")]
    pub pattern: Option<u8>,
    /// Number of blocks to fill with --pattern
    #[arg(long, value_name = "N", requires = "pattern",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub blocks: Option<u64>,
}

/// Seal the head as a read-only snapshot and start a new head on top of it
#[derive(Debug, Args)]
#[command(
    long_about = "\
Seal the head as a read-only snapshot and start a new head on top of it.

The incremental log is cut into snapshot partitions. Taking a snapshot seals the partition being \
written: it becomes a read-only snapshot volume (keeping its volume identifier) that shows the \
volume exactly as it is now, forever. A new, empty head partition is opened on top of it with the \
next volume identifier, and later writes go there. No data is copied: a snapshot costs two durable \
commits and a small index. Prints the snapshot's volume identifier and the new head's.",
    after_help = "\
Example:
  strata snapshot ./vol --label before-upgrade
  # snapshot: 1
  # head: 2
  strata read ./vol --volume 1 --addr 0 --blocks 8 -o before.bin"
)]
pub struct SnapshotArgs {
    /// Store directory
    pub dir: PathBuf,
    /// A label for the snapshot (at most 255 bytes, no control characters)
    #[arg(short, long, value_name = "L")]
    pub label: Option<String>,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

/// Read blocks of any volume (default: the head) as raw bytes, a hex dump or into a file
#[derive(Debug, Args)]
#[command(
    long_about = "\
Read blocks of any volume: the head (default), a snapshot, or the baseline.

Every volume is identified by a number: 0 is the baseline partition, each log partition gets the \
next number when it is created, and numbers are never reused (`strata volumes` lists them). \
Reading a snapshot shows the blocks exactly as they were when it was taken; reading the baseline \
shows the original image. Blocks never written read as the baseline's (zeros for an empty one). \
Output is raw bytes on stdout, a hex dump with --hex (offsets are byte offsets in the volume, \
repeated lines are shown as `*`), or a file with -o.",
    after_help = "\
Examples:
  strata read ./vol --addr 10 --blocks 4 > blocks.bin
  strata read ./vol --addr 10 --volume 1 --hex
  strata read ./vol --addr 0 --blocks 2 --volume baseline -o base.bin"
)]
pub struct ReadArgs {
    /// Store directory
    pub dir: PathBuf,
    /// First block address to read
    #[arg(long, value_name = "A")]
    pub addr: u64,
    /// Number of blocks to read
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub blocks: u64,
    /// Volume to read: a volume identifier, `head` or `baseline`
    #[arg(long, value_name = "V", default_value = "head")]
    pub volume: VolumeArg,
    /// Print a hex dump instead of raw bytes
    #[arg(long, conflicts_with = "output")]
    pub hex: bool,
    /// Write the raw bytes to this file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// List the entries of the incremental log in sequence order
#[derive(Debug, Args)]
#[command(
    long_about = "\
List the entries of the incremental log in sequence order.

Every write appends one entry to the incremental log: a sequence number (1, 2, 3, ... across the \
whole store, never reused), the volume (partition) it was written in, its first block address, its \
length in blocks and its commit time. Entries of one atomic batch share a timestamp. Start at the \
beginning (default), at a sequence number (--from-seq, the first entry at or after it) or at the \
first entry of one volume (--volume, which lists only that volume's entries). --data reads each \
entry's blocks, verifies their checksums and shows the first bytes.",
    after_help = "\
Examples:
  strata log ./vol
  strata log ./vol --volume 2 --data
  strata log ./vol --from-seq 100 --limit 10 --json"
)]
pub struct LogArgs {
    /// Store directory
    pub dir: PathBuf,
    /// Start at the first entry with this sequence number or a later one
    #[arg(long, value_name = "S", conflicts_with = "volume")]
    pub from_seq: Option<u64>,
    /// List only the entries of this volume: a volume identifier, `head` or `baseline`
    #[arg(long, value_name = "V")]
    pub volume: Option<VolumeArg>,
    /// Stop after this many entries
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Read and verify each entry's data and show a short hex preview
    #[arg(long)]
    pub data: bool,
    /// Print a JSON array of entries
    #[arg(long)]
    pub json: bool,
}

/// List the volumes: baseline, snapshots and head
#[derive(Debug, Args)]
#[command(
    long_about = "\
List the volumes: the baseline, every snapshot and the head.

A volume identifier names one partition: 0 is the baseline partition, then every log partition in \
creation order. Each log partition's parent is the volume it was started on top of, so a volume's \
contents are its own entries over its parent's, down to the baseline. Columns: identifier, kind \
(baseline, snapshot or head), snapshot label, parent, creation time (UTC), log entries in the \
partition and bytes it occupies on disk.",
    after_help = "\
Example:
  strata volumes ./vol
  strata volumes ./vol --json | jq '.[] | select(.kind == \"snapshot\") | .id'"
)]
pub struct VolumesArgs {
    /// Store directory
    pub dir: PathBuf,
    /// Print a JSON array of volumes
    #[arg(long)]
    pub json: bool,
}

/// Export a volume as a raw image
#[derive(Debug, Args)]
#[command(
    long_about = "\
Export a volume (default: the head) as a raw image.

Any volume can be exported: the head as it is now, a snapshot as it was when taken, or the \
baseline partition (volume 0) as created. The image has block-count x block-size bytes and is \
streamed 1 MiB at a time with every block's checksum verified, so the store can be much larger \
than memory. Use `-o -` to write the image to stdout.",
    after_help = "\
Examples:
  strata export ./vol -o head.raw
  strata export ./vol --volume 3 -o snapshot3.raw
  strata export ./vol --volume baseline -o - | sha256sum"
)]
pub struct ExportArgs {
    /// Store directory
    pub dir: PathBuf,
    /// Volume to export: a volume identifier, `head` or `baseline`
    #[arg(long, value_name = "V", default_value = "head")]
    pub volume: VolumeArg,
    /// Image file to write (`-` for stdout)
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

/// Show facts about a store and what recovery did when opening it
#[derive(Debug, Args)]
#[command(
    long_about = "\
Show facts about a store and what recovery did when opening it.

Shows the geometry (block size and count), what the baseline partition holds, the head's volume \
identifier, the next sequence number of the incremental log, how many log partitions (snapshots \
plus the head) exist and their total size, how many distinct blocks the log has written, and the \
recovery report: the bytes of torn, unsynced tail cut from the metadata journal and from the \
head's log segment when the store was opened after a crash (0 after a clean shutdown).",
    after_help = "\
Example:
  strata stat ./vol
  strata stat ./vol --json | jq .head"
)]
pub struct StatArgs {
    /// Store directory
    pub dir: PathBuf,
    /// Print a JSON object
    #[arg(long)]
    pub json: bool,
}

/// Compact a snapshot in place: drop the blocks no volume can read any more
#[derive(Debug, Args)]
#[command(
    long_about = "\
Compact a snapshot in place: drop the blocks no volume can read any more.

A snapshot partition keeps every write made while it was the head, including blocks that were \
overwritten later in the same partition: no volume can read those any more. Compaction rewrites \
the partition keeping only the last write of each block (and, for a partition kept only for the \
volumes that grow from a deleted snapshot, only the blocks they still read), under the same volume \
identifier: every volume reads exactly the same before and after. Each surviving block's checksum \
is verified as it is copied. The head cannot be compacted: take a snapshot first. The rewrite is \
crash-safe: the new segment is written beside the old one and switched in by one journal record, \
so an interrupted compaction (a crash, Ctrl-C) leaves the old segment in use and its partial copy \
is removed at the next open. `strata du` shows what compaction would free (RECLAIMABLE).",
    after_help = "\
Example:
  strata du ./vol                    # RECLAIMABLE: bytes compaction would free
  strata compact ./vol --volume 3
  # compacted volume 3: 1052672 -> 528384 bytes (freed 512.0 KiB); 128 blocks kept, 128 dropped"
)]
pub struct CompactArgs {
    /// Store directory
    pub dir: PathBuf,
    /// Snapshot to compact: a volume identifier
    #[arg(long, value_name = "V")]
    pub volume: VolumeArg,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

/// Fold the oldest snapshots, up to and including one, into the baseline
#[derive(Debug, Args)]
#[command(
    long_about = "\
Fold the oldest snapshots, up to and including volume V, into the baseline.

The baseline partition (volume 0) is the image every volume starts from. Merging rewrites it in \
place with every block volume V reads from the incremental log (V's own partition and those of its \
ancestors, down to the baseline), then removes those partitions: their volume identifiers name \
nothing any more, and the baseline now reads exactly what V read. Every remaining volume reads the \
same as before (V's children now grow from the baseline). Merging is refused when another volume \
still reads the old baseline or one of the merged partitions (a branch started by `strata \
rollback` to an older volume, say); merge up to the branch point or delete that branch first. It \
is crash-safe: a merge interrupted by a crash is finished when the store is next opened, so it \
cannot be cancelled once started.",
    after_help = "\
Example:
  strata volumes ./vol               # 0 baseline, 1..4 snapshots, 5 head
  strata merge ./vol --volume 2
  # merged volumes 1, 2 into the baseline (2 partitions, 3.0 MiB of blocks written)
  strata export ./vol --volume baseline -o now-like-volume-2.raw"
)]
pub struct MergeArgs {
    /// Store directory
    pub dir: PathBuf,
    /// Newest snapshot to merge (it and all its ancestors go into the baseline)
    #[arg(long, value_name = "V")]
    pub volume: VolumeArg,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

/// Delete a snapshot; what newer volumes still read through it is kept
#[derive(Debug, Args)]
#[command(
    long_about = "\
Delete a snapshot: its volume identifier disappears and its space is reclaimed.

A snapshot's partition holds the blocks written while it was the head; the volumes that grow from \
it read the blocks they did not overwrite through it. Deleting the snapshot removes its volume \
identifier at once (it can no longer be read, listed or exported) and compacts its partition: \
blocks only the deleted volume read are dropped, blocks its descendants still read are kept \
(hidden; `strata du` lists the partition as `deleted`), and a partition nothing needs is removed \
entirely. Every other volume reads the same as before. The baseline cannot be deleted (merge \
snapshots into it instead) and neither can the head (roll back away from it first). `strata du` \
shows what deleting each volume would free (EXCLUSIVE).",
    after_help = "\
Example:
  strata delete ./vol --volume 3
  # deleted volume 3: freed 1.5 MiB (384 blocks dropped); 12 blocks kept for the volumes that grow from it"
)]
pub struct DeleteArgs {
    /// Store directory
    pub dir: PathBuf,
    /// Snapshot to delete: a volume identifier
    #[arg(long, value_name = "V")]
    pub volume: VolumeArg,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

/// Make the head read like an older volume again, keeping the current head as a snapshot
#[derive(Debug, Args)]
#[command(
    long_about = "\
Roll the live volume back to a snapshot (or the baseline) without destroying anything.

The head is the only writable volume. Rolling back seals the current head as a snapshot labelled \
--label (default `before-rollback`), or removes it if it holds no writes, and opens a new, empty \
head whose parent is the target volume, so it reads exactly like the target. The snapshots newer \
than the target stay readable: they now form a branch beside the new head (which is why a merge \
past the branch point is refused). Prints the previous head, what became of it, and the new head.",
    after_help = "\
Example:
  strata rollback ./vol --to 2 --label broken-upgrade
  # previous head: 5 (kept as snapshot 5 \"broken-upgrade\")
  # head: 6 (parent 2)
  strata diff ./vol 6 5              # what the rollback undid"
)]
pub struct RollbackArgs {
    /// Store directory
    pub dir: PathBuf,
    /// Volume to go back to: a volume identifier or `baseline`
    #[arg(long, value_name = "V")]
    pub to: VolumeArg,
    /// Label of the snapshot the current head becomes (default `before-rollback`)
    #[arg(short, long, value_name = "L")]
    pub label: Option<String>,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

/// List the block extents whose contents differ between two volumes
#[derive(Debug, Args)]
#[command(
    long_about = "\
List the block extents whose contents differ between two volumes.

Any two volumes can be compared: the baseline, snapshots, the head, on one branch or on two. Only \
the blocks that the log has written in either volume's ancestry can differ; each is compared by \
checksum, and byte by byte when the checksums agree, so the answer is exact (a block written with \
the same bytes it had does not differ). An extent is a run of consecutive block addresses: ADDR is \
its first block, END the block after its last one and BLOCKS its length. The last line sums them \
up; two identical volumes print only that line.",
    after_help = "\
Examples:
  strata diff ./vol 1 head
  strata diff ./vol baseline 3 --json | jq '.extents[].addr'"
)]
pub struct DiffArgs {
    /// Store directory
    pub dir: PathBuf,
    /// First volume: a volume identifier, `head` or `baseline`
    #[arg(value_name = "A")]
    pub a: VolumeArg,
    /// Second volume: a volume identifier, `head` or `baseline`
    #[arg(value_name = "B")]
    pub b: VolumeArg,
    /// Print a JSON object with the list of extents
    #[arg(long)]
    pub json: bool,
}

/// Show the space each partition takes, and what compaction or deletion would free
#[derive(Debug, Args)]
#[command(
    long_about = "\
Show the space each partition takes, and what compaction or deletion would free.

One row per partition: the baseline, every snapshot, the head, and the partitions of deleted \
snapshots that are kept because newer volumes still read some of their blocks (KIND `deleted`). \
Columns:
  TOTAL        bytes the partition occupies on storage;
  LIVE         bytes of block data some volume still reads;
  EXCLUSIVE    the part of LIVE that only this volume reads: what `strata delete` would free;
  RECLAIMABLE  bytes of block data no volume can read any more (overwritten later in the same
               partition, or only a deleted volume read it): what `strata compact` would free;
  METADATA     record headers, checksum tables, the index and the footer (for the baseline, its
               block checksums).
For every row, and for the total row at the bottom, TOTAL = LIVE + RECLAIMABLE + METADATA. The \
baseline's image counts as LIVE (an all-zero baseline takes no space); EXCLUSIVE does not apply to \
it. Sizes are shown in binary units; --bytes prints exact byte counts.",
    after_help = "\
Examples:
  strata du ./vol
  strata du ./vol --json | jq '.volumes[] | select(.reclaimable_bytes > 0) | .volume'"
)]
pub struct DuArgs {
    /// Store directory
    pub dir: PathBuf,
    /// Print exact byte counts instead of KiB, MiB, ...
    #[arg(long, conflicts_with = "json")]
    pub bytes: bool,
    /// Print a JSON object: one entry per partition, and the totals
    #[arg(long)]
    pub json: bool,
}

/// Write a copy stream of snapshots to a file or stdout, for `strata receive`
#[derive(Debug, Args)]
#[command(
    long_about = "\
Write a copy stream of snapshots to a file or stdout, for `strata receive` to apply elsewhere.

A copy stream carries volumes from one store to another: a full stream (no --base) carries the \
baseline image and every snapshot on the chain from the baseline up to --upto (default: the \
snapshot the head grows from, i.e. the newest one on the live chain); an incremental stream \
(--base V) carries only the snapshots after V, for a target that already has V. Only sealed \
snapshots are sent: take a snapshot first to include the head's recent writes. Volumes keep their \
identifiers, labels, parents, timestamps and sequence numbers, so at the target each one reads \
byte-identical to the source. Every frame of the stream is checksummed; a damaged or truncated \
stream is refused by the receiver. --since-seq and --blocks filter the log entries sent (the \
received volumes then hold only those entries; the baseline of a full stream is still sent whole).",
    after_help = "\
Examples:
  strata send ./vol -o full.stream                   # baseline + snapshots up to the head's parent
  strata receive ./copy -i full.stream
  strata snapshot ./vol
  strata send ./vol --base 4 -o - | strata receive ./copy -i -    # only what ./copy lacks
  strata send ./vol --blocks 0..256 --since-seq 100 -o region.stream"
)]
pub struct SendArgs {
    /// Store directory
    pub dir: PathBuf,
    /// Send only the snapshots after this volume, which the target already has
    #[arg(long, value_name = "V")]
    pub base: Option<VolumeArg>,
    /// Newest snapshot to send (default: the snapshot the head grows from)
    #[arg(long, value_name = "V")]
    pub upto: Option<VolumeArg>,
    /// Send only log entries with this sequence number or a later one
    #[arg(long, value_name = "S")]
    pub since_seq: Option<u64>,
    /// Send only the parts of entries inside blocks A..B (B excluded)
    #[arg(long, value_name = "A..B")]
    pub blocks: Option<BlockRange>,
    /// Stream file to write (`-` for stdout)
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

/// Apply a copy stream from `strata send`: create a store from it, or add to one
#[derive(Debug, Args)]
#[command(
    long_about = "\
Apply a copy stream made by `strata send`: create a store from it, or add its volumes to one.

If DIR holds no store, a full stream creates one (with the source's baseline, geometry and \
volumes). If DIR holds a store, the stream's volumes are added to it: an incremental stream needs \
its base volume to be there, and the store's head must hold no writes of its own (roll back first). \
A volume lands only once all of it has arrived and verified; volumes the store already has are \
checked and skipped, so applying a stream again, or a longer one, is safe. Afterwards the head \
grows from the newest volume received. If the stream breaks off or is damaged, the volumes that \
landed before the break stay: the error says which, and the newest volume the store has, so the \
copy can resume with `strata send SOURCE --base <that volume>`.",
    after_help = "\
Examples:
  strata receive ./copy -i full.stream
  strata send ./vol --base 4 -o - | strata receive ./copy -i -"
)]
pub struct ReceiveArgs {
    /// Store directory (created from the stream if it holds no store)
    pub dir: PathBuf,
    /// Stream file to read (`-` for stdin)
    #[arg(short, long, value_name = "FILE")]
    pub input: PathBuf,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

/// A range of block addresses `A..B`: from A up to, but not including, B.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRange {
    /// First block.
    pub start: u64,
    /// The block after the last one.
    pub end: u64,
}

impl FromStr for BlockRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a block range: give A..B, e.g. 0..256 (B excluded)");
        let (a, b) = s.split_once("..").ok_or_else(bad)?;
        let start = a.trim().parse::<u64>().map_err(|_| bad())?;
        let end = b.trim().parse::<u64>().map_err(|_| bad())?;
        if start >= end {
            return Err(format!(
                "block range `{s}` is empty: B must be greater than A"
            ));
        }
        Ok(BlockRange { start, end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_bytes_in_every_base() {
        assert_eq!(parse_byte("171"), Ok(171));
        assert_eq!(parse_byte("0xAB"), Ok(0xab));
        assert_eq!(parse_byte("0b1010_1011"), Ok(0xab));
        assert!(parse_byte("256").is_err());
        assert!(parse_byte("0x").is_err());
        assert!(parse_byte("-1").is_err());
    }

    #[test]
    fn parses_volumes() {
        assert_eq!("head".parse::<VolumeArg>(), Ok(VolumeArg::Head));
        assert_eq!("Baseline".parse::<VolumeArg>(), Ok(VolumeArg::Id(0)));
        assert_eq!("7".parse::<VolumeArg>(), Ok(VolumeArg::Id(7)));
        assert!("x7".parse::<VolumeArg>().is_err());
        assert!("-1".parse::<VolumeArg>().is_err());
    }

    #[test]
    fn parses_block_ranges() {
        assert_eq!(
            "0..256".parse::<BlockRange>(),
            Ok(BlockRange { start: 0, end: 256 })
        );
        assert!("5..5".parse::<BlockRange>().is_err());
        assert!("6..5".parse::<BlockRange>().is_err());
        assert!("5".parse::<BlockRange>().is_err());
        assert!("..5".parse::<BlockRange>().is_err());
        assert!("a..b".parse::<BlockRange>().is_err());
    }
}
