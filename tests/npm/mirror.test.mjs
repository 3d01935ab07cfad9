// The npm package's mirror (`openMirror`) as a new user would use it: the packed package in a
// scratch app (harness.mjs), in headless Chromium, with the secondary on OPFS and the two legs
// of the primary on OPFS and IndexedDB. Writes and a snapshot, a page reload, then the data, the
// legs' status and a scrub; then a leg replaced in place and the mirror destroyed. Then the
// history through the client (diff, log, compact, merge, rollback, delete) with the primary and
// the secondary in step after each. Then storage management on a mirror: a policy acted on by
// itself, kept across a reopen, and run by hand with automatic policies off.
//
// Run: scripts/build-npm.sh && node --test tests/npm/mirror.test.mjs

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startApp } from './harness.mjs';

let app;
let context;

before(async () => {
  app = await startApp();
  context = await app.newContext();
});

after(async () => {
  await context?.close();
  await app?.stop();
});

/** Loads the scratch app's mirror page and waits until its scenarios are ready. */
async function mirrorPage(page) {
  await page.goto(`${app.baseUrl}mirror.html`);
  await page.waitForFunction(() => document.getElementById('status')?.textContent === 'ready', null, {
    timeout: 30_000,
  });
}

test('a mirror across OPFS and IndexedDB keeps its data across a reload, healthy and scrubbed clean', async () => {
  const name = 'npm-mirror';
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  // The worker fetches the package's second module for a mirror, and never the main one.
  const fetched = [];
  const onRequest = (request) => fetched.push(new URL(request.url()).pathname.split('/').pop());
  context.on('request', onRequest);
  await mirrorPage(page);

  const created = await page.evaluate((n) => window.mirrorScenarios.create(n), name);
  assert.equal(created.isClient, true);
  assert.equal(created.backend, 'opfs');
  assert.deepEqual(created.legs, ['opfs', 'indexeddb']);
  assert.equal(created.snapshot.volume, 1, 'the first snapshot is volume 1');
  assert.equal(created.snapshot.compacted, null);
  assert.ok(created.headOk, 'the head reads the overwrite');
  assert.ok(created.snapshotOk, 'the snapshot reads the first write');
  assert.equal(created.degraded, false);
  assert.equal(created.healthyLegs, 2);
  assert.deepEqual(created.legStatus, [
    { leg: 0, backend: 'opfs', state: 'healthy', store: `${name}.leg0` },
    { leg: 1, backend: 'indexeddb', state: 'healthy', store: `${name}.leg1` },
  ]);
  assert.equal(created.outOfRange?.code, 'OUT_OF_RANGE');
  assert.ok(created.outOfRange.isStrataError);
  context.off('request', onRequest);
  assert.ok(fetched.includes('strata_mirror_bg.wasm'), `requests: ${fetched.join(', ')}`);
  assert.ok(!fetched.includes('strata_wasm_bg.wasm'), `requests: ${fetched.join(', ')}`);

  // The worker goes with the page; the mirror is opened again from storage.
  await page.reload();
  await mirrorPage(page);
  const reopened = await page.evaluate(([n, v]) => window.mirrorScenarios.reopen(n, v), [name, created.snapshot.volume]);
  assert.ok(reopened.headOk, 'the head is intact after the reload');
  assert.ok(reopened.snapshotOk, 'the snapshot is intact after the reload');
  assert.deepEqual(reopened.volumes, ['baseline', 'snapshot', 'head']);
  assert.deepEqual(reopened.info, { name, backend: 'opfs', legs: ['opfs', 'indexeddb'], blockCount: 128 });
  assert.equal(reopened.degraded, false);
  assert.equal(reopened.healthyLegs, 2);
  assert.deepEqual(reopened.opened, ['inSync', 'inSync'], 'both legs were in step with the secondary');
  assert.deepEqual(reopened.scrub, {
    blocksChecked: 128,
    copiesChecked: 256,
    detected: 0,
    repaired: 0,
    unrecoverable: [],
    legs: [
      [128, 0, 0],
      [128, 0, 0],
    ],
  });
  assert.deepEqual(reopened.events, []);

  const replaced = await page.evaluate((n) => window.mirrorScenarios.replaceAndDestroy(n, 1), name);
  assert.equal(replaced.report.leg, 1);
  assert.equal(replaced.report.backend, 'indexeddb');
  assert.equal(replaced.report.blocksChecked, 128);
  // The leg is wiped and filled again: the 16 written blocks (the rest are zeros).
  assert.equal(replaced.report.blocksWritten, 16);
  assert.deepEqual(replaced.report.unrecoverable, []);
  assert.ok(replaced.headOk);
  assert.ok(replaced.healthy);
  assert.equal(replaced.closed?.code, 'CLOSED');
  assert.equal(replaced.gone?.code, 'INVALID_ARGUMENT', 'a destroyed mirror needs blocks to be created again');
  assert.deepEqual(problems, [], 'the page threw');
  await page.close();
});

test("a mirror's history through the client: diff, log, compact, merge, rollback and delete keep the primary in step", async () => {
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  await mirrorPage(page);
  const r = await page.evaluate((n) => window.mirrorScenarios.history(n), 'npm-mirror-history');
  assert.deepEqual([r.first, r.second], [1, 2]);
  assert.deepEqual(r.diff, [{ addr: 1, blocks: 2 }]);
  // Volume 3 is the head; every entry carries its block.
  assert.deepEqual(r.log, [
    [1, 0, 4096],
    [1, 1, 4096],
    [1, 2, 4096],
    [1, 3, 4096],
    [2, 1, 4096],
    [2, 1, 4096],
    [2, 2, 4096],
    [3, 3, 4096],
  ]);
  assert.equal(r.cancelled?.code, 'CANCELLED');
  assert.deepEqual(r.compacted, { blocksKept: 2, blocksDropped: 1 });
  assert.ok(r.progressed, 'compact reported its progress');
  assert.equal(r.merged, 1);
  assert.deepEqual(r.volumesAfterMerge, ['baseline', 'snapshot', 'head']);
  assert.equal(r.newHead, 4);
  assert.ok(r.rolledBack, 'the head reads as the snapshot after the rollback');
  assert.ok(r.undoOk, 'the old head is kept as a snapshot');
  assert.ok(r.deletedIsReport);
  assert.deepEqual(r.volumesAtEnd, ['baseline', 'snapshot', 'head']);
  assert.deepEqual(r.spaceVolumes, [2, 4]);
  assert.deepEqual(r.statsInfoLegs, ['opfs', 'indexeddb']);
  assert.deepEqual(r.inStep, [
    ['cancelled compact', true],
    ['compact', true],
    ['merge', true],
    ['rollback', true],
    ['delete', true],
  ]);
  assert.deepEqual(r.scrub, { detected: 0, repaired: 0, unrecoverable: [] });
  assert.equal(r.degraded, false);
  assert.deepEqual(r.events, []);
  assert.deepEqual(problems, [], 'the page threw');
  await page.close();
});

test('a mirror carries its policy out as a store does, keeps it across a reopen, and stays in step', async () => {
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  await mirrorPage(page);
  const r = await page.evaluate((n) => window.mirrorScenarios.policies(n), 'npm-mirror-policies');
  // Writes 3 and 6 crossed the threshold: two snapshots, each recorded with what started it.
  assert.deepEqual(r.labels, ['auto-1', 'auto-2']);
  assert.deepEqual(r.audit, [
    ['snapshot', 'applied', 'after_operation', 'write'],
    ['snapshot', 'applied', 'after_operation', 'write'],
  ]);
  assert.deepEqual(r.dryRun, [], 'one write since the last snapshot: nothing due');
  assert.equal(r.scrubbed, 0);
  assert.ok(r.inStep, 'the primary reads as the secondary');
  // Automatic policies off: four writes took no snapshot until runPolicies.
  assert.equal(r.manual.policy.rules[0].name, 'every-three');
  assert.equal(r.manual.audit, 2);
  assert.equal(r.manual.snapshots, 2);
  assert.deepEqual(r.manual.ran, ['snapshot']);
  assert.deepEqual(problems, []);
  await page.close();
});
