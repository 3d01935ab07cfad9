// Bad inputs to every method of the npm package's Promise client, table-driven: the packed
// package in the scratch app (harness.mjs), its page app/boundary.html, headless Chromium.
//
// Each row of the tables in app/boundary.js is one call (wrong types, out-of-range and huge
// values, empty and detached buffers, bad options, closed handles, a dead worker). For each, the
// page records how it went and this file asserts, one subtest per row:
//   - the call returned a Promise (a synchronous throw fails the row) and settled within a bound;
//   - it resolved, or rejected with a StrataError (instanceof Error too) whose code is one the
//     row expects, documented in client.d.ts's ErrorCode and never INTERNAL; for
//     INVALID_ARGUMENT, its message starts with the argument's name;
//   - afterwards the store reads exactly what it should (a known pattern written first, the head
//     and a snapshot read back after every row), and a refused call changed no volume.
// Store rows run on memory (every bad value) and on OPFS and IndexedDB (a few of each); the shared
// rows run on a mirror too (legs ['memory'], and ['opfs', 'indexeddb']).
//
// Run: scripts/build-npm.sh && node --test tests/npm/boundary.test.mjs
// STRATA_BOUNDARY_LIGHT=1 skips the two heavy tests: the diff of more than 1,048,576 extents
// (512 MiB written, ~10 s) and the engine run out of memory (~1 GiB, ~10 s).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot, startApp } from './harness.mjs';

const light = process.env.STRATA_BOUNDARY_LIGHT === '1';

/** The codes client.d.ts documents (type ErrorCode). */
const documentedCodes = (() => {
  const text = readFileSync(path.join(repoRoot, 'wasm/js/client.d.ts'), 'utf8');
  const body = text.slice(text.indexOf('export type ErrorCode ='), text.indexOf(';', text.indexOf('export type ErrorCode =')));
  return [...body.matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]);
})();

let app;
let context;
let page;

/** Loads the scratch app's bad-input page and waits until its scenarios are ready. */
async function boundaryPage(p) {
  await p.goto(`${app.baseUrl}boundary.html`);
  await p.waitForFunction(() => document.getElementById('status')?.textContent === 'ready', null, {
    timeout: 30_000,
  });
}

const pageErrors = [];

before(async () => {
  app = await startApp();
  context = await app.newContext();
  page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await boundaryPage(page);
});

after(async () => {
  await context?.close();
  await app?.stop();
});

const describe = (value) => JSON.stringify(value);

/** The assertions of one row's record (see the header). */
function checkRow(r) {
  assert.equal(r.threw, null, `threw synchronously instead of returning a Promise: ${describe(r.threw)}`);
  assert.equal(r.notPromise, null, `returned ${r.notPromise}, not a Promise`);
  assert.equal(r.timedOut, false, 'did not settle within the bound');
  const expected = [r.expect].flat();
  if (r.ok) {
    assert.ok(expected.includes('ok'), `resolved (in ${r.ms} ms); expected a rejection with ${expected.join(' or ')}`);
    assert.equal(r.check, true, `resolved to the wrong value: ${r.check}`);
  } else {
    const e = r.error;
    assert.ok(e.isStrataError && e.isError, `rejected with a ${e.name} (code ${e.code}), not a StrataError: ${e.message}`);
    assert.notEqual(e.code, 'INTERNAL', `INTERNAL: ${e.message}`);
    assert.ok(documentedCodes.includes(e.code), `code ${e.code} is not in client.d.ts's ErrorCode: ${e.message}`);
    if (!expected.includes('ANY')) {
      assert.ok(expected.includes(e.code), `rejected with ${e.code} (${e.message}); expected ${expected.join(' or ')}`);
    }
    if (r.arg && e.code === 'INVALID_ARGUMENT') {
      assert.ok(e.message.startsWith(`${r.arg} `), `the message does not start with "${r.arg} ": ${e.message}`);
    }
  }
  assert.equal(r.afterwards, true, String(r.afterwards));
  assert.equal(r.intact, true, `afterwards: ${r.intact}`);
}

/** One subtest per row; resolves to the counts. */
async function rowTests(t, rows) {
  const counts = { rows: rows.length, failed: 0 };
  for (const r of rows) {
    await t.test(r.id, () => {
      try {
        checkRow(r);
      } catch (error) {
        counts.failed++;
        throw error;
      }
    });
  }
  return counts;
}

function report(t, label, counts) {
  t.diagnostic(`${label}: ${counts.rows} rows, ${counts.failed} failed`);
  console.log(`# boundary ${label}: ${counts.rows} rows, ${counts.failed} failed`);
}

const evaluate = (fn, arg) => page.evaluate(fn, arg);

// ----- Store and mirror methods -----------------------------------------------------------

for (const [backend, full] of [
  ['memory', true],
  ['opfs', false],
  ['indexeddb', false],
]) {
  test(`store on ${backend}: every method refuses bad arguments, and the store is intact`, async (t) => {
    const result = await evaluate(
      ([b, name, f]) => window.boundary.table('store', b, name, null, f),
      [backend, `boundary-${backend}`, full],
    );
    report(t, `store/${backend}`, await rowTests(t, result.rows));
    assert.deepEqual(result.after.error, undefined, `afterwards: ${describe(result.after.error)}`);
    assert.equal(result.after.works, true, 'a write and a read after the table');
    if (backend !== 'memory') assert.equal(result.after.reopened, true, 'the data after close and reopen');
  });
}

for (const [backend, legs, full] of [
  ['memory', ['memory'], true],
  ['opfs', ['opfs', 'indexeddb'], false],
]) {
  test(`mirror on ${backend} with legs ${legs.join(', ')}: the shared methods refuse bad arguments`, async (t) => {
    const result = await evaluate(
      ([b, name, l, f]) => window.boundary.table('mirror', b, name, l, f),
      [backend, `boundary-mirror-${backend}`, legs, full],
    );
    report(t, `mirror/${backend}`, await rowTests(t, result.rows));
    assert.deepEqual(result.after.error, undefined, `afterwards: ${describe(result.after.error)}`);
    assert.equal(result.after.works, true, 'a write and a read after the table');
    if (backend !== 'memory') assert.equal(result.after.reopened, true, 'the data after close and reopen');
  });
}

// ----- Closed handles ------------------------------------------------------------------------

for (const [kind, backend, legs] of [
  ['store', 'memory', null],
  ['store', 'opfs', null],
  ['store', 'indexeddb', null],
  ['mirror', 'memory', ['memory']],
]) {
  test(`${kind} on ${backend}, closed: every method rejects with CLOSED, close() again resolves`, async (t) => {
    const result = await evaluate(
      ([k, b, name, l]) => window.boundary.closedTable(k, b, name, l),
      [kind, backend, `boundary-closed-${kind}-${backend}`, legs],
    );
    report(t, `closed/${kind}/${backend}`, await rowTests(t, result.rows));
    if (backend !== 'memory') assert.equal(result.reopened, true, 'the store reopens with its data');
  });
}

// ----- The module functions' options ---------------------------------------------------------

for (const backend of ['memory', 'opfs', 'indexeddb']) {
  test(`${backend}: open, destroy, importImage, importStream, openMirror, destroyMirror refuse bad options`, async (t) => {
    const result = await evaluate(([b, prefix]) => window.boundary.moduleTable(b, prefix), [backend, `boundary-opts-${backend}`]);
    report(t, `module/${backend}`, await rowTests(t, result.rows));
    assert.equal(result.after.held, true, 'the store held open through the table reads its pattern');
    assert.deepEqual(result.after.reopen, [
      ['closed', 'ok'],
      ['held', 'ok'],
    ], 'no lock was left behind');
  });
}

// ----- Limits -------------------------------------------------------------------------------------

test("the issue's repro: open({ name: 'x', backend: 'memory', blocks: 1 << 20 }), read(0, 1 << 19) is LIMIT_EXCEEDED, the handle works, readStream of 80 MiB", async (t) => {
  const result = await evaluate(() => window.boundary.largeStore('memory', 'x', 20480));
  report(t, 'large/memory', await rowTests(t, result.rows));
});

for (const backend of ['opfs', 'indexeddb']) {
  test(`${backend}: a store of 2^20 blocks refuses reads over 64 MiB and streams 16 MiB`, async (t) => {
    const result = await evaluate(([b]) => window.boundary.largeStore(b, `boundary-large-${b}`, 16_386), [backend]);
    report(t, `large/${backend}`, await rowTests(t, result.rows));
  });
}

test('diff of more than 1,048,576 extents is LIMIT_EXCEEDED', { skip: light && 'STRATA_BOUNDARY_LIGHT=1' }, async (t) => {
  const result = await evaluate(() => window.boundary.diffLimit('boundary-diff-limit'));
  t.diagnostic(`diff limit: ${result.ms} ms`);
  report(t, 'diff-limit', await rowTests(t, result.rows));
});

// ----- A dead worker ---------------------------------------------------------------------------

for (const backend of ['memory', 'opfs', 'indexeddb']) {
  test(`${backend}: the worker fails (its error event): WORKER_ERROR, close() resolves, the store opens again`, async (t) => {
    const result = await evaluate(([b]) => window.boundary.workerDeath(b, `boundary-death-${b}`, 'error'), [backend]);
    report(t, `death-error/${backend}`, await rowTests(t, result.rows));
    assert.equal(result.reopened, true, 'the reopened store reads its synced data');
  });
}

test('opfs: the worker is terminated: WORKER_ERROR, close() resolves, the store opens again', async (t) => {
  const result = await evaluate(() => window.boundary.workerDeath('opfs', 'boundary-death-terminate', 'terminate', 15000));
  report(t, 'death-terminate/opfs', await rowTests(t, result.rows));
  assert.equal(result.reopened, true, 'the reopened store reads its synced data');
});

test('the engine runs out of memory (a real trap): the write fails (WORKER_ERROR), close() resolves, the store opens again', { skip: light && 'STRATA_BOUNDARY_LIGHT=1' }, async (t) => {
  const result = await evaluate(() => window.boundary.exhaustMemory('boundary-oom', 6000));
  t.diagnostic(`out of memory after ${result.writtenMiB} MiB, ${result.ms} ms`);
  report(t, 'oom', await rowTests(t, result.rows));
});

test("the worker's files fail to load: open() rejects with WORKER_ERROR", async (t) => {
  const p = await context.newPage();
  try {
    await boundaryPage(p);
    const outcomes = [];
    for (const [file, fulfil] of [
      ['worker.js', { status: 404, contentType: 'text/plain', body: 'not found' }],
      ['strata_wasm_bg.wasm', { status: 200, contentType: 'application/wasm', body: 'not wasm' }],
    ]) {
      const pattern = `**/node_modules/strata-engine/${file}`;
      await p.route(pattern, (route) => route.fulfill(fulfil));
      const r = await p.evaluate((name) => window.boundary.tryOpen('memory', name), `boundary-load-${file}`);
      await p.unroute(pattern);
      outcomes.push({ ...r, id: `${r.id} with ${file} broken`, expect: 'WORKER_ERROR' });
      // And with the files back, the same page opens a store.
      const fine = await p.evaluate((name) => window.boundary.tryOpen('memory', name), `boundary-load-${file}-after`);
      outcomes.push({ ...fine, id: `${fine.id} with ${file} back`, expect: 'ok' });
    }
    report(t, 'load', await rowTests(t, outcomes));
  } finally {
    await p.close();
  }
});

// ----- Exports ---------------------------------------------------------------------------------------

test("READ_BYTES_MAX, LOG_BATCH_MAX and BATCH_WRITES_MAX are exported by 'strata-engine' and 'strata-engine/client'", async () => {
  const exported = await evaluate(() => window.boundary.exportsOf());
  const want = { READ_BYTES_MAX: 64 * 1024 * 1024, LOG_BATCH_MAX: 4096, BATCH_WRITES_MAX: 65536 };
  assert.deepEqual(exported.client, want, "from 'strata-engine/client'");
  // index.d.ts re-exports everything of client.d.ts, so TypeScript lets an app import these from
  // the package's main entry.
  assert.deepEqual(exported.index, want, "from 'strata-engine' (index.js)");
});

test('the page threw nothing uncaught', () => {
  assert.deepEqual(pageErrors, []);
});
