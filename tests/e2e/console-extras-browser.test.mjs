// Issue 16, points 12 and 13 in a real browser: "Terms of Service" at onboarding is a link to
// readable terms (the operator's file shown by /terms, a placeholder that says so, or the
// operator's own page), and the dashboard's code sample has a Copy button and its model list
// the prices per million tokens. Screenshots at 1280×800 and 390×844 in tests/e2e/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { uniq } from './lib/expect.mjs';

const ARTIFACTS = join(import.meta.dirname, 'artifacts');
const WEB_DIR = process.env.GATEHOUSE_WEB_DIR;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const TERMS = 'ACME MODELS TERMS OF SERVICE\n\n1. <b>This is not markup</b>: it is shown as text.\n2. Be kind to the API.\n';

let browser;
let dir;
const servers = [];
const problems = [];

const web = (config = {}) => (WEB_DIR ? { ...config, server: { ...(config.server ?? {}), web_dir: WEB_DIR } } : config);
async function server(config) {
  const s = await startServer({ config: web(config) });
  servers.push(s);
  return s;
}

async function pageFor(srv, client, viewport = DESKTOP, permissions = []) {
  const context = await browser.newContext({ viewport });
  if (permissions.length) await context.grantPermissions(permissions, { origin: srv.consoleUrl });
  await context.addCookies([{ name: 'gh_session', value: client.cookies.get('gh_session'), url: srv.consoleUrl, httpOnly: true, sameSite: 'Lax' }]);
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  return { context, page };
}

// A signed-in account that has not onboarded yet.
async function newcomer(srv) {
  const c = new Client(srv.consoleUrl);
  await c.signIn(srv, uniq('newcomer'));
  return c;
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-terms-'));
  writeFileSync(join(dir, 'terms.txt'), TERMS);
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  for (const s of servers) await s.stop();
  rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(problems, []);
});

test('12. onboarding links to the operator\'s terms, shown as text by /terms', async () => {
  const srv = await server({ auth: { terms_file: join(dir, 'terms.txt'), terms_version: '2026-06-01' } });
  const api = await (await fetch(`${srv.consoleUrl}/auth/terms`)).json();
  assert.deepEqual(api, { type: 'terms', version: '2026-06-01', text: TERMS, provided: true });
  const { context, page } = await pageFor(srv, await newcomer(srv));
  try {
    await page.goto(`${srv.consoleUrl}/onboarding`);
    const link = page.getByRole('link', { name: 'Terms of Service' });
    assert.equal(await link.getAttribute('href'), '/terms');
    assert.equal(await link.getAttribute('target'), '_blank');
    for (const [size, name] of [[DESKTOP, 1280], [PHONE, 390]]) {
      await page.setViewportSize(size);
      await page.screenshot({ path: join(ARTIFACTS, `onboarding-terms-link-${name}.png`), fullPage: true });
    }
    await page.setViewportSize(DESKTOP);
    const [tab] = await Promise.all([context.waitForEvent('page'), link.click()]);
    await tab.getByRole('heading', { level: 1, name: 'Terms of Service' }).waitFor();
    const shown = tab.locator('.terms-text');
    await shown.getByText('Be kind to the API.').waitFor();
    assert.equal(await shown.textContent(), TERMS, 'the file, word for word');
    assert.equal(await shown.locator('b').count(), 0, 'never parsed as markup');
    await tab.getByText('Version 2026-06-01').waitFor();
    for (const [size, name] of [[DESKTOP, 1280], [PHONE, 390]]) {
      await tab.setViewportSize(size);
      await tab.screenshot({ path: join(ARTIFACTS, `terms-${name}.png`), fullPage: true });
    }
    // The form kept its place: the newcomer can still accept and continue.
    await page.getByLabel('Full name').fill('Ada Lovelace');
    await page.getByLabel('I confirm that I am at least 18 years old').check();
    await page.getByLabel(/I accept the Terms of Service/).check();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL(/\/create-organization$/);
  } finally {
    await context.close();
  }
});

test('12. without a terms file /terms says no terms were provided; terms_url links elsewhere', async () => {
  const plain = await server({});
  const r = await (await fetch(`${plain.consoleUrl}/auth/terms`)).json();
  assert.equal(r.provided, false);
  assert.match(r.text, /has not provided its Terms of Service yet/);
  assert.match(r.text, /\[auth\] terms_file/);
  const { context, page } = await pageFor(plain, await newcomer(plain));
  try {
    await page.goto(`${plain.consoleUrl}/terms`);
    await page.getByText(/has not provided its Terms of Service yet/).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'terms-placeholder-1280.png'), fullPage: true });
  } finally {
    await context.close();
  }

  const own = await server({ auth: { terms_url: 'https://legal.example.com/terms' } });
  assert.equal((await (await fetch(`${own.consoleUrl}/auth/config`)).json()).terms_url, 'https://legal.example.com/terms');
  const o = await pageFor(own, await newcomer(own));
  try {
    await o.page.goto(`${own.consoleUrl}/onboarding`);
    const link = o.page.getByRole('link', { name: 'Terms of Service' });
    await link.waitFor();
    // The href is set once /auth/config answers.
    await o.page.waitForFunction(() => document.querySelector('a[target="_blank"]').getAttribute('href') === 'https://legal.example.com/terms');
    assert.equal(await link.getAttribute('href'), 'https://legal.example.com/terms');
  } finally {
    await o.context.close();
  }
});

test('13. the dashboard: Copy copies the code sample; the model list shows prices per million tokens', async () => {
  const srv = await server({
    'model pricey': { style: 'mock', price_input: 3, price_output: 15, price_cache_write: 3.75, price_cache_read: 0.3 },
    'model cheap': { style: 'mock', price_input: 0.25, price_output: 1.25 },
  });
  const c = new Client(srv.consoleUrl);
  await c.signUpWithOrg(srv, uniq('prices'), 'Acme');
  const cfg = (await c.get('/auth/config')).body;
  assert.deepEqual(cfg.models.map((m) => [m.id, m.price_per_mtok_usd]), [
    ['pricey', { input: '3.00', output: '15.00', cache_write: '3.75', cache_read: '0.30' }],
    ['cheap', { input: '0.25', output: '1.25', cache_write: '0.00', cache_read: '0.00' }],
  ]);
  const { context, page } = await pageFor(srv, c, DESKTOP, ['clipboard-read', 'clipboard-write']);
  try {
    await page.goto(`${srv.consoleUrl}/dashboard`);
    const table = page.getByRole('table', { name: 'Models and prices' });
    const cells = (id) => table.locator(`tr[data-model="${id}"] td`).allInnerTexts();
    await table.locator('tr[data-model="pricey"]').waitFor();
    assert.deepEqual((await cells('pricey')).slice(1), ['$3.00', '$15.00', '$3.75', '$0.30']);
    assert.deepEqual((await cells('cheap')).slice(1), ['$0.25', '$1.25', '$0.00', '$0.00']);
    await page.getByText('Prices in US dollars per million tokens.').waitFor();

    for (const tab of ['curl', 'Python', 'TypeScript', 'OpenAI SDK']) {
      await page.getByRole('tab', { name: tab }).click();
      const code = await page.locator('.code-pre code').textContent();
      await page.getByRole('button', { name: 'Copy example code' }).click();
      await page.getByRole('button', { name: 'Copy example code' }).getByText('Copied').waitFor();
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), code, `${tab}: the clipboard holds the sample`);
    }
    for (const [size, name] of [[DESKTOP, 1280], [PHONE, 390]]) {
      await page.setViewportSize(size);
      await page.screenshot({ path: join(ARTIFACTS, `dashboard-prices-${name}.png`), fullPage: true });
    }
  } finally {
    await context.close();
  }
});

test('13. every page links to its own section of the help page', async () => {
  const srv = await server({});
  const c = new Client(srv.consoleUrl);
  await c.signUpWithOrg(srv, uniq('help'), 'Acme');
  const ws = (await c.post('/v1/organizations/workspaces', { name: 'Research' })).body;
  const { context, page } = await pageFor(srv, c);
  try {
    await page.goto(`${srv.consoleUrl}/help`);
    await page.getByRole('heading', { level: 1, name: 'Help' }).waitFor();
    const ids = await page.locator('section.help-section').evaluateAll((els) => els.map((e) => e.id));
    const pages = [['/dashboard', 'dashboard'], ['/workbench', 'workbench'], ['/settings/organization', 'organization'],
      ['/settings/members', 'members'], ['/settings/workspaces', 'workspaces'], [`/settings/workspaces/${ws.id}`, 'workspaces'],
      ['/settings/keys', 'api-keys'], ['/settings/billing', 'billing'], ['/settings/limits', 'limits'],
      ['/settings/usage', 'usage'], ['/settings/cost', 'cost'], ['/settings/audit-log', 'audit-log']];
    for (const [path, id] of pages) {
      await page.goto(`${srv.consoleUrl}${path}`);
      const link = page.locator('header.page-header a.help-link');
      await link.waitFor().catch((e) => { throw new Error(`${path}: ${e.message}`); });
      assert.equal(await link.getAttribute('href'), `/help#${id}`, path);
      assert.ok(ids.includes(id), `the help page has a section "${id}"`);
    }
    // Followed from API Keys, the link lands on that section, in view.
    await page.goto(`${srv.consoleUrl}/settings/keys`);
    await page.locator('header.page-header a.help-link').click();
    await page.waitForURL(`${srv.consoleUrl}/help#api-keys`);
    const section = page.locator('#api-keys');
    await section.getByRole('heading', { name: 'API Keys' }).waitFor();
    const box = await section.boundingBox();
    assert.ok(box.y >= 0 && box.y < DESKTOP.height / 2, `the section is at the top of the window (y=${box.y})`);
    await page.screenshot({ path: join(ARTIFACTS, 'help-1280.png') });
    await page.setViewportSize(PHONE);
    await page.goto(`${srv.consoleUrl}/settings/limits`);
    await page.screenshot({ path: join(ARTIFACTS, 'limits-help-link-390.png') });
    await page.goto(`${srv.consoleUrl}/help#limits`);
    await page.locator('#limits').getByRole('heading', { name: 'Limits' }).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'help-390.png') });
  } finally {
    await context.close();
  }
});
