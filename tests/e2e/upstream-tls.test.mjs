// https:// upstreams: the certificate is verified against the model's tls_ca_file (or the
// system's roots) and must match the model's tls_server_name, else the URL's host (an IP
// address here); a mismatch or an unknown issuer is a clean 502 and nothing is forwarded.
// Every URL is an IP address: the test resolves no names (a minimal Debian root has no
// /etc/hosts), and tls_server_name is how a DNS name is verified without a resolver.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { uniq } from './lib/expect.mjs';

// A self-signed certificate for `names` (subjectAltName entries), made with the openssl CLI.
function makeCert(dir, tag, san) {
  const key = join(dir, `${tag}.key`);
  const cert = join(dir, `${tag}.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-days', '1', '-subj', `/CN=${tag}`, '-addext', `subjectAltName=${san}`,
    '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { key: readFileSync(key), cert: readFileSync(cert), certPath: cert };
}

function startTlsUpstream({ key, cert }) {
  const seen = [];
  const server = https.createServer({ key, cert }, (req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      seen.push(JSON.parse(body));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        id: 'msg_tls', type: 'message', role: 'assistant', model: 'tls', stop_reason: 'end_turn',
        stop_sequence: null, content: [{ type: 'text', text: 'over TLS' }], usage: { input_tokens: 5, output_tokens: 2 },
      }));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ port: server.address().port, seen, server })));
}

describe('https:// upstreams', () => {
  let dir;
  let server;
  let good;
  let wrongName;
  let named;
  let key;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gh-tls-'));
    const right = makeCert(dir, 'right', 'DNS:localhost,IP:127.0.0.1');
    const other = makeCert(dir, 'other', 'DNS:other.example');
    const internal = makeCert(dir, 'internal', 'DNS:models.internal');
    good = await startTlsUpstream(right);
    wrongName = await startTlsUpstream(other);
    named = await startTlsUpstream(internal);
    const price = { price_input: 1, price_output: 1 };
    server = await startServer({
      config: {
        'model tls-name': { style: 'anthropic', upstream_url: `https://127.0.0.1:${named.port}`, tls_server_name: 'models.internal', tls_ca_file: internal.certPath, ...price },
        'model tls-ip': { style: 'anthropic', upstream_url: `https://127.0.0.1:${good.port}`, tls_ca_file: right.certPath, ...price },
        'model tls-name-unset': { style: 'anthropic', upstream_url: `https://127.0.0.1:${named.port}`, tls_ca_file: internal.certPath, ...price },
        'model tls-untrusted': { style: 'anthropic', upstream_url: `https://127.0.0.1:${good.port}`, tls_server_name: 'localhost', ...price },
        'model tls-mismatch': { style: 'anthropic', upstream_url: `https://127.0.0.1:${wrongName.port}`, tls_ca_file: other.certPath, ...price },
        'model tls-mismatch-dns': { style: 'anthropic', upstream_url: `https://127.0.0.1:${wrongName.port}`, tls_server_name: 'localhost', tls_ca_file: other.certPath, ...price },
        'model tls-untrusted-ip': { style: 'anthropic', upstream_url: `https://127.0.0.1:${good.port}`, ...price },
      },
    });
    const admin = new Client(server.consoleUrl);
    await admin.signUpWithOrg(server, uniq('tls'), 'TLS Co');
    const r = await admin.post('/v1/organizations/api_keys', { name: 'tls key' });
    key = r.body.key;
  });
  after(async () => {
    await server?.stop();
    good?.server.close();
    wrongName?.server.close();
    named?.server.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const ask = async (model) => {
    const res = await fetch(`${server.apiUrl}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model, max_tokens: 10, messages: [{ role: 'user', content: 'hello' }] }),
    });
    return { status: res.status, json: await res.json() };
  };

  test('a certificate from tls_ca_file matching tls_server_name or the IP address is accepted', async () => {
    for (const model of ['tls-name', 'tls-ip', 'tls-name']) {
      const r = await ask(model);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.content[0].text, 'over TLS');
    }
    assert.equal(named.seen.length, 2);
    assert.equal(good.seen.length, 1);
  });

  test('an unknown issuer or a certificate for another name is a 502; nothing is sent', async () => {
    const before = good.seen.length + wrongName.seen.length + named.seen.length;
    for (const [model, why] of [['tls-untrusted', 'self-signed certificate'], ['tls-untrusted-ip', 'self-signed certificate'],
      ['tls-mismatch', 'IP address mismatch'], ['tls-mismatch-dns', 'hostname mismatch'],
      // Without tls_server_name the certificate must name the URL's IP address, which this one does not.
      ['tls-name-unset', 'IP address mismatch']]) {
      const r = await ask(model);
      assert.equal(r.status, 502, JSON.stringify(r.json));
      assert.equal(r.json.error.type, 'api_error');
      assert.equal(r.json.error.message, `The upstream model server for ${model} could not be reached (${why}).`);
    }
    assert.equal(good.seen.length + wrongName.seen.length + named.seen.length, before);
  });

  test('tls_server_name is checked when the server starts', async () => {
    const { spawnSync } = await import('node:child_process');
    const { BINARY } = await import('./lib/server.mjs');
    const { writeFileSync } = await import('node:fs');
    for (const [section, want] of [
      ['upstream_url = https://127.0.0.1:1\ntls_server_name = bad name', /tls_server_name must be a DNS name such as models.internal, not "bad name"/],
      ['upstream_url = http://127.0.0.1:1\ntls_server_name = models.internal', /tls_server_name is for https:\/\/ upstreams; http:\/\/127\.0\.0\.1:1 is not one/],
    ]) {
      const ini = join(dir, 'bad.ini');
      writeFileSync(ini, `[model m]\nstyle = anthropic\n${section}\n`);
      const r = spawnSync(BINARY, ['serve', '--config', ini, '--data-dir', dir, '--listen', '127.0.0.1:0', '--api-listen', '127.0.0.1:0'],
        { encoding: 'utf8', timeout: 30000 });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr + r.stdout, want);
    }
  });
});
