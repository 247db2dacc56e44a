// Holds N concurrent streaming /v1/messages requests open through Gatehouse (default 2,000)
// against a slow mock upstream, and reports Gatehouse's resident memory per open stream and
// its thread count (streams must not need threads).
// Usage: node bench/streams.mjs [streams]   (run after `make`; everything on 127.0.0.1)
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { startServer, BINARY } from '../tests/e2e/lib/server.mjs';
import { Client } from '../tests/e2e/lib/client.mjs';

const N = Number(process.argv[2] ?? 2000);
const status = (pid) => readFileSync(`/proc/${pid}/status`, 'utf8');
const rssKiB = (pid) => Number(status(pid).match(/VmRSS:\s+(\d+)/)[1]);
const threads = (pid) => Number(status(pid).match(/Threads:\s+(\d+)/)[1]);

// The mock upstream streams slowly (5 tokens/s, 30 tokens: ~6 s per stream).
const mock = spawn(BINARY, ['mock-upstream', '--port', '0', '--tokens-per-second', '5'], { stdio: ['ignore', 'ignore', 'pipe'] });
const mockUrl = await new Promise((res, rej) => {
  let log = '';
  mock.stderr.on('data', (d) => { log += d; const m = log.match(/listening on (http:\/\/\S+)/); if (m) res(m[1]); });
  mock.on('exit', () => rej(new Error(`mock-upstream exited: ${log}`)));
});

const server = await startServer({
  config: { server: { api_threads: 2 }, log: { access_log: 'false' },
    'model slow': { style: 'anthropic', upstream_url: mockUrl, price_input: 3, price_output: 15, max_connections: 4096 } },
});
const admin = new Client(server.consoleUrl);
await admin.signUpWithOrg(server, `streams.${Date.now()}@example.com`, 'Streams');
const key = (await admin.post('/v1/organizations/api_keys', { name: 'streams' })).body.key;
const pid = server.child.pid;

const before = rssKiB(pid);
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
const body = JSON.stringify({ model: 'slow', max_tokens: 30, stream: true, messages: [{ role: 'user', content: 'hi' }] });
let started = 0, finished = 0, failed = 0;
const allStarted = new Promise((resolve) => {
  for (let i = 0; i < N; i++) {
    const req = http.request(`${server.apiUrl}/v1/messages`, {
      method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': '2023-06-01' },
    }, (res) => {
      let seen = false;
      res.on('data', (d) => { if (!seen && String(d).includes('message_start')) { seen = true; if (++started === N) resolve(); } });
      res.on('end', () => { finished++; });
    });
    req.on('error', () => { failed++; });
    req.end(body);
  }
});
await allStarted;
const during = rssKiB(pid);
const t = threads(pid);
console.log(`${N} streams open at once through Gatehouse`);
console.log(`gatehouse RSS before: ${(before / 1024).toFixed(1)} MiB, with ${N} streams: ${(during / 1024).toFixed(1)} MiB`);
console.log(`per stream: ${((during - before) / N).toFixed(1)} KiB; threads: ${t} (independent of the number of streams)`);
while (finished + failed < N) await new Promise((r) => setTimeout(r, 100));
const after = rssKiB(pid);
console.log(`all streams finished (${failed} failed); RSS after: ${(after / 1024).toFixed(1)} MiB`);
await server.stop();
mock.kill('SIGTERM');
