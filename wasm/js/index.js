// strata-engine: incremental block storage in the browser. The page-side API is client.js; the
// raw bindings, for use inside your own worker, are in strata_wasm.js ('strata-engine/wasm').
export {
  StrataClient,
  StrataError,
  StrataMirrorClient,
  destroy,
  destroyMirror,
  importImage,
  importStream,
  open,
  openMirror,
} from './client.js';
