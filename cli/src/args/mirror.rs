//! `strata mirror`: the redundant system's command line.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{OutputArgs, StoreArg};

/// Keep the live volume on mirrored directories beside the store, and check and repair them
#[derive(Debug, Args)]
#[command(
    long_about = "\
Keep the live volume on mirrored directories (legs) beside the store, and check and repair them.

A mirrored store is two things under one controller. The store directory itself is the \
*secondary*: the baseline, the snapshot partitions and the incremental log, the full history and \
the source of truth. The *primary* holds only the live head volume, as a plain image (`primary.img`) \
with a checksum per block (`primary.sum`) and a small header (`primary.hdr`), on every leg: each \
leg is a directory, ideally on a different disk, and each holds a complete copy. Reading the head \
from the primary costs one image read whatever the history looks like; the legs make it survive \
the loss or damage of all but one of them, and the secondary can rebuild it from scratch.

The list of legs is kept in `mirror.json` in the store directory. The other commands (`write`, \
`snapshot`, `rollback`, ...) work on the secondary as always; the primary catches up, from the log, \
whenever a `mirror` command next opens the system. Reads through the mirror check every block \
against its checksum and take a bad one from another leg (or the secondary), rewriting the bad \
copy. A leg whose directory fails is taken out of service (degraded) and the rest keep serving.

  create   put a primary on legs beside a new or existing store
  status   the legs' state and the faults found so far
  scrub    verify every block of every leg and repair what can be repaired
  replace  put a new (or wiped) directory in a leg's place and resilver it
  rebuild  rebuild every leg from the secondary, after all of them were lost",
    after_help = "\
Examples:
  strata mirror create ./vol --blocks 262144 --leg /mnt/a/vol --leg /mnt/b/vol
  strata write ./vol --addr 0 --file boot.img
  strata mirror status ./vol
  strata mirror scrub ./vol
  strata mirror replace ./vol --leg 1 --with /mnt/c/vol"
)]
pub struct MirrorArgs {
    #[command(subcommand)]
    pub command: MirrorCommand,
}

#[derive(Debug, Subcommand)]
pub enum MirrorCommand {
    Create(MirrorCreateArgs),
    Status(MirrorStatusArgs),
    Scrub(MirrorScrubArgs),
    Replace(MirrorReplaceArgs),
    Rebuild(MirrorRebuildArgs),
}

/// Put a primary copy of the head on mirrored leg directories, beside a new or existing store
#[derive(Debug, Args)]
#[command(
    long_about = "\
Put a primary copy of the head volume on mirrored leg directories, beside a new or existing store.

With --blocks, a new empty store is created in DIR (which must not hold one); without it, DIR must \
already hold a store (made by `strata create`, with an imported baseline, say) and the primary is \
added beside it. Each --leg directory is created if missing; it receives the head volume as a plain \
image plus a checksum per block, written in full before this command returns. A leg directory may \
hold other files, but not a store, nor another store's primary, nor be DIR itself; and its \
filesystem needs room for the image and its checksums (block count x (block size + 4) bytes, for \
every leg on it). All of this is checked before anything is written, and refused \
(INVALID_ARGUMENT, or QUOTA_EXCEEDED with the bytes needed and free). The leg list is written to \
DIR/mirror.json, which the other `mirror` commands read.",
    after_help = "\
Examples:
  strata mirror create ./vol --blocks 1024 --leg /mnt/a/vol --leg /mnt/b/vol
  strata create ./vol --baseline disk.raw && strata mirror create ./vol --leg /mnt/a/vol --leg /mnt/b/vol
  # mirror on ./vol: 2 legs, head volume 1"
)]
pub struct MirrorCreateArgs {
    /// Store directory (the secondary)
    pub dir: PathBuf,
    /// A leg directory; give it once per leg (at least one, two or more to mirror)
    #[arg(long = "leg", value_name = "DIR", required = true)]
    pub legs: Vec<PathBuf>,
    /// Create a new empty store of N blocks in DIR (without it, DIR must hold a store)
    #[arg(long, value_name = "N")]
    pub blocks: Option<u64>,
    /// Block size of a new store, in bytes: a power of two from 512 to 65536
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = 4096,
        requires = "blocks"
    )]
    pub block_size: u32,
    #[command(flatten)]
    pub print: OutputArgs,
}

/// Show the state of each leg: in service or degraded, in step with the store, faults found
#[derive(Debug, Args)]
#[command(
    long_about = "\
Show the state of each leg of the primary: in service or degraded, in step with the store, faults \
found.

Opening the system brings every leg in line first, and the OPEN column says what that took: `in \
sync` (nothing), `caught up N` (N blocks written since the leg was last updated, found from the \
log), `resilvered N` (a blank, unknown or inconsistent leg compared block by block), or `failed` \
(the directory could not be used: the leg is degraded). STATE is `healthy` (written on every sync, \
read from, scrubbed), `degraded` (out of service after an I/O failure: replace it) or `missing`. \
SYNCED is the head volume and log position the leg's image reflects. DETECTED and REPAIRED count \
bad copies found and rewritten in this run. With --json, one object with `legs` and the totals.",
    after_help = "\
Example:
  strata mirror status ./vol
  # LEG  STATE    OPEN         SYNCED          DETECTED  REPAIRED  PATH
  # 0    healthy  in sync      volume 3 @ 129         0         0  /mnt/a/vol
  # 1    healthy  caught up 4  volume 3 @ 129         0         0  /mnt/b/vol"
)]
#[command(mut_arg("json", |a| a.help("Print a JSON object")))]
pub struct MirrorStatusArgs {
    #[command(flatten)]
    pub store: StoreArg,
    #[command(flatten)]
    pub print: OutputArgs,
}

/// Verify every block of every leg and repair every bad copy that has a good one elsewhere
#[derive(Debug, Args)]
#[command(
    long_about = "\
Verify every block of every leg and repair every bad copy that has a good one elsewhere.

Each block of each leg in service is checked against its checksum, against the other legs and \
against the store's head (so a stale copy that still passes its checksum, a lost write, is found \
too). A bad copy is rewritten from a good one: another leg, or the secondary. A block with no good \
copy anywhere is left marked bad, so that reads report it rather than return wrong data, and the \
command exits with an error naming it. Damage found in the secondary's own copy is reported but \
not rewritten (the primary still serves those blocks).",
    after_help = "\
Example:
  strata mirror scrub ./vol
  # scrubbed 1024 blocks, 2048 copies: 3 bad, 3 repaired, 0 unrecoverable
  # leg 0: 1024 checked, 3 bad, 3 repaired
  # leg 1: 1024 checked, 0 bad, 0 repaired"
)]
#[command(mut_arg("json", |a| a.help("Print a JSON object")))]
pub struct MirrorScrubArgs {
    #[command(flatten)]
    pub store: StoreArg,
    #[command(flatten)]
    pub print: OutputArgs,
}

/// Put a new (or wiped) directory in a leg's place and resilver it from the others
#[derive(Debug, Args)]
#[command(
    long_about = "\
Put a new (or wiped, or returning) directory in a leg's place and resilver it.

The leg is filled from the legs in service, or from the store's head when there are none, and \
put back in service. Every block is compared, so a directory that held this leg before keeps what \
is still right and only the rest is written. Without --with, the leg's own directory is used again \
(after the disk behind it was swapped, say); with --with, the new directory replaces the old one \
in DIR/mirror.json. A directory holding another store's primary is refused.",
    after_help = "\
Examples:
  strata mirror status ./vol                          # leg 1 degraded
  strata mirror replace ./vol --leg 1 --with /mnt/c/vol
  # leg 1 resilvered: 1024 blocks checked, 1024 written"
)]
pub struct MirrorReplaceArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// The leg to replace: its number in `strata mirror status`, from 0
    #[arg(long, value_name = "N")]
    pub leg: usize,
    /// The new leg directory (default: the leg's current directory)
    #[arg(long, value_name = "DIR")]
    pub with: Option<PathBuf>,
    #[command(flatten)]
    pub print: OutputArgs,
}

/// Rebuild every leg of the primary from the store's head, after all of them were lost
#[derive(Debug, Args)]
#[command(
    long_about = "\
Rebuild every leg of the primary from the store's head, after all of them were lost.

The secondary holds the whole history, the head included, so the primary can always be made \
again: the first leg is written from the secondary's head, the others from the legs already \
rebuilt. Leg directories that are missing are created; the leg list stays as in DIR/mirror.json.",
    after_help = "\
Example:
  strata mirror rebuild ./vol
  # leg 0 rebuilt: 1024 blocks checked, 1024 written
  # leg 1 rebuilt: 1024 blocks checked, 1024 written"
)]
pub struct MirrorRebuildArgs {
    #[command(flatten)]
    pub store: StoreArg,
    #[command(flatten)]
    pub print: OutputArgs,
}
