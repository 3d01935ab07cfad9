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
}
