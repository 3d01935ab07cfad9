//! The Strata dashboard: a Yew single-page app, built to wasm by `scripts/build-web.sh` and loaded
//! by `www/index.html`.

mod app;
mod components;
mod hooks;
mod state;

fn main() {
    yew::Renderer::<app::App>::new().render();
}
