// Shared by the dashboard's end-to-end tests: serving www/, launching the system's Chromium,
// driving the dashboard (every action waits for its outcome message) and checking screenshots.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { chromiumArgs, chromiumPath, startServer as startStaticServer } from '../browser.mjs';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const artifactsDir = path.join(repoRoot, 'tests/e2e/artifacts');

/** Serves www/ on a free port of 127.0.0.1; resolves to { child, url }. */
export function startServer() {
  return startStaticServer(path.join(repoRoot, 'www'));
}

export function launchBrowser() {
  // Playwright gives the browser a fresh profile of its own in TMPDIR (scripts/test.sh points
  // TMPDIR at a folder it removes afterwards).
  return chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
}

/**
 * Opens the dashboard in `context` and waits until it has rendered. `page.problems` collects
 * console errors, uncaught exceptions and failed requests, for the test to assert empty.
 */
export async function openDashboard(context, baseUrl, viewport = { width: 1200, height: 900 }) {
  const page = await context.newPage({ viewport });
  await page.setViewportSize(viewport);
  page.problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error') page.problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => page.problems.push(`uncaught: ${error.message}`));
  page.on('response', (response) => {
    if (response.status() >= 400) page.problems.push(`${response.status()} ${response.url()}`);
  });
  await page.goto(baseUrl);
  await page.locator('#engine-version').waitFor({ state: 'visible', timeout: 20_000 });
  return page;
}

/**
 * Runs `action` (clicks) and waits for the outcome message: resolves with its text when it
 * matches `expected`; fails with the message (and its code) when an error is shown instead.
 */
export async function act(page, action, expected, { timeout = 30_000 } = {}) {
  const dismiss = page.locator('#notice button');
  if (await dismiss.count()) await dismiss.click();
  await action();
  const handle = await page.waitForFunction(
    (source) => {
      const notice = document.getElementById('notice');
      if (!notice) return null;
      const text = document.getElementById('notice-text')?.textContent ?? '';
      if (notice.classList.contains('error')) return { error: true, text, code: notice.dataset.code };
      return new RegExp(source).test(text) ? { error: false, text } : null;
    },
    expected.source,
    { timeout },
  );
  const outcome = await handle.jsonValue();
  assert.equal(outcome.error, false, `expected ${expected}, got the error ${outcome.text}`);
  return outcome.text;
}

/** Like `act`, for an action that must fail: resolves with the error's code. */
export async function actFails(page, action, { timeout = 30_000 } = {}) {
  const dismiss = page.locator('#notice button');
  if (await dismiss.count()) await dismiss.click();
  await action();
  await page.locator('#notice.error').waitFor({ timeout });
  return page.locator('#notice').getAttribute('data-code');
}

/** Opens or creates the store `name` on `backend` through the store form. */
export async function openStore(page, { name, backend = 'memory', blockSize = 4096, blocks = 64 }) {
  await page.locator('#backend').selectOption(backend);
  await page.locator('#store-name').fill(name);
  await page.locator('#block-size').fill(String(blockSize));
  await page.locator('#block-count').fill(String(blocks));
  await act(page, () => page.locator('#open-store').click(), /^Opened store/);
}

/** Writes through the write form. `mode` is text, hex, pattern or random. */
export async function write(page, { mode = 'text', addr = 0, content, pattern, count }) {
  await page.locator('#write-mode').selectOption(mode);
  if (mode !== 'random') await page.locator('#write-addr').fill(String(addr));
  if (content !== undefined) await page.locator('#write-content').fill(content);
  if (pattern !== undefined) await page.locator('#write-pattern').fill(pattern);
  if (count !== undefined) await page.locator('#write-count').fill(String(count));
  return act(page, () => page.locator('#write-submit').click(), /^Appended/);
}

/** Opens block `addr` of the volume the map shows; resolves with its text and hex. */
export async function openBlock(page, addr) {
  // Close a block already open, so that what is read below is the new one, not a stale view.
  const close = page.locator('#block-view button');
  if (await close.count()) {
    await close.click();
    await page.locator('#block-view').waitFor({ state: 'detached' });
  }
  await page.locator('#open-block-addr').fill(String(addr));
  await page.locator('#open-block').click();
  await page.waitForFunction(
    (a) => document.getElementById('block-view-title')?.textContent.startsWith(`Block ${a} `),
    addr,
  );
  return {
    title: await page.locator('#block-view-title').textContent(),
    text: await page.locator('#block-text').textContent(),
    hex: await page.locator('#block-hex').textContent(),
    provenance: await page.locator('#block-provenance').textContent(),
  };
}

/** The rows of the volumes table: id, kind, label. */
export async function volumeRows(page) {
  return page.locator('#volumes tbody tr').evaluateAll((rows) =>
    rows.map((row) => ({
      id: Number(row.dataset.volume),
      kind: row.cells[1].textContent,
      label: row.cells[2].textContent,
      head: row.classList.contains('head'),
    })),
  );
}

/** Saves a full-page screenshot as tests/e2e/artifacts/<name>.png and checks it is not blank. */
export async function screenshot(page, browser, name) {
  await mkdir(artifactsDir, { recursive: true });
  const png = await page.screenshot({ path: path.join(artifactsDir, `${name}.png`), fullPage: true });
  await assertNotBlank(browser, png);
  return png;
}

/**
 * Decodes the PNG in a blank page (no CSP there) and checks it has several distinct colours,
 * spread over a fair share of the pixels: a page that failed to render is one flat colour.
 */
export async function assertNotBlank(browser, png) {
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
