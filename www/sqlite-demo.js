// The time-travel SQLite demo: a notes list in a SQLite database kept in a Strata volume
// (strata-engine/sqlite). URL parameters: `backend` (auto, opfs, indexeddb, memory; default
// auto) and `name` (the store's name; default `sqlite-notes`). `window.notes` exposes the
// database and the store to the end-to-end tests (tests/e2e/sqlite.test.mjs).

import { open } from 'strata-engine';
import { openDatabase } from 'strata-engine/sqlite';

const params = new URLSearchParams(location.search);
const backend = params.get('backend') ?? 'auto';
const name = params.get('name') ?? 'sqlite-notes';

const $ = (id) => document.getElementById(id);
const status = (text) => {
  $('status').textContent = text;
};

/** The snapshots the slider walks, oldest first: `{ id, label }`. */
let snapshots = [];

async function main() {
  // 4 KiB blocks, 16,384 blocks: a database of up to 64 MiB.
  const store = await open({ name, backend, blocks: 16384 });
  const db = await openDatabase(store);
  await db.query(`CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY, text TEXT NOT NULL, created INTEGER NOT NULL)`);
  window.notes = { store, db, refresh };

  $('add-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const text = $('note-text').value.trim();
    if (!text) return;
    run(async () => {
      await db.run('INSERT INTO notes (text, created) VALUES (?, ?)', [text, Date.now()]);
      $('note-text').value = '';
      if ($('auto-snapshot').checked) await db.snapshot(`added: ${text.slice(0, 40)}`);
      await refresh();
    });
  });
  $('notes').addEventListener('click', (event) => {
    const button = event.target.closest('button[data-id]');
    if (!button) return;
    run(async () => {
      await db.run('DELETE FROM notes WHERE id = ?', [Number(button.dataset.id)]);
      if ($('auto-snapshot').checked) await db.snapshot(`deleted note ${button.dataset.id}`);
      await refresh();
    });
  });
  $('slider').addEventListener('input', () => run(showSnapshot));
  $('rollback').addEventListener('click', () =>
    run(async () => {
      const { id } = snapshots[Number($('slider').value)];
      await db.rollback(id, 'before rollback');
      await refresh();
    }),
  );

  await refresh();
  status('ready');
}

/** Runs a user action, showing its failure (with the Strata or SQLite code) in the status line. */
async function run(action) {
  try {
    await action();
  } catch (error) {
    status(`error: ${error.code ?? ''} ${error.message}`);
  }
}

function listNotes(list, rows, deletable) {
  list.replaceChildren(
    ...rows.map((row) => {
      const item = document.createElement('li');
      item.textContent = row.text;
      if (deletable) {
        const remove = document.createElement('button');
        remove.type = 'button';
        remove.dataset.id = String(row.id);
        remove.textContent = 'Delete';
        remove.setAttribute('aria-label', `Delete note: ${row.text}`);
        item.append(' ', remove);
      }
      return item;
    }),
  );
}

async function refresh() {
  const { db, store } = window.notes;
  listNotes($('notes'), await db.query('SELECT id, text FROM notes ORDER BY id'), true);
  const [{ integrity_check: check }] = await db.query('PRAGMA integrity_check');
  $('live-check').textContent = `integrity_check: ${check}`;
  snapshots = (await store.volumes())
    .filter((volume) => volume.kind === 'snapshot')
    .map(({ id, label }) => ({ id, label }));
  const slider = $('slider');
  slider.max = String(Math.max(0, snapshots.length - 1));
  slider.value = slider.max;
  slider.disabled = snapshots.length === 0;
  $('rollback').disabled = snapshots.length === 0;
  await showSnapshot();
}

async function showSnapshot() {
  const { db } = window.notes;
  if (snapshots.length === 0) return;
  const index = Number($('slider').value);
  const { id, label } = snapshots[index];
  $('slider-label').textContent = `snapshot ${index + 1} of ${snapshots.length}: volume ${id}, "${label}"`;
  $('slider').setAttribute('aria-valuetext', `volume ${id}, ${label}`);
  const snapshot = await db.openSnapshot(id);
  try {
    // A snapshot taken before the table existed holds an empty database.
    const [{ present }] = await snapshot.query(
      "SELECT count(*) AS present FROM sqlite_master WHERE name = 'notes'",
    );
    listNotes($('snapshot-notes'), present ? await snapshot.query('SELECT id, text FROM notes ORDER BY id') : [], false);
    const [{ integrity_check: check }] = await snapshot.query('PRAGMA integrity_check');
    $('snapshot-check').textContent = `integrity_check: ${check}`;
  } finally {
    await snapshot.close();
  }
  if (index > 0) {
    const { pages, headerChanged } = await db.diff(snapshots[index - 1].id, id);
    $('snapshot-diff').textContent =
      `pages changed since the snapshot before: ${pages.join(', ') || 'none'}` +
      (headerChanged ? ' (the file grew or shrank)' : '');
  } else {
    $('snapshot-diff').textContent = 'the first snapshot';
  }
}

main().catch((error) => status(`error: ${error.code ?? ''} ${error.message}`));
