// The app tests/npm/bundlers.test.mjs builds with each bundler: it imports strata-engine and its
// SQLite sub-entry by their bare names and leaves the worker, the package's three .wasm modules
// and wa-sqlite's (the peer dependency @journeyapps/wa-sqlite, installed beside the package) to
// the bundler, as an app would. The test calls the scenarios below through `window.bundled`.
import { destroy, destroyMirror, open, openMirror } from 'strata-engine';
// Importing the sub-entry loads no SQLite yet: wa-sqlite's module and its .wasm are fetched by
// the first openDatabase, so the pages that only open stores never load them.
import { openDatabase } from 'strata-engine/sqlite';

const BLOCK_BYTES = 4096;
const BLOCKS = 64;

/** A block whose bytes depend on `seed` and their position. */
function block(seed) {
  const out = new Uint8Array(BLOCK_BYTES);
  for (let i = 0; i < BLOCK_BYTES; i++) out[i] = (i * 31 + seed * 7) % 251;
  return out;
}

function same(a, b) {
  return a instanceof Uint8Array && a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * What a store (or mirror) left by `create` reads: block 3 overwritten after the snapshot,
 * block 10 written before it; each compared byte for byte.
 */
async function readBack(volume, snapshot) {
  return {
    head3: same(await volume.read(3, 1), block(2)),
    head10: same(await volume.read(10, 1), block(3)),
    snapshot3: same(await volume.readAt(snapshot, 3, 1), block(1)),
    snapshot10: same(await volume.readAt(snapshot, 10, 1), block(3)),
  };
}

/** Writes blocks 3 and 10, snapshots, overwrites block 3 and syncs; returns the snapshot's id. */
async function fill(volume) {
  await volume.writeBatch([
    [3, block(1)],
    [10, block(3)],
  ]);
  const snapshot = await volume.snapshot('first');
  await volume.write(3, block(2));
  await volume.sync();
  return snapshot;
}

window.bundled = {
  /** Creates store `name` on `backend`, fills it and reads it back; leaves it closed. */
  async create(backend, name) {
    await destroy({ name, backend });
    const store = await open({ name, backend, blockSize: BLOCK_BYTES, blocks: BLOCKS });
    try {
      const snapshot = await fill(store);
      return { backend: store.backend, snapshot, ...(await readBack(store, snapshot)) };
    } finally {
      await store.close();
    }
  },

  /** Opens store `name` again (no geometry: it must exist) and reads what `create` left. */
  async reopen(backend, name) {
    const store = await open({ name, backend });
    try {
      const snapshot = (await store.volumes()).find((v) => v.label === 'first')?.id;
      return { backend: store.backend, snapshot, ...(await readBack(store, snapshot)) };
    } finally {
      await store.close();
    }
  },

  /**
   * Creates store `name` on `backend`, fills it and gives it a policy: the worker moves the open
   * store to the package's policies module, strata_policies_bg.wasm (a memory store hands its
   * objects over). Reads the policy and the blocks back through the same handle; then, for a
   * persistent backend, opens the store again as a page that knows nothing of policies would
   * (its worker starts with the main module, which hands the store to the policies module).
   */
  async policy(backend, name) {
    const policy = { rules: [{ name: 'hourly', kind: 'snapshot_every', snapshot_every_ms: 3600000 }] };
    const read = async (store) => {
      const snapshot = (await store.volumes()).find((v) => v.label === 'first')?.id;
      const rules = (await store.policy())?.rules?.map((r) => r.name);
      return { rules, snapshot, ...(await readBack(store, snapshot)) };
    };
    await destroy({ name, backend });
    let store = await open({ name, backend, blockSize: BLOCK_BYTES, blocks: BLOCKS });
    let moved;
    try {
      await fill(store);
      await store.setPolicy(policy);
      moved = await read(store);
    } finally {
      await store.close();
    }
    if (backend === 'memory') return { moved, reopened: null };
    store = await open({ name, backend });
    try {
      return { moved, reopened: await read(store) };
    } finally {
      await store.close();
    }
  },

  /**
   * Creates a mirror (secondary on OPFS, legs on OPFS and IndexedDB): served by the package's
   * second module, strata_mirror_bg.wasm. Fills it, reads it back, reports its legs' health.
   */
  async mirror(name) {
    const legs = ['opfs', 'indexeddb'];
    await destroyMirror({ name, backend: 'opfs', legs });
    const mirror = await openMirror({ name, backend: 'opfs', legs, blocks: BLOCKS });
    try {
      const snapshot = (await fill(mirror)).volume;
      const status = await mirror.status();
      return { snapshot, healthyLegs: status.healthyLegs, ...(await readBack(mirror, snapshot)) };
    } finally {
      await mirror.close();
    }
  },

  /**
   * A SQLite database (strata-engine/sqlite, wa-sqlite's Asyncify build) in an OPFS store: a
   * table, rows inserted in one transaction, a snapshot, rows changed after it, then the
   * snapshot opened read-only beside the live database. Returns both databases' rows and
   * integrity checks.
   */
  async sqlite(name) {
    await destroy({ name, backend: 'opfs' });
    const store = await open({ name, backend: 'opfs', blockSize: BLOCK_BYTES, blocks: 1024 });
    try {
      const db = await openDatabase(store);
      try {
        await db.query('CREATE TABLE items(id INTEGER PRIMARY KEY, label TEXT NOT NULL)');
        await db.query('BEGIN');
        for (let id = 1; id <= 4; id++) await db.run('INSERT INTO items VALUES (?, ?)', [id, `old-${id}`]);
        await db.query('COMMIT');
        const snapshot = await db.snapshot('before-change');
        await db.run("UPDATE items SET label = 'new-' || id WHERE id <= 2");
        await db.run('DELETE FROM items WHERE id = 4');
        await db.run('INSERT INTO items VALUES (?, ?)', [5, 'new-5']);
        const rows = 'SELECT id, label FROM items ORDER BY id';
        const old = await db.openSnapshot(snapshot);
        try {
          return {
            backend: store.backend,
            snapshotRows: await old.query(rows),
            snapshotIntegrity: await old.query('PRAGMA integrity_check'),
            liveRows: await db.query(rows),
            liveIntegrity: await db.query('PRAGMA integrity_check'),
          };
        } finally {
          await old.close();
        }
      } finally {
        await db.close();
      }
    } finally {
      await store.close();
    }
  },
};

document.getElementById('status').textContent = 'ready';
