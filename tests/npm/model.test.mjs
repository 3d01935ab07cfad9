// Model-based test of the npm package's Promise client: the packed package in the scratch app
// (harness.mjs), its page app/model.html, headless Chromium. A seeded random sequence of
// client operations (write, writeBatch, sync, snapshot, read, readAt, readStream, compact,
// merge, delete, rollback, diff, log) runs against a store on memory, IndexedDB and OPFS, and
// against a mirror (secondary on OPFS, legs on OPFS and IndexedDB); app/model.js keeps a small
// model of the volumes beside it (the head's image, each snapshot's image by id, the baseline's)
// and compares every result, and every volume whole every 60 operations.
//
// Model rules: writes are visible at once to reads of the head; snapshot(label) returns the
// sealed head's id and its image is the head's at that time; compact never changes what any
// volume reads; merge(v) makes the baseline v's image and the ids of v and its ancestors vanish
// (INVALID_ARGUMENT, when another branch still reads them, is allowed and changes nothing, but
// never before the first rollback); delete(v) removes v's id; rollback(v) makes a new head of
// v's image, the old head kept as a snapshot with the given label, or dropped if it had no
// writes (volumes() must agree); diff(a, b) lists exactly the extents where the images differ.
//
// On IndexedDB, OPFS and the mirror the page is reloaded in the middle (everything synced
// before must read back; of the writes after the last sync, a prefix), and a second page trying
// to open the same store gets LOCKED while the first has it, and opens it once it is closed.
//
// Run: scripts/build-npm.sh && node --test tests/npm/model.test.mjs
// STRATA_SEED=<n> replays a run (the seed is printed); STRATA_LONG=1 runs five times as many
// operations.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startApp } from './harness.mjs';

const seed = process.env.STRATA_SEED !== undefined ? Number(process.env.STRATA_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
const scale = process.env.STRATA_LONG === '1' ? 5 : 1;
console.log(`# model seed ${seed} (replay: STRATA_SEED=${seed})${scale > 1 ? ', STRATA_LONG=1' : ''}`);

/** The runs: operations before and after the reload (memory: no reload). */
const RUNS = [
  { kind: 'store', backend: 'memory', legs: null, ops: [1500] },
  { kind: 'store', backend: 'indexeddb', legs: null, ops: [400, 400] },
  { kind: 'store', backend: 'opfs', legs: null, ops: [400, 400] },
  { kind: 'mirror', backend: 'opfs', legs: ['opfs', 'indexeddb'], ops: [300, 300] },
];

let app;
let context;
const totals = { ops: 0, fullChecks: 0, reloads: 0 };

async function modelPage() {
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  await loadModel(page);
  return { page, problems };
}

async function loadModel(page) {
  await page.goto(`${app.baseUrl}model.html`);
  await page.waitForFunction(() => document.getElementById('status')?.textContent === 'ready', null, {
    timeout: 30_000,
  });
}

before(async () => {
  app = await startApp();
  context = await app.newContext();
});

after(async () => {
  console.log(`# model total: ${totals.ops} operations, ${totals.fullChecks} whole-store checks, ${totals.reloads} reloads (seed ${seed})`);
  await context?.close();
  await app?.stop();
});

/** Fails with the model's failure, the seed and the last operations. */
function assertRan(result, label, runSeed) {
  if (result.failure) {
    const f = result.failure;
    assert.fail(
      `${label}: at operation #${f.op}: ${f.message}${f.details ? `\n  ${JSON.stringify(f.details)}` : ''}\n` +
        `  seed ${seed} (this run's: ${runSeed}); replay: STRATA_SEED=${seed}\n  last operations:\n    ${f.trace.join('\n    ')}`,
    );
  }
}

function summary(stats) {
  return Object.entries(stats.ops)
    .sort()
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

RUNS.forEach((run, index) => {
  const where = run.kind === 'mirror' ? `mirror on ${run.backend} (legs ${run.legs.join(', ')})` : `store on ${run.backend}`;
  const ops = run.ops.map((n) => n * scale);
  const reload = ops.length > 1;
  test(`${where}: ${ops.reduce((a, b) => a + b, 0)} random operations match the model${reload ? ', across a reload' : ''}; a second page gets LOCKED`, async (t) => {
    const runSeed = (seed + index * 0x9e3779b9) >>> 0;
    const spec = { kind: run.kind, backend: run.backend, legs: run.legs, name: `model-${run.kind}-${run.backend}`, blocks: 512, seed: runSeed };
    const { page, problems } = await modelPage();
    const { page: other } = await modelPage();
    try {
      const started = Date.now();
      let result = await page.evaluate(([s, n]) => window.model.start(s, n), [spec, ops[0]]);
      assertRan(result, where, runSeed);

      // A second page cannot open it while this one has it.
      const locked = await other.evaluate((s) => window.model.tryOpen(s), spec);
      assert.equal(locked.ok, false, 'a second page opened the store while the first had it open');
      assert.equal(locked.error.code, 'LOCKED', JSON.stringify(locked.error));
      assert.ok(locked.error.isStrataError);

      if (reload) {
        const state = await page.evaluate(([s, k]) => window.model.prepareReload(s, k), [result.state, 3]);
        await page.reload();
        await page.waitForFunction(() => document.getElementById('status')?.textContent === 'ready', null, { timeout: 30_000 });
        result = await page.evaluate(([s, n]) => window.model.resume(s, n), [state, ops[1]]);
        assertRan(result, `${where}, after the reload`, runSeed);
        const lockedAgain = await other.evaluate((s) => window.model.tryOpen(s), spec);
        assert.equal(lockedAgain.error?.code, 'LOCKED', `after the reload: ${JSON.stringify(lockedAgain)}`);
      }

      // Closed by the first page, the store opens in the second.
      await page.evaluate((s) => window.model.finish(s, false), spec);
      const opened = await other.evaluate((s) => window.model.tryOpen(s), spec);
      if (run.backend === 'memory') {
        // A memory store ends with its worker: the second page finds nothing to open, or creates
        // a new store; either way the lock is free.
        assert.notEqual(opened.error?.code, 'LOCKED', JSON.stringify(opened));
      } else {
        assert.deepEqual(opened, { ok: true }, 'the second page opens the store once the first closed it');
      }
      await page.evaluate((s) => window.model.finish(s, true), spec);

      const { stats } = result.state;
      const line = `${where}: ${stats.total} operations in ${Date.now() - started} ms, ${stats.fullChecks} whole-store checks, reloads ${stats.reloads} (unsynced writes kept: ${stats.tailKept.join(', ') || 'none'}); ${summary(stats)}`;
      t.diagnostic(line);
      console.log(`# model ${line}`);
      totals.ops += stats.total;
      totals.fullChecks += stats.fullChecks;
      totals.reloads += stats.reloads;
      assert.deepEqual(problems, [], 'the page threw');
    } finally {
      await page.close();
      await other.close();
    }
  });
});
