//! The open store and the browser storage behind it: backend, block size and count, bytes used,
//! this origin's quota and whether its storage is persisted.

use yew::prelude::*;

use crate::client::StoreInfo;
use crate::format::format_bytes;
use crate::state::StorageUsage;

#[derive(Properties, PartialEq)]
pub struct StoragePanelProps {
    pub estimate: StorageUsage,
    pub persisted: Option<bool>,
    pub info: Option<StoreInfo>,
    /// Asks the browser to persist this origin's storage.
    pub on_persist: Callback<()>,
}

#[component]
pub fn StoragePanel(props: &StoragePanelProps) -> Html {
    let usage = match &props.estimate {
        StorageUsage::Measuring => html! { <p>{ "Measuring…" }</p> },
        StorageUsage::Measured {
            usage_bytes,
            quota_bytes,
        } => html! {
            <p id="storage-usage">
                { format!("{} used of {}", format_bytes(*usage_bytes), format_bytes(*quota_bytes)) }
            </p>
        },
        StorageUsage::Unavailable { reason } => html! {
            <p class="unavailable">{ format!("Storage estimate unavailable: {reason}") }</p>
        },
    };
    let persisted = match props.persisted {
        None => "unknown",
        Some(true) => "yes",
        Some(false) => "no (the browser may evict it)",
    };
    let store = props.info.as_ref().map(|info| {
        html! {
            <dl class="facts" id="store-info">
                <dt>{ "Store" }</dt><dd id="info-name">{ &info.name }</dd>
                <dt>{ "Backend" }</dt><dd id="info-backend">{ &info.backend }</dd>
                <dt>{ "Block size" }</dt><dd id="info-block-size">{ info.block_size }</dd>
                <dt>{ "Blocks" }</dt><dd id="info-blocks">{ info.block_count }</dd>
                <dt>{ "Baseline" }</dt><dd>{ info.baseline.as_str() }</dd>
                <dt>{ "Log bytes" }</dt><dd id="info-log-bytes">{ format_bytes(info.log_bytes) }</dd>
                <dt>{ "Blocks written in the log" }</dt><dd>{ info.mapped_blocks }</dd>
                <dt>{ "Head volume" }</dt><dd id="info-head">{ info.head.0 }</dd>
                <dt>{ "Next sequence" }</dt><dd>{ info.next_seq }</dd>
            </dl>
        }
    });
    html! {
        <section class="panel" aria-labelledby="storage-title">
            <h2 id="storage-title">{ "Storage" }</h2>
            { for store }
            { usage }
            <p>
                { "Persisted: " }<span id="persisted">{ persisted }</span>
                if props.persisted != Some(true) {
                    { " " }
                    <button type="button" onclick={props.on_persist.reform(|_| ())}>{ "Ask to persist" }</button>
                }
            </p>
        </section>
    }
}
