// Mirror scenarios of the scratch app (mirror.html), called by tests/npm/mirror.test.mjs through
// `window.mirrorScenarios`: a mirror whose secondary is on OPFS and whose two legs are on OPFS
// and IndexedDB, used through the installed package's Promise client.
import { StrataError, StrataMirrorClient, destroyMirror, openMirror } from 'strata-engine';

const BLOCK_BYTES = 4096;
const BLOCKS = 128;
const LEGS = ['opfs', 'indexeddb'];

/** A block whose bytes depend on `seed` and their position. */
function block(seed) {
  const out = new Uint8Array(BLOCK_BYTES);
  for (let i = 0; i < BLOCK_BYTES; i++) out[i] = (i * 31 + seed * 7) % 251;
  return out;
}

function same(a, b) {
  return a instanceof Uint8Array && a.length === b.length && a.every((x, i) => x === b[i]);
}

function describeError(error) {
  return { isStrataError: error instanceof StrataError, code: error.code ?? null, message: String(error.message) };
}

/** The head the scenarios leave: block i holds block(i) for i < 16, block 3 was overwritten. */
function expectedBlock(addr) {
  return addr === 3 ? block(100) : block(addr);
}

/** Opens the mirror; retries LOCKED for a moment (the previous page's worker may be going away). */
async function openRetrying(options) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await openMirror(options);
    } catch (error) {
      if (error.code !== 'LOCKED' || attempt >= 20) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

function legSummary(status) {
  return status.legs.map((l) => ({ leg: l.leg, backend: l.backend, state: l.state, store: l.store }));
}

window.mirrorScenarios = {
  /** Creates the mirror, writes, snapshots, overwrites and syncs; leaves it closed. */
  async create(name) {
    await destroyMirror({ name, backend: 'opfs', legs: LEGS });
    const mirror = await openMirror({ name, backend: 'opfs', legs: LEGS, blocks: BLOCKS });
    try {
      for (let addr = 0; addr < 8; addr++) await mirror.write(addr, block(addr));
      const batch = [];
      for (let addr = 8; addr < 16; addr++) batch.push([addr, block(addr)]);
      await mirror.writeBatch(batch);
      const snapshot = await mirror.snapshot('first');
      await mirror.write(3, block(100));
      await mirror.sync();
      let outOfRange = null;
      await mirror.read(BLOCKS, 1).catch((e) => (outOfRange = describeError(e)));
      const status = await mirror.status();
      return {
        isClient: mirror instanceof StrataMirrorClient,
        backend: mirror.backend,
        legs: mirror.legs,
        snapshot,
        headOk: same(await mirror.read(3, 1), block(100)),
        snapshotOk: same(await mirror.readAt(snapshot.volume, 3, 1), block(3)),
        degraded: status.degraded,
        healthyLegs: status.healthyLegs,
        legStatus: legSummary(status),
        outOfRange,
      };
    } finally {
      await mirror.close();
    }
  },

  /** Opens the mirror again (after a reload), checks the data, its status and a scrub. */
  async reopen(name, snapshotVolume) {
    const mirror = await openRetrying({ name, backend: 'opfs', legs: LEGS });
    try {
      const head = await mirror.read(0, 16);
      let headOk = true;
      for (let addr = 0; addr < 16; addr++) {
        headOk &&= same(head.subarray(addr * BLOCK_BYTES, (addr + 1) * BLOCK_BYTES), expectedBlock(addr));
      }
      const status = await mirror.status();
      const scrub = await mirror.scrub();
      const info = await mirror.info();
      return {
        headOk,
        snapshotOk: same(await mirror.readAt(snapshotVolume, 3, 1), block(3)),
        volumes: (await mirror.volumes()).map((v) => v.kind),
        info: { name: info.name, backend: info.backend, legs: info.legs, blockCount: info.blockCount },
        degraded: status.degraded,
        healthyLegs: status.healthyLegs,
        legStatus: legSummary(status),
        opened: status.legs.map((l) => l.open),
        scrub: {
          blocksChecked: scrub.blocksChecked,
          copiesChecked: scrub.copiesChecked,
          detected: scrub.detected,
          repaired: scrub.repaired,
          unrecoverable: scrub.unrecoverable,
          legs: scrub.legs.map((l) => [l.checked, l.detected, l.repaired]),
        },
        events: await mirror.events(),
      };
    } finally {
      await mirror.close();
    }
  },

  /**
   * The history through the client: snapshots, diff, the log, a compaction cancelled and then
   * done, a merge into the baseline, a rollback and a deletion; after each, the head read from
   * the primary is compared with the secondary's (`readAt(head)`). Then a scrub, the status,
   * and the mirror destroyed.
   */
  async history(name) {
    await destroyMirror({ name, backend: 'opfs', legs: LEGS });
    const mirror = await openMirror({ name, backend: 'opfs', legs: LEGS, blocks: BLOCKS });
    const inStep = [];
    const check = async (step) => {
      const { head } = await mirror.info();
      inStep.push([step, same(await mirror.read(0, 8), await mirror.readAt(head, 0, 8))]);
    };
    try {
      for (let addr = 0; addr < 4; addr++) await mirror.write(addr, block(addr));
      const { volume: first } = await mirror.snapshot('first');
      // Block 1 twice: compaction drops the first copy.
      await mirror.write(1, block(50));
      await mirror.write(1, block(51));
      await mirror.write(2, block(52));
      const { volume: second } = await mirror.snapshot('second');
      await mirror.write(3, block(53));
      const diff = await mirror.diff(first, second);
      const log = [];
      for await (const entry of mirror.log({ withData: true, batch: 2 })) {
        log.push([entry.volume, entry.addr, entry.data.length]);
      }
      const aborted = new AbortController();
      aborted.abort();
      let cancelled = null;
      await mirror.compact(second, { signal: aborted.signal }).catch((e) => (cancelled = describeError(e)));
      await check('cancelled compact');
      const progress = [];
      const compacted = await mirror.compact(second, { onProgress: (done, total) => progress.push([done, total]) });
      await check('compact');
      const merged = await mirror.merge(first);
      await check('merge');
      const volumesAfterMerge = (await mirror.volumes()).map((v) => v.kind);
      const newHead = await mirror.rollback(second, 'undo');
      await check('rollback');
      const rolledBack = same(await mirror.read(3, 1), block(3));
      const undo = (await mirror.volumes()).find((v) => v.label === 'undo');
      const undoOk = same(await mirror.readAt(undo.id, 3, 1), block(53));
      const deleted = await mirror.delete(undo.id);
      await check('delete');
      const space = await mirror.space();
      const stats = await mirror.stats();
      const scrub = await mirror.scrub();
      const status = await mirror.status();
      return {
        first,
        second,
        diff,
        log,
        cancelled,
        compacted: { blocksKept: compacted.blocksKept, blocksDropped: compacted.blocksDropped },
        progressed: progress.length > 0 && progress.every(([done, total]) => done <= total),
        merged,
        volumesAfterMerge,
        newHead,
        rolledBack,
        undoOk,
        deletedIsReport: typeof deleted.bytesBefore === 'number',
        volumesAtEnd: (await mirror.volumes()).map((v) => v.kind),
        spaceVolumes: space.filter((s) => s.visible).map((s) => s.volume),
        statsInfoLegs: stats.info.legs,
        inStep,
        scrub: { detected: scrub.detected, repaired: scrub.repaired, unrecoverable: scrub.unrecoverable },
        degraded: status.degraded,
        events: await mirror.events(),
      };
    } finally {
      await mirror.close();
      await destroyMirror({ name, backend: 'opfs', legs: LEGS });
    }
  },

  /** Resilvers leg `leg` in place and reads the head again; then destroys the mirror. */
  async replaceAndDestroy(name, leg) {
    const mirror = await openRetrying({ name, backend: 'opfs', legs: LEGS });
    let report;
    let headOk;
    let healthy;
    try {
      report = await mirror.replace(leg);
      headOk = same(await mirror.read(3, 1), block(100));
      healthy = !(await mirror.status()).degraded;
    } finally {
      await mirror.close();
    }
    let closed = null;
    await mirror.status().catch((e) => (closed = describeError(e)));
    await destroyMirror({ name, backend: 'opfs', legs: LEGS });
    let gone = null;
    await openMirror({ name, backend: 'opfs', legs: LEGS }).catch((e) => (gone = describeError(e)));
    await destroyMirror({ name, backend: 'opfs', legs: LEGS });
    return { report, headOk, healthy, closed, gone };
  },

  /**
   * Storage management on a mirror: a threshold rule snapshots every third write by itself, the
   * policy and the audit trail survive a reopen, and the legs stay in step.
   */
  async policies(name) {
    await destroyMirror({ name, backend: 'opfs', legs: LEGS });
    let mirror = await openMirror({ name, backend: 'opfs', legs: LEGS, blocks: BLOCKS });
    const policy = {
      rules: [
        {
          name: 'every-three',
          kind: 'threshold',
          status: 'writes_since_snapshot',
          above: 2,
          action: 'snapshot',
          label: 'auto-{n}',
        },
      ],
    };
    let labels;
    let audit;
    let dryRun;
    let scrub;
    let inStep;
    let manual;
    try {
      await mirror.setPolicy(policy);
      for (let addr = 0; addr < 7; addr++) await mirror.write(addr, block(addr));
      labels = (await mirror.volumes()).filter((v) => v.kind === 'snapshot').map((v) => v.label);
      audit = (await mirror.audit()).map((e) => [e.decision.decision, e.outcome.outcome, e.trigger, e.after]);
      dryRun = await mirror.dryRun();
      await mirror.sync();
      scrub = await mirror.scrub();
      const { head } = await mirror.info();
      inStep = same(await mirror.read(0, 7), await mirror.readAt(head, 0, 7));
    } finally {
      await mirror.close();
    }
    // Reopened with automatic policies off: the policy is kept, writes take no snapshot.
    mirror = await openRetrying({ name, backend: 'opfs', legs: LEGS, automaticPolicies: false });
    try {
      for (let addr = 7; addr < 11; addr++) await mirror.write(addr, block(addr));
      manual = {
        policy: await mirror.policy(),
        audit: (await mirror.audit()).length,
        snapshots: (await mirror.volumes()).filter((v) => v.kind === 'snapshot').length,
        ran: (await mirror.runPolicies()).map((e) => e.decision.decision),
      };
    } finally {
      await mirror.close();
    }
    await destroyMirror({ name, backend: 'opfs', legs: LEGS });
    return { labels, audit, dryRun, scrubbed: scrub.detected, inStep, manual };
  },
};

document.getElementById('status').textContent = 'ready';
