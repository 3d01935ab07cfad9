//! The root component: owns the one reducer and lays out the panels.

use yew::prelude::*;

use crate::components::header::Header;
use crate::components::storage_panel::StoragePanel;
use crate::hooks::use_storage_estimate::use_storage_estimate;
use crate::state::DashboardState;

#[component]
pub fn App() -> Html {
    let state = use_reducer(DashboardState::default);
    use_storage_estimate(state.dispatcher());

    html! {
        <>
            <Header engine_version={state.engine_version} />
            <main class="panels">
                <StoragePanel estimate={state.storage.clone()} />
            </main>
        </>
    }
}
