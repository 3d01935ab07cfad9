// Types of sqlite.js (`strata-engine/sqlite`): a SQLite database kept in a Strata volume.

import type { StrataClient, StrataMirrorClient, Integer } from './client.js';

/** The volume a database lives in: a store or a mirror. */
export type DatabaseVolume = StrataClient | StrataMirrorClient;

/** wa-sqlite's Asyncify build: its API object and its Emscripten module. */
export interface SQLiteModule {
  // wa-sqlite's SQLiteAPI (`@journeyapps/wa-sqlite`); typed loosely to keep the peer optional.
  sqlite3: any;
  module: any;
}

/** The 16 bytes that open block 0 of a volume holding a database: `strata-sqlite-v1`. */
export declare const HEADER_MAGIC: string;
/** The name the live database is opened under in the VFS: `live.db`. */
export declare const LIVE_FILE: string;

/** Loads wa-sqlite's Asyncify build once per page. */
export declare function loadSQLite(): Promise<SQLiteModule>;

/**
 * Opens (or creates) the database kept in `volume`. Every SQLite sync is one Strata durability
 * point: the transaction's pages and the file's size go to the volume as one atomic write
 * batch, then one `sync()`. A volume whose block 0 is neither zeros nor a Strata SQLite header
 * is refused (SQLITE_CANTOPEN).
 */
export declare function openDatabase(volume: DatabaseVolume, options?: { sqlite?: SQLiteModule }): Promise<StrataDatabase>;

/** Parameters of a statement: positional (array) or named (object). */
export type Params = unknown[] | Record<string, unknown>;
export type Row = Record<string, unknown>;

/** Which database pages differ between two volumes (pages numbered from 1). */
export interface PageDiff {
  pageSize: number;
  pages: number[];
  /** The file's size differs (block 0, the header, changed). */
  headerChanged: boolean;
}

export declare class StrataDatabase {
  private constructor();
  /** The Strata volume the database lives in. */
  readonly volume: DatabaseVolume;
  /** The live database's sqlite3 handle (use it inside `withSQLite`). */
  readonly handle: number;
  /** The most bytes one transaction may change (16 MiB less a block); SQLITE_FULL beyond. */
  readonly transactionBytesMax: number;
  /** Runs `body(sqlite3)` when no other call of the SQLite module runs (Asyncify runs one at a time). */
  withSQLite<T>(body: (sqlite3: any) => Promise<T> | T): Promise<T>;
  /** Runs `sql` (one or more statements); the rows of every statement, as objects. */
  query(sql: string, params?: Params): Promise<Row[]>;
  /** Runs `sql`; resolves to the rows changed by its last statement. */
  run(sql: string, params?: Params): Promise<number>;
  /** Seals the volume's head as a snapshot of the last commit; refused inside a transaction. */
  snapshot(label?: string): Promise<number>;
  /** Opens snapshot `volume` (or the baseline `0`) as a read-only database beside the live one. */
  openSnapshot(volume: Integer): Promise<StrataSnapshotDatabase>;
  /** Rolls the database back to snapshot `volume`; the head before it is kept as a snapshot. */
  rollback(volume: Integer, label?: string): Promise<number>;
  /** The pages that differ between volumes `a` and `b`. */
  diff(a: Integer, b: Integer): Promise<PageDiff>;
  pageSize(): Promise<number>;
  /** Closes the database; the volume stays open. */
  close(): Promise<void>;
}

export declare class StrataSnapshotDatabase {
  private constructor();
  readonly volume: number;
  readonly handle: number;
  /** Reads only: a write fails with SQLITE_READONLY. */
  query(sql: string, params?: Params): Promise<Row[]>;
  close(): Promise<void>;
}

/** The wa-sqlite VFS behind `openDatabase`, for apps that register it themselves. */
export declare class StrataVFS {
  static create(name: string, module: any, volume: DatabaseVolume): Promise<StrataVFS>;
  readonly name: string;
  readonly blockSize: number;
  transactionBytesMax(): number;
}
