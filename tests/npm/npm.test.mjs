// The npm package tried as a new user would: `npm pack` the built package (wasm/pkg, from
// scripts/build-npm.sh), install the tarball into a scratch app, serve the app and drive it in the
// system's headless Chromium through playwright-core (harness.mjs). The app (tests/npm/app/)
// imports `strata-engine` by its bare name through an import map, as an app without a bundler
// would. Crash, quota, read-only and streaming scenarios are in e2e.test.mjs.
//
// Run: scripts/build-npm.sh && node --test tests/npm/   (scripts/test.sh does)

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startApp } from './harness.mjs';

let app;
let context;

/** A page of the scratch app, loaded and ready. */
const appPage = () => app.appPage(context);

before(async () => {
  app = await startApp();
  context = await app.newContext();
});

after(async () => {
  await app?.stop();
});

for (const backend of ['memory', 'indexeddb', 'opfs']) {
  test(`${backend}: a new store takes writes and a snapshot, and reads both versions back`, async () => {
    const page = await appPage();
    const result = await page.evaluate(
      ([b, name]) => window.scenarios.writeSnapshotRead(b, name),
      [backend, `npm-${backend}`],
    );
    assert.equal(result.backend, backend);
    assert.equal(result.snapshot, 1, 'the first snapshot is volume 1');
    assert.ok(result.headOk, 'the head reads the overwrite');
    assert.ok(result.blockTenOk, 'the batch wrote block 10');
    assert.ok(result.snapshotOk, 'the snapshot reads the first write');
    assert.deepEqual(result.volumes, ['baseline', 'snapshot', 'head']);
    assert.deepEqual(result.log, [
      [1, 3, 1],
      [2, 3, 1],
      [2, 10, 1],
    ]);
    assert.equal(result.outOfRange?.code, 'OUT_OF_RANGE');
    assert.ok(result.outOfRange.isError && result.outOfRange.isStrataError);

    // Reload the page (the worker goes with it) and open the store again, without geometry.
    await page.reload();
    await page.waitForFunction(() => document.getElementById('status')?.textContent === 'ready');
    const reopened = await page.evaluate(
      ([b, name]) => window.scenarios.reopenAndRead(b, name),
      [backend, `npm-${backend}`],
    );
    if (backend === 'memory') {
      // A memory store lives and dies with its worker: after a reload there is nothing to open.
      assert.equal(reopened.ok, false);
      assert.equal(reopened.error.code, 'INVALID_ARGUMENT');
    } else {
      assert.deepEqual(reopened, { ok: true, headOk: true, blockTenOk: true, snapshotOk: true });
    }
    await page.close();
  });
}

for (const backend of ['indexeddb', 'opfs']) {
  test(`${backend}: writeZeroes trims as metadata, keeps snapshots, and survives a reopen`, async () => {
    const page = await appPage();
    const result = await page.evaluate(
      ([b, name]) => window.scenarios.trim(b, name),
      [backend, `npm-trim-${backend}`],
    );
    assert.equal(result.recorded, 64, 'only the 64 written blocks of the 100 are recorded');
    assert.equal(result.again, 0, 'a second trim has nothing to record');
    assert.ok(result.grew > 0 && result.grew < 256, `the trim took ${result.grew} bytes of log`);
    assert.deepEqual(result.entries, [{ zero: true, data: null, blocks: 64 }]);
    assert.ok(result.headZero, 'the head reads zeros');
    assert.ok(result.snapshotOk, 'the snapshot keeps its data');
    assert.equal(result.badBlocks?.code, 'INVALID_ARGUMENT');
    assert.equal(result.outOfRange?.code, 'OUT_OF_RANGE');
  });

  test(`${backend}: a cloned branch takes its own writes, main keeps its own, and both persist`, async () => {
    const page = await appPage();
    const result = await page.evaluate(
      ([b, name]) => window.scenarios.branches(b, name),
      [backend, `npm-branches-${backend}`],
    );
    assert.equal(typeof result.cloneHead, 'number');
    assert.deepEqual(result.list, [['test', true], ['main', false]]);
    assert.ok(result.testOk, 'the branch reads the clone plus its own write');
    assert.ok(result.mainOk, 'main reads its own write');
    assert.ok(result.liveIsTest, 'the live head is the checked-out branch');
    assert.deepEqual(result.named, ['main', 'test']);
  });

  test(`${backend}: a second page opening the same store gets LOCKED until the first closes it`, async () => {
    const name = `npm-lock-${backend}`;
    const first = await appPage();
    const second = await appPage();
    assert.equal(await first.evaluate(([b, n]) => window.scenarios.hold(b, n), [backend, name]), backend);
    const refused = await second.evaluate(([b, n]) => window.scenarios.tryOpen(b, n), [backend, name]);
    assert.equal(refused.ok, false);
    assert.equal(refused.error.code, 'LOCKED');
    assert.ok(refused.error.isError, 'LOCKED arrives as an Error');
    await first.evaluate(() => window.scenarios.release());
    const opened = await second.evaluate(([b, n]) => window.scenarios.tryOpen(b, n), [backend, name]);
    assert.deepEqual(opened, { ok: true });
    await first.close();
    await second.close();
  });
}

test("the main module refuses a store with a policy (POLICIES_UNAVAILABLE); the policies module opens it with its policy", async () => {
  const page = await appPage();
  const result = await page.evaluate((n) => window.scenarios.rawModules(n), 'npm-raw-modules');
  assert.equal(result.refused?.code, 'POLICIES_UNAVAILABLE', JSON.stringify(result.refused));
  assert.ok(result.refused.isError, 'the refusal is an Error');
  assert.equal(result.mainHasSetPolicy, false, 'the main module has no policy methods');
  assert.deepEqual(result.rules, ['hourly']);
  assert.equal(result.block2, true, 'the block written before the moves reads back');
  assert.equal(result.gone, null, 'the main module holds the store no more');
  await page.close();
});
