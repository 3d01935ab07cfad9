// One shape per boundary type: the JSON the CLI prints (`--json`), the objects the npm package
// returns in the browser, and the package's TypeScript declarations must name the same fields.
// All three come from the engine's serde types (engine/src/store/types.rs and
// engine/src/mirror/types.rs, camelCase); this test
// is what keeps a field added, renamed or dropped in one place from leaving the others behind.
//
// For each type it runs the CLI on a scratch store, calls the packed package in headless
// Chromium (harness.mjs) on a memory store put through the same steps, and reads the
// declarations with the TypeScript compiler's checker (so `extends` and `Omit` count). A surface
// may add fields of its own, listed below with the reason; every other field must be in all
// three.
//
// Run: scripts/build-npm.sh && node --test tests/npm/shapes.test.mjs

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot, startApp } from './harness.mjs';

const run = promisify(execFile);
const require = createRequire(import.meta.url);
const ts = require(path.join(repoRoot, 'tests/node_modules/typescript'));

/**
 * The types compared, and the fields a surface adds to the engine's type: `cli` fields that only
 * the CLI prints (where the store is, times for a person, what a command did beside the report),
 * `js` fields the bindings add (the session's name and mode). `cli: null`: the CLI prints no such
 * object.
 */
const TYPES = {
  VolumeInfo: { cli: ['created'], js: [] },
  StoreInfo: { cli: ['path'], js: ['name', 'readOnly'] },
  RecoveryReport: { cli: [], js: [] },
  LogEntry: { cli: ['time', 'dataPreview'], js: [] },
  CompactReport: { cli: ['volume', 'freedBytes'], js: [] },
  Extent: { cli: [], js: [] },
  CopyReport: { cli: ['created', 'landed', 'head', 'headParent'], js: [] },
  SpaceInfo: { cli: null, js: [] },
  // The mirror's: the CLI says where the system and each leg live, the bindings which backend
  // and store name each leg has.
  MirrorStatus: { cli: ['dir'], js: [] },
  MirrorLegStatus: { cli: ['path'], js: ['backend', 'store'] },
  MirrorScrubReport: { cli: [], js: [] },
  MirrorLegScrub: { cli: ['path'], js: ['backend'] },
  ResilverReport: { cli: ['path'], js: ['backend'] },
  MirrorSnapshot: { cli: null, js: [] },
};

let app;
let cli;
let browser;
let declared;

const sorted = (keys) => [...keys].sort();
const without = (keys, extra) => sorted(keys.filter((k) => !extra.includes(k)));

/** Runs the CLI; parses its output as JSON when `json`. */
async function strata(args, { json = true } = {}) {
  const { stdout } = await run(path.join(repoRoot, 'target/debug/strata'), ['--quiet', ...args], {
    maxBuffer: 64 << 20,
  });
  return json ? JSON.parse(stdout) : stdout;
}

/** The objects of each type as the CLI prints them, from one scratch store put through its steps. */
async function cliObjects() {
  const work = await mkdtemp(path.join(os.tmpdir(), 'strata-shapes-'));
  try {
    const dir = path.join(work, 'store');
    await strata(['create', '--blocks', '64', dir], { json: false });
    await strata(['write', '--addr', '3', '--pattern', '7', '--blocks', '2', dir], { json: false });
    await strata(['snapshot', dir], { json: false });
    await strata(['write', '--addr', '3', '--pattern', '9', '--blocks', '1', dir], { json: false });
    await strata(['snapshot', dir], { json: false });
    const stream = path.join(work, 'stream');
    await strata(['send', '--output', stream, dir], { json: false });
    const stat = await strata(['stat', '--json', dir]);
    const volumes = await strata(['volumes', '--json', dir]);
    const log = await strata(['log', '--data', '--json', dir]);
    const compact = await strata(['compact', '--volume', '1', '--json', dir]);
    const diff = await strata(['diff', '--json', dir, '0', '2']);
    const received = await strata(['receive', '--input', stream, '--json', path.join(work, 'copy')]);
    const legs = ['--leg', path.join(work, 'leg-a'), '--leg', path.join(work, 'leg-b')];
    const created = await strata(['mirror', 'create', ...legs, '--json', dir]);
    const status = await strata(['mirror', 'status', '--json', dir]);
    const scrub = await strata(['mirror', 'scrub', '--json', dir]);
    return {
      MirrorStatus: [status],
      MirrorLegStatus: status.legs,
      MirrorScrubReport: [scrub],
      MirrorLegScrub: scrub.legs,
      ResilverReport: created.legs,
      VolumeInfo: volumes,
      StoreInfo: [stat],
      RecoveryReport: [stat.recovery],
      LogEntry: log,
      CompactReport: [compact],
      Extent: diff.extents,
      CopyReport: [received],
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The same objects as the npm package returns them in the browser. */
async function jsObjects(page) {
  return page.evaluate(async () => {
    const { open, destroy, importStream, openMirror } = await import('strata-engine');
    const block = (seed, blocks = 1) => new Uint8Array(4096 * blocks).fill(seed);
    await destroy({ name: 'shapes', backend: 'memory' });
    await destroy({ name: 'shapes-copy', backend: 'memory' });
    const store = await open({ name: 'shapes', backend: 'memory', blockSize: 4096, blocks: 64 });
    let copy;
    try {
      await store.write(3, block(7, 2));
      await store.snapshot();
      await store.write(3, block(9));
      await store.snapshot();
      const full = await store.send();
      copy = await importStream({ name: 'shapes-copy', backend: 'memory' }, full.chunks);
      await store.write(5, block(11));
      await store.snapshot();
      const sent = await store.send({ base: 2 });
      const { chunks, ...sendReport } = sent;
      const received = await copy.receive(chunks);
      const info = await store.info();
      const log = [];
      for await (const entry of store.log({ withData: true })) log.push(entry);
      const plain = (value) => {
        // Uint8Array fields stay fields: only their presence is compared.
        if (value instanceof Uint8Array) return 'Uint8Array';
        if (Array.isArray(value)) return value.map(plain);
        if (value && typeof value === 'object') {
          return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
        }
        return value;
      };
      const mirror = await openMirror({ name: 'shapes-mirror', backend: 'memory', legs: ['memory', 'memory'], blocks: 64 });
      let mirrored;
      try {
        await mirror.write(1, block(5));
        const snapshot = await mirror.snapshot();
        const status = await mirror.status();
        const scrub = await mirror.scrub();
        mirrored = {
          MirrorStatus: [status],
          MirrorLegStatus: status.legs,
          MirrorScrubReport: [scrub],
          MirrorLegScrub: scrub.legs,
          ResilverReport: [await mirror.replace(1)],
          MirrorSnapshot: [snapshot],
        };
      } finally {
        await mirror.close();
      }
      return plain({
        ...mirrored,
        VolumeInfo: await store.volumes(),
        StoreInfo: [info],
        RecoveryReport: [info.recovery],
        LogEntry: log,
        CompactReport: [await store.compact(1)],
        Extent: await store.diff(0, 2),
        CopyReport: [sendReport, received],
        SpaceInfo: await store.space(),
        sendKeys: Object.keys(sent),
      });
    } finally {
      await store.close();
      await copy?.close();
    }
  });
}

/** The fields each type declares in the package's TypeScript declarations (as exported). */
function declaredFields() {
  const entry = path.join(repoRoot, 'wasm/pkg/index.d.ts');
  const program = ts.createProgram([entry], { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022 });
  const checker = program.getTypeChecker();
  const module = checker.getSymbolAtLocation(program.getSourceFile(entry));
  assert.ok(module, `${entry} is not a module`);
  const fields = {};
  for (let symbol of checker.getExportsOfModule(module)) {
    if (symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
    if (!(symbol.name in TYPES) && symbol.name !== 'SendResult') continue;
    if (symbol.name in fields) continue;
    const type = checker.getDeclaredTypeOfSymbol(symbol);
    fields[symbol.name] = sorted(checker.getPropertiesOfType(type).map((p) => p.name));
  }
  return fields;
}

before(async () => {
  await run('cargo', ['build', '--quiet', '-p', 'strata-cli', '--bin', 'strata'], { cwd: repoRoot });
  app = await startApp();
  const context = await app.newContext();
  const page = await app.appPage(context);
  [cli, browser] = await Promise.all([cliObjects(), jsObjects(page)]);
  declared = declaredFields();
});

after(async () => {
  await app?.stop();
});

for (const [type, extra] of Object.entries(TYPES)) {
  test(`${type}: the CLI's JSON, the package's objects and the declarations name the same fields`, () => {
    const objects = browser[type];
    assert.ok(objects?.length > 0, `the browser produced no ${type}`);
    assert.ok(declared[type], `the package declares no ${type}`);
    const engine = without(declared[type], extra.js);
    for (const object of objects) {
      assert.deepEqual(sorted(Object.keys(object)), declared[type], `a ${type} from the package`);
    }
    if (extra.cli === null) return;
    assert.ok(cli[type]?.length > 0, `the CLI printed no ${type}`);
    for (const object of cli[type]) {
      assert.deepEqual(without(Object.keys(object), extra.cli), engine, `a ${type} from the CLI`);
    }
  });
}

test('a send result is a CopyReport and its chunks', () => {
  assert.deepEqual(declared.SendResult, sorted([...declared.CopyReport, 'chunks']));
  assert.deepEqual(sorted(browser.sendKeys), declared.SendResult);
});

test('the values agree in kind: numbers, strings, null where the CLI and the package meet', () => {
  // The first volume (the baseline) and the store's facts, field by field: same JSON type.
  const kind = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  for (const [type, cliObject, jsObject] of [
    ['VolumeInfo', cli.VolumeInfo[0], browser.VolumeInfo[0]],
    ['StoreInfo', cli.StoreInfo[0], browser.StoreInfo[0]],
    ['LogEntry', cli.LogEntry[0], browser.LogEntry[0]],
  ]) {
    for (const key of Object.keys(cliObject).filter((k) => k in jsObject && k !== 'data')) {
      assert.equal(kind(cliObject[key]), kind(jsObject[key]), `${type}.${key}`);
    }
  }
  assert.match(cli.StoreInfo[0].storeId, /^[0-9a-f]{16}$/);
  assert.match(browser.StoreInfo[0].storeId, /^[0-9a-f]{16}$/);
  assert.equal(browser.LogEntry[0].data, 'Uint8Array');
  assert.equal(cli.LogEntry[0].data, null);
});
