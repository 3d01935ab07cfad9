//! `strata branch`: writable clones in the same store.

use clap::{Args, Subcommand};

use super::{OutputArgs, StoreArg, VolumeArg};

/// Writable clones of snapshots, in the same store: create, list, check out, delete
#[derive(Debug, Args)]
#[command(
    long_about = "\
Writable clones of snapshots, in the same store: create, list, check out, delete.

A branch is a named line of writable history, like a qcow2 overlay or a ZFS clone, kept in the \
same store and sharing every block it has not written with the volume it was cloned from. A store \
starts with one branch, `main`. `branch create` clones any snapshot (or the baseline, or another \
branch's head) into a new branch; nothing is copied. The store has one live head, so one branch \
is active at a time: `write`, `zero`, `snapshot` and `rollback` act on the active branch, and \
`branch checkout` (or `write --branch`) switches, sealing the live head as its branch's parked \
head (a durable step: two journal commits, no data copied). Wherever a volume is taken, a branch's \
name reads its head, e.g. `strata read ./vol --volume test ...`.

  list      the branches, their heads, and which is active
  create    clone a volume into a new branch
  checkout  make a branch the active one
  delete    delete a branch (its snapshots stay)",
    after_help = "\
Examples:
  strata snapshot ./vol --label golden
  strata branch create ./vol test --from golden
  strata branch checkout ./vol test
  strata write ./vol --addr 0 --file patch.bin
  strata branch checkout ./vol main
  strata branch delete ./vol test"
)]
pub struct BranchArgs {
    #[command(subcommand)]
    pub command: BranchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BranchCommand {
    List(BranchListArgs),
    Create(BranchCreateArgs),
    Checkout(BranchCheckoutArgs),
    Delete(BranchDeleteArgs),
}

/// List the branches, their heads, and which is active
#[derive(Debug, Args)]
pub struct BranchListArgs {
    #[command(flatten)]
    pub store: StoreArg,
    #[command(flatten)]
    pub print: OutputArgs,
}

/// Clone a volume into a new branch (nothing is copied)
#[derive(Debug, Args)]
pub struct BranchCreateArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// The new branch's name: letters, digits, '-', '_', '.' (at most 64 bytes)
    pub name: String,
    /// The volume to clone: a snapshot's number or label, `baseline`, or another branch's name
    #[arg(long, value_name = "V")]
    pub from: VolumeArg,
}

/// Make a branch the active one (where writes go)
#[derive(Debug, Args)]
pub struct BranchCheckoutArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// The branch to check out
    pub name: String,
}

/// Delete a branch: its head goes, snapshots taken on it stay
#[derive(Debug, Args)]
pub struct BranchDeleteArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// The branch to delete (not `main`)
    pub name: String,
}
