//! The view switcher: one tab per main view, keyboard-usable buttons.

use yew::prelude::*;

use crate::state::View;

#[derive(Properties, PartialEq)]
pub struct TabsProps {
    pub current: View,
    pub on_select: Callback<View>,
}

#[component]
pub fn Tabs(props: &TabsProps) -> Html {
    html! {
        <nav class="tabs" aria-label="Views">
            { for View::ALL.iter().map(|view| {
                let view = *view;
                let current = view == props.current;
                html! {
                    <button type="button" id={format!("tab-{}", view.id())}
                        class={classes!("tab", current.then_some("current"))}
                        aria-current={current.then_some("page")}
                        onclick={props.on_select.reform(move |_| view)}>
                        { view.title() }
                    </button>
                }
            }) }
        </nav>
    }
}
