#!/usr/bin/env node
// Runs the SQLite benchmark (sqlite.html: SQLite on Strata against the same wa-sqlite on its own
// OPFS and IndexedDB storage) in headless Chromium and prints its figures and ratios. Needs
// scripts/build-npm.sh (wasm/pkg) and tests/node_modules (scripts/setup.sh).
//
//   node wasm/bench/sqlite-run.mjs           the full run (about a minute)
//   node wasm/bench/sqlite-run.mjs --quick   tiny sizes, to check that the page works
//
// Not part of scripts/test.sh (timings are noisy); tests/npm/bench.test.mjs runs the quick mode.

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { serve } from './run.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');
const { chromium } = await import(pathToFileURL(path.join(repoRoot, 'tests/node_modules/playwright-core/index.mjs')));
const { chromiumArgs, chromiumPath } = await import(pathToFileURL(path.join(repoRoot, 'tests/browser.mjs')));

/** Runs the page; resolves to { config, results, ratios }. */
export async function runSqliteBench({ quick = false, print = console.log } = {}) {
  // The repository's root: the page imports wasm/pkg and tests/node_modules by absolute paths.
  const { server, url } = await serve(repoRoot);
  // A persistent profile, as in run.mjs: OPFS and IndexedDB on disk, as in a user's browser.
  const profile = await mkdtemp(path.join(os.tmpdir(), 'strata-sqlite-bench-'));
  const browser = await chromium.launchPersistentContext(path.join(profile, 'user-data'), {
    executablePath: chromiumPath,
    args: chromiumArgs,
    env: { ...process.env, TMPDIR: profile },
  });
  try {
    const page = await browser.newPage();
    await page.goto(`${url}wasm/bench/sqlite.html${quick ? '?quick=1' : ''}`);
    let printed = 0;
    for (;;) {
      const state = await page.evaluate(() => ({
        log: document.getElementById('log').textContent,
        result: window.benchResult ?? null,
      }));
      const lines = state.log.split('\n').filter((l, i, all) => i < all.length - 1);
      for (; printed < lines.length; printed++) print(lines[printed]);
      if (state.result) {
        if (!state.result.ok) throw new Error(`the SQLite bench page failed: ${state.result.error}`);
        return state.result;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    await browser.close();
    server.close();
    await rm(profile, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  const started = Date.now();
  console.log(`SQLite on Strata: browser benchmark (headless Chromium, ${new Date().toISOString()})`);
  await runSqliteBench({ quick });
  console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s)`);
}
