// Browser end-to-end scenarios of the npm package in headless Chromium (see harness.mjs):
// the page crashed in the middle of a stream of writes, a forced quota failure, a read-only
// view beside a writer in another page, and a copy stream received chunk by chunk.
//
// Run: scripts/build-npm.sh && node --test tests/npm/   (scripts/test.sh does)

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startApp } from './harness.mjs';

let app;

before(async () => {
  app = await startApp();
});

after(async () => {
  await app?.stop();
});

/** Runs `body(context)` in a fresh browser context (its own storage), closed afterwards. */
async function inContext(body) {
  const context = await app.newContext();
  try {
    return await body(context);
  } finally {
    await context.close();
  }
}

for (const backend of ['indexeddb', 'opfs']) {
  test(`${backend}: after the page crashes mid-workload, every write a completed sync covered is intact`, async () => {
    await inContext(async (context) => {
      const name = `crash-${backend}`;
      const seed = 1234;
      const blocks = 512;
      const syncEvery = 256;
      const page = await app.appPage(context);
      // Not awaited: the workload runs until the renderer dies under it.
      page
        .evaluate(([b, n, s, k, e]) => window.scenarios.crashWorkload(b, n, s, k, e), [
          backend,
          name,
          seed,
          blocks,
          syncEvery,
        ])
        .catch(() => {});
      await page.waitForFunction((n) => window.workload.acked >= n || window.workload.error, 6 * syncEvery, {
        timeout: 60_000,
      });
      const before = await page.evaluate(() => ({ ...window.workload }));
      assert.equal(before.error, null, 'the workload failed before the crash');
      // Kill the renderer (page, worker and all) while writes are in flight.
      const cdp = await context.newCDPSession(page);
      const crashed = page.waitForEvent('crash');
      cdp.send('Page.crash').catch(() => {});
      await crashed;
      // Only syncs that completed before the crash count; the page may have acknowledged one
      // more after `before` was read, which makes the check stricter, not looser.
      const acked = before.acked;
      assert.ok(before.issued > acked, 'writes were in flight when the page crashed');

      const reopened = await app.appPage(context);
      const check = await reopened.evaluate(([b, n, s, k, a]) => window.scenarios.checkWorkload(b, n, s, k, a), [
        backend,
        name,
        seed,
        blocks,
        acked,
      ]);
      assert.deepEqual(check.wrong, [], 'the store holds exactly a prefix of the writes');
      assert.ok(
        check.prefixCoversAcked,
        `the surviving prefix (${check.prefix} writes) covers the ${acked} synced writes`,
      );
      await reopened.close();
    });
  });
}

for (const backend of ['indexeddb', 'opfs']) {
  test(`${backend}: a forced quota failure is a QUOTA_EXCEEDED Error; the store stays readable and writes again once the quota is raised`, async () => {
    await inContext(async (context) => {
      const page = await app.appPage(context);
      const cdp = await context.newCDPSession(page);
      // 3 MB for the whole origin: the 4 MiB workload below cannot fit.
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: app.origin, quotaSize: 3_000_000 });
      const seed = 99;
      const blocks = 1024;
      const filled = await page.evaluate(([b, n, s, k, e]) => window.scenarios.fillUntilQuota(b, n, s, k, e), [
        backend,
        `quota-${backend}`,
        seed,
        blocks,
        32,
      ]);
      assert.ok(filled.failure, 'the writes hit the quota');
      assert.equal(filled.failure.code, 'QUOTA_EXCEEDED', `got ${JSON.stringify(filled.failure)}`);
      assert.ok(filled.failure.isError && filled.failure.isStrataError, 'an Error with a code');
      assert.ok(filled.acked > 0, 'some syncs completed before the quota was reached');
      assert.deepEqual(filled.afterFailure.wrong, [], 'the open store still reads a consistent prefix');
      assert.ok(filled.afterFailure.prefixCoversAcked, 'every synced write is still there');

      // Still full: writes keep failing with the same code, and nothing breaks.
      const stillFull = await page.evaluate(([s, k, f]) => window.scenarios.writeMore(s, k, f, 256), [
        seed,
        blocks,
        filled.afterFailure.prefix,
      ]);
      assert.equal(stillFull.ok, false);
      assert.equal(stillFull.error.code, 'QUOTA_EXCEEDED');

      // Space again: the same open store takes writes.
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: app.origin });
      const prefix = await page.evaluate(([s, k]) => window.scenarios.writeMore(s, k, 0, 0), [seed, blocks]);
      assert.ok(prefix.ok, `a bare sync works again: ${JSON.stringify(prefix.error)}`);
      const from = prefix.check.prefix;
      const resumed = await page.evaluate(([s, k, f]) => window.scenarios.writeMore(s, k, f, 64), [
        seed,
        blocks,
        from,
      ]);
      assert.ok(resumed.ok, `writes work again: ${JSON.stringify(resumed.error)}`);
      assert.deepEqual(resumed.check.wrong, []);
      assert.equal(resumed.check.prefix, from + 64);
      await page.evaluate(() => window.scenarios.release());
      await page.close();
    });
  });
}

for (const backend of ['indexeddb', 'opfs']) {
  test(`${backend}: beside a writer in another page, readOnly opens a read-only view and a plain open gets LOCKED`, async () => {
    await inContext(async (context) => {
      const name = `view-${backend}`;
      const writer = await app.appPage(context);
      const other = await app.appPage(context);
      assert.equal(await writer.evaluate(([b, n]) => window.scenarios.holdWriter(b, n), [backend, name]), backend);

      const plain = await other.evaluate(([b, n]) => window.scenarios.tryView(b, n, false), [backend, name]);
      assert.equal(plain.opened, false);
      assert.equal(plain.error.code, 'LOCKED');

      const view = await other.evaluate(([b, n]) => window.scenarios.tryView(b, n, true), [backend, name]);
      assert.equal(view.opened, true, `readOnly open failed: ${JSON.stringify(view.error)}`);
      assert.equal(view.readOnly, true);
      assert.ok(view.readsFirstWrite, 'the view reads what the writer synced');
      assert.equal(view.writeError?.code, 'READ_ONLY');
      assert.equal(view.snapshotError?.code, 'READ_ONLY');

      // The writer is undisturbed by the view, and a new view sees its later writes.
      assert.ok(await writer.evaluate(() => window.scenarios.writerOverwrites()));
      const later = await other.evaluate(([b, n]) => window.scenarios.tryView(b, n, true), [backend, name]);
      assert.ok(later.readsSecondWrite, 'a view opened later reads the newer write');
      await writer.evaluate(() => window.scenarios.release());
      await writer.close();
      await other.close();
    });
  });
}

for (const backend of ['memory', 'opfs']) {
  test(`${backend}: importStream() and receive() take ReadableStreams chunk by chunk; a truncated stream is BAD_STREAM and the store stays usable`, async () => {
    await inContext(async (context) => {
      const page = await app.appPage(context);
      const result = await page.evaluate(([b]) => window.scenarios.streamCopy(b, `send-${b}`, `receive-${b}`), [
        backend,
      ]);
      assert.ok(result.importPieces > 8, 'the full stream came in many pieces');
      assert.equal(result.importProgressCalls, result.importPieces, 'importStream: one push per piece');
      assert.ok(result.firstOk, 'the copy made by importStream reads as the source did');
      assert.equal(result.truncated?.code, 'BAD_STREAM');
      assert.ok(result.usableAfterRefusal);
      assert.ok(result.pieces > 8, 'the incremental stream came in many pieces');
      assert.equal(result.progressCalls, result.pieces, 'receive: one push per piece');
      assert.equal(result.lastProgress, result.streamBytes);
      assert.equal(result.reportStreamBytes, result.streamBytes);
      assert.ok(result.secondOk, 'the received snapshot reads as the source did');
      await page.close();
    });
  });
}


test('memory: the policy timer (policyTickMs) runs the policies in the worker and reports each run', async () => {
  await inContext(async (context) => {
    const page = await app.appPage(context);
    const result = await page.evaluate(() => window.scenarios.policyTimer('memory', 'policy-timer'));
    assert.deepEqual(result.errors, []);
    assert.ok(result.snapshots.length >= 2, `the timer took snapshots: ${JSON.stringify(result.snapshots)}`);
    assert.ok(result.snapshots.every((label) => label.startsWith('tick-')));
    assert.ok(result.runs >= 2 && result.entries >= result.snapshots.length, 'onPolicyRun saw the runs');
    assert.equal(result.audit, result.entries, 'every reported entry is in the audit trail');
    assert.equal(result.invalid?.code, 'INVALID_ARGUMENT');
    await page.close();
  });
});

for (const backend of ['memory', 'opfs']) {
  test(`${backend}: a cancelled compaction stops in the worker, not only in the page`, async () => {
    await inContext(async (context) => {
      const page = await app.appPage(context);
      // 16,384 blocks written twice: 128 MiB through a backend that never waits, so only the
      // worker's periodic yield (every 50 ms) lets the cancel message in before the compaction
      // ends. (With half of that, a fast machine finished the compaction first.)
      const r = await page.evaluate(([b, n]) => window.scenarios.cancelCompaction(b, n, 16384), [
        backend,
        `cancel-compaction-${backend}`,
      ]);
      assert.equal(r.cancelled?.code, 'CANCELLED', JSON.stringify(r.cancelled));
      assert.ok(r.progressReports >= 1);
      assert.equal(r.afterCancel, r.before, 'the cancelled compaction changed nothing in the worker');
      assert.ok(
        r.afterCompaction < r.before,
        `a compaction left to run reclaims space (${r.before} -> ${r.afterCompaction} bytes)`,
      );
      assert.ok(r.lastIntact, 'the partition reads its newest data after both');
      await page.close();
    });
  });
}
