// Bad-input scenarios of the scratch app (boundary.html), called by tests/npm/boundary.test.mjs
// through `window.boundary`. Each table row is one call of the installed package's client with
// arguments a careless or hostile caller might pass; the page records, as plain data, whether the
// call returned a Promise (a synchronous throw is recorded as such), whether it settled within a
// bound, how (the value, or the error's class, code and message), and whether the store still
// reads exactly what it should afterwards. The test (node) asserts each row against its expected
// outcome: rows carry their expectation, since most arguments (BigInts, detached buffers,
// functions) cannot cross page.evaluate.
import * as strata from 'strata-engine';
import * as clientModule from 'strata-engine/client';

const { StrataError, destroy, destroyMirror, importImage, importStream, open, openMirror } = strata;

// ----- Instrumentation: the workers the client starts --------------------------------------
// The client keeps its worker private. To kill one the way a crash would, the page records every
// Worker constructed (the client resolves the global `Worker` when it starts one); nothing of the
// client is changed.
const workers = [];
const NativeWorker = window.Worker;
window.Worker = class TrackedWorker extends NativeWorker {
  constructor(...args) {
    super(...args);
    workers.push(this);
  }
};

// ----- Blocks and comparisons ----------------------------------------------------------------

const BLOCK = 4096;

/** The block of stamp `stamp` (0: zeros): incompressible bytes that differ for each stamp. */
function fill(stamp, size = BLOCK) {
  const out = new Uint8Array(size);
  if (stamp === 0) return out;
  let x = (Math.imul(stamp, 2654435761) ^ 0x9e3779b9) >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x;
    out[i + 1] = x >>> 8;
    out[i + 2] = x >>> 16;
    out[i + 3] = x >>> 24;
  }
  return out;
}

/** The image of `stamps` (one stamp a block) as bytes. */
function image(stamps, size = BLOCK) {
  const out = new Uint8Array(stamps.length * size);
  stamps.forEach((s, i) => s !== 0 && out.set(fill(s, size), i * size));
  return out;
}

/** The first block where `actual` differs from `expected`, or -1. */
function firstDifference(actual, expected, size = BLOCK) {
  if (!(actual instanceof Uint8Array)) return 'not a Uint8Array';
  if (actual.length !== expected.length) return `length ${actual.length}, expected ${expected.length}`;
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) return Math.floor(i / size);
  }
  return -1;
}

function detachedByClone(n = BLOCK) {
  const a = new Uint8Array(n);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}

function detachedByPostMessage(n = BLOCK) {
  const a = new Uint8Array(n);
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(a.buffer, [a.buffer]);
  port1.close();
  port2.close();
  return a;
}

function describeError(error) {
  return {
    isError: error instanceof Error,
    isStrataError: error instanceof StrataError,
    name: error?.name ?? null,
    code: typeof error?.code === 'string' ? error.code : error?.code === undefined ? null : String(error.code),
    message: String(error?.message ?? error),
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls `call()` and records how it behaves: a synchronous throw (`threw`), a value that is not
 * a Promise (`notPromise`), no settlement within `boundMs` (`timedOut`), else `ok` and `value`
 * or `error`. `post(value)` runs inside the bound on a resolved value (e.g. to consume a stream);
 * its failure counts as the call's.
 */
async function attempt(call, { post, boundMs = 5000 } = {}) {
  const started = performance.now();
  let value;
  try {
    value = call();
  } catch (error) {
    return { threw: describeError(error) };
  }
  if (!(value instanceof Promise)) {
    return { notPromise: Object.prototype.toString.call(value) };
  }
  let timer;
  const bound = new Promise((resolve) => {
    timer = setTimeout(resolve, boundMs, { timedOut: true });
  });
  const settled = value.then(
    async (v) => {
      try {
        return { ok: true, value: post ? await post(v) : v };
      } catch (error) {
        return { ok: false, error: describeError(error), inPost: true };
      }
    },
    (error) => ({ ok: false, error: describeError(error) }),
  );
  const outcome = await Promise.race([settled, bound]);
  clearTimeout(timer);
  outcome.ms = Math.round(performance.now() - started);
  return outcome;
}

/** Reads a ReadableStream to its end; resolves to { bytes, chunks, largest } or the chunks. */
async function consume(stream, keep = true) {
  if (!(stream instanceof ReadableStream)) throw new Error(`readStream resolved to ${Object.prototype.toString.call(stream)}`);
  const parts = [];
  let bytes = 0;
  let largest = 0;
  for await (const chunk of stream) {
    if (!(chunk instanceof Uint8Array)) throw new Error('a chunk is not a Uint8Array');
    bytes += chunk.length;
    largest = Math.max(largest, chunk.length);
    if (keep) parts.push(chunk);
  }
  const all = new Uint8Array(keep ? bytes : 0);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return { bytes, chunks: parts.length, largest, all };
}

/** Drains `client.log(options)`: its first `next()` is what the row checks for a Promise. */
function logRun(client, options) {
  const generator = client.log(options);
  const first = generator.next();
  if (!(first instanceof Promise)) return first;
  return first.then(async (step) => {
    const entries = step.done ? [] : [step.value];
    for await (const entry of generator) entries.push(entry);
    return entries;
  });
}

// ----- The value tables ----------------------------------------------------------------------

/** Values no whole-number argument may take. */
const BAD_INTEGERS = [
  ['null', () => null],
  ['undefined', () => undefined],
  ['"3"', () => '3'],
  ['""', () => ''],
  ['NaN', () => NaN],
  ['Infinity', () => Infinity],
  ['-Infinity', () => -Infinity],
  ['1.5', () => 1.5],
  ['-1', () => -1],
  ['-0.5', () => -0.5],
  ['2^53', () => 2 ** 53],
  ['1e300', () => 1e300],
  ['-1n', () => -1n],
  ['2^53n', () => 2n ** 53n],
  ['2^64n', () => 2n ** 64n],
  ['true', () => true],
  ['{}', () => ({})],
  ['[1]', () => [1]],
  ['new Number(1)', () => new Number(1)],
  ['Symbol()', () => Symbol('x')],
];
/** The few of them run on the slower backends and the mirror. */
const FEW_BAD_INTEGERS = BAD_INTEGERS.filter(([name]) => ['null', '"3"', '1.5', '-1', '2^53', '2^53n'].includes(name));

/** Values no data argument may take. */
const BAD_DATA = [
  ['null', () => null],
  ['undefined', () => undefined],
  ['"x"', () => 'x'],
  ['a 4096-character string', () => 'x'.repeat(BLOCK)],
  ['5', () => 5],
  ['Uint16Array(2048)', () => new Uint16Array(2048)],
  ['Int8Array(4096)', () => new Int8Array(BLOCK)],
  ['Uint8ClampedArray(4096)', () => new Uint8ClampedArray(BLOCK)],
  ['Float64Array(512)', () => new Float64Array(512)],
  ['ArrayBuffer(4096)', () => new ArrayBuffer(BLOCK)],
  ['DataView(4096)', () => new DataView(new ArrayBuffer(BLOCK))],
  ['Blob(4096)', () => new Blob([new Uint8Array(BLOCK)])],
  ['[1, 2, 3]', () => [1, 2, 3]],
  ['{ length: 4096 }', () => ({ length: BLOCK })],
  ['Uint8Array(0)', () => new Uint8Array(0)],
  ['a Uint8Array detached by structuredClone', () => detachedByClone()],
  ['a Uint8Array detached by postMessage', () => detachedByPostMessage()],
];
const FEW_BAD_DATA = BAD_DATA.filter(([name]) =>
  ['null', '"x"', 'Uint16Array(2048)', 'ArrayBuffer(4096)', 'a Uint8Array detached by structuredClone'].includes(name),
);

/**
 * The whole-number argument positions: [method, argument name as the message starts, the call
 * with value v, which client kinds have it, whether it resolves to a stream, the values that
 * mean "absent" there].
 */
const INTEGER_POSITIONS = [
  ['write', 'addr', (s, c, v) => s.write(v, fill(c.next())), 'both'],
  ['writeBatch', 'writes[0][0]', (s, c, v) => s.writeBatch([[v, fill(c.next())]]), 'both'],
  ['writeZeroes', 'addr', (s, c, v) => s.writeZeroes(v, 1), 'both'],
  ['writeZeroes', 'blocks', (s, c, v) => s.writeZeroes(0, v), 'both'],
  ['cloneBranch', 'from', (s, c, v) => s.cloneBranch(v, 'x'), 'store'],
  ['read', 'addr', (s, c, v) => s.read(v, 1), 'both'],
  ['read', 'blocks', (s, c, v) => s.read(0, v), 'both'],
  ['readAt', 'volume', (s, c, v) => s.readAt(v, 0, 1), 'both'],
  ['readAt', 'addr', (s, c, v) => s.readAt(c.snap, v, 1), 'both'],
  ['readAt', 'blocks', (s, c, v) => s.readAt(c.snap, 0, v), 'both'],
  ['readStream', 'addr', (s, c, v) => s.readStream(v, 1), 'both', true],
  ['readStream', 'blocks', (s, c, v) => s.readStream(0, v), 'both', true],
  ['readStream', 'volume', (s, c, v) => s.readStream(0, 1, { volume: v }), 'both', true, ['undefined', 'null']],
  ['compact', 'volume', (s, c, v) => s.compact(v), 'both'],
  ['merge', 'volume', (s, c, v) => s.merge(v), 'both'],
  ['delete', 'volume', (s, c, v) => s.delete(v), 'both'],
  ['rollback', 'volume', (s, c, v) => s.rollback(v, 'bad'), 'both'],
  ['diff', 'a', (s, c, v) => s.diff(v, c.snap), 'both'],
  ['diff', 'b', (s, c, v) => s.diff(c.snap, v), 'both'],
  ['log', 'options.batch', (s, c, v) => logRun(s, { batch: v }), 'both', false, ['undefined']],
  ['log', 'options.from.seq', (s, c, v) => logRun(s, { from: { seq: v } }), 'both'],
  ['log', 'options.from.volume', (s, c, v) => logRun(s, { from: { volume: v } }), 'both'],
  ['locate', 'volume', (s, c, v) => s.locate(v, 0, 1), 'store'],
  ['locate', 'addr', (s, c, v) => s.locate(c.snap, v, 1), 'store'],
  ['locate', 'blocks', (s, c, v) => s.locate(c.snap, 0, v), 'store'],
  ['blockMap', 'volume', (s, c, v) => s.blockMap(v, 4), 'store'],
  ['blockMap', 'buckets', (s, c, v) => s.blockMap(c.snap, v), 'store'],
  ['simulatePolicies', 'durationMs', (s, c, v) => s.simulatePolicies(v, 100), 'store'],
  ['simulatePolicies', 'stepMs', (s, c, v) => s.simulatePolicies(1000, v), 'store'],
  ['exportImage', 'volume', (s, c, v) => s.exportImage(v), 'store'],
  ['replace', 'leg', (s, c, v) => s.replace(v), 'mirror'],
];

const fits = (kind, has) => has === 'both' || has === kind;
const streamPost = (stream) => consume(stream).then(({ bytes, chunks }) => ({ bytes, chunks }));

/**
 * The rows for a client of `kind` ('store' or 'mirror'). `full`: every bad value (the memory
 * store); else a few of each. A row: { id, call(s, c), expect: 'ok' | code | [codes], arg?
 * (the error message starts with `${arg} `), post?, check?(value, c) -> true | string,
 * effect?(c, value) (the model after a successful call) }.
 */
function rowsFor(kind, full) {
  const rows = [];
  const integers = full ? BAD_INTEGERS : FEW_BAD_INTEGERS;
  const datas = full ? BAD_DATA : FEW_BAD_DATA;
  for (const [method, arg, call, has, isStream, absent = []] of INTEGER_POSITIONS) {
    if (!fits(kind, has)) continue;
    for (const [name, make] of integers) {
      // An option given as undefined (or null, where documented so) is absent, not bad.
      if (absent.includes(name)) continue;
      rows.push({
        id: `${method}: ${arg} = ${name}`,
        call: (s, c) => call(s, c, make()),
        post: isStream ? streamPost : undefined,
        expect: 'INVALID_ARGUMENT',
        arg,
      });
    }
  }
  // Arguments with a minimum of 1.
  for (const [id, call, arg, has] of [
    ['read(0, 0)', (s) => s.read(0, 0), 'blocks', 'both'],
    ['writeZeroes(0, 0)', (s) => s.writeZeroes(0, 0), 'blocks', 'both'],
    ['readAt(snap, 0, 0)', (s, c) => s.readAt(c.snap, 0, 0), 'blocks', 'both'],
    ['readStream(0, 0)', (s) => s.readStream(0, 0), 'blocks', 'both'],
    ['readStream(0, 0n)', (s) => s.readStream(0, 0n), 'blocks', 'both'],
    ['log({ batch: 0 })', (s) => logRun(s, { batch: 0 }), 'options.batch', 'both'],
    ['log({ batch: 4097 })', (s) => logRun(s, { batch: 4097 }), 'options.batch', 'both'],
    ['locate(snap, 0, 0)', (s, c) => s.locate(c.snap, 0, 0), 'blocks', 'store'],
    ['blockMap(snap, 0)', (s, c) => s.blockMap(c.snap, 0), 'buckets', 'store'],
    ['simulatePolicies(1000, 0)', (s) => s.simulatePolicies(1000, 0), 'stepMs', 'store'],
  ]) {
    if (fits(kind, has)) rows.push({ id, call, expect: 'INVALID_ARGUMENT', arg, post: id.startsWith('readStream') ? streamPost : undefined });
  }

  // Data arguments.
  for (const [name, make] of datas) {
    rows.push({ id: `write(0, ${name})`, call: (s) => s.write(0, make()), expect: 'INVALID_ARGUMENT', arg: 'data' });
    rows.push({ id: `writeBatch([[0, ${name}]])`, call: (s) => s.writeBatch([[0, make()]]), expect: 'INVALID_ARGUMENT', arg: 'writes[0][1]' });
  }
  rows.push({ id: 'write(0): no data', call: (s) => s.write(0), expect: 'INVALID_ARGUMENT', arg: 'data' });
  if (kind === 'store') {
    for (const [id, call] of [
      ['cloneBranch(snap, 7)', (s, c) => s.cloneBranch(c.snap, 7)],
      ['cloneBranch(snap)', (s, c) => s.cloneBranch(c.snap)],
      ['checkout(null)', (s) => s.checkout(null)],
      ['deleteBranch({})', (s) => s.deleteBranch({})],
    ]) {
      rows.push({ id, call, expect: 'INVALID_ARGUMENT', arg: 'name' });
    }
    // Names the engine refuses, and branches that do not exist.
    for (const [id, call] of [
      ['cloneBranch(snap, "head")', (s, c) => s.cloneBranch(c.snap, 'head')],
      ['cloneBranch(snap, "a b")', (s, c) => s.cloneBranch(c.snap, 'a b')],
      ['checkout("nope")', (s) => s.checkout('nope')],
      ['deleteBranch("main")', (s) => s.deleteBranch('main')],
    ]) {
      rows.push({ id, call, expect: 'INVALID_ARGUMENT' });
    }
  }
  rows.push({ id: 'write(): nothing', call: (s) => s.write(), expect: 'INVALID_ARGUMENT', arg: 'addr' });
  rows.push({ id: 'write(0, 100 bytes): not whole blocks', call: (s) => s.write(0, new Uint8Array(100)), expect: 'NOT_WHOLE_BLOCKS' });
  rows.push({ id: 'write(0, 4097 bytes): not whole blocks', call: (s) => s.write(0, new Uint8Array(BLOCK + 1)), expect: 'NOT_WHOLE_BLOCKS' });
  rows.push({ id: 'writeBatch([[0, 100 bytes]])', call: (s) => s.writeBatch([[0, new Uint8Array(100)]]), expect: 'NOT_WHOLE_BLOCKS' });

  // The repros on this store's geometry, and neighbours.
  rows.push({ id: "write('3', data)", call: (s, c) => s.write('3', fill(c.next())), expect: 'INVALID_ARGUMENT', arg: 'addr' });
  rows.push({ id: 'write(null, data)', call: (s, c) => s.write(null, fill(c.next())), expect: 'INVALID_ARGUMENT', arg: 'addr' });
  rows.push({ id: "read(0, '2')", call: (s) => s.read(0, '2'), expect: 'INVALID_ARGUMENT', arg: 'blocks' });
  rows.push({ id: 'readAt(null, 0, 1)', call: (s) => s.readAt(null, 0, 1), expect: 'INVALID_ARGUMENT', arg: 'volume' });
  rows.push({ id: "compact('1')", call: (s) => s.compact('1'), expect: 'INVALID_ARGUMENT', arg: 'volume' });
  rows.push({ id: "write(0, 'x')", call: (s) => s.write(0, 'x'), expect: 'INVALID_ARGUMENT', arg: 'data' });
  rows.push({ id: 'write(0, new Uint16Array(2048))', call: (s) => s.write(0, new Uint16Array(2048)), expect: 'INVALID_ARGUMENT', arg: 'data' });
  rows.push({ id: 'write(0, new ArrayBuffer(4096))', call: (s) => s.write(0, new ArrayBuffer(BLOCK)), expect: 'INVALID_ARGUMENT', arg: 'data' });
  rows.push({ id: 'writeBatch([[0]])', call: (s) => s.writeBatch([[0]]), expect: 'INVALID_ARGUMENT', arg: 'writes[0]' });
  rows.push({ id: 'writeBatch(null)', call: (s) => s.writeBatch(null), expect: 'INVALID_ARGUMENT', arg: 'writes' });
  rows.push({ id: 'writeBatch([5])', call: (s) => s.writeBatch([5]), expect: 'INVALID_ARGUMENT', arg: 'writes[0]' });
  rows.push({
    id: 'write(3n, data): a BigInt address is accepted and writes block 3',
    call: (s, c) => s.write(3n, fill(c.next())),
    expect: 'ok',
    effect: (c) => (c.head[3] = c.current),
  });

  // writeBatch's array, checked whole before anything is sent.
  for (const [name, make, arg] of [
    ['undefined', () => undefined, 'writes'],
    ['5', () => 5, 'writes'],
    ['"x"', () => 'x', 'writes'],
    ['{}', () => ({}), 'writes'],
    ['{ length: 1, 0: [0, block] }', () => ({ length: 1, 0: [0, fill(1)] }), 'writes'],
    ['[] (no writes)', () => [], 'writes'],
    ['[null]', () => [null], 'writes[0]'],
    ['[[0, block, 1]]', () => [[0, fill(1), 1]], 'writes[0]'],
    ['[[0, block], [null, block]]', () => [[0, fill(1)], [null, fill(2)]], 'writes[1][0]'],
    ['[[0, block], [1, "x"]]', () => [[0, fill(1)], [1, 'x']], 'writes[1][1]'],
    ['[[0, block], 7]', () => [[0, fill(1)], 7], 'writes[1]'],
  ]) {
    rows.push({ id: `writeBatch(${name})`, call: (s) => s.writeBatch(make()), expect: 'INVALID_ARGUMENT', arg });
  }
  rows.push({
    id: 'writeBatch(65537 writes)',
    call: (s) => {
      const one = new Uint8Array(BLOCK);
      return s.writeBatch(Array.from({ length: 65537 }, (_, i) => [i % 8, one.subarray(0)]));
    },
    expect: 'INVALID_ARGUMENT',
    arg: 'writes',
  });
  rows.push({
    id: 'writeBatch([[0, block], [1, detached]]): refused, and the first block is not transferred',
    call: (s, c) => {
      c.kept = fill(c.next());
      return s.writeBatch([[0, c.kept], [1, detachedByClone()]]);
    },
    expect: 'INVALID_ARGUMENT',
    arg: 'writes[1][1]',
    afterwards: (c) => (c.kept.byteLength === BLOCK ? true : `the first block's buffer was detached (byteLength ${c.kept.byteLength})`),
  });
  rows.push({
    id: 'writeBatch([[0, block], [blockCount, block]]): out of range, and nothing is written',
    call: (s, c) => s.writeBatch([[0, fill(c.next())], [c.blocks, fill(c.next())]]),
    expect: 'OUT_OF_RANGE',
  });
  rows.push({
    id: 'writeBatch([[20, d], [21, d]]): the same Uint8Array twice is accepted',
    call: (s, c) => {
      c.next();
      const d = fill(c.current);
      return s.writeBatch([[20, d], [21, d]]);
    },
    expect: 'ok',
    effect: (c) => {
      c.head[20] = c.current;
      c.head[21] = c.current;
    },
  });
  rows.push({
    id: 'writeBatch([[22, a.subarray(0, 4096)], [23, a.subarray(4096)]]): two views of one buffer are accepted',
    call: (s, c) => {
      const a = new Uint8Array(2 * BLOCK);
      c.next();
      a.set(fill(c.current), 0);
      a.set(fill(c.current + 1), BLOCK);
      c.next();
      return s.writeBatch([[22, a.subarray(0, BLOCK)], [23, a.subarray(BLOCK)]]);
    },
    expect: 'ok',
    effect: (c) => {
      c.head[22] = c.current - 1;
      c.head[23] = c.current;
    },
  });

  // The transfer of a written buffer, then the detached buffer written again.
  rows.push({
    id: 'write(6, d): accepted; d is transferred (detached) as documented',
    call: (s, c) => {
      c.transferred = fill(c.next());
      return s.write(6, c.transferred);
    },
    expect: 'ok',
    effect: (c) => (c.head[6] = c.current),
    afterwards: (c) => (c.transferred.byteLength === 0 ? true : `d still has ${c.transferred.byteLength} bytes`),
  });
  rows.push({ id: 'write(7, d) with d detached by the previous write', call: (s, c) => s.write(7, c.transferred), expect: 'INVALID_ARGUMENT', arg: 'data' });
  rows.push({
    id: 'write(5, big.subarray(4096, 8192)): a view is copied, big stays usable',
    call: (s, c) => {
      c.big = new Uint8Array(3 * BLOCK);
      c.big.set(fill(c.next()), BLOCK);
      return s.write(5, c.big.subarray(BLOCK, 2 * BLOCK));
    },
    expect: 'ok',
    effect: (c) => (c.head[5] = c.current),
    afterwards: (c) => (c.big.byteLength === 3 * BLOCK ? true : 'big was detached'),
  });

  // Valid BigInts and the largest accepted values.
  rows.push({ id: 'read(0n, 2n)', call: (s) => s.read(0n, 2n), expect: 'ok', check: (v, c) => same(v, image(c.head.slice(0, 2))) });
  rows.push({ id: 'readAt(BigInt(snap), 1n, 3n)', call: (s, c) => s.readAt(BigInt(c.snap), 1n, 3n), expect: 'ok', check: (v, c) => same(v, image(c.snapImg.slice(1, 4))) });
  rows.push({ id: 'diff(0n, BigInt(snap))', call: (s, c) => s.diff(0n, BigInt(c.snap)), expect: 'ok', check: (v) => (Array.isArray(v) ? true : 'not an array') });
  rows.push({ id: 'log({ batch: 2n })', call: (s) => logRun(s, { batch: 2n }), expect: 'ok', check: (v) => (v.length > 0 ? true : 'no entries') });
  rows.push({
    id: 'readStream(0n, 4n, { volume: BigInt(snap) })',
    call: (s, c) => s.readStream(0n, 4n, { volume: BigInt(c.snap) }),
    post: (st) => consume(st),
    expect: 'ok',
    check: (v, c) => same(v.all, image(c.snapImg.slice(0, 4))),
  });
  rows.push({ id: 'write(2^53 - 1, data)', call: (s, c) => s.write(Number.MAX_SAFE_INTEGER, fill(c.next())), expect: 'OUT_OF_RANGE' });
  rows.push({ id: 'write(2n^53n - 1n, data)', call: (s, c) => s.write(2n ** 53n - 1n, fill(c.next())), expect: 'OUT_OF_RANGE' });
  rows.push({ id: 'write(blockCount, data)', call: (s, c) => s.write(c.blocks, fill(c.next())), expect: 'OUT_OF_RANGE' });
  rows.push({ id: 'write(blockCount - 1, 2 blocks)', call: (s, c) => s.write(c.blocks - 1, image([c.next(), c.next()])), expect: 'OUT_OF_RANGE' });
  rows.push({ id: 'read(2^53 - 1, 1)', call: (s) => s.read(Number.MAX_SAFE_INTEGER, 1), expect: 'OUT_OF_RANGE' });
  rows.push({ id: 'read(0, 2^53 - 1)', call: (s) => s.read(0, Number.MAX_SAFE_INTEGER), expect: ['OUT_OF_RANGE', 'LIMIT_EXCEEDED'] });
  rows.push({ id: 'read(blockCount, 1)', call: (s, c) => s.read(c.blocks, 1), expect: 'OUT_OF_RANGE' });
  rows.push({ id: 'read(blockCount - 1, 2)', call: (s, c) => s.read(c.blocks - 1, 2), expect: 'OUT_OF_RANGE' });
  rows.push({ id: 'readAt(2^53 - 1, 0, 1)', call: (s) => s.readAt(Number.MAX_SAFE_INTEGER, 0, 1), expect: 'UNKNOWN_VOLUME' });
  rows.push({ id: 'readAt(999, 0, 1)', call: (s) => s.readAt(999, 0, 1), expect: 'UNKNOWN_VOLUME' });
  rows.push({ id: 'readStream(blockCount - 1, 2): the range is refused', call: (s, c) => s.readStream(c.blocks - 1, 2), post: streamPost, expect: 'OUT_OF_RANGE' });
  rows.push({ id: 'readStream(0, 1, { volume: 999 })', call: (s) => s.readStream(0, 1, { volume: 999 }), post: streamPost, expect: 'UNKNOWN_VOLUME' });
  rows.push({ id: 'readStream(0, 1, null): no options', call: (s) => s.readStream(0, 1, null), post: streamPost, expect: ['ok', 'INVALID_ARGUMENT'] });
  rows.push({ id: 'readStream(0, 1, 5): options not an object', call: (s) => s.readStream(0, 1, 5), post: streamPost, expect: 'INVALID_ARGUMENT', arg: 'options' });
  rows.push({ id: "readStream(0, 1, 'x'): options not an object", call: (s) => s.readStream(0, 1, 'x'), post: streamPost, expect: 'INVALID_ARGUMENT', arg: 'options' });
  for (const [method, call] of [
    ['compact', (s, v) => s.compact(v)],
    ['merge', (s, v) => s.merge(v)],
    ['delete', (s, v) => s.delete(v)],
    ['rollback', (s, v) => s.rollback(v, 'bad')],
    ['diff', (s, v) => s.diff(0, v)],
  ]) {
    rows.push({ id: `${method}(999)`, call: (s) => call(s, 999), expect: 'UNKNOWN_VOLUME' });
    rows.push({ id: `${method}(2^53 - 1)`, call: (s) => call(s, Number.MAX_SAFE_INTEGER), expect: 'UNKNOWN_VOLUME' });
  }
  rows.push({ id: 'compact(0): the baseline', call: (s) => s.compact(0), expect: 'INVALID_ARGUMENT' });
  rows.push({ id: 'compact(head)', call: (s, c) => s.compact(c.headId), expect: 'INVALID_ARGUMENT' });
  rows.push({ id: 'merge(0): the baseline', call: (s) => s.merge(0), expect: 'INVALID_ARGUMENT' });
  rows.push({ id: 'merge(head)', call: (s, c) => s.merge(c.headId), expect: 'INVALID_ARGUMENT' });
  rows.push({ id: 'delete(0): the baseline', call: (s) => s.delete(0), expect: 'INVALID_ARGUMENT' });
  rows.push({ id: 'delete(head)', call: (s, c) => s.delete(c.headId), expect: 'INVALID_ARGUMENT' });
  rows.push({ id: 'rollback(head)', call: (s, c) => s.rollback(c.headId, 'bad'), expect: 'INVALID_ARGUMENT' });

  // Labels.
  for (const [name, make] of [
    ['5', () => 5],
    ['{}', () => ({})],
    ['5n', () => 5n],
    ['Symbol()', () => Symbol('x')],
    ['() => 1', () => () => 1],
  ]) {
    rows.push({ id: `snapshot(${name})`, call: (s) => s.snapshot(make()), expect: 'INVALID_ARGUMENT', arg: 'label' });
    rows.push({ id: `rollback(snap, ${name})`, call: (s, c) => s.rollback(c.snap, make()), expect: 'INVALID_ARGUMENT', arg: 'label' });
  }
  rows.push({ id: 'snapshot(a 100,000-character label)', call: (s) => s.snapshot('x'.repeat(100_000)), expect: 'INVALID_LABEL' });
  rows.push({ id: 'rollback(snap, a 100,000-character label)', call: (s, c) => s.rollback(c.snap, 'x'.repeat(100_000)), expect: 'INVALID_LABEL' });

  // Options of compact and merge (and their cancellation before anything is done).
  const aborted = () => {
    const controller = new AbortController();
    controller.abort();
    return controller.signal;
  };
  for (const method of ['compact', 'merge']) {
    for (const [name, make, arg] of [
      ['5', () => 5, 'options'],
      ['"x"', () => 'x', 'options'],
      ['[]', () => [], 'options'],
      ['{ onProgress: 5 }', () => ({ onProgress: 5 }), 'options.onProgress'],
      ['{ onProgress: "f" }', () => ({ onProgress: 'f' }), 'options.onProgress'],
      ['{ signal: {} }', () => ({ signal: {} }), 'options.signal'],
      ['{ signal: "x" }', () => ({ signal: 'x' }), 'options.signal'],
      ['{ signal: new AbortController() }', () => ({ signal: new AbortController() }), 'options.signal'],
    ]) {
      rows.push({ id: `${method}(snap, ${name})`, call: (s, c) => s[method](c.snap, make()), expect: 'INVALID_ARGUMENT', arg });
    }
  }
  rows.push({ id: 'compact(snap, { signal: aborted })', call: (s, c) => s.compact(c.snap, { signal: aborted() }), expect: 'CANCELLED' });
  rows.push({
    id: 'compact(snap, { onProgress, signal: not aborted }): done; nothing reads differently',
    call: (s, c) => s.compact(c.snap, { onProgress: () => {}, signal: new AbortController().signal }),
    expect: 'ok',
    changesVolumes: true,
  });

  // The log's options.
  for (const [name, make, arg] of [
    ['5', () => 5, 'options'],
    ['"x"', () => 'x', 'options'],
    ['[]', () => [], 'options'],
    ['{ withData: "yes" }', () => ({ withData: 'yes' }), 'options.withData'],
    ['{ withData: 1 }', () => ({ withData: 1 }), 'options.withData'],
    ["{ from: 'end' }", () => ({ from: 'end' }), 'options.from'],
    ['{ from: null }', () => ({ from: null }), 'options.from'],
    ['{ from: 5 }', () => ({ from: 5 }), 'options.from'],
    ['{ from: {} }', () => ({ from: {} }), 'options.from'],
    ['{ from: { seq: 1, volume: 1 } }', () => ({ from: { seq: 1, volume: 1 } }), 'options.from'],
  ]) {
    rows.push({ id: `log(${name})`, call: (s) => logRun(s, make()), expect: 'INVALID_ARGUMENT', arg });
  }
  rows.push({ id: 'log({ from: { volume: 999 } })', call: (s) => logRun(s, { from: { volume: 999 } }), expect: 'UNKNOWN_VOLUME' });
  rows.push({ id: 'log({ from: { seq: 2^53 - 1 } }): nothing', call: (s) => logRun(s, { from: { seq: Number.MAX_SAFE_INTEGER } }), expect: 'ok', check: (v) => (v.length === 0 ? true : `${v.length} entries`) });
  rows.push({ id: 'log({ batch: 4096, withData: true })', call: (s) => logRun(s, { batch: 4096, withData: true }), expect: 'ok', check: (v) => (v.every((e) => e.data instanceof Uint8Array) ? true : 'an entry without data') });
  rows.push({ id: 'log({ batch: 1 })', call: (s) => logRun(s, { batch: 1 }), expect: 'ok', check: (v) => (v.length > 1 ? true : `${v.length} entries`) });
  rows.push({ id: 'log(null)', call: (s) => logRun(s, null), expect: 'ok' });

  if (kind === 'store') rows.push(...storeOnlyRows(aborted));
  else rows.push(...mirrorOnlyRows());
  return rows;
}

function same(a, b) {
  const at = firstDifference(a, b);
  return at === -1 ? true : `differs at block ${at}`;
}

/** Rows of the methods only a store (StrataClient) has. */
function storeOnlyRows(aborted) {
  const rows = [];
  rows.push({ id: 'locate(snap, 0, 4)', call: (s, c) => s.locate(c.snap, 0, 4), expect: 'ok', check: (v) => (v.length === 4 ? true : `${v.length} entries`) });
  rows.push({ id: 'locate(snap, blockCount - 1, 2)', call: (s, c) => s.locate(c.snap, c.blocks - 1, 2), expect: 'OUT_OF_RANGE' });
  rows.push({ id: 'locate(999, 0, 1)', call: (s) => s.locate(999, 0, 1), expect: 'UNKNOWN_VOLUME' });
  rows.push({ id: 'blockMap(snap, 2^53 - 1): one bucket a block', call: (s, c) => s.blockMap(c.snap, Number.MAX_SAFE_INTEGER), expect: 'ok', check: (v, c) => (v.length === c.blocks ? true : `${v.length} buckets`) });
  rows.push({ id: 'blockMap(999, 4)', call: (s) => s.blockMap(999, 4), expect: 'UNKNOWN_VOLUME' });
  rows.push({ id: 'simulatePolicies(1000n, 100n)', call: (s) => s.simulatePolicies(1000n, 100n), expect: 'ok' });
  rows.push({ id: 'simulatePolicies(2^53 - 1, 1): too many steps', call: (s) => s.simulatePolicies(Number.MAX_SAFE_INTEGER, 1), expect: 'INVALID_ARGUMENT' });

  // exportImage.
  for (const [name, make, arg] of [
    ['5', () => 5, 'options'],
    ['"x"', () => 'x', 'options'],
    ['{ onChunk: 5 }', () => ({ onChunk: 5 }), 'options.onChunk'],
    ['{ onProgress: "x" }', () => ({ onProgress: 'x' }), 'options.onProgress'],
    ['{ signal: {} }', () => ({ signal: {} }), 'options.signal'],
  ]) {
    rows.push({ id: `exportImage(snap, ${name})`, call: (s, c) => s.exportImage(c.snap, make()), expect: 'INVALID_ARGUMENT', arg });
  }
  rows.push({ id: 'exportImage(999)', call: (s) => s.exportImage(999), expect: 'UNKNOWN_VOLUME' });
  rows.push({ id: 'exportImage(snap, { signal: aborted })', call: (s, c) => s.exportImage(c.snap, { signal: aborted() }), expect: 'CANCELLED' });
  rows.push({ id: 'exportImage(snap)', call: (s, c) => s.exportImage(c.snap), expect: 'ok', check: (v, c) => same(v, image(c.snapImg)) });
  rows.push({
    id: 'exportImage(BigInt(snap), { onChunk })',
    call: (s, c) => {
      c.chunks = [];
      return s.exportImage(BigInt(c.snap), { onChunk: (chunk) => c.chunks.push(chunk) });
    },
    expect: 'ok',
    check: (v, c) => (v === undefined ? same(concat(c.chunks), image(c.snapImg)) : 'resolved to a value'),
  });

  // send.
  for (const [name, call, expect, arg] of [
    ['send(5)', (s) => s.send(5), 'INVALID_ARGUMENT', 'options'],
    ["send('x')", (s) => s.send('x'), 'INVALID_ARGUMENT', 'options'],
    ['send({}, 5)', (s) => s.send({}, 5), 'INVALID_ARGUMENT', 'handlers'],
    ['send({}, { onChunk: 5 })', (s) => s.send({}, { onChunk: 5 }), 'INVALID_ARGUMENT', 'handlers.onChunk'],
    ["send({ base: 'x' })", (s) => s.send({ base: 'x' }), 'INVALID_ARGUMENT'],
    ['send({ base: -1 })', (s) => s.send({ base: -1 }), 'INVALID_ARGUMENT'],
    ['send({ base: 999 })', (s) => s.send({ base: 999 }), 'UNKNOWN_VOLUME'],
    ['send({ upto: 1.5 })', (s) => s.send({ upto: 1.5 }), 'INVALID_ARGUMENT'],
    ['send({ upto: 999 })', (s) => s.send({ upto: 999 }), 'UNKNOWN_VOLUME'],
    ["send({ sinceSeq: 'x' })", (s) => s.send({ sinceSeq: 'x' }), 'INVALID_ARGUMENT'],
    ['send({ blocks: [5, 1] })', (s) => s.send({ blocks: [5, 1] }), 'INVALID_ARGUMENT'],
    ["send({ blocks: 'x' })", (s) => s.send({ blocks: 'x' }), 'INVALID_ARGUMENT'],
    ['send({ blocks: [0] })', (s) => s.send({ blocks: [0] }), 'INVALID_ARGUMENT'],
    ['send({ base: 1n })', (s) => s.send({ base: 1n }), ['ok', 'INVALID_ARGUMENT']],
    ['send({ base: () => 1 }): cannot be cloned', (s) => s.send({ base: () => 1 }), 'INVALID_ARGUMENT'],
  ]) {
    rows.push({ id: name, call, expect, arg });
  }
  rows.push({ id: 'send()', call: (s) => s.send(), expect: 'ok', check: (v) => (Array.isArray(v.chunks) && v.chunks.length > 0 ? true : 'no chunks') });
  rows.push({
    id: 'send({}, { onChunk })',
    call: (s, c) => {
      c.chunks = [];
      return s.send({}, { onChunk: (chunk) => c.chunks.push(chunk) });
    },
    expect: 'ok',
    check: (v, c) => (c.chunks.length > 0 ? true : 'no chunks'),
  });

  // receive.
  for (const [name, call, expect, arg] of [
    ['receive(null)', (s) => s.receive(null), 'INVALID_ARGUMENT', 'stream'],
    ['receive(undefined)', (s) => s.receive(undefined), 'INVALID_ARGUMENT', 'stream'],
    ['receive(5)', (s) => s.receive(5), 'INVALID_ARGUMENT', 'stream'],
    ["receive('abc')", (s) => s.receive('abc'), 'INVALID_ARGUMENT', 'stream'],
    ['receive({})', (s) => s.receive({}), 'INVALID_ARGUMENT', 'stream'],
    ['receive([5])', (s) => s.receive([5]), 'INVALID_ARGUMENT'],
    ["receive(['abc'])", (s) => s.receive(['abc']), 'INVALID_ARGUMENT'],
    ['receive(new Uint16Array(8))', (s) => s.receive(new Uint16Array(8)), 'INVALID_ARGUMENT'],
    ['receive(10 garbage bytes)', (s) => s.receive(new Uint8Array(10).fill(7)), 'BAD_STREAM'],
    ['receive([]): an empty stream', (s) => s.receive([]), ['BAD_STREAM', 'INVALID_ARGUMENT']],
    ['receive(new Uint8Array(0))', (s) => s.receive(new Uint8Array(0)), ['BAD_STREAM', 'INVALID_ARGUMENT']],
    ['receive(a detached Uint8Array)', (s) => s.receive(detachedByClone()), 'INVALID_ARGUMENT'],
    ['receive(garbage, 5)', (s) => s.receive(new Uint8Array(10), 5), 'INVALID_ARGUMENT', 'handlers'],
    ['receive(garbage, { onProgress: 5 })', (s) => s.receive(new Uint8Array(10), { onProgress: 5 }), 'INVALID_ARGUMENT', 'handlers.onProgress'],
    [
      'receive(an iterable that throws a plain Error)',
      (s) =>
        s.receive({
          *[Symbol.iterator]() {
            throw new Error('the source broke');
          },
        }),
      // The caller's own failure comes back; as a StrataError (any documented code) per the contract.
      'ANY',
    ],
  ]) {
    rows.push({ id: name, call, expect, arg });
  }

  // Policies and events.
  const circular = () => {
    const o = {};
    o.self = o;
    return o;
  };
  for (const [name, call, expect, arg] of [
    ['setPolicy(5)', (s) => s.setPolicy(5), 'INVALID_ARGUMENT'],
    ["setPolicy('{')", (s) => s.setPolicy('{'), 'INVALID_ARGUMENT'],
    ["setPolicy('')", (s) => s.setPolicy(''), 'INVALID_ARGUMENT'],
    ['setPolicy(10n)', (s) => s.setPolicy(10n), 'INVALID_ARGUMENT', 'policy'],
    ['setPolicy(a circular object)', (s) => s.setPolicy(circular()), 'INVALID_ARGUMENT', 'policy'],
    ['setPolicy(() => 1)', (s) => s.setPolicy(() => 1), 'INVALID_ARGUMENT', 'policy'],
    ['setPolicy(Symbol())', (s) => s.setPolicy(Symbol('p')), 'INVALID_ARGUMENT', 'policy'],
    ['setPolicy([])', (s) => s.setPolicy([]), 'INVALID_ARGUMENT'],
    ['setPolicy({ rules: 5 })', (s) => s.setPolicy({ rules: 5 }), 'INVALID_ARGUMENT'],
    ["setPolicy('x' x 1 MiB)", (s) => s.setPolicy('x'.repeat(1 << 20)), 'INVALID_ARGUMENT'],
    ['setAssignments(undefined)', (s) => s.setAssignments(undefined), 'INVALID_ARGUMENT', 'assignments'],
    ['setAssignments(5)', (s) => s.setAssignments(5), 'INVALID_ARGUMENT'],
    ['setAssignments(null)', (s) => s.setAssignments(null), 'INVALID_ARGUMENT'],
    ["setAssignments('[')", (s) => s.setAssignments('['), 'INVALID_ARGUMENT'],
    ["setAssignments([{ volume: 'x' }])", (s) => s.setAssignments([{ volume: 'x' }]), 'INVALID_ARGUMENT'],
    ['setAssignments([{ volume: -1, hold: true }])', (s) => s.setAssignments([{ volume: -1, hold: true }]), 'INVALID_ARGUMENT'],
    ['setAssignments([{ volume: 999, hold: true }])', (s) => s.setAssignments([{ volume: 999, hold: true }]), ['UNKNOWN_VOLUME', 'INVALID_ARGUMENT']],
    ['setAssignments([{ volume: 0, hold: true }]): the baseline', (s) => s.setAssignments([{ volume: 0, hold: true }]), 'INVALID_ARGUMENT'],
    ['setAssignments([{ volume: snap, ttl_ms: -5 }])', (s, c) => s.setAssignments([{ volume: c.snap, ttl_ms: -5 }]), 'INVALID_ARGUMENT'],
    ['setAssignments(a circular object)', (s) => s.setAssignments(circular()), 'INVALID_ARGUMENT', 'assignments'],
    ['event(5)', (s) => s.event(5), 'INVALID_ARGUMENT', 'name'],
    ['event(null)', (s) => s.event(null), 'INVALID_ARGUMENT', 'name'],
    ['event(undefined)', (s) => s.event(undefined), 'INVALID_ARGUMENT', 'name'],
    ['event({})', (s) => s.event({}), 'INVALID_ARGUMENT', 'name'],
    ["event('x', 5)", (s) => s.event('x', 5), 'INVALID_ARGUMENT', 'handlers'],
    ["event('x', { onCopy: 5 })", (s) => s.event('x', { onCopy: 5 }), 'INVALID_ARGUMENT', 'handlers.onCopy'],
    ["event('')", (s) => s.event(''), ['INVALID_ARGUMENT', 'ok']],
    ["event('x' x 100,000)", (s) => s.event('x'.repeat(100_000)), ['INVALID_ARGUMENT', 'ok']],
    ['runPolicies(5)', (s) => s.runPolicies(5), 'INVALID_ARGUMENT', 'handlers'],
    ['runPolicies({ onCopy: 5 })', (s) => s.runPolicies({ onCopy: 5 }), 'INVALID_ARGUMENT', 'handlers.onCopy'],
    ['dryRun(5)', (s) => s.dryRun(5), 'INVALID_ARGUMENT', 'event'],
    ['dryRun({})', (s) => s.dryRun({}), 'INVALID_ARGUMENT', 'event'],
  ]) {
    rows.push({ id: name, call, expect, arg });
  }
  rows.push({ id: 'setPolicy(null): no policy', call: (s) => s.setPolicy(null), expect: 'ok' });
  rows.push({ id: 'setAssignments([])', call: (s) => s.setAssignments([]), expect: 'ok' });
  rows.push({ id: "event('app_event')", call: (s) => s.event('app_event'), expect: 'ok', check: (v) => (Array.isArray(v) ? true : 'not an array') });
  rows.push({ id: 'runPolicies()', call: (s) => s.runPolicies(), expect: 'ok' });
  rows.push({ id: 'dryRun()', call: (s) => s.dryRun(), expect: 'ok' });
  return rows;
}

/** Rows of the methods only a mirror has. */
function mirrorOnlyRows() {
  return [
    { id: 'replace(legs.length): no such leg', call: (s) => s.replace(s.legs.length), expect: 'INVALID_ARGUMENT', arg: 'leg' },
    { id: 'replace(0n): resilvers leg 0', call: (s) => s.replace(0n), expect: 'ok' },
    { id: 'status()', call: (s) => s.status(), expect: 'ok', check: (v) => (v.degraded === false ? true : 'degraded') },
    { id: 'scrub()', call: (s) => s.scrub(), expect: 'ok', check: (v) => (v.detected === 0 ? true : `${v.detected} bad copies`) },
    { id: 'events()', call: (s) => s.events(), expect: 'ok' },
  ];
}

function concat(chunks) {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

// ----- The store under test and its expected contents ---------------------------------------

/**
 * A context for the rows: the client `s`, its block count, the snapshot `snap` (blocks 0..15 of
 * stamps 1..16), the head's id, and the model (`head`, `snapImg`: one stamp per block).
 */
async function makeContext(client, blocks) {
  const c = {
    s: client,
    blocks,
    counter: 1000,
    current: 0,
    next() {
      c.current = ++c.counter;
      return c.current;
    },
    head: new Array(blocks).fill(0),
    snapImg: null,
    snap: 0,
    headId: 0,
  };
  const batch = [];
  for (let a = 0; a < 16; a++) {
    batch.push([a, fill(a + 1)]);
    c.head[a] = a + 1;
  }
  // Blocks 0 and 1 written twice: compacting the snapshot has something to drop.
  await client.writeBatch([[0, fill(900)], [1, fill(901)]]);
  await client.writeBatch(batch);
  const snapped = await client.snapshot('known');
  c.snap = typeof snapped === 'number' ? snapped : snapped.volume;
  c.snapImg = c.head.slice();
  for (let a = 0; a < 4; a++) {
    await client.write(a, fill(100 + a));
    c.head[a] = 100 + a;
  }
  await client.sync();
  c.headId = (await client.info()).head;
  return c;
}

/** What must not change after a refused call: the volumes (not their sizes) and the head's entries. */
async function volumeSummary(client) {
  const volumes = await client.volumes();
  return JSON.stringify(volumes.map((v) => [v.id, v.kind, v.label, v.parent, v.kind === 'head' ? v.entryCount : null]));
}

/** Whether the store reads exactly the model (head and snapshot) and, after a refusal, the same volumes. */
async function verify(c, before, refused) {
  const problems = [];
  try {
    const head = await c.s.read(0, c.blocks);
    const at = firstDifference(head, image(c.head));
    if (at !== -1) problems.push(`the head differs from the model at block ${at}`);
    const snap = await c.s.readAt(c.snap, 0, c.blocks);
    const atSnap = firstDifference(snap, image(c.snapImg));
    if (atSnap !== -1) problems.push(`snapshot ${c.snap} differs from the model at block ${atSnap}`);
    if (refused) {
      const after = await volumeSummary(c.s);
      if (after !== before) problems.push(`the volumes changed: ${before} -> ${after}`);
    }
    if (problems.length > 0) {
      // Adopt what the store holds, so that one bad row does not fail every later one.
      const blocks = head.length / BLOCK;
      c.head = adopt(head, blocks, c.head);
    }
  } catch (error) {
    problems.push(`the store no longer reads: ${JSON.stringify(describeError(error))}`);
  }
  return problems.length === 0 ? true : problems.join('; ');
}

/** Stamps for an image read back: the model's where they match, else a negative marker. */
function adopt(bytes, blocks, stamps) {
  const out = stamps.slice();
  for (let a = 0; a < blocks; a++) {
    const block = bytes.subarray(a * BLOCK, (a + 1) * BLOCK);
    if (firstDifference(block, fill(stamps[a])) !== -1) out[a] = -1 - a;
  }
  return out;
}

const expectsOk = (expect) => expect === 'ok' || (Array.isArray(expect) && expect.includes('ok'));

/** Runs `rows` on context `c`; returns one plain record per row. */
async function runRows(rows, c) {
  const results = [];
  for (const row of rows) {
    const before = await volumeSummary(c.s);
    const outcome = await attempt(() => row.call(c.s, c), { post: row.post });
    const record = {
      id: row.id,
      expect: row.expect,
      arg: row.arg ?? null,
      threw: outcome.threw ?? null,
      notPromise: outcome.notPromise ?? null,
      timedOut: outcome.timedOut ?? false,
      ok: outcome.ok ?? null,
      error: outcome.error ?? null,
      inPost: outcome.inPost ?? false,
      ms: outcome.ms ?? null,
      check: true,
      afterwards: true,
      intact: true,
    };
    if (outcome.ok && row.check) {
      try {
        record.check = await row.check(outcome.value, c);
      } catch (error) {
        record.check = `the check threw: ${error?.message ?? error}`;
      }
    }
    if (outcome.ok && row.effect) row.effect(c, outcome.value);
    if (row.afterwards) record.afterwards = row.afterwards(c);
    // A timed-out call may still be running: let it finish before looking at the store.
    if (outcome.timedOut) await sleep(1000);
    const refused = !outcome.ok && !row.changesVolumes;
    record.intact = await verify(c, before, refused && !expectsOk(row.expect));
    results.push(record);
  }
  return results;
}

// ----- Scenarios -------------------------------------------------------------------------------

/** Opens a fresh store (or mirror) of 64 blocks on `backend`. */
async function freshClient(kind, backend, name, legs) {
  if (kind === 'store') {
    await destroy({ name, backend });
    return open({ name, backend, blocks: 64 });
  }
  await destroyMirror({ name, backend, legs });
  return openMirror({ name, backend, legs, blocks: 64 });
}

async function closeAndDestroy(kind, client, backend, name, legs) {
  await client.close().catch(() => {});
  if (kind === 'store') await destroy({ name, backend }).catch(() => {});
  else await destroyMirror({ name, backend, legs }).catch(() => {});
}

/**
 * The rows for `kind` on a fresh client, then a write and read that must work, and (for
 * OPFS/IndexedDB) the data read back after close and reopen. Returns { rows, after }.
 */
async function runTable(kind, backend, name, legs, full) {
  const client = await freshClient(kind, backend, name, legs);
  const c = await makeContext(client, 64);
  const rows = rowsFor(kind, full);
  const results = await runRows(rows, c);
  // Afterwards the handle still takes a write, and everything reads as the model says.
  const after = {};
  try {
    await client.write(40, fill(c.next()));
    c.head[40] = c.current;
    await client.sync();
    after.works = await verify(c, null, false);
    await client.close();
    if (backend !== 'memory') {
      const again = kind === 'store' ? await open({ name, backend }) : await openMirror({ name, backend, legs });
      c.s = again;
      after.reopened = await verify(c, null, false);
      await again.close();
    }
  } catch (error) {
    after.error = describeError(error);
  } finally {
    await closeAndDestroy(kind, c.s, backend, name, legs);
  }
  return { rows: results, after, count: rows.length };
}

/** Every method of a closed handle (valid arguments): CLOSED; close() again resolves. */
async function closedTable(kind, backend, name, legs) {
  const client = await freshClient(kind, backend, name, legs);
  const c = await makeContext(client, 64);
  // A call in flight when close() is called settles (it was sent before the close).
  const inFlight = attempt(() => client.read(0, 4));
  await client.close();
  const rows = [
    ['close() again', (s) => s.close(), 'ok'],
    ['close() a third time', (s) => s.close(), 'ok'],
    ['write(0, block)', (s) => s.write(0, fill(1)), 'CLOSED'],
    ['writeBatch([[0, block]])', (s) => s.writeBatch([[0, fill(1)]]), 'CLOSED'],
    ['sync()', (s) => s.sync(), 'CLOSED'],
    ["snapshot('x')", (s) => s.snapshot('x'), 'CLOSED'],
    ['read(0, 1)', (s) => s.read(0, 1), 'CLOSED'],
    ['readAt(snap, 0, 1)', (s) => s.readAt(c.snap, 0, 1), 'CLOSED'],
    ['readStream(0, 1)', (s) => s.readStream(0, 1), 'CLOSED', streamPost],
    ['volumes()', (s) => s.volumes(), 'CLOSED'],
    ['info()', (s) => s.info(), 'CLOSED'],
    ['space()', (s) => s.space(), 'CLOSED'],
    ['stats()', (s) => s.stats(), 'CLOSED'],
    ['log().next()', (s) => logRun(s), 'CLOSED'],
    ['compact(snap)', (s) => s.compact(c.snap), 'CLOSED'],
    ['merge(snap)', (s) => s.merge(c.snap), 'CLOSED'],
    ['delete(snap)', (s) => s.delete(c.snap), 'CLOSED'],
    ['rollback(snap)', (s) => s.rollback(c.snap), 'CLOSED'],
    ['diff(0, snap)', (s) => s.diff(0, c.snap), 'CLOSED'],
  ];
  if (kind === 'store') {
    rows.push(
      ['locate(snap, 0, 1)', (s) => s.locate(c.snap, 0, 1), 'CLOSED'],
      ['blockMap(snap, 4)', (s) => s.blockMap(c.snap, 4), 'CLOSED'],
      ['simulatePolicies(1000, 100)', (s) => s.simulatePolicies(1000, 100), 'CLOSED'],
      ['send()', (s) => s.send(), 'CLOSED'],
      ['receive(bytes)', (s) => s.receive(new Uint8Array(10)), 'CLOSED'],
      ['setPolicy(null)', (s) => s.setPolicy(null), 'CLOSED'],
      ['policy()', (s) => s.policy(), 'CLOSED'],
      ['setAssignments([])', (s) => s.setAssignments([]), 'CLOSED'],
      ['assignments()', (s) => s.assignments(), 'CLOSED'],
      ["event('x')", (s) => s.event('x'), 'CLOSED'],
      ['runPolicies()', (s) => s.runPolicies(), 'CLOSED'],
      ['dryRun()', (s) => s.dryRun(), 'CLOSED'],
      ['audit()', (s) => s.audit(), 'CLOSED'],
      ['exportImage(snap)', (s) => s.exportImage(c.snap), 'CLOSED'],
      ['exportImage(snap, { onChunk })', (s) => s.exportImage(c.snap, { onChunk: () => {} }), 'CLOSED'],
    );
  } else {
    rows.push(
      ['status()', (s) => s.status(), 'CLOSED'],
      ['scrub()', (s) => s.scrub(), 'CLOSED'],
      ['replace(0)', (s) => s.replace(0), 'CLOSED'],
      ['rebuild()', (s) => s.rebuild(), 'CLOSED'],
      ['events()', (s) => s.events(), 'CLOSED'],
    );
  }
  const results = [];
  const first = await inFlight;
  results.push({
    id: 'read(0, 4) sent just before close()',
    expect: ['ok', 'CLOSED'],
    arg: null,
    ...record(first),
  });
  for (const [id, call, expect, post] of rows) {
    results.push({ id, expect, arg: null, ...record(await attempt(() => call(client, c), { post })) });
  }
  let reopened = null;
  if (backend !== 'memory') {
    // The lock was released; the data is there.
    const again = kind === 'store' ? await open({ name, backend }) : await openMirror({ name, backend, legs });
    c.s = again;
    reopened = await verify(c, null, false);
    await again.close();
  }
  await closeAndDestroy(kind, c.s, backend, name, legs);
  return { rows: results, reopened };
}

function record(outcome) {
  return {
    threw: outcome.threw ?? null,
    notPromise: outcome.notPromise ?? null,
    timedOut: outcome.timedOut ?? false,
    ok: outcome.ok ?? null,
    error: outcome.error ?? null,
    inPost: outcome.inPost ?? false,
    ms: outcome.ms ?? null,
    check: true,
    afterwards: true,
    intact: true,
  };
}

/**
 * The module functions' options: open, destroy, importImage, importStream, openMirror,
 * destroyMirror. `backend` is where the named stores live. Every opened client is closed.
 * Afterwards, the stores named here can all be opened again (no lock was left behind) and the
 * store `held` (opened first, with a known pattern) still reads it.
 */
async function moduleTable(backend, prefix) {
  const n = (s) => `${prefix}-${s}`;
  const persistent = backend !== 'memory';
  const NAME_REFUSED = ['INVALID_ARGUMENT', 'INVALID_NAME'];
  const LONG_NAME = 'x'.repeat(10_000);
  const image4 = image([1, 2, 3, 4]);
  // A store that exists and is closed, one that is held open for the whole table, a copy stream.
  for (const s of ['closed', 'held', 'fresh', 'imported', 'streamed', 'src']) await destroy({ name: n(s), backend });
  await destroyMirror({ name: n('mirror'), backend, legs: [backend] });
  const closed = await open({ name: n('closed'), backend, blocks: 8 });
  await closed.close();
  const held = await open({ name: n('held'), backend, blocks: 8 });
  await held.write(0, image4.slice());
  await held.sync();
  const src = await open({ name: n('src'), backend, blocks: 8 });
  await src.write(0, image4.slice());
  await src.snapshot('s');
  const { chunks: stream } = await src.send();
  await src.close();
  const streamBytes = concat(stream);
  const handler = () => {};
  const ok = (client) => client?.close?.();

  const rows = [
    // open
    ['open()', () => open(), 'INVALID_ARGUMENT'],
    ['open(null)', () => open(null), 'INVALID_ARGUMENT'],
    ['open(5)', () => open(5), 'INVALID_ARGUMENT', 'options'],
    ["open('name')", () => open('name'), 'INVALID_ARGUMENT', 'options'],
    ['open([])', () => open([]), 'INVALID_ARGUMENT', 'options'],
    ['open({})', () => open({}), 'INVALID_ARGUMENT'],
    ['open({ name: 5 })', () => open({ name: 5, backend, blocks: 8 }), 'INVALID_ARGUMENT'],
    ['open({ name: null })', () => open({ name: null, backend, blocks: 8 }), 'INVALID_ARGUMENT'],
    ["open({ name: '' })", () => open({ name: '', backend, blocks: 8 }), NAME_REFUSED],
    // Names are free-form: one with a slash or a long one either works or is refused as a name.
    ["open({ name: 'a/b' })", () => open({ name: 'a/b', backend, blocks: 8 }), ['ok', ...NAME_REFUSED]],
    ["open({ name: 'x' x 10,000 })", () => open({ name: LONG_NAME, backend, blocks: 8 }), ['ok', ...NAME_REFUSED]],
    ["open({ backend: 'floppy' })", () => open({ name: n('fresh'), backend: 'floppy', blocks: 8 }), 'INVALID_ARGUMENT'],
    ['open({ backend: 5 })', () => open({ name: n('fresh'), backend: 5, blocks: 8 }), 'INVALID_ARGUMENT'],
    ['open({ blockSize: 1000 })', () => open({ name: n('fresh'), backend, blockSize: 1000, blocks: 8 }), 'INVALID_BLOCK_SIZE'],
    ['open({ blockSize: 0 })', () => open({ name: n('fresh'), backend, blockSize: 0, blocks: 8 }), 'INVALID_BLOCK_SIZE'],
    ['open({ blockSize: 256 })', () => open({ name: n('fresh'), backend, blockSize: 256, blocks: 8 }), 'INVALID_BLOCK_SIZE'],
    ['open({ blockSize: 131072 })', () => open({ name: n('fresh'), backend, blockSize: 131072, blocks: 8 }), 'INVALID_BLOCK_SIZE'],
    ["open({ blockSize: '4096' })", () => open({ name: n('fresh'), backend, blockSize: '4096', blocks: 8 }), 'INVALID_ARGUMENT'],
    ['open({ blockSize: 2^40 })', () => open({ name: n('fresh'), backend, blockSize: 2 ** 40, blocks: 8 }), ['INVALID_ARGUMENT', 'INVALID_BLOCK_SIZE']],
    ['open({ blockSize: 4096.5 })', () => open({ name: n('fresh'), backend, blockSize: 4096.5, blocks: 8 }), 'INVALID_ARGUMENT'],
    ['open({ blocks: 0 })', () => open({ name: n('fresh'), backend, blocks: 0 }), 'INVALID_BLOCK_COUNT'],
    ['open({ blocks: -1 })', () => open({ name: n('fresh'), backend, blocks: -1 }), 'INVALID_ARGUMENT'],
    ['open({ blocks: 1.5 })', () => open({ name: n('fresh'), backend, blocks: 1.5 }), 'INVALID_ARGUMENT'],
    ["open({ blocks: '8' })", () => open({ name: n('fresh'), backend, blocks: '8' }), 'INVALID_ARGUMENT'],
    ['open({ blocks: NaN })', () => open({ name: n('fresh'), backend, blocks: NaN }), 'INVALID_ARGUMENT'],
    ['open({ blocks: Infinity })', () => open({ name: n('fresh'), backend, blocks: Infinity }), 'INVALID_ARGUMENT'],
    ['open({ blocks: 2^53 })', () => open({ name: n('fresh'), backend, blocks: 2 ** 53 }), 'INVALID_ARGUMENT'],
    ['open({ blocks: 2^40 }): past the block address limit', () => open({ name: n('fresh'), backend, blocks: 2 ** 40 }), 'INVALID_BLOCK_COUNT'],
    ['open({ blocks: 8n }): a BigInt count is accepted', () => open({ name: n('fresh'), backend, blocks: 8n }).then(async (s) => {
      const { blockCount } = await s.info();
      await s.close();
      await destroy({ name: n('fresh'), backend });
      return blockCount;
    }), 'ok', null, (v) => (v === 8 ? true : `blockCount ${v}`)],
    ['open({ name: new }): no blocks to create it', () => open({ name: n('fresh'), backend }), 'INVALID_ARGUMENT'],
    ["open({ readOnly: 'yes' })", () => open({ name: n('closed'), backend, readOnly: 'yes' }), 'INVALID_ARGUMENT'],
    ["open({ automaticPolicies: 'no' })", () => open({ name: n('closed'), backend, automaticPolicies: 'no' }), 'INVALID_ARGUMENT'],
    ['open({ policyTickMs: 5 })', () => open({ name: n('closed'), backend, policyTickMs: 5 }), 'INVALID_ARGUMENT'],
    ["open({ policyTickMs: '100' })", () => open({ name: n('closed'), backend, policyTickMs: '100' }), 'INVALID_ARGUMENT'],
    ['open({ policyTickMs: NaN })', () => open({ name: n('closed'), backend, policyTickMs: NaN }), 'INVALID_ARGUMENT'],
    ['open({ policyTickMs: Infinity })', () => open({ name: n('closed'), backend, policyTickMs: Infinity }), 'INVALID_ARGUMENT'],
    ["open({ transfer: 'yes' })", () => open({ name: n('closed'), backend, transfer: 'yes' }), 'INVALID_ARGUMENT', 'options.transfer'],
    ['open({ onPolicyRun: 5 })', () => open({ name: n('closed'), backend, onPolicyRun: 5 }), 'INVALID_ARGUMENT', 'options.onPolicyRun'],
    ["open({ onPolicyCopy: 'f' })", () => open({ name: n('closed'), backend, onPolicyCopy: 'f' }), 'INVALID_ARGUMENT', 'options.onPolicyCopy'],
    ['open({ onPolicyError: {} })', () => open({ name: n('closed'), backend, onPolicyError: {} }), 'INVALID_ARGUMENT', 'options.onPolicyError'],
    ['open({ extra: () => 1 }): cannot be cloned', () => open({ name: n('closed'), backend, extra: () => 1 }), 'INVALID_ARGUMENT'],
    // (A memory store ends with its worker: 'closed' exists only on OPFS and IndexedDB.)
    ...(persistent
      ? [
          ['open({ blocks: 16 }) of a store of 8 blocks', () => open({ name: n('closed'), backend, blocks: 16 }), ['INVALID_ARGUMENT', 'INVALID_BLOCK_COUNT']],
          ['open({ blockSize: 512 }) of a store of 4096-byte blocks', () => open({ name: n('closed'), backend, blockSize: 512 }), ['INVALID_ARGUMENT', 'INVALID_BLOCK_SIZE']],
          ['open(closed)', () => open({ name: n('closed'), backend }).then(ok), 'ok'],
        ]
      : []),
    ['open(held): the store is open', () => open({ name: n('held'), backend }), 'LOCKED'],
    ...(backend === 'memory'
      ? [["open({ readOnly: true }) on memory", () => open({ name: n('closed'), backend, readOnly: true }), 'INVALID_ARGUMENT']]
      : [["open({ readOnly: true }) of a missing store", () => open({ name: n('nothing'), backend, readOnly: true }), 'NOT_A_STORE']]),

    // destroy
    ['destroy()', () => destroy(), 'INVALID_ARGUMENT'],
    ['destroy(null)', () => destroy(null), 'INVALID_ARGUMENT'],
    ['destroy(5)', () => destroy(5), 'INVALID_ARGUMENT', 'options'],
    ['destroy({ name: 5 })', () => destroy({ name: 5, backend }), 'INVALID_ARGUMENT'],
    ["destroy({ name: '' })", () => destroy({ name: '', backend }), NAME_REFUSED],
    ["destroy({ backend: 'floppy' })", () => destroy({ name: n('closed'), backend: 'floppy' }), 'INVALID_ARGUMENT'],
    ['destroy(held): the store is open', () => destroy({ name: n('held'), backend }), 'LOCKED'],
    ['destroy({ extra: () => 1 }): cannot be cloned', () => destroy({ name: n('nothing'), backend, extra: () => 1 }), ['INVALID_ARGUMENT', 'ok']],

    // importImage
    ['importImage(null, image)', () => importImage(null, image4), 'INVALID_ARGUMENT'],
    ['importImage(5, image)', () => importImage(5, image4), 'INVALID_ARGUMENT', 'options'],
    ['importImage({ name }, null)', () => importImage({ name: n('imported'), backend }, null), 'INVALID_ARGUMENT', 'source'],
    ['importImage({ name }, undefined)', () => importImage({ name: n('imported'), backend }), 'INVALID_ARGUMENT', 'source'],
    ['importImage({ name }, 5)', () => importImage({ name: n('imported'), backend }, 5), 'INVALID_ARGUMENT', 'source'],
    ["importImage({ name }, 'abc')", () => importImage({ name: n('imported'), backend }, 'abc'), 'INVALID_ARGUMENT', 'source'],
    ['importImage({ name }, {})', () => importImage({ name: n('imported'), backend }, {}), 'INVALID_ARGUMENT', 'source'],
    ['importImage({ name }, [5])', () => importImage({ name: n('imported'), backend }, [5]), 'INVALID_ARGUMENT'],
    ['importImage({ name }, new Uint16Array(2048))', () => importImage({ name: n('imported'), backend }, new Uint16Array(2048)), 'INVALID_ARGUMENT'],
    ['importImage({ name }, new Uint8Array(0))', () => importImage({ name: n('imported'), backend }, new Uint8Array(0)), ['IMAGE_SIZE', 'INVALID_ARGUMENT']],
    ['importImage({ name }, 100 bytes)', () => importImage({ name: n('imported'), backend }, new Uint8Array(100)), ['IMAGE_SIZE', 'NOT_WHOLE_BLOCKS']],
    ['importImage({ name }, a detached Uint8Array)', () => importImage({ name: n('imported'), backend }, detachedByClone()), 'INVALID_ARGUMENT'],
    ['importImage({ name, blockSize: 1000 }, image)', () => importImage({ name: n('imported'), backend, blockSize: 1000 }, image4), 'INVALID_BLOCK_SIZE'],
    ["importImage({ name, blockSize: 'x' }, image)", () => importImage({ name: n('imported'), backend, blockSize: 'x' }, image4), 'INVALID_ARGUMENT'],
    ["importImage({ name, expectedBytes: 'x' }, image)", () => importImage({ name: n('imported'), backend, expectedBytes: 'x' }, image4), 'INVALID_ARGUMENT'],
    ['importImage({ name, expectedBytes: -1 }, image)', () => importImage({ name: n('imported'), backend, expectedBytes: -1 }, image4), 'INVALID_ARGUMENT'],
    ['importImage({ name, expectedBytes: 8192 }, 16 KiB)', () => importImage({ name: n('imported'), backend, expectedBytes: 8192 }, image4), 'IMAGE_SIZE'],
    ["importImage({ name, transfer: 'yes' }, image)", () => importImage({ name: n('imported'), backend, transfer: 'yes' }, image4).then(ok), 'INVALID_ARGUMENT', 'options.transfer'],
    ["importImage({ name, backend: 'floppy' }, image)", () => importImage({ name: n('imported'), backend: 'floppy' }, image4), 'INVALID_ARGUMENT'],
    ["importImage({ name: '' }, image)", () => importImage({ name: '', backend }, image4), NAME_REFUSED],
    ['importImage({ name }, image, 5)', () => importImage({ name: n('imported'), backend }, image4, 5), 'INVALID_ARGUMENT', 'handlers'],
    ['importImage({ name }, image, { onProgress: 5 })', () => importImage({ name: n('imported'), backend }, image4, { onProgress: 5 }), 'INVALID_ARGUMENT', 'handlers.onProgress'],
    ['importImage(held, image)', () => importImage({ name: n('held'), backend }, image4), 'LOCKED'],
    ...(persistent ? [['importImage(closed, image): exists', () => importImage({ name: n('closed'), backend }, image4), 'ALREADY_EXISTS']] : []),
    ['importImage({ name }, an iterable that throws)', () => importImage({ name: n('imported'), backend }, { *[Symbol.iterator]() { throw new Error('the source broke'); } }), 'ANY'],
    ['importImage({ name }, image): works afterwards', () => importImage({ name: n('imported'), backend }, image4, { onProgress: handler }).then(async (s) => {
      const read = await s.read(0, 4);
      await s.close();
      await destroy({ name: n('imported'), backend });
      return same(read, image4);
    }), 'ok', null, (v) => v],

    // importStream
    ['importStream(null, stream)', () => importStream(null, streamBytes), 'INVALID_ARGUMENT'],
    ['importStream({ name }, null)', () => importStream({ name: n('streamed'), backend }, null), 'INVALID_ARGUMENT', 'source'],
    ['importStream({ name }, 5)', () => importStream({ name: n('streamed'), backend }, 5), 'INVALID_ARGUMENT', 'source'],
    ['importStream({ name }, 10 garbage bytes)', () => importStream({ name: n('streamed'), backend }, new Uint8Array(10).fill(9)), 'BAD_STREAM'],
    ['importStream({ name }, new Uint8Array(0))', () => importStream({ name: n('streamed'), backend }, new Uint8Array(0)), ['BAD_STREAM', 'INVALID_ARGUMENT']],
    ['importStream({ name }, a detached Uint8Array)', () => importStream({ name: n('streamed'), backend }, detachedByClone()), 'INVALID_ARGUMENT'],
    ['importStream({ name }, [5])', () => importStream({ name: n('streamed'), backend }, [5]), 'INVALID_ARGUMENT'],
    ["importStream({ name, transfer: 'yes' }, stream)", () => importStream({ name: n('streamed'), backend, transfer: 'yes' }, streamBytes).then(ok), 'INVALID_ARGUMENT', 'options.transfer'],
    ['importStream({ name }, stream, 5)', () => importStream({ name: n('streamed'), backend }, streamBytes, 5), 'INVALID_ARGUMENT', 'handlers'],
    ['importStream({ name }, stream, { onProgress: 5 })', () => importStream({ name: n('streamed'), backend }, streamBytes, { onProgress: 5 }), 'INVALID_ARGUMENT', 'handlers.onProgress'],
    ['importStream(held, stream)', () => importStream({ name: n('held'), backend }, streamBytes), 'LOCKED'],
    ...(persistent ? [['importStream(closed, stream): exists', () => importStream({ name: n('closed'), backend }, streamBytes), 'ALREADY_EXISTS']] : []),
    ['importStream({ name }, stream): works afterwards', () => importStream({ name: n('streamed'), backend }, stream).then(async (s) => {
      const volumes = await s.volumes();
      const snap = volumes.find((v) => v.kind === 'snapshot');
      const read = await s.readAt(snap.id, 0, 4);
      await s.close();
      await destroy({ name: n('streamed'), backend });
      return same(read, image4);
    }), 'ok', null, (v) => v],

    // openMirror / destroyMirror
    ['openMirror()', () => openMirror(), 'INVALID_ARGUMENT'],
    ['openMirror(5)', () => openMirror(5), 'INVALID_ARGUMENT', 'options'],
    ['openMirror({ name }): no legs', () => openMirror({ name: n('mirror'), backend, blocks: 8 }), 'INVALID_ARGUMENT'],
    ['openMirror({ legs: [] })', () => openMirror({ name: n('mirror'), backend, legs: [], blocks: 8 }), 'INVALID_ARGUMENT'],
    ["openMirror({ legs: 'memory' })", () => openMirror({ name: n('mirror'), backend, legs: 'memory', blocks: 8 }), 'INVALID_ARGUMENT'],
    ["openMirror({ legs: ['floppy'] })", () => openMirror({ name: n('mirror'), backend, legs: ['floppy'], blocks: 8 }), 'INVALID_ARGUMENT'],
    ['openMirror({ legs: [5] })', () => openMirror({ name: n('mirror'), backend, legs: [5], blocks: 8 }), 'INVALID_ARGUMENT'],
    ['openMirror({ name: 5 })', () => openMirror({ name: 5, backend, legs: [backend], blocks: 8 }), 'INVALID_ARGUMENT'],
    ["openMirror({ name: '' })", () => openMirror({ name: '', backend, legs: [backend], blocks: 8 }), NAME_REFUSED],
    ["openMirror({ backend: 'floppy' })", () => openMirror({ name: n('mirror'), backend: 'floppy', legs: [backend], blocks: 8 }), 'INVALID_ARGUMENT'],
    ['openMirror({ blocks: -1 })', () => openMirror({ name: n('mirror'), backend, legs: [backend], blocks: -1 }), 'INVALID_ARGUMENT'],
    ['openMirror({ blocks: 0 })', () => openMirror({ name: n('mirror'), backend, legs: [backend], blocks: 0 }), 'INVALID_BLOCK_COUNT'],
    ["openMirror({ blocks: '8' })", () => openMirror({ name: n('mirror'), backend, legs: [backend], blocks: '8' }), 'INVALID_ARGUMENT'],
    ['openMirror({ blockSize: 3 })', () => openMirror({ name: n('mirror'), backend, legs: [backend], blockSize: 3, blocks: 8 }), 'INVALID_BLOCK_SIZE'],
    ["openMirror({ compactOnSnapshot: 'x' })", () => openMirror({ name: n('mirror'), backend, legs: [backend], blocks: 8, compactOnSnapshot: 'x' }), 'INVALID_ARGUMENT'],
    ['openMirror({ compactOnSnapshot: { keepSnapshots: -1 } })', () => openMirror({ name: n('mirror'), backend, legs: [backend], blocks: 8, compactOnSnapshot: { keepSnapshots: -1 } }), 'INVALID_ARGUMENT'],
    ['openMirror({ compactOnSnapshot: 5 })', () => openMirror({ name: n('mirror'), backend, legs: [backend], blocks: 8, compactOnSnapshot: 5 }), 'INVALID_ARGUMENT'],
    ['openMirror({ transfer: 5 })', () => openMirror({ name: n('mirror'), backend, legs: [backend], blocks: 8, transfer: 5 }), 'INVALID_ARGUMENT', 'options.transfer'],
    ['openMirror({ extra: () => 1 }): cannot be cloned', () => openMirror({ name: n('mirror'), backend, legs: [backend], blocks: 8, extra: () => 1 }), 'INVALID_ARGUMENT'],
    ['openMirror(held): the name is a store held open', () => openMirror({ name: n('held'), backend, legs: [backend], blocks: 8 }), 'LOCKED'],
    ['openMirror({ name, legs, blocks: 8 })', () => openMirror({ name: n('mirror'), backend, legs: [backend], blocks: 8 }).then(ok), 'ok'],
    ['destroyMirror()', () => destroyMirror(), 'INVALID_ARGUMENT'],
    ['destroyMirror(5)', () => destroyMirror(5), 'INVALID_ARGUMENT', 'options'],
    ['destroyMirror({ name, legs: 5 })', () => destroyMirror({ name: n('mirror'), backend, legs: 5 }), 'INVALID_ARGUMENT'],
    ['destroyMirror({ name }): no legs', () => destroyMirror({ name: n('mirror'), backend }), 'INVALID_ARGUMENT'],
    ['destroyMirror({ name: 5, legs })', () => destroyMirror({ name: 5, backend, legs: [backend] }), 'INVALID_ARGUMENT'],
  ];

  const results = [];
  for (const [id, call, expect, arg, check] of rows) {
    const outcome = await attempt(call, { boundMs: 10_000 });
    const r = { id, expect, arg: arg ?? null, ...record(outcome) };
    if (outcome.ok && check) r.check = check(outcome.value);
    // A call that should have failed but opened something: close it and destroy what it
    // created, so later rows are fair.
    if (outcome.ok) {
      if (outcome.value && typeof outcome.value.close === 'function') await outcome.value.close().catch(() => {});
      for (const s of [n('fresh'), n('imported'), n('streamed'), 'a/b', LONG_NAME]) await destroy({ name: s, backend }).catch(() => {});
      await destroyMirror({ name: n('mirror'), backend, legs: [backend] }).catch(() => {});
    }
    results.push(r);
  }

  // Nothing was left locked, and the held store reads its pattern.
  const after = {};
  after.held = same(await held.read(0, 4), image4);
  await held.close();
  const reopen = [];
  for (const s of ['closed', 'held']) {
    // A memory store lives in its worker: it is gone once closed, so it is created again.
    const geometry = persistent ? {} : { blocks: 8 };
    const o = await attempt(() => open({ name: n(s), backend, ...geometry }).then((x) => x.close()), { boundMs: 10_000 });
    reopen.push([s, o.ok ? 'ok' : o.error?.code ?? (o.timedOut ? 'timed out' : 'threw')]);
  }
  after.reopen = reopen;
  for (const s of ['closed', 'held', 'fresh', 'imported', 'streamed', 'src']) await destroy({ name: n(s), backend }).catch(() => {});
  await destroyMirror({ name: n('mirror'), backend, legs: [backend] }).catch(() => {});
  return { rows: results, after };
}

/**
 * The repro: a memory store of 2^20 blocks (4 GiB), a 2 GiB read (LIMIT_EXCEEDED, the
 * handle keeps working), then a streamed read of `streamBlocks` blocks (80 MiB) checked block by
 * block, and the other limits of large stores.
 */
async function largeStore(backend, name, streamBlocks) {
  if (backend !== 'memory') await destroy({ name, backend });
  const s = await open({ name, backend, blocks: 1 << 20 });
  const results = [];
  const row = async (id, call, expect, { post, check, boundMs = 20_000 } = {}) => {
    const outcome = await attempt(call, { post, boundMs });
    const r = { id, expect, arg: null, ...record(outcome) };
    if (outcome.ok && check) r.check = await check(outcome.value);
    results.push(r);
    return outcome;
  };
  try {
    // Sprinkled blocks across the streamed range (chunk edges included), the rest zeros.
    const marked = [0, 1, 255, 256, 257, 4095, 4096, 10_000, 16_383, 16_384, streamBlocks - 2, streamBlocks - 1];
    const stampOf = new Map(marked.map((a, i) => [a, 500 + i]));
    await s.writeBatch(marked.map((a) => [a, fill(stampOf.get(a))]));
    const { head } = await s.info();
    await row('read(0, 1 << 19): 2 GiB', () => s.read(0, 1 << 19), 'LIMIT_EXCEEDED');
    await row('read(0, 16385): 64 MiB + 4 KiB', () => s.read(0, 16385), 'LIMIT_EXCEEDED');
    await row('readAt(head, 0, 1 << 19)', () => s.readAt(head, 0, 1 << 19), 'LIMIT_EXCEEDED');
    await row('read(0, 1 << 20): the whole store', () => s.read(0, 1 << 20), 'LIMIT_EXCEEDED');
    await row('read(0, (1 << 20) + 1): past the end', () => s.read(0, (1 << 20) + 1), ['OUT_OF_RANGE', 'LIMIT_EXCEEDED']);
    await row('write(0, block) after the refused reads', () => s.write(2, fill(600)), 'ok');
    stampOf.set(2, 600);
    await row('read(0, 4) after the refused reads', () => s.read(0, 4), 'ok', {
      check: (v) => same(v, image([0, 1, 2, 3].map((a) => stampOf.get(a) ?? 0))),
    });
    await row('read(0, 16384): exactly 64 MiB', () => s.read(0, 16384), 'ok', {
      check: (v) => (v.length === 64 << 20 ? same(v.subarray(4095 * BLOCK, 4097 * BLOCK), image([stampOf.get(4095), stampOf.get(4096)])) : `length ${v.length}`),
    });
    await row('exportImage(head) without onChunk: 4 GiB', () => s.exportImage(head), 'LIMIT_EXCEEDED');
    await row('locate(head, 0, 65537)', () => s.locate(head, 0, 65537), ['LIMIT_EXCEEDED', 'INVALID_ARGUMENT']);
    await row('locate(head, 0, 65536)', () => s.locate(head, 0, 65536), 'ok', { check: (v) => (v.length === 65536 ? true : `${v.length}`) });
    await row('writeBatch(17 x 1 MiB): 17 MiB', () => s.writeBatch(Array.from({ length: 17 }, (_, i) => [20_000 + i * 256, new Uint8Array(1 << 20).fill(i + 1)])), 'BATCH_TOO_LARGE');
    await row('read(20000, 1): the refused batch wrote nothing', () => s.read(20_000, 1), 'ok', { check: (v) => (v.every((x) => x === 0) ? true : 'block 20000 was written') });
    await row('log({ withData: true, batch: 4096 }) of the store', () => logRun(s, { withData: true, batch: 4096 }), 'ok', {
      check: (v) => (v.length === marked.length + 1 ? true : `${v.length} entries`),
    });

    // readStream over the range: every block checked as it arrives, the chunk sizes bounded.
    const streamCheck = async (stream, stamps) => {
      let addr = 0;
      let chunks = 0;
      let largest = 0;
      let pending = new Uint8Array(0);
      for await (const chunk of stream) {
        chunks++;
        largest = Math.max(largest, chunk.length);
        const all = pending.length ? concat([pending, chunk]) : chunk;
        let at = 0;
        for (; at + BLOCK <= all.length; at += BLOCK, addr++) {
          const want = stamps.get(addr) ?? 0;
          const got = all.subarray(at, at + BLOCK);
          if (firstDifference(got, fill(want)) !== -1) return `block ${addr} differs`;
        }
        pending = all.slice(at);
      }
      if (addr !== streamBlocks || pending.length) return `${addr} blocks and ${pending.length} bytes streamed, expected ${streamBlocks} blocks`;
      if (largest > (1 << 20) + BLOCK) return `a chunk of ${largest} bytes`;
      return { chunks, largest };
    };
    await row(`readStream(0, ${streamBlocks}): ${(streamBlocks * BLOCK) >> 20} MiB of the head`, () => s.readStream(0, streamBlocks), 'ok', {
      post: (stream) => streamCheck(stream, stampOf),
      check: (v) => (typeof v === 'string' ? v : true),
      boundMs: 120_000,
    });
    const snap = await s.snapshot('big');
    const snapStamps = new Map(stampOf);
    await s.write(0, fill(700));
    await s.write(16_384, fill(701));
    await row(`readStream(0, ${streamBlocks}, { volume: snapshot })`, () => s.readStream(0, streamBlocks, { volume: snap }), 'ok', {
      post: (stream) => streamCheck(stream, snapStamps),
      check: (v) => (typeof v === 'string' ? v : true),
      boundMs: 120_000,
    });
    await row('readStream((1 << 20) - 1, 2): past the end', () => s.readStream((1 << 20) - 1, 2), 'OUT_OF_RANGE', { post: streamPost });
    await row('read(16384, 1) still works', () => s.read(16_384, 1), 'ok', { check: (v) => same(v, fill(701)) });
  } finally {
    await s.close();
    await destroy({ name, backend }).catch(() => {});
  }
  return { rows: results };
}

/**
 * A diff of more than 1,048,576 extents (LIMIT_EXCEEDED): 1,048,577 single blocks with gaps
 * between them, in a memory store of 512-byte blocks. Heavy (512 MiB written).
 */
async function diffLimit(name) {
  const size = 512;
  const extents = (1 << 20) + 1;
  const s = await open({ name, backend: 'memory', blockSize: size, blocks: 2 * extents });
  const started = performance.now();
  try {
    // Views into a larger buffer are copied, not transferred (the same buffer transferred
    // twice is refused: see the writeBatch row of the same Uint8Array twice).
    const backing = new Uint8Array(2 * size).fill(1);
    const data = backing.subarray(0, size);
    const perBatch = (16 << 20) / size / 2;
    for (let first = 0; first < extents; first += perBatch) {
      const batch = [];
      for (let i = first; i < Math.min(extents, first + perBatch); i++) batch.push([2 * i, data]);
      await s.writeBatch(batch);
    }
    const { head } = await s.info();
    const outcome = await attempt(() => s.diff(0, head), { boundMs: 60_000 });
    const after = await attempt(() => s.read(0, 2));
    return {
      rows: [
        { id: `diff(0, head) with ${extents} extents`, expect: 'LIMIT_EXCEEDED', arg: null, ...record(outcome) },
        { id: 'read(0, 2) afterwards', expect: 'ok', arg: null, ...record(after), check: after.ok ? same(after.value, concat([data, new Uint8Array(size)])) : true },
      ],
      ms: Math.round(performance.now() - started),
    };
  } finally {
    await s.close();
  }
}

/**
 * The worker killed under an open store (`how`: 'error' dispatches the worker's error event, as
 * the browser does when a worker fails; 'terminate' ends it outright), with a call in flight.
 * Then: calls fail with WORKER_ERROR within the bound, close() resolves, and the store opens
 * again without a reload, with its synced data.
 */
async function workerDeath(backend, name, how, boundMs = 5000) {
  await destroy({ name, backend });
  const before = workers.length;
  const s = await open({ name, backend, blocks: 64 });
  const worker = workers[before];
  const pattern = [1, 2, 3, 4];
  await s.write(0, image(pattern));
  await s.sync();
  const results = [];
  const push = (id, expect, outcome) => results.push({ id, expect, arg: null, ...record(outcome) });
  // A call in flight: a long write is queued, then the worker dies.
  const inFlight = attempt(() => s.write(8, new Uint8Array(32 * BLOCK).fill(9)), { boundMs });
  if (how === 'error') worker.dispatchEvent(new ErrorEvent('error', { message: 'simulated crash' }));
  else worker.terminate();
  push('write(8, 32 blocks) in flight', ['ok', 'WORKER_ERROR'], await inFlight);
  push('read(0, 4) after the death', 'WORKER_ERROR', await attempt(() => s.read(0, 4), { boundMs }));
  push('write(0, block) after the death', 'WORKER_ERROR', await attempt(() => s.write(0, fill(5)), { boundMs }));
  push('read(null, 1) after the death: a bad argument', ['INVALID_ARGUMENT', 'WORKER_ERROR'], await attempt(() => s.read(null, 1), { boundMs }));
  push('log().next() after the death', 'WORKER_ERROR', await attempt(() => logRun(s), { boundMs }));
  push('close()', 'ok', await attempt(() => s.close(), { boundMs }));
  push('close() again', 'ok', await attempt(() => s.close(), { boundMs }));
  push('read(0, 4) after close()', ['CLOSED', 'WORKER_ERROR'], await attempt(() => s.read(0, 4), { boundMs }));
  let reopened = null;
  const again = await attempt(() => open({ name, backend, blocks: 64 }), { boundMs: 10_000 });
  push('open() the store again without a reload', 'ok', again);
  if (again.ok) {
    const client = again.value;
    if (backend !== 'memory') {
      const read = await attempt(() => client.read(0, 4));
      reopened = read.ok ? same(read.value, image(pattern)) : read.error ?? 'timed out';
    } else {
      reopened = true;
    }
    await client.close();
  }
  await destroy({ name, backend }).catch(() => {});
  return { rows: results, reopened };
}

/**
 * Memory exhaustion in the engine: a memory store written 16 MiB at a time until its wasm memory
 * (4 GiB at most) runs out, a genuine trap. Expects LIMIT_EXCEEDED/QUOTA_EXCEEDED or WORKER_ERROR
 * from a write, never a hang; then the store opens again.
 */
async function exhaustMemory(name, maxMiB) {
  const s = await open({ name, backend: 'memory', blocks: 1 << 28 });
  // Not zeros: a write of zero blocks is a zero extent (metadata), which never fills memory.
  const data = new Uint8Array(16 << 20).fill(0x5a);
  let written = 0;
  let last = null;
  const started = performance.now();
  for (let i = 0; written < maxMiB; i++) {
    const o = await attempt(() => s.write(i * 4096, data.slice()), { boundMs: 30_000 });
    if (!o.ok) {
      last = o;
      break;
    }
    written += 16;
  }
  const rows = [];
  const push = (id, expect, outcome) => rows.push({ id, expect, arg: null, ...record(outcome) });
  if (last === null) {
    rows.push({ id: `${written} MiB written without a failure`, expect: 'WORKER_ERROR', arg: null, ...record({ ok: true }) });
  } else {
    push(`the write after ${written} MiB`, ['WORKER_ERROR', 'QUOTA_EXCEEDED', 'LIMIT_EXCEEDED'], last);
    const dead = last.error?.code === 'WORKER_ERROR';
    push('read(0, 1) afterwards', dead ? 'WORKER_ERROR' : 'ok', await attempt(() => s.read(0, 1)));
  }
  push('close()', 'ok', await attempt(() => s.close(), { boundMs: 30_000 }));
  const again = await attempt(() => open({ name, backend: 'memory', blocks: 8 }), { boundMs: 10_000 });
  push('open() the store again without a reload', 'ok', again);
  if (again.ok) await again.value.close();
  return { rows, writtenMiB: written, ms: Math.round(performance.now() - started) };
}

/** One open() (e.g. while the test makes the worker's files fail to load). */
async function tryOpen(backend, name) {
  const outcome = await attempt(() => open({ name, backend, blocks: 8 }), { boundMs: 10_000 });
  if (outcome.ok) await outcome.value.close();
  return { id: `open({ name: ${JSON.stringify(name)}, backend: ${JSON.stringify(backend)} })`, arg: null, ...record(outcome) };
}

/** What the package's entry points export. */
function exportsOf() {
  const names = ['READ_BYTES_MAX', 'LOG_BATCH_MAX', 'BATCH_WRITES_MAX'];
  return {
    index: Object.fromEntries(names.map((k) => [k, strata[k] ?? null])),
    client: Object.fromEntries(names.map((k) => [k, clientModule[k] ?? null])),
  };
}

window.boundary = {
  async table(kind, backend, name, legs, full) {
    return runTable(kind, backend, name, legs, full);
  },
  closedTable,
  moduleTable,
  largeStore,
  diffLimit,
  workerDeath,
  exhaustMemory,
  exportsOf,
  tryOpen,
  workerCount: () => workers.length,
};

document.getElementById('status').textContent = 'ready';
