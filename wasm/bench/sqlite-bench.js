// SQLite on Strata against the same SQLite package on its own browser storage, in the same run:
// wa-sqlite's Asyncify build on the page with its OPFSAnyContextVFS (OPFS) and IDBBatchAtomicVFS
// (IndexedDB), as SQLite on Strata runs; and wa-sqlite's synchronous build with OPFSCoopSyncVFS
// (sync access handles) in a dedicated worker, its fastest OPFS storage, driven by one message
// per statement. Strata runs its store in its worker (OPFS, then IndexedDB).
//
// Figures, each the best of `rounds` runs:
//   commits/s      single-row INSERTs, each its own transaction (a durability point each)
//   bulk rows/s    INSERTs in transactions of 1,000 rows
//   point query    SELECT by primary key, mean latency over random ids (caches warm)
//   scan query     an aggregate over the whole table, median latency
// Ratios are Strata's figure over the peer's (above 1: Strata is faster); no targets.

import { open, destroy } from 'strata-engine';
import { openDatabase, loadSQLite } from 'strata-engine/sqlite';
import { OPFSAnyContextVFS } from '@journeyapps/wa-sqlite/src/examples/OPFSAnyContextVFS.js';
import { IDBBatchAtomicVFS } from '@journeyapps/wa-sqlite/src/examples/IDBBatchAtomicVFS.js';
import * as SQLite from '@journeyapps/wa-sqlite';

const params = new URLSearchParams(location.search);
const quick = params.has('quick');
const config = {
  commits: Number(params.get('commits') ?? (quick ? 20 : 300)),
  bulkRows: Number(params.get('bulkRows') ?? (quick ? 2000 : 20000)),
  queries: Number(params.get('queries') ?? (quick ? 50 : 1000)),
  scans: Number(params.get('scans') ?? (quick ? 3 : 20)),
  rounds: Number(params.get('rounds') ?? (quick ? 1 : 3)),
};

const log = (line) => {
  document.getElementById('log').textContent += `${line}\n`;
};
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const payload = (i) => `row ${i} `.padEnd(100, 'x');

/** One SQL engine: `open()` resolves to { query(sql, params), close() } on a fresh database. */
function strataEngine(backend) {
  return {
    name: `strata-${backend}`,
    async open(round) {
      const name = `sqlite-bench-${backend}-${round}`;
      await destroy({ name, backend });
      const store = await open({ name, backend, blocks: 65536 });
      const db = await openDatabase(store);
      return {
        // Rows as arrays of values, as the peer's.
        query: async (sql, p) => (await db.query(sql, p)).map((row) => Object.values(row)),
        async close() {
          await db.close();
          await store.close();
          await destroy({ name, backend });
        },
      };
    },
  };
}

let peerCount = 0;
function peerEngine(label, VfsClass) {
  return {
    name: label,
    async open(round) {
      const { sqlite3, module } = await loadSQLite();
      peerCount += 1;
      const vfs = await VfsClass.create(`peer-${peerCount}`, module);
      sqlite3.vfs_register(vfs, false);
      const file = `bench-peer-${peerCount}-${Date.now()}.db`;
      const db = await sqlite3.open_v2(file, SQLite.SQLITE_OPEN_CREATE | SQLite.SQLITE_OPEN_READWRITE, vfs.name);
      const query = async (sql, p) => {
        const rows = [];
        for await (const stmt of sqlite3.statements(db, sql)) {
          if (p !== undefined && sqlite3.bind_parameter_count(stmt) > 0) sqlite3.bind_collection(stmt, p);
          while ((await sqlite3.step(stmt)) === SQLite.SQLITE_ROW) rows.push(sqlite3.row(stmt));
        }
        return rows;
      };
      return {
        query,
        async close() {
          await sqlite3.close(db);
          await vfs.close?.();
        },
      };
    },
  };
}

/** wa-sqlite's sync build and OPFSCoopSyncVFS in a dedicated worker (sqlite-peer-worker.js). */
function workerPeerEngine(label) {
  return {
    name: label,
    async open(round) {
      const worker = new Worker(new URL('./sqlite-peer-worker.js', import.meta.url), { type: 'module' });
      let next = 0;
      const pending = new Map();
      worker.onmessage = ({ data }) => {
        const { resolve, reject } = pending.get(data.id);
        pending.delete(data.id);
        if (data.error) reject(new Error(data.error));
        else resolve(data.rows);
      };
      const call = (message) =>
        new Promise((resolve, reject) => {
          next += 1;
          pending.set(next, { resolve, reject });
          worker.postMessage({ id: next, ...message });
        });
      await call({ op: 'open', name: `bench-coop-${round}-${Date.now()}.db` });
      return {
        query: (sql, params) => call({ op: 'query', sql, params }),
        async close() {
          await call({ op: 'close' });
          worker.terminate();
        },
      };
    },
  };
}

async function measure(engine, round) {
  const db = await engine.open(round);
  try {
    await db.query('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
    let started = performance.now();
    for (let i = 0; i < config.commits; i++) await db.query('INSERT INTO t (v) VALUES (?)', [payload(i)]);
    const commitsPerS = config.commits / ((performance.now() - started) / 1000);
    started = performance.now();
    for (let done = 0; done < config.bulkRows; ) {
      await db.query('BEGIN');
      for (let i = 0; i < 1000 && done < config.bulkRows; i++, done++) {
        await db.query('INSERT INTO t (v) VALUES (?)', [payload(done)]);
      }
      await db.query('COMMIT');
    }
    const bulkRowsPerS = config.bulkRows / ((performance.now() - started) / 1000);
    const rows = config.commits + config.bulkRows;
    // performance.now() is coarse in a page that is not cross-origin isolated (100 µs steps
    // here), finer than a query: point queries are timed together, the mean reported.
    let x = 12345;
    started = performance.now();
    for (let i = 0; i < config.queries; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const found = await db.query('SELECT v FROM t WHERE id = ?', [1 + (x % rows)]);
      if (found.length !== 1) throw new Error(`${engine.name}: row ${1 + (x % rows)} not found`);
    }
    const pointMs = (performance.now() - started) / config.queries;
    const scans = [];
    for (let i = 0; i < config.scans; i++) {
      const t0 = performance.now();
      const [[count]] = await db.query('SELECT count(*), sum(length(v)) FROM t');
      scans.push(performance.now() - t0);
      if (count !== rows) throw new Error(`${engine.name}: ${count} rows, expected ${rows}`);
    }
    return { commitsPerS, bulkRowsPerS, pointMs, scanMs: median(scans) };
  } finally {
    await db.close();
  }
}

async function main() {
  const engines = [
    strataEngine('opfs'),
    peerEngine('wa-sqlite-opfs (OPFSAnyContextVFS)', OPFSAnyContextVFS),
    workerPeerEngine('wa-sqlite-opfs-worker (OPFSCoopSyncVFS)'),
    strataEngine('indexeddb'),
    peerEngine('wa-sqlite-idb (IDBBatchAtomicVFS)', IDBBatchAtomicVFS),
  ];
  log(`config: ${JSON.stringify(config)}`);
  const results = {};
  for (const engine of engines) {
    let best = null;
    for (let round = 0; round < config.rounds; round++) {
      const r = await measure(engine, round);
      best = best
        ? {
            commitsPerS: Math.max(best.commitsPerS, r.commitsPerS),
            bulkRowsPerS: Math.max(best.bulkRowsPerS, r.bulkRowsPerS),
            pointMs: Math.min(best.pointMs, r.pointMs),
            scanMs: Math.min(best.scanMs, r.scanMs),
          }
        : r;
    }
    results[engine.name] = best;
    log(
      `${engine.name.padEnd(36)} commits/s ${best.commitsPerS.toFixed(0).padStart(6)}  bulk rows/s ${best.bulkRowsPerS.toFixed(0).padStart(7)}  point ${(best.pointMs * 1000).toFixed(0)} µs  scan ${best.scanMs.toFixed(2)} ms`,
    );
  }
  const ratios = [];
  for (const [strata, peer] of [
    ['strata-opfs', 'wa-sqlite-opfs (OPFSAnyContextVFS)'],
    ['strata-opfs', 'wa-sqlite-opfs-worker (OPFSCoopSyncVFS)'],
    ['strata-indexeddb', 'wa-sqlite-idb (IDBBatchAtomicVFS)'],
  ]) {
    const s = results[strata];
    const p = results[peer];
    for (const [what, value] of [
      ['commits/s', s.commitsPerS / p.commitsPerS],
      ['bulk rows/s', s.bulkRowsPerS / p.bulkRowsPerS],
      ['point query (latency, peer/strata)', p.pointMs / s.pointMs],
      ['scan query (latency, peer/strata)', p.scanMs / s.scanMs],
    ]) {
      ratios.push({ what: `${strata} vs ${peer}: ${what}`, value });
      log(`ratio ${strata} vs ${peer.split(' ')[0]}: ${what} ${value.toFixed(2)}x`);
    }
  }
  window.benchResult = { ok: true, config, results, ratios };
}

main().catch((error) => {
  log(`failed: ${error.stack ?? error}`);
  window.benchResult = { ok: false, error: String(error.message ?? error) };
});
