// The staff page's "Model deployments" card in a real browser (issue 15): each model's
// deployments with weight, health and counts. One deployment is a live mock upstream, the
// other a closed port that gets ejected; a developer who is not staff cannot read the list.
// Drives Debian's chromium with playwright-core; screenshots deployments.png into
// tests/e2e/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { chromium } from 'playwright-core';
import { deadPort, startServer, BINARY } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { gatehouse } from './lib/billing.mjs';
import { orgWithKey, call } from './lib/limits.mjs';

const ARTIFACTS = join(import.meta.dirname, 'artifacts');
const WEB_DIR = process.env.GATEHOUSE_WEB_DIR;

let server, browser, mock, mockExited, org, staffApi;
const problems = [];

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  mock = spawn(BINARY, ['mock-upstream', '--port', '0', '--threads', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  mock.stderr.on('data', (d) => { log += d; });
  mockExited = new Promise((res) => mock.on('exit', res));
  const mockUrl = await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`mock upstream not ready:\n${log}`)), 10000);
    mock.stderr.on('data', () => {
      const m = log.match(/mock upstream listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); res(m[1]); }
    });
  });
  const dead = deadPort();
  const config = {
    'model pair': { display_name: 'Pair of servers', upstream_url: `${mockUrl} weight=3, http://127.0.0.1:${dead}`,
      eject_ms: 300000, fallbacks: 'gatehouse-mock-small', price_input: 1, price_output: 5 },
    'model gatehouse-mock-small': { style: 'mock', price_input: 1, price_output: 5 },
  };
  if (WEB_DIR) config.server = { web_dir: WEB_DIR };
  server = await startServer({ config });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  org = await orgWithKey(server, 'Pair Users');
  // Enough requests for the dead deployment to fail three times in a row and be ejected;
  // every one is answered (retried on the live deployment).
  for (let i = 0; i < 40; i++) {
    const r = await call(server, org.key, { model: 'pair', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 200, r.text);
  }
  staffApi = new Client(server.consoleUrl);
  const email = `ops.${Date.now()}@example.com`;
  await staffApi.signUpWithOrg(server, email, 'Platform team', 'Ada Ops');
  assert.equal(gatehouse(server, 'staff', 'add', email).status, 0);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  mock?.kill('SIGTERM');
  await mockExited;
  assert.deepEqual(problems, []);
});

test('only staff read the deployments', async () => {
  const r = await org.admin.get('/staff/api/deployments');
  assert.equal(r.status, 403);
  const s = await staffApi.get('/staff/api/deployments');
  assert.equal(s.status, 200);
  const pair = s.body.data.find((m) => m.model === 'pair');
  assert.deepEqual(pair.fallbacks, ['gatehouse-mock-small']);
  assert.deepEqual(pair.deployments.map((d) => [d.weight, d.health]), [[3, 'up'], [1, 'ejected']]);
  assert.equal(pair.deployments[0].requests, 40, 'every request ended on the live deployment');
  assert.ok(pair.deployments[1].ejections >= 1 && pair.deployments[1].errors >= 3);
  assert.equal(s.body.data.find((m) => m.model === 'gatehouse-mock-small'), undefined, 'the built-in mock has no deployments');
});

test('the staff page shows each deployment with its weight and health', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addCookies([{ name: 'gh_session', value: staffApi.cookies.get('gh_session'), url: server.consoleUrl, httpOnly: true, sameSite: 'Lax' }]);
  const p = await context.newPage();
  p.setDefaultTimeout(10_000);
  p.on('console', (msg) => { if (msg.type() === 'error') problems.push(`console: ${msg.text()}`); });
  p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await p.goto(`${server.consoleUrl}/staff`);
  const card = p.getByRole('region', { name: 'Model deployments' });
  const table = card.getByRole('table', { name: 'Model deployments' });
  await table.waitFor();
  const rows = table.locator('tbody tr');
  assert.equal(await rows.count(), 2);
  const live = rows.nth(0);
  const dead = rows.nth(1);
  assert.match(await live.innerText(), /Pair of servers/);
  assert.match(await live.innerText(), /Falls back to gatehouse-mock-small/);
  assert.equal(await live.locator('td[data-label="Weight"]').innerText(), '3');
  assert.equal(await live.locator('td[data-label="Health"]').innerText(), 'Healthy');
  assert.equal(await live.locator('td[data-label="Requests"]').innerText(), '40');
  assert.equal(await dead.locator('td[data-label="Weight"]').innerText(), '1');
  assert.equal(await dead.locator('td[data-label="Health"]').innerText(), 'Ejected');
  assert.match(await dead.locator('td[data-label="Errors"]').innerText(), /ejection/);
  await p.screenshot({ path: join(ARTIFACTS, 'deployments.png'), fullPage: true, animations: 'disabled' });
  await context.close();
});
