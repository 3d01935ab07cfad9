// The Promise client for pages: every store runs in a module worker of its own (worker.js), and
// this file talks to it by messages. See README.md for the API and which backend to use.

/** An error from Strata: `code` is stable and machine-readable, `message` is for people. */
export class StrataError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'StrataError';
    this.code = code;
  }
}

/** Chunks of images and streams handed to the worker are at most this long. */
const CHUNK_BYTES = 1 << 20;
/** Copy-stream chunks sent to the worker and not yet applied, at most. */
const RECEIVE_IN_FLIGHT = 4;

/**
 * The buffer to transfer for `data`, copying only when a transfer would take more than `data`
 * (a view into a larger buffer) or is impossible (a SharedArrayBuffer) or unwanted.
 */
function transferable(data, transfer) {
  if (!(data instanceof Uint8Array)) {
    throw new StrataError('INVALID_ARGUMENT', 'data must be a Uint8Array');
  }
  const whole =
    data.buffer instanceof ArrayBuffer &&
    data.byteOffset === 0 &&
    data.byteLength === data.buffer.byteLength;
  const owned = transfer && whole ? data : data.slice();
  return { data: owned, buffers: [owned.buffer] };
}

/** One worker and the requests in flight to it. */
class Connection {
  #worker;
  #nextId = 1;
  #pending = new Map();
  #failure = null;

  constructor(worker) {
    this.#worker = worker;
    worker.onmessage = (event) => this.#receive(event.data);
    worker.onerror = (event) => {
      event.preventDefault?.();
      this.#fail(
        new StrataError('WORKER_ERROR', `the Strata worker failed: ${event.message ?? 'could not load'}`),
      );
    };
    worker.onmessageerror = () => {
      this.#fail(new StrataError('WORKER_ERROR', 'a message from the Strata worker could not be read'));
    };
  }

  /** Receives the worker's own events (`id` 0: the policy timer's). */
  onWorkerEvent = null;

  #receive(message) {
    if (message.id === 0) {
      this.onWorkerEvent?.(message);
      return;
    }
    const request = this.#pending.get(message.id);
    if (!request) return;
    if (message.event !== undefined) {
      request.onEvent?.(message);
      return;
    }
    this.#pending.delete(message.id);
    if (message.ok) {
      request.resolve(message.result);
    } else {
      const { code, message: text } = message.error;
      request.reject(new StrataError(code, text));
    }
  }

  #fail(error) {
    this.#failure = error;
    for (const request of this.#pending.values()) request.reject(error);
    this.#pending.clear();
  }

  /** Sends request `op`; resolves with its result. `onEvent` receives events on the way. */
  call(op, args = {}, { buffers = [], onEvent, signal } = {}) {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, onEvent });
      if (signal) {
        const cancel = () => this.#worker.postMessage({ op: 'cancel', target: id });
        if (signal.aborted) cancel();
        else signal.addEventListener('abort', cancel, { once: true });
      }
      this.#worker.postMessage({ id, op, args }, buffers);
    });
  }

  fail(error) {
    this.#fail(error);
  }

  terminate() {
    this.#worker.terminate();
  }
}

function startWorker() {
  // Kept literally so that bundlers (Vite, webpack, esbuild, Parcel) find and ship the worker.
  const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  return new Connection(worker);
}

function concat(chunks) {
  const total = chunks.reduce((n, c) => n + c.byteLength, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/** Module-private names of the clients' request method and `transfer` option (see `VolumeClient`). */
const CALL = Symbol('call');
const TRANSFER = Symbol('transfer');

/**
 * What a store and a mirror have in common on the page side: a worker connection and the
 * requests both answer (writes, reads, snapshots, volumes, the log, compaction, merge, delete,
 * rollback, diff, close). `StrataClient` and `StrataMirrorClient` add their own.
 */
class VolumeClient {
  #connection;
  #closed = false;
  /** 'store' or 'mirror', for messages. */
  #kind;
  /** The store's (a mirror's: its secondary's) name. */
  name;
  /** The backend chosen: 'memory', 'opfs' or 'indexeddb'. */
  backend;

  constructor(connection, opened, transfer, kind) {
    this.#connection = connection;
    this.#kind = kind;
    /** Whether data passed in is transferred to the worker (the `transfer` option). */
    this[TRANSFER] = transfer;
    this.name = opened.name;
    this.backend = opened.backend;
  }

  #closedError() {
    return new StrataError('CLOSED', `${this.#kind} ${JSON.stringify(this.name)} is closed`);
  }

  [CALL](op, args, extra) {
    if (this.#closed) return Promise.reject(this.#closedError());
    return this.#connection.call(op, args, extra);
  }

  write(addr, data) {
    const { data: owned, buffers } = transferable(data, this[TRANSFER]);
    return this[CALL]('write', { addr, data: owned }, { buffers });
  }

  writeBatch(writes) {
    const buffers = [];
    const owned = writes.map(([addr, data]) => {
      const t = transferable(data, this[TRANSFER]);
      buffers.push(...t.buffers);
      return [addr, t.data];
    });
    return this[CALL]('writeBatch', { writes: owned }, { buffers });
  }

  sync() {
    return this[CALL]('sync');
  }

  snapshot(label) {
    return this[CALL]('snapshot', { label });
  }

  read(addr, blocks) {
    return this[CALL]('read', { addr, blocks });
  }

  readAt(volume, addr, blocks) {
    return this[CALL]('readAt', { volume, addr, blocks });
  }

  volumes() {
    return this[CALL]('volumes');
  }

  info() {
    return this[CALL]('info');
  }

  space() {
    return this[CALL]('space');
  }

  stats() {
    return this[CALL]('stats');
  }

  async *log({ from = 'beginning', withData = false, batch = 64 } = {}) {
    const cursor = await this[CALL]('cursorOpen', { start: from });
    try {
      for (;;) {
        const entries = await this[CALL]('cursorNext', { cursor, max: batch, withData });
        yield* entries;
        if (entries.length < batch) return;
      }
    } finally {
      if (!this.#closed) await this[CALL]('cursorClose', { cursor }).catch(() => {});
    }
  }

  compact(volume, { onProgress, signal } = {}) {
    return this[CALL]('compact', { volume }, { onEvent: progressEvents(onProgress), signal });
  }

  merge(volume, { onProgress, signal } = {}) {
    return this[CALL]('merge', { volume }, { onEvent: progressEvents(onProgress), signal });
  }

  delete(volume) {
    return this[CALL]('deleteVolume', { volume });
  }

  rollback(volume, label) {
    return this[CALL]('rollback', { volume, label });
  }

  diff(a, b) {
    return this[CALL]('diff', { a, b });
  }

  async close() {
    if (this.#closed) return;
    try {
      await this.#connection.call('close');
    } finally {
      this.#closed = true;
      this.#connection.fail(this.#closedError());
      this.#connection.terminate();
    }
  }
}

/** A store open in its worker. Created by `open()` or `importImage()`. */
export class StrataClient extends VolumeClient {
  /** True if opened with `readOnly: true`. */
  readOnly;

  constructor(connection, opened, transfer) {
    super(connection, opened, transfer, 'store');
    this.readOnly = opened.readOnly;
  }

  locate(volume, addr, blocks) {
    return this[CALL]('locate', { volume, addr, blocks });
  }

  blockMap(volume, buckets) {
    return this[CALL]('blockMap', { volume, buckets });
  }

  simulatePolicies(durationMs, stepMs) {
    return this[CALL]('simulatePolicies', { durationMs, stepMs });
  }

  async send(options = {}, { onChunk } = {}) {
    if (!onChunk) return this[CALL]('send', { options });
    const onEvent = (m) => m.event === 'chunk' && onChunk(m.chunk);
    return this[CALL]('send', { options, stream: true }, { onEvent });
  }

  /**
   * Applies a copy stream: a Uint8Array, an array or (async) iterable of chunks, a
   * ReadableStream or a Blob. The chunks go to the worker one at a time as they are read (at
   * most RECEIVE_IN_FLIGHT of them on their way), so a stream of any size needs bounded memory.
   */
  async receive(stream, { onProgress } = {}) {
    if (Array.isArray(stream) && stream.length === 0) stream = new Uint8Array(0);
    // Chunks of the caller's own Uint8Array or ArrayBuffer are copied (transferring would
    // detach all of it); chunks read from a stream or an iterable are the client's to transfer.
    const whole = stream instanceof Uint8Array || stream instanceof ArrayBuffer;
    const source = chunksOf(stream);
    await this[CALL]('receiveBegin');
    const inFlight = [];
    try {
      for await (const chunk of source) {
        const { data, buffers } = transferable(chunk, this[TRANSFER] && !whole);
        const pushed = this[CALL]('receivePush', { chunk: data }, { buffers });
        pushed.catch(() => {}); // awaited below; a failure must not count as unhandled meanwhile
        inFlight.push(pushed);
        // Not `onProgress?.(await ...)`: without a callback that would skip the await.
        if (inFlight.length >= RECEIVE_IN_FLIGHT) {
          const applied = await inFlight.shift();
          onProgress?.(applied);
        }
      }
      while (inFlight.length > 0) {
        const applied = await inFlight.shift();
        onProgress?.(applied);
      }
      return await this[CALL]('receiveFinish');
    } catch (error) {
      // Settle the pushes already sent before abandoning the receive.
      await Promise.allSettled(inFlight);
      await this[CALL]('receiveAbort').catch(() => {});
      throw error;
    }
  }

  setPolicy(policy) {
    return this[CALL]('setPolicy', { policy: typeof policy === 'string' ? policy : JSON.stringify(policy) });
  }

  policy() {
    return this[CALL]('policy');
  }

  setAssignments(assignments) {
    const json = typeof assignments === 'string' ? assignments : JSON.stringify(assignments);
    return this[CALL]('setAssignments', { assignments: json });
  }

  assignments() {
    return this[CALL]('assignments');
  }

  event(name, { onCopy } = {}) {
    return this[CALL]('event', { name }, { onEvent: copyEvents(onCopy) });
  }

  runPolicies({ onCopy } = {}) {
    return this[CALL]('runPolicies', {}, { onEvent: copyEvents(onCopy) });
  }

  dryRun(event) {
    return this[CALL]('dryRun', { event });
  }

  audit() {
    return this[CALL]('audit');
  }

  async exportImage(volume, { onChunk, onProgress, signal } = {}) {
    const chunks = [];
    const onEvent = (m) => {
      if (m.event === 'chunk') {
        if (onChunk) onChunk(m.chunk);
        else chunks.push(m.chunk);
      } else if (m.event === 'progress') {
        onProgress?.(m.done, m.total);
      }
    };
    await this[CALL]('exportImage', { volume }, { onEvent, signal });
    return onChunk ? undefined : concat(chunks);
  }
}

function progressEvents(onProgress) {
  return onProgress ? (m) => m.event === 'progress' && onProgress(m.done, m.total) : undefined;
}

function copyEvents(onCopy) {
  return (m) => {
    if (m.event === 'copy') onCopy?.(m.target, m.chunk);
  };
}

/**
 * Opens (or creates) a store in a new module worker. Fails with code `LOCKED` if another tab or
 * worker has it open.
 */
export async function open(options) {
  const { transfer = true, onPolicyRun, onPolicyCopy, onPolicyError, ...rest } = options ?? {};
  const connection = startWorker();
  connection.onWorkerEvent = (m) => {
    if (m.event === 'policy') onPolicyRun?.(m.entries);
    else if (m.event === 'copy') onPolicyCopy?.(m.target, m.chunk);
    else if (m.event === 'policyError') onPolicyError?.(new StrataError(m.error.code, m.error.message));
  };
  if (onPolicyCopy) rest.policyCopies = true;
  try {
    const opened = await connection.call('open', rest);
    return new StrataClient(connection, opened, transfer);
  } catch (error) {
    connection.terminate();
    throw error;
  }
}

/** Deletes a store's data (it must not be open anywhere: code `LOCKED` otherwise). */
export async function destroy({ name, backend = 'auto' }) {
  const connection = startWorker();
  try {
    await connection.call('destroy', { name, backend });
  } finally {
    connection.terminate();
  }
}

/**
 * A mirror open in its worker (the redundant system: a secondary store beside a primary copy of
 * the live volume mirrored on several legs). Created by `openMirror()`.
 */
export class StrataMirrorClient extends VolumeClient {
  /** Each leg's backend, in leg order. */
  legs;

  constructor(connection, opened, transfer) {
    super(connection, opened, transfer, 'mirror');
    this.legs = opened.legs;
  }

  status() {
    return this[CALL]('status');
  }

  scrub() {
    return this[CALL]('scrub');
  }

  replace(leg) {
    return this[CALL]('replace', { leg });
  }

  rebuild() {
    return this[CALL]('rebuild');
  }

  events() {
    return this[CALL]('events');
  }
}

/**
 * Opens (or creates, with `blocks`) a mirror in a new module worker: the secondary store on
 * `backend`, leg `i` of the primary on `legs[i]`. Fails with code `LOCKED` if the mirror or any
 * of its legs is open elsewhere.
 */
export async function openMirror(options) {
  const { transfer = true, ...rest } = options ?? {};
  const connection = startWorker();
  try {
    const opened = await connection.call('openMirror', rest);
    return new StrataMirrorClient(connection, opened, transfer);
  } catch (error) {
    connection.terminate();
    throw error;
  }
}

/** Deletes a mirror's data: its secondary and every leg (none may be open: code `LOCKED`). */
export async function destroyMirror({ name, backend = 'auto', legs }) {
  const connection = startWorker();
  try {
    await connection.call('destroyMirror', { name, backend, legs });
  } finally {
    connection.terminate();
  }
}

/** Splits a Uint8Array, ArrayBuffer, Blob, ReadableStream or (async) iterable into chunks. */
async function* chunksOf(source) {
  if (source instanceof ArrayBuffer) source = new Uint8Array(source);
  if (source instanceof Uint8Array) {
    for (let at = 0; at < source.byteLength; at += CHUNK_BYTES) {
      yield source.subarray(at, at + CHUNK_BYTES);
    }
    return;
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    for (let at = 0; at < source.size; at += CHUNK_BYTES) {
      yield new Uint8Array(await source.slice(at, at + CHUNK_BYTES).arrayBuffer());
    }
    return;
  }
  if (source && typeof source.getReader === 'function') {
    const reader = source.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        yield value;
      }
    } finally {
      reader.releaseLock();
    }
  }
  if (source && (Symbol.asyncIterator in source || Symbol.iterator in source)) {
    yield* source;
    return;
  }
  throw new StrataError(
    'INVALID_ARGUMENT',
    'an image is a Uint8Array, an ArrayBuffer, a Blob, a ReadableStream or an iterable of Uint8Arrays',
  );
}

/**
 * Creates the store `options.name` from a raw image (its baseline) and opens it. The store must
 * not exist. `onProgress(doneBytes, totalBytes)` follows the upload (total may be undefined).
 */
export async function importImage(options, source, { onProgress } = {}) {
  return importInto(options, source, onProgress, undefined);
}

/**
 * Creates the store `options.name` as a copy of another store, from a full copy stream (what
 * `send()` without `base` produces), pushed to the worker chunk by chunk as it is read. The
 * store must not exist. Later incremental streams of the same source go to `receive`.
 */
export async function importStream(options, source, { onProgress } = {}) {
  return importInto(options, source, onProgress, 'stream');
}

async function importInto(options, source, onProgress, format) {
  const { transfer = true, ...rest } = options ?? {};
  if (format !== undefined) rest.format = format;
  const total =
    rest.expectedBytes ??
    (source instanceof Uint8Array || source instanceof ArrayBuffer
      ? source.byteLength
      : typeof Blob !== 'undefined' && source instanceof Blob
        ? source.size
        : undefined);
  const connection = startWorker();
  try {
    await connection.call('importBegin', rest);
    try {
      for await (const chunk of chunksOf(source)) {
        // A subarray of the caller's image is copied (transferring would detach all of it).
        const { data, buffers } = transferable(chunk, transfer && !(source instanceof Uint8Array || source instanceof ArrayBuffer));
        const done = await connection.call('importPush', { chunk: data }, { buffers });
        onProgress?.(done, total);
      }
      const opened = await connection.call('importFinish');
      return new StrataClient(connection, opened, transfer);
    } catch (error) {
      await connection.call('importAbort').catch(() => {});
      throw error;
    }
  } catch (error) {
    connection.terminate();
    throw error;
  }
}
