// The command line: `gatehouse keys verify` checks keys offline, against real keys made by
// the server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startServer, BINARY } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { uniq } from './lib/expect.mjs';

let server, admin;

before(async () => {
  server = await startServer();
  admin = new Client(server.consoleUrl);
  await admin.signUpWithOrg(server, uniq('cli'), 'Acme');
});
after(async () => { await server?.stop(); });

const verify = (arg, input) => spawnSync(BINARY, ['keys', 'verify', arg], { input, encoding: 'utf8' });

test('keys verify accepts real keys and refuses corrupted ones', async () => {
  const api = (await admin.post('/v1/organizations/api_keys', { name: 'prod' })).body.key;
  const adm = (await admin.post('/v1/organizations/admin_keys', { name: 'ci' })).body.key;
  for (const [key, kind] of [[api, 'API'], [adm, 'admin']]) {
    const ok = verify(key);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, new RegExp(`^ok: a well-formed ${kind} key \\(sk-gh-(api|admin)01-\\w{3}\\.\\.\\.\\w{4}\\), checksum matches`));
    assert.ok(!ok.stdout.includes(key), 'the full key is never printed');
    // One changed character anywhere after the prefix.
    const i = key.length - 20;
    const bad = key.slice(0, i) + (key[i] === 'a' ? 'b' : 'a') + key.slice(i + 1);
    const no = verify(bad);
    assert.equal(no.status, 1);
    assert.match(no.stdout, /checksum does not match/);
  }
  // From standard input, so a key need not appear in shell history.
  const piped = verify('-', api + '\n');
  assert.equal(piped.status, 0);
  const truncated = verify(api.slice(0, -1));
  assert.equal(truncated.status, 1);
  assert.match(truncated.stdout, /wrong length/);
  const usage = spawnSync(BINARY, ['keys'], { encoding: 'utf8' });
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /usage: gatehouse keys verify/);
});
