// A scratch app using the installed strata-engine package. The Playwright test
// (tests/npm/npm.test.mjs) calls the scenarios below through `window.scenarios`.
import { open, destroy, importStream, StrataError } from 'strata-engine';

const BLOCK_BYTES = 4096;

/** A block whose bytes depend on `seed` and their position. */
function block(seed) {
  const out = new Uint8Array(BLOCK_BYTES);
  for (let i = 0; i < BLOCK_BYTES; i++) out[i] = (i * 31 + seed * 7) % 251;
  return out;
}

function same(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function describeError(error) {
  return {
    isError: error instanceof Error,
    isStrataError: error instanceof StrataError,
    code: error.code ?? null,
    message: String(error.message),
  };
}

let held = null;

window.scenarios = {
  /** Creates a store, writes, snapshots, overwrites, syncs and reads both versions back. */
  async writeSnapshotRead(backend, name) {
    await destroy({ name, backend });
    const store = await open({ name, backend, blockSize: BLOCK_BYTES, blocks: 256 });
    try {
      await store.write(3, block(1));
      const snapshot = await store.snapshot('first');
      await store.writeBatch([[3, block(2)], [10, block(3)]]);
      await store.sync();
      const log = [];
      for await (const entry of store.log()) log.push([entry.volume, entry.addr, entry.blocks]);
      let outOfRange = null;
      await store.read(256, 1).catch((e) => (outOfRange = describeError(e)));
      return {
        backend: store.backend,
        snapshot,
        headOk: same(await store.read(3, 1), block(2)),
        blockTenOk: same(await store.read(10, 1), block(3)),
        snapshotOk: same(await store.readAt(snapshot, 3, 1), block(1)),
        volumes: (await store.volumes()).map((v) => v.kind),
        log,
        outOfRange,
      };
    } finally {
      await store.close();
    }
  },

  /**
   * Writes 64 blocks, snapshots, trims 100 blocks over them (zero extents), reopens: what the
   * head, the snapshot and the log say, and the log bytes the trim took.
   */
  async trim(backend, name) {
    await destroy({ name, backend });
    let store = await open({ name, backend, blockSize: BLOCK_BYTES, blocks: 256 });
    try {
      const data = new Uint8Array(64 * BLOCK_BYTES).fill(5);
      await store.write(10, data);
      const snapshot = await store.snapshot('before-trim');
      const headBytes = async () => (await store.volumes()).find((v) => v.kind === 'head').bytes;
      const before = await headBytes();
      const recorded = await store.writeZeroes(0, 100);
      const again = await store.writeZeroes(0, 100);
      const grew = (await headBytes()) - before;
      await store.sync();
      const entries = [];
      for await (const entry of store.log({ withData: true })) {
        if (entry.volume !== snapshot) entries.push({ zero: entry.zero, data: entry.data, blocks: entry.blocks });
      }
      let badBlocks = null;
      await store.writeZeroes(0, 0).catch((e) => (badBlocks = describeError(e)));
      let outOfRange = null;
      await store.writeZeroes(200, 100).catch((e) => (outOfRange = describeError(e)));
      if (backend !== 'memory') {
        await store.close();
        store = await open({ name, backend });
      }
      return {
        recorded,
        again,
        grew,
        entries,
        headZero: (await store.read(0, 100)).every((b) => b === 0),
        // (`data` itself may have been transferred to the worker.)
        snapshotOk: same(await store.readAt(snapshot, 10, 64), new Uint8Array(64 * BLOCK_BYTES).fill(5)),
        badBlocks,
        outOfRange,
      };
    } finally {
      await store.close();
    }
  },

  /**
   * A snapshot cloned into branch "test", written there, main written too; then a reopen: what
   * each branch reads, the branch list, and the volumes' branch names.
   */
  async branches(backend, name) {
    await destroy({ name, backend });
    let store = await open({ name, backend, blockSize: BLOCK_BYTES, blocks: 64 });
    try {
      await store.write(0, block(1));
      const golden = await store.snapshot('golden');
      const cloneHead = await store.cloneBranch(golden, 'test');
      await store.write(0, block(2));
      await store.checkout('test');
      await store.write(1, block(3));
      await store.sync();
      if (backend !== 'memory') {
        await store.close();
        store = await open({ name, backend });
      }
      const list = await store.branches();
      const head = (n) => list.find((b) => b.name === n).head;
      const volumes = await store.volumes();
      return {
        cloneHead,
        list: list.map((b) => [b.name, b.active]),
        testOk: same(await store.readAt(head('test'), 0, 2), new Uint8Array([...block(1), ...block(3)])),
        mainOk: same(await store.readAt(head('main'), 0, 1), block(2)),
        liveIsTest: same(await store.read(1, 1), block(3)),
        named: volumes.filter((v) => v.branch !== '').map((v) => v.branch).sort(),
      };
    } finally {
      await store.close();
    }
  },

  /** Reopens an existing store (no geometry given) and reads what writeSnapshotRead left. */
  async reopenAndRead(backend, name) {
    try {
      const store = await open({ name, backend });
      try {
        const volumes = await store.volumes();
        const snapshot = volumes.find((v) => v.label === 'first')?.id;
        return {
          ok: true,
          headOk: same(await store.read(3, 1), block(2)),
          blockTenOk: same(await store.read(10, 1), block(3)),
          snapshotOk: same(await store.readAt(snapshot, 3, 1), block(1)),
        };
      } finally {
        await store.close();
      }
    } catch (error) {
      return { ok: false, error: describeError(error) };
    }
  },

  /** Opens a store and keeps it open (holding its lock) until release(). */
  async hold(backend, name) {
    held = await open({ name, backend, blockSize: BLOCK_BYTES, blocks: 16 });
    return held.backend;
  },

  async release() {
    await held?.close();
    held = null;
  },

  /** Tries to open a store; reports the error if it fails. */
  async tryOpen(backend, name) {
    try {
      const store = await open({ name, backend, blockSize: BLOCK_BYTES, blocks: 16 });
      await store.close();
      return { ok: true };
    } catch (error) {
      return { ok: false, error: describeError(error) };
    }
  },

  /**
   * The package's raw bindings, in this page: a memory store with a policy, made by the policies
   * module (`strata_policies.js`), handed to the main module (`strata_wasm.js`, no policy
   * executor), which refuses to open it rather than ignore its policy; handed back, it opens
   * with its policy and blocks.
   */
  async rawModules(name) {
    const base = './node_modules/strata-engine/';
    const main = await import(`${base}strata_wasm.js`);
    const policies = await import(`${base}strata_policies.js`);
    await main.default();
    await policies.default();
    let store = await policies.StrataStore.open({ name, backend: 'memory', blockSize: BLOCK_BYTES, blocks: 16 });
    await store.write(2, block(5));
    await store.setPolicy({ rules: [{ name: 'hourly', kind: 'snapshot_every', snapshot_every_ms: 3600000 }] });
    await store.close();
    store.free();
    main.StrataStore.putMemoryStore(name, policies.StrataStore.takeMemoryStore(name));
    let refused = null;
    try {
      const opened = await main.StrataStore.open({ name, backend: 'memory' });
      await opened.close();
    } catch (error) {
      refused = describeError(error);
    }
    const mainHasSetPolicy = typeof main.StrataStore.prototype.setPolicy === 'function';
    policies.StrataStore.putMemoryStore(name, main.StrataStore.takeMemoryStore(name));
    store = await policies.StrataStore.open({ name, backend: 'memory' });
    try {
      return {
        refused,
        mainHasSetPolicy,
        rules: (await store.policy())?.rules?.map((r) => r.name),
        block2: same(await store.read(2, 1), block(5)),
        gone: main.StrataStore.takeMemoryStore(name),
      };
    } finally {
      await store.close();
      store.free();
    }
  },
};

document.getElementById('status').textContent = 'ready';

// ----- Scenarios of e2e.test.mjs: crash, quota, read-only views, streamed receive ------------

/** A deterministic pseudo-random generator (mulberry32): the test replays it from its seed. */
function generator(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The address of each write of a workload: `addresses(seed, blocks)(i)`, in order. */
function addresses(seed, blocks) {
  const next = generator(seed);
  const known = [];
  return (i) => {
    while (known.length <= i) known.push(Math.floor(next() * blocks));
    return known[i];
  };
}

/** The block written by write `index` of workload `seed`: its index, then incompressible bytes. */
function workloadBlock(seed, index) {
  const out = new Uint8Array(BLOCK_BYTES);
  const next = generator(seed * 1_000_003 + index);
  for (let i = 0; i < BLOCK_BYTES; i += 4) {
    const word = (next() * 4294967296) >>> 0;
    out[i] = word;
    out[i + 1] = word >>> 8;
    out[i + 2] = word >>> 16;
    out[i + 3] = word >>> 24;
  }
  new DataView(out.buffer).setUint32(0, index + 1, true);
  return out;
}

/**
 * Checks that the store holds exactly the state after some prefix of the workload's writes, at
 * least `acked` long (every write a completed sync covered). Returns what it found.
 */
async function checkPrefix(store, seed, blocks, acked) {
  const image = await store.read(0, blocks);
  const found = [];
  for (let addr = 0; addr < blocks; addr++) {
    const block = image.subarray(addr * BLOCK_BYTES, (addr + 1) * BLOCK_BYTES);
    found.push(new DataView(block.buffer, block.byteOffset, 4).getUint32(0, true) - 1);
  }
  const prefix = Math.max(-1, ...found) + 1;
  const addr = addresses(seed, blocks);
  const expected = new Array(blocks).fill(-1);
  for (let i = 0; i < prefix; i++) expected[addr(i)] = i;
  const wrong = [];
  for (let a = 0; a < blocks && wrong.length < 5; a++) {
    const block = image.subarray(a * BLOCK_BYTES, (a + 1) * BLOCK_BYTES);
    const intact = expected[a] < 0 ? block.every((x) => x === 0) : same(block, workloadBlock(seed, expected[a]));
    if (found[a] !== expected[a] || !intact) wrong.push({ addr: a, found: found[a], expected: expected[a] });
  }
  return { prefix, acked, prefixCoversAcked: prefix >= acked, wrong };
}

/** Progress of `crashWorkload`, read by the test while the workload runs. */
window.workload = { acked: 0, issued: 0, error: null };

async function openRetrying(options) {
  // A crashed page's lock and OPFS handles are released by the browser shortly after.
  for (let attempt = 0; ; attempt++) {
    try {
      return await open(options);
    } catch (error) {
      if (error.code !== 'LOCKED' || attempt >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

Object.assign(window.scenarios, {
  /**
   * Writes random 4 KiB blocks without end, a sync every `syncEvery` writes; `window.workload`
   * says how many writes a completed sync covered. Runs until the page dies.
   */
  async crashWorkload(backend, name, seed, blocks, syncEvery) {
    await destroy({ name, backend });
    const store = await open({ name, backend, blockSize: BLOCK_BYTES, blocks });
    const addr = addresses(seed, blocks);
    try {
      for (let i = 0; ; i++) {
        // Not awaited one by one: the client queues them, as a busy app would.
        const written = store.write(addr(i), workloadBlock(seed, i));
        written.catch((error) => (window.workload.error ??= describeError(error)));
        window.workload.issued = i + 1;
        if ((i + 1) % syncEvery === 0) {
          await store.sync();
          window.workload.acked = i + 1;
        }
      }
    } catch (error) {
      window.workload.error = describeError(error);
    }
  },

  /** Opens the store after the crash and checks it against the workload. */
  async checkWorkload(backend, name, seed, blocks, acked) {
    const store = await openRetrying({ name, backend });
    try {
      return await checkPrefix(store, seed, blocks, acked);
    } finally {
      await store.close();
    }
  },

  /**
   * Writes until the storage refuses (a sync every `syncEvery` writes) and reports the error,
   * then checks that the still-open store reads every synced write. Keeps the store open.
   */
  async fillUntilQuota(backend, name, seed, blocks, syncEvery) {
    await destroy({ name, backend });
    held = await open({ name, backend, blockSize: BLOCK_BYTES, blocks });
    const addr = addresses(seed, blocks);
    let acked = 0;
    let failure = null;
    for (let i = 0; i < blocks * 4 && failure === null; i++) {
      try {
        await held.write(addr(i), workloadBlock(seed, i));
        if ((i + 1) % syncEvery === 0) {
          await held.sync();
          acked = i + 1;
        }
      } catch (error) {
        failure = describeError(error);
      }
    }
    const afterFailure = await checkPrefix(held, seed, blocks, acked);
    return { acked, failure, afterFailure, info: await held.info().then((i) => i.head) };
  },

  /** After `fillUntilQuota`: tries writes with `count` new writes and a sync. */
  async writeMore(seed, blocks, from, count) {
    const addr = addresses(seed, blocks);
    try {
      for (let i = from; i < from + count; i++) await held.write(addr(i), workloadBlock(seed, i));
      await held.sync();
      return { ok: true, check: await checkPrefix(held, seed, blocks, from + count) };
    } catch (error) {
      return { ok: false, error: describeError(error) };
    }
  },

  /** Opens a store with `options` and tries a read and a write. */
  async tryView(backend, name, readOnly) {
    let store;
    try {
      store = await open({ name, backend, readOnly });
    } catch (error) {
      return { opened: false, error: describeError(error) };
    }
    try {
      const head = await store.read(3, 1);
      let writeError = null;
      await store.write(3, block(99)).catch((e) => (writeError = describeError(e)));
      let snapshotError = null;
      await store.snapshot('nope').catch((e) => (snapshotError = describeError(e)));
      return {
        opened: true,
        readOnly: store.readOnly,
        readsFirstWrite: same(head, block(1)),
        readsSecondWrite: same(head, block(2)),
        writeError,
        snapshotError,
      };
    } finally {
      await store.close();
    }
  },

  /** Holds a writer open with block 3 = block(1), synced. */
  async holdWriter(backend, name) {
    await destroy({ name, backend });
    held = await open({ name, backend, blockSize: BLOCK_BYTES, blocks: 16 });
    await held.write(3, block(1));
    await held.sync();
    return held.backend;
  },

  /** The held writer overwrites block 3 with block(2) and syncs. */
  async writerOverwrites() {
    await held.write(3, block(2));
    await held.sync();
    return same(await held.read(3, 1), block(2));
  },

  /**
   * Copies a store to a second one through copy streams fed as ReadableStreams of 64 KiB
   * pieces: a full stream creates the copy (importStream), an incremental one updates it
   * (receive), first cut in half (refused), then whole.
   */
  async streamCopy(backend, source, target) {
    await destroy({ name: source, backend });
    await destroy({ name: target, backend });
    const from = await open({ name: source, backend, blockSize: BLOCK_BYTES, blocks: 1024 });
    const seed = 7;
    const addr = addresses(seed, 1024);
    const sendPieces = async (options) => {
      const chunks = [];
      await from.send(options, { onChunk: (chunk) => chunks.push(chunk) });
      // Cut into 64 KiB pieces, as a network stream would deliver them.
      const pieces = [];
      for (const chunk of chunks) {
        for (let at = 0; at < chunk.byteLength; at += 65536) pieces.push(chunk.slice(at, at + 65536));
      }
      return pieces;
    };
    const streamOf = (pieces) => {
      let index = 0;
      return new ReadableStream({
        pull(controller) {
          if (index < pieces.length) controller.enqueue(pieces[index++].slice());
          else controller.close();
        },
      });
    };
    for (let i = 0; i < 300; i++) await from.write(addr(i), workloadBlock(seed, i));
    const first = await from.snapshot('first');
    const full = await sendPieces({});
    for (let i = 300; i < 600; i++) await from.write(addr(i), workloadBlock(seed, i));
    const second = await from.snapshot('second');
    const increment = await sendPieces({ base: first });
    const expectedFirst = await from.readAt(first, 0, 1024);
    const expectedSecond = await from.readAt(second, 0, 1024);
    await from.close();

    const importProgress = [];
    const to = await importStream({ name: target, backend }, streamOf(full), {
      onProgress: (bytes) => importProgress.push(bytes),
    });
    try {
      const firstCopy = (await to.volumes()).find((v) => v.label === 'first');
      const firstOk = firstCopy !== undefined && same(await to.readAt(firstCopy.id, 0, 1024), expectedFirst);
      let truncated = null;
      await to.receive(streamOf(increment.slice(0, Math.ceil(increment.length / 2)))).catch(
        (e) => (truncated = describeError(e)),
      );
      const usableAfterRefusal = (await to.read(0, 1)).length === BLOCK_BYTES;
      const progress = [];
      const report = await to.receive(streamOf(increment), { onProgress: (bytes) => progress.push(bytes) });
      const secondCopy = (await to.volumes()).find((v) => v.label === 'second');
      return {
        importPieces: full.length,
        importProgressCalls: importProgress.length,
        firstOk,
        truncated,
        usableAfterRefusal,
        pieces: increment.length,
        streamBytes: increment.reduce((n, p) => n + p.byteLength, 0),
        progressCalls: progress.length,
        lastProgress: progress.at(-1),
        reportStreamBytes: report.streamBytes,
        secondOk: secondCopy !== undefined && same(await to.readAt(secondCopy.id, 0, 1024), expectedSecond),
      };
    } finally {
      await to.close();
    }
  },
});

Object.assign(window.scenarios, {
  /** Opens a store with a policy timer and a 100 ms snapshot rule; reports what the timer did. */
  async policyTimer(backend, name) {
    await destroy({ name, backend });
    const runs = [];
    const errors = [];
    const store = await open({
      name,
      backend,
      blockSize: BLOCK_BYTES,
      blocks: 16,
      policyTickMs: 25,
      onPolicyRun: (entries) => runs.push(entries),
      onPolicyError: (error) => errors.push(describeError(error)),
    });
    try {
      await store.setPolicy({
        rules: [{ name: 'often', kind: 'snapshot_every', snapshot_every_ms: 100, label: 'tick-{n}' }],
      });
      for (let i = 0; i < 6; i++) {
        await store.write(i, block(i));
        await new Promise((resolve) => setTimeout(resolve, 120));
      }
      const snapshots = (await store.volumes()).filter((v) => v.kind === 'snapshot').map((v) => v.label);
      let invalid = null;
      await open({ name: `${name}-bad`, backend, blocks: 16, policyTickMs: 1 }).catch((e) => (invalid = describeError(e)));
      // The audit trail first, then the count: a tick queued in the worker ahead of the audit
      // request posts its entries before the audit's reply, so both see the same runs.
      const audit = (await store.audit()).length;
      return { runs: runs.length, entries: runs.flat().length, errors, snapshots, invalid, audit };
    } finally {
      await store.close();
    }
  },

  /**
   * Fills a partition with `blocks` blocks written twice, seals it, starts compacting it and
   * cancels at the first progress report; then asks the worker (behind the compaction, in its
   * queue) what the partition holds, and finally compacts it for real.
   */
  async cancelCompaction(backend, name, blocks) {
    await destroy({ name, backend });
    const store = await open({ name, backend, blockSize: BLOCK_BYTES, blocks });
    try {
      for (const round of [0, 1]) {
        for (let at = 0; at < blocks; at += 256) {
          const writes = [];
          for (let a = at; a < Math.min(at + 256, blocks); a++) writes.push([a, block(a + round)]);
          await store.writeBatch(writes);
        }
      }
      const volume = await store.snapshot('full');
      const sizeOf = async () => (await store.space()).find((s) => s.volume === volume).totalBytes;
      const before = await sizeOf();
      const controller = new AbortController();
      let progressReports = 0;
      let cancelled = null;
      await store
        .compact(volume, {
          signal: controller.signal,
          onProgress: () => {
            progressReports += 1;
            controller.abort();
          },
        })
        .catch((e) => (cancelled = describeError(e)));
      const afterCancel = await sizeOf();
      await store.compact(volume);
      const afterCompaction = await sizeOf();
      const last = await store.readAt(volume, blocks - 1, 1);
      return {
        before,
        afterCancel,
        afterCompaction,
        progressReports,
        cancelled,
        lastIntact: same(last, block(blocks - 1 + 1)),
      };
    } finally {
      await store.close();
    }
  },
});
