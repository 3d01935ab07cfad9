// The module worker that hosts one Strata store (or one mirror: `openMirror`) for client.js.
//
// The engine runs here, in a dedicated worker, because OPFS sync access handles exist nowhere
// else and because storage I/O must not block a page. client.js starts this file with
//   new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })
// and talks to it by messages:
//
//   page -> worker  { id, op, args }                  one request; ops are the keys of `handlers`
//   page -> worker  { op: 'cancel', target }          cancel request `target` at its next progress point
//   page -> worker  { op: 'ping' }                    answered at once with { pong: true } (liveness)
//   worker -> page  { id, ok: true, result }          the request's result
//   worker -> page  { id, ok: false, error }          error = { name, code, message }
//   worker -> page  { id, event, ... }                during a request: 'chunk', 'progress', 'copy'
//
// Requests run one at a time, in the order they arrive. Every Uint8Array in a result or an event
// owns its buffer (the bindings copy out of wasm memory once), and the buffer is transferred, not
// copied, to the page.

import init, { StrataStore } from './strata_wasm.js';

/**
 * The main module's initialisation (fetching and compiling strata_wasm_bg.wasm), started by the
 * first request that needs it: a worker that only hosts a mirror (strata_mirror.js), or a store
 * opened with the policy executor from the start (strata_policies.js), never downloads the main
 * one.
 */
let mainReady = null;
function mainModule() {
  mainReady ??= init();
  return mainReady;
}

/** Requests that need the mirror's module and not the main one. */
const MIRROR_OPS = new Set(['openMirror', 'destroyMirror']);
/** Requests that use the main module's StrataStore class whatever the worker hosts. */
const STORE_CLASS_OPS = new Set(['destroy', 'importBegin']);

/**
 * Whether request `op` (with `args`) needs the main module initialised: an open that asks for
 * policies (`policies: true`, or a policy timer) and requests on a store or mirror of another
 * module (cursors included) do not.
 */
function needsMainModule(op, args) {
  if (op === 'open') return !wantsPolicies(args ?? {});
  if (STORE_CLASS_OPS.has(op)) return true;
  if (MIRROR_OPS.has(op)) return false;
  return store === null || store instanceof StrataStore;
}

/** Whether open options ask for the policy executor from the start. */
function wantsPolicies(args) {
  return args.policies === true || (args.policyTickMs !== undefined && args.policyTickMs !== null);
}

/**
 * The store this worker hosts (one per worker), or null: a StrataStore, or a StrataMirror
 * (`openMirror`), which answers the same write/read/sync/snapshot/volumes/info/space/stats,
 * cursor, compact/merge/deleteVolume/rollback/diff, policy and close requests, plus status,
 * scrub, replace, rebuild and events (and not the copy-stream, export, locate and blockMap ones:
 * those fail with code UNSUPPORTED, see `openStore`).
 */
let store = null;
/** A store being created from an image (`importBegin` .. `importFinish`), or null. */
let pendingImport = null;
/** Open log cursors by id. */
const cursors = new Map();
let nextCursorId = 1;
/** Requests whose cancellation was asked for. */
const cancelled = new Set();
/** The policy timer (open option `policyTickMs`), or null. */
let policyTimer = null;
/** True between receiveBegin and receiveFinish/receiveAbort: the receiver owns the store. */
let receiving = false;

/** The options the hosted store was opened with (to open it again in the policies module). */
let openOptions = null;

/**
 * A loader of class `name` from a module of the package other than the main one (`load` imports
 * it, a literal `import()` that bundlers follow): fetched and initialised on first use, so that
 * pages that never need it never download it, and the same promise after that. Fails with code
 * UNSUPPORTED (`missing`, then why) if the module cannot be loaded, and tries again next time.
 */
function lazyClass(load, name, missing) {
  let loading = null;
  return () => {
    loading ??= load()
      .then(async (module) => {
        await module.default();
        return module[name];
      })
      .catch((error) => {
        loading = null;
        throw codeError('UNSUPPORTED', `${missing}: ${error?.message ?? error}`);
      });
    return loading;
  };
}

/**
 * The StrataStore of `strata_policies.js`: the store with the policy executor, which the main
 * module is built without (cargo feature `policies`).
 */
const policiesStoreClass = lazyClass(
  () => import('./strata_policies.js'),
  'StrataStore',
  'this build of strata-engine has no policy executor',
);

/** The StrataMirror of `strata_mirror.js` (the main module is built without `mirror`). */
const mirrorClass = lazyClass(
  () => import('./strata_mirror.js'),
  'StrataMirror',
  'this build of strata-engine has no mirror',
);

/**
 * The hosted store, able to run `method` (a policy method): a store the main module hosts has
 * no policy executor, so it is closed there and opened again in the policies module first (a
 * memory store hands its objects over). Open cursors end with the move. A store or mirror that
 * has the method is returned as it is.
 */
async function policyStore(method) {
  const current = openStore();
  if (typeof current[method] === 'function' || !(current instanceof StrataStore)) {
    return openStore(method);
  }
  if (receiving) throw codeError('INVALID_STATE', 'a copy stream is being received into this store');
  const Policies = await policiesStoreClass();
  const { name, backend } = describeStore(current);
  for (const cursor of cursors.values()) cursor.free();
  cursors.clear();
  store = null;
  try {
    await current.close();
  } finally {
    current.free();
  }
  // The backend the store is on (never 'auto'), also for a store an import made.
  const options = { ...openOptions, name, backend };
  // A memory store's objects live in the module that holds it: they move with it.
  const handOver = (from, to) => {
    if (backend !== 'memory') return;
    const objects = from.takeMemoryStore(name);
    if (objects !== null) to.putMemoryStore(name, objects);
  };
  handOver(StrataStore, Policies);
  try {
    store = await Policies.open(options);
  } catch (error) {
    // The caller gets the error; the store goes back to the main module if it can, open as it
    // was (the blocks of a memory store with it).
    handOver(Policies, StrataStore);
    store = await StrataStore.open(options).catch(() => null);
    throw error;
  }
  openOptions = options;
  return store;
}

function codeError(code, message) {
  const error = new Error(message);
  error.name = 'StrataError';
  error.code = code;
  return error;
}

/**
 * The hosted store or mirror; with `method`, checked to have it: a mirror has no copy
 * streams, export, locate or blockMap, a store no status, scrub, replace, rebuild or events
 * (code UNSUPPORTED rather than a TypeError).
 */
function openStore(method) {
  if (store === null) {
    throw codeError('CLOSED', 'no store is open in this worker');
  }
  if (method !== undefined && typeof store[method] !== 'function') {
    const what = store instanceof StrataStore ? 'a store' : 'a mirror';
    throw codeError('UNSUPPORTED', `${what} has no ${method}`);
  }
  return store;
}

/** The buffers of the Uint8Arrays in `value` (an array, an object or a Uint8Array). */
function buffersOf(value, out = []) {
  if (value instanceof Uint8Array) {
    if (value.buffer instanceof ArrayBuffer && !out.includes(value.buffer)) out.push(value.buffer);
  } else if (Array.isArray(value)) {
    for (const item of value) buffersOf(item, out);
  } else if (value !== null && typeof value === 'object') {
    for (const item of Object.values(value)) buffersOf(item, out);
  }
  return out;
}

function post(message) {
  self.postMessage(message, buffersOf(message));
}

/** `onProgress` for the bindings: reports to the page; false (cancel) once cancelled. */
function progressReporter(id) {
  return (done, total) => {
    self.postMessage({ id, event: 'progress', done, total });
    return !cancelled.has(id);
  };
}

function chunkSender(id) {
  return (chunk) => {
    self.postMessage({ id, event: 'chunk', chunk }, [chunk.buffer]);
    return !cancelled.has(id);
  };
}

function copySender(id) {
  return (target, chunk) => {
    self.postMessage({ id, event: 'copy', target, chunk }, [chunk.buffer]);
  };
}

async function storageEstimate() {
  const storage = self.navigator?.storage;
  if (!storage?.estimate) return null;
  const { usage, quota } = await storage.estimate();
  return { usage, quota };
}

function describeStore(s) {
  return { name: s.name, backend: s.backend, readOnly: s.readOnly };
}

const handlers = {
  async open(args) {
    if (store !== null || pendingImport !== null) {
      throw codeError('INVALID_STATE', 'this worker already hosts a store');
    }
    const { policyTickMs, policyCopies, policies, ...options } = args;
    const ticking = policyTickMs !== undefined && policyTickMs !== null;
    if (ticking && !(Number.isFinite(policyTickMs) && policyTickMs >= 10)) {
      throw codeError('INVALID_ARGUMENT', `policyTickMs must be a number of at least 10, not ${policyTickMs}`);
    }
    if (policies !== undefined && policies !== null && typeof policies !== 'boolean') {
      throw codeError('INVALID_ARGUMENT', `policies must be a boolean, not ${typeof policies}`);
    }
    if (wantsPolicies(args)) {
      store = await (await policiesStoreClass()).open(options);
    } else {
      try {
        store = await StrataStore.open(options);
      } catch (error) {
        // The store has a policy (or holds, or an audit trail): the policies module hosts it.
        if (error?.code !== 'POLICIES_UNAVAILABLE') throw error;
        store = await (await policiesStoreClass()).open(options);
      }
    }
    openOptions = options;
    if (ticking && !store.readOnly) startPolicyTimer(policyTickMs, policyCopies === true);
    return describeStore(store);
  },
  async destroy(args) {
    await StrataStore.destroy(args);
    return null;
  },
  async openMirror(args) {
    if (store !== null || pendingImport !== null) {
      throw codeError('INVALID_STATE', 'this worker already hosts a store');
    }
    const mirror = await (await mirrorClass()).open(args);
    try {
      const { legs } = await mirror.info();
      store = mirror;
      return { name: mirror.name, backend: mirror.backend, legs };
    } catch (error) {
      await mirror.close().catch(() => {});
      mirror.free();
      throw error;
    }
  },
  async destroyMirror(args) {
    await (await mirrorClass()).destroy(args);
    return null;
  },
  status: () => openStore('status').status(),
  scrub: () => openStore('scrub').scrub(),
  replace: ({ leg }) => openStore('replace').replace(leg),
  rebuild: () => openStore('rebuild').rebuild(),
  events: () => openStore('events').events(),
  write: ({ addr, data }) => openStore('write').write(addr, data),
  writeBatch: ({ writes }) => openStore('writeBatch').writeBatch(writes),
  writeZeroes: ({ addr, blocks }) => openStore('writeZeroes').writeZeroes(addr, blocks),
  sync: () => openStore('sync').sync(),
  snapshot: ({ label }) => openStore('snapshot').snapshot(label ?? undefined),
  read: ({ addr, blocks }) => openStore('read').read(addr, blocks),
  readAt: ({ volume, addr, blocks }) => openStore('readAt').readAt(volume, addr, blocks),
  volumes: () => openStore('volumes').volumes(),
  branches: () => openStore('branches').branches(),
  cloneBranch: ({ from, name }) => openStore('cloneBranch').cloneBranch(from, name),
  checkout: ({ name }) => openStore('checkout').checkout(name),
  deleteBranch: ({ name }) => openStore('deleteBranch').deleteBranch(name),
  info: () => openStore('info').info(),
  space: () => openStore('space').space(),
  async stats() {
    const s = openStore();
    return { info: await s.info(), space: await s.space(), estimate: await storageEstimate() };
  },
  async cursorOpen({ start }) {
    const cursor = await openStore('cursor').cursor(start ?? undefined);
    const id = nextCursorId++;
    cursors.set(id, cursor);
    return id;
  },
  cursorNext({ cursor, max, withData }) {
    const c = cursors.get(cursor);
    if (!c) throw codeError('INVALID_STATE', `no open cursor ${cursor}`);
    return openStore('nextEntries').nextEntries(c, max, withData);
  },
  cursorClose({ cursor }) {
    cursors.get(cursor)?.free();
    cursors.delete(cursor);
    return null;
  },
  compact: ({ volume }, id) => openStore('compact').compact(volume, progressReporter(id)),
  merge: ({ volume }, id) => openStore('merge').merge(volume, progressReporter(id)),
  deleteVolume: ({ volume }) => openStore('deleteVolume').deleteVolume(volume),
  rollback: ({ volume, label }) => openStore('rollback').rollback(volume, label ?? undefined),
  diff: ({ a, b }) => openStore('diff').diff(a, b),
  locate: ({ volume, addr, blocks }) => openStore('locate').locate(volume, addr, blocks),
  blockMap: ({ volume, buckets }) => openStore('blockMap').blockMap(volume, buckets),
  simulatePolicies: async ({ durationMs, stepMs }) =>
    (await policyStore('simulatePolicies')).simulatePolicies(durationMs, stepMs),
  send: ({ options, stream }, id) =>
    openStore('send').send(options ?? undefined, stream ? chunkSender(id) : undefined),
  receive: ({ chunks }) => openStore('receive').receive(chunks),
  async receiveBegin() {
    const result = await openStore('receiveBegin').receiveBegin();
    receiving = true;
    return result;
  },
  receivePush: ({ chunk }) => openStore('receivePush').receivePush(chunk),
  async receiveFinish() {
    try {
      return await openStore('receiveFinish').receiveFinish();
    } finally {
      receiving = false;
    }
  },
  async receiveAbort() {
    try {
      return await openStore('receiveAbort').receiveAbort();
    } finally {
      receiving = false;
    }
  },
  setPolicy: async ({ policy }) => (await policyStore('setPolicy')).setPolicy(policy ?? null),
  policy: async () => (await policyStore('policy')).policy(),
  setAssignments: async ({ assignments }) => (await policyStore('setAssignments')).setAssignments(assignments),
  assignments: async () => (await policyStore('assignments')).assignments(),
  event: async ({ name }, id) => (await policyStore('event')).event(name, copySender(id)),
  runPolicies: async (_args, id) => (await policyStore('runPolicies')).runPolicies(copySender(id)),
  dryRun: async ({ event }) => (await policyStore('dryRun')).dryRun(event ?? undefined),
  audit: async () => (await policyStore('audit')).audit(),
  async exportImage({ volume }, id) {
    await openStore('exportImage').exportImage(volume, chunkSender(id), progressReporter(id));
    return null;
  },
  async importBegin(args) {
    if (store !== null || pendingImport !== null) {
      throw codeError('INVALID_STATE', 'this worker already hosts a store');
    }
    // `format: 'stream'`: a copy stream from `send` (a StreamImport), else a raw image.
    const { format, ...options } = args;
    pendingImport =
      format === 'stream' ? await StrataStore.beginStreamImport(options) : await StrataStore.beginImport(options);
    return null;
  },
  importPush({ chunk }) {
    if (pendingImport === null) throw codeError('INVALID_STATE', 'no import in progress');
    return pendingImport.push(chunk);
  },
  async importFinish() {
    if (pendingImport === null) throw codeError('INVALID_STATE', 'no import in progress');
    const importing = pendingImport;
    pendingImport = null;
    try {
      store = await importing.finish();
    } finally {
      importing.free();
    }
    return describeStore(store);
  },
  async importAbort() {
    if (pendingImport !== null) {
      await pendingImport.abort();
      pendingImport.free();
      pendingImport = null;
    }
    return null;
  },
  async close() {
    clearInterval(policyTimer);
    policyTimer = null;
    receiving = false;
    openOptions = null;
    for (const cursor of cursors.values()) cursor.free();
    cursors.clear();
    if (store !== null) {
      const closing = store;
      store = null;
      try {
        await closing.close();
      } finally {
        closing.free();
      }
    }
    return null;
  },
};

function serializeError(error) {
  if (isFatal(error)) {
    return { name: 'StrataError', code: 'WORKER_ERROR', message: `the Strata engine stopped: ${error.message}` };
  }
  if (error instanceof Error) {
    // Strata's errors carry a string code. Without one: an argument the bindings refused (a
    // TypeError, a RangeError), else a failure of the platform (IO).
    const code =
      typeof error.code === 'string'
        ? error.code
        : error instanceof TypeError || error instanceof RangeError
          ? 'INVALID_ARGUMENT'
          : 'IO';
    return { name: error.name, code, message: error.message };
  }
  return { name: 'Error', code: 'IO', message: String(error) };
}

async function handle({ id, op, args }) {
  try {
    if (needsMainModule(op, args)) {
      try {
        await mainModule();
      } catch (error) {
        // The engine's module did not load (missing, damaged, blocked): this worker is of no use.
        self.postMessage({
          id,
          ok: false,
          fatal: true,
          error: { name: 'StrataError', code: 'WORKER_ERROR', message: `the Strata engine could not load: ${error?.message ?? error}` },
        });
        self.close();
        return;
      }
    }
    const handler = Object.hasOwn(handlers, op) ? handlers[op] : null;
    if (handler === null) throw codeError('INVALID_ARGUMENT', `unknown operation ${op}`);
    const result = await handler(args ?? {}, id);
    post({ id, ok: true, result: result === undefined ? null : result });
  } catch (error) {
    if (isFatal(error)) {
      // The engine stopped (a trap: it cannot be trusted to go on). Say so, then end this
      // worker: that releases the store's locks, and the page opens the store again.
      self.postMessage({ id, ok: false, fatal: true, error: serializeError(error) });
      self.close();
      return;
    }
    self.postMessage({ id, ok: false, error: serializeError(error) });
  } finally {
    cancelled.delete(id);
  }
}

/** A WebAssembly trap (a panic, memory exhausted): the module's state is lost. */
function isFatal(error) {
  return typeof WebAssembly !== 'undefined' && error instanceof WebAssembly.RuntimeError;
}

let queue = Promise.resolve();

/**
 * Every `tickMs`, evaluates the store's policies for a clock tick and carries out their
 * decisions, taking its turn in the request queue like a request. Posts the new audit entries
 * as `{ id: 0, event: 'policy', entries }` (when there are any), failures as
 * `{ id: 0, event: 'policyError', error }`, and policy copies, when the page handles them
 * (`copies`), as `{ id: 0, event: 'copy', target, chunk }`. Without a copy handler the engine
 * records copy decisions as failed. When `navigator.storage.estimate()` shows the origin's usage
 * above 90% of its quota, the tick also signals the built-in `quota_warning` event, once per
 * crossing (again only after usage has dropped back below).
 */
function startPolicyTimer(tickMs, copies) {
  let running = false;
  let quotaWarned = false;
  policyTimer = setInterval(() => {
    // A tick still waiting for its turn is enough; do not pile them up behind a long request.
    if (running) return;
    running = true;
    queue = queue.then(async () => {
      try {
        // A receive in progress owns the store: the tick waits for the next interval.
        if (store === null || receiving) return;
        const entries = await store.runPolicies(copies ? copySender(0) : undefined);
        // quota_warning: once each time the origin's usage crosses 90% of its quota, re-armed
        // when it drops back below.
        const estimate = await storageEstimate();
        const over = estimate !== null && estimate.quota > 0 && estimate.usage > 0.9 * estimate.quota;
        const warn = over && !quotaWarned;
        quotaWarned = over;
        if (warn) {
          entries.push(...(await store.event('quota_warning', copies ? copySender(0) : undefined)));
        }
        if (entries.length > 0) post({ id: 0, event: 'policy', entries });
      } catch (error) {
        self.postMessage({ id: 0, event: 'policyError', error: serializeError(error) });
      } finally {
        running = false;
      }
    });
  }, tickMs);
}

self.onmessage = (event) => {
  const message = event.data;
  if (message?.op === 'ping') {
    // Answered at once, not queued: the page's liveness check (a long request is running).
    self.postMessage({ pong: true });
    return;
  }
  if (message?.op === 'cancel') {
    // Handled at once, not queued: the request it cancels is running.
    cancelled.add(message.target);
    return;
  }
  queue = queue.then(() => handle(message));
};
