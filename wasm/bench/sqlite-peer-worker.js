// The strongest peer of the SQLite benchmark: wa-sqlite's synchronous build with its
// OPFSCoopSyncVFS (OPFS sync access handles, a flush per sync), which only runs in a dedicated
// worker. The page sends { id, sql, params } and gets { id, rows } or { id, error }: one message
// round trip per statement, as SQLite on Strata pays one per page it reads from the store.

// A worker does not see the page's import map: wa-sqlite by its path from the repository's root
// (sqlite-run.mjs serves the root).
import SQLiteESMFactory from '/tests/node_modules/@journeyapps/wa-sqlite/dist/wa-sqlite.mjs';
import * as SQLite from '/tests/node_modules/@journeyapps/wa-sqlite/src/sqlite-api.js';
import { OPFSCoopSyncVFS } from '/tests/node_modules/@journeyapps/wa-sqlite/src/examples/OPFSCoopSyncVFS.js';

const ready = (async () => {
  const module = await SQLiteESMFactory();
  const sqlite3 = SQLite.Factory(module);
  const vfs = await OPFSCoopSyncVFS.create('peer-coop-sync', module);
  sqlite3.vfs_register(vfs, false);
  return sqlite3;
})();

let db = 0;

self.onmessage = async ({ data: { id, op, name, sql, params } }) => {
  try {
    const sqlite3 = await ready;
    if (op === 'open') {
      db = await sqlite3.open_v2(name, SQLite.SQLITE_OPEN_CREATE | SQLite.SQLITE_OPEN_READWRITE, 'peer-coop-sync');
      self.postMessage({ id, rows: [] });
    } else if (op === 'close') {
      await sqlite3.close(db);
      self.postMessage({ id, rows: [] });
    } else {
      const rows = [];
      for await (const stmt of sqlite3.statements(db, sql)) {
        if (params !== undefined && sqlite3.bind_parameter_count(stmt) > 0) sqlite3.bind_collection(stmt, params);
        while ((await sqlite3.step(stmt)) === SQLite.SQLITE_ROW) rows.push(sqlite3.row(stmt));
      }
      self.postMessage({ id, rows });
    }
  } catch (error) {
    self.postMessage({ id, error: String(error.message ?? error) });
  }
};
