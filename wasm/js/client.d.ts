// Types of client.js: the Promise client that runs a Strata store in a module worker.

import type {
  AuditEntry,
  BlockMapBucket,
  BranchInfo,
  CompactReport,
  CopyReport,
  CursorStart,
  Decision,
  Extent,
  LogEntry,
  Provenance,
  RecoveryReport,
  SendOptions,
  SendResult,
  SpaceInfo,
  StoreInfo,
  TimelineEntry,
  VolumeInfo,
} from './strata_wasm.js';
// The mirror's types live in the second module's declarations (the main module is built
// without the cargo feature `mirror`).
import type {
  FaultEvent,
  MirrorInfo,
  MirrorLegScrub,
  MirrorLegStatus,
  MirrorScrubReport,
  MirrorSnapshot,
  MirrorStatus,
  ResilverReport,
} from './strata_mirror.js';

export type {
  AuditEntry,
  BlockMapBucket,
  BranchInfo,
  CompactReport,
  CopyReport,
  CursorStart,
  Decision,
  Extent,
  FaultEvent,
  LogEntry,
  MirrorInfo,
  MirrorLegScrub,
  MirrorLegStatus,
  MirrorScrubReport,
  MirrorSnapshot,
  MirrorStatus,
  Provenance,
  RecoveryReport,
  ResilverReport,
  SendOptions,
  SendResult,
  SpaceInfo,
  StoreInfo,
  TimelineEntry,
  VolumeInfo,
};

/**
 * A block address, block count, volume identifier or other whole number an argument takes: a
 * `number` that is an integer, or a `bigint`, from 0 to 2^53 - 1 (block addresses stay below
 * 2^28). Anything else (a string, `null`, `NaN`, a fraction, a negative number) is refused with
 * `INVALID_ARGUMENT` naming the argument; nothing is coerced.
 */
export type Integer = number | bigint;

/**
 * The most bytes one `read`, `readAt` or `exportImage` without `onChunk` returns: 64 MiB.
 * A larger range fails with `LIMIT_EXCEEDED`; use `readStream`, or `exportImage` with `onChunk`.
 */
export declare const READ_BYTES_MAX: number;
/** The most entries one round trip of `log()` asks for (its `batch` option): 4096. */
export declare const LOG_BATCH_MAX: number;
/** The most writes in one `writeBatch`: 65536 (and at most 16 MiB of data: `BATCH_TOO_LARGE`). */
export declare const BATCH_WRITES_MAX: number;

/** Where a store lives. `"auto"`: OPFS where available, else IndexedDB, else memory. */
export type Backend = 'auto' | 'memory' | 'opfs' | 'indexeddb';

/** Stable codes of `StrataError.code` (the list may grow; treat unknown codes as failures). */
export type ErrorCode =
  | 'LOCKED'
  | 'QUOTA_EXCEEDED'
  | 'IO'
  | 'INVALID_NAME'
  | 'CLOSED'
  | 'READ_ONLY'
  /** Raw bindings of the main module (no policy executor) opening a store that has policies. */
  | 'POLICIES_UNAVAILABLE'
  | 'INVALID_ARGUMENT'
  | 'INVALID_STATE'
  | 'INVALID_BLOCK_SIZE'
  | 'INVALID_BLOCK_COUNT'
  | 'OUT_OF_RANGE'
  | 'NOT_WHOLE_BLOCKS'
  | 'BATCH_TOO_LARGE'
  /** An operation would pass one of the store's stated limits (record, journal, partitions). */
  | 'LIMIT_EXCEEDED'
  | 'UNKNOWN_VOLUME'
  | 'INVALID_LABEL'
  | 'NOT_A_STORE'
  | 'ALREADY_EXISTS'
  | 'UNSUPPORTED_VERSION'
  | 'CHECKSUM_MISMATCH'
  | 'CORRUPT'
  | 'IMAGE_SIZE'
  | 'BAD_STREAM'
  | 'POISONED'
  | 'CANCELLED'
  /**
   * The worker died: it could not load, or the engine in it stopped. The handle's pending and
   * later calls fail with this code, the worker is ended (its locks released) and `close()`
   * resolves: open the store again.
   */
  | 'WORKER_ERROR'
  /** `openMirror` with a build of the package that has no mirror. */
  | 'UNSUPPORTED'
  | (string & {});

/**
 * Every failure: `code` is stable and machine-readable, `message` is for people. Every method of
 * the client returns a Promise and reports every failure, bad arguments included, by rejecting it
 * with a `StrataError`; none throws synchronously.
 */
export declare class StrataError extends Error {
  constructor(code: ErrorCode, message: string);
  readonly name: 'StrataError';
  readonly code: ErrorCode;
}

export interface ClientOptions {
  /**
   * Transfer the `ArrayBuffer` of each `Uint8Array` you write to the worker instead of copying
   * it (default `true`). A transferred buffer is detached: its length becomes 0 on your side.
   * A view into part of a larger buffer is always copied.
   */
  transfer?: boolean;
}

export interface OpenOptions extends ClientOptions {
  /**
   * The store's name: one store per name, origin and backend. Not empty, `.` or `..`, and without
   * `/`, `\` or NUL (`INVALID_NAME`), so that every backend can hold it.
   */
  name: string;
  backend?: Backend;
  /** Block size in bytes when creating (a power of two, 512..65536); default 4096. */
  blockSize?: Integer;
  /** Number of blocks when creating; not needed to open an existing store. */
  blocks?: Integer;
  /**
   * Open a lock-free, point-in-time view beside a writer elsewhere: reads work, every change
   * fails with code `READ_ONLY`; the store must exist. Opening writes nothing, even while the
   * writer is mid-compaction, mid-merge or mid-receive. OPFS and IndexedDB only: on the memory
   * backend (also when `"auto"` resolves to it) it fails with `INVALID_ARGUMENT`.
   */
  readOnly?: boolean;
  /**
   * Whether the store acts on its policy by itself (default true): threshold rules right after
   * the operation that crossed them (a `write()` may then snapshot or merge), and the built-in
   * events `open`, `close` and compactions. With `false`, only `runPolicies()`, `event()` and
   * the `policyTickMs` timer carry policy decisions out.
   */
  automaticPolicies?: boolean;
  /**
   * Load the policy executor at once (default false). Without it the worker opens the store with
   * the package's main module, which has none, and loads `strata_policies_bg.wasm` only when the
   * store has a policy (or holds, or an audit trail) or when you first call a policy method
   * (`setPolicy`, `policy`, `audit`, ...): the store is then closed and opened again there, and
   * open log cursors end. Pages that use policies from the start download one module with it.
   */
  policies?: boolean;
  /**
   * Run the store's policies on a timer in the worker, every `policyTickMs` milliseconds (at
   * least 10), as `runPolicies()` would: scheduled snapshots, retention, thresholds. Each run
   * takes its turn with your calls. Not for read-only stores.
   */
  policyTickMs?: number;
  /** The audit entries of each timer run that decided something. */
  onPolicyRun?: (entries: AuditEntry[]) => void;
  /** Chunks of policy copies of timer runs (without it, copy decisions are recorded as failed). */
  onPolicyCopy?: (target: string, chunk: Uint8Array) => void;
  /** A timer run that failed (e.g. `QUOTA_EXCEEDED`); the timer keeps running. */
  onPolicyError?: (error: StrataError) => void;
}

export interface ImportOptions extends ClientOptions {
  name: string;
  backend?: Backend;
  blockSize?: Integer;
  /** The image's size, checked as bytes arrive. */
  expectedBytes?: Integer;
}

/** Bytes done and bytes in all. */
export type ProgressCallback = (doneBytes: number, totalBytes: number) => void;

export interface Cancellable {
  onProgress?: ProgressCallback;
  /** Aborting cancels the operation at its next progress point (code `CANCELLED`). */
  signal?: AbortSignal;
}

export interface Stats {
  info: StoreInfo;
  space: SpaceInfo[];
  /** `navigator.storage.estimate()` in the worker, when available. */
  estimate: { usage: number; quota: number } | null;
}

/** What `StrataMirrorClient.stats()` returns. */
export interface MirrorStats extends Omit<Stats, 'info'> {
  info: MirrorInfo;
}

export interface LogOptions {
  /** Where to start (default: the beginning of the log). */
  from?: CursorStart;
  /** Read and verify each entry's blocks (`entry.data`). */
  withData?: boolean;
  /** Entries fetched per message to the worker (default 64, at most `LOG_BATCH_MAX`). */
  batch?: number;
}

export type ImageSource =
  | Uint8Array
  | ArrayBuffer
  | Blob
  | ReadableStream<Uint8Array>
  | Iterable<Uint8Array>
  | AsyncIterable<Uint8Array>;

/**
 * What a store and a mirror both offer: the live head, snapshots and the baseline, written,
 * read, snapshotted and reshaped the same way. `Info`, `Snapshot` and `VolumeStats` are what
 * `info()`, `snapshot()` and `stats()` resolve to for each.
 */
export interface Volume<Info = StoreInfo, Snapshot = number, VolumeStats = Stats> {
  readonly name: string;
  /** The backend chosen (`"auto"` resolved); for a mirror, the secondary's. */
  readonly backend: 'memory' | 'opfs' | 'indexeddb';

  /** Writes whole blocks from block `addr`; resolves to the entry's sequence number. Durable after `sync()`. */
  write(addr: Integer, data: Uint8Array): Promise<number>;
  /** One atomic record of several writes; resolves to the first sequence number. */
  writeBatch(writes: Array<[addr: Integer, data: Uint8Array]>): Promise<number>;
  /**
   * Makes `blocks` blocks from `addr` read as zeros (trim, discard, write-zeroes). Zeroed blocks
   * are metadata (a 16-byte extent however long), and only blocks that do not read as zeros
   * already are recorded; resolves to how many those were. Durable after `sync()`.
   */
  writeZeroes(addr: Integer, blocks: Integer): Promise<number>;
  /** The durability point: resolves once every earlier write survives a crash. */
  sync(): Promise<void>;
  /** Seals the head as a snapshot. */
  snapshot(label?: string): Promise<Snapshot>;
  /** The live volume. */
  read(addr: Integer, blocks: Integer): Promise<Uint8Array>;
  /** A snapshot (or the baseline `0`, or the head). At most `READ_BYTES_MAX` bytes (`LIMIT_EXCEEDED`); larger ranges: `readStream`. */
  readAt(volume: Integer, addr: Integer, blocks: Integer): Promise<Uint8Array>;
  /**
   * `blocks` blocks from `addr` (of `volume`, default the head) as a stream of chunks of about
   * 1 MiB, read as the stream is consumed: any range in bounded memory.
   */
  readStream(addr: Integer, blocks: Integer, options?: { volume?: Integer }): Promise<ReadableStream<Uint8Array>>;
  volumes(): Promise<VolumeInfo[]>;
  info(): Promise<Info>;
  /** Space accounting for every partition. */
  space(): Promise<SpaceInfo[]>;
  stats(): Promise<VolumeStats>;
  /** The log, entry by entry, in sequence order (writes appear before any `sync()`). */
  log(options?: LogOptions): AsyncGenerator<LogEntry, void, undefined>;
  /** Compacts snapshot `volume` in place; `signal` cancels it (code `CANCELLED`). */
  compact(volume: Integer, options?: Cancellable): Promise<CompactReport>;
  /** Folds the partitions up to `volume` into the baseline; resolves to how many were merged. */
  merge(volume: Integer, options?: Cancellable): Promise<number>;
  /** Deletes snapshot `volume`. */
  delete(volume: Integer): Promise<CompactReport>;
  /**
   * Makes `volume` the parent of a new head (the old head is kept as a snapshot labelled
   * `label`, default `"before-rollback"`); resolves to the new head's id.
   */
  rollback(volume: Integer, label?: string): Promise<number>;
  /** The block extents that differ between two volumes; at most 1,048,576 (`LIMIT_EXCEEDED` beyond). */
  diff(a: Integer, b: Integer): Promise<Extent[]>;

  // Storage management (the policy executor above the store or the mirror, its documents in
  // the store's journal).
  /** A policy as an object or JSON text; `null` removes it. */
  setPolicy(policy: object | string | null): Promise<void>;
  policy(): Promise<object | null>;
  setAssignments(assignments: Array<{ volume: number; hold?: boolean; ttl_ms?: number }> | string): Promise<void>;
  assignments(): Promise<Array<{ volume: number; hold?: boolean; ttl_ms?: number }>>;
  /** Signals an application event to the policies; resolves to the new audit entries. */
  event(name: string, callbacks?: { onCopy?: (target: string, chunk: Uint8Array) => void }): Promise<AuditEntry[]>;
  /** Evaluates the policies now and carries out their decisions. */
  runPolicies(callbacks?: { onCopy?: (target: string, chunk: Uint8Array) => void }): Promise<AuditEntry[]>;
  /** What the policies would decide now (or for `event`), without doing it. */
  dryRun(event?: string): Promise<Decision[]>;
  audit(): Promise<AuditEntry[]>;
  /** The policies' decisions if the clock ran for `durationMs` from now (a model; nothing changes). */
  simulatePolicies(durationMs: Integer, stepMs: Integer): Promise<TimelineEntry[]>;
  /**
   * Syncs, closes the store (a mirror: the secondary and the legs), releases the locks and ends
   * the worker. Closing twice does nothing; after `WORKER_ERROR` it resolves at once (the worker
   * is gone and its locks with it).
   */
  close(): Promise<void>;
}

/** A store open in its own module worker (its shared operations: `Volume`). */
export interface StrataClient extends Volume<StoreInfo, number, Stats> {}
export declare class StrataClient {
  private constructor();
  readonly readOnly: boolean;

  /** Which partition serves each of `blocks` blocks from `addr` of `volume` (at most 65536). */
  locate(volume: Integer, addr: Integer, blocks: Integer): Promise<Provenance[]>;
  /** `volume` summarised as `buckets` regions, each with the origin serving most of its blocks. */
  blockMap(volume: Integer, buckets: Integer): Promise<BlockMapBucket[]>;
  /** Every branch (writable clone), the active one first. */
  branches(): Promise<BranchInfo[]>;
  /**
   * Clones volume `from` (a snapshot, the baseline `0`, or a parked branch's head) into a new,
   * parked branch `name` that shares every block until written; resolves to its head's id.
   * Names: 1 to 64 letters, digits, `-`, `_`, `.`; not only digits, not `head` or `baseline`.
   */
  cloneBranch(from: Integer, name: string): Promise<number>;
  /**
   * Makes branch `name` the active one: writes, snapshots and rollbacks then act on it (the
   * live head is sealed as its branch's parked head). Resolves to the new live head's id.
   */
  checkout(name: string): Promise<number>;
  /** Deletes branch `name` (not `"main"`; the active one: `"main"` is checked out). Its snapshots stay. */
  deleteBranch(name: string): Promise<void>;
  /** A copy stream of sealed snapshots; chunks in the result, or to `onChunk`. */
  send(options?: SendOptions, callbacks?: { onChunk?: (chunk: Uint8Array) => void }): Promise<SendResult>;
  /**
   * Applies a copy stream (from `send`). Chunks are pushed to the worker as they are read, a few
   * at a time, so a `ReadableStream`, `Blob` or async iterable of any size needs bounded memory.
   * `onProgress(streamBytes)` follows the bytes applied. Volumes that arrived whole stay if a
   * later part is refused (code `BAD_STREAM`), so receiving the stream again resumes the copy.
   */
  receive(
    stream: ImageSource | Uint8Array[],
    options?: { onProgress?: (streamBytes: number) => void },
  ): Promise<CopyReport>;
  /**
   * Volume `volume` as a raw image: to `onChunk` in chunks (any size), or returned whole (at
   * most `READ_BYTES_MAX` bytes: `LIMIT_EXCEEDED` beyond).
   */
  exportImage(
    volume: Integer,
    options: Cancellable & { onChunk: (chunk: Uint8Array) => void },
  ): Promise<undefined>;
  exportImage(volume: Integer, options?: Cancellable): Promise<Uint8Array>;
}

/** Opens (or creates) a store; code `LOCKED` if another tab or worker has it open. */
export declare function open(options: OpenOptions): Promise<StrataClient>;

/** Creates a store from a raw image (its baseline) and opens it; the store must not exist. */
export declare function importImage(
  options: ImportOptions,
  source: ImageSource,
  callbacks?: { onProgress?: (doneBytes: number, totalBytes: number | undefined) => void },
): Promise<StrataClient>;

/**
 * Creates a store as a copy of another, from a full copy stream (`send()` without `base`), pushed
 * to the worker chunk by chunk as it is read; the store must not exist (`ALREADY_EXISTS`).
 * Later incremental streams of the same source go to `StrataClient.receive`.
 */
export declare function importStream(
  options: { name: string; backend?: Backend; transfer?: boolean },
  source: ImageSource,
  callbacks?: { onProgress?: (streamBytes: number, totalBytes: number | undefined) => void },
): Promise<StrataClient>;

/** Deletes a store's data; code `LOCKED` if it is open anywhere. */
export declare function destroy(options: { name: string; backend?: Backend }): Promise<void>;

export interface MirrorOpenOptions extends ClientOptions {
  /**
   * The mirror's name. The secondary is the store `name` on `backend`; leg `i` is the store
   * `name.leg<i>` on `legs[i]` (OPFS directory / IndexedDB database `strata-name.leg<i>`, Web Lock
   * of the same name). A leg is known by its position: open with the same `legs` every time.
   */
  name: string;
  /** Where the secondary (baseline + incremental log) lives; default `'auto'`. */
  backend?: Backend;
  /** One backend per leg of the primary, e.g. `['opfs', 'indexeddb']`; at least one. */
  legs: Backend[];
  /** Block size in bytes when creating (a power of two, 512..65536); default 4096. */
  blockSize?: number;
  /** Number of blocks when creating; not needed to open an existing mirror. */
  blocks?: number;
  /**
   * What every `snapshot()` does to the secondary after sealing it: `'inPlace'` compacts the
   * new snapshot, `{ keepSnapshots: n }` merges the oldest snapshots into the baseline so that at
   * most `n` remain. Not stored with the mirror: give it at every open.
   */
  compactOnSnapshot?: 'none' | 'inPlace' | { keepSnapshots: number };
  /**
   * Whether the mirror acts on its policy by itself (default true), as a store does: threshold
   * rules right after the operation that crossed them, built-in events (`open`, `close`,
   * compactions). With `false`, only `runPolicies()` and `event()` carry decisions out.
   */
  automaticPolicies?: boolean;
}

/**
 * A mirror open in its own module worker: a secondary store (baseline + log) beside a primary
 * copy of the live volume on several legs, each on a backend of its own. Its shared operations
 * (`Volume`) differ from a store's in these ways: `read` (the head) comes from the primary,
 * verified block by block (a bad copy is taken from another leg or the secondary and
 * rewritten; `CORRUPT` for a block with no good copy anywhere), everything else from the
 * secondary; `sync` makes the secondary durable, then every leg in service (a leg that fails
 * is taken out of service and shown by `status()`, not reported as an error); `snapshot`,
 * `compact`, `merge`, `delete` and `rollback` sync first, and `rollback` then rewrites the
 * blocks that changed on every leg; a merge reports progress but cannot be cancelled half-way;
 * `snapshot` resolves to a `MirrorSnapshot` (with the `compactOnSnapshot` compaction).
 */
export interface StrataMirrorClient extends Volume<MirrorInfo, MirrorSnapshot, MirrorStats> {}
export declare class StrataMirrorClient {
  private constructor();
  /** Each leg's backend, in leg order (`"auto"` resolved where the leg opened). */
  readonly legs: Array<'memory' | 'opfs' | 'indexeddb' | 'auto'>;

  /** Each leg's state (`healthy`, `degraded`, `missing`) and what was found and fixed. */
  status(): Promise<MirrorStatus>;
  /** Verifies every copy of every block and rewrites the bad ones it can. */
  scrub(): Promise<MirrorScrubReport>;
  /** Wipes leg `leg`'s storage and resilvers it; the leg is in service again. */
  replace(leg: Integer): Promise<ResilverReport>;
  /** Wipes every leg and rebuilds the primary from the secondary's head. */
  rebuild(): Promise<ResilverReport[]>;
  /** The faults found on the legs since the last call. */
  events(): Promise<FaultEvent[]>;
}

/** Opens (or creates, with `blocks`) a mirror; code `LOCKED` if it or one of its legs is open elsewhere. */
export declare function openMirror(options: MirrorOpenOptions): Promise<StrataMirrorClient>;

/** Deletes a mirror's secondary and legs; code `LOCKED` if any is open anywhere. */
export declare function destroyMirror(options: { name: string; backend?: Backend; legs: Backend[] }): Promise<void>;
