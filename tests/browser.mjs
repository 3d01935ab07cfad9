// Shared by every browser-driving script (tests/e2e, tests/npm, wasm/bench): the system's
// Chromium with the flags that work as root in a closed network, and a static server
// (scripts/serve.py) on a free port of 127.0.0.1, a secure context so OPFS works.
// Plain Node: each caller brings its own playwright-core.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Debian's chromium, installed by scripts/setup.sh (CHROMIUM_BIN in scripts/common.sh). */
export const chromiumPath = '/usr/bin/chromium';

// See ../shared/guide/toolchain.md: without the background-networking flags Chromium keeps
// trying to reach Google's services.
export const chromiumArgs = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Serves `directory` with scripts/serve.py on a free port; resolves to { child, url }. */
export async function startServer(directory) {
  const child = spawn(
    'python3',
    [path.join(repoRoot, 'scripts/serve.py'), '--port', '0', '--quiet', '--directory', directory],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout });
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`serve.py exited with code ${code} before listening`);
  });
  const listening = (async () => {
    for await (const line of lines) {
      const match = line.match(/ at (http:\/\/\S+)$/);
      if (match) return match[1];
    }
    throw new Error('serve.py closed its output without printing its URL');
  })();
  const url = await Promise.race([listening, exited]);
  exited.catch(() => {}); // The server is killed at the end; that exit is expected.
  return { child, url };
}
