//! The subcommands that reshape the log or look across volumes: compact, merge, delete,
//! rollback, diff and du.

use super::*;

use std::collections::BTreeMap;

use strata_engine::{CompactReport, Extent, Progress};

use crate::args::{CompactArgs, DeleteArgs, DiffArgs, DuArgs, MergeArgs, RollbackArgs};

/// A progress callback for the engine that moves `bar` and never cancels. `bar` starts as a
/// spinner (while the engine plans) and becomes a bar at the first report, when the total is
/// known.
fn follow(bar: &ProgressBar) -> impl FnMut(Progress) -> bool + '_ {
    |p: Progress| {
        if bar.length().is_none() {
            if let Some(style) = bar_style() {
                bar.set_style(style);
            }
            bar.reset();
        }
        bar.set_length(p.total_bytes);
        bar.set_position(p.done_bytes);
        true
    }
}

/// Writes `text` (and a newline) to stdout.
pub(super) fn print_line(text: &str) -> CliResult {
    let mut out = io::stdout().lock();
    writeln!(out, "{text}").map_err(stdout_err)?;
    out.flush().map_err(stdout_err)
}

/// The identifiers of the visible volumes, in creation order.
fn volume_ids(store: &Store<DirStorage>) -> Vec<u64> {
    store.volumes().iter().map(|v| v.id.0).collect()
}

/// `1, 2, 3` (or `-` for none).
pub(super) fn id_list(ids: &[u64]) -> String {
    if ids.is_empty() {
        return "-".to_string();
    }
    ids.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A compaction's or deletion's report, with its volume and the bytes it freed.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CompactJson {
    volume: u64,
    freed_bytes: u64,
    #[serde(flatten)]
    report: CompactReport,
}

impl CompactJson {
    fn new(volume: VolumeId, report: &CompactReport) -> Self {
        CompactJson {
            volume: volume.0,
            freed_bytes: report.bytes_before.saturating_sub(report.bytes_after),
            report: *report,
        }
    }
}

// ----- compact -----------------------------------------------------------------------------------

pub fn compact(args: CompactArgs, quiet: bool) -> CliResult {
    let mut store = open_store(&args.store.dir)?;
    let volume = resolve(&store, args.volume)?.id;
    let bar = progress_bar(None, quiet, "compacting");
    let report = finish_bar(&bar, block_on(store.compact(volume, &mut follow(&bar))))?;
    block_on(store.close())?;
    let json = CompactJson::new(volume, &report);
    if args.print.json {
        return print_line(&to_json(&json, false)?);
    }
    let text = if report.blocks_dropped == 0 {
        format!(
            "volume {volume} has nothing to reclaim: all {} are live ({} bytes)",
            plural(report.blocks_kept, "block", "blocks"),
            report.bytes_after
        )
    } else {
        format!(
            "compacted volume {volume}: {} -> {} bytes (freed {}); {} kept, {} dropped",
            report.bytes_before,
            report.bytes_after,
            strata_units::format_bytes(json.freed_bytes),
            plural(report.blocks_kept, "block", "blocks"),
            report.blocks_dropped
        )
    };
    print_line(&text)
}

// ----- merge -------------------------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MergeJson {
    volume: u64,
    partitions: u32,
    merged: Vec<u64>,
    blocks_bytes: u64,
}

pub fn merge(args: MergeArgs, quiet: bool) -> CliResult {
    let mut store = open_store(&args.store.dir)?;
    let volume = resolve(&store, args.volume)?.id;
    let before = volume_ids(&store);
    let bar = progress_bar(None, quiet, "merging");
    let mut written = 0u64;
    let result = block_on(store.merge(volume, &mut |p| {
        written = p.total_bytes;
        follow(&bar)(p)
    }));
    let partitions = finish_bar(&bar, result)?;
    let after = volume_ids(&store);
    block_on(store.close())?;
    let merged: Vec<u64> = before.into_iter().filter(|v| !after.contains(v)).collect();
    if args.print.json {
        let value = MergeJson {
            volume: volume.0,
            partitions,
            merged,
            blocks_bytes: written,
        };
        return print_line(&to_json(&value, false)?);
    }
    let hidden = partitions as usize - merged.len().min(partitions as usize);
    let mut text = format!(
        "merged {} {} into the baseline ({}, {} of blocks written); volume 0 now reads what volume {volume} read",
        if merged.len() == 1 { "volume" } else { "volumes" },
        id_list(&merged),
        plural(u64::from(partitions), "partition", "partitions"),
        strata_units::format_bytes(written),
    );
    if hidden > 0 {
        text.push_str(&format!(
            "; {} of deleted volumes went too",
            plural(hidden as u64, "partition", "partitions")
        ));
    }
    print_line(&text)
}

// ----- delete ------------------------------------------------------------------------------------

pub fn delete(args: DeleteArgs) -> CliResult {
    let mut store = open_store(&args.store.dir)?;
    let info = resolve(&store, args.volume)?;
    if info.kind == VolumeKind::Head {
        return Err(Error::InvalidArgument(format!(
            "volume {} is the live head; it cannot be deleted (roll back to another volume first)",
            info.id
        ))
        .into());
    }
    let report = block_on(store.delete_volume(info.id))?;
    block_on(store.close())?;
    let json = CompactJson::new(info.id, &report);
    if args.print.json {
        return print_line(&to_json(&json, false)?);
    }
    let mut text = format!(
        "deleted volume {}: freed {} ({} dropped)",
        info.id,
        strata_units::format_bytes(json.freed_bytes),
        plural(report.blocks_dropped, "block", "blocks"),
    );
    if report.removed || report.bytes_after == 0 {
        text.push_str("; its partition was removed entirely");
    } else {
        text.push_str(&format!(
            "; {} kept for the volumes that grow from it",
            plural(report.blocks_kept, "block", "blocks")
        ));
    }
    print_line(&text)
}

// ----- rollback ----------------------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RollbackJson<'a> {
    previous_head: u64,
    previous_head_kept: bool,
    label: &'a str,
    head: u64,
    parent: u64,
}

pub fn rollback(args: RollbackArgs) -> CliResult {
    let mut store = open_store(&args.store.dir)?;
    let to = resolve(&store, args.to)?.id;
    let previous = store.head();
    let head = block_on(store.rollback(to, args.label.as_deref()))?;
    let kept = store
        .volume(previous)
        .is_ok_and(|v| v.kind == VolumeKind::Snapshot);
    let label = store.volume(previous).map(|v| v.label).unwrap_or_default();
    block_on(store.close())?;
    if args.print.json {
        let value = RollbackJson {
            previous_head: previous.0,
            previous_head_kept: kept,
            label: &label,
            head: head.0,
            parent: to.0,
        };
        return print_line(&to_json(&value, false)?);
    }
    let fate = if kept {
        format!("kept as snapshot {previous} {label:?}")
    } else {
        "removed: it held no writes".to_string()
    };
    print_line(&format!(
        "previous head: {previous} ({fate})\nhead: {head} (parent {to})"
    ))
}

// ----- diff --------------------------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DiffJson {
    a: u64,
    b: u64,
    block_size: u32,
    blocks: u64,
    extents: Vec<Extent>,
}

pub fn diff(args: DiffArgs) -> CliResult {
    let store = open_store_read_only(&args.store.dir)?;
    let a = resolve(&store, args.a)?.id;
    let b = resolve(&store, args.b)?.id;
    let extents = block_on(store.diff(a, b))?;
    let block_size = store.block_size();
    let blocks: u64 = extents.iter().map(|e| e.blocks).sum();
    let mut out = io::BufWriter::new(io::stdout().lock());
    if args.print.json {
        let value = DiffJson {
            a: a.0,
            b: b.0,
            block_size,
            blocks,
            extents: extents.clone(),
        };
        writeln!(out, "{}", to_json(&value, true)?).map_err(stdout_err)?;
    } else {
        if !extents.is_empty() {
            let rows: Vec<Vec<String>> = extents
                .iter()
                .map(|e| {
                    vec![
                        e.addr.to_string(),
                        (e.addr + e.blocks).to_string(),
                        e.blocks.to_string(),
                    ]
                })
                .collect();
            table(&mut out, &["ADDR", "END", "BLOCKS"], &rows, &[0, 1, 2]).map_err(stdout_err)?;
        }
        let summary = if extents.is_empty() {
            format!("volumes {a} and {b} are identical")
        } else {
            format!(
                "{}, {} ({}) differ between volumes {a} and {b}",
                plural(extents.len() as u64, "extent", "extents"),
                plural(blocks, "block", "blocks"),
                strata_units::format_bytes(blocks * u64::from(block_size))
            )
        };
        writeln!(out, "{summary}").map_err(stdout_err)?;
    }
    out.flush().map_err(stdout_err)
}

// ----- du ----------------------------------------------------------------------------------------

/// One row of `du`: a volume's `SpaceInfo` seen by a person (its kind and label; the baseline,
/// which `space()` does not list, and a total).
#[derive(Serialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
struct SpaceJson {
    /// `null` for the total.
    volume: Option<u64>,
    kind: &'static str,
    label: String,
    total_bytes: u64,
    live_bytes: u64,
    /// `null` for the baseline (it cannot be deleted).
    exclusive_bytes: Option<u64>,
    reclaimable_bytes: u64,
    metadata_bytes: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DuJson {
    volumes: Vec<SpaceJson>,
    total: SpaceJson,
}

pub fn du(args: DuArgs) -> CliResult {
    let store = open_store_read_only(&args.store.dir)?;
    let volumes: BTreeMap<u64, VolumeInfo> =
        store.volumes().into_iter().map(|v| (v.id.0, v)).collect();
    let block_size = u64::from(store.block_size());
    let mut rows = Vec::new();
    // The baseline: its image is live data, its checksums metadata (nothing for a zero one).
    let baseline_bytes = volumes.get(&0).map_or(0, |v| v.bytes);
    let (image, sums) = if baseline_bytes == 0 {
        (0, 0)
    } else {
        let image = store.block_count() * block_size;
        (image, baseline_bytes.saturating_sub(image))
    };
    rows.push(SpaceJson {
        volume: Some(0),
        kind: "baseline",
        label: String::new(),
        total_bytes: baseline_bytes,
        live_bytes: image,
        exclusive_bytes: None,
        reclaimable_bytes: 0,
        metadata_bytes: sums,
    });
    for space in store.space() {
        let info = volumes.get(&space.volume.0);
        let kind = match (space.visible, info.map(|v| v.kind)) {
            (false, _) => "deleted",
            (true, Some(kind)) => kind.as_str(),
            (true, None) => "snapshot",
        };
        rows.push(SpaceJson {
            volume: Some(space.volume.0),
            kind,
            label: info.map(|v| v.label.clone()).unwrap_or_default(),
            total_bytes: space.total_bytes,
            live_bytes: space.live_bytes,
            exclusive_bytes: Some(space.exclusive_bytes),
            reclaimable_bytes: space.reclaimable_bytes,
            metadata_bytes: space.metadata_bytes,
        });
    }
    let total = rows.iter().fold(
        SpaceJson {
            kind: "total",
            exclusive_bytes: Some(0),
            ..SpaceJson::default()
        },
        |mut t, r| {
            t.total_bytes += r.total_bytes;
            t.live_bytes += r.live_bytes;
            t.exclusive_bytes =
                Some(t.exclusive_bytes.unwrap_or(0) + r.exclusive_bytes.unwrap_or(0));
            t.reclaimable_bytes += r.reclaimable_bytes;
            t.metadata_bytes += r.metadata_bytes;
            t
        },
    );
    let mut out = io::BufWriter::new(io::stdout().lock());
    if args.print.json {
        let value = DuJson {
            volumes: rows,
            total,
        };
        writeln!(out, "{}", to_json(&value, true)?).map_err(stdout_err)?;
        return out.flush().map_err(stdout_err);
    }
    print_du(&mut out, &rows, &total, args.bytes)?;
    out.flush().map_err(stdout_err)
}

/// `du` for people: a row per partition and the total, sizes in bytes when `exact`.
fn print_du(out: &mut impl Write, rows: &[SpaceJson], total: &SpaceJson, exact: bool) -> CliResult {
    let size = |bytes: u64| {
        if exact {
            bytes.to_string()
        } else {
            strata_units::format_bytes(bytes)
        }
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .chain(std::iter::once(total))
        .map(|r| {
            vec![
                match (r.volume, r.kind) {
                    (None, _) => "total".to_string(),
                    (Some(v), "deleted") => format!("({v})"),
                    (Some(v), _) => v.to_string(),
                },
                if r.volume.is_none() {
                    String::new()
                } else {
                    r.kind.to_string()
                },
                if r.label.is_empty() {
                    if r.volume.is_none() {
                        String::new()
                    } else {
                        "-".to_string()
                    }
                } else {
                    r.label.clone()
                },
                size(r.total_bytes),
                size(r.live_bytes),
                r.exclusive_bytes.map_or("-".to_string(), size),
                size(r.reclaimable_bytes),
                size(r.metadata_bytes),
            ]
        })
        .collect();
    table(
        out,
        &[
            "VOLUME",
            "KIND",
            "LABEL",
            "TOTAL",
            "LIVE",
            "EXCLUSIVE",
            "RECLAIMABLE",
            "METADATA",
        ],
        &cells,
        &[0, 3, 4, 5, 6, 7],
    )
    .map_err(stdout_err)?;
    Ok(())
}
