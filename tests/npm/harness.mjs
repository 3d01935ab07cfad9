// Shared by the tests in this folder: `npm pack` the built package (wasm/pkg, from
// scripts/build-npm.sh), install the tarball into a scratch app (app/), serve it and drive it in
// the system's headless Chromium through playwright-core. Each test file calls `startApp()`
// once (in `before`) and `stop()` on what it returned once (in `after`). bundlers.test.mjs
// installs its own apps with `installPackedApp` and builds them before serving.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { chromiumArgs, chromiumPath, startServer } from '../browser.mjs';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../..');
const packageDir = path.join(repoRoot, 'wasm/pkg');

/**
 * The scratch app with the packed package installed, served, and a browser to drive it:
 * { baseUrl, browser, newContext(), appPage(context), stop() }.
 */
export async function startApp() {
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'strata-npm-'));
  let server;
  let browser;
  try {
    const appDir = await installPackedApp(workDir, path.join(here, 'app'));
    let baseUrl;
    ({ child: server, url: baseUrl } = await startServer(appDir));
    browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
    return {
      baseUrl,
      origin: new URL(baseUrl).origin,
      browser,
      newContext: () => browser.newContext(),
      /** A page of the scratch app in `context`, loaded and ready. */
      async appPage(context) {
        const page = await context.newPage();
        const problems = [];
        page.on('pageerror', (error) => problems.push(error.message));
        await page.goto(`${baseUrl}index.html`);
        await page.waitForFunction(() => document.getElementById('status')?.textContent === 'ready', null, {
          timeout: 30_000,
        });
        assert.deepEqual(problems, [], 'the app page threw');
        return page;
      },
      async stop() {
        await browser?.close();
        server?.kill();
        await rm(workDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await browser?.close();
    server?.kill();
    await rm(workDir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * `npm pack`s the built package into `workDir`, copies the app sources in folder `appSource` to
 * `workDir/app` and installs the tarball there, offline: what a user of the package gets.
 * Resolves to the app's folder.
 */
export async function installPackedApp(workDir, appSource) {
  assert.ok(
    existsSync(path.join(packageDir, 'package.json')),
    'wasm/pkg is missing: run scripts/build-npm.sh first',
  );
  const { stdout } = await run('npm', ['pack', packageDir, '--pack-destination', workDir, '--json']);
  const tarball = path.join(workDir, JSON.parse(stdout)[0].filename);
  const appDir = path.join(workDir, 'app');
  await cp(appSource, appDir, { recursive: true });
  await writeFile(
    path.join(appDir, 'package.json'),
    JSON.stringify({ name: 'strata-npm-scratch-app', private: true, type: 'module' }, null, 2),
  );
  await run('npm', ['install', tarball, '--offline', '--no-audit', '--no-fund'], { cwd: appDir });
  assert.ok(existsSync(path.join(appDir, 'node_modules/strata-engine/worker.js')));
  return appDir;
}
