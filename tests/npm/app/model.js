// Model-based scenarios of the scratch app (model.html), called by tests/npm/model.test.mjs
// through `window.model`: a seeded random sequence of client operations (write, writeBatch,
// sync, snapshot, read, readAt, readStream, compact, merge, delete, rollback, diff, log) run
// against the installed package's client and, side by side, against a small model of the
// volumes: the head's image, each snapshot's image by id, the baseline's image. Every result is
// compared with the model; every few dozen operations every volume is read whole and the
// volume list compared too.
//
// A run is cut into segments so the test can reload the page between them: the model state
// (plain JSON) goes back to node and comes back to the next segment.
import { StrataError, destroy, destroyMirror, open, openMirror } from 'strata-engine';

const BLOCK = 4096;
/** Calls that do not settle within this long fail the run. */
const BOUND_MS = 20_000;
/** Every this many operations, every volume is read whole and compared. */
const FULL_CHECK_EVERY = 60;

// ----- Blocks ------------------------------------------------------------------------------------

/** The block of stamp `stamp` (0: zeros): incompressible bytes, different for each stamp. */
function fill(stamp) {
  const out = new Uint8Array(BLOCK);
  if (stamp === 0) return out;
  let x = (Math.imul(stamp, 2654435761) ^ 0x9e3779b9) >>> 0 || 1;
  for (let i = 0; i < BLOCK; i += 4) {
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

/** Blocks of `stamps` as one buffer. */
function bytesOf(stamps) {
  const out = new Uint8Array(stamps.length * BLOCK);
  stamps.forEach((s, i) => s !== 0 && out.set(fill(s), i * BLOCK));
  return out;
}

/** The first block of `actual` that is not `stamps` (relative), or -1. */
function firstWrongBlock(actual, stamps) {
  if (!(actual instanceof Uint8Array)) return `not a Uint8Array but ${Object.prototype.toString.call(actual)}`;
  if (actual.length !== stamps.length * BLOCK) return `${actual.length} bytes, expected ${stamps.length * BLOCK}`;
  for (let b = 0; b < stamps.length; b++) {
    const want = fill(stamps[b]);
    const got = actual.subarray(b * BLOCK, (b + 1) * BLOCK);
    for (let i = 0; i < BLOCK; i++) if (got[i] !== want[i]) return b;
  }
  return -1;
}

/** The extents where two images differ (what diff must list). */
function extentsBetween(a, b) {
  const out = [];
  for (let addr = 0; addr < a.length; addr++) {
    if (a[addr] === b[addr]) continue;
    const last = out[out.length - 1];
    if (last && last.addr + last.blocks === addr) last.blocks++;
    else out.push({ addr, blocks: 1 });
  }
  return out;
}

// ----- Randomness --------------------------------------------------------------------------------

/** mulberry32, its state kept in the model so a run resumes after a reload. */
function random(state) {
  state.rng = (state.rng + 0x6d2b79f5) >>> 0;
  let t = state.rng;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const below = (state, n) => Math.floor(random(state) * n);
const pick = (state, list) => list[below(state, list.length)];

// ----- The run ---------------------------------------------------------------------------------

class ModelFailure extends Error {
  constructor(message, details) {
    super(message);
    this.details = details;
  }
}

function describeError(error) {
  return {
    isStrataError: error instanceof StrataError,
    isError: error instanceof Error,
    code: error?.code ?? null,
    message: String(error?.message ?? error),
  };
}

/** Awaits `promise` within the bound; resolves to { ok, value } or { ok: false, error }. */
async function settle(promise, what) {
  if (!(promise instanceof Promise)) throw new ModelFailure(`${what} did not return a Promise`);
  let timer;
  const bound = new Promise((resolve) => {
    timer = setTimeout(resolve, BOUND_MS, 'timeout');
  });
  const outcome = await Promise.race([
    promise.then(
      (value) => ({ ok: true, value }),
      (error) => ({ ok: false, error }),
    ),
    bound,
  ]);
  clearTimeout(timer);
  if (outcome === 'timeout') throw new ModelFailure(`${what} did not settle within ${BOUND_MS} ms`);
  if (!outcome.ok && !(outcome.error instanceof StrataError)) {
    throw new ModelFailure(`${what} rejected with a non-StrataError`, describeError(outcome.error));
  }
  return outcome;
}

/** `promise` must resolve; its value. */
async function must(promise, what) {
  const outcome = await settle(promise, what);
  if (!outcome.ok) throw new ModelFailure(`${what} rejected`, describeError(outcome.error));
  return outcome.value;
}

/** `promise` must reject with one of `codes`. */
async function refused(promise, what, codes) {
  const outcome = await settle(promise, what);
  if (outcome.ok) throw new ModelFailure(`${what} resolved; expected ${codes.join(' or ')}`);
  if (!codes.includes(outcome.error.code)) {
    throw new ModelFailure(`${what} rejected with ${outcome.error.code}; expected ${codes.join(' or ')}`, describeError(outcome.error));
  }
  return outcome.error;
}

/** The model's images by visible volume id: the baseline (0), the snapshots and the head. */
function images(state) {
  const out = new Map([[0, state.baseline]]);
  for (const [id, v] of Object.entries(state.vols)) out.set(Number(id), v.stamps);
  out.set(state.head.id, state.head.stamps);
  return out;
}

const snapshotIds = (state) => Object.keys(state.vols).map(Number);

/** The head's ancestors, nearest first (deleted ones included), down to the baseline. */
function headChain(state) {
  const out = [];
  for (let at = state.head.parent; at !== 0 && at !== undefined && at !== null && out.length <= 10_000; at = state.parents[at]) out.push(at);
  return out;
}

/** The volume list the model expects: [id, kind, label], by id. */
function expectedVolumes(state) {
  const list = [[0, 'baseline', null]];
  for (const [id, v] of Object.entries(state.vols)) list.push([Number(id), 'snapshot', v.label]);
  list.push([state.head.id, 'head', null]);
  return list.sort((a, b) => a[0] - b[0]);
}

async function actualVolumes(client) {
  const volumes = await must(client.volumes(), 'volumes()');
  return volumes
    .map((v) => [v.id, v.kind, v.kind === 'snapshot' ? v.label : null])
    .sort((a, b) => a[0] - b[0]);
}

/** Every visible volume read whole and compared; the volume list and the head id too. */
async function fullCheck(ctx, why) {
  const { client, state } = ctx;
  const expected = JSON.stringify(expectedVolumes(state));
  const actual = JSON.stringify(await actualVolumes(client));
  if (expected !== actual) throw new ModelFailure(`${why}: volumes() differs from the model`, { expected, actual });
  const { head } = await must(client.info(), 'info()');
  if (head !== state.head.id) throw new ModelFailure(`${why}: info().head is ${head}, the model's head is ${state.head.id}`);
  for (const [id, stamps] of images(state)) {
    const reads = [[`readAt(${id}, 0, all)`, () => client.readAt(id, 0, state.blocks)]];
    // The head through read() too (on a mirror: from the primary; readAt: from the secondary).
    if (id === state.head.id) reads.push(['read(0, all)', () => client.read(0, state.blocks)]);
    for (const [what, call] of reads) {
      const wrong = firstWrongBlock(await must(call(), what), stamps);
      if (wrong !== -1) throw new ModelFailure(`${why}: ${what} differs from the model at block ${wrong}`, { volume: id, block: wrong });
    }
  }
  state.stats.fullChecks++;
}

function count(state, op, outcome) {
  const key = `${op}:${outcome}`;
  state.stats.ops[key] = (state.stats.ops[key] ?? 0) + 1;
  state.stats.total++;
}

/** A random block range [addr, n) mostly in the first 64 blocks, where writes land. */
function range(state, maxBlocks) {
  const hot = random(state) < 0.8;
  const span = hot ? Math.min(64, state.blocks) : state.blocks;
  const addr = below(state, span);
  const n = 1 + below(state, Math.min(maxBlocks, state.blocks - addr));
  return [addr, n];
}

function freshStamp(state) {
  state.counter += 1;
  return state.counter;
}

/** Stamps for a write of n blocks: fresh ones, or (sometimes) zeros, which diff must see as equal to unwritten. */
function writeStamps(state, n) {
  if (random(state) < 0.05) return new Array(n).fill(0);
  return Array.from({ length: n }, () => freshStamp(state));
}

function applyWrite(state, addr, stamps, seq) {
  for (let i = 0; i < stamps.length; i++) state.head.stamps[addr + i] = stamps[i];
  state.head.writes += 1;
  state.head.log.push({ seq, addr, stamps });
}

function checkSeq(state, seq, what) {
  if (typeof seq !== 'number' || !Number.isInteger(seq) || seq <= state.lastSeq) {
    throw new ModelFailure(`${what} resolved to sequence number ${seq}, not above the last one (${state.lastSeq})`);
  }
  state.lastSeq = seq;
}

/** The operations, each `(ctx) => description` (it applies the op and checks the result). */
const OPS = {
  async write(ctx) {
    const { client, state } = ctx;
    if (random(state) < 0.03) {
      // Past the end: refused, nothing written.
      const stamps = [freshStamp(state), freshStamp(state)];
      await refused(client.write(state.blocks - 1, bytesOf(stamps)), `write(${state.blocks - 1}, 2 blocks)`, ['OUT_OF_RANGE']);
      count(state, 'write', 'refused');
      return `write(${state.blocks - 1}, 2 blocks): OUT_OF_RANGE`;
    }
    const [addr, n] = range(state, 4);
    const stamps = writeStamps(state, n);
    const seq = await must(client.write(addr, bytesOf(stamps)), `write(${addr}, ${n} blocks)`);
    checkSeq(state, seq, 'write');
    applyWrite(state, addr, stamps, seq);
    count(state, 'write', 'ok');
    return `write(${addr}, ${n} blocks) = seq ${seq}`;
  },

  async writeBatch(ctx) {
    const { client, state } = ctx;
    const pairs = [];
    const k = 1 + below(state, 6);
    for (let i = 0; i < k; i++) {
      const [addr, n] = range(state, 3);
      pairs.push([addr, writeStamps(state, n)]);
    }
    if (random(state) < 0.04) {
      // One pair past the end: the whole batch is refused, nothing written.
      pairs.push([state.blocks, [freshStamp(state)]]);
      await refused(client.writeBatch(pairs.map(([a, s]) => [a, bytesOf(s)])), `writeBatch(${pairs.length} writes, the last past the end)`, ['OUT_OF_RANGE']);
      count(state, 'writeBatch', 'refused');
      return `writeBatch(${pairs.length} writes, the last past the end): OUT_OF_RANGE`;
    }
    const seq = await must(client.writeBatch(pairs.map(([a, s]) => [a, bytesOf(s)])), `writeBatch(${k} writes)`);
    checkSeq(state, seq, 'writeBatch');
    // One record: the first entry's sequence number; the entries follow in order.
    for (let i = 0; i < pairs.length; i++) {
      const [addr, stamps] = pairs[i];
      applyWrite(state, addr, stamps, seq + i);
    }
    state.head.writes -= pairs.length - 1;
    state.lastSeq = seq + pairs.length - 1;
    count(state, 'writeBatch', 'ok');
    return `writeBatch(${pairs.map(([a, s]) => `${a}+${s.length}`).join(' ')}) = seq ${seq}`;
  },

  async sync(ctx) {
    await must(ctx.client.sync(), 'sync()');
    count(ctx.state, 'sync', 'ok');
    return 'sync()';
  },

  async read(ctx) {
    const { client, state } = ctx;
    const [addr, n] = range(state, 64);
    const bytes = await must(client.read(addr, n), `read(${addr}, ${n})`);
    const wrong = firstWrongBlock(bytes, state.head.stamps.slice(addr, addr + n));
    if (wrong !== -1) throw new ModelFailure(`read(${addr}, ${n}) differs from the model's head at block ${addr + wrong}`);
    count(state, 'read', 'ok');
    return `read(${addr}, ${n})`;
  },

  async readAt(ctx) {
    const { client, state } = ctx;
    if (state.gone.length > 0 && random(state) < 0.1) {
      const id = pick(state, state.gone);
      await refused(client.readAt(id, 0, 1), `readAt(${id}) of a removed volume`, ['UNKNOWN_VOLUME']);
      count(state, 'readAt', 'refused');
      return `readAt(${id}, 0, 1): UNKNOWN_VOLUME (removed)`;
    }
    const all = [...images(state)];
    const [id, stamps] = pick(state, all);
    const [addr, n] = range(state, 64);
    const bytes = await must(client.readAt(id, addr, n), `readAt(${id}, ${addr}, ${n})`);
    const wrong = firstWrongBlock(bytes, stamps.slice(addr, addr + n));
    if (wrong !== -1) throw new ModelFailure(`readAt(${id}, ${addr}, ${n}) differs from the model at block ${addr + wrong}`);
    count(state, 'readAt', 'ok');
    return `readAt(${id}, ${addr}, ${n})`;
  },

  async readStream(ctx) {
    const { client, state } = ctx;
    const all = [...images(state)];
    const [id, stamps] = random(state) < 0.5 ? [null, state.head.stamps] : pick(state, all);
    const whole = random(state) < 0.5;
    const addr = whole ? 0 : below(state, state.blocks);
    const n = whole ? state.blocks : 1 + below(state, state.blocks - addr);
    const what = `readStream(${addr}, ${n}${id === null ? '' : `, { volume: ${id} }`})`;
    const stream = await must(id === null ? client.readStream(addr, n) : client.readStream(addr, n, { volume: id }), what);
    const chunks = [];
    const reading = (async () => {
      for await (const chunk of stream) chunks.push(chunk);
    })();
    const outcome = await settle(reading, `${what}: consuming`);
    if (!outcome.ok) throw new ModelFailure(`${what}: the stream failed`, describeError(outcome.error));
    const total = chunks.reduce((s, c) => s + c.length, 0);
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      bytes.set(c, at);
      at += c.length;
    }
    const wrong = firstWrongBlock(bytes, stamps.slice(addr, addr + n));
    if (wrong !== -1) throw new ModelFailure(`${what} differs from the model at block ${typeof wrong === 'number' ? addr + wrong : wrong}`);
    count(state, 'readStream', 'ok');
    return `${what}: ${chunks.length} chunks`;
  },

  async snapshot(ctx) {
    const { client, state } = ctx;
    const label = random(state) < 0.3 ? pick(state, ['daily', 'before upgrade', 'é-ünïcode', 'x']) : `s${state.opIndex}`;
    const result = await must(client.snapshot(label), `snapshot(${JSON.stringify(label)})`);
    const id = ctx.kind === 'mirror' ? result.volume : result;
    if (id !== state.head.id) throw new ModelFailure(`snapshot() returned ${id}; the head being sealed is ${state.head.id}`);
    state.vols[id] = { label, parent: state.head.parent, stamps: state.head.stamps.slice() };
    const { head } = await must(client.info(), 'info()');
    if (state.parents[head] !== undefined || head === id) throw new ModelFailure(`the new head's id ${head} was used before`);
    state.parents[head] = id;
    state.head = { id: head, parent: id, stamps: state.head.stamps.slice(), writes: 0, log: [] };
    count(state, 'snapshot', 'ok');
    return `snapshot(${JSON.stringify(label)}) = ${id}; head ${head}`;
  },

  async compact(ctx) {
    const { client, state } = ctx;
    const snaps = snapshotIds(state);
    if (snaps.length === 0 || random(state) < 0.1) {
      const id = random(state) < 0.5 ? 0 : state.head.id;
      await refused(client.compact(id), `compact(${id})`, ['INVALID_ARGUMENT']);
      count(state, 'compact', 'refused');
      return `compact(${id}): INVALID_ARGUMENT (${id === 0 ? 'baseline' : 'head'})`;
    }
    const id = pick(state, snaps);
    const report = await must(client.compact(id), `compact(${id})`);
    count(state, 'compact', 'ok');
    return `compact(${id}): kept ${report.blocksKept}, dropped ${report.blocksDropped}`;
  },

  async merge(ctx) {
    const { client, state } = ctx;
    const snaps = snapshotIds(state);
    if (snaps.length === 0) {
      await refused(client.merge(state.head.id), `merge(head ${state.head.id})`, ['INVALID_ARGUMENT']);
      count(state, 'merge', 'refused');
      return `merge(${state.head.id}): INVALID_ARGUMENT (head)`;
    }
    // Mostly the oldest snapshot the head descends from (the merge most likely allowed), else any.
    const line = headChain(state).filter((v) => state.vols[v]);
    const id = line.length > 0 && random(state) < 0.6 ? line[line.length - 1] : pick(state, snaps);
    const outcome = await settle(client.merge(id), `merge(${id})`);
    if (!outcome.ok) {
      // Refused when another branch grows from the baseline or a merged partition: allowed,
      // and nothing changes; never before the first rollback (the history is one line).
      if (outcome.error.code !== 'INVALID_ARGUMENT') throw new ModelFailure(`merge(${id}) rejected with ${outcome.error.code}`, describeError(outcome.error));
      if (!state.branched) throw new ModelFailure(`merge(${id}) was refused with a linear history`, describeError(outcome.error));
      count(state, 'merge', 'refused');
      return `merge(${id}): INVALID_ARGUMENT (${outcome.error.message})`;
    }
    if (!(Number.isInteger(outcome.value) && outcome.value >= 1)) throw new ModelFailure(`merge(${id}) resolved to ${outcome.value}`);
    // The chain from the baseline to `id` folds into the baseline: their ids name nothing.
    const chain = new Set();
    for (let at = id; at !== 0 && at !== undefined && at !== null; at = state.parents[at]) chain.add(at);
    state.baseline = state.vols[id].stamps.slice();
    for (const v of chain) {
      if (state.vols[v]) {
        delete state.vols[v];
        state.gone.push(v);
      }
    }
    for (const [v, p] of Object.entries(state.parents)) if (chain.has(p)) state.parents[v] = 0;
    for (const v of Object.values(state.vols)) if (chain.has(v.parent)) v.parent = 0;
    if (chain.has(state.head.parent)) state.head.parent = 0;
    count(state, 'merge', 'ok');
    return `merge(${id}) = ${outcome.value} partitions; gone: ${[...chain].join(',')}`;
  },

  async delete(ctx) {
    const { client, state } = ctx;
    const snaps = snapshotIds(state);
    if (snaps.length === 0 || random(state) < 0.1) {
      const [id, codes] = pick(state, [
        [0, ['INVALID_ARGUMENT']],
        [state.head.id, ['INVALID_ARGUMENT']],
        ...(state.gone.length ? [[pick(state, state.gone), ['UNKNOWN_VOLUME']]] : []),
      ]);
      await refused(client.delete(id), `delete(${id})`, codes);
      count(state, 'delete', 'refused');
      return `delete(${id}): ${codes[0]}`;
    }
    // Half the time a snapshot off the head's line (an old branch: merges grow possible again).
    const line = new Set(headChain(state));
    const off = snaps.filter((v) => !line.has(v));
    const id = off.length > 0 && random(state) < 0.5 ? pick(state, off) : pick(state, snaps);
    await must(client.delete(id), `delete(${id})`);
    delete state.vols[id];
    state.gone.push(id);
    count(state, 'delete', 'ok');
    return `delete(${id})`;
  },

  async rollback(ctx) {
    const { client, state } = ctx;
    if (random(state) < 0.05) {
      await refused(client.rollback(state.head.id, 'to-head'), `rollback(head ${state.head.id})`, ['INVALID_ARGUMENT']);
      count(state, 'rollback', 'refused');
      return `rollback(${state.head.id}): INVALID_ARGUMENT (head)`;
    }
    const to = pick(state, [0, ...snapshotIds(state)]);
    const label = random(state) < 0.3 ? undefined : `rb${state.opIndex}`;
    const newHead = await must(client.rollback(to, label), `rollback(${to}, ${JSON.stringify(label)})`);
    const old = state.head;
    let kept;
    if (old.writes > 0) {
      state.vols[old.id] = { label: label ?? 'before-rollback', parent: old.parent, stamps: old.stamps };
      kept = true;
    } else {
      state.gone.push(old.id);
      kept = false;
    }
    if (state.parents[newHead] !== undefined) throw new ModelFailure(`rollback's new head ${newHead} was used before`);
    state.parents[newHead] = to;
    const stamps = to === 0 ? state.baseline.slice() : state.vols[to].stamps.slice();
    state.head = { id: newHead, parent: to, stamps, writes: 0, log: [] };
    state.branched = true;
    // Which happened to the old head: the volume list says.
    const listed = (await actualVolumes(client)).find(([id]) => id === old.id);
    if (kept !== Boolean(listed)) {
      throw new ModelFailure(`rollback: the old head ${old.id} (${old.writes} writes) was ${listed ? 'kept' : 'dropped'}; the model ${kept ? 'keeps' : 'drops'} it`);
    }
    count(state, 'rollback', kept ? 'kept' : 'dropped');
    return `rollback(${to}, ${JSON.stringify(label)}) = head ${newHead}; old head ${old.id} ${kept ? 'kept' : 'dropped'}`;
  },

  async diff(ctx) {
    const { client, state } = ctx;
    const all = [...images(state)];
    const [a, sa] = pick(state, all);
    const [b, sb] = pick(state, all);
    const extents = await must(client.diff(a, b), `diff(${a}, ${b})`);
    const expected = extentsBetween(sa, sb);
    const got = JSON.stringify(extents.map((e) => ({ addr: e.addr, blocks: e.blocks })));
    if (got !== JSON.stringify(expected)) throw new ModelFailure(`diff(${a}, ${b}) differs from the model`, { got, expected: JSON.stringify(expected) });
    count(state, 'diff', 'ok');
    return `diff(${a}, ${b}): ${extents.length} extents`;
  },

  async log(ctx) {
    const { client, state } = ctx;
    const withData = random(state) < 0.3;
    const batch = 1 + below(state, 64);
    const generator = client.log({ withData, batch });
    const entries = [];
    const reading = (async () => {
      for await (const e of generator) entries.push(e);
    })();
    const outcome = await settle(reading, `log({ withData: ${withData}, batch: ${batch} })`);
    if (!outcome.ok) throw new ModelFailure('log() failed', describeError(outcome.error));
    // In sequence order. A compacted snapshot keeps the surviving runs of an entry as entries of
    // the same sequence number, in block order: equal numbers only so.
    for (let i = 1; i < entries.length; i++) {
      const [p, e] = [entries[i - 1], entries[i]];
      const split = e.seq === p.seq && e.volume === p.volume && e.volume !== state.head.id && e.addr >= p.addr + p.blocks;
      if (!(e.seq > p.seq || split)) {
        throw new ModelFailure(`log(): entry ${i} ${JSON.stringify([e.seq, e.volume, e.addr, e.blocks])} after ${JSON.stringify([p.seq, p.volume, p.addr, p.blocks])}`);
      }
    }
    // The head's entries are exactly the model's writes since the head was created.
    const head = entries.filter((e) => e.volume === state.head.id);
    const expected = state.head.log;
    if (head.length !== expected.length) throw new ModelFailure(`log(): ${head.length} entries of the head, the model has ${expected.length}`);
    for (let i = 0; i < head.length; i++) {
      const [e, m] = [head[i], expected[i]];
      if (e.seq !== m.seq || e.addr !== m.addr || e.blocks !== m.stamps.length) {
        throw new ModelFailure(`log(): head entry ${i} is ${JSON.stringify([e.seq, e.addr, e.blocks])}, the model's ${JSON.stringify([m.seq, m.addr, m.stamps.length])}`);
      }
      // An entry of zero blocks only is a zero extent: metadata, no data even when asked for.
      const allZero = m.stamps.every((s) => s === 0);
      if (e.zero !== allZero) throw new ModelFailure(`log(): head entry ${i} (seq ${e.seq}) has zero = ${e.zero}, the model's blocks are ${allZero ? '' : 'not '}all zeros`);
      if (e.zero && e.data !== null) throw new ModelFailure(`log(): zero extent ${i} (seq ${e.seq}) came with data`);
      if (withData && !e.zero && firstWrongBlock(e.data, m.stamps) !== -1) throw new ModelFailure(`log(): the data of head entry ${i} (seq ${e.seq}) differs`);
    }
    count(state, 'log', 'ok');
    return `log({ withData: ${withData}, batch: ${batch} }): ${entries.length} entries, ${head.length} of the head`;
  },
};

/** Weights of the operations; snapshots stop piling up past 12. */
function chooseOp(state) {
  const snaps = snapshotIds(state).length;
  const weights = {
    write: 26,
    writeBatch: 10,
    sync: 4,
    read: 12,
    readAt: 10,
    readStream: 2,
    snapshot: snaps >= 12 ? 0 : 7,
    compact: 3,
    merge: snaps >= 8 ? 6 : 2,
    delete: snaps >= 8 ? 7 : 3,
    // None in the first 50 operations: a linear history, where every merge must succeed.
    rollback: state.opIndex <= 50 ? 0 : 3,
    diff: 5,
    log: 2,
  };
  const total = Object.values(weights).reduce((s, w) => s + w, 0);
  let r = random(state) * total;
  for (const [op, w] of Object.entries(weights)) {
    if ((r -= w) < 0) return op;
  }
  return 'write';
}

async function openClient(spec, create) {
  const { kind, backend, legs, name, blocks } = spec;
  for (let attempt = 0; ; attempt++) {
    try {
      if (kind === 'mirror') return await openMirror({ name, backend, legs, ...(create ? { blocks } : {}) });
      return await open({ name, backend, ...(create ? { blocks } : {}) });
    } catch (error) {
      // The reloaded page's worker may still hold the lock for a moment.
      if (error?.code !== 'LOCKED' || create || attempt >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function destroyAll(spec) {
  if (spec.kind === 'mirror') await destroyMirror({ name: spec.name, backend: spec.backend, legs: spec.legs });
  else await destroy({ name: spec.name, backend: spec.backend });
}

/** The client this page holds between segments. */
let held = null;

/** Runs `count` operations; returns what the test needs. */
async function runOps(ctx, n) {
  const trace = [];
  const { state } = ctx;
  const started = performance.now();
  try {
    for (let i = 0; i < n; i++) {
      state.opIndex++;
      const op = chooseOp(state);
      const line = await OPS[op](ctx);
      trace.push(`#${state.opIndex} ${line}`);
      if (trace.length > 25) trace.shift();
      if (state.opIndex % FULL_CHECK_EVERY === 0) await fullCheck(ctx, `after op #${state.opIndex}`);
    }
    await fullCheck(ctx, `after op #${state.opIndex} (end of segment)`);
  } catch (error) {
    const failure = error instanceof ModelFailure ? { message: error.message, details: error.details ?? null } : { message: `the run threw: ${error?.stack ?? error}` };
    return { failure: { ...failure, op: state.opIndex, trace }, state, ms: Math.round(performance.now() - started) };
  }
  return { failure: null, state, ms: Math.round(performance.now() - started) };
}

window.model = {
  /**
   * Creates the store or mirror `spec` ({ kind, backend, legs, name, blocks, seed }), runs `n`
   * operations and keeps it open. Resolves to { failure, state, ms }.
   */
  async start(spec, n) {
    await destroyAll(spec);
    const client = await openClient(spec, true);
    held = client;
    const { head } = await client.info();
    const state = {
      spec,
      blocks: spec.blocks,
      rng: spec.seed >>> 0,
      counter: 0,
      opIndex: 0,
      lastSeq: 0,
      baseline: new Array(spec.blocks).fill(0),
      vols: {},
      parents: { [head]: 0 },
      head: { id: head, parent: 0, stamps: new Array(spec.blocks).fill(0), writes: 0, log: [] },
      gone: [],
      branched: false,
      tail: [],
      stats: { ops: {}, total: 0, fullChecks: 0, reloads: 0, tailKept: [] },
    };
    return runOps({ client, state, kind: spec.kind }, n);
  },

  /**
   * Syncs, then writes `k` blocks without a sync (they may or may not survive the reload that
   * follows). Resolves to the state.
   */
  async prepareReload(state, k) {
    await must(held.sync(), 'sync()');
    state.tail = [];
    for (let i = 0; i < k; i++) {
      const addr = below(state, 64);
      const stamps = [freshStamp(state)];
      const seq = await must(held.write(addr, bytesOf(stamps)), `write(${addr}) before the reload`);
      state.tail.push({ addr, stamps, seq });
    }
    return state;
  },

  /**
   * After a reload: opens the store again; its head must be the model's synced head plus a
   * prefix of the unsynced writes (which prefix is adopted), everything else exactly the model.
   * Then runs `n` more operations and keeps it open.
   */
  async resume(state, n) {
    const client = await openClient(state.spec, false);
    held = client;
    const ctx = { client, state, kind: state.spec.kind };
    try {
      const head = await must(client.read(0, state.blocks), 'read(0, all) after the reload');
      let kept = -1;
      for (let k = state.tail.length; k >= 0 && kept < 0; k--) {
        const stamps = state.head.stamps.slice();
        for (const w of state.tail.slice(0, k)) stamps[w.addr] = w.stamps[0];
        if (firstWrongBlock(head, stamps) === -1) kept = k;
      }
      if (kept < 0) throw new ModelFailure(`after the reload the head is not the synced head plus a prefix of the ${state.tail.length} unsynced writes`);
      for (const w of state.tail.slice(0, kept)) applyWrite(state, w.addr, w.stamps, w.seq);
      if (kept > 0) state.lastSeq = state.tail[kept - 1].seq;
      state.stats.tailKept.push(`${kept}/${state.tail.length}`);
      state.tail = [];
      state.stats.reloads++;
      await fullCheck(ctx, 'after the reload');
    } catch (error) {
      const failure = error instanceof ModelFailure ? { message: error.message, details: error.details ?? null } : { message: `${error?.stack ?? error}` };
      return { failure: { ...failure, op: state.opIndex, trace: ['(reopen after the reload)'] }, state, ms: 0 };
    }
    return runOps(ctx, n);
  },

  /** Closes what this page holds (and destroys it with `destroyToo`). */
  async finish(spec, destroyToo) {
    await held?.close();
    held = null;
    if (destroyToo) await destroyAll(spec);
    return true;
  },

  /** Tries to open `spec` from this page: { ok } or { ok: false, error }. */
  async tryOpen(spec) {
    try {
      const client = await (spec.kind === 'mirror' ? openMirror({ name: spec.name, backend: spec.backend, legs: spec.legs }) : open({ name: spec.name, backend: spec.backend, blocks: spec.blocks }));
      await client.close();
      return { ok: true };
    } catch (error) {
      return { ok: false, error: describeError(error) };
    }
  },
};

document.getElementById('status').textContent = 'ready';
