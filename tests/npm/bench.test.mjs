// Smoke runs of the browser benchmarks (wasm/bench/: the engine's and SQLite's) at tiny sizes,
// so that the pages, the worker and the runners cannot rot. Timings are not checked here: run
// `node wasm/bench/run.mjs` and `node wasm/bench/sqlite-run.mjs` for the figures.
//
// Run: scripts/build-npm.sh && node --test tests/npm/   (scripts/test.sh does)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runBench } from '../../wasm/bench/run.mjs';
import { runSqliteBench } from '../../wasm/bench/sqlite-run.mjs';

test('the bench page runs every measurement and reports its ratios', async () => {
  const lines = [];
  const { results, wasmGzipBytes } = await runBench({ quick: true, print: (line) => lines.push(line) });
  for (const part of ['opfsEngine', 'idbEngine', 'memoryEngine']) {
    for (const field of ['writeUs', 'headReadUs', 'snapshotReadUs']) {
      assert.ok(Number.isFinite(results[part][field]) && results[part][field] > 0, `${part}.${field}`);
    }
  }
  for (const part of ['opfsRaw', 'opfsRawPreallocated', 'idbNaive', 'idbBatched']) {
    assert.ok(Number.isFinite(results[part].writeUs) && results[part].writeUs > 0, `${part}.writeUs`);
  }
  assert.equal(results.ratios.length, 4);
  for (const ratio of results.ratios) assert.ok(Number.isFinite(ratio.value) && ratio.value > 0, ratio.what);
  assert.ok(wasmGzipBytes > 0);
  assert.ok(lines.some((line) => /PASS|MISS/.test(line)), 'the ratios are printed');
});

test('the SQLite bench page measures Strata and the wa-sqlite peers and prints ratios', async () => {
  const lines = [];
  const { results, ratios } = await runSqliteBench({ quick: true, print: (line) => lines.push(line) });
  assert.equal(Object.keys(results).length, 5);
  for (const [engine, figures] of Object.entries(results)) {
    for (const field of ['commitsPerS', 'bulkRowsPerS', 'pointMs', 'scanMs']) {
      assert.ok(Number.isFinite(figures[field]) && figures[field] > 0, `${engine}.${field}: ${figures[field]}`);
    }
  }
  assert.equal(ratios.length, 12);
  assert.ok(lines.some((line) => line.startsWith('ratio ')), 'the ratios are printed');
});
