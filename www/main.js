// Loads the dashboard built by scripts/build-web.sh. The Yew app renders into <body> from its
// `main`, which wasm-bindgen runs as the module's start function once init() has instantiated it.
import init from './pkg/strata_dashboard.js';

await init();
