//! `strata branch`: list, create (clone), check out and delete branches.

use std::io::{self, Write};

use pollster::block_on;
use serde::Serialize;
use strata_engine::BranchInfo;

use super::{note, open_store, open_store_read_only, resolve, stdout_err, to_json, CliResult};
use crate::args::branch::{
    BranchArgs, BranchCheckoutArgs, BranchCommand, BranchCreateArgs, BranchDeleteArgs,
    BranchListArgs,
};
use crate::format::table;

pub fn branch(args: BranchArgs, quiet: bool) -> CliResult {
    match args.command {
        BranchCommand::List(a) => list(a),
        BranchCommand::Create(a) => create(a, quiet),
        BranchCommand::Checkout(a) => checkout(a, quiet),
        BranchCommand::Delete(a) => delete(a, quiet),
    }
}

#[derive(Serialize)]
struct BranchJson<'a> {
    #[serde(flatten)]
    branch: &'a BranchInfo,
}

fn list(args: BranchListArgs) -> CliResult {
    let store = open_store_read_only(&args.store.dir)?;
    let branches = store.branches();
    let mut out = io::BufWriter::new(io::stdout().lock());
    if args.print.json {
        let list: Vec<BranchJson> = branches
            .iter()
            .map(|branch| BranchJson { branch })
            .collect();
        writeln!(out, "{}", to_json(&list, true)?).map_err(stdout_err)?;
    } else {
        let rows: Vec<Vec<String>> = branches
            .iter()
            .map(|b| {
                vec![
                    b.name.clone(),
                    b.head.to_string(),
                    if b.active { "active" } else { "parked" }.to_string(),
                ]
            })
            .collect();
        table(&mut out, &["BRANCH", "HEAD", "STATE"], &rows, &[1]).map_err(stdout_err)?;
    }
    out.flush().map_err(stdout_err)
}

fn create(args: BranchCreateArgs, quiet: bool) -> CliResult {
    let mut store = open_store(&args.store.dir)?;
    let from = resolve(&store, args.from)?.id;
    let head = block_on(store.clone_branch(from, &args.name))?;
    println!("{head}");
    note(
        quiet,
        format_args!(
            "branch {:?} cloned from volume {from}: its head is volume {head} (`strata branch checkout` to write to it)",
            args.name
        ),
    );
    block_on(store.close())?;
    Ok(())
}

fn checkout(args: BranchCheckoutArgs, quiet: bool) -> CliResult {
    let mut store = open_store(&args.store.dir)?;
    let head = block_on(store.checkout(&args.name))?;
    note(
        quiet,
        format_args!(
            "branch {:?} is active: writes go to its head, volume {head}",
            args.name
        ),
    );
    block_on(store.close())?;
    Ok(())
}

fn delete(args: BranchDeleteArgs, quiet: bool) -> CliResult {
    let mut store = open_store(&args.store.dir)?;
    block_on(store.delete_branch(&args.name))?;
    note(
        quiet,
        format_args!(
            "branch {:?} deleted; the active branch is {:?}",
            args.name,
            store.active_branch()
        ),
    );
    block_on(store.close())?;
    Ok(())
}
