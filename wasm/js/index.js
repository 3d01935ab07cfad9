// strata-engine: incremental block storage in the browser. The page-side API is client.js; the
// raw bindings, for use inside your own worker, are in strata_wasm.js ('strata-engine/wasm').
export { StrataClient, StrataError, destroy, importImage, importStream, open } from './client.js';
