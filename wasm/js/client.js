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
 * The most bytes one `read`, `readAt` or `exportImage` (without `onChunk`) returns: 64 MiB, as
 * the engine's own limit. Larger ranges: `readStream`, or `exportImage` with `onChunk`.
 */
export const READ_BYTES_MAX = 64 * 1024 * 1024;
/** The most log entries one round trip of `log()` asks for (its `batch` option). */
export const LOG_BATCH_MAX = 4096;
/** The most writes in one `writeBatch`. */
export const BATCH_WRITES_MAX = 65536;

function invalid(name, message) {
  return new StrataError('INVALID_ARGUMENT', `${name} ${message}`);
}

/** How a value looks in an error message. */
function shown(value) {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || value === undefined || typeof value !== 'object') return String(value);
  return value.constructor?.name ?? 'an object';
}

/**
 * `value` as a whole number from `min` to `max` (at most 2^53 - 1): a number that is an integer,
 * or a BigInt in range (block addresses and volume identifiers never need more). Anything else
 * (a string, null, NaN, a fraction, a negative or larger number) is INVALID_ARGUMENT naming the
 * argument, never coerced.
 */
function integer(name, value, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}) {
  if (typeof value === 'bigint') {
    if (value < BigInt(min) || value > BigInt(max)) {
      throw invalid(name, `must be a whole number from ${min} to ${max}, not ${shown(value)}`);
    }
    return Number(value);
  }
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(name, `must be a whole number from ${min} to ${max}, not ${shown(value)}`);
  }
  return value;
}

/** A string. */
function string(name, value) {
  if (typeof value !== 'string') throw invalid(name, `must be a string, not ${shown(value)}`);
  return value;
}

/** An optional string (`undefined` or `null`: absent). */
function optionalString(name, value) {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalid(name, `must be a string, not ${shown(value)}`);
  return value;
}

/** An optional function (`undefined` or `null`: absent). */
function optionalFunction(name, value) {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'function') throw invalid(name, `must be a function, not ${shown(value)}`);
  return value;
}

/** An optional AbortSignal. */
function optionalSignal(name, value) {
  if (value === undefined || value === null) return undefined;
  if (typeof AbortSignal === 'undefined' || !(value instanceof AbortSignal)) {
    throw invalid(name, `must be an AbortSignal, not ${shown(value)}`);
  }
  return value;
}

/** An options object (`undefined` or `null`: none). */
function options(name, value) {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(name, `must be an object, not ${shown(value)}`);
  }
  return value;
}

/** A non-empty Uint8Array whose buffer is usable (not detached). */
function bytes(name, value) {
  if (!(value instanceof Uint8Array)) {
    throw invalid(name, `must be a Uint8Array, not ${shown(value)}`);
  }
  if (value.buffer.detached === true || value.byteLength === 0) {
    throw invalid(name, value.buffer.detached === true ? 'is detached (its buffer was transferred)' : 'is empty');
  }
  return value;
}

/**
 * The buffer to transfer for `data`, copying only when a transfer would take more than `data`
 * (a view into a larger buffer) or is impossible (a SharedArrayBuffer) or unwanted.
 */
function transferable(data, transfer, name = 'data') {
  bytes(name, data);
  const whole =
    data.buffer instanceof ArrayBuffer &&
    data.byteOffset === 0 &&
    data.byteLength === data.buffer.byteLength;
  const owned = transfer && whole ? data : data.slice();
  return { data: owned, buffers: [owned.buffer] };
}

/** While requests are in flight, the worker is asked this often whether it is alive. */
const PING_EVERY_MS = 2000;
/** A worker that has not answered for this long is dead (terminated, or killed by the browser). */
const DEAD_AFTER_MS = 10_000;

/** One worker and the requests in flight to it. */
class Connection {
  #worker;
  #nextId = 1;
  #pending = new Map();
  #failure = null;
  /** The liveness timer (only while requests are in flight), and when the worker last spoke. */
  #pinger = null;
  #heardAt = 0;

  constructor(worker) {
    this.#worker = worker;
    worker.onmessage = (event) => this.#receive(event.data);
    worker.onerror = (event) => {
      event.preventDefault?.();
      this.#die(`the Strata worker failed: ${event.message ?? 'could not load'}`);
    };
    worker.onmessageerror = () => {
      this.#die('a message from the Strata worker could not be read');
    };
  }

  /**
   * The worker died (it failed to load, or the engine in it stopped): every request in flight
   * and every later one fails with WORKER_ERROR, and the worker is terminated, which releases
   * the store's locks, so the app can open the store again without a reload.
   */
  #die(message) {
    if (this.failed) return;
    this.#fail(new StrataError('WORKER_ERROR', `${message}; open the store again`));
    this.#worker.terminate();
  }

  /** Receives the worker's own events (`id` 0: the policy timer's). */
  onWorkerEvent = null;

  #receive(message) {
    this.#heardAt = Date.now();
    if (message.pong) return;
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
    } else if (message.fatal) {
      // The engine in the worker stopped (the worker says so, then closes itself).
      request.reject(new StrataError('WORKER_ERROR', `${message.error.message}; open the store again`));
      this.#die(message.error.message);
    } else {
      const { code, message: text } = message.error;
      request.reject(new StrataError(code, text));
    }
  }

  #fail(error) {
    this.#failure = error;
    for (const request of this.#pending.values()) request.reject(error);
    this.#pending.clear();
    this.#stopPinging();
  }

  /**
   * A terminated worker (or one the browser killed) sends no event: while requests are in flight
   * it is pinged (the worker answers at once, between the steps of a long request), and one that
   * stays silent for DEAD_AFTER_MS is dead.
   */
  #startPinging() {
    if (this.#pinger !== null) return;
    this.#heardAt = Date.now();
    this.#pinger = setInterval(() => {
      if (this.#pending.size === 0) {
        this.#stopPinging();
      } else if (Date.now() - this.#heardAt > DEAD_AFTER_MS) {
        this.#die(`the Strata worker stopped answering for ${DEAD_AFTER_MS / 1000} s`);
      } else {
        this.#worker.postMessage({ op: 'ping' });
      }
    }, PING_EVERY_MS);
  }

  #stopPinging() {
    clearInterval(this.#pinger);
    this.#pinger = null;
  }

  /** Sends request `op`; resolves with its result. `onEvent` receives events on the way. */
  call(op, args = {}, { buffers = [], onEvent, signal } = {}) {
    if (this.#failure) return Promise.reject(this.#failure);
    // Aborted already: the request is never sent.
    if (signal?.aborted) return Promise.reject(new StrataError('CANCELLED', `${op} was cancelled before it started`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, onEvent });
      try {
        this.#worker.postMessage({ id, op, args }, buffers);
      } catch (error) {
        // An argument the structured clone cannot take (a function, a symbol, a detached buffer).
        this.#pending.delete(id);
        reject(new StrataError('INVALID_ARGUMENT', `${op}: an argument cannot be sent to the worker: ${error?.message ?? error}`));
        return;
      }
      this.#startPinging();
      if (signal) {
        const cancel = () => this.#worker.postMessage({ op: 'cancel', target: id });
        signal.addEventListener('abort', cancel, { once: true });
      }
    });
  }

  /** True once the worker has died (its requests fail with WORKER_ERROR). */
  get failed() {
    return this.#failure !== null && this.#failure.code === 'WORKER_ERROR';
  }

  fail(error) {
    this.#fail(error);
  }

  terminate() {
    this.#stopPinging();
    this.#worker.terminate();
  }
}

function startWorker() {
  // Kept literally so that Vite (and, by their docs, webpack 5 and Parcel) find and ship the
  // worker; esbuild needs it as an entry point (README.md: "With a bundler or without").
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

  // Every method is async: whatever the arguments, it returns a Promise, and a bad argument is
  // a rejection with code INVALID_ARGUMENT naming it, never a synchronous throw.

  async write(addr, data) {
    const at = integer('addr', addr);
    const { data: owned, buffers } = transferable(data, this[TRANSFER]);
    return this[CALL]('write', { addr: at, data: owned }, { buffers });
  }

  async writeBatch(writes) {
    if (!Array.isArray(writes)) throw invalid('writes', `must be an array of [addr, Uint8Array] pairs, not ${shown(writes)}`);
    if (writes.length === 0) throw invalid('writes', 'must hold at least one write');
    if (writes.length > BATCH_WRITES_MAX) throw invalid('writes', `holds ${writes.length} writes; at most ${BATCH_WRITES_MAX}`);
    // Checked whole before anything is copied or transferred.
    writes.forEach((pair, i) => {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw invalid(`writes[${i}]`, `must be an [addr, Uint8Array] pair, not ${shown(pair)}`);
      }
      integer(`writes[${i}][0]`, pair[0]);
      bytes(`writes[${i}][1]`, pair[1]);
    });
    // A buffer is transferred once, however many writes take their data from it.
    const buffers = new Set();
    const owned = writes.map(([addr, data], i) => {
      const t = transferable(data, this[TRANSFER], `writes[${i}][1]`);
      for (const buffer of t.buffers) buffers.add(buffer);
      return [integer(`writes[${i}][0]`, addr), t.data];
    });
    return this[CALL]('writeBatch', { writes: owned }, { buffers: [...buffers] });
  }

  async writeZeroes(addr, blocks) {
    return this[CALL]('writeZeroes', {
      addr: integer('addr', addr),
      blocks: integer('blocks', blocks, { min: 1 }),
    });
  }

  async sync() {
    return this[CALL]('sync');
  }

  async snapshot(label) {
    return this[CALL]('snapshot', { label: optionalString('label', label) });
  }

  async read(addr, blocks) {
    return this[CALL]('read', { addr: integer('addr', addr), blocks: integer('blocks', blocks, { min: 1 }) });
  }

  async readAt(volume, addr, blocks) {
    return this[CALL]('readAt', {
      volume: integer('volume', volume),
      addr: integer('addr', addr),
      blocks: integer('blocks', blocks, { min: 1 }),
    });
  }

  /**
   * `blocks` blocks from `addr` as a ReadableStream of Uint8Arrays (about 1 MiB each): a range
   * of any size in bounded memory. `volume`: a volume identifier, or the live head if absent.
   */
  async readStream(addr, blocks, streamOptions) {
    const { volume } = options('options', streamOptions);
    const from = integer('addr', addr);
    const count = integer('blocks', blocks, { min: 1 });
    const id = volume === undefined || volume === null ? null : integer('volume', volume);
    const { blockSize } = await this[CALL]('info');
    const step = Math.max(1, Math.floor(CHUNK_BYTES / blockSize));
    let at = 0;
    return new ReadableStream({
      pull: async (controller) => {
        if (at >= count) {
          controller.close();
          return;
        }
        const n = Math.min(step, count - at);
        const chunk = await (id === null ? this.read(from + at, n) : this.readAt(id, from + at, n));
        at += n;
        controller.enqueue(chunk);
      },
    }, { highWaterMark: 2 });
  }

  async volumes() {
    return this[CALL]('volumes');
  }

  async info() {
    return this[CALL]('info');
  }

  async space() {
    return this[CALL]('space');
  }

  async stats() {
    return this[CALL]('stats');
  }

  async *log(logOptions) {
    const { from = 'beginning', withData = false, batch = 64 } = options('options', logOptions);
    const max = integer('options.batch', batch, { min: 1, max: LOG_BATCH_MAX });
    if (typeof withData !== 'boolean') throw invalid('options.withData', `must be a boolean, not ${shown(withData)}`);
    const start = logStart(from);
    const cursor = await this[CALL]('cursorOpen', { start });
    try {
      for (;;) {
        const entries = await this[CALL]('cursorNext', { cursor, max, withData });
        yield* entries;
        // The worker may return fewer than asked (a batch of data is bounded): only an empty
        // batch is the end.
        if (entries.length === 0) return;
      }
    } finally {
      if (!this.#closed) await this[CALL]('cursorClose', { cursor }).catch(() => {});
    }
  }

  async compact(volume, progressOptions) {
    const { onProgress, signal } = progress(progressOptions);
    return this[CALL]('compact', { volume: integer('volume', volume) }, { onEvent: progressEvents(onProgress), signal });
  }

  async merge(volume, progressOptions) {
    const { onProgress, signal } = progress(progressOptions);
    return this[CALL]('merge', { volume: integer('volume', volume) }, { onEvent: progressEvents(onProgress), signal });
  }

  async delete(volume) {
    return this[CALL]('deleteVolume', { volume: integer('volume', volume) });
  }

  async rollback(volume, label) {
    return this[CALL]('rollback', { volume: integer('volume', volume), label: optionalString('label', label) });
  }

  async diff(a, b) {
    return this[CALL]('diff', { a: integer('a', a), b: integer('b', b) });
  }

  /**
   * Closes the store (its final sync) and ends the worker. Closing again does nothing; after the
   * worker died (WORKER_ERROR) there is nothing left to close, and this resolves.
   */
  async close() {
    if (this.#closed) return;
    try {
      if (!this.#connection.failed) await this.#connection.call('close');
    } catch (error) {
      // The worker died on the way: nothing is left open (its locks went with it).
      if (error?.code !== 'WORKER_ERROR') throw error;
    } finally {
      this.#closed = true;
      this.#connection.fail(this.#closedError());
      this.#connection.terminate();
    }
  }

  // Storage management: a store and a mirror both carry policies out (the engine's Managed).

  async setPolicy(policy) {
    return this[CALL]('setPolicy', { policy: policy === null || policy === undefined ? null : json('policy', policy) });
  }

  async policy() {
    return this[CALL]('policy');
  }

  async setAssignments(assignments) {
    return this[CALL]('setAssignments', { assignments: json('assignments', assignments) });
  }

  async assignments() {
    return this[CALL]('assignments');
  }

  async event(name, handlers) {
    if (typeof name !== 'string') throw invalid('name', `must be a string, not ${shown(name)}`);
    const onCopy = optionalFunction('handlers.onCopy', options('handlers', handlers).onCopy);
    return this[CALL]('event', { name }, { onEvent: copyEvents(onCopy) });
  }

  async runPolicies(handlers) {
    const onCopy = optionalFunction('handlers.onCopy', options('handlers', handlers).onCopy);
    return this[CALL]('runPolicies', {}, { onEvent: copyEvents(onCopy) });
  }

  async dryRun(event) {
    return this[CALL]('dryRun', { event: optionalString('event', event) });
  }

  async audit() {
    return this[CALL]('audit');
  }

  async simulatePolicies(durationMs, stepMs) {
    return this[CALL]('simulatePolicies', {
      durationMs: integer('durationMs', durationMs),
      stepMs: integer('stepMs', stepMs, { min: 1 }),
    });
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

  async locate(volume, addr, blocks) {
    return this[CALL]('locate', {
      volume: integer('volume', volume),
      addr: integer('addr', addr),
      blocks: integer('blocks', blocks, { min: 1 }),
    });
  }

  async branches() {
    return this[CALL]('branches');
  }

  async cloneBranch(from, name) {
    return this[CALL]('cloneBranch', { from: integer('from', from), name: string('name', name) });
  }

  async checkout(name) {
    return this[CALL]('checkout', { name: string('name', name) });
  }

  async deleteBranch(name) {
    return this[CALL]('deleteBranch', { name: string('name', name) });
  }

  async blockMap(volume, buckets) {
    return this[CALL]('blockMap', { volume: integer('volume', volume), buckets: integer('buckets', buckets, { min: 1 }) });
  }

  async send(sendOptions, handlers) {
    const o = options('options', sendOptions);
    const onChunk = optionalFunction('handlers.onChunk', options('handlers', handlers).onChunk);
    if (!onChunk) return this[CALL]('send', { options: o });
    const onEvent = (m) => m.event === 'chunk' && onChunk(m.chunk);
    return this[CALL]('send', { options: o, stream: true }, { onEvent });
  }

  /**
   * Applies a copy stream: a Uint8Array, an array or (async) iterable of chunks, a
   * ReadableStream or a Blob. The chunks go to the worker one at a time as they are read (at
   * most RECEIVE_IN_FLIGHT of them on their way), so a stream of any size needs bounded memory.
   */
  async receive(stream, handlers) {
    const onProgress = optionalFunction('handlers.onProgress', options('handlers', handlers).onProgress);
    if (Array.isArray(stream) && stream.length === 0) stream = new Uint8Array(0);
    checkSource('stream', stream);
    // Chunks of the caller's own Uint8Array or ArrayBuffer are copied (transferring would
    // detach all of it); chunks read from a stream or an iterable are the client's to transfer.
    const whole = stream instanceof Uint8Array || stream instanceof ArrayBuffer;
    const source = checkedChunks(stream);
    await this[CALL]('receiveBegin');
    const inFlight = [];
    try {
      for await (const chunk of source) {
        const { data, buffers } = transferable(chunk, this[TRANSFER] && !whole, 'a chunk of the stream');
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

  /**
   * Volume `volume` as a raw image: to `onChunk`, chunk by chunk (any size), or, without it,
   * as one Uint8Array (at most READ_BYTES_MAX bytes: LIMIT_EXCEEDED beyond).
   */
  async exportImage(volume, exportOptions) {
    const id = integer('volume', volume);
    const { onChunk, onProgress, signal } = progress(exportOptions);
    if (!onChunk) {
      const { blockSize, blockCount } = await this[CALL]('info');
      if (blockSize * blockCount > READ_BYTES_MAX) {
        throw new StrataError(
          'LIMIT_EXCEEDED',
          `the image is ${blockSize * blockCount} bytes; without onChunk an export returns at most ${READ_BYTES_MAX} bytes (64 MiB): pass onChunk to take it in pieces`,
        );
      }
    }
    const chunks = [];
    const onEvent = (m) => {
      if (m.event === 'chunk') {
        if (onChunk) onChunk(m.chunk);
        else chunks.push(m.chunk);
      } else if (m.event === 'progress') {
        onProgress?.(m.done, m.total);
      }
    };
    await this[CALL]('exportImage', { volume: id }, { onEvent, signal });
    return onChunk ? undefined : concat(chunks);
  }
}

/** `value` as JSON text: a string as it is, anything else serialised (INVALID_ARGUMENT if it cannot be). */
function json(name, value) {
  if (typeof value === 'string') return value;
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') {
    throw invalid(name, `must be an object or JSON text, not ${shown(value)}`);
  }
  try {
    return JSON.stringify(value);
  } catch (error) {
    throw invalid(name, `cannot be written as JSON: ${error?.message ?? error}`);
  }
}

/** Refuses what `chunksOf` cannot read, before anything is sent. */
function checkSource(name, source) {
  if ((source instanceof Uint8Array && source.buffer.detached === true) || (source instanceof ArrayBuffer && source.detached === true)) {
    throw invalid(name, 'is detached (its buffer was transferred)');
  }
  const ok =
    source instanceof Uint8Array ||
    source instanceof ArrayBuffer ||
    (typeof Blob !== 'undefined' && source instanceof Blob) ||
    (source !== null && typeof source === 'object' &&
      (typeof source.getReader === 'function' || Symbol.asyncIterator in source || Symbol.iterator in source));
  if (!ok) {
    throw invalid(name, `must be a Uint8Array, an ArrayBuffer, a Blob, a ReadableStream or an iterable of Uint8Arrays, not ${shown(source)}`);
  }
}

/**
 * The chunks of `source` as `chunksOf` reads them, checked: each a Uint8Array that is not
 * detached (empty ones are skipped). A failure of the source itself (a stream that errors, an
 * iterator that throws) becomes a StrataError with code IO.
 */
async function* checkedChunks(source) {
  try {
    for await (const chunk of chunksOf(source)) {
      if (!(chunk instanceof Uint8Array)) throw invalid('a chunk of the source', `must be a Uint8Array, not ${shown(chunk)}`);
      if (chunk.buffer.detached === true) throw invalid('a chunk of the source', 'is detached (its buffer was transferred)');
      if (chunk.byteLength > 0) yield chunk;
    }
  } catch (error) {
    if (error instanceof StrataError) throw error;
    throw new StrataError('IO', `reading the source failed: ${error?.message ?? error}`);
  }
}

/**
 * Option values of open, openMirror and the imports, made ready to send: a BigInt whole number
 * becomes a number (numbers themselves are checked by the engine), and a store name the
 * backends cannot all hold (empty, `.` or `..`, or with `/`, `\` or NUL) is INVALID_NAME.
 */
function sendableOptions(o) {
  const out = { ...o };
  for (const key of ['blocks', 'blockSize', 'expectedBytes', 'policyTickMs']) {
    if (typeof out[key] === 'bigint') out[key] = integer(`options.${key}`, out[key]);
  }
  if (typeof out.name === 'string' && (out.name === '' || out.name === '.' || out.name === '..' || /[/\\\0]/.test(out.name))) {
    throw new StrataError('INVALID_NAME', `options.name ${JSON.stringify(out.name)} is not a store name: it must not be empty, '.' or '..', nor hold '/', '\\' or NUL`);
  }
  if (out.transfer !== undefined && typeof out.transfer !== 'boolean') {
    throw invalid('options.transfer', `must be a boolean, not ${shown(out.transfer)}`);
  }
  return out;
}

/** `{ onProgress, signal }` of compact, merge and exportImage, checked. */
function progress(value) {
  const o = options('options', value);
  return {
    onProgress: optionalFunction('options.onProgress', o.onProgress),
    signal: optionalSignal('options.signal', o.signal),
    onChunk: optionalFunction('options.onChunk', o.onChunk),
  };
}

/** Where `log()` starts: 'beginning', `{ seq }` or `{ volume }`. */
function logStart(from) {
  if (from === 'beginning') return from;
  if (from !== null && typeof from === 'object' && !Array.isArray(from)) {
    if ('seq' in from && !('volume' in from)) return { seq: integer('options.from.seq', from.seq) };
    if ('volume' in from && !('seq' in from)) return { volume: integer('options.from.volume', from.volume) };
  }
  throw invalid('options.from', `must be 'beginning', { seq } or { volume }, not ${shown(from)}`);
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
export async function open(openOptions) {
  const { transfer = true, onPolicyRun, onPolicyCopy, onPolicyError, ...rest } = sendableOptions(options('options', openOptions));
  optionalFunction('options.onPolicyRun', onPolicyRun);
  optionalFunction('options.onPolicyCopy', onPolicyCopy);
  optionalFunction('options.onPolicyError', onPolicyError);
  if (typeof transfer !== 'boolean') throw invalid('options.transfer', `must be a boolean, not ${shown(transfer)}`);
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
export async function destroy(destroyOptions) {
  const { name, backend = 'auto' } = options('options', destroyOptions);
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

  async status() {
    return this[CALL]('status');
  }

  async scrub() {
    return this[CALL]('scrub');
  }

  async replace(leg) {
    return this[CALL]('replace', { leg: integer('leg', leg, { max: this.legs.length - 1 }) });
  }

  async rebuild() {
    return this[CALL]('rebuild');
  }

  async events() {
    return this[CALL]('events');
  }
}

/**
 * Opens (or creates, with `blocks`) a mirror in a new module worker: the secondary store on
 * `backend`, leg `i` of the primary on `legs[i]`. Fails with code `LOCKED` if the mirror or any
 * of its legs is open elsewhere.
 */
export async function openMirror(openOptions) {
  const { transfer = true, ...rest } = sendableOptions(options('options', openOptions));
  if (typeof transfer !== 'boolean') throw invalid('options.transfer', `must be a boolean, not ${shown(transfer)}`);
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
export async function destroyMirror(destroyOptions) {
  const { name, backend = 'auto', legs } = options('options', destroyOptions);
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
export async function importImage(importOptions, source, handlers) {
  const onProgress = optionalFunction('handlers.onProgress', options('handlers', handlers).onProgress);
  return importInto(importOptions, source, onProgress, undefined);
}

/**
 * Creates the store `options.name` as a copy of another store, from a full copy stream (what
 * `send()` without `base` produces), pushed to the worker chunk by chunk as it is read. The
 * store must not exist. Later incremental streams of the same source go to `receive`.
 */
export async function importStream(importOptions, source, handlers) {
  const onProgress = optionalFunction('handlers.onProgress', options('handlers', handlers).onProgress);
  return importInto(importOptions, source, onProgress, 'stream');
}

async function importInto(importOptions, source, onProgress, format) {
  const { transfer = true, ...rest } = sendableOptions(options('options', importOptions));
  checkSource('source', source);
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
      for await (const chunk of checkedChunks(source)) {
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
