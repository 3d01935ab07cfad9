//! The command line, as clap derive structures. Each subcommand's long help explains the concept
//! it works with and ends with an example.

use std::path::PathBuf;
use std::str::FromStr;

use clap::{ArgGroup, Args, Parser, Subcommand};

pub mod branch;
pub mod mirror;

const ABOUT_LONG: &str = "\
Incremental block storage on a directory.

A strata store holds one block volume as a baseline partition (a raw image, or all zeros) plus an \
incremental log of block writes. The log is cut into snapshot partitions: `strata snapshot` seals \
the partition being written as a read-only snapshot and starts a new writable head on top of it. \
Every partition has a volume identifier: 0 is the baseline, then 1, 2, 3, ... in creation order, \
the newest being the head. Any volume can be read, listed and exported exactly as it was.

Snapshots can be compacted in place (`compact`), folded into the baseline (`merge`), deleted \
(`delete`), rolled back to (`rollback`), compared block by block (`diff`), accounted for (`du`) \
and copied to another store (`send` and `receive`). A storage management policy (`policy`) \
automates all of this: snapshots on a schedule, on events or past thresholds, retention, merges, \
compaction and copies to backup directories, with holds and per-volume TTLs (`hold`, `ttl`) and \
an audit trail of everything it did (`audit`). `mirror` keeps the live volume on mirrored leg \
directories beside the store, with scrub, replace and rebuild.

A store has one writer at a time: a command that changes it locks the directory, and a second one \
is refused (LOCKED) until the first closes. The commands that only look (read, log, volumes, stat, \
export, diff, du, send, audit, policy show) take no lock and write nothing, so they work beside a \
writer. No command writes a file you name (-o, a copy target) into a store's directory.

Exit codes: 0 success, 1 an engine error (printed as `error[CODE]: message`), 2 a usage error.";

const AFTER_HELP: &str = "\
Example:
  strata create ./vol --blocks 1024
  strata write ./vol --addr 10 --pattern 0xab --blocks 4
  strata snapshot ./vol --label before
  strata write ./vol --addr 10 --file new.bin
  strata read ./vol --addr 10 --volume 1 --hex
  strata log ./vol";

/// A volume given on the command line: a number, `head`, `baseline` or a snapshot's label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeArg {
    /// The live head, whatever its number.
    Head,
    /// A volume by identifier (`baseline` is 0).
    Id(u64),
    /// A volume by label (resolved against the store: it must name exactly one volume).
    Label(String),
}

impl FromStr for VolumeArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "head" => Ok(VolumeArg::Head),
            "baseline" | "base" => Ok(VolumeArg::Id(0)),
            other => match other.parse::<u64>() {
                Ok(n) => Ok(VolumeArg::Id(n)),
                Err(_) if !s.is_empty() && s.len() <= 255 && !s.chars().any(char::is_control) => {
                    Ok(VolumeArg::Label(s.to_string()))
                }
                Err(_) => Err(format!(
                    "`{s}` is not a volume: give a number, `head`, `baseline` or a label"
                )),
            },
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

/// The store a command works on: its directory, the first argument of every command that opens
/// an existing store. (`create`, `receive` and `mirror create`, which can make the store, declare
/// their own, with help that says so.)
#[derive(Debug, Args)]
pub struct StoreArg {
    /// Store directory
    pub dir: PathBuf,
}

/// `--json`, the same flag on every command that can print its result as JSON. A command whose
/// JSON has a shape worth naming gives the flag its own help with
/// `#[command(mut_arg("json", |a| a.help("...")))]`.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
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

    /// Do not let the store act on its threshold rules by itself after this command's
    /// operations; only `strata policy run` and `strata event` carry policy decisions out
    #[arg(long, global = true, display_order = 901)]
    pub manual_policies: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Create(CreateArgs),
    Write(WriteArgs),
    #[command(visible_alias = "trim", visible_alias = "discard")]
    Zero(ZeroArgs),
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
    Policy(PolicyArgs),
    Event(EventArgs),
    Hold(HoldArgs),
    Ttl(TtlArgs),
    Audit(AuditArgs),
    Mirror(mirror::MirrorArgs),
    Branch(branch::BranchArgs),
    Serve(ServeArgs),
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
    #[command(flatten)]
    pub store: StoreArg,
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
    /// Check this branch out first (see `strata branch`): the write goes to its head
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
}

/// Make blocks of the head read as zeros (trim, discard, write-zeroes), then sync
#[derive(Debug, Args)]
#[command(
    long_about = "\
Make blocks of the head read as zeros (trim, discard, write-zeroes), then sync.

Zeroed blocks are metadata, not data: the range is recorded in the head's partition as zero \
extents of 16 bytes each, and only the blocks that do not already read as zeros are recorded, so \
trimming never-written blocks costs nothing. Snapshots keep what they hold; once no volume reads \
the data a trim hides (its snapshot deleted, or merged), compaction frees it. A zero extent \
copies as metadata too (send, receive, the log cursor). Prints how many blocks were recorded.",
    after_help = "\
Examples:
  strata zero ./vol --addr 0 --blocks 16384
  strata trim ./vol --addr 1000 --blocks 24"
)]
pub struct ZeroArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// First block address to zero
    #[arg(long, value_name = "A")]
    pub addr: u64,
    /// Number of blocks to zero
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub blocks: u64,
    /// Check this branch out first (see `strata branch`)
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
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
    #[command(flatten)]
    pub store: StoreArg,
    /// A label for the snapshot (at most 255 bytes, no control characters)
    #[arg(short, long, value_name = "L")]
    pub label: Option<String>,
    #[command(flatten)]
    pub print: OutputArgs,
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
repeated lines are shown as `*`), or a file with -o (refused if it is in a store's directory).",
    after_help = "\
Examples:
  strata read ./vol --addr 10 --blocks 4 > blocks.bin
  strata read ./vol --addr 10 --volume 1 --hex
  strata read ./vol --addr 0 --blocks 2 --volume baseline -o base.bin"
)]
pub struct ReadArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// First block address to read
    #[arg(long, value_name = "A")]
    pub addr: u64,
    /// Number of blocks to read
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub blocks: u64,
    /// Volume to read: a volume identifier, `head`, `baseline` or a label
    #[arg(long, value_name = "V", default_value = "head")]
    pub volume: VolumeArg,
    /// Print a hex dump instead of raw bytes
    #[arg(long, conflicts_with = "output")]
    pub hex: bool,
    /// Write the raw bytes to this file instead of stdout (`-`: stdout)
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
#[command(mut_arg("json", |a| a.help("Print a JSON array of entries")))]
pub struct LogArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// Start at the first entry with this sequence number or a later one
    #[arg(long, value_name = "S", conflicts_with = "volume")]
    pub from_seq: Option<u64>,
    /// List only the entries of this volume: a volume identifier, `head`, `baseline` or a label
    #[arg(long, value_name = "V")]
    pub volume: Option<VolumeArg>,
    /// Stop after this many entries
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Read and verify each entry's data and show a short hex preview
    #[arg(long)]
    pub data: bool,
    #[command(flatten)]
    pub print: OutputArgs,
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
#[command(mut_arg("json", |a| a.help("Print a JSON array of volumes")))]
pub struct VolumesArgs {
    #[command(flatten)]
    pub store: StoreArg,
    #[command(flatten)]
    pub print: OutputArgs,
}

/// Export a volume as a raw image
#[derive(Debug, Args)]
#[command(
    long_about = "\
Export a volume (default: the head) as a raw image.

Any volume can be exported: the head as it is now, a snapshot as it was when taken, or the \
baseline partition (volume 0) as created. The image has block-count x block-size bytes and is \
streamed 1 MiB at a time with every block's checksum verified, so the store can be much larger \
than memory. A file is written sparsely: all-zero 4 KiB pieces are left as holes. Use `-o -` to write the image to stdout. An output in a store's directory (after \
symbolic links and `..`) is refused before anything is written.",
    after_help = "\
Examples:
  strata export ./vol -o head.raw
  strata export ./vol --volume 3 -o snapshot3.raw
  strata export ./vol --volume baseline -o - | sha256sum"
)]
pub struct ExportArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// Volume to export: a volume identifier, `head`, `baseline` or a label
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
recovery report: the bytes of torn, unsynced tail at the end of the metadata journal and of the \
head's log segment after a crash (0 after a clean shutdown). `stat` only looks (it works beside a \
writer and changes nothing), so it leaves such a tail in place: the next writing command cuts it.",
    after_help = "\
Example:
  strata stat ./vol
  strata stat ./vol --json | jq .head"
)]
#[command(mut_arg("json", |a| a.help("Print a JSON object")))]
pub struct StatArgs {
    #[command(flatten)]
    pub store: StoreArg,
    #[command(flatten)]
    pub print: OutputArgs,
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
    #[command(flatten)]
    pub store: StoreArg,
    /// Snapshot to compact: a volume identifier
    #[arg(long, value_name = "V")]
    pub volume: VolumeArg,
    #[command(flatten)]
    pub print: OutputArgs,
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
    #[command(flatten)]
    pub store: StoreArg,
    /// Newest snapshot to merge (it and all its ancestors go into the baseline)
    #[arg(long, value_name = "V")]
    pub volume: VolumeArg,
    #[command(flatten)]
    pub print: OutputArgs,
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
    #[command(flatten)]
    pub store: StoreArg,
    /// Snapshot to delete: a volume identifier
    #[arg(long, value_name = "V")]
    pub volume: VolumeArg,
    #[command(flatten)]
    pub print: OutputArgs,
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
    #[command(flatten)]
    pub store: StoreArg,
    /// Volume to go back to: a volume identifier or `baseline`
    #[arg(long, value_name = "V")]
    pub to: VolumeArg,
    /// Label of the snapshot the current head becomes (default `before-rollback`)
    #[arg(short, long, value_name = "L")]
    pub label: Option<String>,
    #[command(flatten)]
    pub print: OutputArgs,
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
#[command(mut_arg("json", |a| a.help("Print a JSON object with the list of extents")))]
pub struct DiffArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// First volume: a volume identifier, `head`, `baseline` or a label
    #[arg(value_name = "A")]
    pub a: VolumeArg,
    /// Second volume: a volume identifier, `head`, `baseline` or a label
    #[arg(value_name = "B")]
    pub b: VolumeArg,
    #[command(flatten)]
    pub print: OutputArgs,
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
#[command(mut_arg("json", |a| {
    a.help("Print a JSON object: one entry per partition, and the totals")
}))]
pub struct DuArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// Print exact byte counts instead of KiB, MiB, ...
    #[arg(long, conflicts_with = "json")]
    pub bytes: bool,
    #[command(flatten)]
    pub print: OutputArgs,
}

/// Write a copy stream of snapshots to a file or stdout, for `strata receive`
#[derive(Debug, Args)]
#[command(
    long_about = "\
Write a copy stream of snapshots to a file or stdout, for `strata receive` to apply elsewhere.

A copy stream carries volumes from one store to another: a full stream (no --base) carries the \
baseline image (all-zero chunks left out) and, without --upto or filters, the whole tree: every \
snapshot, every branch's parked head and the branch registry, the target's head growing from the \
snapshot the source's head grows from; with --upto V, the chain from the baseline up to V. An \
incremental stream \
(--base V) carries only the snapshots after V, for a target that already has V. Only sealed \
snapshots are sent: take a snapshot first to include the head's recent writes. Volumes keep their \
identifiers, labels, parents, timestamps and sequence numbers, so at the target each one reads \
byte-identical to the source. Every frame of the stream is checksummed; a damaged or truncated \
stream is refused by the receiver. --since-seq and --blocks filter the log entries sent (the \
received volumes then hold only those entries; the baseline of a full stream is still sent whole). \
An output file in a store's directory is refused before anything is written.",
    after_help = "\
Examples:
  strata send ./vol -o full.stream                   # baseline + snapshots up to the head's parent
  strata receive ./copy -i full.stream
  strata snapshot ./vol
  strata send ./vol --base 4 -o - | strata receive ./copy -i -    # only what ./copy lacks
  strata send ./vol --blocks 0..256 --since-seq 100 -o region.stream"
)]
pub struct SendArgs {
    #[command(flatten)]
    pub store: StoreArg,
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
grows from the stream's last volume (the newest of the chain it carries, received or already \
there). If the stream breaks off or is damaged, the volumes that \
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
    #[command(flatten)]
    pub print: OutputArgs,
}

// ----- policies ----------------------------------------------------------------------------------

// clap replaces `{n}` with a newline in help texts and has no escape for it; `{\x1b[0mn}` shows
// as `{n}` (the reset code is stripped when the output is not a terminal, and invisible when it
// is). The example policies avoid `{n}` so that they stay plain, parseable text.

/// The example policy of `strata policy --help`, in TOML (a unit test checks that it reads the
/// same as [`policy_example_json`]).
macro_rules! policy_example_toml {
    () => {
        r#"labels = { template = "auto-{date}-{time}" }

[[rules]]
name = "hourly"
kind = "snapshot_every"
snapshot_every_ms = 3_600_000           # 1h, aligned to the UTC hour
label = "hourly-{date}-{time}"

[[rules]]
name = "thin"
kind = "retain"
label_prefix = "hourly-"
keep = { last = 3, hourly = 24, daily = 7, weekly = 4, monthly = 6 }

[[rules]]
name = "fold"
kind = "merge_older_than"
older_than_ms = 31_536_000_000          # 365d

[[rules]]
name = "offsite"
kind = "copy_every"
target = "backup"
copy_every_ms = 86_400_000              # 1d

[[rules]]
name = "tidy"
kind = "threshold"
status = "reclaimable_ratio"
above = 0.3
action = "compact"
cooldown_ms = 600_000

[[rules]]
name = "deploy"
kind = "event"
event = "deploy"
pair = true
action = "snapshot"
label = "{event}-{date}""#
    };
}

/// The example policy of `strata policy --help`, in JSON.
macro_rules! policy_example_json {
    () => {
        r#"{
  "labels": { "template": "auto-{date}-{time}" },
  "rules": [
    { "name": "hourly", "kind": "snapshot_every", "snapshot_every_ms": 3600000,
      "label": "hourly-{date}-{time}" },
    { "name": "thin", "kind": "retain", "label_prefix": "hourly-",
      "keep": { "last": 3, "hourly": 24, "daily": 7, "weekly": 4, "monthly": 6 } },
    { "name": "fold", "kind": "merge_older_than", "older_than_ms": 31536000000 },
    { "name": "offsite", "kind": "copy_every", "target": "backup", "copy_every_ms": 86400000 },
    { "name": "tidy", "kind": "threshold", "status": "reclaimable_ratio", "above": 0.3,
      "action": "compact", "cooldown_ms": 600000 },
    { "name": "deploy", "kind": "event", "event": "deploy", "pair": true,
      "action": "snapshot", "label": "{event}-{date}" }
  ]
}"#
    };
}

#[cfg(test)]
pub const POLICY_EXAMPLE_TOML: &str = policy_example_toml!();
#[cfg(test)]
pub const POLICY_EXAMPLE_JSON: &str = policy_example_json!();

/// Manage the storage management policy: rules that snapshot, retain, merge, compact and copy
#[derive(Debug, Args)]
#[command(
    long_about = "\
Manage the store's storage management policy: rules that take snapshots, delete old ones, merge, \
compact and copy, by themselves.

A policy is a list of rules, kept in the store (it survives reopen) and carried out by `strata \
policy run` (from cron or a systemd timer, say) and `strata event`. Each decision is recorded, \
with its reason and outcome, in the audit trail (`strata audit`). Rules come in three kinds:

  temporal  `snapshot_every` (a snapshot once per interval, aligned to the Unix epoch: an hourly \
rule fires at the first run in each UTC hour), `retain` (delete the snapshots no retention rule \
keeps), `merge_older_than` (fold the oldest snapshots into the baseline once they are that old), \
`copy_every` (an incremental copy stream to a named target once per interval);
  status    `threshold`: act while a measurement is past a limit (`above` or `below`, strict) - \
log_bytes, partition_count, reclaimable_bytes, reclaimable_ratio, writes_since_snapshot, \
bytes_since_snapshot - at most once per `cooldown_ms`; the action is snapshot, compact (the \
snapshot with the most reclaimable bytes, in place), merge_oldest or copy. Besides `strata policy \
run`, the store checks these rules by itself after every command that changes what they measure \
(write, snapshot, compact, merge, delete, rollback, receive) and acts at once; the audit trail \
says `after write` (and so on) for what it did that way (`--manual-policies` on a command stops \
it). A copy found due then waits for the next `strata policy run`, which names the targets;
  event     `event`: act when the application signals an event (`strata event DIR deploy`). With \
`pair = true` the rule fires on `deploy:pre` and on `deploy:post`, for a snapshot before and one \
after an operation (as snapper's pre/post pairs).

Labels. A snapshot's volume identifier is always the next number; its label is the policy's \
choice: `labels = \"sequential\"` (none, the default), `\"time\"` (2024-02-29T133005Z) or \
`{ template = \"...\" }`, and a rule's own `label` overrides it. Templates have placeholders: \
{date} (UTC, YYYY-MM-DD), {time} (UTC, HHMMSS), {\x1b[0mn} (the new volume's identifier), {event} (the \
event, e.g. deploy:pre, empty otherwise), {rule} (the rule's name, or its kind); {{ and }} are \
literal braces.

Retention buckets. A `retain` rule applies to the snapshots whose label starts with its \
`label_prefix` (all of them without one). It keeps those younger than `max_age_ms` and those \
`keep` selects: `last = N`, the N newest; `hourly`, `daily`, `weekly`, `monthly`, `yearly = N`, \
the newest snapshot in each of the N most recent UTC hours (days, ISO weeks, months, years) that \
hold one, counted as sanoid and snapper do (a week with the machine off uses up no daily slot). A \
snapshot kept by any rule is kept; one in the scope of some rule and kept by none is deleted; one \
in the scope of no rule is left alone. Durations are in milliseconds (`3_600_000` is 1h).

Precedence, strongest first: (1) a hold (`strata hold`) - a held volume is never deleted or \
merged; (2) the newest snapshot is never deleted or merged; (3) a per-volume TTL (`strata ttl`) - \
the volume is deleted once its snapshot is that old, and retention rules neither delete it \
earlier nor keep it longer; (4) retention rules. Merges respect (1) and (2) but not retention. \
The baseline and the head are never deleted, merged or compacted.

Policy files are TOML or JSON (chosen by the extension, or --format); unknown fields are errors, \
and every problem names its field, e.g. `rules[2].keep.hourly: must be at least 1`.",
    after_help = concat!(
        "Example policy (policy.toml):\n\n",
        policy_example_toml!(),
        "\n\nThe same policy in JSON (policy.json):\n\n",
        policy_example_json!(),
        "\n\nExamples:
  strata policy set ./vol policy.toml
  strata policy show ./vol
  strata policy run ./vol --dry-run --until 30d     # what a month would do; nothing is written
  strata policy run ./vol --target backup=/mnt/backup/vol
  strata event ./vol deploy:pre && ./deploy.sh && strata event ./vol deploy:post
  strata hold ./vol --volume 12
  strata audit ./vol --limit 20"
    )
)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    Set(PolicySetArgs),
    Show(PolicyShowArgs),
    Clear(PolicyClearArgs),
    Run(PolicyRunArgs),
}

/// The syntax of a policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyFormat {
    Toml,
    Json,
}

/// Check a policy file (TOML or JSON) and assign it to the store, replacing any policy
#[derive(Debug, Args)]
#[command(
    long_about = "\
Check a policy file (TOML or JSON) and assign it to the store, replacing any earlier policy.

The file is read as TOML if its name ends in .toml, as JSON if it ends in .json, otherwise as \
--format says (or, without --format, as JSON if it starts with `{`, else TOML). It is checked \
completely before anything changes: a misspelt field, a wrong type or an impossible value is an \
error naming the field, e.g. `rules[2].keep.hourly: must be at least 1`, and the store keeps its \
old policy. A policy file may be at most 256 KiB (262144 bytes); a longer input is refused \
without reading the rest. Assigning a policy forgets when each rule last ran (rule positions may mean other \
rules now), so interval rules fire at the next run. Holds and TTLs are kept. See `strata policy \
--help` for the rules.",
    after_help = "\
Example:
  strata policy set ./vol policy.toml
  # policy set on ./vol: 6 rules (4 temporal, 1 status, 1 event)
  cat policy.json | strata policy set ./vol - --format json"
)]
pub struct PolicySetArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// Policy file (`-` for stdin)
    pub file: PathBuf,
    /// Syntax of the file, when its name does not end in .toml or .json
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<PolicyFormat>,
}

/// Show the store's policy (as TOML) and the per-volume holds and TTLs
#[derive(Debug, Args)]
#[command(
    long_about = "\
Show the store's policy and the per-volume assignments (holds and TTLs).

The policy is printed as TOML, ready to edit and `strata policy set` again (comments and the \
layout of the original file are not kept: the store holds the policy as data), followed by one \
line per rule and a table of the volumes with a hold or a TTL. With --json, one object: \
`policy` (null without one) and `assignments`.",
    after_help = "\
Examples:
  strata policy show ./vol
  strata policy show ./vol > policy.toml     # edit, then: strata policy set ./vol policy.toml
  strata policy show ./vol --json | jq '.policy.rules | length'"
)]
#[command(mut_arg("json", |a| a.help("Print a JSON object")))]
pub struct PolicyShowArgs {
    #[command(flatten)]
    pub store: StoreArg,
    #[command(flatten)]
    pub print: OutputArgs,
}

/// Remove the store's policy (holds, TTLs and the audit trail are kept)
#[derive(Debug, Args)]
#[command(
    long_about = "\
Remove the store's policy: `strata policy run` and `strata event` do nothing until one is set.

Holds and TTLs stay assigned (a TTL only takes effect while a policy is set: deletions happen \
when the policy runs), and the audit trail keeps what was done.",
    after_help = "\
Example:
  strata policy clear ./vol"
)]
pub struct PolicyClearArgs {
    #[command(flatten)]
    pub store: StoreArg,
}

/// Carry out what the policy decides now, or preview it (--dry-run, --until)
#[derive(Debug, Args)]
#[command(
    long_about = "\
Evaluate the policy now and carry out its decisions, or preview them with --dry-run.

A run evaluates the temporal and status rules and the TTLs at the current time and carries the \
decisions out in order: snapshots, copies, at most one merge, deletions, at most one compaction. \
Each is printed (time, decision, volume, outcome, reason) and recorded in the audit trail, which \
`strata audit` shows. Run it periodically (cron, a systemd timer): an hourly rule takes one \
snapshot per UTC hour however often it runs. Event rules run only on `strata event`.

Copies. A copy rule names a target (`target = \"backup\"`); --target backup=DIR says where that \
target is: each copy writes a copy stream to DIR/<V>.stream, V being the newest snapshot it \
carries. The first copy to a target is a full stream; later ones are incremental, carrying only \
the snapshots after the last one copied. `strata receive` applies them, in increasing V, to \
rebuild an identical store. A copy to a target without --target fails (it is recorded as failed, \
and the other decisions still run). If any decision fails, the command exits with code 1 \
(error[POLICY_FAILED]) after printing all of them.

Dry runs. --dry-run prints what would be done now and changes nothing. With --until (a duration \
from now: 90s, 15m, 1h, 7d, 4w, or combined as 1d12h; or a UTC time: 2024-03-01 or \
2024-03-01T12:00:00Z) the policy is simulated from now until then, evaluated every --step \
(default 1h), against a model of the store (a snapshot seals the head, a deletion or merge \
removes volumes, ...; no writes are modelled): it prints the timeline and how many snapshots \
would be taken, deleted, merged, compacted and copied. Nothing is written, not even to the audit \
trail.",
    after_help = "\
Examples:
  strata policy run ./vol
  # TIME                      DECISION  VOLUME  DETAIL                      OUTCOME  REASON
  # 2024-03-01T12:00:00.004Z  snapshot       7  \"hourly-2024-03-01-120000\"  applied  rules[0] \"hourly\": ...
  strata policy run ./vol --target backup=/mnt/backup/vol
  strata policy run ./vol --dry-run
  strata policy run ./vol --dry-run --until 30d --step 1h
  strata receive ./restored -i /mnt/backup/vol/3.stream     # then 7.stream, 12.stream, ..."
)]
#[command(mut_arg("json", |a| a.help("Print JSON")))]
pub struct PolicyRunArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// Print what would be done, and do nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Simulate from now until this time: a duration (30d) or a UTC time (2024-03-01T12:00:00Z)
    #[arg(long, value_name = "WHEN", requires = "dry_run")]
    pub until: Option<Until>,
    /// Simulation step (with --until)
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1h",
        requires = "until"
    )]
    pub step: DurationArg,
    /// Where copy target NAME writes its streams: a directory (created if missing)
    #[arg(long = "target", value_name = "NAME=DIR", conflicts_with = "dry_run")]
    pub targets: Vec<TargetArg>,
    #[command(flatten)]
    pub print: OutputArgs,
}

/// Signal an application event to the policy (e.g. deploy:pre) and carry out its rules
#[derive(Debug, Args)]
#[command(
    long_about = "\
Signal an application event to the policy, and carry out what its event rules decide.

An event is any name the application chooses (`deploy`, `nightly-export`); the policy's `event` \
rules for that name act on it: take a snapshot (labelled with the event, e.g. `{event}-{\x1b[0mn}`), \
copy to a target, compact, or merge the oldest snapshot. A rule with `pair = true` for event \
`upgrade` fires on `upgrade:pre` and on `upgrade:post`: signal the first before an operation and \
the second after it, for a snapshot of the state before and one of the state after (as snapper's \
pre/post pairs). Only event rules run; retention and TTLs wait for `strata policy run`. Each \
decision is printed and recorded in the audit trail; copies need --target, as for `strata policy \
run`.",
    after_help = "\
Example:
  strata event ./vol upgrade:pre
  # TIME                      DECISION  VOLUME  DETAIL          OUTCOME  REASON
  # 2024-03-01T12:00:00.004Z  snapshot       7  \"upgrade:pre-7\"  applied  rules[5] \"upgrade\": event \"upgrade:pre\"
  apt-get -y upgrade
  strata event ./vol upgrade:post
  strata diff ./vol 7 8                        # what the upgrade changed"
)]
#[command(mut_arg("json", |a| a.help("Print JSON")))]
pub struct EventArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// The event: any name (deploy, upgrade:pre, upgrade:post, ...)
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Where copy target NAME writes its streams: a directory (created if missing)
    #[arg(long = "target", value_name = "NAME=DIR")]
    pub targets: Vec<TargetArg>,
    #[command(flatten)]
    pub print: OutputArgs,
}

/// Place (or release) a hold on a volume: no policy rule or TTL will delete or merge it
#[derive(Debug, Args)]
#[command(
    long_about = "\
Place a hold on a volume, or release it (--release).

A hold is the strongest thing in a policy: no retention rule, TTL or merge rule ever deletes or \
merges a held volume (it may still be compacted in place, which changes neither its identifier \
nor its contents). Use it to keep a snapshot that matters - the last good state before an \
incident - whatever the retention rules say. Holds are kept in the store and survive policy \
changes; a hold on a volume that is later deleted by hand goes with it.",
    after_help = "\
Example:
  strata hold ./vol --volume 12
  # volume 12 is held: no policy rule or TTL will delete or merge it
  strata hold ./vol --volume 12 --release"
)]
pub struct HoldArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// The volume: a volume identifier
    #[arg(long, value_name = "V")]
    pub volume: VolumeArg,
    /// Release the hold instead
    #[arg(long)]
    pub release: bool,
}

/// Give a volume a time to live, after which the policy deletes it (or clear it)
#[derive(Debug, Args)]
#[command(
    long_about = "\
Give a volume its own time to live, or clear it (--clear).

A volume with a TTL is deleted by `strata policy run` once its snapshot is that old (counted \
from when it was taken), whatever the retention rules say: they neither delete it earlier nor \
keep it longer (it fills no retention bucket). A hold and newest-snapshot protection still come \
first. The TTL takes effect only while a policy is set (the deletion happens when the policy \
runs). Durations: 90s, 15m, 1h, 7d, 4w, or combined as 1d12h.",
    after_help = "\
Example:
  strata snapshot ./vol --label scratch
  # snapshot: 9
  strata ttl ./vol --volume 9 2d
  # volume 9 will be deleted by `strata policy run` from 2024-03-03T12:00:00.000Z (taken ... + 2d)
  strata ttl ./vol --volume 9 --clear",
    group(ArgGroup::new("what").required(true).args(["ttl", "clear"]))
)]
pub struct TtlArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// The volume: a volume identifier
    #[arg(long, value_name = "V")]
    pub volume: VolumeArg,
    /// The time to live (90s, 15m, 1h, 7d, 4w, 1d12h)
    #[arg(value_name = "DURATION")]
    pub ttl: Option<DurationArg>,
    /// Remove the volume's TTL instead
    #[arg(long)]
    pub clear: bool,
}

/// Show the audit trail: every decision the policy carried out (or tried to), and why
#[derive(Debug, Args)]
#[command(
    long_about = "\
Show the audit trail: every decision `strata policy run` and `strata event` carried out or tried \
to, oldest first.

Each entry has the time, the decision (snapshot, copy, merge, delete, compact), the volume it \
made or acted on, the label or target, the outcome (applied; skipped, with why; failed, with the \
error) and the reason: the rule (`rules[1] \"thin\"`) or the volume's TTL, and what was measured. \
The trail is kept in the store's journal, so it survives reopen and crashes; the newest 10000 \
entries are kept. Dry runs are not recorded.",
    after_help = "\
Examples:
  strata audit ./vol --limit 10
  strata audit ./vol --json | jq '.[] | select(.outcome.outcome == \"failed\")'"
)]
#[command(mut_arg("json", |a| a.help("Print a JSON array")))]
pub struct AuditArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// Show only the newest N entries
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub print: OutputArgs,
}

const MS_PER_DAY: u64 = 86_400_000;

/// A duration: `90s`, `15m`, `1h`, `7d`, `4w`, `500ms`, or several together (`1d12h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationArg(pub u64);

impl FromStr for DurationArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("`{s}` is not a duration: give a number and a unit (ms, s, m, h, d, w), e.g. 90s, 15m, 7d or 1d12h")
        };
        let mut rest = s.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        let mut total: u64 = 0;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(bad());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit_ms = match &rest[..unit_len] {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => MS_PER_DAY,
                "w" => 7 * MS_PER_DAY,
                _ => return Err(bad()),
            };
            rest = &rest[unit_len..];
            total = n
                .checked_mul(unit_ms)
                .and_then(|ms| total.checked_add(ms))
                .ok_or_else(|| format!("duration `{s}` is too long"))?;
        }
        if total == 0 {
            return Err(format!("duration `{s}` is zero; give at least 1ms"));
        }
        Ok(DurationArg(total))
    }
}

/// The end of a simulation: a duration from now, or a UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// This long after now (ms).
    In(u64),
    /// At this time (ms since the Unix epoch).
    At(u64),
}

impl FromStr for Until {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains('-') {
            parse_utc(s).map(Until::At)
        } else {
            s.parse::<DurationArg>()
                .map(|d| Until::In(d.0))
                .map_err(|_| {
                    format!("`{s}` is neither a duration (30d, 12h, 1d12h) nor a UTC time (2024-03-01 or 2024-03-01T12:00:00Z)")
                })
        }
    }
}

/// `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM`, `YYYY-MM-DDTHH:MM:SS` or with `.fff`, optionally ending in
/// `Z` (always UTC), as ms since the Unix epoch.
pub fn parse_utc(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "`{s}` is not a UTC time: give 2024-03-01, 2024-03-01T12:00 or 2024-03-01T12:00:00Z"
        )
    };
    let t = s.trim().trim_end_matches(['Z', 'z']);
    let (date, time) = match t.split_once(['T', 't', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (t, None),
    };
    let num = |part: &str, len: usize| -> Result<u64, String> {
        if part.len() != len || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse::<u64>().map_err(|_| bad())
    };
    let fields: Vec<&str> = date.split('-').collect();
    let [y, m, d] = fields[..] else {
        return Err(bad());
    };
    let (year, month, day) = (num(y, 4)?, num(m, 2)?, num(d, 2)?);
    if year < 1970
        || !(1..=12).contains(&month)
        || day < 1
        || day > u64::from(strata_units::days_in_month(year, month as u32))
    {
        return Err(bad());
    }
    let mut ms = strata_units::days_from_civil(year, month as u32, day as u32) * MS_PER_DAY;
    if let Some(time) = time {
        let (hms, frac) = match time.split_once('.') {
            Some((hms, frac)) => (hms, Some(frac)),
            None => (time, None),
        };
        let parts: Vec<&str> = hms.split(':').collect();
        let (h, mi, sec) = match parts[..] {
            [h, mi] => (num(h, 2)?, num(mi, 2)?, 0),
            [h, mi, sec] => (num(h, 2)?, num(mi, 2)?, num(sec, 2)?),
            _ => return Err(bad()),
        };
        if h > 23 || mi > 59 || sec > 59 {
            return Err(bad());
        }
        ms += (h * 3600 + mi * 60 + sec) * 1000;
        if let Some(frac) = frac {
            if frac.is_empty() || frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let padded = format!("{frac:0<3}");
            ms += padded.parse::<u64>().map_err(|_| bad())?;
        }
    }
    Ok(ms)
}

/// A copy target: `NAME=DIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetArg {
    /// The target's name, as the policy's copy rules spell it.
    pub name: String,
    /// The directory its streams go to.
    pub dir: PathBuf,
}

impl FromStr for TargetArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some((name, dir)) if !name.is_empty() && !dir.is_empty() => Ok(TargetArg {
                name: name.to_string(),
                dir: PathBuf::from(dir),
            }),
            _ => Err(format!(
                "`{s}` is not a target: give NAME=DIR, e.g. backup=/mnt/backup/vol"
            )),
        }
    }
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
        assert_eq!("v1".parse::<VolumeArg>(), Ok(VolumeArg::Label("v1".into())));
        assert!("".parse::<VolumeArg>().is_err());
        assert!("a\nb".parse::<VolumeArg>().is_err());
        assert!("x".repeat(256).parse::<VolumeArg>().is_err());
    }

    #[test]
    fn parses_durations() {
        assert_eq!("90s".parse::<DurationArg>(), Ok(DurationArg(90_000)));
        assert_eq!("15m".parse::<DurationArg>(), Ok(DurationArg(900_000)));
        assert_eq!("1h".parse::<DurationArg>(), Ok(DurationArg(3_600_000)));
        assert_eq!("7d".parse::<DurationArg>(), Ok(DurationArg(7 * 86_400_000)));
        assert_eq!(
            "4w".parse::<DurationArg>(),
            Ok(DurationArg(28 * 86_400_000))
        );
        assert_eq!(
            "1d12h".parse::<DurationArg>(),
            Ok(DurationArg(36 * 3_600_000))
        );
        assert_eq!("250ms".parse::<DurationArg>(), Ok(DurationArg(250)));
        for bad in [
            "",
            "5",
            "h",
            "1x",
            "0s",
            "-1h",
            "1h-",
            "99999999999999999999d",
        ] {
            assert!(bad.parse::<DurationArg>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_until() {
        assert_eq!("30d".parse::<Until>(), Ok(Until::In(30 * 86_400_000)));
        assert_eq!("1970-01-02".parse::<Until>(), Ok(Until::At(86_400_000)));
        assert_eq!(
            "2024-03-01T12:00:00Z".parse::<Until>(),
            Ok(Until::At(1_709_294_400_000))
        );
        assert_eq!(
            "2024-02-29T12:00".parse::<Until>(),
            Ok(Until::At(1_709_208_000_000))
        );
        assert_eq!(
            "2024-03-01T12:00:00.5Z".parse::<Until>(),
            Ok(Until::At(1_709_294_400_500))
        );
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-03-01T24:00",
            "2024-3-1",
            "soon",
        ] {
            assert!(bad.parse::<Until>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_targets() {
        assert_eq!(
            "backup=/mnt/b".parse::<TargetArg>(),
            Ok(TargetArg {
                name: "backup".into(),
                dir: PathBuf::from("/mnt/b")
            })
        );
        assert!("backup".parse::<TargetArg>().is_err());
        assert!("=x".parse::<TargetArg>().is_err());
        assert!("x=".parse::<TargetArg>().is_err());
    }

    #[test]
    fn help_example_policy_reads_the_same_in_toml_and_json() {
        let from_toml: strata_engine::policy::Policy =
            toml::from_str(POLICY_EXAMPLE_TOML).expect("TOML example");
        let from_json =
            strata_engine::policy::Policy::from_json(POLICY_EXAMPLE_JSON).expect("JSON example");
        from_toml.validate().expect("valid");
        assert_eq!(from_toml, from_json);
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

/// Serve the store over NBD: every branch writable, every volume read-only (QEMU, nbdcopy, Linux)
#[derive(Debug, Args)]
#[command(
    long_about = "\
Serve the store as a network block device (the NBD protocol, fixed newstyle, structured replies, \
base:allocation block status) on a Unix socket or a port of 127.0.0.1.

Export names: `head` (or the empty name) is the active branch's head, and a branch's name is that \
branch's head (see `strata branch`), writable by one client at a time across the store (a write to \
a parked branch checks it out; read-only with --read-only); a volume number, `baseline`, or a \
snapshot's label is that volume, read-only, for any number of clients. NBD FLUSH is the store's \
sync, the durability point; TRIM and WRITE_ZEROES record zero extents (metadata, reported as holes \
by block status); unaligned requests are read-modify-written. The policy's \
temporal rules run on a clock tick while serving, and SIGUSR1 takes a snapshot (named by the \
policy's scheme, if any) between two requests. The server prints its URI on stdout, and on \
SIGINT or SIGTERM stops accepting, syncs and closes the store. It holds the store's write lock: \
reading commands (read, volumes, diff...) work beside it, changing ones are refused (LOCKED) until it stops.",
    after_help = "\
Examples:
  strata serve ./vol --socket /tmp/vol.sock &
  qemu-img convert -n -O raw disk.raw 'nbd+unix:///head?socket=/tmp/vol.sock'
  qemu-io -f raw -c 'write -P 0xab 0 64k' -c flush 'nbd+unix:///head?socket=/tmp/vol.sock'
  nbdcopy 'nbd+unix:///1?socket=/tmp/vol.sock' snapshot1.raw
  strata serve ./vol --port 10809        # nbd://127.0.0.1:10809/head"
)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// Listen on this Unix socket (a stale socket file is replaced)
    #[arg(long, value_name = "PATH", conflicts_with = "port")]
    pub socket: Option<PathBuf>,
    /// Listen on this port of 127.0.0.1 (0 picks a free one; the URI printed says which)
    #[arg(long, value_name = "PORT", default_value_t = 10809)]
    pub port: u16,
    /// Export the head read-only too
    #[arg(long)]
    pub read_only: bool,
    /// Most clients connected at once (each may hold one 32 MiB request); more are closed at once
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub max_clients: u16,
    /// How often the policy's temporal rules are evaluated while serving
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub tick: DurationArg,
}
