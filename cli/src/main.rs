//! `strata`, the command-line tool for strata block stores.
//!
//! Every subcommand opens the store directory with [`DirStorage`]: the commands that change the
//! store take its exclusive write lock, the ones that only look open it read-only (no lock,
//! nothing written) so that they work beside a writer. Each runs the engine's futures to
//! completion with `pollster::block_on` and maps failures to exit codes: 0 success, 1 an engine (or I/O) error printed as `error[CODE]: message`, 2 a usage
//! error (clap's default).
//!
//! [`DirStorage`]: strata_engine::storage::dir::DirStorage

mod args;
mod commands;
mod error;
mod format;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::error::CliError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = cli.quiet;
    commands::set_automatic_policies(!cli.manual_policies);
    let result = match cli.command {
        Command::Create(a) => commands::create(a, quiet),
        Command::Write(a) => commands::write(a, quiet),
        Command::Zero(a) => commands::zero(a, quiet),
        Command::Snapshot(a) => commands::snapshot(a),
        Command::Read(a) => commands::read(a),
        Command::Log(a) => commands::log(a),
        Command::Volumes(a) => commands::volumes(a),
        Command::Export(a) => commands::export(a, quiet),
        Command::Stat(a) => commands::stat(a),
        Command::Compact(a) => commands::compact(a, quiet),
        Command::Merge(a) => commands::merge(a, quiet),
        Command::Delete(a) => commands::delete(a),
        Command::Rollback(a) => commands::rollback(a),
        Command::Diff(a) => commands::diff(a),
        Command::Du(a) => commands::du(a),
        Command::Send(a) => commands::send(a, quiet),
        Command::Receive(a) => commands::receive(a, quiet),
        Command::Policy(a) => commands::policy(a),
        Command::Event(a) => commands::event(a),
        Command::Hold(a) => commands::hold(a),
        Command::Ttl(a) => commands::ttl(a),
        Command::Audit(a) => commands::audit(a),
        Command::Mirror(a) => commands::mirror(a),
        Command::Branch(a) => commands::branch(a, quiet),
        Command::Serve(a) => commands::serve(a, quiet),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`strata read ... | head`): not worth an error.
        Err(CliError::BrokenPipe) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error[{}]: {e}", e.code());
            ExitCode::from(1)
        }
    }
}
