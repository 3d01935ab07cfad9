//! Writing blocks: text, hex, a repeated byte pattern, or a random burst of N writes.

use web_sys::{HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
use yew::prelude::*;

/// What to write, before it is cut into blocks (see `commands::writes_for`).
#[derive(Clone, Debug, PartialEq)]
pub enum WriteRequest {
    Text { addr: u64, text: String },
    Hex { addr: u64, hex: String },
    Pattern { addr: u64, byte: u8, blocks: u64 },
    RandomBurst { writes: u64 },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Text,
    Hex,
    Pattern,
    Random,
}

#[derive(Properties, PartialEq)]
pub struct WriteFormProps {
    pub busy: bool,
    pub on_write: Callback<WriteRequest>,
}

#[component]
pub fn WriteForm(props: &WriteFormProps) -> Html {
    let mode = use_state(|| Mode::Text);
    let addr = use_state(|| "0".to_string());
    let content = use_state(|| "Hello, Strata".to_string());
    let pattern = use_state(|| "ab".to_string());
    let count = use_state(|| "1".to_string());
    let error = use_state(|| None::<String>);

    let setter = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |e: Event| {
            state.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let on_mode = {
        let mode = mode.clone();
        Callback::from(move |e: Event| {
            mode.set(
                match e
                    .target_unchecked_into::<HtmlSelectElement>()
                    .value()
                    .as_str()
                {
                    "hex" => Mode::Hex,
                    "pattern" => Mode::Pattern,
                    "random" => Mode::Random,
                    _ => Mode::Text,
                },
            )
        })
    };
    let on_content = {
        let content = content.clone();
        Callback::from(move |e: InputEvent| {
            content.set(e.target_unchecked_into::<HtmlTextAreaElement>().value())
        })
    };
    let on_submit = {
        let (mode, addr, content, pattern, count, error, on_write) = (
            *mode,
            addr.clone(),
            content.clone(),
            pattern.clone(),
            count.clone(),
            error.clone(),
            props.on_write.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let number = |s: &str, what: &str| {
                s.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("{what} must be a whole number"))
            };
            let request = (|| -> Result<WriteRequest, String> {
                Ok(match mode {
                    Mode::Text => WriteRequest::Text {
                        addr: number(&addr, "The block address")?,
                        text: (*content).clone(),
                    },
                    Mode::Hex => WriteRequest::Hex {
                        addr: number(&addr, "The block address")?,
                        hex: (*content).clone(),
                    },
                    Mode::Pattern => WriteRequest::Pattern {
                        addr: number(&addr, "The block address")?,
                        byte: u8::from_str_radix(pattern.trim().trim_start_matches("0x"), 16)
                            .map_err(|_| "The pattern is one hex byte, e.g. ab".to_string())?,
                        blocks: number(&count, "The block count")?.max(1),
                    },
                    Mode::Random => WriteRequest::RandomBurst {
                        writes: number(&count, "The number of writes")?.max(1),
                    },
                })
            })();
            match request {
                Ok(request) => {
                    error.set(None);
                    on_write.emit(request);
                }
                Err(message) => error.set(Some(message)),
            }
        })
    };
    let needs_addr = *mode != Mode::Random;
    html! {
        <section class="panel" aria-labelledby="write-title">
            <h2 id="write-title">{ "Write" }</h2>
            <form class="grid-form" id="write-form" onsubmit={on_submit}>
                <label for="write-mode">{ "Data" }</label>
                <select id="write-mode" onchange={on_mode}>
                    <option value="text" selected={*mode == Mode::Text}>{ "Text" }</option>
                    <option value="hex" selected={*mode == Mode::Hex}>{ "Hex bytes" }</option>
                    <option value="pattern" selected={*mode == Mode::Pattern}>{ "Repeated byte" }</option>
                    <option value="random" selected={*mode == Mode::Random}>{ "Random burst" }</option>
                </select>
                if needs_addr {
                    <label for="write-addr">{ "First block" }</label>
                    <input id="write-addr" type="number" min="0" value={(*addr).clone()} onchange={setter(&addr)} />
                }
                if matches!(*mode, Mode::Text | Mode::Hex) {
                    <label for="write-content">{ if *mode == Mode::Text { "Text" } else { "Hex" } }</label>
                    <textarea id="write-content" rows="3" value={(*content).clone()} oninput={on_content} />
                }
                if *mode == Mode::Pattern {
                    <label for="write-pattern">{ "Byte (hex)" }</label>
                    <input id="write-pattern" value={(*pattern).clone()} onchange={setter(&pattern)} />
                }
                if matches!(*mode, Mode::Pattern | Mode::Random) {
                    <label for="write-count">{ if *mode == Mode::Pattern { "Blocks" } else { "Writes" } }</label>
                    <input id="write-count" type="number" min="1" value={(*count).clone()} onchange={setter(&count)} />
                }
                <div class="buttons">
                    <button type="submit" id="write-submit" disabled={props.busy}>{ "Write" }</button>
                </div>
                if let Some(message) = &*error {
                    <p class="error" role="alert">{ message }</p>
                }
            </form>
        </section>
    }
}
