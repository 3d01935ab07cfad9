//! The message line and the progress of a long operation, with its Cancel button.

use yew::prelude::*;

use crate::format::format_bytes;
use crate::state::{Busy, Notice};

#[derive(Properties, PartialEq)]
pub struct NoticeBarProps {
    pub notice: Option<Notice>,
    pub busy: Option<Busy>,
    pub on_dismiss: Callback<()>,
}

#[component]
pub fn NoticeBar(props: &NoticeBarProps) -> Html {
    let busy = props.busy.as_ref().map(|busy| {
        let cancel = busy.canceller.clone().map(|canceller| {
            html! {
                <button type="button" id="cancel-op" onclick={Callback::from(move |_| canceller.cancel())}>
                    { "Cancel" }
                </button>
            }
        });
        let (value, max) = if busy.total_bytes > 0.0 {
            (busy.done_bytes, busy.total_bytes)
        } else {
            (0.0, 1.0)
        };
        html! {
            <div class="busy" id="busy" role="status">
                <span>{ &busy.label }</span>
                <progress id="progress" value={value.to_string()} max={max.to_string()}></progress>
                if busy.total_bytes > 0.0 {
                    <span>{ format!("{} of {}", format_bytes(busy.done_bytes as u64), format_bytes(busy.total_bytes as u64)) }</span>
                }
                { for cancel }
            </div>
        }
    });
    let notice = props.notice.as_ref().map(|notice| {
        let (class, text) = match notice {
            Notice::Info(text) => ("notice info", text.clone()),
            Notice::Error(error) => ("notice error", error.to_string()),
        };
        let code = match notice {
            Notice::Error(error) => Some(error.code.clone()),
            Notice::Info(_) => None,
        };
        html! {
            <div class={class} id="notice" role={if code.is_some() { "alert" } else { "status" }}
                data-code={code}>
                <span id="notice-text">{ text }</span>
                <button type="button" class="link" aria-label="Dismiss message"
                    onclick={props.on_dismiss.reform(|_| ())}>{ "×" }</button>
            </div>
        }
    });
    html! { <div class="notices">{ for busy }{ for notice }</div> }
}
