// The npm package as apps that use a bundler consume it. For each bundler the tests pin (Vite and
// esbuild, by tests/package-lock.json), the packed package is installed into a scratch app made
// from tests/npm/bundler-app/ (harness.mjs), with the SQLite sub-entry's peer dependency
// @journeyapps/wa-sqlite (the version the lock file pins) installed beside it as a user would,
// the app is built for production with that bundler as wasm/README.md says to, and only the
// build's output folder is served (not node_modules) and driven in the system's headless
// Chromium. The pages open a store on each backend, give stores a policy, and open a mirror and
// a SQLite database (strata-engine/sqlite) in an OPFS store, so the worker, the package's three
// .wasm modules and wa-sqlite's must load from the bundle; the network log then shows that they
// did, each with status 200, and that nothing was fetched from outside the output.
//
// Run: scripts/build-npm.sh && node --test tests/npm/bundlers.test.mjs

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { chromiumArgs, chromiumPath, startServer } from '../browser.mjs';
import { installPackedApp, repoRoot } from './harness.mjs';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const testModules = path.join(repoRoot, 'tests/node_modules');

/** The version of a package in tests/node_modules (what the lock file installed). */
async function installedVersion(name) {
  return JSON.parse(await readFile(path.join(testModules, name, 'package.json'), 'utf8')).version;
}

/**
 * Installs `name`, the version tests/node_modules holds (the lock file's), into the app in
 * `appDir`, offline: packed from tests/node_modules, then `npm install <tarball>` as a user
 * would install a package. (`npm install name@version --offline` needs the registry's metadata
 * for `name` in npm's cache, which `npm ci` of a lock file never fetches: it fails on a new
 * machine.)
 */
async function installPeer(appDir, name) {
  const version = await installedVersion(name);
  let tarball;
  try {
    const { stdout } = await run(
      'npm',
      ['pack', path.join(testModules, name), '--pack-destination', appDir, '--ignore-scripts', '--silent'],
      { cwd: appDir },
    );
    tarball = path.join(appDir, stdout.trim().split('\n').pop());
    await run('npm', ['install', tarball, '--offline', '--no-audit', '--no-fund'], { cwd: appDir });
  } catch (error) {
    throw new Error(`installing ${name}@${version} (${tarball ?? 'not packed'}) offline failed in ${appDir}:\n${error.stderr}`, {
      cause: error,
    });
  }
  const installed = JSON.parse(await readFile(path.join(appDir, 'node_modules', name, 'package.json'), 'utf8'));
  assert.equal(installed.version, version, `${name} installed at the lock file's version`);
}

/** Runs a bundler's command line in `cwd`; a failure reports the command and its output. */
async function runBundler(command, args, cwd) {
  try {
    await run(command, args, { cwd });
  } catch (error) {
    const shown = [path.basename(command), ...args].join(' ');
    throw new Error(`${shown} failed in ${cwd}:\n${error.stdout}\n${error.stderr}`, { cause: error });
  }
}

/**
 * Each bundler, run on the installed app (`appDir`) as a user would run its binary from the app's
 * folder, with the options wasm/README.md gives (and quieter logging); `build` resolves to the
 * folder to serve.
 */
const bundlers = [
  {
    name: 'vite',
    // A plain production build, no configuration file: Vite follows
    // `new Worker(new URL('./worker.js', import.meta.url), ...)` into the package, bundles the
    // worker, and emits both .wasm files the bindings reach by `new URL(..., import.meta.url)`;
    // likewise wa-sqlite-async.wasm, which wa-sqlite's Emscripten module (a chunk of its own,
    // from sqlite.js's dynamic import) reaches by `new URL('wa-sqlite-async.wasm', import.meta.url)`.
    async build(appDir) {
      const vite = path.join(testModules, 'vite/bin/vite.js');
      await runBundler(process.execPath, [vite, 'build', '--logLevel', 'warn'], appDir);
      return path.join(appDir, 'dist');
    },
  },
  {
    name: 'esbuild',
    // esbuild bundles `new URL(..., import.meta.url)` as it is and emits nothing for it, so the
    // worker and the four .wasm files (the package's three and wa-sqlite's Asyncify build) are
    // extra entry points: `--entry-names=[name]` puts them next to main.js under the names those
    // URLs ask for, `--loader:.wasm=copy` copies the .wasm files as they are, and `--splitting`
    // keeps the mirror's bindings (the worker's dynamic import) and wa-sqlite's Emscripten
    // module (sqlite.js's) in chunks of their own, also at the top of the output, fetched only
    // for openMirror and openDatabase. esbuild leaves HTML alone: the page is copied in.
    async build(appDir) {
      const outDir = path.join(appDir, 'dist');
      await runBundler(
        path.join(testModules, 'esbuild/bin/esbuild'),
        [
          'main.js',
          'strata-engine/worker.js',
          'strata-engine/strata_wasm_bg.wasm',
          'strata-engine/strata_policies_bg.wasm',
          'strata-engine/strata_mirror_bg.wasm',
          '@journeyapps/wa-sqlite/dist/wa-sqlite-async.wasm',
          '--bundle',
          '--format=esm',
          '--splitting',
          '--minify',
          '--outdir=dist',
          '--entry-names=[name]',
          '--loader:.wasm=copy',
          '--log-level=warning',
        ],
        appDir,
      );
      await copyFile(path.join(appDir, 'index.html'), path.join(outDir, 'index.html'));
      return outDir;
    },
  },
];

let browser;

before(async () => {
  browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
});

after(async () => {
  await browser?.close();
});

for (const bundler of bundlers) {
  describe(`${bundler.name} ${await installedVersion(bundler.name)}`, () => {
    let workDir;
    let server;
    let baseUrl;
    let context;
    /** The output folder's files, as URL paths ('/assets/worker-1a2b.js'). */
    let outputFiles;
    /** Every request of this bundler's pages and their workers: { url, status, failure }, in order. */
    const network = [];

    before(async () => {
      workDir = await mkdtemp(path.join(os.tmpdir(), `strata-${bundler.name}-`));
      const appDir = await installPackedApp(workDir, path.join(here, 'bundler-app'));
      await installPeer(appDir, '@journeyapps/wa-sqlite');
      const outDir = await bundler.build(appDir);
      outputFiles = (await readdir(outDir, { recursive: true, withFileTypes: true }))
        .filter((entry) => entry.isFile())
        .map((entry) => `/${path.relative(outDir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/')}`);
      ({ child: server, url: baseUrl } = await startServer(outDir));
      context = await browser.newContext();
      // The context sees the requests of its pages and of their workers.
      const entries = new Map();
      context.on('request', (request) => {
        const entry = { url: request.url(), status: null, failure: null };
        entries.set(request, entry);
        network.push(entry);
      });
      context.on('response', (response) => {
        entries.get(response.request()).status = response.status();
      });
      context.on('requestfailed', (request) => {
        entries.get(request).failure = request.failure()?.errorText ?? 'failed';
      });
    });

    after(async () => {
      await context?.close();
      server?.kill();
      if (workDir) await rm(workDir, { recursive: true, force: true });
    });

    /** The output's files whose names match `pattern`. */
    const outputMatching = (pattern) => outputFiles.filter((file) => pattern.test(path.posix.basename(file)));

    /** The network log from entry `from` on, for messages: one request a line. */
    const shownNetwork = (from) =>
      network
        .slice(from)
        .map((e) => `  ${e.status ?? e.failure ?? 'pending'} ${e.url}`)
        .join('\n');

    /** A page of the built app, loaded and ready, and the URLs of the workers it starts. */
    async function appPage() {
      const page = await context.newPage();
      const problems = [];
      page.on('pageerror', (error) => problems.push(error.message));
      const workerUrls = [];
      page.on('worker', (worker) => workerUrls.push(worker.url()));
      await page.goto(`${baseUrl}index.html`);
      await page.waitForFunction(() => document.getElementById('status')?.textContent === 'ready', null, {
        timeout: 30_000,
      });
      assert.deepEqual(problems, [], 'the built page threw');
      return { page, workerUrls };
    }

    /**
     * Waits for the requests in flight to finish, then checks that every request from entry
     * `from` of the network log on was for a file of the output, on the server's origin, and
     * was answered with status 200.
     */
    async function assertOnlyOutputFetched(from) {
      const origin = new URL(baseUrl).origin;
      const requests = () => network.slice(from);
      for (let i = 0; i < 50 && requests().some((e) => e.status === null && e.failure === null); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const outside = requests().filter((e) => {
        const url = new URL(e.url);
        return url.origin !== origin || !outputFiles.includes(url.pathname);
      });
      assert.deepEqual(
        outside.map((e) => e.url),
        [],
        `fetched from outside the output (${outputFiles.join(', ')}):\n${shownNetwork(from)}`,
      );
      const bad = requests().filter((e) => e.status !== 200);
      assert.deepEqual(bad.map((e) => e.url), [], `requests not answered with 200:\n${shownNetwork(from)}`);
    }

    /** The entries of the network log from entry `from` on for files named like `pattern`. */
    function fetched(from, pattern) {
      return network.slice(from).filter((e) => pattern.test(path.posix.basename(new URL(e.url).pathname)));
    }

    test("the build emits the worker, the package's three .wasm modules and wa-sqlite's", () => {
      const files = `the output: ${outputFiles.join(', ')}`;
      assert.equal(outputMatching(/\.wasm$/).length, 4, `not four .wasm files in ${files}`);
      assert.equal(outputMatching(/^strata_wasm_bg.*\.wasm$/).length, 1, `no main module in ${files}`);
      assert.equal(outputMatching(/^strata_policies_bg.*\.wasm$/).length, 1, `no policies module in ${files}`);
      assert.equal(outputMatching(/^strata_mirror_bg.*\.wasm$/).length, 1, `no mirror module in ${files}`);
      assert.equal(outputMatching(/^wa-sqlite-async.*\.wasm$/).length, 1, `no wa-sqlite module in ${files}`);
      assert.equal(outputMatching(/^worker.*\.js$/).length, 1, `no worker script in ${files}`);
    });

    test('a store on each backend takes writes and a snapshot and reads the exact bytes back', async () => {
      const from = network.length;
      const { page, workerUrls } = await appPage();
      for (const backend of ['memory', 'opfs', 'indexeddb']) {
        const name = `bundled-${bundler.name}-${backend}`;
        const created = await page.evaluate(([b, n]) => window.bundled.create(b, n), [backend, name]);
        assert.deepEqual(
          created,
          { backend, snapshot: 1, head3: true, head10: true, snapshot3: true, snapshot10: true },
          `${backend}: what the new store reads back`,
        );
      }
      // Every store (and every destroy) runs in a worker of its own, started from the bundle's
      // worker script.
      assert.ok(workerUrls.length >= 3, `workers: ${workerUrls.join(', ')}`);
      for (const url of workerUrls) {
        assert.ok(outputFiles.includes(new URL(url).pathname), `worker ${url} is not a file of the output`);
      }
      assert.ok(fetched(from, /^worker.*\.js$/).length > 0, `no worker script fetched:\n${shownNetwork(from)}`);
      assert.ok(
        fetched(from, /^strata_wasm_bg.*\.wasm$/).length > 0,
        `strata_wasm_bg.wasm was not fetched:\n${shownNetwork(from)}`,
      );

      // The persistent stores outlive their page and its workers.
      await page.reload();
      await page.waitForFunction(() => document.getElementById('status')?.textContent === 'ready');
      for (const backend of ['opfs', 'indexeddb']) {
        const name = `bundled-${bundler.name}-${backend}`;
        const reopened = await page.evaluate(([b, n]) => window.bundled.reopen(b, n), [backend, name]);
        assert.deepEqual(
          reopened,
          { backend, snapshot: 1, head3: true, head10: true, snapshot3: true, snapshot10: true },
          `${backend}: what the reopened store reads`,
        );
      }
      await page.close();
      await assertOnlyOutputFetched(from);
      // The app imports strata-engine/sqlite, but only openDatabase loads SQLite; and stores
      // without a policy never load the policy executor.
      assert.deepEqual(
        fetched(from, /^wa-sqlite-async/).map((e) => e.url),
        [],
        `stores without a database loaded wa-sqlite:\n${shownNetwork(from)}`,
      );
      assert.deepEqual(
        fetched(from, /^strata_policies_bg.*\.wasm$/).map((e) => e.url),
        [],
        `stores without a policy loaded strata_policies_bg.wasm:\n${shownNetwork(from)}`,
      );
    });

    test('a policy moves a store to the policies module from the bundle, where it opens again', async () => {
      const from = network.length;
      const { page } = await appPage();
      const expected = { rules: ['hourly'], snapshot: 1, head3: true, head10: true, snapshot3: true, snapshot10: true };
      for (const backend of ['memory', 'opfs', 'indexeddb']) {
        const name = `bundled-${bundler.name}-policy-${backend}`;
        const result = await page.evaluate(([b, n]) => window.bundled.policy(b, n), [backend, name]);
        assert.deepEqual(
          result,
          { moved: expected, reopened: backend === 'memory' ? null : expected },
          `${backend}: the policy and the blocks after the move, and after a reopen`,
        );
      }
      assert.ok(
        fetched(from, /^strata_policies_bg.*\.wasm$/).length > 0,
        `setPolicy did not fetch strata_policies_bg.wasm:\n${shownNetwork(from)}`,
      );
      await page.close();
      await assertOnlyOutputFetched(from);
    });

    test('a mirror loads the second module from the bundle and reads the exact bytes back', async () => {
      const from = network.length;
      const { page } = await appPage();
      const result = await page.evaluate((n) => window.bundled.mirror(n), `bundled-${bundler.name}-mirror`);
      assert.deepEqual(
        result,
        { snapshot: 1, healthyLegs: 2, head3: true, head10: true, snapshot3: true, snapshot10: true },
        'what the mirror reads back',
      );
      assert.ok(
        fetched(from, /^worker.*\.js$/).length > 0,
        `no worker script fetched:\n${shownNetwork(from)}`,
      );
      assert.ok(
        fetched(from, /^strata_mirror_bg.*\.wasm$/).length > 0,
        `openMirror did not fetch strata_mirror_bg.wasm:\n${shownNetwork(from)}`,
      );
      await page.close();
      await assertOnlyOutputFetched(from);
    });

    test("a SQLite database loads wa-sqlite's module from the bundle, and its snapshot reads the old rows", async () => {
      const from = network.length;
      const { page } = await appPage();
      const result = await page.evaluate((n) => window.bundled.sqlite(n), `bundled-${bundler.name}-sqlite`);
      const ok = [{ integrity_check: 'ok' }];
      assert.deepEqual(
        result,
        {
          backend: 'opfs',
          snapshotRows: [
            { id: 1, label: 'old-1' },
            { id: 2, label: 'old-2' },
            { id: 3, label: 'old-3' },
            { id: 4, label: 'old-4' },
          ],
          snapshotIntegrity: ok,
          liveRows: [
            { id: 1, label: 'new-1' },
            { id: 2, label: 'new-2' },
            { id: 3, label: 'old-3' },
            { id: 5, label: 'new-5' },
          ],
          liveIntegrity: ok,
        },
        'what the live database and its snapshot read',
      );
      const wasm = fetched(from, /^wa-sqlite-async.*\.wasm$/);
      assert.ok(wasm.length > 0, `openDatabase did not fetch wa-sqlite-async.wasm:\n${shownNetwork(from)}`);
      assert.ok(
        wasm.every((e) => e.status === 200),
        `wa-sqlite-async.wasm not answered with 200:\n${shownNetwork(from)}`,
      );
      await page.close();
      await assertOnlyOutputFetched(from);
    });
  });
}
