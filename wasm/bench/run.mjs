#!/usr/bin/env node
// Runs the browser benchmark (bench.html) in headless Chromium and prints its figures and
// ratios, with the gzipped size of the package's .wasm. Needs scripts/build-npm.sh first (it
// serves wasm/ itself, whose pkg/ is the built package) and tests/node_modules (scripts/setup.sh).
//
//   node wasm/bench/run.mjs                 the full run (a minute or two)
//   node wasm/bench/run.mjs --quick         tiny sizes, to check that the page works
//   node wasm/bench/run.mjs --writes 16384  other sizes: --writes, --naiveWrites, --reads, --blocks,
//                                           --syncEvery, --rounds (each figure is the best of 3)
//
// Not part of scripts/test.sh (timings are noisy on shared machines); the smoke test
// tests/npm/bench.test.mjs runs the quick mode so that the page cannot rot.

import { once } from 'node:events';
import http from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');
const { chromium } = await import(pathToFileURL(path.join(repoRoot, 'tests/node_modules/playwright-core/index.mjs')));

const { chromiumArgs, chromiumPath } = await import(pathToFileURL(path.join(repoRoot, 'tests/browser.mjs')));

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };

/** Serves `directory` on 127.0.0.1 (a secure context, so OPFS works); resolves to its URL. */
async function serve(directory) {
  const server = http.createServer(async (request, response) => {
    const file = path.join(directory, path.normalize(decodeURIComponent(new URL(request.url, 'http://x').pathname)));
    if (!file.startsWith(directory + path.sep)) {
      response.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      response.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${server.address().port}/` };
}

/**
 * Serves `directory`, opens `page` (a path below it, with its query) in headless Chromium,
 * prints the page's `#log` lines as they appear and resolves to the `window.benchResult` it
 * sets (rejects if that says `ok: false`). Shared by this runner and sqlite-run.mjs.
 */
export async function runPage(directory, page, print = console.log) {
  const { server, url } = await serve(directory);
  // A persistent profile, in a temporary folder removed afterwards: in an incognito context
  // (Playwright's default) OPFS and IndexedDB live in the browser process's memory and every
  // sync-access-handle call is an IPC, which is not what a user's browser does.
  const profile = await mkdtemp(path.join(os.tmpdir(), 'strata-bench-'));
  const browser = await chromium.launchPersistentContext(path.join(profile, 'user-data'), {
    executablePath: chromiumPath,
    args: chromiumArgs,
    env: { ...process.env, TMPDIR: profile },
  });
  try {
    const tab = await browser.newPage();
    let printed = 0;
    await tab.goto(`${url}${page}`);
    for (;;) {
      const state = await tab.evaluate(() => ({
        log: document.getElementById('log').textContent,
        result: window.benchResult ?? null,
      }));
      const lines = state.log.split('\n').filter((l, i, all) => i < all.length - 1);
      for (; printed < lines.length; printed++) print(lines[printed]);
      if (state.result) {
        if (!state.result.ok) throw new Error(`the bench page ${page} failed: ${state.result.error}`);
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

/** Runs the bench page; resolves to { config, results, wasmGzipBytes }. */
export async function runBench({ quick = false, sizes = {}, print = console.log } = {}) {
  const wasm = await readFile(path.join(repoRoot, 'wasm/pkg/strata_wasm_bg.wasm')).catch(() => {
    throw new Error('wasm/pkg is missing: run scripts/build-npm.sh first');
  });
  const wasmGzipBytes = gzipSync(wasm, { level: 9 }).length;
  const query = new URLSearchParams(quick ? { quick: '1' } : sizes);
  const result = await runPage(path.join(repoRoot, 'wasm'), `bench/bench.html?${query}`, print);
  const target = 250 * 1024;
  print(
    `  npm package .wasm gzipped: ${wasmGzipBytes} bytes (${(wasmGzipBytes / 1024).toFixed(1)} KiB; target <= 250 KiB) ${wasmGzipBytes <= target ? 'PASS' : 'MISS'}`,
  );
  return { config: result.config, results: result.results, wasmGzipBytes };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const sizes = {};
  let quick = false;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--quick') quick = true;
    else if (/^--(writes|naiveWrites|reads|blocks|syncEvery|rounds)$/.test(args[i]) && args[i + 1]) sizes[args[i].slice(2)] = args[++i];
    else {
      console.error(`unknown argument ${args[i]}; see the comment at the top of ${path.relative(process.cwd(), fileURLToPath(import.meta.url))}`);
      process.exit(2);
    }
  }
  const started = Date.now();
  console.log(`strata browser benchmark (headless Chromium, ${new Date().toISOString()})`);
  await runBench({ quick, sizes });
  console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s)`);
}
