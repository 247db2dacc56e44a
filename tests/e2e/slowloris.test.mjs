// Slow clients on the console (issue 12, point 8). 4,000 connections from one address, each
// sending a header byte every second, must not starve anyone else: the console caps the
// connections one address may hold ([server] max_connections_per_ip) and gives every request
// a deadline for its head and body ([server] request_timeout_ms).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnChild, waitExit } from './lib/children.mjs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { startServer, ROOT } from './lib/server.mjs';

// One request over a fresh connection from `localAddress`; resolves {status, body, ms}.
function requestFrom(url, localAddress, { method = 'GET', json } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const body = json ? JSON.stringify(json) : undefined;
    const req = http.request(url, {
      method,
      localAddress,
      agent: false,
      headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {},
    }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: text, ms: performance.now() - started }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// Starts the slowloris client in its own process with a raised descriptor limit (it holds
// thousands of sockets); resolves with helpers to wait for its reports and to stop it.
function startAttack(port, count, localAddress) {
  const script = join(ROOT, 'tests/e2e/lib/slowloris.mjs');
  const proc = spawnChild('sh', ['-c',
    `ulimit -n 16384 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "${process.execPath}" "${script}" ${port} ${count} ${localAddress}`],
  { stdio: ['pipe', 'pipe', 'inherit'] });
  const { child } = proc;
  let out = '';
  const waiters = [];
  child.stdout.on('data', (d) => {
    out += d;
    for (const w of [...waiters]) w();
  });
  return {
    // Resolves with the first match of `re` in the output, checking again on every report.
    waitFor(re, timeoutMs = 120000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = [...out.matchAll(re)];
          if (m.length) { done(); resolve(m); }
        };
        const timer = setTimeout(() => { done(); reject(new Error(`attacker never reported ${re}:\n${out.slice(-2000)}`)); }, timeoutMs);
        const done = () => { clearTimeout(timer); waiters.splice(waiters.indexOf(check), 1); };
        waiters.push(check);
        check();
      });
    },
    async stop() {
      child.stdin.end();
      await waitExit(proc, { what: 'the slowloris client' });
    },
  };
}

test('4,000 slow connections from one address leave the console to everyone else', async (t) => {
  const server = await startServer();
  const attack = startAttack(Number(new URL(server.consoleUrl).port), 4000, '127.0.0.1');
  try {
    const [[, connected, failed]] = await attack.waitFor(/^settled (\d+) (\d+)$/gm);
    assert.ok(Number(connected) > 0, 'the attacker got connections');

    // Another address is served at once, the attack still running.
    const health = await requestFrom(`${server.consoleUrl}/healthz`, '127.0.0.2');
    assert.equal(health.status, 200);
    assert.ok(health.ms < 1000, `healthz took ${health.ms.toFixed(0)} ms`);
    const signIn = await requestFrom(`${server.consoleUrl}/auth/email`, '127.0.0.2',
      { method: 'POST', json: { email: 'slowloris-bystander@example.com' } });
    assert.equal(signIn.status, 202, signIn.body);
    assert.ok(signIn.ms < 1000, `sign-in took ${signIn.ms.toFixed(0)} ms`);

    // The attacker keeps no more than the cap open (the default, 128).
    const [[, open]] = await attack.waitFor(/^open ([0-9]|[1-9][0-9]|1[01][0-9]|12[0-8])$/gm);
    t.diagnostic(`attacker: ${connected} connected, ${failed} failed, ${open} left open; ` +
      `from 127.0.0.2: healthz ${health.ms.toFixed(0)} ms, sign-in ${signIn.ms.toFixed(0)} ms`);
    await server.waitForLog(/127\.0\.0\.1 holds 128 connections \(max_connections_per_ip\)/);
    assert.equal(server.log.match(/holds 128 connections/g).length, 1, 'the cap is reported once, not per refusal');
    assert.doesNotMatch(server.log, /warn +http: Connection/, 'no warning per refused connection');
    const again = await requestFrom(`${server.consoleUrl}/healthz`, '127.0.0.2');
    assert.equal(again.status, 200);
  } finally {
    await attack.stop();
    await server.stop();
  }
});

test('a request head that trickles in is cut at request_timeout_ms, however steady the trickle', async () => {
  const server = await startServer({ config: { server: { request_timeout_ms: 1500 } } });
  const port = Number(new URL(server.consoleUrl).port);
  try {
    const started = performance.now();
    let bytes = 0;
    const closedAfter = await new Promise((resolve, reject) => {
      const sock = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.5' });
      let drip;
      sock.on('connect', () => {
        sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ');
        // A byte every 100 ms: far inside libmicrohttpd's idle timeout, so only the request
        // deadline can end this.
        drip = setInterval(() => { sock.write('a'); bytes++; }, 100);
      });
      const timer = setTimeout(() => { clearInterval(drip); sock.destroy(); reject(new Error('still open after 20 s')); }, 20000);
      sock.on('error', () => {});
      sock.on('close', () => { clearTimeout(timer); clearInterval(drip); resolve(performance.now() - started); });
    });
    assert.ok(closedAfter >= 1400, `cut after ${closedAfter.toFixed(0)} ms, not before the deadline`);
    assert.ok(bytes > 5, `the client was still sending (${bytes} bytes)`);
    await server.waitForLog(/closed 1 connections whose request did not arrive within 1500 ms/);
    // That summary is the only line: no warning per cut or abandoned connection.
    assert.doesNotMatch(server.log, /warn +http: Connection/);
    // A keep-alive connection that sends its requests in time is not cut.
    const ok = await requestFrom(`${server.consoleUrl}/healthz`, '127.0.0.5');
    assert.equal(ok.status, 200);
  } finally {
    await server.stop();
  }
});
