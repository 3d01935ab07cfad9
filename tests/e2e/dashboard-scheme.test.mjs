// End-to-end tests of the dashboard's teaching views: the layers (scheme) view with its read
// path, before/after of compaction, merge and deletion and the log cursor; the mirror view, in
// memory and on OPFS and IndexedDB with faults made while it is closed (damaged copies, a lost
// leg); an accessibility audit (axe-core) of each; a million-block store; phone width. Every
// action goes through the UI (the scheme's and the mirror's by keyboard; only the faults are made
// in the page, behind the closed mirror's back), and each drawing is checked against what the
// engine reported.
//
// Run: node --test tests/e2e/   (after scripts/build-web.sh)
// With STRATA_SCREENSHOTS=docs/screenshots, also writes one PNG per view there (for the README).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  act, launchBrowser, openDashboard, openStore, repoRoot, screenshot, startServer, write,
} from './helpers.mjs';

let server;
let baseUrl;
let browser;
let axeSource;
const screenshotsDir = process.env.STRATA_SCREENSHOTS
  ? path.resolve(repoRoot, process.env.STRATA_SCREENSHOTS)
  : null;

before(async () => {
  assert.ok(existsSync(path.join(repoRoot, 'www/pkg/strata_dashboard.js')),
    'www/pkg is missing: run scripts/build-web.sh first');
  axeSource = await readFile(path.join(repoRoot, 'tests/node_modules/axe-core/axe.min.js'), 'utf8');
  ({ child: server, url: baseUrl } = await startServer());
  browser = await launchBrowser();
  if (screenshotsDir) await mkdir(screenshotsDir, { recursive: true });
});

after(async () => {
  await browser?.close();
  server?.kill();
});

/**
 * Runs axe-core on the page and fails on any violation. axe is evaluated through the DevTools
 * protocol, which the page's CSP (no inline scripts) does not govern; nothing is excluded.
 */
async function assertAccessible(page, what) {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const results = await globalThis.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
      resultTypes: ['violations'],
    });
    return results.violations.map((v) => ({
      id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')),
    }));
  });
  assert.deepEqual(violations, [], `${what}: axe found ${JSON.stringify(violations, null, 1)}`);
}

/** Saves a PNG of `locator` into STRATA_SCREENSHOTS (when set), checked small. */
async function saveScreenshot(locator, name) {
  if (!screenshotsDir) return;
  const file = path.join(screenshotsDir, `${name}.png`);
  await locator.screenshot({ path: file, animations: 'disabled' });
  const { size } = await stat(file);
  assert.ok(size < 150_000, `${name}.png is ${size} bytes`);
}

/**
 * Presses Enter on `selector` after focusing it, as a keyboard user does (a key first, so that the
 * browser is in keyboard mode), and checks that the focus shows (the stylesheet's outline).
 */
async function pressOn(page, selector) {
  await page.keyboard.press('Shift');
  await page.locator(selector).focus();
  const outline = await page.evaluate(() => {
    const focused = document.activeElement;
    return focused?.matches(':focus-visible') ? getComputedStyle(focused).outlineStyle : 'none';
  });
  assert.equal(outline, 'solid', `${selector} shows its focus`);
  await page.keyboard.press('Enter');
}

/** `pressOn`, waiting for the outcome message like `act`. */
function actByKeyboard(page, selector, expected) {
  return act(page, () => pressOn(page, selector), expected);
}

/** The live drawing's layers: volume, regions held, regions served to the chosen volume. */
function layers(page, drawing = '#scheme-live') {
  return page.locator(`${drawing} .layer`).evaluateAll((all) =>
    all.map((l) => ({
      volume: Number(l.dataset.volume),
      held: Number(l.dataset.held),
      serves: Number(l.dataset.serves),
      ghost: l.classList.contains('ghost'),
    })).sort((a, b) => a.volume - b.volume));
}

async function snapshot(page, label) {
  await page.locator('#tab-blocks').click();
  await page.locator('#snapshot-label').fill(label);
  const text = await act(page, () => page.locator('#snapshot').click(), /^Sealed the head as snapshot/);
  return Number(text.match(/snapshot (\d+)/)[1]);
}

async function showScheme(page) {
  await page.locator('#tab-scheme').click();
  await page.locator('#scheme-live').waitFor();
}

test('layers: snapshots stack on the baseline, the read path, before/after of compact, merge and delete, the log cursor', async () => {
  const context = await browser.newContext({ reducedMotion: 'reduce' });
  const page = await openDashboard(context, baseUrl, { width: 1100, height: 900 });
  // 64 blocks: one region per block, so the drawing is exact and can be checked block by block.
  await openStore(page, { name: 'layers', blocks: 64 });
  await write(page, { mode: 'pattern', addr: 0, pattern: 'aa', count: 4 });
  await write(page, { mode: 'text', addr: 1, content: 'again' });
  const one = await snapshot(page, 'one');
  await write(page, { mode: 'text', addr: 0, content: 'two' });
  await write(page, { mode: 'text', addr: 9, content: 'two' });
  const two = await snapshot(page, 'two');
  await write(page, { mode: 'text', addr: 20, content: 'head' });
  assert.deepEqual([one, two], [1, 2]);

  await showScheme(page);
  await page.waitForFunction(() => document.querySelectorAll('#scheme-live .layer').length === 4);
  // Blocks 0-3 in 1 (0 later overwritten by 2), 0 and 9 in 2, 20 in the head 3.
  assert.deepEqual(await layers(page), [
    { volume: 0, held: 0, serves: 0, ghost: false },
    { volume: 1, held: 4, serves: 3, ghost: false },
    { volume: 2, held: 2, serves: 2, ghost: false },
    { volume: 3, held: 1, serves: 1, ghost: false },
  ]);
  // Stacked: the head on top, the baseline at the bottom, one lane.
  const order = await page.locator('#scheme-live .scheme-row .layer').evaluateAll((all) =>
    all.map((l) => Number(l.dataset.volume)));
  assert.deepEqual(order, [3, 2, 1, 0]);
  assert.match(await page.locator('#scheme-live .layer[data-volume="1"] .label').textContent(), /^one$/);
  assert.match(await page.locator('#scheme-live .read-strip svg').getAttribute('aria-label'),
    /^Volume 3 reads its 64 regions: .*2 from volume 2 “two”.*3 from volume 1 “one”/);

  // The read path of volume 1 instead, by keyboard: it reads its own 4 blocks, nothing from 2.
  await pressOn(page, '#scheme-live .layer[data-volume="1"] button.read-path');
  await page.waitForFunction(() => /^Volume 1 reads/.test(
    document.querySelector('#scheme-live .read-title')?.textContent));
  assert.deepEqual((await layers(page)).map((l) => l.serves), [0, 4, 0, 0]);
  assert.equal(await page.locator('#scheme-live .layer[data-volume="1"] button.read-path').getAttribute('aria-pressed'), 'true');
  await pressOn(page, '#scheme-live .layer[data-volume="3"] button.read-path');
  await page.waitForFunction(() => /^Volume 3 reads/.test(
    document.querySelector('#scheme-live .read-title')?.textContent));
  await saveScreenshot(page.locator('main > section:has(#scheme-live)'), 'layers');
  await assertAccessible(page, 'the layers view');

  // The log cursor walks the entries and points at their layer.
  await pressOn(page, '#cursor-step');
  await page.waitForFunction(() => /^Step 1: entry \d+ writes blocks 0–3 in volume 1/.test(
    document.getElementById('cursor-entry')?.textContent));
  assert.equal(await page.locator('#scheme-live .layer.cursor').getAttribute('data-volume'), '1');
  assert.equal(await page.locator('#scheme-live .layer.cursor .cursor-mark').count(), 1);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => /^Step 2: .* writes block 1 in volume 1/.test(
    document.getElementById('cursor-entry')?.textContent));
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => /^Step 3: .* writes block 0 in volume 2/.test(
    document.getElementById('cursor-entry')?.textContent));
  assert.equal(await page.locator('#scheme-live .layer.cursor').getAttribute('data-volume'), '2');
  await saveScreenshot(page.locator('main > section:has(#cursor-step)'), 'log-cursor');

  // Compaction of 1 drops the block overwritten inside it; it keeps its id and its regions.
  const compacted = await actByKeyboard(page, '#scheme-live .layer[data-volume="1"] button.compact', /^Compacted volume 1: /);
  const dropped = Number(compacted.match(/(\d+) dropped/)[1]);
  assert.equal(dropped, 1, compacted);
  await page.locator('#transition').waitFor();
  assert.match(await page.locator('#transition-title').textContent(), /^Compact volume 1: before and after/);
  assert.equal(await page.locator('#transition-report').textContent(), compacted);
  assert.match(await page.locator('#transition-changes').textContent(),
    /volume 1 “one” keeps its id and its regions: .*KiB → .*KiB/);
  assert.equal(await page.locator('#scheme-after .layer.resized').getAttribute('data-volume'), '1');
  assert.deepEqual((await layers(page, '#scheme-after')).map((l) => l.volume), [0, 1, 2, 3]);

  // Merging 1 folds it into the baseline: the layer is gone, the baseline serves what it did.
  await actByKeyboard(page, '#scheme-live .layer[data-volume="1"] button.merge', /^Merged 1 partition\(s\) into the baseline/);
  await page.waitForFunction(() => /^Merge up to volume 1/.test(document.getElementById('transition-title')?.textContent));
  assert.deepEqual((await layers(page, '#scheme-before')).map((l) => l.volume), [0, 1, 2, 3]);
  assert.equal(await page.locator('#scheme-before .layer.leaving').getAttribute('data-volume'), '1');
  assert.deepEqual((await layers(page, '#scheme-after')).map((l) => l.volume), [0, 2, 3]);
  assert.match(await page.locator('#transition-changes').textContent(), /volume 1 “one” is gone/);
  await page.waitForFunction(() => document.querySelectorAll('#scheme-live .layer').length === 3);
  const merged = await layers(page);
  // Blocks 1-3 (from 1) and every never-written block now come from the baseline image.
  assert.equal(merged.find((l) => l.volume === 0).serves, 64 - 3);
  await saveScreenshot(page.locator('#transition'), 'merge-before-after');

  // Deleting 2, which the head still reads from: the engine keeps its partition for the head.
  const deleted = await actByKeyboard(page, '#scheme-live .layer[data-volume="2"] button.delete', /^Deleted volume 2: 2 blocks kept for descendants/);
  await page.waitForFunction(() => /^Delete volume 2/.test(document.getElementById('transition-title')?.textContent));
  assert.equal(await page.locator('#transition-report').textContent(), deleted);
  await page.waitForFunction(() => document.querySelector('#scheme-live .layer[data-volume="2"]')?.classList.contains('ghost'));
  assert.deepEqual(await layers(page), [
    { volume: 0, held: 64, serves: 61, ghost: false },
    { volume: 2, held: 2, serves: 2, ghost: true },
    { volume: 3, held: 1, serves: 1, ghost: false },
  ]);
  assert.equal(await page.locator('#scheme-live .layer[data-volume="2"] button').count(), 0,
    'a deleted volume has no actions');
  await assertAccessible(page, 'the before/after view');
  assert.deepEqual(page.problems, []);
  await context.close();
});

test('mirror: legs, secondary, scrub and a replaced leg, all by keyboard', async () => {
  const context = await browser.newContext();
  const page = await openDashboard(context, baseUrl, { width: 1000, height: 900 });
  await pressOn(page, '#tab-mirror');
  await page.locator('#mirror-form').waitFor();
  await page.locator('#mirror-name').fill('e2e-mirror');
  await page.locator('#mirror-legs').selectOption('3');
  await page.locator('#mirror-blocks').fill('128');
  await actByKeyboard(page, '#mirror-open', /^Opened mirror e2e-mirror: 3 legs/);
  const states = () => page.locator('.leg').evaluateAll((all) =>
    all.map((l) => [Number(l.dataset.leg), l.dataset.state, Number(l.dataset.replacements)]));
  assert.deepEqual(await states(), [[0, 'healthy', 0], [1, 'healthy', 0], [2, 'healthy', 0]]);
  assert.match(await page.locator('#mirror-health').textContent(), /^Healthy: all 3 legs in service/);

  await actByKeyboard(page, '#mirror-write', /^Wrote 8 blocks .* synced them to 3 legs/);
  await actByKeyboard(page, '#mirror-snapshot', /^Sealed the mirror's head as snapshot 1/);
  await page.waitForFunction(() => document.querySelector('#mirror-secondary .chip[data-volume="1"]'));
  const scrubbed = await actByKeyboard(page, '#mirror-scrub', /^Scrubbed: /);
  // Every block on every leg in service was checked, and nothing was bad.
  const [, copies, blocks, bad] = scrubbed.match(/(\d+) copies of (\d+) blocks checked, (\d+) bad/).map(Number);
  assert.equal(copies, blocks * 3, scrubbed);
  assert.equal(bad, 0, scrubbed);
  assert.match(await page.locator('#mirror-scrub-report').textContent(), /leg 2: \d+ checked, 0 bad/);

  // Replace leg 1: wiped and resilvered from the others; it is in service again, counted.
  const replaced = await actByKeyboard(page, '.leg[data-leg="1"] button.replace', /^Replaced leg 1: \d+ blocks checked, \d+ written/);
  assert.ok(Number(replaced.match(/(\d+) written/)[1]) > 0, replaced);
  assert.deepEqual(await states(), [[0, 'healthy', 0], [1, 'healthy', 1], [2, 'healthy', 0]]);
  assert.match(await page.locator('#mirror-resilver-report').textContent(), /^Last replacement: leg 1/);
  await saveScreenshot(page.locator('#mirror-diagram'), 'mirror');
  await assertAccessible(page, 'the mirror view');

  await actByKeyboard(page, '#mirror-close', /^Closed mirror e2e-mirror/);
  await page.locator('#mirror-form').waitFor();
  assert.deepEqual(page.problems, []);
  await context.close();
});

/** Types `text` into the field `selector` by keyboard, replacing what it held. */
async function typeInto(page, selector, text) {
  await page.locator(selector).focus();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.type(text);
}

/**
 * Chooses `value` in the select `selector` by keyboard: Home, then ArrowDown until it is
 * chosen (a closed select takes arrow keys and reports each change).
 */
async function chooseByKeyboard(page, selector, value) {
  const select = page.locator(selector);
  await select.focus();
  await page.keyboard.press('Home');
  const options = await select.locator('option').count();
  for (let i = 0; i < options && (await select.inputValue()) !== value; i += 1) {
    await page.keyboard.press('ArrowDown');
  }
  assert.equal(await select.inputValue(), value, `${selector} offers ${value}`);
}

/** Each leg card's leg, state, open outcome and replacements. */
function legStates(page) {
  return page.locator('.leg').evaluateAll((all) =>
    all.map((l) => [Number(l.dataset.leg), l.dataset.state, l.dataset.open, Number(l.dataset.replacements)]));
}

/** A leg card's counters: bad copies found and repaired (as the card shows them). */
async function legCounters(page, leg) {
  const text = await page.locator(`.leg[data-leg="${leg}"] .counters`).textContent();
  const [, detected, repaired] = text.match(/bad copies found(\d+)repaired(\d+)/).map(Number);
  return { detected, repaired };
}

test('mirror on OPFS and IndexedDB: copies damaged while closed are found and repaired by a scrub, a lost leg is replaced', async () => {
  const context = await browser.newContext();
  const page = await openDashboard(context, baseUrl, { width: 1000, height: 900 });
  await pressOn(page, '#tab-mirror');
  await page.locator('#mirror-form').waitFor();
  await typeInto(page, '#mirror-name', 'faulty');
  await chooseByKeyboard(page, '#mirror-backend', 'opfs');
  await chooseByKeyboard(page, '#mirror-leg-0', 'opfs');
  await chooseByKeyboard(page, '#mirror-leg-1', 'indexeddb');
  await typeInto(page, '#mirror-blocks', '64');
  await actByKeyboard(page, '#mirror-open',
    /^Opened mirror faulty: 2 legs \(opfs, indexeddb\) and a secondary on opfs$/);
  assert.match(await page.locator('.leg[data-leg="0"] .leg-where').textContent(), /^opfs store faulty\.leg0;/);
  assert.match(await page.locator('.leg[data-leg="1"] .leg-where').textContent(), /^indexeddb store faulty\.leg1;/);
  await actByKeyboard(page, '#mirror-write', /^Wrote 8 blocks .* synced them to 2 legs/);
  await actByKeyboard(page, '#mirror-close', /^Closed mirror faulty/);
  await page.locator('#mirror-form').waitFor();

  // While the mirror is closed, damage leg 0's copy of up to two written blocks: bytes inside
  // their data in the leg's image (primary.img, block i at byte i * 4096; engine/docs/format.md),
  // so that only their checksums (primary.sum) tell. A written block holds random bytes, never
  // all zeros.
  const damage = await page.evaluate(async () => {
    const root = await navigator.storage.getDirectory();
    const leg = await root.getDirectoryHandle('strata-faulty.leg0');
    const image = await leg.getFileHandle('primary.img');
    const bytes = new Uint8Array(await (await image.getFile()).arrayBuffer());
    const blockSize = 4096;
    const written = [];
    for (let addr = 0; (addr + 1) * blockSize <= bytes.length; addr += 1) {
      if (bytes.subarray(addr * blockSize, (addr + 1) * blockSize).some((b) => b !== 0)) written.push(addr);
    }
    const victims = written.slice(0, 2);
    const writable = await image.createWritable({ keepExistingData: true });
    for (const addr of victims) {
      const at = addr * blockSize + 100;
      await writable.write({ type: 'write', position: at, data: bytes.slice(at, at + 16).map((b) => b ^ 0xff) });
    }
    await writable.close();
    return { victims, imageBytes: bytes.length };
  });
  assert.ok(damage.victims.length > 0, `no written block in leg 0's image: ${JSON.stringify(damage)}`);
  const bad = damage.victims.length;

  // Reopened from the same form (it kept the legs): the leg's header is in step, so opening
  // reads nothing and the damage is not seen yet.
  assert.equal(await page.locator('#mirror-leg-1').inputValue(), 'indexeddb');
  await actByKeyboard(page, '#mirror-open', /^Opened mirror faulty: 2 legs/);
  assert.deepEqual(await legStates(page), [[0, 'healthy', 'inSync', 0], [1, 'healthy', 'inSync', 0]]);

  // The scrub finds the bad copies on leg 0, rewrites them from leg 1, and the view says so.
  const scrubbed = await actByKeyboard(page, '#mirror-scrub', /^Scrubbed: /);
  const [, copies, blocks, detected, repaired] =
    scrubbed.match(/(\d+) copies of (\d+) blocks checked, (\d+) bad, (\d+) repaired/).map(Number);
  assert.deepEqual([copies, detected, repaired], [blocks * 2, bad, bad], scrubbed);
  assert.match(await page.locator('#mirror-scrub-report').textContent(),
    new RegExp(`leg 0: \\d+ checked, ${bad} bad, ${bad} repaired.*leg 1: \\d+ checked, 0 bad, 0 repaired`));
  assert.deepEqual(await legCounters(page, 0), { detected: bad, repaired: bad });
  assert.deepEqual(await legCounters(page, 1), { detected: 0, repaired: 0 });
  const faults = await page.locator('#mirror-events li').allTextContents();
  assert.deepEqual(faults.sort(), damage.victims
    .map((addr) => `leg 0: checksum fault at block ${addr} found by scrub, repaired`).sort());
  assert.deepEqual((await legStates(page)).map(([, state]) => state), ['healthy', 'healthy']);
  assert.match(await page.locator('#mirror-health').textContent(), /^Healthy: all 2 legs in service/);
  await saveScreenshot(page.locator('#mirror-state'), 'mirror-repair');
  await assertAccessible(page, 'the mirror view after a repair');
  // The repair was written: a second scrub finds every copy good.
  const again = await actByKeyboard(page, '#mirror-scrub', /^Scrubbed: /);
  assert.match(again, /, 0 bad, 0 repaired$/);

  // Leg 1's storage removed while closed (its IndexedDB database deleted): reopened, the leg is
  // out of service and the mirror runs on leg 0 and the secondary.
  await actByKeyboard(page, '#mirror-close', /^Closed mirror faulty/);
  await page.evaluate(() => new Promise((resolve, reject) => {
    const request = indexedDB.deleteDatabase('strata-faulty.leg1');
    request.onsuccess = resolve;
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error('the leg database is still open'));
  }));
  await actByKeyboard(page, '#mirror-open', /^Opened mirror faulty: 2 legs/);
  assert.deepEqual(await legStates(page), [[0, 'healthy', 'inSync', 0], [1, 'degraded', 'failed', 0]]);
  assert.match(await page.locator('.leg[data-leg="1"] .error').textContent(), /holds no primary/);
  assert.match(await page.locator('.leg[data-leg="1"] .leg-where').textContent(), /at open: could not be used$/);
  assert.match(await page.locator('#mirror-health').textContent(), /^Degraded: 1 of 2 legs in service/);
  await assertAccessible(page, 'the mirror view with a leg out of service');
  await actByKeyboard(page, '#mirror-write', /synced them to 1 legs$/);

  // Replacing leg 1 resilvers it from leg 0: in service again, and every copy scrubs good.
  const replaced = await actByKeyboard(page, '.leg[data-leg="1"] button.replace', /^Replaced leg 1: \d+ blocks checked, \d+ written/);
  assert.ok(Number(replaced.match(/(\d+) written/)[1]) > 0, replaced);
  assert.deepEqual((await legStates(page)).map(([leg, state, , replacements]) => [leg, state, replacements]),
    [[0, 'healthy', 0], [1, 'healthy', 1]]);
  assert.match(await page.locator('#mirror-health').textContent(), /^Healthy: all 2 legs in service/);
  const after = await actByKeyboard(page, '#mirror-scrub', /^Scrubbed: /);
  assert.match(after, /^Scrubbed: (\d+) copies of \d+ blocks checked, 0 bad, 0 repaired$/);
  await assertAccessible(page, 'the mirror view after a replacement');
  await actByKeyboard(page, '#mirror-close', /^Closed mirror faulty/);
  assert.deepEqual(page.problems, []);
  await context.close();
});

test('a million-block store draws its layers with a bounded number of shapes', async () => {
  const context = await browser.newContext();
  const page = await openDashboard(context, baseUrl);
  await openStore(page, { name: 'big-layers', blocks: 1_000_000 });
  // Far-apart writes of 8192 blocks (two records of 4096, the most one holds) in two layers:
  // more than half of a region of 15625 blocks each.
  await write(page, { mode: 'pattern', addr: 0, pattern: '11', count: 4096 });
  await write(page, { mode: 'pattern', addr: 4096, pattern: '11', count: 4096 });
  await snapshot(page, 'first');
  await write(page, { mode: 'pattern', addr: 990_000, pattern: '22', count: 4096 });
  await write(page, { mode: 'pattern', addr: 994_096, pattern: '22', count: 4096 });
  await showScheme(page);
  await page.waitForFunction(() => document.querySelectorAll('#scheme-live .layer').length === 3);
  assert.match(await page.locator('#scheme-scope').textContent(), /^1000000 blocks in 64 regions of about 15625 blocks/);
  const counts = await page.evaluate(() => ({
    nodes: document.querySelectorAll('#scheme-live *').length,
    rects: document.querySelectorAll('#scheme-live rect').length,
  }));
  assert.ok(counts.nodes < 400, `${counts.nodes} DOM nodes in the drawing`);
  // The first region is held by 1, the last one by the head; the head reads one from each.
  const [baseline, first, head] = await layers(page);
  assert.deepEqual([baseline.held, first.held, head.held], [0, 1, 1]);
  assert.equal(first.serves + head.serves + baseline.serves, 2);
  assert.deepEqual(page.problems, []);
  await context.close();
});

test('a store with more volumes than the drawing holds draws 40 layers: the line read and the newest', async () => {
  const context = await browser.newContext({ reducedMotion: 'reduce' });
  const page = await openDashboard(context, baseUrl);
  await openStore(page, { name: 'many-layers', blocks: 64 });
  for (let i = 0; i < 45; i++) {
    await write(page, { mode: 'text', addr: i, content: `v${i}` });
    await snapshot(page, `s${i}`);
  }
  await showScheme(page);
  // 47 volumes (the baseline, 45 snapshots, the head): SCHEME_LAYERS_MAX of them are drawn.
  await page.waitForFunction(() => document.querySelectorAll('#scheme-live .layer').length === 40);
  assert.match(await page.locator('#scheme-scope').textContent(), /7 older volumes are not drawn \(at most 40 layers/);
  // The head's line is unbroken: the head, the baseline and the newest snapshots are there.
  const ids = (await layers(page)).map((l) => l.volume);
  for (const id of [0, 45, 46]) assert.ok(ids.includes(id), `volume ${id} drawn: ${ids}`);
  assert.deepEqual(page.problems, []);
  await context.close();
});

test('at 360 px the layers and the mirror fit the screen', async () => {
  const context = await browser.newContext({ reducedMotion: 'reduce' });
  const page = await openDashboard(context, baseUrl, { width: 360, height: 800 });
  await openStore(page, { name: 'narrow', blocks: 256 });
  await write(page, { mode: 'text', addr: 3, content: 'narrow' });
  await snapshot(page, 'a-rather-long-snapshot-label-that-must-wrap');
  await write(page, { mode: 'text', addr: 200, content: 'head' });
  await showScheme(page);
  await page.waitForFunction(() => document.querySelectorAll('#scheme-live .layer').length === 3);
  const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(await overflow() <= 1, `the layers view is ${await overflow()}px wider than the screen`);
  await saveScreenshot(page.locator('main > section:has(#scheme-live)'), 'layers-phone');
  await page.locator('#tab-mirror').click();
  await act(page, () => page.locator('#mirror-open').click(), /^Opened mirror/);
  assert.ok(await overflow() <= 1, `the mirror view is ${await overflow()}px wider than the screen`);
  await screenshot(page, browser, 'layers-phone-mirror');
  assert.deepEqual(page.problems, []);
  await context.close();
});
