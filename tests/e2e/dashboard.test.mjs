// End-to-end tests of the dashboard as a user gets it: the built www/ (scripts/build-web.sh)
// served by scripts/serve.py, loaded in the system's headless Chromium through playwright-core.
// Every action is driven through the UI; assertions read what is rendered and what the store
// holds (blocks read back through the engine, the volumes it lists, a store reopened after a
// reload). Screenshots of each main view go to tests/e2e/artifacts/ and are checked non-blank.
//
// Run: node --test tests/e2e/   (scripts/test.sh does, after building www/pkg)

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import {
  act, actFails, artifactsDir, launchBrowser, openBlock, openDashboard, openStore, repoRoot,
  screenshot, startServer, volumeRows, write,
} from './helpers.mjs';

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

before(async () => {
  for (const file of ['www/pkg/strata_dashboard.js', 'www/pkg/strata/client.js', 'www/pkg/strata/worker.js']) {
    assert.ok(existsSync(path.join(repoRoot, file)), `${file} is missing: run scripts/build-web.sh first`);
  }
  ({ child: server, url: baseUrl } = await startServer());
  browser = await launchBrowser();
  await mkdir(artifactsDir, { recursive: true });
});

after(async () => {
  await browser?.close();
  server?.kill();
});

test('the dashboard loads with the workspace version, the storage estimate and no errors', async () => {
  const expectedVersion = await workspaceVersion();
  const context = await browser.newContext();
  const page = await context.newPage({ viewport: { width: 1024, height: 700 } });
  const problems = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  const wasmResponse = page.waitForResponse((response) => response.url().endsWith('strata_dashboard_bg.wasm'));
  await page.goto(baseUrl);
  const wasm = await wasmResponse;
  assert.equal(wasm.status(), 200);
  assert.equal(wasm.headers()['content-type'], 'application/wasm');
  await page.locator('#engine-version').waitFor({ state: 'visible', timeout: 15_000 });
  assert.equal((await page.locator('#engine-version').textContent()).trim(), expectedVersion);
  assert.equal(await page.locator('h1').textContent(), 'Strata');
  await page.locator('#storage-usage').waitFor({ state: 'visible', timeout: 15_000 });
  await screenshot(page, browser, 'dashboard');
  assert.deepEqual(problems, [], 'no console errors');
  await context.close();
});

test('the header links to the SQLite demo, the first stop of the keyboard', async () => {
  const context = await browser.newContext();
  const page = await openDashboard(context, baseUrl);
  const link = page.locator('.site-header a#sqlite-link');
  assert.equal(await link.getAttribute('href'), './sqlite.html');
  assert.match(await page.locator('.site-header .demo-link').textContent(),
    /^Notes on a time-travel SQLite: a SQLite database kept in a Strata volume/);
  await page.keyboard.press('Tab');
  assert.deepEqual(await page.evaluate(() => {
    const focused = document.activeElement;
    return [focused?.id, focused?.matches(':focus-visible') && getComputedStyle(focused).outlineStyle];
  }), ['sqlite-link', 'solid'], 'the link takes the first Tab and shows its focus');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/sqlite\.html$/);
  assert.equal(await page.locator('h1').textContent(), 'Notes on a time-travel SQLite');
  await context.close();
});

test('memory store: every action through the UI, checked against what the engine reads back', async () => {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await openDashboard(context, baseUrl);
  await openStore(page, { name: 'e2e', backend: 'memory', blockSize: 4096, blocks: 64 });
  assert.equal(await page.locator('#info-backend').textContent(), 'memory');
  assert.equal(await page.locator('#info-blocks').textContent(), '64');
  assert.equal(await page.locator('#info-block-size').textContent(), '4096');
  assert.deepEqual((await volumeRows(page)).map((v) => v.kind), ['baseline', 'head']);
  // The head is tagged with its branch.
  assert.equal(await page.locator('#volumes tr.head .tag.branch').textContent(), '⎇ main');

  // A random burst first (it may land anywhere; the checks below overwrite what they read).
  const burst = await write(page, { mode: 'random', count: 20 });
  assert.match(burst, /Appended 20 entries/);

  // Text is stored and shown as text, never as markup.
  const markup = '<b id="injected">bold?</b><img src=x id="injected-img">';
  await write(page, { mode: 'text', addr: 3, content: markup });
  let block = await openBlock(page, 3);
  assert.equal(block.text, markup);
  assert.equal(await page.locator('#injected, #injected-img').count(), 0, 'no markup from data');
  assert.match(block.provenance, /partition of volume 1/);
  assert.match(block.hex, /^00000000  3c 62 20 69 64/m);

  await write(page, { mode: 'hex', addr: 4, content: 'de ad be ef' });
  block = await openBlock(page, 4);
  assert.match(block.hex, /^00000000  de ad be ef 00/m);
  await write(page, { mode: 'pattern', addr: 10, pattern: 'ab', count: 2 });
  block = await openBlock(page, 11);
  assert.match(block.hex, /^00000000  ab ab ab ab/m);

  // A snapshot with a hostile label: rendered as text.
  const label = '<i id="label-injected">v1</i>';
  await page.locator('#snapshot-label').fill(label);
  assert.match(await act(page, () => page.locator('#snapshot').click(), /Sealed the head as snapshot 1/), /1/);
  let volumes = await volumeRows(page);
  assert.deepEqual(volumes.map((v) => [v.id, v.kind]), [[0, 'baseline'], [1, 'snapshot'], [2, 'head']]);
  assert.equal(volumes[1].label, label);
  assert.equal(await page.locator('#label-injected').count(), 0);
  assert.ok(volumes[2].head, 'the head is marked');

  // Newer data in the head; the snapshot keeps the old (time travel through the map).
  await write(page, { mode: 'text', addr: 3, content: 'newer' });
  assert.equal((await openBlock(page, 3)).text, 'newer');
  await page.locator('#volumes tr[data-volume="1"] button').click();
  await page.waitForFunction(() => document.getElementById('map-title')?.textContent === 'Block map of volume 1');
  block = await openBlock(page, 3);
  assert.equal(block.title, 'Block 3 at volume 1');
  assert.equal(block.text, markup);

  // Hovering a cell of the map says where its data comes from; clicking it opens the block.
  const canvas = page.locator('#block-map');
  await canvas.scrollIntoViewIfNeeded();
  const box = await canvas.boundingBox();
  const cellPx = box.width / 64; // 64 cells per row, one per block here
  await page.mouse.move(box.x + cellPx * 3.5, box.y + cellPx * 0.5);
  await page.waitForFunction(() => /^Block 3: partition of volume 1/.test(document.getElementById('map-hover')?.textContent));
  await page.mouse.move(box.x + cellPx * 40.5, box.y + cellPx * 0.5);
  // (The random burst may have written block 40: either origin is right, as long as it is said.)
  await page.waitForFunction(() => /^Block 40: (the baseline \(never written|partition of volume 1)/.test(document.getElementById('map-hover')?.textContent));
  await page.mouse.click(box.x + cellPx * 4.5, box.y + cellPx * 0.5);
  await page.waitForFunction(() => document.getElementById('block-view-title')?.textContent === 'Block 4 at volume 1');
  await screenshot(page, browser, 'blocks');

  // Diff the snapshot and the head: block 3 changed.
  await page.locator('#diff-a').selectOption('1');
  await page.locator('#diff-b').selectOption('2');
  await act(page, () => page.locator('#diff').click(), /Volumes 1 and 2 differ in 1 blocks/);
  assert.match(await page.locator('#diff-result').textContent(), /block 3/);

  // Compact the snapshot in place (it keeps its id and its data).
  await page.locator('#action-volume').selectOption('1');
  await act(page, () => page.locator('#compact').click(), /^Compacted volume 1/);
  assert.equal((await openBlock(page, 3)).text, markup);

  // Export the snapshot as a raw image: a download of blocks × block size bytes.
  const exported = page.waitForEvent('download');
  await act(page, () => page.locator('#export').click(), /^Exported volume 1 as e2e-volume-1.img/);
  const download = await exported;
  assert.equal(download.suggestedFilename(), 'e2e-volume-1.img');
  const image = await readFile(await download.path());
  assert.equal(image.length, 64 * 4096);
  assert.equal(image.subarray(3 * 4096, 3 * 4096 + markup.length).toString(), markup);

  // Send a copy stream to a file.
  const sent = page.waitForEvent('download');
  await act(page, () => page.locator('#send').click(), /^Sent 1 volume/);
  const streamPath = path.join(artifactsDir, 'e2e.stream');
  await (await sent).saveAs(streamPath);

  // Roll back to the snapshot: a new head whose block 3 is the snapshot's.
  await page.locator('#snapshot-label').fill('before-rollback');
  await page.locator('#action-volume').selectOption('1');
  await act(page, () => page.locator('#rollback').click(), /^Rolled back to volume 1: new head/);
  volumes = await volumeRows(page);
  const head = volumes.find((v) => v.head);
  assert.ok(volumes.some((v) => v.label === 'before-rollback'), 'the old head is kept as a snapshot');
  await page.locator(`#volumes tr[data-volume="${head.id}"] button`).click();
  assert.equal((await openBlock(page, 3)).text, markup);

  // Delete the kept old head, then merge the first snapshot into the baseline.
  const kept = volumes.find((v) => v.label === 'before-rollback');
  await page.locator('#action-volume').selectOption(String(kept.id));
  await act(page, () => page.locator('#delete-volume').click(), new RegExp(`^Deleted volume ${kept.id}`));
  assert.ok(!(await volumeRows(page)).some((v) => v.id === kept.id), 'the deleted volume is gone');
  await page.locator('#action-volume').selectOption('1');
  await act(page, () => page.locator('#merge').click(), /^Merged 1 partition/);
  assert.ok(!(await volumeRows(page)).some((v) => v.id === 1), 'the merged snapshot is gone');
  block = await openBlock(page, 3);
  assert.equal(block.text, markup, 'the head still reads the merged data');
  assert.match(block.provenance, /baseline image/);

  // Errors arrive with their code: a write past the end of the volume.
  await page.locator('#write-mode').selectOption('text');
  await page.locator('#write-addr').fill('64');
  assert.equal(await actFails(page, () => page.locator('#write-submit').click()), 'OUT_OF_RANGE');
  assert.equal(page.problems.length, 0, page.problems.join('\n'));

  // The log: entries in order, a window of them in the DOM, moved by keys; filtered by block.
  await write(page, { mode: 'text', addr: 3, content: 'in the log' });
  await write(page, { mode: 'random', count: 30 });
  await page.locator('#tab-log').click();
  await page.waitForFunction(() => /^31 of 31 entries read match \(end of the log\)/.test(document.getElementById('log-status')?.textContent));
  const seqs = await page.locator('#log-table tbody tr').evaluateAll((rows) => rows.map((r) => Number(r.dataset.seq)));
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'entries in sequence order');
  assert.equal(seqs.length, 14, 'only a window of rows is in the DOM');
  await page.locator('#log-table').focus();
  await page.keyboard.press('End');
  await page.waitForFunction(() => /showing 18–31$/.test(document.getElementById('log-status').textContent));
  const lastSeqs = await page.locator('#log-table tbody tr').evaluateAll((rows) => rows.map((r) => Number(r.dataset.seq)));
  assert.equal(lastSeqs[13] - seqs[0], 30, 'the window moved to the last entries');
  await page.locator('#log-block').fill('3');
  await page.waitForFunction(() => /^\d+ of \d+ entries read match/.test(document.getElementById('log-status').textContent));
  const filtered = await page.locator('#log-table tbody tr td:nth-child(3)').allTextContents();
  assert.ok(filtered.length >= 1);
  for (const cell of filtered) assert.match(cell, /block 3$|blocks \d+–\d+/);
  await screenshot(page, browser, 'log');

  // Policies: invalid JSON is refused with the engine's code; the example is accepted, its
  // dry run previews a snapshot on the event, firing the event takes it, the audit records it.
  await page.locator('#tab-policies').click();
  await page.locator('#policy-json').waitFor();
  await page.locator('#policy-json').fill('{ "rules": [ { "kind": "no_such_rule" } ] }');
  const code = await actFails(page, () => page.locator('#policy-save').click());
  assert.match(code, /^[A-Z_]+$/);
  await page.locator('#policy-example').click();
  await act(page, () => page.locator('#policy-save').click(), /^Policy valid and saved/);
  await page.locator('#event-name').fill('deploy');
  await act(page, () => page.locator('#dry-run-event').click(), /^Dry run: 1 decision/);
  assert.match(await page.locator('#dry-run-result').textContent(), /^snapshot "deploy-\d+"/);
  await act(page, () => page.locator('#fire-event').click(), /^Event deploy: 1 decision/);
  assert.match(await page.locator('#audit').textContent(), /deploy/);
  // The baseline cannot be held; the snapshot the event took can.
  await page.locator('#assignments-json').fill('[{"volume": 0, "hold": true}]');
  assert.equal(await actFails(page, () => page.locator('#assignments-save').click()), 'INVALID_ARGUMENT');
  await page.locator('#tab-blocks').click();
  await page.locator('#volumes tbody tr').first().waitFor();
  const deploy = (await volumeRows(page)).find((v) => /^deploy-/.test(v.label));
  assert.ok(deploy, 'the event took a snapshot');
  await page.locator('#tab-policies').click();
  await page.locator('#assignments-json').waitFor();
  await page.locator('#assignments-json').fill(`[{"volume": ${deploy.id}, "hold": true}]`);
  await act(page, () => page.locator('#assignments-save').click(), /^Assignments saved/);
  await act(page, () => page.locator('#run-policies').click(), /^Policies ran/);
  // A temporal policy, seen acting on a simulated clock (the store itself does not change).
  // Written with the rule form rather than as JSON.
  await page.locator('#policy-json').fill('');
  await page.locator('#rule-kind').selectOption('snapshot_every');
  await page.locator('#rule-number').fill('60');
  await page.locator('#rule-text').fill('hourly-{n}');
  await page.locator('#rule-add').click();
  await page.waitForFunction(() => /"snapshot_every_ms": 3600000/.test(document.getElementById('policy-json').value));
  await act(page, () => page.locator('#policy-save').click(), /^Policy valid and saved/);
  await page.locator('#simulate-hours').fill('5');
  await page.locator('#simulate-step').fill('15');
  const simulated = await act(page, () => page.locator('#simulate').click(), /^Simulated 5 h: \d+ decision/);
  assert.ok(Number(simulated.match(/: (\d+) decision/)[1]) >= 5, simulated);
  assert.match(await page.locator('#simulation').textContent(), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  snapshot "hourly-\d+"/);
  await screenshot(page, browser, 'policies');
  await page.locator('#tab-blocks').click();
  assert.ok((await volumeRows(page)).some((v) => /^deploy-/.test(v.label)), 'the event took a snapshot');

  // The stream sent earlier makes a new store, a copy: the snapshot comes back.
  await page.locator('#store-name').fill('e2e-copy');
  await page.locator('#import-stream-file').setInputFiles(streamPath);
  await act(page, () => page.locator('#import-stream').click(), /^Created store e2e-copy as a copy from e2e.stream/);
  volumes = await volumeRows(page);
  assert.equal(volumes.find((v) => v.kind === 'snapshot')?.label, label);
  await page.locator(`#volumes tr[data-volume="${volumes.find((v) => v.kind === 'snapshot').id}"] button`).click();
  assert.equal((await openBlock(page, 3)).text, markup);

  assert.deepEqual(page.problems, [], 'no console errors or failed requests');
  await context.close();
});

test('copy streams: a full stream makes a copy, a later stream of the source is received into it', async () => {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await openDashboard(context, baseUrl);
  const send = async (file) => {
    const sent = page.waitForEvent('download');
    await act(page, () => page.locator('#send').click(), /^Sent \d+ volume/);
    await (await sent).saveAs(path.join(artifactsDir, file));
    return path.join(artifactsDir, file);
  };
  await openStore(page, { name: 'source', backend: 'indexeddb', blocks: 32 });
  await write(page, { mode: 'text', addr: 0, content: 'first' });
  await page.locator('#snapshot-label').fill('one');
  await act(page, () => page.locator('#snapshot').click(), /^Sealed/);
  const first = await send('source-1.stream');

  await page.locator('#backend').selectOption('indexeddb');
  await page.locator('#store-name').fill('copy');
  await page.locator('#import-stream-file').setInputFiles(first);
  await act(page, () => page.locator('#import-stream').click(), /^Created store copy as a copy/);
  assert.deepEqual((await volumeRows(page)).filter((v) => v.kind === 'snapshot').map((v) => v.label), ['one']);

  await act(page, () => page.locator('#known-stores button[aria-label="Open store source (indexeddb)"]').click(), /^Opened store source/);
  await write(page, { mode: 'text', addr: 1, content: 'second' });
  await page.locator('#snapshot-label').fill('two');
  await act(page, () => page.locator('#snapshot').click(), /^Sealed/);
  const second = await send('source-2.stream');

  await act(page, () => page.locator('#known-stores button[aria-label="Open store copy (indexeddb)"]').click(), /^Opened store copy/);
  await page.locator('#receive-file').setInputFiles(second);
  await act(page, () => page.locator('#receive').click(), /^Received \d+ volume/);
  const volumes = await volumeRows(page);
  assert.deepEqual(volumes.filter((v) => v.kind === 'snapshot').map((v) => v.label), ['one', 'two']);
  const two = volumes.find((v) => v.label === 'two');
  await page.locator(`#volumes tr[data-volume="${two.id}"] button`).click();
  assert.equal((await openBlock(page, 1)).text, 'second');
  assert.deepEqual(page.problems, []);
  await context.close();
});

test('a raw image imported from a file becomes the baseline', async () => {
  const context = await browser.newContext();
  const page = await openDashboard(context, baseUrl);
  const image = Buffer.alloc(16 * 4096);
  image.write('imported baseline', 2 * 4096);
  const imagePath = path.join(artifactsDir, 'import.img');
  await writeFile(imagePath, image);
  await page.locator('#backend').selectOption('memory');
  await page.locator('#store-name').fill('imported');
  await page.locator('#block-size').fill('4096');
  await page.locator('#import-file').setInputFiles(imagePath);
  await act(page, () => page.locator('#import-image').click(), /^Imported import.img as the baseline of store imported/);
  assert.equal(await page.locator('#info-blocks').textContent(), '16');
  const block = await openBlock(page, 2);
  assert.equal(block.text, 'imported baseline');
  assert.match(block.provenance, /baseline image/);
  assert.deepEqual(page.problems, []);
  await context.close();
});

test('a million-block volume maps into bounded regions that zoom in; a long export can be cancelled', async () => {
  const context = await browser.newContext();
  const page = await openDashboard(context, baseUrl);
  // 4 GB: long enough an export to cancel (a memory store exports about 250 MB/s here).
  await openStore(page, { name: 'big', backend: 'memory', blockSize: 4096, blocks: 1_000_000 });
  await write(page, { mode: 'text', addr: 999_999, content: 'last block' });
  assert.match(await page.locator('#map-scope').textContent(), /all 1000000 blocks, about 24\d per cell/);
  // The last cell of the map holds the write: hover says so, clicking zooms into its region.
  const canvas = page.locator('#block-map');
  await canvas.scrollIntoViewIfNeeded();
  const box = await canvas.boundingBox();
  const cellPx = box.width / 64;
  const rows = Math.ceil(4096 / 64);
  await page.mouse.move(box.x + cellPx * 63.5, box.y + cellPx * (rows - 0.5));
  await page.waitForFunction(() => /\(1 from the log\)/.test(document.getElementById('map-hover')?.textContent));
  await page.mouse.click(box.x + cellPx * 63.5, box.y + cellPx * (rows - 0.5));
  await page.waitForFunction(() => /^blocks \d+–999999 of 1000000/.test(document.getElementById('map-scope')?.textContent));
  assert.equal(await page.locator('canvas').count(), 1, 'one canvas, no per-block DOM nodes');
  assert.equal((await openBlock(page, 999_999)).text, 'last block');
  await page.locator('#zoom-out').click();
  await page.waitForFunction(() => /^all 1000000 blocks/.test(document.getElementById('map-scope')?.textContent));
  // The same zoom from the keyboard: a block number and a button.
  await page.locator('#open-block-addr').fill('500000');
  await page.locator('#zoom-to-block').focus();
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => /^blocks 499712–503807 of 1000000/.test(document.getElementById('map-scope')?.textContent));
  await page.locator('#zoom-out').click();

  // Exporting 4 GB: cancel it. The page stops waiting at once (code CANCELLED); the worker stops
  // at its next progress point. The cancel button is pressed the moment it appears (a mutation
  // observer in the page): the export's chunks keep the page's main thread so busy that a click
  // from the test could land only after a fast machine had finished the export.
  await page.locator('#action-volume').selectOption('1');
  const dismiss = page.locator('#notice button');
  if (await dismiss.count()) await dismiss.click();
  await page.evaluate(() => {
    const observer = new MutationObserver(() => {
      const cancel = document.getElementById('cancel-op');
      if (cancel) {
        observer.disconnect();
        cancel.click();
      }
    });
    observer.observe(document.body, { childList: true, subtree: true });
  });
  await page.locator('#export').click();
  await page.locator('#notice.error').waitFor({ timeout: 60_000 });
  assert.equal(await page.locator('#notice').getAttribute('data-code'), 'CANCELLED');
  assert.deepEqual(page.problems, []);
  await context.close();
});

for (const backend of ['indexeddb', 'opfs']) {
  test(`${backend}: a reload keeps the store, its snapshots and blocks; deleting it removes it`, async () => {
    const context = await browser.newContext();
    const page = await openDashboard(context, baseUrl);
    const name = `reload-${backend}`;
    await openStore(page, { name, backend, blocks: 32 });
    assert.equal(await page.locator('#info-backend').textContent(), backend);
    await write(page, { mode: 'text', addr: 1, content: `kept in ${backend}` });
    await page.locator('#snapshot-label').fill('kept');
    await act(page, () => page.locator('#snapshot').click(), /^Sealed the head as snapshot 1/);
    await write(page, { mode: 'text', addr: 1, content: 'after the snapshot' });

    await page.reload();
    await page.locator('#engine-version').waitFor();
    // The store is listed; open it again (retrying while the old page's worker lets go of it).
    const open = page.locator(`#known-stores button[aria-label="Open store ${name} (${backend})"]`);
    for (let attempt = 0; ; attempt++) {
      const dismiss = page.locator('#notice button');
      if (await dismiss.count()) await dismiss.click();
      await open.click();
      await page.locator('#notice').waitFor();
      if (!(await page.locator('#notice.error').count())) break;
      assert.equal(await page.locator('#notice').getAttribute('data-code'), 'LOCKED');
      assert.ok(attempt < 20, 'the store stays locked after a reload');
      await page.waitForTimeout(250);
    }
    await page.waitForFunction((n) => document.getElementById('info-name')?.textContent === n, name);
    const volumes = await volumeRows(page);
    assert.deepEqual(volumes.map((v) => [v.id, v.kind, v.label]), [[0, 'baseline', ''], [1, 'snapshot', 'kept'], [2, 'head', '']]);
    assert.equal((await openBlock(page, 1)).text, 'after the snapshot');
    await page.locator('#volumes tr[data-volume="1"] button').click();
    assert.equal((await openBlock(page, 1)).text, `kept in ${backend}`);

    // Delete the store: it leaves the list, and opening it without a size fails.
    await act(page, () => page.locator(`#known-stores button[aria-label="Delete store ${name} (${backend})"]`).click(),
      new RegExp(`^Deleted store ${name}`));
    assert.equal(await page.locator(`#known-stores button[aria-label="Open store ${name} (${backend})"]`).count(), 0);
    assert.equal(await page.locator('#store-info').count(), 0);
    const reopened = await page.evaluate(async ([n, b]) => {
      try {
        const client = await globalThis.strataBridge.open({ name: n, backend: b });
        await client.close();
        return 'opened';
      } catch (error) {
        return error.code;
      }
    }, [name, backend]);
    assert.equal(reopened, 'INVALID_ARGUMENT', 'the deleted store is gone');
    assert.deepEqual(page.problems, []);
    await context.close();
  });
}

test('a store open in one page is refused to a second page with code LOCKED', async () => {
  const context = await browser.newContext();
  const first = await openDashboard(context, baseUrl);
  await openStore(first, { name: 'locked', backend: 'indexeddb', blocks: 16 });
  const second = await openDashboard(context, baseUrl);
  await second.locator('#backend').selectOption('indexeddb');
  await second.locator('#store-name').fill('locked');
  await second.locator('#block-count').fill('16');
  assert.equal(await actFails(second, () => second.locator('#open-store').click()), 'LOCKED');
  assert.match(await second.locator('#notice-text').textContent(), /^LOCKED: /);
  // Once the first page closes it, the second may open it.
  await act(first, () => first.locator('#close-store').click(), /^Closed store locked/);
  await act(second, () => second.locator('#open-store').click(), /^Opened store locked/);
  await context.close();
});

test('the guided tour runs its seven steps and explains each', async () => {
  const context = await browser.newContext();
  const page = await openDashboard(context, baseUrl);
  await page.locator('#tab-tour').click();
  const expected = [
    /^Opened store tour/,
    /^Appended 12 entries/,
    /^Sealed snapshot 1/,
    /^Appended 2 entries/,
    /^Compacted v1: \d+ → \d+ bytes, 4 blocks dropped/,
    /^Merged 1 partition/,
  ];
  for (const [step, outcome] of expected.entries()) {
    await act(page, () => page.locator('#tour-next').click(), outcome);
    await page.waitForFunction((s) => document.querySelector(`.tour-step[data-step="${s}"] .explanation`), step);
  }
  assert.equal(await page.locator('.tour-step.done').count(), 6);
  await screenshot(page, browser, 'tour');
  const block = await openBlock(page, 4);
  assert.equal(block.text, 'block 4, after v1');
  assert.equal((await openBlock(page, 0)).provenance, 'Served by the baseline image');
  await page.locator('#tour-next').click();
  await page.waitForFunction(() => document.querySelectorAll('#log-table tbody tr').length === 2);
  assert.deepEqual(page.problems, []);
  await context.close();
});

test('at phone width the dashboard fits the screen and stays usable from the keyboard', async () => {
  const context = await browser.newContext();
  const page = await openDashboard(context, baseUrl, { width: 390, height: 844 });
  await openStore(page, { name: 'phone', backend: 'memory', blocks: 128 });
  await write(page, { mode: 'text', addr: 0, content: 'small screen' });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page is ${overflow}px wider than the screen`);
  // Keyboard: the block form opens a block with Enter.
  await page.locator('#open-block-addr').focus();
  await page.keyboard.type('0');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.getElementById('block-text')?.textContent === 'small screen');
  await screenshot(page, browser, 'phone');
  assert.deepEqual(page.problems, []);
  await context.close();
});
