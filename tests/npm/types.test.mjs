// The package's TypeScript declarations as a TypeScript app sees them: tests/npm/types/app.ts
// (the page API: a store, a mirror, errors) compiled by `tsc --noEmit` in strict mode, without
// skipLibCheck, against the built package (wasm/pkg, from scripts/build-npm.sh) installed as
// `strata-engine`. Catches declarations that import what a module does not export, types that
// drifted from the API, and the like.
//
// Run: scripts/build-npm.sh && node --test tests/npm/types.test.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');
const packageDir = path.join(repoRoot, 'wasm/pkg');
const tsc = path.join(repoRoot, 'tests/node_modules/typescript/bin/tsc');

test('the package type-checks in a strict TypeScript app (no skipLibCheck)', async () => {
  assert.ok(existsSync(path.join(packageDir, 'package.json')), 'wasm/pkg is missing: run scripts/build-npm.sh first');
  assert.ok(existsSync(tsc), 'typescript is missing from tests/node_modules: run scripts/setup.sh');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'strata-types-'));
  try {
    await mkdir(path.join(dir, 'node_modules'));
    await symlink(packageDir, path.join(dir, 'node_modules/strata-engine'), 'dir');
    await cp(path.join(here, 'types/app.ts'), path.join(dir, 'app.ts'));
    await writeFile(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          target: 'es2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          // wasm-bindgen's declarations give classes a `[Symbol.dispose]()`: esnext.disposable.
          lib: ['es2022', 'esnext.disposable', 'dom', 'dom.iterable', 'dom.asynciterable'],
          types: [],
        },
        files: ['app.ts'],
      }),
    );
    await writeFile(path.join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    try {
      await run(process.execPath, [tsc, '-p', dir], { cwd: dir });
    } catch (error) {
      assert.fail(`tsc found errors:\n${error.stdout}${error.stderr}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
