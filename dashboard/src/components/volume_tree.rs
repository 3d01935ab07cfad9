//! The log partitions as a tree, oldest first: each volume's id, label, parent, entries and
//! space (total, live, reclaimable), the head marked, and each branch's head (writable clones,
//! `strata branch`) tagged with the branch's name. Choosing a volume time-travels the block
//! map to it.

use yew::prelude::*;

use crate::client::{SpaceInfo, VolumeInfo, VolumeKind};
use crate::components::block_map::volume_class;
use crate::format::{format_bytes, format_time};

#[derive(Properties, PartialEq)]
pub struct VolumeTreeProps {
    pub volumes: Vec<VolumeInfo>,
    pub space: Vec<SpaceInfo>,
    /// The volume the map shows.
    pub shown: Option<u64>,
    pub on_select: Callback<u64>,
}

/// How deep `volume` sits below the baseline (bounded by the number of volumes).
fn depth(volumes: &[VolumeInfo], volume: &VolumeInfo) -> usize {
    let mut depth = 0;
    let mut parent = volume.parent;
    while let Some(id) = parent {
        if depth > volumes.len() {
            break;
        }
        depth += 1;
        parent = volumes.iter().find(|v| v.id == id).and_then(|v| v.parent);
    }
    depth
}

#[component]
pub fn VolumeTree(props: &VolumeTreeProps) -> Html {
    let rows = props.volumes.iter().map(|v| {
        let space = props.space.iter().find(|s| s.volume == v.id);
        let is_head = v.kind == VolumeKind::Head;
        let shown = props.shown == Some(v.id.0);
        let select = {
            let (on_select, id) = (props.on_select.clone(), v.id.0);
            Callback::from(move |_| on_select.emit(id))
        };
        // Indentation by class (the CSP allows no inline styles), up to ten levels.
        let indent = format!("depth-{}", depth(&props.volumes, v).min(10));
        let colour = if v.kind == VolumeKind::Baseline {
            "baseline".to_string()
        } else {
            volume_class(v.id.0)
        };
        let when = v
            .sealed_ms
            .map(|ms| format!("sealed {}", format_time(ms)))
            .unwrap_or_else(|| format!("open since {}", format_time(v.created_ms)));
        html! {
            <tr class={classes!(shown.then_some("shown"), is_head.then_some("head"))}
                data-volume={v.id.to_string()}>
                <td class={classes!("volume-id", indent)}>
                    <span class={classes!("swatch", colour)} aria-hidden="true"></span>
                    { v.id }
                    if is_head { <span class="tag head" title="the live, writable volume">{ "head" }</span> }
                    if !v.branch.is_empty() {
                        <span class="tag branch" title={format!("the head of branch {:?}", v.branch)}>
                            { format!("⎇ {}", v.branch) }
                        </span>
                    }
                </td>
                <td>{ v.kind.as_str() }</td>
                <td class="label">{ &v.label }</td>
                <td>{ v.parent.map(|p| p.to_string()).unwrap_or_else(|| "—".into()) }</td>
                <td>{ v.entry_count }</td>
                <td>{ space.map(|s| format_bytes(s.total_bytes)).unwrap_or_else(|| format_bytes(v.bytes)) }</td>
                <td>{ space.map(|s| format_bytes(s.live_bytes)).unwrap_or_default() }</td>
                <td>{ space.map(|s| format_bytes(s.reclaimable_bytes)).unwrap_or_default() }</td>
                <td class="when">{ when }</td>
                <td>
                    <button type="button" onclick={select} aria-pressed={shown.to_string()}
                        aria-label={format!("Show volume {}", v.id)}>
                        { if shown { "Shown" } else { "Show" } }
                    </button>
                </td>
            </tr>
        }
    });
    html! {
        <section class="panel wide" aria-labelledby="volumes-title">
            <h2 id="volumes-title">{ "Partitions and volumes" }</h2>
            <div class="table-scroll">
                <table id="volumes">
                    <thead><tr>
                        <th>{ "Volume" }</th><th>{ "Kind" }</th><th>{ "Label" }</th><th>{ "Parent" }</th>
                        <th>{ "Entries" }</th><th>{ "Total" }</th><th>{ "Live" }</th>
                        <th>{ "Reclaimable" }</th><th>{ "Time" }</th><th><span class="sr-only">{ "Show" }</span></th>
                    </tr></thead>
                    <tbody>{ for rows }</tbody>
                </table>
            </div>
        </section>
    }
}
