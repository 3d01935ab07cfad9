//! Choosing a store: the backend, a name and its geometry; the stores opened before (open or
//! delete them); creating a store from a raw image.

use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::client::Backend;
use crate::state::KnownStore;

/// `(name, backend, Some((block size, blocks)))` to create if missing.
pub type OpenRequest = (String, Backend, Option<(u64, u64)>);

#[derive(Properties, PartialEq)]
pub struct StorePickerProps {
    pub known: Vec<KnownStore>,
    /// The store open now, if any.
    pub open: Option<(String, Backend)>,
    pub busy: bool,
    pub on_open: Callback<OpenRequest>,
    pub on_close: Callback<()>,
    pub on_delete: Callback<(String, Backend)>,
    /// `(name, backend, block size, image file)`.
    pub on_import: Callback<(String, Backend, u64, web_sys::File)>,
    /// `(name, backend, copy stream file)`: a new store as a copy of another.
    pub on_import_stream: Callback<(String, Backend, web_sys::File)>,
}

fn input_value(event: &Event) -> String {
    event.target_unchecked_into::<HtmlInputElement>().value()
}

#[component]
pub fn StorePicker(props: &StorePickerProps) -> Html {
    let backend = use_state(|| Backend::Memory);
    let name = use_state(|| "demo".to_string());
    let block_size = use_state(|| "4096".to_string());
    let blocks = use_state(|| "1024".to_string());
    let file_input = use_node_ref();
    let stream_input = use_node_ref();

    let on_backend = {
        let backend = backend.clone();
        Callback::from(move |e: Event| {
            let value = e.target_unchecked_into::<HtmlSelectElement>().value();
            if let Some(b) = Backend::parse(&value) {
                backend.set(b);
            }
        })
    };
    let text_setter = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |e: Event| state.set(input_value(&e)))
    };
    let geometry = (block_size.parse::<u64>().ok(), blocks.parse::<u64>().ok());
    let on_submit = {
        let (on_open, name, backend) = (props.on_open.clone(), name.clone(), *backend);
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let geometry = match geometry {
                (Some(size), Some(count)) => Some((size, count)),
                _ => None,
            };
            on_open.emit(((*name).clone(), backend, geometry));
        })
    };
    let on_import = {
        let (on_import, name, backend, file_input) = (
            props.on_import.clone(),
            name.clone(),
            *backend,
            file_input.clone(),
        );
        let block_size = geometry.0.unwrap_or(4096);
        Callback::from(move |_| {
            let file = file_input
                .cast::<HtmlInputElement>()
                .and_then(|input| input.files())
                .and_then(|files| files.get(0));
            if let Some(file) = file {
                on_import.emit(((*name).clone(), backend, block_size, file));
            }
        })
    };
    let on_import_stream = {
        let (on_import_stream, name, backend, stream_input) = (
            props.on_import_stream.clone(),
            name.clone(),
            *backend,
            stream_input.clone(),
        );
        Callback::from(move |_| {
            let file = stream_input
                .cast::<HtmlInputElement>()
                .and_then(|input| input.files())
                .and_then(|files| files.get(0));
            if let Some(file) = file {
                on_import_stream.emit(((*name).clone(), backend, file));
            }
        })
    };

    let known = props.known.iter().map(|k| {
        let is_open = props.open.as_ref() == Some(&(k.name.clone(), k.backend));
        let open = {
            let (on_open, k) = (props.on_open.clone(), k.clone());
            Callback::from(move |_| on_open.emit((k.name.clone(), k.backend, None)))
        };
        let delete = {
            let (on_delete, k) = (props.on_delete.clone(), k.clone());
            Callback::from(move |_| on_delete.emit((k.name.clone(), k.backend)))
        };
        html! {
            <li class={classes!("known-store", is_open.then_some("open"))}>
                <span class="store-name">{ &k.name }</span>
                <span class="tag">{ k.backend.as_str() }</span>
                if is_open { <span class="tag head">{ "open" }</span> }
                <button type="button" onclick={open} disabled={props.busy || is_open}
                    aria-label={format!("Open store {} ({})", k.name, k.backend.as_str())}>{ "Open" }</button>
                <button type="button" class="danger" onclick={delete} disabled={props.busy}
                    aria-label={format!("Delete store {} ({})", k.name, k.backend.as_str())}>{ "Delete" }</button>
            </li>
        }
    });

    html! {
        <section class="panel" id="store-picker" aria-labelledby="store-picker-title">
            <h2 id="store-picker-title">{ "Store" }</h2>
            <form class="grid-form" onsubmit={on_submit}>
                <label for="backend">{ "Backend" }</label>
                <select id="backend" onchange={on_backend}>
                    { for Backend::ALL.iter().map(|b| html! {
                        <option value={b.as_str()} selected={*b == *backend}>{ b.title() }</option>
                    }) }
                </select>
                <label for="store-name">{ "Name" }</label>
                <input id="store-name" value={(*name).clone()} onchange={text_setter(&name)} required=true />
                <label for="block-size">{ "Block size (bytes)" }</label>
                <input id="block-size" type="number" min="512" max="65536" step="512"
                    value={(*block_size).clone()} onchange={text_setter(&block_size)} />
                <label for="block-count">{ "Blocks" }</label>
                <input id="block-count" type="number" min="1"
                    value={(*blocks).clone()} onchange={text_setter(&blocks)} />
                <div class="buttons">
                    <button type="submit" id="open-store" disabled={props.busy}>{ "Open or create" }</button>
                    if props.open.is_some() {
                        <button type="button" id="close-store" disabled={props.busy}
                            onclick={props.on_close.reform(|_| ())}>{ "Close" }</button>
                    }
                </div>
            </form>
            <div class="grid-form">
                <label for="import-file">{ "Raw image as baseline" }</label>
                <input id="import-file" type="file" ref={file_input} />
                <div class="buttons">
                    <button type="button" id="import-image" onclick={on_import} disabled={props.busy}>
                        { "Create store from image" }
                    </button>
                </div>
                <label for="import-stream-file">{ "Copy stream (from Send)" }</label>
                <input id="import-stream-file" type="file" ref={stream_input} />
                <div class="buttons">
                    <button type="button" id="import-stream" onclick={on_import_stream} disabled={props.busy}>
                        { "Create store as a copy" }
                    </button>
                </div>
            </div>
            if !props.known.is_empty() {
                <h3>{ "Stores opened in this browser" }</h3>
                <ul class="known-stores" id="known-stores">{ for known }</ul>
            }
        </section>
    }
}
