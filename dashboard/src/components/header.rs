//! The page header: the product name, the version of the engine compiled into this build, and a
//! link to the other page served beside the dashboard, the SQLite demo (www/sqlite.html).

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
            <p class="demo-link">
                <a id="sqlite-link" href="./sqlite.html">{ "Notes on a time-travel SQLite" }</a>
                { ": a SQLite database kept in a Strata volume, with a slider through its snapshots." }
            </p>
        </header>
    }
}
