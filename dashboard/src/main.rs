//! The Strata dashboard: a Yew single-page app, built to wasm by `scripts/build-web.sh` and loaded
//! by `www/index.html`. It drives the engine through the npm package's worker client (see
//! `client.rs`), so its own wasm holds only the user interface.

mod app;
mod client;
mod commands;
mod components;
mod format;
mod hooks;
mod scheme;
mod state;

fn main() {
    yew::Renderer::<app::App>::new().render();
}
