//! The scheme view: the store drawn as layers (see [`crate::scheme`]). The baseline at the
//! bottom, each partition above its parent, branches beside; each layer's strip shows the regions
//! it holds, and for the chosen volume which layer serves each region (the read path). A
//! compaction, merge or deletion run from here is shown before and after; the log cursor walks
//! the entries one step at a time and points at the layer and region of the one it is on.
//!
//! Strips are SVG with one shape per run of equal buckets (at most [`SCHEME_BUCKETS`] per layer,
//! whatever the volume's size), coloured by stylesheet classes: the CSP allows no inline styles.

use yew::prelude::*;

use crate::client::{LogEntry, VolumeKind};
use crate::commands::Reshape;
use crate::components::block_map::volume_class;
use crate::format::format_bytes;
use crate::scheme::{Change, Layer, Scheme, Source, SCHEME_BUCKETS, SCHEME_LAYERS_MAX};
use crate::state::{LogCursor, Transition};

/// Which drawing of a scheme: the live one (with its actions), or one side of a transition.
#[derive(Clone, Copy, PartialEq)]
enum Mode<'a> {
    Live,
    Before(&'a Change),
    After(&'a Change),
}

/// Runs of equal consecutive values: (first index, length, value).
fn runs<T: PartialEq + Copy>(values: impl IntoIterator<Item = T>) -> Vec<(usize, usize, T)> {
    let mut out: Vec<(usize, usize, T)> = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        match out.last_mut() {
            Some((_, len, last)) if *last == value => *len += 1,
            _ => out.push((i, 1, value)),
        }
    }
    out
}

/// Runs of the `true` buckets in `indices` (sorted) over `len` buckets.
fn marked_runs(indices: &[usize], len: usize) -> Vec<(usize, usize)> {
    let mut marks = vec![false; len];
    for &i in indices {
        if let Some(m) = marks.get_mut(i) {
            *m = true;
        }
    }
    runs(marks)
        .into_iter()
        .filter(|(_, _, m)| *m)
        .map(|(start, len, _)| (start, len))
        .collect()
}

fn layer_class(id: u64, kind: VolumeKind) -> String {
    if kind == VolumeKind::Baseline {
        "baseline".into()
    } else {
        volume_class(id)
    }
}

fn source_class(source: Source) -> String {
    match source {
        Source::Zero => "zero".into(),
        Source::Baseline => "baseline".into(),
        Source::Partition(volume) => volume_class(volume),
    }
}

fn source_name(scheme: &Scheme, source: Source) -> String {
    match source {
        Source::Zero => "zeros (never written)".into(),
        Source::Baseline => "the baseline".into(),
        Source::Partition(volume) => scheme
            .layer(volume)
            .map(Layer::name)
            .unwrap_or_else(|| format!("deleted volume {volume} (kept for its descendants)")),
    }
}

/// The volumes whose layers `volume` reads through: itself, its parent, ..., the baseline.
fn ancestry(scheme: &Scheme, volume: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut at = scheme.layer(volume);
    while let Some(layer) = at {
        if out.contains(&layer.id) || out.len() > scheme.layers.len() {
            break;
        }
        out.push(layer.id);
        at = layer.parent.and_then(|p| scheme.layer(p));
    }
    out
}

/// How big a bucket is, in words.
fn scale(scheme: &Scheme) -> String {
    let per = scheme.buckets.first().map_or(1, |(_, n)| *n);
    if per <= 1 {
        format!("{} blocks, one region per block", scheme.block_count)
    } else {
        format!(
            "{} blocks in {} regions of about {per} blocks",
            scheme.block_count,
            scheme.buckets.len()
        )
    }
}

/// The strip of one layer.
fn strip(scheme: &Scheme, layer: &Layer, mode: Mode, cursor: Option<&LogEntry>) -> Html {
    let width = scheme.buckets.len().max(1);
    let colour = layer_class(layer.id, layer.kind);
    let reads_here: Vec<bool> = scheme
        .read_path
        .iter()
        .map(|s| s.layer() == Some(layer.id))
        .collect();
    let served = reads_here.iter().filter(|r| **r).count();
    let held = runs(layer.held.iter().copied());
    let change = match mode {
        Mode::Before(change) | Mode::After(change) => change.of(layer.id),
        Mode::Live => None,
    };
    let (dropped, gained) = match (mode, change) {
        (Mode::Before(_), Some(c)) => (marked_runs(&c.dropped, width), Vec::new()),
        (Mode::After(_), Some(c)) => (Vec::new(), marked_runs(&c.gained, width)),
        _ => (Vec::new(), Vec::new()),
    };
    let cursor_mark = cursor
        .filter(|e| e.volume.0 == layer.id)
        .map(|e| scheme.buckets_of(e.addr, u64::from(e.blocks)))
        .filter(|r| !r.is_empty());
    let mut label = format!(
        "{} holds {} of {} regions",
        layer.name(),
        layer.held_buckets(),
        scheme.buckets.len()
    );
    if served > 0 {
        label.push_str(&format!(
            "; volume {} reads {served} region(s) from it",
            scheme.read_volume
        ));
    }
    if let Some(c) = change {
        if !c.dropped.is_empty() {
            label.push_str(&format!("; {} region(s) dropped", c.dropped.len()));
        }
        if !c.gained.is_empty() {
            label.push_str(&format!("; {} region(s) gained", c.gained.len()));
        }
    }
    if let Some(range) = &cursor_mark {
        label.push_str(&format!(
            "; the log cursor is on region(s) {}–{}",
            range.start,
            range.end - 1
        ));
    }
    let rect = |class: Classes, x: usize, y: f64, w: usize, h: f64| {
        html! {
            <rect class={class} x={x.to_string()} y={y.to_string()} width={w.to_string()} height={h.to_string()} />
        }
    };
    html! {
        <svg class="strip" viewBox={format!("0 0 {width} 4")} preserveAspectRatio="none"
            role="img" aria-label={label}>
            { rect(classes!("track"), 0, 0.0, width, 3.0) }
            { for held.iter().filter(|(_, _, h)| *h).map(|(x, w, _)| {
                // Held but hidden from the chosen volume by a layer above: drawn faint.
                let shadowed = reads_here.get(*x).is_some_and(|r| !r) && served > 0;
                rect(classes!("held", colour.clone(), shadowed.then_some("shadowed")), *x, 0.0, *w, 3.0)
            }) }
            { for runs(reads_here.iter().copied()).into_iter().filter(|(_, _, r)| *r).map(|(x, w, _)| {
                rect(classes!("serves"), x, 3.1, w, 0.9)
            }) }
            { for dropped.iter().map(|(x, w)| rect(classes!("dropped"), *x, 0.0, *w, 3.0)) }
            { for gained.iter().map(|(x, w)| rect(classes!("gained"), *x, 0.0, *w, 3.0)) }
            { for cursor_mark.map(|r| rect(classes!("cursor-mark"), r.start, 0.0, r.len(), 4.0)) }
        </svg>
    }
}

/// One layer: its name, kind and entries, its strip, and (live) its actions.
fn layer_card(
    scheme: &Scheme,
    layer: &Layer,
    mode: Mode,
    cursor: Option<&LogEntry>,
    props: &SchemeViewProps,
) -> Html {
    let on_path = ancestry(scheme, scheme.read_volume).contains(&layer.id);
    let reading = layer.id == scheme.read_volume;
    let removed = match mode {
        Mode::Before(change) => change.of(layer.id).is_some_and(|c| c.removed),
        _ => false,
    };
    let resized = match mode {
        Mode::After(change) => change.of(layer.id).is_some_and(|c| c.resized.is_some()),
        _ => false,
    };
    let has_cursor = cursor.is_some_and(|e| e.volume.0 == layer.id);
    let kind = match layer.kind {
        VolumeKind::Baseline => "baseline",
        VolumeKind::Snapshot => "snapshot",
        VolumeKind::Head => "head (live)",
    };
    // A deleted layer (kept for its descendants) can no longer be read or changed.
    let actions = (mode == Mode::Live && !layer.deleted).then(|| {
        let id = layer.id;
        let busy = props.busy;
        let sealed = layer.kind == VolumeKind::Snapshot;
        html! {
            <div class="layer-actions">
                <button type="button" class="read-path" aria-pressed={reading.to_string()}
                    aria-label={format!("Show the read path of volume {id}")}
                    onclick={props.on_read.reform(move |_| id)}>{ "Read path" }</button>
                if sealed {
                    <button type="button" class="compact" disabled={busy}
                        aria-label={format!("Compact volume {id}")}
                        onclick={props.on_reshape.reform(move |_| Reshape::Compact(id))}>{ "Compact" }</button>
                    <button type="button" class="merge" disabled={busy}
                        aria-label={format!("Merge up to volume {id} into the baseline")}
                        onclick={props.on_reshape.reform(move |_| Reshape::Merge(id))}>{ "Merge" }</button>
                    <button type="button" class="delete danger" disabled={busy}
                        aria-label={format!("Delete volume {id}")}
                        onclick={props.on_reshape.reform(move |_| Reshape::Delete(id))}>{ "Delete" }</button>
                }
            </div>
        }
    });
    html! {
        <div class={classes!("layer", (layer.kind == VolumeKind::Baseline).then_some("floor"), on_path.then_some("on-path"),
                reading.then_some("reading"), removed.then_some("leaving"), resized.then_some("resized"),
                layer.deleted.then_some("ghost"), has_cursor.then_some("cursor"))}
            data-volume={layer.id.to_string()} data-held={layer.held_buckets().to_string()}
            data-serves={scheme.served_by(Some(layer.id)).to_string()}>
            <div class="layer-title">
                <span class={classes!("swatch", layer_class(layer.id, layer.kind))} aria-hidden="true"></span>
                <strong>{ if layer.kind == VolumeKind::Baseline { "baseline 0".to_string() } else { format!("volume {}", layer.id) } }</strong>
                <span class="kind">{ if layer.deleted { "deleted, kept for its descendants" } else { kind } }</span>
                if !layer.label.is_empty() { <span class="label">{ &layer.label }</span> }
                if !layer.branch.is_empty() {
                    <span class="tag branch">{ format!("⎇ {}", layer.branch) }</span>
                }
                if layer.kind != VolumeKind::Baseline && !layer.deleted {
                    <span class="entries">{ format!("{} entries, {}", layer.entries, format_bytes(layer.bytes)) }</span>
                }
                if removed { <span class="tag gone">{ "gone after" }</span> }
            </div>
            { strip(scheme, layer, mode, cursor) }
            { for actions }
        </div>
    }
}

/// The whole drawing: the chosen volume's read path on top, then the layers, top to bottom.
fn drawing(
    scheme: &Scheme,
    mode: Mode,
    cursor: Option<&LogEntry>,
    props: &SchemeViewProps,
    id: &'static str,
) -> Html {
    let path = runs(scheme.read_path.iter().copied());
    let width = scheme.buckets.len().max(1);
    let path_label = {
        let mut sources: Vec<Source> = Vec::new();
        for s in &scheme.read_path {
            if !sources.contains(s) {
                sources.push(*s);
            }
        }
        let parts: Vec<String> = sources
            .iter()
            .map(|s| {
                let n = scheme.read_path.iter().filter(|x| *x == s).count();
                format!("{n} from {}", source_name(scheme, *s))
            })
            .collect();
        format!(
            "Volume {} reads its {} regions: {}",
            scheme.read_volume,
            scheme.read_path.len(),
            parts.join(", ")
        )
    };
    html! {
        <figure class="scheme" id={id} data-lanes={scheme.lanes.to_string()}>
            <div class="read-strip">
                <span class="read-title">{ format!("Volume {} reads", scheme.read_volume) }</span>
                <svg class="strip" viewBox={format!("0 0 {width} 3")} preserveAspectRatio="none"
                    role="img" aria-label={path_label.clone()}>
                    { for path.iter().map(|(x, w, s)| html! {
                        <rect class={classes!("held", source_class(*s))} x={x.to_string()} y="0"
                            width={w.to_string()} height="3" />
                    }) }
                </svg>
            </div>
            <div class="layers">
                { for scheme.rows().into_iter().map(|row| html! {
                    <div class="scheme-row">
                        { for row.into_iter().map(|slot| match slot {
                            Some(layer) => html! {
                                <div class="slot">{ layer_card(scheme, layer, mode, cursor, props) }</div>
                            },
                            None => html! { <div class="slot empty" aria-hidden="true"></div> },
                        }) }
                    </div>
                }) }
            </div>
            <figcaption class="sr-only">{ path_label }</figcaption>
        </figure>
    }
}

#[derive(Properties, PartialEq)]
pub struct SchemeViewProps {
    pub scheme: Option<Scheme>,
    pub transition: Option<Transition>,
    pub cursor: LogCursor,
    pub busy: bool,
    /// Draw the read path of this volume.
    pub on_read: Callback<u64>,
    pub on_reshape: Callback<Reshape>,
    /// Move the log cursor one entry on.
    pub on_step: Callback<()>,
    /// Put the log cursor back before the first entry.
    pub on_rewind: Callback<()>,
    pub on_dismiss: Callback<()>,
}

#[component]
pub fn SchemeView(props: &SchemeViewProps) -> Html {
    let Some(scheme) = props.scheme.as_ref() else {
        return html! {
            <section class="panel wide" aria-labelledby="scheme-title" aria-busy="true">
                <h2 id="scheme-title">{ "Layers" }</h2>
                <p>{ "Reading the layers…" }</p>
            </section>
        };
    };
    let cursor = props.cursor.entry.as_ref();
    let cursor_text = match (cursor, props.cursor.end) {
        (None, true) => "The log is empty.".to_string(),
        (None, false) => "The cursor is before the first entry: step to walk the log.".to_string(),
        (Some(e), end) => {
            let layer = scheme
                .layer(e.volume.0)
                .map(Layer::name)
                .unwrap_or_else(|| format!("volume {} (no longer a layer)", e.volume.0));
            let blocks = if e.blocks == 1 {
                format!("block {}", e.addr)
            } else {
                format!(
                    "blocks {}–{}",
                    e.addr,
                    e.addr + u64::from(e.blocks).saturating_sub(1)
                )
            };
            let zero = if e.zero { " (zeros)" } else { "" };
            let end = if end { " — end of the log" } else { "" };
            format!(
                "Step {}: entry {} writes {blocks}{zero} in {layer}{end}",
                props.cursor.steps, e.seq
            )
        }
    };
    let transition = props.transition.as_ref().map(|t| {
        html! {
            <section class="panel wide transition" id="transition" aria-labelledby="transition-title">
                <h2 id="transition-title">{ format!("{}: before and after", t.operation) }</h2>
                <p id="transition-report">{ &t.report }</p>
                <ul id="transition-changes">
                    { for t.change.describe(&t.before).into_iter().map(|line| html! { <li>{ line }</li> }) }
                    if t.change.layers.is_empty() {
                        <li>{ "No region changed hands at this scale (the bytes may still have shrunk)." }</li>
                    }
                </ul>
                <div class="before-after">
                    <div>
                        <h3>{ "Before" }</h3>
                        { drawing(&t.before, Mode::Before(&t.change), None, props, "scheme-before") }
                    </div>
                    <div>
                        <h3>{ "After" }</h3>
                        { drawing(&t.after, Mode::After(&t.change), None, props, "scheme-after") }
                    </div>
                </div>
                <button type="button" id="transition-dismiss" onclick={props.on_dismiss.reform(|_| ())}>
                    { "Hide before and after" }
                </button>
            </section>
        }
    });
    html! {
        <>
            <section class="panel wide" aria-labelledby="scheme-title">
                <h2 id="scheme-title">{ "Layers: how the store is built" }</h2>
                <p>
                    { "The baseline is at the bottom; every snapshot partition is a layer on its parent, \
                       and a branch grows beside the line it left. A layer's strip marks the regions it holds. \
                       Reading a block starts at the chosen volume's layer and falls through to the first \
                       layer below that holds it: the dark band under a strip marks the regions served from \
                       there, and the top strip shows the result." }
                </p>
                <p class="scope" id="scheme-scope">
                    { format!("{}; {} layers, {} side by side at most (bounded: at most {SCHEME_BUCKETS} regions per layer).",
                        scale(scheme), scheme.layers.len(), scheme.lanes) }
                    { if scheme.omitted.is_empty() { String::new() } else {
                        format!(" {} older volumes are not drawn (at most {SCHEME_LAYERS_MAX} layers: the chosen volume's line and the newest); a layer rests on its nearest drawn ancestor.",
                            scheme.omitted.len())
                    } }
                </p>
                { drawing(scheme, Mode::Live, cursor, props, "scheme-live") }
                <ul class="legend">
                    <li><span class="swatch zero"></span>{ "never written (zeros)" }</li>
                    <li><span class="swatch baseline"></span>{ "baseline" }</li>
                    <li><span class="swatch serves"></span>{ "served to the chosen volume" }</li>
                    <li><span class="swatch cursor-mark"></span>{ "log cursor" }</li>
                </ul>
            </section>
            { for transition }
            <section class="panel wide" aria-labelledby="cursor-title">
                <h2 id="cursor-title">{ "Log cursor" }</h2>
                <p id="cursor-entry" aria-live="polite">{ cursor_text }</p>
                <div class="buttons">
                    <button type="button" id="cursor-step" onclick={props.on_step.reform(|_| ())}>
                        { "Step to the next entry" }
                    </button>
                    <button type="button" id="cursor-rewind" onclick={props.on_rewind.reform(|_| ())}>
                        { "Back to the start" }
                    </button>
                </div>
            </section>
        </>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_group_equal_neighbours() {
        assert_eq!(
            runs([true, true, false, true]),
            vec![(0, 2, true), (2, 1, false), (3, 1, true)]
        );
        assert_eq!(marked_runs(&[1, 2, 5, 9], 6), vec![(1, 2), (5, 1)]);
    }
}
