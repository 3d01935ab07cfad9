//! The page header: the product name and the version of the engine compiled into this build.

use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct HeaderProps {
    /// Shown verbatim in `#engine-version`, which the end-to-end test reads.
    pub engine_version: AttrValue,
}

#[component]
pub fn Header(props: &HeaderProps) -> Html {
    html! {
        <header class="site-header">
            <h1>{ "Strata" }</h1>
            <p class="engine">
                { "engine " }
                <span id="engine-version">{ props.engine_version.clone() }</span>
            </p>
        </header>
    }
}
