// strata-engine/sqlite: a SQLite database file kept in a Strata volume, with history.
//
// SQLite is wa-sqlite's Asyncify build (npm `@journeyapps/wa-sqlite`, a peer dependency): its VFS
// methods may return Promises, and every Strata call is one (the store runs in its worker). The
// official `@sqlite.org/sqlite-wasm` only takes synchronous VFS methods, so it could not wait for
// the worker without SharedArrayBuffer and cross-origin isolation.
//
// Layout of the volume: block 0 is a header (`strata-sqlite-v1`, then the file's size, u64 little
// endian); file byte `o` is in block `1 + floor(o / blockSize)`. The database's journal and temp
// files live in memory.
//
// Durability: writes to the database file are held in memory until SQLite syncs it (or ends a
// write transaction, for `PRAGMA synchronous = OFF`). Then the changed blocks and the header go
// to the volume as ONE `writeBatch` (one log record, atomic across a crash), followed by one
// `sync()`: the volume only ever holds committed transactions, so a snapshot, taken by the app
// or by a Strata policy, always holds a consistent database, and a crash (a reload, a killed
// worker) loses at most the transaction in flight. The price: one transaction may change at
// most `transactionBytesMax()` bytes (16 MiB less a block, a Strata write batch); a bigger one
// fails with SQLITE_FULL and is rolled back.

import { FacadeVFS } from '@journeyapps/wa-sqlite/src/FacadeVFS.js';
import * as VFS from '@journeyapps/wa-sqlite/src/VFS.js';
import * as SQLite from '@journeyapps/wa-sqlite';

/** The 16 bytes that open block 0 of a volume holding a database. */
export const HEADER_MAGIC = 'strata-sqlite-v1';
/** The most bytes one Strata write batch holds (`BATCH_TOO_LARGE` beyond). */
const BATCH_BYTES_MAX = 16 * 1024 * 1024;
const MAGIC_BYTES = new TextEncoder().encode(HEADER_MAGIC);
const SNAPSHOT_FILE = /^\/?snapshot-(\d+)\.db$/;
/** The file name the live database is opened under (any other main-database name is refused). */
export const LIVE_FILE = 'live.db';

// SQLite's lock levels.
const LOCK_NONE = 0;
const LOCK_SHARED = 1;
const LOCK_RESERVED = 2;
const LOCK_EXCLUSIVE = 4;

/**
 * Stored blocks a file keeps in memory after reading them (or writing them in a batch), least
 * recently used first out: 1,024 blocks (4 MiB of 4 KiB blocks) per open file. Each costs a
 * round trip to the store's worker otherwise; SQLite's own page cache sits above this one.
 */
const CACHE_BLOCKS_MAX = 1024;
/** The most blocks one read fetches ahead: the window doubles while reads are sequential. */
const READ_AHEAD_MAX = 64;

/** A database file in a Strata volume: the live head, or a snapshot (read-only). */
class VolumeFile {
  constructor(name, volume, blockSize, blockCount, snapshotId, size) {
    this.name = name;
    this.volume = volume;
    this.blockSize = blockSize;
    this.blockCount = blockCount;
    /** `null`: the live head; else the snapshot read. */
    this.snapshotId = snapshotId;
    /** The size the volume's header holds. */
    this.committedSize = size;
    /** The size SQLite sees: the committed size and the pending writes. */
    this.size = size;
    /** File block index -> its pending content (a whole block). */
    this.pending = new Map();
    /** A batch went to the volume without a sync after it. */
    this.unsynced = false;
    /** Lock level per open handle. */
    this.locks = new Map();
    this.handles = 0;
    /**
     * File block index -> its stored content, as the volume holds it (the database is the
     * volume's only writer while it is open, so only this file's own batches change it).
     */
    this.cache = new Map();
    /** Read-ahead: the next window's size, and where a sequential read would start. */
    this.window = 1;
    this.sequentialFrom = -1;
  }

  /** Keeps `block` (its own copy) as the stored content of file block `index`. */
  remember(index, block) {
    this.cache.delete(index);
    this.cache.set(index, block);
    if (this.cache.size > CACHE_BLOCKS_MAX) this.cache.delete(this.cache.keys().next().value);
  }

  /**
   * Makes every block from `first` to `last` that is not pending available in the cache: the
   * missing ones in one round trip, with the blocks after them while reads are sequential.
   */
  async load(first, last) {
    let missFirst = -1;
    let missLast = -1;
    for (let index = first; index <= last; index++) {
      if (this.pending.has(index)) continue;
      const cached = this.cache.get(index);
      if (cached) {
        this.remember(index, cached);
      } else {
        if (missFirst < 0) missFirst = index;
        missLast = index;
      }
    }
    if (missFirst < 0) return;
    this.window = missFirst === this.sequentialFrom ? Math.min(2 * this.window, READ_AHEAD_MAX) : 1;
    // Only blocks the stored file holds: past its committed end a block is pending or zeros.
    const storedBlocks = Math.ceil(this.committedSize / this.blockSize);
    const wanted = missLast - missFirst + 1;
    const count = Math.max(wanted, Math.min(this.window, storedBlocks - missFirst));
    const data = await this.readBlocks(missFirst, count);
    const bs = this.blockSize;
    for (let k = 0; k < count; k++) {
      const index = missFirst + k;
      if (!this.pending.has(index)) this.remember(index, data.slice(k * bs, (k + 1) * bs));
    }
    this.sequentialFrom = missFirst + count;
  }

  get readOnly() {
    return this.snapshotId !== null;
  }

  /** The file's largest size: every block but the header. */
  get capacity() {
    return (this.blockCount - 1) * this.blockSize;
  }

  /** Reads `count` file blocks from `first` as the volume holds them (one round trip). */
  async readBlocks(first, count) {
    if (this.snapshotId === null) return this.volume.read(first + 1, count);
    return this.volume.readAt(this.snapshotId, first + 1, count);
  }

  /** A whole file block as the file holds it now: pending, else stored, else zeros. */
  async block(index) {
    const pending = this.pending.get(index);
    if (pending) return pending;
    // Blocks past the end read as zeros, whatever an earlier, longer file left in the volume.
    if (index * this.blockSize >= this.size) return new Uint8Array(this.blockSize);
    await this.load(index, index);
    return this.cache.get(index) ?? this.readBlocks(index, 1);
  }
}

/** A file in memory: a journal or a temp file. */
class MemoryFile {
  constructor(name) {
    this.name = name;
    this.data = new Uint8Array(0);
    this.size = 0;
    this.handles = 0;
  }
}

/**
 * A wa-sqlite VFS over one Strata volume (a `StrataClient` or a `StrataMirrorClient`): the live
 * database is opened as `live.db`, snapshot `n` (read-only) as `snapshot-n.db`. Create it with
 * `StrataVFS.create` and register it with `sqlite3.vfs_register`; `openDatabase` does both.
 */
export class StrataVFS extends FacadeVFS {
  #volume;
  #blockSize = 0;
  #blockCount = 0;
  /** File name -> VolumeFile or MemoryFile. */
  #files = new Map();
  /** SQLite file id -> the file it opened. */
  #open = new Map();
  #lastError = '';

  /** A VFS named `name` for `volume`, in wa-sqlite module `module`. */
  static async create(name, module, volume) {
    const vfs = new StrataVFS(name, module, volume);
    const info = await volume.info();
    vfs.#blockSize = info.blockSize;
    vfs.#blockCount = info.blockCount;
    if (vfs.#blockCount < 2) throw new Error('a database needs a volume of at least 2 blocks');
    return vfs;
  }

  constructor(name, module, volume) {
    super(name, module);
    this.#volume = volume;
  }

  /** The volume's block size. */
  get blockSize() {
    return this.#blockSize;
  }

  /** The most bytes of the database one transaction may change. */
  transactionBytesMax() {
    return BATCH_BYTES_MAX - this.#blockSize;
  }

  /** Forgets the live file's state, which a rollback of the volume made stale. */
  forgetLive() {
    const file = this.#files.get(LIVE_FILE);
    if (file && file.handles > 0) throw new Error('close the live database before rolling the volume back');
    this.#files.delete(LIVE_FILE);
  }

  #fail(code, message) {
    this.#lastError = message;
    return code;
  }

  /** Runs `body`, turning a Strata failure into `code` (SQLITE_FULL for a full volume). */
  async #guard(code, body) {
    try {
      return await body();
    } catch (error) {
      const full = error?.code === 'QUOTA_EXCEEDED' || error?.code === 'LIMIT_EXCEEDED';
      return this.#fail(full ? VFS.SQLITE_FULL : code, `strata: ${error?.code ?? ''} ${error?.message ?? error}`);
    }
  }

  /** Reads and checks a volume's header: the file size, or 0 for a volume never written. */
  async #readHeader(snapshotId) {
    const block =
      snapshotId === null ? await this.#volume.read(0, 1) : await this.#volume.readAt(snapshotId, 0, 1);
    if (block.every((byte) => byte === 0)) return 0;
    if (!MAGIC_BYTES.every((byte, i) => block[i] === byte)) {
      throw new Error('block 0 of the volume is not a Strata SQLite header: the volume holds something else');
    }
    const size = new DataView(block.buffer, block.byteOffset + 16, 8).getBigUint64(0, true);
    return Number(size);
  }

  #header(size) {
    const block = new Uint8Array(this.#blockSize);
    block.set(MAGIC_BYTES, 0);
    new DataView(block.buffer, 16, 8).setBigUint64(0, BigInt(size), true);
    return block;
  }

  async jOpen(filename, fileId, flags, pOutFlags) {
    const name = (filename ?? `temp-${fileId}`).replace(/^\//, '');
    if (!(flags & VFS.SQLITE_OPEN_MAIN_DB)) {
      // Journals, temp databases and the like: memory only (see the header comment).
      let file = this.#files.get(name);
      if (!file) {
        if (!(flags & VFS.SQLITE_OPEN_CREATE)) return VFS.SQLITE_CANTOPEN;
        file = new MemoryFile(name);
        this.#files.set(name, file);
      }
      file.handles += 1;
      file.deleteOnClose = (flags & VFS.SQLITE_OPEN_DELETEONCLOSE) !== 0;
      this.#open.set(fileId, { file, flags });
      pOutFlags.setInt32(0, flags, true);
      return VFS.SQLITE_OK;
    }
    const match = SNAPSHOT_FILE.exec(name);
    if (!match && name !== LIVE_FILE) {
      return this.#fail(VFS.SQLITE_CANTOPEN, `strata: open "${LIVE_FILE}" or "snapshot-<id>.db", not "${name}"`);
    }
    const snapshotId = match ? Number(match[1]) : null;
    if (snapshotId !== null && !(flags & VFS.SQLITE_OPEN_READONLY)) {
      return this.#fail(VFS.SQLITE_READONLY, 'strata: a snapshot opens read-only (SQLITE_OPEN_READONLY)');
    }
    return this.#guard(VFS.SQLITE_CANTOPEN, async () => {
      let file = this.#files.get(name);
      if (!file) {
        const size = await this.#readHeader(snapshotId);
        file = new VolumeFile(name, this.#volume, this.#blockSize, this.#blockCount, snapshotId, size);
        this.#files.set(name, file);
      }
      file.handles += 1;
      file.locks.set(fileId, LOCK_NONE);
      this.#open.set(fileId, { file, flags });
      pOutFlags.setInt32(0, flags, true);
      return VFS.SQLITE_OK;
    });
  }

  async jClose(fileId) {
    const entry = this.#open.get(fileId);
    if (!entry) return VFS.SQLITE_OK;
    const { file } = entry;
    let result = VFS.SQLITE_OK;
    if (file instanceof VolumeFile) {
      // Whatever SQLite left unsynced (synchronous = OFF) still reaches the volume.
      if (!file.readOnly) result = await this.#guard(VFS.SQLITE_IOERR_CLOSE, () => this.#flush(file, false));
      file.locks.delete(fileId);
    }
    this.#open.delete(fileId);
    file.handles -= 1;
    if (file.handles === 0 && (file instanceof VolumeFile ? file.readOnly : file.deleteOnClose)) {
      this.#files.delete(file.name);
    }
    return result;
  }

  async jRead(fileId, pData, iOffset) {
    const { file } = this.#open.get(fileId);
    if (file instanceof MemoryFile) return readMemory(file, pData, iOffset);
    return this.#guard(VFS.SQLITE_IOERR_READ, async () => {
      const end = Math.min(iOffset + pData.byteLength, file.size);
      if (end <= iOffset) {
        pData.fill(0);
        return VFS.SQLITE_IOERR_SHORT_READ;
      }
      const bs = file.blockSize;
      const first = Math.floor(iOffset / bs);
      const last = Math.floor((end - 1) / bs);
      // At most one round trip for the stored blocks of the range (none if all are at hand).
      await file.load(first, last);
      let done = 0;
      for (let index = first; index <= last; index++) {
        // (A read wider than the cache could push its own first blocks out: read those again.)
        const block = file.pending.get(index) ?? file.cache.get(index) ?? (await file.readBlocks(index, 1));
        const from = Math.max(iOffset, index * bs) - index * bs;
        const to = Math.min(end, (index + 1) * bs) - index * bs;
        pData.set(block.subarray(from, to), done);
        done += to - from;
      }
      if (done < pData.byteLength) {
        pData.fill(0, done);
        return VFS.SQLITE_IOERR_SHORT_READ;
      }
      return VFS.SQLITE_OK;
    });
  }

  async jWrite(fileId, pData, iOffset) {
    const { file } = this.#open.get(fileId);
    if (file instanceof MemoryFile) return writeMemory(file, pData, iOffset);
    if (file.readOnly) return this.#fail(VFS.SQLITE_READONLY, 'strata: a snapshot is read-only');
    const end = iOffset + pData.byteLength;
    if (end > file.capacity) {
      return this.#fail(VFS.SQLITE_FULL, `strata: the volume holds a database of at most ${file.capacity} bytes`);
    }
    return this.#guard(VFS.SQLITE_IOERR_WRITE, async () => {
      const bs = file.blockSize;
      const first = Math.floor(iOffset / bs);
      const last = Math.floor((end - 1) / bs);
      // A write past the end leaves a gap that must read as zeros: the volume may still hold an
      // older, longer file's blocks there, so the gap's blocks are written as zeros too.
      const gapFrom = Math.ceil(file.size / bs);
      const added = [];
      for (let index = Math.min(gapFrom, first); index <= last; index++) {
        if (!file.pending.has(index)) added.push(index);
      }
      if ((file.pending.size + added.length) * bs > this.transactionBytesMax()) {
        return this.#fail(
          VFS.SQLITE_FULL,
          `strata: one transaction may change at most ${this.transactionBytesMax()} bytes (a Strata write batch)`,
        );
      }
      for (let index = gapFrom; index < first; index++) {
        if (!file.pending.has(index)) file.pending.set(index, new Uint8Array(bs));
      }
      let done = 0;
      for (let index = first; index <= last; index++) {
        const from = Math.max(iOffset, index * bs) - index * bs;
        const to = Math.min(end, (index + 1) * bs) - index * bs;
        let block = file.pending.get(index);
        if (!block) {
          // A whole block needs no read; a part of one is merged into what the file holds.
          block = to - from === bs ? new Uint8Array(bs) : new Uint8Array(await file.block(index));
          file.pending.set(index, block);
        }
        block.set(pData.subarray(done, done + to - from), from);
        done += to - from;
      }
      file.size = Math.max(file.size, end);
      return VFS.SQLITE_OK;
    });
  }

  async jTruncate(fileId, iSize) {
    const { file } = this.#open.get(fileId);
    if (file instanceof MemoryFile) {
      file.size = Math.min(file.size, iSize);
      return VFS.SQLITE_OK;
    }
    if (file.readOnly) return this.#fail(VFS.SQLITE_READONLY, 'strata: a snapshot is read-only');
    if (iSize >= file.size) return VFS.SQLITE_OK;
    return this.#guard(VFS.SQLITE_IOERR_TRUNCATE, async () => {
      const bs = file.blockSize;
      const kept = Math.ceil(iSize / bs);
      for (const index of [...file.pending.keys()]) if (index >= kept) file.pending.delete(index);
      for (const index of [...file.cache.keys()]) if (index >= kept) file.cache.delete(index);
      if (iSize % bs !== 0) {
        // The last block's tail must read as zeros if the file grows again.
        const index = kept - 1;
        const block = new Uint8Array(await file.block(index));
        block.fill(0, iSize % bs);
        file.pending.set(index, block);
      }
      file.size = iSize;
      return VFS.SQLITE_OK;
    });
  }

  async jSync(fileId, flags) {
    const { file } = this.#open.get(fileId);
    if (file instanceof MemoryFile || file.readOnly) return VFS.SQLITE_OK;
    return this.#guard(VFS.SQLITE_IOERR_FSYNC, () => this.#flush(file, true));
  }

  jFileSize(fileId, pSize64) {
    const { file } = this.#open.get(fileId);
    pSize64.setBigInt64(0, BigInt(file.size), true);
    return VFS.SQLITE_OK;
  }

  jLock(fileId, lockType) {
    const { file } = this.#open.get(fileId);
    if (file instanceof MemoryFile || file.readOnly) return VFS.SQLITE_OK;
    // Connections of this page share the file: a writer excludes other writers, and takes the
    // exclusive lock only when no other connection reads.
    let others = LOCK_NONE;
    let otherReaders = 0;
    for (const [id, level] of file.locks) {
      if (id === fileId) continue;
      others = Math.max(others, level);
      if (level >= LOCK_SHARED) otherReaders += 1;
    }
    if (lockType === LOCK_SHARED && others > LOCK_RESERVED) return VFS.SQLITE_BUSY;
    if (lockType === LOCK_RESERVED && others >= LOCK_RESERVED) return VFS.SQLITE_BUSY;
    if (lockType >= 3 && (others >= LOCK_RESERVED || (lockType === LOCK_EXCLUSIVE && otherReaders > 0))) {
      return VFS.SQLITE_BUSY;
    }
    file.locks.set(fileId, lockType);
    return VFS.SQLITE_OK;
  }

  async jUnlock(fileId, lockType) {
    const { file } = this.#open.get(fileId);
    if (file instanceof MemoryFile || file.readOnly) return VFS.SQLITE_OK;
    const before = file.locks.get(fileId) ?? LOCK_NONE;
    file.locks.set(fileId, lockType);
    // The end of a write transaction SQLite did not sync (synchronous = OFF): its pages still
    // go to the volume, in one batch, so that reads elsewhere and snapshots see them.
    if (before >= LOCK_RESERVED && lockType <= LOCK_SHARED && file.pending.size > 0) {
      return this.#guard(VFS.SQLITE_IOERR_UNLOCK, () => this.#flush(file, false));
    }
    return VFS.SQLITE_OK;
  }

  jCheckReservedLock(fileId, pResOut) {
    const { file } = this.#open.get(fileId);
    let reserved = 0;
    if (file instanceof VolumeFile) {
      for (const [id, level] of file.locks) if (id !== fileId && level >= LOCK_RESERVED) reserved = 1;
    }
    pResOut.setInt32(0, reserved, true);
    return VFS.SQLITE_OK;
  }

  async jFileControl(fileId, op, pArg) {
    const { file } = this.#open.get(fileId);
    if (file instanceof MemoryFile || file.readOnly) return VFS.SQLITE_NOTFOUND;
    switch (op) {
      case VFS.SQLITE_FCNTL_BEGIN_ATOMIC_WRITE:
        // Pages before this point belong to an earlier transaction: they go first.
        return this.#guard(VFS.SQLITE_IOERR, () => this.#flush(file, false));
      case VFS.SQLITE_FCNTL_COMMIT_ATOMIC_WRITE:
        return this.#guard(VFS.SQLITE_IOERR, () => this.#flush(file, true));
      case VFS.SQLITE_FCNTL_ROLLBACK_ATOMIC_WRITE:
        file.pending.clear();
        file.size = file.committedSize;
        return VFS.SQLITE_OK;
      default:
        return VFS.SQLITE_NOTFOUND;
    }
  }

  jSectorSize(fileId) {
    return Math.max(512, this.#blockSize);
  }

  jDeviceCharacteristics(fileId) {
    const entry = this.#open.get(fileId);
    if (!entry || entry.file instanceof MemoryFile) return VFS.SQLITE_IOCAP_SAFE_APPEND;
    // Every commit is one atomic Strata batch: SQLite needs no rollback journal for it.
    return VFS.SQLITE_IOCAP_BATCH_ATOMIC | VFS.SQLITE_IOCAP_UNDELETABLE_WHEN_OPEN | VFS.SQLITE_IOCAP_SAFE_APPEND;
  }

  jAccess(filename, flags, pResOut) {
    const name = filename.replace(/^\//, '');
    const exists = this.#files.has(name) || name === LIVE_FILE || SNAPSHOT_FILE.test(name);
    pResOut.setInt32(0, exists ? 1 : 0, true);
    return VFS.SQLITE_OK;
  }

  jDelete(filename, syncDir) {
    const name = filename.replace(/^\//, '');
    const file = this.#files.get(name);
    if (file instanceof MemoryFile) this.#files.delete(name);
    return VFS.SQLITE_OK;
  }

  jGetLastError(zBuf) {
    const { written } = new TextEncoder().encodeInto(this.#lastError, zBuf.subarray(0, zBuf.length - 1));
    zBuf[written] = 0;
    return VFS.SQLITE_OK;
  }

  /**
   * Sends the pending blocks (and the header, if the size changed) as one batch, trims blocks
   * a shrunk file no longer holds, and with `durable` syncs: one Strata durability point.
   */
  async #flush(file, durable) {
    if (file.pending.size > 0 || file.size !== file.committedSize) {
      const bs = file.blockSize;
      const indices = [...file.pending.keys()].sort((a, b) => a - b);
      const writes = [];
      // Neighbouring blocks travel as one write; the buffers are copies, so a failed batch
      // leaves the pending blocks as they were.
      for (let i = 0; i < indices.length; ) {
        let j = i + 1;
        while (j < indices.length && indices[j] === indices[j - 1] + 1) j++;
        const run = new Uint8Array((j - i) * bs);
        for (let k = i; k < j; k++) run.set(file.pending.get(indices[k]), (k - i) * bs);
        writes.push([indices[i] + 1, run]);
        i = j;
      }
      if (file.size !== file.committedSize) writes.push([0, this.#header(file.size)]);
      const keptBlocks = Math.ceil(file.size / bs);
      const storedBlocks = Math.ceil(file.committedSize / bs);
      const trim = storedBlocks > keptBlocks;
      // The worker runs requests in order: the sync can follow the batch without waiting for
      // its reply (one round trip per commit, not two). Not with a trim, which must not run
      // unless the batch (the header with the smaller size) is in.
      const batch = file.volume.writeBatch(writes);
      const sync = durable && !trim ? file.volume.sync() : null;
      const [batched, synced] = await Promise.allSettled([batch, sync]);
      if (batched.status === 'rejected') throw batched.reason;
      for (const [index, block] of file.pending) file.remember(index, block);
      file.committedSize = file.size;
      file.pending.clear();
      file.unsynced = sync === null || synced.status === 'rejected';
      if (synced.status === 'rejected') throw synced.reason;
      // After the batch: the header now holds the smaller size, so blocks past it are dead
      // whether or not this trim reaches the volume.
      if (trim) await file.volume.writeZeroes(keptBlocks + 1, storedBlocks - keptBlocks);
    }
    if (durable && file.unsynced) {
      await file.volume.sync();
      file.unsynced = false;
    }
    return VFS.SQLITE_OK;
  }
}

function readMemory(file, pData, iOffset) {
  const end = Math.min(iOffset + pData.byteLength, file.size);
  const count = Math.max(0, end - iOffset);
  if (count > 0) pData.set(file.data.subarray(iOffset, end));
  if (count < pData.byteLength) {
    pData.fill(0, count);
    return VFS.SQLITE_IOERR_SHORT_READ;
  }
  return VFS.SQLITE_OK;
}

function writeMemory(file, pData, iOffset) {
  const end = iOffset + pData.byteLength;
  if (end > file.data.byteLength) {
    const grown = new Uint8Array(Math.max(end, 2 * file.data.byteLength));
    grown.set(file.data.subarray(0, file.size));
    file.data = grown;
  }
  if (iOffset > file.size) file.data.fill(0, file.size, iOffset);
  file.data.set(pData.subarray(0, pData.byteLength), iOffset);
  file.size = Math.max(file.size, end);
  return VFS.SQLITE_OK;
}

let loaded;

/**
 * wa-sqlite's Asyncify build, loaded once per page: `{ sqlite3, module }`. Pass your own
 * (`openDatabase(volume, { sqlite })`) to load it another way.
 */
export function loadSQLite() {
  loaded ??= (async () => {
    const { default: factory } = await import('@journeyapps/wa-sqlite/dist/wa-sqlite-async.mjs');
    const module = await factory();
    return { sqlite3: SQLite.Factory(module), module };
  })();
  return loaded;
}

let vfsCount = 0;
/** The volumes a `StrataDatabase` is open on. */
const openVolumes = new WeakSet();

/**
 * Calls of one SQLite module, one at a time: an Asyncify build cannot enter SQLite while
 * another call waits in the VFS.
 */
const queues = new WeakMap();
function enqueue(module, body) {
  const previous = queues.get(module) ?? Promise.resolve();
  const next = previous.then(body, body);
  queues.set(
    module,
    next.catch(() => {}),
  );
  return next;
}

/** Runs `sql` with `params` (an array or an object of named parameters): the rows, as objects. */
async function query(sqlite3, db, sql, params) {
  const rows = [];
  for await (const stmt of sqlite3.statements(db, sql)) {
    if (params !== undefined && sqlite3.bind_parameter_count(stmt) > 0) sqlite3.bind_collection(stmt, params);
    const columns = sqlite3.column_names(stmt);
    while ((await sqlite3.step(stmt)) === SQLite.SQLITE_ROW) {
      const values = sqlite3.row(stmt);
      rows.push(Object.fromEntries(columns.map((column, i) => [column, values[i]])));
    }
  }
  return rows;
}

/** A database open on a snapshot of the volume: reads only. */
export class StrataSnapshotDatabase {
  #owner;
  #db;
  constructor(owner, db, volumeId) {
    this.#owner = owner;
    this.#db = db;
    /** The snapshot's volume id. */
    this.volume = volumeId;
  }

  /** The sqlite3 handle, for wa-sqlite's own API (inside `withSQLite`). */
  get handle() {
    return this.#db;
  }

  /** Runs `sql` (reads only: SQLITE_READONLY otherwise); the rows as objects. */
  query(sql, params) {
    return this.#owner.withSQLite((sqlite3) => query(sqlite3, this.#db, sql, params));
  }

  close() {
    return this.#owner.withSQLite((sqlite3) => sqlite3.close(this.#db));
  }
}

/**
 * A SQLite database in a Strata volume: the live database, its snapshots (each a read-only
 * database), rollback to a snapshot and a page-level diff of two snapshots.
 */
export class StrataDatabase {
  #sqlite;
  #vfs;
  #db = 0;
  #volume;

  constructor(sqlite, vfs, volume) {
    this.#sqlite = sqlite;
    this.#vfs = vfs;
    this.#volume = volume;
  }

  /** The Strata volume (store or mirror client) the database lives in. */
  get volume() {
    return this.#volume;
  }

  /** The live database's sqlite3 handle, for wa-sqlite's own API (inside `withSQLite`). */
  get handle() {
    return this.#db;
  }

  /** The most bytes of the database one transaction may change (SQLITE_FULL beyond). */
  get transactionBytesMax() {
    return this.#vfs.transactionBytesMax();
  }

  /** Runs `body(sqlite3)` when no other call of this SQLite module is running. */
  withSQLite(body) {
    return enqueue(this.#sqlite.module, () => body(this.#sqlite.sqlite3));
  }

  async _open() {
    await this.withSQLite(async (sqlite3) => {
      this.#db = await sqlite3.open_v2(
        LIVE_FILE,
        SQLite.SQLITE_OPEN_CREATE | SQLite.SQLITE_OPEN_READWRITE,
        this.#vfs.name,
      );
    });
  }

  /** Runs `sql` (one or more statements) with `params`; the rows of every statement, as objects. */
  query(sql, params) {
    return this.withSQLite((sqlite3) => query(sqlite3, this.#db, sql, params));
  }

  /** Runs `sql`; resolves to the rows changed by its last statement. */
  run(sql, params) {
    return this.withSQLite(async (sqlite3) => {
      await query(sqlite3, this.#db, sql, params);
      return sqlite3.changes(this.#db);
    });
  }

  /**
   * Seals the volume's head as a snapshot (after the last committed transaction; SQLite's
   * pending work is flushed by its commit) and resolves to its id. Refused inside a transaction.
   */
  snapshot(label) {
    return this.withSQLite(async (sqlite3) => {
      if (!sqlite3.get_autocommit(this.#db)) throw new Error('a transaction is open: commit it first');
      // A mirror resolves to a MirrorSnapshot: its volume id is what a database is opened by.
      const sealed = await this.#volume.snapshot(label);
      return typeof sealed === 'number' ? sealed : sealed.volume;
    });
  }

  /** Opens snapshot `volumeId` as a read-only database beside the live one. */
  async openSnapshot(volumeId) {
    const id = Number(volumeId);
    if (!Number.isSafeInteger(id) || id < 0) throw new TypeError(`volumeId: not a volume id: ${volumeId}`);
    const db = await this.withSQLite((sqlite3) =>
      sqlite3.open_v2(`snapshot-${id}.db`, SQLite.SQLITE_OPEN_READONLY, this.#vfs.name),
    );
    return new StrataSnapshotDatabase(this, db, id);
  }

  /**
   * Rolls the database back to snapshot `volumeId`: the live database is closed, the volume
   * rolled back (the head before it is kept as a snapshot labelled `label`) and the database
   * opened again. Resolves to the new head's id.
   */
  async rollback(volumeId, label) {
    return this.withSQLite(async (sqlite3) => {
      await sqlite3.close(this.#db);
      this.#db = 0;
      try {
        this.#vfs.forgetLive();
        return await this.#volume.rollback(volumeId, label);
      } finally {
        this.#db = await sqlite3.open_v2(
          LIVE_FILE,
          SQLite.SQLITE_OPEN_CREATE | SQLite.SQLITE_OPEN_READWRITE,
          this.#vfs.name,
        );
      }
    });
  }

  /**
   * The database pages that differ between volumes `a` and `b` (snapshots, or the head):
   * `{ pageSize, pages, headerChanged }`, pages numbered from 1 as SQLite numbers them.
   */
  async diff(a, b) {
    const extents = await this.#volume.diff(a, b);
    const pageSize = await this.pageSize();
    const blockSize = this.#vfs.blockSize;
    const pages = new Set();
    let headerChanged = false;
    for (const { addr, blocks } of extents) {
      let from = addr;
      if (from === 0) {
        headerChanged = true;
        from = 1;
      }
      const end = addr + blocks;
      if (from >= end) continue;
      const firstByte = (from - 1) * blockSize;
      const endByte = (end - 1) * blockSize;
      for (let page = Math.floor(firstByte / pageSize); page * pageSize < endByte; page++) pages.add(page + 1);
    }
    return { pageSize, pages: [...pages].sort((x, y) => x - y), headerChanged };
  }

  /** The live database's page size. */
  async pageSize() {
    const [{ page_size: size }] = await this.query('PRAGMA page_size');
    return size;
  }

  /** Closes the database (its pending writes reach the volume), not the volume. */
  close() {
    return this.withSQLite(async (sqlite3) => {
      if (this.#db) await sqlite3.close(this.#db);
      this.#db = 0;
      openVolumes.delete(this.#volume);
    });
  }
}

/**
 * Opens (or creates) the SQLite database kept in `volume` (a `StrataClient` or
 * `StrataMirrorClient` from `strata-engine`). Options: `sqlite`, a `{ sqlite3, module }` of
 * wa-sqlite's Asyncify build (default: `loadSQLite()`).
 */
export async function openDatabase(volume, options = {}) {
  // Two databases on one volume would each hold their own pending pages and header: refused.
  if (openVolumes.has(volume)) throw new Error('a database is already open on this volume: close it first');
  openVolumes.add(volume);
  try {
    const sqlite = options.sqlite ?? (await loadSQLite());
    vfsCount += 1;
    const vfs = await StrataVFS.create(`strata-${vfsCount}`, sqlite.module, volume);
    sqlite.sqlite3.vfs_register(vfs, false);
    const database = new StrataDatabase(sqlite, vfs, volume);
    await database._open();
    return database;
  } catch (error) {
    openVolumes.delete(volume);
    throw error;
  }
}
