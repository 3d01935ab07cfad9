//! `strata send` and `strata receive`: copy streams between stores.

use super::*;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;

use strata_engine::policy::Operation;
use strata_engine::{CopyReport, Lent, SendOptions, StreamReceiver};

use crate::args::{ReceiveArgs, SendArgs};

// ----- send --------------------------------------------------------------------------------------

pub fn send(args: SendArgs, quiet: bool) -> CliResult {
    let output = OutputFile::checked(&args.output, &args.store.dir)?;
    let store = open_store_read_only(&args.store.dir)?;
    let base = args.base.map(|v| resolve(&store, v)).transpose()?;
    let upto = args.upto.map(|v| resolve(&store, v)).transpose()?;
    if let Some(range) = args.blocks {
        check_range(&store, range.start, range.end - range.start)?;
    }
    let options = SendOptions {
        base: base.as_ref().map(|v| v.id),
        upto: upto.as_ref().map(|v| v.id),
        since_seq: args.since_seq,
        blocks: args.blocks.map(|r| r.start..r.end),
    };
    if output.is_stdout() && io::stdout().is_terminal() {
        return Err(CliError::io(
            "writing to stdout",
            io::Error::other(
                "refusing to write a binary stream to a terminal; redirect it or use -o FILE",
            ),
        ));
    }
    let mut out = output.open()?;
    let bar = progress_bar(None, quiet, "sending");
    let result = output.stream(&mut out, |sink| {
        block_on(store.send(&options, &mut |chunk| {
            sink(chunk)?;
            bar.inc(chunk.len() as u64);
            Ok(())
        }))
    });
    drop(out);
    let report = finish_bar(&bar, result).inspect_err(|_| output.discard())?;
    let upto_id = match &upto {
        Some(v) => v.id,
        None => store
            .volume(store.head())
            .ok()
            .and_then(|h| h.parent)
            .unwrap_or(VolumeId::BASELINE),
    };
    let kind = match (
        &base,
        options.since_seq.is_some() || options.blocks.is_some(),
    ) {
        (None, false) => "a full stream".to_string(),
        (None, true) => "a filtered full stream".to_string(),
        (Some(b), false) => format!("an incremental stream over volume {}", b.id),
        (Some(b), true) => format!("a filtered incremental stream over volume {}", b.id),
    };
    note(
        quiet,
        format_args!(
            "sent {kind} up to volume {upto_id}: {}, {}, {} of block data, {} bytes of stream to {}",
            plural(report.volumes, "volume", "volumes"),
            plural(report.entries, "entry", "entries"),
            strata_units::format_bytes(report.data_bytes),
            report.stream_bytes,
            output.name,
        ),
    );
    Ok(())
}

// ----- receive -----------------------------------------------------------------------------------

/// What a receive carried (the engine's `CopyReport`) and what it left.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReceiveJson {
    created: bool,
    landed: Vec<u64>,
    #[serde(flatten)]
    report: CopyReport,
    head: u64,
    head_parent: Option<u64>,
}

/// The snapshots of a store, and its newest one (highest next sequence number), if any.
fn snapshot_ids(store: &Store<DirStorage>) -> (BTreeSet<u64>, Option<u64>) {
    let snapshots: Vec<VolumeInfo> = store
        .volumes()
        .into_iter()
        .filter(|v| v.kind == VolumeKind::Snapshot)
        .collect();
    let newest = snapshots
        .iter()
        .max_by_key(|v| (v.next_seq, v.id.0))
        .map(|v| v.id.0);
    (snapshots.into_iter().map(|v| v.id.0).collect(), newest)
}

/// What the receive works on: a new store in a directory without one, or an open store (lent
/// out of its policy executor, which takes it back when the stream has landed).
enum Target {
    New {
        dir_existed: bool,
        entries_before: BTreeSet<OsString>,
    },
    Existing(Box<(Store<DirStorage>, Lent)>),
}

fn target(dir: &Path) -> CliResult<Target> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Target::New {
                dir_existed: false,
                entries_before: BTreeSet::new(),
            })
        }
        Err(e) => return Err(CliError::io(dir.display().to_string(), e)),
        Ok(m) if !m.is_dir() => return Err(CliError::at(dir, Error::NotAStore)),
        Ok(_) => {}
    }
    let entries_before = dir_entries(dir);
    match open_store(dir) {
        Ok(store) => Ok(Target::Existing(Box::new(store.lend()))),
        Err(CliError::Engine {
            error: Error::NotAStore,
            ..
        }) => Ok(Target::New {
            dir_existed: true,
            entries_before,
        }),
        Err(e) => Err(e),
    }
}

/// The stream to receive (`-`: stdin, never a terminal) and its name for messages.
fn open_input(input: &Path) -> CliResult<(File, String)> {
    if input.as_os_str() != "-" {
        let name = input.display().to_string();
        let file = File::open(input).map_err(|e| CliError::io(&name, e))?;
        return Ok((file, name));
    }
    if io::stdin().is_terminal() {
        return Err(CliError::io(
            "reading stdin",
            io::Error::other(
                "refusing to read a stream from a terminal; pipe one in or use -i FILE",
            ),
        ));
    }
    Ok((stdin_file()?, "stdin".to_string()))
}

/// Pushes the whole stream from `input` into `receiver`, chunk by chunk.
fn push_stream(
    receiver: &mut StreamReceiver<DirStorage>,
    input: &mut File,
    in_name: &str,
    bar: &ProgressBar,
) -> CliResult {
    let mut buf = vec![0u8; IMAGE_CHUNK_BYTES];
    loop {
        let n = read_full(input, &mut buf)
            .map_err(|e| CliError::io(format!("reading {in_name}"), e))?;
        if n == 0 {
            return Ok(());
        }
        block_on(receiver.push(&buf[..n])).map_err(|e| stream_error(in_name, e))?;
        bar.inc(n as u64);
        if n < buf.len() {
            return Ok(());
        }
    }
}

pub fn receive(args: ReceiveArgs, quiet: bool) -> CliResult {
    let dir = &args.dir;
    let (mut input, in_name) = open_input(&args.input)?;
    let total = remaining_len(&mut input);
    let into = target(dir)?;
    let (mut receiver, before, new, lent) = match into {
        Target::Existing(lent) => {
            let (store, lent) = *lent;
            let (before, _) = snapshot_ids(&store);
            (StreamReceiver::into_store(store), before, None, Some(lent))
        }
        Target::New {
            dir_existed,
            entries_before,
        } => {
            let storage = lock_dir(dir)?;
            (
                StreamReceiver::new_store(storage, clock()),
                BTreeSet::new(),
                Some((dir_existed, entries_before)),
                None,
            )
        }
    };
    let bar = progress_bar(total, quiet, "receiving");
    let outcome = push_stream(&mut receiver, &mut input, &in_name, &bar);
    let report = receiver.report();
    let finished = match outcome {
        Ok(()) => block_on(receiver.finish()).map_err(|e| stream_error(&in_name, e)),
        Err(e) => {
            drop(receiver);
            Err(e)
        }
    };
    let (store, report) = match finish_bar(&bar, finished) {
        Ok(done) => done,
        Err(e) => return Err(receive_failed(e, dir, &report, &before, new)),
    };
    // The received volumes are committed: the policy may act on them (a failed rule is in the
    // audit trail; only a poisoned store fails the command).
    let mut store = match lent {
        Some(lent) => lent.take_back(store),
        None => managed(dir, store)?,
    };
    block_on(store.observe(Operation::Receive)).map_err(|e| CliError::at(dir, e))?;
    let (after, _) = snapshot_ids(&store);
    let landed: Vec<u64> = after.difference(&before).copied().collect();
    let head = store.head();
    let head_parent = store.volume(head).ok().and_then(|v| v.parent);
    block_on(store.close())?;
    let mut out = io::stdout().lock();
    if args.print.json {
        let value = ReceiveJson {
            created: new.is_some(),
            landed,
            report,
            head: head.0,
            head_parent: head_parent.map(|p| p.0),
        };
        writeln!(out, "{}", to_json(&value, false)?).map_err(stdout_err)?;
    } else {
        if new.is_some() {
            writeln!(out, "created store in {}", dir.display()).map_err(stdout_err)?;
        }
        writeln!(
            out,
            "received {} ({}), {} already here; {}, {} of block data from {} bytes of stream",
            plural(report.volumes, "volume", "volumes"),
            super::ops::id_list(&landed),
            report.volumes_skipped,
            plural(report.entries, "entry", "entries"),
            strata_units::format_bytes(report.data_bytes),
            report.stream_bytes,
        )
        .map_err(stdout_err)?;
        let parent = head_parent.map_or("-".to_string(), |p| p.to_string());
        writeln!(out, "head: {head} (parent {parent})").map_err(stdout_err)?;
    }
    out.flush().map_err(stdout_err)
}

/// An engine error while applying the stream read from `input`: a refused stream is said
/// plainly (the store is not corrupt).
fn stream_error(input: &str, error: Error) -> CliError {
    match &error {
        Error::BadStream(what) => CliError::Message {
            code: error.code(),
            message: format!("{input}: the stream is damaged or incomplete: {what}"),
        },
        _ => CliError::Engine {
            error,
            context: Some(input.to_string()),
        },
    }
}

/// The error of a failed receive, with a note on what landed and how to resume. A new store that
/// did not come into being leaves nothing behind.
fn receive_failed(
    error: CliError,
    dir: &Path,
    report: &CopyReport,
    before: &BTreeSet<u64>,
    new: Option<(bool, BTreeSet<OsString>)>,
) -> CliError {
    let store = match (open_store_read_only(dir), new) {
        (Ok(store), _) => store,
        (
            Err(CliError::Engine {
                error: Error::NotAStore,
                ..
            }),
            Some((dir_existed, entries_before)),
        ) => {
            {
                if dir_existed {
                    for name in dir_entries(dir).difference(&entries_before) {
                        let path: PathBuf = dir.join(name);
                        let _ = std::fs::remove_file(&path);
                    }
                } else {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
            let note = format!(
                "nothing landed: {} holds no store; receive the whole stream again",
                dir.display()
            );
            return CliError::WithNote(Box::new(error), note);
        }
        (Err(reopen), _) => {
            let note = format!(
                "reopening {} to see what landed failed: {reopen}",
                dir.display()
            );
            return CliError::WithNote(Box::new(error), note);
        }
    };
    let (after, newest) = snapshot_ids(&store);
    drop(store);
    let landed: Vec<u64> = after.difference(before).copied().collect();
    let newest = newest.map_or("baseline".to_string(), |v| v.to_string());
    let note = format!(
        "{} landed before the error ({}), {} already here; the newest volume {} has is {newest}: \
         resume with `strata send SOURCE --base {newest} -o - | strata receive {} -i -`",
        plural(report.volumes, "volume", "volumes"),
        super::ops::id_list(&landed),
        report.volumes_skipped,
        dir.display(),
        dir.display(),
    );
    CliError::WithNote(Box::new(error), note)
}
