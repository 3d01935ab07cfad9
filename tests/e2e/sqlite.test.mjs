// The time-travel SQLite demo (www/sqlite.html, strata-engine/sqlite) in headless Chromium, on
// every backend: real SQL through wa-sqlite, a snapshot after every commit, and after every step
// `PRAGMA integrity_check` is `ok` on the live database and on every snapshot, and each
// snapshot's rows equal the rows recorded when it was taken. Then a reload, a rollback, and a
// worker killed mid-transaction and mid-commit lose no committed transaction.
//
// The workload is random: the seed is printed, and STRATA_SEED=<seed> replays it.

import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser, repoRoot, startServer } from './helpers.mjs';

const seed = Number(process.env.STRATA_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`sqlite.test.mjs: seed ${seed} (STRATA_SEED=${seed} replays it)`);

let server;
let browser;
let baseUrl;

before(async () => {
  ({ child: server, url: baseUrl } = await startServer());
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.kill();
});

/** A page of the demo on `backend`, store `name`, ready; its Strata workers are tracked. */
async function openDemo(context, backend, name) {
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (error) => page.problems.push(`uncaught: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') page.problems.push(`console: ${message.text()}`);
  });
  await page.addInitScript(() => {
    // The workers the page starts, so that a test can kill the store's.
    window.trackedWorkers = [];
    const NativeWorker = window.Worker;
    window.Worker = class extends NativeWorker {
      constructor(...args) {
        super(...args);
        window.trackedWorkers.push(this);
      }
    };
  });
  await page.goto(`${baseUrl}sqlite.html?backend=${backend}&name=${name}`);
  await page.waitForFunction(() => /^(ready|error)/.test(document.getElementById('status')?.textContent ?? ''), null, {
    timeout: 60_000,
  });
  assert.equal(await page.locator('#status').textContent(), 'ready');
  return page;
}

/**
 * In the page: one random step of the workload (a committed transaction), then a snapshot.
 * Resolves to { step, snapshot, rows } with the rows as they are after the commit.
 */
function pageStep(args) {
  return (async ({ seed, step }) => {
    const { db } = window.notes;
    // xorshift32, seeded per step: the same seed gives the same workload.
    let x = (seed ^ Math.imul(step + 1, 0x9e3779b9)) >>> 0 || 1;
    const rand = (n) => {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      return x % n;
    };
    const text = (length) => {
      let out = `s${step}-`;
      while (out.length < length) out += String.fromCharCode(97 + rand(26));
      return out;
    };
    const [{ n }] = await db.query('SELECT count(*) AS n FROM notes');
    const kind = step === 0 ? 0 : rand(6);
    let what;
    switch (kind) {
      case 0: {
        // Many rows in one transaction, some spanning overflow pages.
        const count = 20 + rand(200);
        await db.query('BEGIN');
        for (let i = 0; i < count; i++) {
          const length = rand(10) === 0 ? 3000 + rand(20000) : 10 + rand(200);
          await db.run('INSERT INTO notes (text, created) VALUES (?, ?)', [text(length), step]);
        }
        await db.query('COMMIT');
        what = `insert ${count}`;
        break;
      }
      case 1:
        await db.run('UPDATE notes SET text = text || ? WHERE id % ? = 0', [text(50), 2 + rand(5)]);
        what = 'update';
        break;
      case 2:
        await db.run('DELETE FROM notes WHERE id % ? = ?', [3 + rand(4), rand(3)]);
        what = 'delete';
        break;
      case 3:
        await db.query(rand(2) ? 'CREATE INDEX IF NOT EXISTS notes_text ON notes(text)' : 'DROP INDEX IF EXISTS notes_text');
        what = 'index';
        break;
      case 4:
        // VACUUM rewrites the file and shrinks it: the truncate path.
        await db.query('VACUUM');
        what = 'vacuum';
        break;
      default:
        await db.run('INSERT INTO notes (text, created) VALUES (?, ?)', [text(40000 + rand(40000)), step]);
        what = 'one big row';
    }
    const snapshot = await db.snapshot(`step ${step}: ${what} (had ${n})`);
    const rows = await db.query('SELECT id, text, created FROM notes ORDER BY id');
    return { step, what, snapshot, rows: JSON.stringify(rows) };
  })(args);
}

/** In the page: integrity_check of the live database and of every snapshot given, and their rows. */
function pageCheck(snapshots) {
  return (async (snapshots) => {
    const { db } = window.notes;
    const live = {
      check: (await db.query('PRAGMA integrity_check')).map((row) => row.integrity_check).join(';'),
      rows: JSON.stringify(await db.query('SELECT id, text, created FROM notes ORDER BY id')),
    };
    const seen = [];
    for (const id of snapshots) {
      const snap = await db.openSnapshot(id);
      try {
        const check = (await snap.query('PRAGMA integrity_check')).map((row) => row.integrity_check).join(';');
        const rows = JSON.stringify(await snap.query('SELECT id, text, created FROM notes ORDER BY id'));
        seen.push({ id, check, rows });
      } finally {
        await snap.close();
      }
    }
    return { live, seen };
  })(snapshots);
}

/** Asserts two JSON row lists are equal, with a short message (counts, first differing row). */
function sameRows(actual, expected, message) {
  if (actual === expected) return;
  const a = JSON.parse(actual);
  const e = JSON.parse(expected);
  const at = a.findIndex((row, i) => JSON.stringify(row) !== JSON.stringify(e[i]));
  assert.fail(`${message}: ${a.length} rows, expected ${e.length}; first difference at row ${at < 0 ? e.length : at}`);
}

/** Asserts the live database holds `rows` and each recorded snapshot its own rows, all intact. */
async function checkAll(page, recorded, liveRows, context) {
  const { live, seen } = await page.evaluate(pageCheck, recorded.map((r) => r.snapshot));
  assert.equal(live.check, 'ok', `${context}: integrity_check of the live database`);
  sameRows(live.rows, liveRows, `${context}: the live database's rows`);
  for (const [i, snap] of seen.entries()) {
    assert.equal(snap.check, 'ok', `${context}: integrity_check of snapshot ${snap.id} (${recorded[i].what})`);
    sameRows(snap.rows, recorded[i].rows, `${context}: rows of snapshot ${snap.id} (${recorded[i].what})`);
  }
}

for (const backend of ['memory', 'opfs', 'indexeddb']) {
  test(`${backend}: every step and every snapshot is intact; reload, rollback and killed workers lose no commit`, async () => {
    const context = await browser.newContext();
    const name = `sqlite-e2e-${backend}-${seed}`;
    try {
      let page = await openDemo(context, backend, name);
      const recorded = [];
      const steps = 10;
      for (let step = 0; step < steps; step++) {
        const result = await page.evaluate(pageStep, { seed, step });
        recorded.push(result);
        await checkAll(page, recorded, result.rows, `seed ${seed}, ${backend}, after step ${step} (${result.what})`);
      }
      assert.deepEqual(page.problems, []);
      if (backend === 'memory') return;

      // A reload: everything committed is there, every snapshot too.
      const last = recorded.at(-1);
      await page.close();
      page = await openDemo(context, backend, name);
      await checkAll(page, recorded, last.rows, `seed ${seed}, ${backend}, after a reload`);

      // Roll back to a middle snapshot: the live database is that snapshot's.
      const middle = recorded[Math.floor(steps / 2)];
      await page.evaluate((id) => window.notes.db.rollback(id, 'test rollback'), middle.snapshot);
      await checkAll(page, recorded, middle.rows, `seed ${seed}, ${backend}, after a rollback to ${middle.snapshot}`);
      // The database keeps working after it, and the commit survives a reload.
      const afterRollback = await page.evaluate(pageStep, { seed, step: steps });
      recorded.push(afterRollback);
      await page.close();
      page = await openDemo(context, backend, name);
      await checkAll(page, recorded, afterRollback.rows, `seed ${seed}, ${backend}, a commit after the rollback, reloaded`);

      // The worker killed in the middle of a transaction (its pages not yet committed).
      await page.evaluate(async () => {
        const { db } = window.notes;
        await db.query('BEGIN');
        for (let i = 0; i < 300; i++) await db.run('INSERT INTO notes (text, created) VALUES (?, -1)', [`lost ${i} `.repeat(20)]);
        for (const worker of window.trackedWorkers) worker.terminate();
      });
      await page.close();
      page = await openDemo(context, backend, name);
      await checkAll(page, recorded, afterRollback.rows, `seed ${seed}, ${backend}, worker killed mid-transaction`);

      // The worker killed while the commit's batch is on its way: after the reload the database
      // is the one before the commit or the one after it, never anything else.
      const commitRows = await page.evaluate(async () => {
        const { db, store } = window.notes;
        await db.query('BEGIN');
        for (let i = 0; i < 500; i++) await db.run('INSERT INTO notes (text, created) VALUES (?, -2)', [`maybe ${i} `.repeat(30)]);
        const expected = JSON.stringify(await db.query('SELECT id, text, created FROM notes ORDER BY id'));
        const writeBatch = store.writeBatch.bind(store);
        store.writeBatch = (writes) => {
          const sent = writeBatch(writes);
          for (const worker of window.trackedWorkers) worker.terminate();
          return sent;
        };
        const outcome = await db.query('COMMIT').then(
          () => 'committed',
          (error) => `failed: ${error.message}`,
        );
        return { expected, outcome };
      });
      assert.match(commitRows.outcome, /failed/, 'a commit whose worker died must not report success');
      await page.close();
      page = await openDemo(context, backend, name);
      const { live } = await page.evaluate(pageCheck, []);
      assert.equal(live.check, 'ok', `seed ${seed}, ${backend}: integrity after a worker killed mid-commit`);
      assert.ok(
        live.rows === afterRollback.rows || live.rows === commitRows.expected,
        `seed ${seed}, ${backend}: after a worker killed mid-commit the database is the one before or after it`,
      );
      await checkAll(page, recorded, live.rows, `seed ${seed}, ${backend}, after a worker killed mid-commit`);
      assert.deepEqual(page.problems.filter((p) => !/WORKER_ERROR/.test(p)), []);
    } finally {
      await context.close();
    }
  });
}

/** Runs `body(page)` on a demo page (its own store on memory) in a context of its own. */
async function inDemoPage(body, contextOptions = {}) {
  const context = await browser.newContext(contextOptions);
  try {
    await body(await openDemo(context, 'memory', `sqlite-page-${seed}`));
  } finally {
    await context.close();
  }
}

/** In the page: a fresh store `name` on `backend` (destroyed first) with a database in it. */
async function freshDatabase(page, backend, name, openOptions = {}) {
  await page.evaluate(
    async ({ backend, name, openOptions }) => {
      const { open, destroy } = await import('strata-engine');
      const { openDatabase } = await import('strata-engine/sqlite');
      await destroy({ name, backend });
      const store = await open({ name, backend, blocks: 4096, ...openOptions });
      const db = await openDatabase(store);
      await db.query('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
      window.fresh = { store, db };
    },
    { backend, name, openOptions },
  );
}

test('opfs: one write batch and one sync per commit, none for reads', async () => {
  await inDemoPage(async (page) => {
    await freshDatabase(page, 'opfs', `sqlite-flush-${seed}`);
    const counts = await page.evaluate(async () => {
      const { store, db } = window.fresh;
      const calls = { writeBatch: 0, sync: 0, write: 0, journals: 0 };
      // Files SQLite opens besides the database (journals): none for commits that fit its cache.
      const { StrataVFS } = await import('strata-engine/sqlite');
      const jOpen = StrataVFS.prototype.jOpen;
      StrataVFS.prototype.jOpen = async function (name, fileId, flags, outFlags) {
        if (!(flags & 0x100)) calls.journals += 1; // SQLITE_OPEN_MAIN_DB
        return jOpen.call(this, name, fileId, flags, outFlags);
      };
      for (const method of ['writeBatch', 'sync', 'write']) {
        const original = store[method].bind(store);
        store[method] = (...args) => {
          calls[method] += 1;
          return original(...args);
        };
      }
      const take = () => {
        const taken = { ...calls };
        for (const key of Object.keys(calls)) calls[key] = 0;
        return taken;
      };
      const result = {};
      for (let i = 0; i < 5; i++) await db.run('INSERT INTO t (v) VALUES (?)', [`row ${i}`]);
      result.fiveCommits = take();
      await db.query('BEGIN');
      for (let i = 0; i < 300; i++) await db.run('INSERT INTO t (v) VALUES (?)', ['x'.repeat(500)]);
      await db.query('COMMIT');
      result.oneBigCommit = take();
      await db.query('SELECT count(*), sum(length(v)) FROM t');
      result.reads = take();
      StrataVFS.prototype.jOpen = jOpen;
      await db.close();
      await store.close();
      return result;
    });
    assert.deepEqual(counts.fiveCommits, { writeBatch: 5, sync: 5, write: 0, journals: 0 });
    assert.deepEqual(counts.oneBigCommit, { writeBatch: 1, sync: 1, write: 0, journals: 0 });
    assert.deepEqual(counts.reads, { writeBatch: 0, sync: 0, write: 0, journals: 0 });
  });
});

test('indexeddb: snapshots taken by a Strata policy between commits are consistent databases', async () => {
  await inDemoPage(async (page) => {
    await freshDatabase(page, 'indexeddb', `sqlite-policy-${seed}`, { policyTickMs: 15 });
    const result = await page.evaluate(async () => {
      const { store, db } = window.fresh;
      // A temporal rule (the timer) and a threshold rule (right after the batch that crossed it).
      await store.setPolicy({
        rules: [
          { name: 'often', kind: 'snapshot_every', snapshot_every_ms: 40, label: 'tick-{n}' },
          { name: 'busy', kind: 'threshold', status: 'writes_since_snapshot', above: 3, action: 'snapshot' },
        ],
      });
      const states = new Set([JSON.stringify([])]);
      const started = performance.now();
      for (let i = 0; performance.now() - started < 2000; i++) {
        await db.query('BEGIN');
        for (let j = 0; j <= i % 7; j++) await db.run('INSERT INTO t (v) VALUES (?)', [`${i}.${j} `.repeat(1 + ((i * 37 + j) % 300))]);
        if (i % 5 === 4) await db.run('DELETE FROM t WHERE id % 3 = ?', [i % 3]);
        await db.query('COMMIT');
        states.add(JSON.stringify(await db.query('SELECT id, v FROM t ORDER BY id')));
      }
      const snapshots = (await store.volumes()).filter((v) => v.kind === 'snapshot');
      const checked = [];
      for (const { id, label } of snapshots) {
        const snap = await db.openSnapshot(id);
        const [{ integrity_check: check }] = await snap.query('PRAGMA integrity_check');
        const present = (await snap.query("SELECT count(*) AS n FROM sqlite_master WHERE name = 't'"))[0].n;
        const rows = present ? JSON.stringify(await snap.query('SELECT id, v FROM t ORDER BY id')) : JSON.stringify([]);
        checked.push({ id, label, check, committed: states.has(rows) });
        await snap.close();
      }
      await db.close();
      await store.close();
      return { commits: states.size, checked };
    });
    console.log(`policy snapshots: ${result.checked.length} over ${result.commits} committed states`);
    assert.ok(result.checked.length >= 5, `the policies took ${result.checked.length} snapshots`);
    assert.ok(result.checked.some((s) => s.label.startsWith('tick-')), 'the temporal rule took snapshots');
    for (const snapshot of result.checked) {
      assert.equal(snapshot.check, 'ok', `integrity of policy snapshot ${snapshot.id} (${snapshot.label})`);
      assert.ok(snapshot.committed, `policy snapshot ${snapshot.id} (${snapshot.label}) holds a committed state`);
    }
  });
});

test('memory: the page diff of two snapshots names every page whose bytes differ', async () => {
  await inDemoPage(async (page) => {
    await freshDatabase(page, 'memory', `sqlite-diff-${seed}`);
    const result = await page.evaluate(async () => {
      const { store, db } = window.fresh;
      await db.query('BEGIN');
      for (let i = 0; i < 2000; i++) await db.run('INSERT INTO t (v) VALUES (?)', [`value ${i} `.repeat(8)]);
      await db.query('COMMIT');
      const a = await db.snapshot('a');
      await db.run("UPDATE t SET v = 'changed' WHERE id = 1000");
      const b = await db.snapshot('b');
      const diff = await db.diff(a, b);
      // The pages whose bytes differ, read from both snapshots' files (block 0 is the header).
      const pageSize = diff.pageSize;
      const [{ page_count: pages }] = await db.query('PRAGMA page_count');
      const before = await store.readAt(a, 1, (pages * pageSize) / 4096);
      const after = await store.readAt(b, 1, (pages * pageSize) / 4096);
      const differing = [];
      for (let p = 0; p < pages; p++) {
        for (let i = p * pageSize; i < (p + 1) * pageSize; i++) {
          if (before[i] !== after[i]) {
            differing.push(p + 1);
            break;
          }
        }
      }
      return { diff, differing, pages };
    });
    assert.ok(result.differing.length >= 2, `an update changes the row's page and page 1: ${result.differing}`);
    assert.deepEqual(result.diff.pages, result.differing, `diff pages of ${result.pages}`);
    assert.equal(result.diff.headerChanged, false);
  });
});

test('opfs: a transaction over the batch limit fails with SQLITE_FULL and leaves the database as it was', async () => {
  await inDemoPage(async (page) => {
    await freshDatabase(page, 'opfs', `sqlite-full-${seed}`);
    const result = await page.evaluate(async () => {
      const { store, db } = window.fresh;
      await db.run('INSERT INTO t (v) VALUES (?)', ['kept']);
      const before = JSON.stringify(await db.query('SELECT * FROM t'));
      let error = null;
      try {
        await db.query('BEGIN');
        // 24 MiB of rows: more than one Strata write batch holds.
        for (let i = 0; i < 24; i++) await db.run('INSERT INTO t (v) VALUES (?)', ['x'.repeat(1024 * 1024)]);
        await db.query('COMMIT');
      } catch (e) {
        error = { code: e.code, message: e.message };
        await db.query('ROLLBACK').catch(() => {});
      }
      const after = JSON.stringify(await db.query('SELECT * FROM t'));
      const [{ integrity_check: check }] = await db.query('PRAGMA integrity_check');
      // The database keeps working, and a reopen finds what was committed.
      await db.run('INSERT INTO t (v) VALUES (?)', ['later']);
      await db.close();
      const { openDatabase } = await import('strata-engine/sqlite');
      const again = await openDatabase(store);
      const reopened = (await again.query('SELECT v FROM t ORDER BY id')).map((row) => row.v);
      const [{ integrity_check: check2 }] = await again.query('PRAGMA integrity_check');
      await again.close();
      await store.close();
      return { error, same: before === after, check, reopened, check2, limit: db.transactionBytesMax };
    });
    assert.equal(result.error?.code, 13, `SQLITE_FULL (13): ${JSON.stringify(result.error)}`);
    assert.ok(result.same, 'the failed transaction left nothing behind');
    assert.equal(result.check, 'ok');
    assert.deepEqual(result.reopened, ['kept', 'later']);
    assert.equal(result.check2, 'ok');
    assert.equal(result.limit, 16 * 1024 * 1024 - 4096);
  });
});

test('memory mirror: a database on a mirror reads back from its legs and its snapshots', async () => {
  await inDemoPage(async (page) => {
    const result = await page.evaluate(async (name) => {
      const { openMirror } = await import('strata-engine');
      const { openDatabase } = await import('strata-engine/sqlite');
      const mirror = await openMirror({ name, backend: 'memory', legs: ['memory', 'memory'], blocks: 2048 });
      const db = await openDatabase(mirror);
      // One database per volume: a second one would keep pages of its own.
      const second = await openDatabase(mirror).then(() => 'opened', (e) => e.message);
      await db.query('CREATE TABLE t (v TEXT)');
      await db.run("INSERT INTO t VALUES ('one'), ('two')");
      const volume = await db.snapshot('two rows');
      await db.run("DELETE FROM t WHERE v = 'one'");
      const snap = await db.openSnapshot(volume);
      const then = (await snap.query('SELECT v FROM t ORDER BY v')).map((r) => r.v);
      await snap.close();
      const now = (await db.query('SELECT v FROM t ORDER BY v')).map((r) => r.v);
      const [{ integrity_check: check }] = await db.query('PRAGMA integrity_check');
      const scrub = await mirror.scrub();
      await db.close();
      await mirror.close();
      return { then, now, check, scrub, second };
    }, `sqlite-mirror-${seed}`);
    assert.match(result.second, /already open/);
    assert.deepEqual(result.then, ['one', 'two']);
    assert.deepEqual(result.now, ['two']);
    assert.equal(result.check, 'ok');
    assert.equal(result.scrub.detected, 0, 'the legs scrub clean');
    assert.deepEqual(result.scrub.unrecoverable, []);
  });
});

test("README: the SQLite quickstart runs as written and prints what its comments say", async () => {
  const readme = await readFile(path.join(repoRoot, 'README.md'), 'utf8');
  const block = readme.split('**SQLite with history.**')[1]?.match(/```js\n([\s\S]*?)```/)?.[1];
  assert.ok(block, 'README.md has the SQLite quickstart');
  // Static imports become dynamic ones, so that the block runs as a function body in the page.
  const body = block.replace(/^import \{([^}]*)\} from '([^']+)';$/gm, "const {$1} = await import('$2');");
  // The demo page's CSP forbids eval; the test's own context may bypass it.
  await inDemoPage(async (page) => {
    const printed = await page.evaluate(async (body) => {
      const lines = [];
      const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;
      await new AsyncFunction('console', body)({ log: (...args) => lines.push(args) });
      return lines;
    }, body);
    assert.deepEqual(printed[0], [[{ text: 'first' }]]);
    const [diff] = printed[1];
    assert.ok(diff.pages.length > 0 && diff.pages.includes(2), `the diff names page 2: ${JSON.stringify(diff)}`);
  }, { bypassCSP: true });
});

test('the demo page by keyboard: add notes, slide back, read the old snapshot, roll back; no accessibility violations', async () => {
  const context = await browser.newContext();
  try {
    const page = await openDemo(context, 'indexeddb', `sqlite-ui-${seed}`);
    const note = async (text) => {
      await page.locator('#note-text').focus();
      await page.keyboard.type(text);
      await page.keyboard.press('Enter');
      await page.locator('#notes li', { hasText: text }).waitFor();
    };
    await note('buy milk');
    await note('call the plumber');
    await page.waitForFunction(() => document.querySelectorAll('#notes li').length === 2);
    assert.equal(await page.locator('#live-check').textContent(), 'integrity_check: ok');
    // The slider sits on the newest snapshot; one step left is the snapshot after the first note.
    await page.locator('#slider').focus();
    await page.keyboard.press('ArrowLeft');
    await page.waitForFunction(() => /snapshot 1 of 2/.test(document.getElementById('slider-label').textContent));
    await page.waitForFunction(() => document.querySelectorAll('#snapshot-notes li').length === 1);
    assert.equal(await page.locator('#snapshot-notes li').textContent(), 'buy milk');
    assert.equal(await page.locator('#snapshot-check').textContent(), 'integrity_check: ok');
    await page.keyboard.press('ArrowRight');
    await page.waitForFunction(() => /pages changed since the snapshot before: \d/.test(document.getElementById('snapshot-diff').textContent));
    await page.keyboard.press('ArrowLeft');
    await page.waitForFunction(() => /snapshot 1 of 2/.test(document.getElementById('slider-label').textContent));
    // With STRATA_SCREENSHOTS=docs/screenshots, the page as it is now, for the README.
    if (process.env.STRATA_SCREENSHOTS) {
      const file = path.resolve(repoRoot, process.env.STRATA_SCREENSHOTS, 'sqlite-demo.png');
      await page.setViewportSize({ width: 1000, height: 700 });
      await page.screenshot({ path: file, fullPage: true });
      assert.ok((await stat(file)).size < 150_000, 'sqlite-demo.png is small');
    }
    // Roll back by keyboard: the live list is the first snapshot's again.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'rollback');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelectorAll('#notes li').length === 1);
    assert.match(await page.locator('#notes li').textContent(), /^buy milk/);
    // axe-core (tests/node_modules), every rule it runs by default; evaluated by the devtools
    // protocol, which the page's CSP (no inline scripts) does not govern.
    await page.evaluate(await readFile(path.join(repoRoot, 'tests/node_modules/axe-core/axe.min.js'), 'utf8'));
    const violations = await page.evaluate(async () => (await window.axe.run(document)).violations);
    assert.deepEqual(
      violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
      [],
    );
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});
