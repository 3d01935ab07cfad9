// The npm package tried as a new user would: `npm pack` the built package (wasm/pkg, from
// scripts/build-npm.sh), install the tarball into a scratch app, serve the app and drive it in the
// system's headless Chromium through playwright-core. The app (tests/npm/app/) imports
// `strata-engine` by its bare name through an import map, as an app without a bundler would.
//
// Run: scripts/build-npm.sh && node --test tests/npm/   (scripts/test.sh does)

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');
const packageDir = path.join(repoRoot, 'wasm/pkg');
// The flags that work as root in a closed network (see tests/e2e/dashboard.test.mjs).
const chromiumArgs = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let workDir;
let server;
let baseUrl;
let browser;
let context;

async function startServer(directory) {
  const child = spawn(
    'python3',
    [path.join(repoRoot, 'scripts/serve.py'), '--port', '0', '--quiet', '--directory', directory],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout });
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`serve.py exited with code ${code} before listening`);
  });
  const listening = (async () => {
    for await (const line of lines) {
      const match = line.match(/ at (http:\/\/\S+)$/);
      if (match) return match[1];
    }
    throw new Error('serve.py closed its output without printing its URL');
  })();
  const url = await Promise.race([listening, exited]);
  exited.catch(() => {});
  return { child, url };
}

/** A page of the scratch app, loaded and ready. */
async function appPage() {
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  await page.goto(`${baseUrl}index.html`);
  await page.waitForFunction(() => document.getElementById('status')?.textContent === 'ready', null, {
    timeout: 30_000,
  });
  assert.deepEqual(problems, [], 'the app page threw');
  return page;
}

before(async () => {
  assert.ok(
    existsSync(path.join(packageDir, 'package.json')),
    'wasm/pkg is missing: run scripts/build-npm.sh first',
  );
  workDir = await mkdtemp(path.join(os.tmpdir(), 'strata-npm-'));
  // npm pack, then install the tarball into an empty app: what a user of the package gets.
  const { stdout } = await run('npm', ['pack', packageDir, '--pack-destination', workDir, '--json']);
  const tarball = path.join(workDir, JSON.parse(stdout)[0].filename);
  const appDir = path.join(workDir, 'app');
  await cp(path.join(here, 'app'), appDir, { recursive: true });
  await writeFile(
    path.join(appDir, 'package.json'),
    JSON.stringify({ name: 'strata-npm-scratch-app', private: true, type: 'module' }, null, 2),
  );
  await run('npm', ['install', tarball, '--offline', '--no-audit', '--no-fund'], { cwd: appDir });
  assert.ok(existsSync(path.join(appDir, 'node_modules/strata-engine/worker.js')));

  ({ child: server, url: baseUrl } = await startServer(appDir));
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: chromiumArgs });
  context = await browser.newContext();
});

after(async () => {
  await browser?.close();
  server?.kill();
  if (workDir) await rm(workDir, { recursive: true, force: true });
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
