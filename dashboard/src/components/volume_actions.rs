//! What can be done to volumes: snapshot the head, compact, merge, delete, roll back, diff two
//! volumes, export one as a raw `.img`; and copy streams (send to a file, receive one).

use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::client::{Extent, VolumeInfo, VolumeKind};

#[derive(Clone, Debug, PartialEq)]
pub enum VolumeAction {
    Snapshot { label: String },
    Compact(u64),
    Merge(u64),
    Delete(u64),
    Rollback { volume: u64, label: String },
    Diff(u64, u64),
    Export(u64),
    Send,
    Receive(web_sys::File),
}

#[derive(Properties, PartialEq)]
pub struct VolumeActionsProps {
    pub volumes: Vec<VolumeInfo>,
    /// The volume the map shows, the default target.
    pub shown: Option<u64>,
    pub busy: bool,
    pub diff: Option<(u64, u64, Vec<Extent>)>,
    pub on_action: Callback<VolumeAction>,
}

fn volume_select(
    id: &'static str,
    volumes: &[VolumeInfo],
    value: Option<u64>,
    onchange: Callback<Event>,
) -> Html {
    html! {
        <select id={id} {onchange}>
            { for volumes.iter().map(|v| {
                let text = if v.label.is_empty() {
                    format!("{} ({})", v.id, v.kind)
                } else {
                    format!("{} ({}, {})", v.id, v.kind, v.label)
                };
                html! { <option value={v.id.to_string()} selected={Some(v.id.0) == value}>{ text }</option> }
            }) }
        </select>
    }
}

#[component]
pub fn VolumeActions(props: &VolumeActionsProps) -> Html {
    let label = use_state(String::new);
    let target = use_state(|| None::<u64>);
    let diff_a = use_state(|| None::<u64>);
    let diff_b = use_state(|| None::<u64>);
    let stream_input = use_node_ref();

    let head = props
        .volumes
        .iter()
        .find(|v| v.kind == VolumeKind::Head)
        .map(|v| v.id.0);
    let target_volume = target
        .filter(|t| props.volumes.iter().any(|v| v.id.0 == *t))
        .or(props.shown);
    let a = diff_a
        .filter(|t| props.volumes.iter().any(|v| v.id.0 == *t))
        .or(Some(0));
    let b = diff_b
        .filter(|t| props.volumes.iter().any(|v| v.id.0 == *t))
        .or(head);

    let pick = |state: &UseStateHandle<Option<u64>>| {
        let state = state.clone();
        Callback::from(move |e: Event| {
            state.set(
                e.target_unchecked_into::<HtmlSelectElement>()
                    .value()
                    .parse()
                    .ok(),
            )
        })
    };
    let on_label = {
        let label = label.clone();
        Callback::from(move |e: InputEvent| {
            label.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let emit = |make: Box<dyn Fn() -> Option<VolumeAction>>| {
        let on_action = props.on_action.clone();
        Callback::from(move |_: MouseEvent| {
            if let Some(action) = make() {
                on_action.emit(action);
            }
        })
    };
    let snapshot = {
        let label = label.clone();
        emit(Box::new(move || {
            Some(VolumeAction::Snapshot {
                label: (*label).clone(),
            })
        }))
    };
    let on_target = |make: fn(u64) -> VolumeAction| emit(Box::new(move || target_volume.map(make)));
    let rollback = {
        let label = label.clone();
        emit(Box::new(move || {
            target_volume.map(|volume| VolumeAction::Rollback {
                volume,
                label: (*label).clone(),
            })
        }))
    };
    let diff = emit(Box::new(move || Some(VolumeAction::Diff(a?, b?))));
    let send = emit(Box::new(|| Some(VolumeAction::Send)));
    let receive = {
        let stream_input = stream_input.clone();
        emit(Box::new(move || {
            stream_input
                .cast::<HtmlInputElement>()
                .and_then(|i| i.files())
                .and_then(|f| f.get(0))
                .map(VolumeAction::Receive)
        }))
    };
    let diff_result = props.diff.as_ref().map(|(a, b, extents)| {
        let blocks: u64 = extents.iter().map(|e| e.blocks).sum();
        html! {
            <div id="diff-result">
                <p>{ format!("Volumes {a} and {b} differ in {blocks} blocks ({} extents)", extents.len()) }</p>
                <ul class="extents">
                    { for extents.iter().take(200).map(|e| html! {
                        <li>{ if e.blocks == 1 { format!("block {}", e.addr) } else { format!("blocks {}–{}", e.addr, e.addr + e.blocks - 1) } }</li>
                    }) }
                </ul>
            </div>
        }
    });
    let busy = props.busy;
    html! {
        <section class="panel" aria-labelledby="actions-title">
            <h2 id="actions-title">{ "Snapshots and partitions" }</h2>
            <div class="grid-form">
                <label for="snapshot-label">{ "Label" }</label>
                <input id="snapshot-label" value={(*label).clone()} oninput={on_label} placeholder="optional" />
                <div class="buttons">
                    <button type="button" id="snapshot" onclick={snapshot} disabled={busy}>{ "Snapshot the head" }</button>
                </div>
                <label for="action-volume">{ "Volume" }</label>
                { volume_select("action-volume", &props.volumes, target_volume, pick(&target)) }
                <div class="buttons">
                    <button type="button" id="compact" onclick={on_target(VolumeAction::Compact)} disabled={busy}
                        title="Rewrite the partition keeping only what is still read">{ "Compact" }</button>
                    <button type="button" id="merge" onclick={on_target(VolumeAction::Merge)} disabled={busy}
                        title="Fold this and older partitions into the baseline">{ "Merge into baseline" }</button>
                    <button type="button" id="rollback" onclick={rollback} disabled={busy}
                        title="Start a new head from this volume (uses the label above)">{ "Roll back to it" }</button>
                    <button type="button" id="export" onclick={on_target(VolumeAction::Export)} disabled={busy}>{ "Export .img" }</button>
                    <button type="button" id="delete-volume" class="danger" onclick={on_target(VolumeAction::Delete)} disabled={busy}>{ "Delete volume" }</button>
                </div>
                <label for="diff-a">{ "Diff" }</label>
                <div class="pair">
                    { volume_select("diff-a", &props.volumes, a, pick(&diff_a)) }
                    <span>{ "and" }</span>
                    { volume_select("diff-b", &props.volumes, b, pick(&diff_b)) }
                    <button type="button" id="diff" onclick={diff} disabled={busy}>{ "Diff" }</button>
                </div>
            </div>
            { for diff_result }
            <h3>{ "Copy streams" }</h3>
            <div class="grid-form">
                <span>{ "Send" }</span>
                <div class="buttons">
                    <button type="button" id="send" onclick={send} disabled={busy}>{ "Send all snapshots to a file" }</button>
                </div>
                <label for="receive-file">{ "Receive (a later stream of this copy's source)" }</label>
                <input id="receive-file" type="file" ref={stream_input} />
                <div class="buttons">
                    <button type="button" id="receive" onclick={receive} disabled={busy}>{ "Receive stream" }</button>
                </div>
            </div>
        </section>
    }
}
