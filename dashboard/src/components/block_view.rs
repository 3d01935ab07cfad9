//! One block opened at one volume: where it comes from, its bytes in hex and as text.

use yew::prelude::*;

use crate::format::{block_text, format_time, hex_line};
use crate::state::BlockDetail;

/// Hex lines shown at most (the text view always has the whole block).
const HEX_BYTES_MAX: usize = 4096;

#[derive(Properties, PartialEq)]
pub struct BlockViewProps {
    pub detail: BlockDetail,
    pub on_close: Callback<()>,
}

#[component]
pub fn BlockView(props: &BlockViewProps) -> Html {
    let d = &props.detail;
    let provenance = match &d.provenance {
        Some(p) if p.origin == "partition" => format!(
            "Served by the partition of volume {}{}{}{}",
            p.volume.map(|v| v.to_string()).unwrap_or_default(),
            if p.deleted {
                " (deleted, kept for descendants)"
            } else {
                ""
            },
            p.record_seq
                .map(|s| format!(", record sequence {s}"))
                .unwrap_or_default(),
            p.sealed_ms
                .map(|ms| format!(", sealed {}", format_time(ms)))
                .unwrap_or_else(|| " (the live head)".into()),
        ),
        Some(p) if p.origin == "baseline" => "Served by the baseline image".into(),
        Some(_) => "Never written: the baseline reads as zeros".into(),
        None => String::new(),
    };
    let shown = &d.data[..d.data.len().min(HEX_BYTES_MAX)];
    let hex: String = shown
        .chunks(16)
        .enumerate()
        .map(|(i, line)| hex_line(i * 16, line) + "\n")
        .collect();
    let text = block_text(&d.data);
    html! {
        <section class="panel wide" id="block-view" aria-labelledby="block-view-title">
            <h2 id="block-view-title">{ format!("Block {} at volume {}", d.addr, d.volume) }</h2>
            <p id="block-provenance">{ provenance }</p>
            <h3>{ "Text" }</h3>
            <pre class="block-text" id="block-text">{ if text.is_empty() { "(empty)".to_string() } else { text } }</pre>
            <h3>{ "Hex" }</h3>
            <pre class="hex" id="block-hex" tabindex="0">{ hex }</pre>
            if d.data.len() > HEX_BYTES_MAX {
                <p>{ format!("First {HEX_BYTES_MAX} of {} bytes shown.", d.data.len()) }</p>
            }
            <button type="button" onclick={props.on_close.reform(|_| ())}>{ "Close block" }</button>
        </section>
    }
}
