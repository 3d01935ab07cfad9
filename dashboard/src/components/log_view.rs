//! The log cursor: entries in sequence order, read a page at a time, filtered by volume and
//! block. Virtualised: only [`WINDOW_ROWS`] rows are ever in the DOM, whatever the number of
//! entries read; the wheel, the arrow and page keys and a slider move the window. (No scrolling
//! spacer: that would need inline style attributes, which the page's CSP refuses.)

use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::client::LogEntry;
use crate::format::format_time;

/// Rows shown at once.
pub const WINDOW_ROWS: usize = 14;

#[derive(Properties, PartialEq)]
pub struct LogViewProps {
    pub entries: Vec<LogEntry>,
    pub end: bool,
    pub on_more: Callback<()>,
    pub on_reload: Callback<()>,
}

/// The first row of the window after moving `by` rows from `first`, kept in range.
pub fn moved(first: usize, by: isize, rows: usize) -> usize {
    let last_first = rows.saturating_sub(WINDOW_ROWS);
    first.saturating_add_signed(by).min(last_first)
}

#[component]
pub fn LogView(props: &LogViewProps) -> Html {
    let first = use_state(|| 0usize);
    let volume = use_state(String::new);
    let block = use_state(String::new);

    let volume_filter: Option<u64> = volume.trim().parse().ok();
    let block_filter: Option<u64> = block.trim().parse().ok();
    let filtered: Vec<&LogEntry> = props
        .entries
        .iter()
        .filter(|e| volume_filter.is_none_or(|v| e.volume.0 == v))
        .filter(|e| block_filter.is_none_or(|b| e.addr <= b && b < e.addr + u64::from(e.blocks)))
        .collect();
    let rows = filtered.len();
    let start = moved(*first, 0, rows);
    let end = (start + WINDOW_ROWS).min(rows);

    let move_by = {
        let first = first.clone();
        move |by: isize| first.set(moved(start, by, rows))
    };
    let on_wheel = {
        let move_by = move_by.clone();
        Callback::from(move |e: WheelEvent| {
            e.prevent_default();
            move_by(if e.delta_y() > 0.0 { 3 } else { -3 });
        })
    };
    let on_key = {
        let move_by = move_by.clone();
        let first = first.clone();
        Callback::from(move |e: KeyboardEvent| {
            let page = WINDOW_ROWS as isize;
            match e.key().as_str() {
                "ArrowDown" => move_by(1),
                "ArrowUp" => move_by(-1),
                "PageDown" => move_by(page),
                "PageUp" => move_by(-page),
                "Home" => first.set(0),
                "End" => first.set(rows.saturating_sub(WINDOW_ROWS)),
                _ => return,
            }
            e.prevent_default();
        })
    };
    let on_slider = {
        let first = first.clone();
        Callback::from(move |e: InputEvent| {
            if let Ok(value) = e
                .target_unchecked_into::<HtmlInputElement>()
                .value()
                .parse::<usize>()
            {
                first.set(value);
            }
        })
    };
    let setter = |state: &UseStateHandle<String>| {
        let (state, first) = (state.clone(), first.clone());
        Callback::from(move |e: InputEvent| {
            state.set(e.target_unchecked_into::<HtmlInputElement>().value());
            first.set(0);
        })
    };
    let shown = filtered[start..end].iter().map(|e| {
        let blocks = if e.blocks == 1 {
            format!("block {}", e.addr)
        } else {
            format!("blocks {}–{}", e.addr, e.addr + u64::from(e.blocks) - 1)
        };
        html! {
            <tr class="log-row" data-seq={e.seq.to_string()}>
                <td class="seq">{ e.seq }</td>
                <td>{ format!("volume {}", e.volume) }</td>
                <td>{ blocks }</td>
                <td class="when">{ format_time(e.timestamp_ms) }</td>
            </tr>
        }
    });
    let status = format!(
        "{} of {} entries read match{}; showing {}–{}",
        rows,
        props.entries.len(),
        if props.end { " (end of the log)" } else { "" },
        if rows == 0 { 0 } else { start + 1 },
        end
    );
    html! {
        <section class="panel wide" aria-labelledby="log-title">
            <h2 id="log-title">{ "Log" }</h2>
            <div class="inline-form">
                <label for="log-volume">{ "Volume" }</label>
                <input id="log-volume" type="number" min="0" value={(*volume).clone()} oninput={setter(&volume)} placeholder="any" />
                <label for="log-block">{ "Block" }</label>
                <input id="log-block" type="number" min="0" value={(*block).clone()} oninput={setter(&block)} placeholder="any" />
                <button type="button" id="log-reload" onclick={props.on_reload.reform(|_| ())}>{ "From the start" }</button>
                <button type="button" id="log-more" onclick={props.on_more.reform(|_| ())} disabled={props.end}>{ "Read next page" }</button>
            </div>
            <p id="log-status" aria-live="polite">{ status }</p>
            <div class="log-window">
                <table id="log-table" tabindex="0" aria-label="Log entries (arrow and page keys move)"
                    onwheel={on_wheel} onkeydown={on_key}>
                    <thead><tr><th>{ "Seq" }</th><th>{ "Volume" }</th><th>{ "Blocks" }</th><th class="when">{ "Time (UTC)" }</th></tr></thead>
                    <tbody>{ for shown }</tbody>
                </table>
                <input type="range" id="log-position" class="log-position" aria-label="Position in the log"
                    min="0" max={rows.saturating_sub(WINDOW_ROWS).to_string()} value={start.to_string()}
                    oninput={on_slider} />
            </div>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::{moved, WINDOW_ROWS};

    #[test]
    fn the_window_stays_inside_the_rows() {
        assert_eq!(moved(0, -5, 100), 0);
        assert_eq!(moved(0, 3, 100), 3);
        assert_eq!(moved(90, 50, 100), 100 - WINDOW_ROWS);
        assert_eq!(moved(0, 10, 5), 0);
        assert_eq!(moved(50_000, 14, 100_000), 50_014);
    }
}
