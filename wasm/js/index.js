// strata-engine: incremental block storage in the browser. The page-side API is client.js; the
// raw bindings, for use inside your own worker, are in strata_wasm.js ('strata-engine/wasm').
export {
  BATCH_WRITES_MAX,
  LOG_BATCH_MAX,
  READ_BYTES_MAX,
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
