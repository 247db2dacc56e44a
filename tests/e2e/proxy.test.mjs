// Behind a proxy (issue 12, point 11): X-Forwarded-For and Forwarded are believed only from
// the addresses in [server] trusted_proxies, so throttles, the audit log and both access logs
// see each client's own address, and nobody else can choose the address they are seen as.
// Here 127.0.0.2 plays the proxy; 127.0.0.3 is a client that talks to Gatehouse directly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { uniq } from './lib/expect.mjs';

const PROXY = '127.0.0.2';
const DIRECT = '127.0.0.3';
let server;

before(async () => {
  server = await startServer({
    config: {
      server: { trusted_proxies: `${PROXY}/32, 10.0.0.0/8`, max_connections_per_ip: 3 },
      auth: { link_limit_per_ip: 2 },
    },
  });
});

after(async () => {
  await server?.stop();
});

// One request over a fresh connection from `localAddress`; resolves {status, body}.
function send(base, path, localAddress, { method = 'GET', json, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const body = json ? JSON.stringify(json) : undefined;
    const req = http.request(base + path, {
      method,
      localAddress,
      agent: false,
      headers: { ...headers, ...(body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}) },
    }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: text ? JSON.parse(text) : null, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const signIn = (from, headers) => send(server.consoleUrl, '/auth/email', from,
  { method: 'POST', json: { email: uniq('proxied').toLowerCase() }, headers });

test('the sign-in throttle counts each client behind the proxy, not the proxy', async () => {
  const a = { 'x-forwarded-for': '198.51.100.1' };
  const b = { 'x-forwarded-for': '6.6.6.6, 198.51.100.2' }; // a forged hop, then the real one
  assert.equal((await signIn(PROXY, a)).status, 202);
  assert.equal((await signIn(PROXY, a)).status, 202);
  assert.equal((await signIn(PROXY, a)).status, 429, 'client a reached its limit');
  assert.equal((await signIn(PROXY, b)).status, 202, 'client b has its own');
  // Forwarded (RFC 7239) when there is no X-Forwarded-For.
  assert.equal((await signIn(PROXY, { forwarded: 'for="[2001:db8::7]:4711";proto=https' })).status, 202);
  await server.waitForLog(/^console req_\S+ POST \/auth\/email 202 \S+ 2001:db8::7$/m);
  await server.waitForLog(/^console req_\S+ POST \/auth\/email 429 \S+ 198\.51\.100\.1$/m);
});

test('a client that is not a trusted proxy cannot choose the address it is seen as', async () => {
  const spoof = (i) => ({ 'x-forwarded-for': `203.0.113.${i}`, forwarded: `for=203.0.113.${i}` });
  assert.equal((await signIn(DIRECT, spoof(1))).status, 202);
  assert.equal((await signIn(DIRECT, spoof(2))).status, 202);
  const third = await signIn(DIRECT, spoof(3));
  assert.equal(third.status, 429, 'the headers were ignored: all three count for 127.0.0.3');
  assert.ok(Number(third.headers['retry-after']) >= 1);
  await server.waitForLog(/^console req_\S+ POST \/auth\/email 429 \S+ 127\.0\.0\.3$/m);
  assert.doesNotMatch(server.log, /203\.0\.113\./);
});

test('the audit log and the model API\'s access log record the forwarded address', async () => {
  const admin = new Client(server.consoleUrl);
  await admin.signUpWithOrg(server, uniq('proxy-admin').toLowerCase(), 'Proxy Co');
  const key = (await admin.post('/v1/organizations/admin_keys', { name: 'behind proxy' })).body.key;
  const ws = await send(server.consoleUrl, '/v1/organizations/workspaces', PROXY,
    { method: 'POST', json: { name: 'via proxy' }, headers: { 'x-api-key': key, 'x-forwarded-for': '192.0.2.77' } });
  assert.equal(ws.status, 201, JSON.stringify(ws.body));
  const audit = await admin.get('/v1/organizations/audit_log?limit=5');
  const created = audit.body.data.find((e) => e.action === 'workspace.created');
  assert.equal(created.ip, '192.0.2.77');

  const r = await send(server.apiUrl, '/healthz', PROXY, { headers: { 'x-forwarded-for': '192.0.2.88' } });
  assert.equal(r.status, 200);
  await server.waitForLog(/^api req_\S+ GET \/healthz 200 \S+ 192\.0\.2\.88$/m);
  const direct = await send(server.apiUrl, '/healthz', DIRECT, { headers: { 'x-forwarded-for': '192.0.2.99' } });
  assert.equal(direct.status, 200);
  await server.waitForLog(/^api req_\S+ GET \/healthz 200 \S+ 127\.0\.0\.3$/m);
  assert.doesNotMatch(server.log, /192\.0\.2\.99/);
});

test('the per-address connection cap does not apply to a trusted proxy', async () => {
  const port = Number(new URL(server.consoleUrl).port);
  // Opens `n` connections from `from` at once, each sending one keep-alive request, and
  // resolves with how many were answered. Answered connections stay open until every one has
  // been answered or closed, so a slot freed by one cannot be taken by another.
  const hold = async (from, n) => {
    const socks = [];
    const answered = await Promise.all(Array.from({ length: n }, () => new Promise((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1', localAddress: from }, () => {
        s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      });
      socks.push(s);
      let got = '';
      s.on('data', (d) => {
        got += d;
        if (got.includes('{"status":"ok"')) resolve(true); // then the node's fields
      });
      s.on('error', () => {});
      s.on('close', () => resolve(false));
    })));
    for (const s of socks) s.destroy();
    return answered.filter(Boolean).length;
  };
  assert.equal(await hold(PROXY, 8), 8, 'all eight served through the proxy');
  assert.equal(await hold(DIRECT, 8), 3, 'a direct client keeps its cap of 3');
});
