#!/usr/bin/env node
// Runs the SQLite benchmark (sqlite.html: SQLite on Strata against the same wa-sqlite on its own
// OPFS and IndexedDB storage) in headless Chromium and prints its figures and ratios. Needs
// scripts/build-npm.sh (wasm/pkg) and tests/node_modules (scripts/setup.sh).
//
//   node wasm/bench/sqlite-run.mjs           the full run (about two minutes)
//   node wasm/bench/sqlite-run.mjs --quick   tiny sizes, to check that the page works
//
// Not part of scripts/test.sh (timings are noisy); tests/npm/bench.test.mjs runs the quick mode.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runPage } from './run.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Runs the page; resolves to { config, results, ratios }. */
export function runSqliteBench({ quick = false, print = console.log } = {}) {
  // The repository's root: the page imports wasm/pkg and tests/node_modules by absolute paths.
  return runPage(repoRoot, `wasm/bench/sqlite.html${quick ? '?quick=1' : ''}`, print);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  const started = Date.now();
  console.log(`SQLite on Strata: browser benchmark (headless Chromium, ${new Date().toISOString()})`);
  await runSqliteBench({ quick });
  console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s)`);
}
