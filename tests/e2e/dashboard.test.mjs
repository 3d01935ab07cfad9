// End-to-end test of the dashboard as a user gets it: the built www/ (scripts/build-web.sh) served
// by scripts/serve.py, loaded in the system's headless Chromium through playwright-core.
//
// Run: node --test tests/e2e/   (scripts/test.sh does, after building www/pkg)

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const artifactsDir = path.join(repoRoot, 'tests/e2e/artifacts');
const chromiumPath = '/usr/bin/chromium';
// The flags that work as root in a closed network (docs: /work/shared/guide/toolchain.md);
// without the background-networking ones Chromium keeps trying to reach Google's services.
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

let server;
let baseUrl;
let browser;

/** The `[workspace.package] version` of the top-level Cargo.toml, which every crate inherits. */
async function workspaceVersion() {
  const manifest = await readFile(path.join(repoRoot, 'Cargo.toml'), 'utf8');
  const section = manifest.split(/^\[workspace\.package\]\s*$/m)[1];
  assert.ok(section, 'Cargo.toml has no [workspace.package] section');
  const version = section.split(/^\[/m)[0].match(/^version\s*=\s*"([^"]+)"/m);
  assert.ok(version, 'no version in [workspace.package]');
  return version[1];
}

/** Starts scripts/serve.py on a free port and resolves with its base URL. */
async function startServer() {
  const child = spawn(
    'python3',
    [path.join(repoRoot, 'scripts/serve.py'), '--port', '0', '--quiet',
      '--directory', path.join(repoRoot, 'www')],
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
  exited.catch(() => {}); // The server is killed in after(); that exit is expected.
  return { child, url };
}

before(async () => {
  assert.ok(
    existsSync(path.join(repoRoot, 'www/pkg/strata_dashboard.js')),
    'www/pkg is missing: run scripts/build-web.sh first',
  );
  ({ child: server, url: baseUrl } = await startServer());
  // Playwright gives the browser a fresh profile of its own in TMPDIR (scripts/test.sh points
  // TMPDIR at a folder it removes afterwards).
  browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
});

after(async () => {
  await browser?.close();
  server?.kill();
});

test('the dashboard shows the workspace version of the engine, without console errors', async () => {
  const expectedVersion = await workspaceVersion();
  const page = await browser.newPage({ viewport: { width: 1024, height: 600 } });
  const consoleErrors = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(`uncaught: ${error.message}`));
  const failedResponses = [];
  page.on('response', (response) => {
    if (response.status() >= 400) failedResponses.push(`${response.status()} ${response.url()}`);
  });

  const wasmResponse = page.waitForResponse((response) => response.url().endsWith('.wasm'));
  await page.goto(baseUrl);
  const wasm = await wasmResponse;
  assert.equal(wasm.status(), 200);
  assert.equal(wasm.headers()['content-type'], 'application/wasm');

  const version = page.locator('#engine-version');
  await version.waitFor({ state: 'visible', timeout: 15_000 });
  assert.equal((await version.textContent()).trim(), expectedVersion);
  assert.equal(await page.locator('h1').textContent(), 'Strata');
  // The storage panel settles once navigator.storage.estimate() has answered.
  await page.locator('#storage-usage').waitFor({ state: 'visible', timeout: 15_000 });

  await mkdir(artifactsDir, { recursive: true });
  const screenshotPath = path.join(artifactsDir, 'dashboard.png');
  const screenshot = await page.screenshot({ path: screenshotPath, fullPage: true });
  await page.close();

  assert.deepEqual(failedResponses, [], 'every request succeeds');
  assert.deepEqual(consoleErrors, [], 'no console errors');
  await assertNotBlank(screenshot);
});

/**
 * Decodes the PNG in a blank page (no CSP there) and checks it has several distinct colours,
 * spread over a fair share of the pixels: a page that failed to render is one flat colour.
 */
async function assertNotBlank(png) {
  const probe = await browser.newPage();
  try {
    const stats = await probe.evaluate(async (base64) => {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
      const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
      const context = canvas.getContext('2d');
      context.drawImage(bitmap, 0, 0);
      const { data } = context.getImageData(0, 0, bitmap.width, bitmap.height);
      const counts = new Map();
      for (let i = 0; i < data.length; i += 4) {
        const rgba = (data[i] << 24) | (data[i + 1] << 16) | (data[i + 2] << 8) | data[i + 3];
        counts.set(rgba, (counts.get(rgba) ?? 0) + 1);
      }
      const pixels = data.length / 4;
      const commonest = Math.max(...counts.values());
      return { width: bitmap.width, height: bitmap.height, colours: counts.size,
        commonestShare: commonest / pixels };
    }, png.toString('base64'));
    assert.ok(stats.width > 0 && stats.height > 0, `screenshot is ${stats.width}x${stats.height}`);
    assert.ok(stats.colours >= 8, `screenshot has only ${stats.colours} distinct colours`);
    assert.ok(stats.commonestShare < 0.95,
      `one colour covers ${(stats.commonestShare * 100).toFixed(1)}% of the screenshot`);
  } finally {
    await probe.close();
  }
}
