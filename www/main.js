// Loads the dashboard built by scripts/build-web.sh. The dashboard drives the engine through the
// npm package's Promise client (www/pkg/strata/, copied from wasm/pkg by build-web.sh), which runs
// each store in its own module worker, exactly as an embedding page would. The client is handed
// to the Yew app as the global `strataBridge` (read by dashboard/src/client.rs): the store
// functions, and `openMirror` for the mirror view. The app renders into <body> from its `main`,
// which wasm-bindgen runs once init() has instantiated it.
import {
  destroy, importImage, importStream, open, openMirror, StrataError,
} from './pkg/strata/client.js';
import init from './pkg/strata_dashboard.js';

globalThis.strataBridge = Object.freeze({
  open, destroy, importImage, importStream, openMirror, StrataError,
});

await init();
