//! The mirror view: a mirror drawn as it works, its secondary and each leg on a backend of the
//! user's choice. The primary (the live volume, every block on every leg) above the secondary
//! (baseline + log, as a store keeps it); each leg's health, how opening brought it in line and
//! what was found and fixed on it; scrub, replace a leg, write and sync, snapshot, close and
//! reopen. Legs on OPFS or IndexedDB outlive a close, so damage done to them while the mirror is
//! closed (or a leg's storage removed) shows at the next open or scrub. Everything comes from
//! `StrataMirrorClient.status()`, `scrub()`, `replace()` and `events()`.

use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::client::{Backend, MirrorLegStatus, VolumeKind};
use crate::commands::MirrorAction;
use crate::components::block_map::volume_class;
use crate::state::MirrorView as MirrorData;

/// Blocks each "Write and sync" writes.
const WRITE_BLOCKS: u64 = 8;

#[derive(Properties, PartialEq)]
pub struct MirrorViewProps {
    pub mirror: Option<MirrorData>,
    pub busy: bool,
    pub on_action: Callback<MirrorAction>,
}

fn leg_card(leg: &MirrorLegStatus, busy: bool, on_action: &Callback<MirrorAction>) -> Html {
    let i = leg.leg;
    let state_text = match leg.state.as_str() {
        "healthy" => "healthy: in service",
        "degraded" => "degraded: out of service, replace it",
        "missing" => "missing: no device",
        other => other,
    };
    let opened = match leg.open.as_str() {
        "inSync" => "in sync".to_string(),
        "caughtUp" => format!(
            "caught up from the secondary's log ({} blocks)",
            leg.open_blocks_written
        ),
        "resilvered" => format!("rewritten whole ({} blocks)", leg.open_blocks_written),
        "failed" => "could not be used".to_string(),
        other => other.to_string(),
    };
    let synced = leg
        .synced
        .as_ref()
        .map(|s| format!("holds head {} up to entry {}", s.head, s.next_seq))
        .unwrap_or_else(|| "position unknown".into());
    html! {
        <li class={classes!("leg", leg.state.clone())} data-leg={i.to_string()} data-state={leg.state.clone()}
            data-open={leg.open.clone()} data-replacements={leg.replacements.to_string()}>
            <div class="leg-title">
                <strong>{ format!("Leg {i}") }</strong>
                <span class="state">{ state_text }</span>
            </div>
            <p class="leg-where">{ format!("{} store {}; {synced}; at open: {opened}", leg.backend, leg.store) }</p>
            if let Some(reason) = &leg.reason {
                <p class="error">{ reason }</p>
            }
            <dl class="counters">
                <dt>{ "bad copies found" }</dt><dd>{ leg.errors_detected }</dd>
                <dt>{ "repaired" }</dt><dd>{ leg.errors_repaired }</dd>
                <dt>{ "I/O errors" }</dt><dd>{ leg.io_errors }</dd>
                <dt>{ "blocks resilvered" }</dt><dd>{ leg.blocks_resilvered }</dd>
                <dt>{ "replaced" }</dt><dd class="replacements">{ format!("{}×", leg.replacements) }</dd>
            </dl>
            <button type="button" class="replace" disabled={busy}
                aria-label={format!("Replace leg {i}: wipe it and resilver it from the others")}
                onclick={on_action.reform(move |_| MirrorAction::Replace(i))}>
                { format!("Replace leg {i}") }
            </button>
        </li>
    }
}

/// A select of the backends, for the secondary or one leg.
fn backend_select(id: String, value: Backend, onchange: Callback<Backend>) -> Html {
    let onchange = Callback::from(move |e: Event| {
        if let Some(backend) =
            Backend::parse(&e.target_unchecked_into::<HtmlSelectElement>().value())
        {
            onchange.emit(backend);
        }
    });
    html! {
        <select {id} {onchange}>
            { for Backend::ALL.into_iter().map(|b| html! {
                <option value={b.as_str()} selected={b == value}>{ b.title() }</option>
            }) }
        </select>
    }
}

#[component]
pub fn MirrorView(props: &MirrorViewProps) -> Html {
    // The form keeps what was last asked for, so that a closed mirror reopens with the same legs
    // (a leg is known by its position: an existing mirror must be opened with the same list).
    let name = use_state(|| "demo-mirror".to_string());
    let secondary = use_state(|| Backend::Memory);
    let legs = use_state(|| vec![Backend::Memory; 2]);
    let blocks = use_state(|| "256".to_string());
    let error = use_state(|| None::<String>);

    let on_open = {
        let (name, secondary, legs, blocks, error, on_action) = (
            name.clone(),
            secondary.clone(),
            legs.clone(),
            blocks.clone(),
            error.clone(),
            props.on_action.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            match blocks.trim().parse::<u64>() {
                Ok(n) if (1..=1 << 20).contains(&n) && !name.trim().is_empty() => {
                    error.set(None);
                    on_action.emit(MirrorAction::Open {
                        name: name.trim().to_string(),
                        backend: *secondary,
                        legs: (*legs).clone(),
                        blocks: n,
                    });
                }
                _ => error.set(Some(
                    "Give the mirror a name and from 1 to 1048576 blocks.".into(),
                )),
            }
        })
    };
    let on_name = {
        let name = name.clone();
        Callback::from(move |e: InputEvent| {
            name.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let on_blocks = {
        let blocks = blocks.clone();
        Callback::from(move |e: InputEvent| {
            blocks.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let on_legs = {
        let legs = legs.clone();
        Callback::from(move |e: Event| {
            if let Ok(n) = e
                .target_unchecked_into::<HtmlSelectElement>()
                .value()
                .parse::<usize>()
            {
                // Legs already chosen keep their backend; new ones start in memory.
                let mut next = (*legs).clone();
                next.resize(n, Backend::Memory);
                legs.set(next);
            }
        })
    };
    let on_secondary = {
        let secondary = secondary.clone();
        Callback::from(move |backend| secondary.set(backend))
    };
    let leg_rows = legs.iter().enumerate().map(|(i, &backend)| {
        let legs = legs.clone();
        let onchange = Callback::from(move |chosen| {
            let mut next = (*legs).clone();
            if let Some(leg) = next.get_mut(i) {
                *leg = chosen;
            }
            legs.set(next);
        });
        let id = format!("mirror-leg-{i}");
        html! {
            <>
                <label for={id.clone()}>{ format!("Leg {i} on") }</label>
                { backend_select(id, backend, onchange) }
            </>
        }
    });
    let busy = props.busy;
    let act = |action: MirrorAction| props.on_action.reform(move |_| action.clone());

    let open_form = html! {
        <form class="grid-form" id="mirror-form" onsubmit={on_open}>
            <label for="mirror-name">{ "Mirror name" }</label>
            <input id="mirror-name" value={(*name).clone()} oninput={on_name} />
            <label for="mirror-backend">{ "Secondary on" }</label>
            { backend_select("mirror-backend".into(), *secondary, on_secondary) }
            <label for="mirror-legs">{ "Primary legs" }</label>
            <select id="mirror-legs" onchange={on_legs}>
                { for [2usize, 3].into_iter().map(|n| html! {
                    <option value={n.to_string()} selected={legs.len() == n}>{ n }</option>
                }) }
            </select>
            { for leg_rows }
            <label for="mirror-blocks">{ "Blocks (4 KiB)" }</label>
            <input id="mirror-blocks" type="number" min="1" value={(*blocks).clone()} oninput={on_blocks} />
            <p class="hint" id="mirror-form-hint">{ "A mirror in memory is gone once it closes. On OPFS or IndexedDB it \
                outlives a close and reopens from this form with the same name, legs (a leg is known by its position) \
                and blocks." }</p>
            if let Some(message) = &*error {
                <p class="error" role="alert">{ message }</p>
            }
            <div class="buttons">
                <button type="submit" id="mirror-open" disabled={busy}>{ "Open mirror" }</button>
            </div>
        </form>
    };

    let body = props.mirror.as_ref().map(|m| {
        let status = &m.status;
        let health = if status.degraded {
            format!(
                "Degraded: {} of {} legs in service. Replace the leg that is out.",
                status.healthy_legs,
                status.legs.len()
            )
        } else {
            format!(
                "Healthy: all {} legs in service; every block has {} copies on the primary and one in the secondary.",
                status.legs.len(),
                status.legs.len()
            )
        };
        html! {
            // One element for the open mirror's whole state, for a screenshot of it (docs/screenshots).
            <div id="mirror-state">
                <p id="mirror-health" class={classes!("health", status.degraded.then_some("degraded"))}
                    role="status">{ health }</p>
                <figure class="mirror-diagram" id="mirror-diagram"
                    aria-label={format!("Mirror {}: {} primary legs above the secondary", m.client.name, status.legs.len())}>
                    <div class="mirror-primary">
                        <h3>{ "Primary: the live volume, each block on every leg" }</h3>
                        <ul class="legs" id="mirror-legs-list">
                            { for status.legs.iter().map(|leg| leg_card(leg, busy, &props.on_action)) }
                        </ul>
                    </div>
                    <p class="mirror-link" aria-hidden="true">{ "⇅ a sync writes the secondary, then every leg in service" }</p>
                    <div class="mirror-secondary" id="mirror-secondary">
                        <h3>{ "Secondary: baseline + log (snapshots, history)" }</h3>
                        <ol class="chips">
                            { for m.volumes.iter().rev().map(|v| {
                                let class = if v.kind == VolumeKind::Baseline { "baseline".to_string() } else { volume_class(v.id.0) };
                                html! {
                                    <li class="chip" data-volume={v.id.to_string()}>
                                        <span class={classes!("swatch", class)} aria-hidden="true"></span>
                                        { format!("{} {} ({} entries)", v.kind, v.id, v.entry_count) }
                                    </li>
                                }
                            }) }
                        </ol>
                        <p>{ format!("head {}; {} blocks waiting for the next sync; {} head reads served by the secondary; {} unrecoverable",
                            status.head, status.pending_blocks, status.blocks_served_by_secondary, status.unrecoverable_reads) }</p>
                    </div>
                </figure>
                <div class="buttons">
                    <button type="button" id="mirror-write" disabled={busy}
                        onclick={act(MirrorAction::WriteAndSync { blocks: WRITE_BLOCKS })}>
                        { format!("Write {WRITE_BLOCKS} random blocks and sync") }
                    </button>
                    <button type="button" id="mirror-snapshot" disabled={busy}
                        onclick={act(MirrorAction::Snapshot)}>{ "Snapshot" }</button>
                    <button type="button" id="mirror-scrub" disabled={busy}
                        onclick={act(MirrorAction::Scrub)}>{ "Scrub every copy" }</button>
                    <button type="button" id="mirror-close" disabled={busy}
                        onclick={act(MirrorAction::Close)}>{ "Close mirror" }</button>
                </div>
                if let Some(scrub) = &m.scrub {
                    <div id="mirror-scrub-report">
                        <h3>{ "Last scrub" }</h3>
                        <p>{ format!("{} blocks and {} copies checked: {} bad, {} repaired, {} unrecoverable, {} damaged in the secondary.",
                            scrub.blocks_checked, scrub.copies_checked, scrub.detected, scrub.repaired,
                            scrub.unrecoverable.len(), scrub.secondary_damaged.len()) }</p>
                        <ul>
                            { for scrub.legs.iter().map(|l| html! {
                                <li>{ format!("leg {}: {} checked, {} bad, {} repaired{}", l.leg, l.checked, l.detected, l.repaired,
                                    l.io_error.as_ref().map(|e| format!(", I/O error: {e}")).unwrap_or_default()) }</li>
                            }) }
                        </ul>
                    </div>
                }
                if let Some(r) = &m.resilver {
                    <div id="mirror-resilver-report">
                        <h3>{ format!("Last replacement: leg {}", r.leg) }</h3>
                        <p>{ format!("{} blocks checked, {} written to the new leg, {} damaged copies found, {} unrecoverable.",
                            r.blocks_checked, r.blocks_written, r.damaged_found, r.unrecoverable.len()) }</p>
                    </div>
                }
                <div id="mirror-events">
                    <h3>{ "Faults found" }</h3>
                    if m.events.is_empty() {
                        <p>{ "None so far: every copy read, synced and scrubbed was good." }</p>
                    } else {
                        <ul>
                            { for m.events.iter().map(|e| html! {
                                <li>{ format!("leg {}: {} fault{} found by {}, {}", e.leg, e.kind,
                                    e.addr.map(|a| format!(" at block {a}")).unwrap_or_default(), e.found_by,
                                    if e.repaired { "repaired" } else { "not repaired" }) }</li>
                            }) }
                        </ul>
                    }
                </div>
            </div>
        }
    });

    html! {
        <section class="panel wide" aria-labelledby="mirror-title" id="mirror-panel">
            <h2 id="mirror-title">{ "Mirror: redundant primary legs beside a secondary" }</h2>
            <p>{ "A mirror keeps the live volume on several legs (the primary), each block on every leg with its checksum, \
                  and a secondary store beside them with the baseline, snapshots and log. Reads are verified and a bad copy \
                  is rewritten from a good one; a scrub checks every copy; a leg that fails is taken out of service and \
                  replaced by resilvering it from the others." }</p>
            if props.mirror.is_none() { { open_form } }
            { for body }
        </section>
    }
}
