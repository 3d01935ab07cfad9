// The bench page: runs bench-worker.js (a dedicated worker, where OPFS sync access handles
// exist) with the sizes from the URL, shows its log, and leaves the results in
// `window.benchResult` ({ ok: true, results } or { ok: false, error }) for run.mjs.

const params = new URLSearchParams(location.search);
const quick = params.has('quick');
const config = quick
  ? { writes: 512, naiveWrites: 256, reads: 128, blocks: 4096, syncEvery: 256, rounds: 1 }
  : {
      writes: Number(params.get('writes') ?? 8192),
      naiveWrites: Number(params.get('naiveWrites') ?? 1024),
      reads: Number(params.get('reads') ?? 2048),
      blocks: Number(params.get('blocks') ?? 65536),
      syncEvery: Number(params.get('syncEvery') ?? 256),
      rounds: Number(params.get('rounds') ?? 3),
    };

const log = document.getElementById('log');
const status = document.getElementById('status');
const worker = new Worker(new URL('./bench-worker.js', import.meta.url), { type: 'module' });
worker.onmessage = ({ data }) => {
  if (data.log !== undefined) {
    log.textContent += `${data.log}\n`;
  } else if (data.results !== undefined) {
    status.textContent = 'done';
    window.benchResult = { ok: true, config, results: data.results };
  } else if (data.error !== undefined) {
    status.textContent = `failed: ${data.error}`;
    window.benchResult = { ok: false, error: data.error };
  }
};
worker.onerror = (event) => {
  status.textContent = `worker failed: ${event.message}`;
  window.benchResult = { ok: false, error: event.message ?? 'the worker failed to load' };
};
worker.postMessage(config);
