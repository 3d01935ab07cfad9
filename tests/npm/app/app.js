// A scratch app using the installed strata-engine package. The Playwright test
// (tests/npm/npm.test.mjs) calls the scenarios below through `window.scenarios`.
import { open, destroy, StrataError } from 'strata-engine';

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
};

document.getElementById('status').textContent = 'ready';
