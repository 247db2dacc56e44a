// Holds N concurrent streaming /v1/messages requests open through Gatehouse (default 2,000)
// against a slow mock upstream, and reports Gatehouse's resident memory per open stream and
// its thread count (streams must not need threads).
// Usage: node bench/streams.mjs [streams] [--builtin]   (run after `make`; all on 127.0.0.1)
// Exits non-zero when a stream failed, when the thread count changed or when the streams
// took more than 16 KiB of resident memory each. Each stream relayed to the HTTP mock
// upstream holds two descriptors in Gatehouse (the client's and the upstream's): when the
// open-files limit cannot hold them all, it says so and exits 2 before starting. With
// --builtin the streams go to a model served by Gatehouse's built-in mock instead (one
// descriptor each, no upstream connection): what one process holds per client stream.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { startServer, BINARY } from '../tests/e2e/lib/server.mjs';
import { Client } from '../tests/e2e/lib/client.mjs';
import { spawnChild, stopChild } from '../tests/e2e/lib/children.mjs';

const args = process.argv.slice(2);
const builtin = args.includes('--builtin');
const N = Number(args.find((a) => !a.startsWith('--')) ?? 2000);
// Gatehouse inherits this process's open-files limit; it needs a descriptor per client, one
// per upstream connection, and a few dozen of its own (listeners, database, log, epoll).
const fdLimit = Number(readFileSync('/proc/self/limits', 'utf8').match(/Max open files\s+(\d+)/)[1]);
const fdsNeeded = N * (builtin ? 1 : 2) + 100;
if (fdsNeeded > fdLimit) {
  const most = Math.floor((fdLimit - 100) / (builtin ? 1 : 2));
  console.log(`the open-files limit is ${fdLimit}: Gatehouse would need about ${fdsNeeded} descriptors for ${N} streams ` +
    `(${builtin ? 'one' : 'two'} each); at most ${most} fit${builtin ? '' : ', or run with --builtin'}`);
  process.exit(2);
}
const status = (pid) => readFileSync(`/proc/${pid}/status`, 'utf8');
const rssKiB = (pid) => Number(status(pid).match(/VmRSS:\s+(\d+)/)[1]);
const threads = (pid) => Number(status(pid).match(/Threads:\s+(\d+)/)[1]);

// The mock streams slowly (2 tokens/s, 60 tokens: ~30 s per stream, so that every stream is
// still open when the last one starts, even on a loaded machine).
let mockProc = null, model;
if (builtin) {
  model = { style: 'mock', mock_tokens_per_second: 2, price_input: 3, price_output: 15 };
} else {
  mockProc = spawnChild(BINARY, ['mock-upstream', '--port', '0', '--tokens-per-second', '2']);
  const mockUrl = await new Promise((res, rej) => {
    mockProc.child.stderr.on('data', () => { const m = mockProc.log().match(/listening on (http:\/\/\S+)/); if (m) res(m[1]); });
    mockProc.exited.then(() => rej(new Error(`mock-upstream exited: ${mockProc.log()}`)));
  });
  // max_connections is split evenly across the two loops, and the kernel does not spread the
  // clients evenly over them (SO_REUSEPORT): room for all of them on either loop.
  model = { style: 'anthropic', upstream_url: mockUrl, price_input: 3, price_output: 15, max_connections: Math.max(4096, 2 * N) };
}

const server = await startServer({
  config: { server: { api_threads: 2 }, log: { access_log: 'false' }, 'model slow': model },
});
const admin = new Client(server.consoleUrl);
await admin.signUpWithOrg(server, `streams.${Date.now()}@example.com`, 'Streams');
const key = (await admin.post('/v1/organizations/api_keys', { name: 'streams' })).body.key;
const pid = server.child.pid;

const before = rssKiB(pid);
const threadsBefore = threads(pid);
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
const body = JSON.stringify({ model: 'slow', max_tokens: 60, stream: true, messages: [{ role: 'user', content: 'hi' }] });
let started = 0, finished = 0, failed = 0;
const failures = new Map(); // what went wrong -> how many times
const allStarted = new Promise((resolve) => {
  // A stream counts as started at its message_start, as failed on an error, a status other
  // than 200 or an end without message_stop; once each one has started or failed, measure.
  const fail = (why) => { failed++; failures.set(why, (failures.get(why) ?? 0) + 1); if (started + failed === N) resolve(); };
  for (let i = 0; i < N; i++) {
    const req = http.request(`${server.apiUrl}/v1/messages`, {
      method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': '2023-06-01' },
    }, (res) => {
      let seen = false, tail = '';
      res.on('data', (d) => {
        const text = tail + d;
        tail = text.slice(-200);
        if (!seen && text.includes('message_start')) { seen = true; if (++started + failed === N) resolve(); }
      });
      res.on('error', () => {}); // an aborted response: told by 'close' below
      res.on('close', () => {
        if (res.statusCode !== 200) { if (seen) started--; fail(`HTTP ${res.statusCode}: ${tail.slice(0, 120)}`); }
        else if (!res.complete || !tail.includes('message_stop')) { if (seen) started--; fail('ended without message_stop'); }
        else finished++;
      });
    });
    req.on('error', (e) => { if (!req.res) fail(e.code ?? e.message); });
    req.end(body);
  }
});
const progress = setInterval(() => console.error(`streams: ${started} started, ${failed} failed, ${finished} finished of ${N}`), 5000);
await allStarted;
clearInterval(progress);
const during = rssKiB(pid);
const openNow = started - finished; // streams that had started and not yet ended when measured
const t = threads(pid);
console.log(`${N} streams started (${builtin ? 'built-in mock' : 'relayed to the HTTP mock upstream'}); ${openNow} of them open at once when measured`);
console.log(`gatehouse RSS before: ${(before / 1024).toFixed(1)} MiB, with ${N} streams: ${(during / 1024).toFixed(1)} MiB`);
const perStream = (during - before) / N;
console.log(`per stream: ${perStream.toFixed(1)} KiB (limit 16 KiB); threads: ${threadsBefore} before, ${t} with the streams open`);
while (finished + failed < N) await new Promise((r) => setTimeout(r, 100));
const after = rssKiB(pid);
console.log(`all streams finished (${failed} failed); RSS after: ${(after / 1024).toFixed(1)} MiB`);
await server.stop();
if (mockProc) await stopChild(mockProc, { what: 'the mock upstream' });
const problems = [];
if (failed) problems.push(`${failed} streams failed (${[...failures].map(([w, n]) => `${n}× ${w}`).join(', ')})`);
if (t !== threadsBefore) problems.push(`the thread count changed from ${threadsBefore} to ${t}`);
if (openNow < N) problems.push(`only ${openNow} of the ${N} streams were open at once`);
if (perStream > 16) problems.push(`${perStream.toFixed(1)} KiB per stream is over 16 KiB`);
console.log(problems.length ? `FAILED: ${problems.join('; ')}` : 'ok');
process.exitCode = problems.length ? 1 : 0;
