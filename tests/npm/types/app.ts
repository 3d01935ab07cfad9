// Type-checked by tests/npm/types.test.mjs against the built package's declarations, as a
// TypeScript app would use the package (strict, no skipLibCheck). Never run.

import {
  StrataError,
  destroy,
  destroyMirror,
  open,
  openMirror,
  type StrataClient,
  type StrataMirrorClient,
} from 'strata-engine';
import type { LogEntry, VolumeInfo } from 'strata-engine';

export async function store(): Promise<number> {
  const client: StrataClient = await open({ name: 'disk', backend: 'opfs', blockSize: 4096, blocks: 1024 });
  await client.write(7, new Uint8Array(4096));
  const volume: number = await client.snapshot('first');
  const volumes: VolumeInfo[] = await client.volumes();
  const data: Uint8Array = await client.readAt(volume, 7, 1);
  for await (const entry of client.log({ withData: false })) {
    const seq: number = (entry satisfies LogEntry).seq;
    void seq;
  }
  const report = await client.compact(volume);
  void (report.bytesBefore - report.bytesAfter);
  await client.close();
  await destroy({ name: 'disk', backend: 'opfs' });
  return volumes.length + data.length;
}

export async function mirror(): Promise<string[]> {
  const m: StrataMirrorClient = await openMirror({ name: 'm', backend: 'opfs', legs: ['opfs', 'indexeddb'], blocks: 64 });
  const snapshot = await m.snapshot('s');
  void snapshot.volume;
  const status = await m.status();
  const states: string[] = status.legs.map((leg) => `${leg.leg} ${leg.backend} ${leg.state}`);
  const scrub = await m.scrub();
  void scrub.unrecoverable;
  const events = await m.events();
  void events.map((e) => e.leg);
  const resilver = await m.replace(0);
  void resilver.blocksWritten;
  await m.close();
  await destroyMirror({ name: 'm', backend: 'opfs', legs: ['opfs', 'indexeddb'] });
  return states;
}

export function code(error: unknown): string | undefined {
  return error instanceof StrataError ? error.code : undefined;
}

// strata-engine/sqlite: its declarations stand without wa-sqlite's (an optional peer).
import { openDatabase, type PageDiff, type Row, type StrataDatabase } from 'strata-engine/sqlite';

export async function sqlite(): Promise<number> {
  const client: StrataClient = await open({ name: 'db', blocks: 16384 });
  const db: StrataDatabase = await openDatabase(client);
  await db.query('CREATE TABLE IF NOT EXISTS t (v TEXT)');
  const changed: number = await db.run('INSERT INTO t VALUES (?)', ['x']);
  const snapshot: number = await db.snapshot('after x');
  const old = await db.openSnapshot(snapshot);
  const rows: Row[] = await old.query('SELECT v FROM t WHERE v = :v', { ':v': 'x' });
  await old.close();
  const diff: PageDiff = await db.diff(snapshot, (await client.info()).head);
  const head: number = await db.rollback(snapshot, 'before rollback');
  const limit: number = db.transactionBytesMax;
  await db.close();
  await client.close();
  return changed + rows.length + diff.pages.length + head + limit;
}
