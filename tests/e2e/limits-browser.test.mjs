// Limits and the staff queue in a real browser: an admin sees the tier, its rate limits and
// this month's spend, sets a monthly limit (one above the tier's cap is refused with the
// server's message), changes and removes it ("Change Limit" / "Remove Limit"), gives a
// workspace a lower limit and asks for a limit increase; a staff member approves it at /staff
// with custom limits, and the admin's page shows them. Someone who is not staff is told /staff
// is not theirs. Drives Debian's chromium with playwright-core; screenshots limits.png and
// staff.png land in tests/e2e/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { gatehouse } from './lib/billing.mjs';
import { LIMITS_CONFIG, call, grant, limits, orgWithKey, until } from './lib/limits.mjs';

const ARTIFACTS = join(import.meta.dirname, 'artifacts');
const WEB_DIR = process.env.GATEHOUSE_WEB_DIR;
const DESKTOP = { width: 1280, height: 900 };
const STAMP = `${Date.now()}`;

let server;
let browser;
let org;   // {admin (API client), key, orgId, email}
let staffApi;
let adminPage, staffPage;
const problems = [];

function withWebDir(config) {
  return WEB_DIR ? { ...config, server: { ...(config.server ?? {}), web_dir: WEB_DIR } } : config;
}

function watch(p, who) {
  p.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    // Refusals provoked on purpose are logged by chromium as failed loads.
    if (/^Failed to load resource: the server responded with a status of 400\b/.test(msg.text())) return;
    problems.push(`${who} console: ${msg.text()}`);
  });
  p.on('pageerror', (e) => problems.push(`${who} page error: ${e.message}`));
}

async function signedInPage(client, who) {
  const context = await browser.newContext({ viewport: DESKTOP });
  await context.addCookies([{ name: 'gh_session', value: client.cookies.get('gh_session'), url: server.consoleUrl, httpOnly: true, sameSite: 'Lax' }]);
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  watch(page, who);
  return page;
}

const url = (path) => server.consoleUrl + path;
const heading = (p, name) => p.getByRole('heading', { level: 1, name, exact: true });
const region = (p, name) => p.getByRole('region', { name });
const shot = async (p, name) => {
  await p.evaluate(() => { document.getElementById('toasts')?.replaceChildren(); window.scrollTo(0, 0); });
  await p.screenshot({ path: join(ARTIFACTS, name), fullPage: true, animations: 'disabled' });
};

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startServer({ config: withWebDir(LIMITS_CONFIG) });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  org = await orgWithKey(server, 'Acme Analytics');
  await grant(server, org.admin, org.orgId, '9.00');
  for (let i = 0; i < 3; i++) {
    const r = await call(server, org.key, { model: 'dime', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 200, r.text);
  }
  staffApi = new Client(server.consoleUrl);
  const staffEmail = `grace.${STAMP}@example.com`;
  await staffApi.signUpWithOrg(server, staffEmail, 'Platform team', 'Grace Hopper');
  assert.equal(gatehouse(server, 'staff', 'add', staffEmail).status, 0);
  adminPage = await signedInPage(org.admin, 'admin');
  staffPage = await signedInPage(staffApi, 'staff');
});

after(async () => {
  await browser?.close();
  await server?.stop();
  assert.deepEqual(problems, []);
});

test('the Limits page shows the tier, its rate limits and this month\'s spend', async () => {
  const p = adminPage;
  await p.goto(url('/dashboard'));
  const link = p.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: /^Limits\b/ });
  assert.equal(await link.locator('.nav-soon').count(), 0, 'Limits is no longer "Soon"');
  // The admin is not staff: no Staff link.
  assert.equal(await p.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: /^Staff\b/ }).count(), 0);
  await link.click();
  await p.waitForURL(url('/settings/limits'));
  await heading(p, 'Limits').waitFor();
  assert.equal(await p.locator('#limits-tier-name').innerText(), 'Evaluation');
  const table = p.getByRole('table', { name: 'Rate limits per model class' });
  await table.getByRole('cell', { name: 'small', exact: true }).waitFor();
  await table.getByRole('cell', { name: 'large', exact: true }).waitFor();
  assert.match(await table.innerText(), /100,000/);
  assert.match(await p.locator('#limits-spend-limit').innerText(), /No limit set — your tier’s cap of \$10\.00 applies/);
  assert.match(await p.locator('#limits-month-to-date').innerText(), /^\$0\.30 of \$10\.00 used this month$/);
  assert.match(await p.locator('#limits-next-tier').innerText(), /Tier 1: buy \$5\.00 more in credits/);
});

test('set, change and remove the monthly limit; one above the cap is refused', async () => {
  const p = adminPage;
  await p.locator('#change-limit').click();
  let dialog = p.getByRole('dialog', { name: 'Set a monthly limit' });
  await dialog.waitFor();
  const amount = dialog.getByLabel('Monthly limit (USD)');
  await amount.fill('12');
  await dialog.getByRole('button', { name: 'Update Limit' }).click();
  await dialog.getByRole('alert').getByText(/must not exceed your tier's monthly cap of \$10\.00/).waitFor();
  assert.equal((await limits(org.admin)).monthly_spend_limit_usd, null);
  await amount.fill('5');
  await dialog.getByRole('button', { name: 'Update Limit' }).click();
  await dialog.waitFor({ state: 'detached' });
  await p.locator('#limits-spend-limit').getByText('$5.00').waitFor();
  assert.equal((await limits(org.admin)).monthly_spend_limit_usd, '5.00');
  assert.match(await p.locator('#limits-month-to-date').innerText(), /of \$5\.00 used this month/);

  // Change Limit → Remove Limit.
  await p.getByRole('button', { name: 'Change Limit' }).click();
  dialog = p.getByRole('dialog', { name: 'Change monthly limit' });
  assert.equal(await dialog.getByLabel('Monthly limit (USD)').inputValue(), '5.00');
  await dialog.getByRole('button', { name: 'Remove Limit' }).click();
  // Removing asks first (console-finish-browser.test.mjs covers Cancel).
  const confirm = p.getByRole('alertdialog', { name: 'Remove the monthly limit?' });
  await confirm.getByRole('button', { name: 'Remove Limit' }).click();
  await dialog.waitFor({ state: 'detached' });
  await p.locator('#limits-spend-limit').getByText('No limit set').waitFor();
  assert.equal((await limits(org.admin)).monthly_spend_limit_usd, null);

  // Set again (so the screenshot shows one), and a workspace limit.
  await p.getByRole('button', { name: 'Set Limit' }).click();
  dialog = p.getByRole('dialog', { name: 'Set a monthly limit' });
  await dialog.getByLabel('Monthly limit (USD)').fill('8.50');
  await dialog.getByRole('button', { name: 'Update Limit' }).click();
  await dialog.waitFor({ state: 'detached' });
  await p.getByRole('button', { name: 'Edit limits of Default' }).click();
  dialog = p.getByRole('dialog', { name: 'Limits of Default' });
  await dialog.getByLabel('Monthly spend limit (USD)').fill('4');
  await dialog.getByLabel('Requests per minute').fill('600');
  await dialog.getByRole('button', { name: 'Save limits' }).click();
  await dialog.waitFor({ state: 'detached' });
  const row = p.getByRole('table', { name: 'Workspace limits' }).getByRole('row').filter({ hasText: 'Default' });
  await row.getByText('$4.00').waitFor();
  await row.getByText('600').waitFor();
  const l = await limits(org.admin);
  assert.equal(l.workspaces[0].monthly_spend_limit_usd, '4.00');
  assert.equal(l.workspaces[0].requests_per_minute, 600);
});

test('request an increase', async () => {
  const p = adminPage;
  await p.locator('#request-increase').click();
  const dialog = p.getByRole('dialog', { name: 'Request a limit increase' });
  await dialog.waitFor();
  assert.equal(await dialog.getByRole('radio', { name: 'A higher tier' }).isChecked(), true);
  // The reason is required.
  await dialog.getByRole('button', { name: 'Send request' }).click();
  await dialog.getByText('Say why you need higher limits.').waitFor();
  await dialog.getByLabel('Tier', { exact: true }).selectOption('tier_2');
  await dialog.getByLabel('Why do you need more?').fill('We launch our support assistant next week.');
  await dialog.getByRole('button', { name: 'Send request' }).click();
  await dialog.waitFor({ state: 'detached' });
  const table = p.getByRole('table', { name: 'Limit increase requests' });
  await table.getByText('We launch our support assistant next week.').waitFor();
  await table.getByText('Pending').waitFor();
  await p.getByText('Your request for higher limits is waiting for review.').waitFor();
  assert.equal(await p.locator('#request-increase').count(), 0, 'one request at a time');
  await shot(p, 'limits.png');
});

test('staff approve the request at /staff with custom limits; the admin sees them', async () => {
  const p = staffPage;
  await p.goto(url('/dashboard'));
  const link = p.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: /^Staff\b/ });
  await link.click();
  await p.waitForURL(url('/staff'));
  await heading(p, 'Staff').waitFor();
  const queue = p.getByRole('table', { name: 'Pending requests' });
  await queue.getByText('Acme Analytics').waitFor();
  await queue.getByText('Tier 2', { exact: true }).waitFor();
  await p.getByRole('table', { name: 'Organizations' }).getByText('Acme Analytics').waitFor();
  await shot(p, 'staff.png');

  await p.getByRole('button', { name: 'Approve the request of Acme Analytics' }).click();
  const dialog = p.getByRole('dialog', { name: 'Approve the request of Acme Analytics' });
  await dialog.waitFor();
  assert.equal(await dialog.getByLabel('Tier', { exact: true }).inputValue(), 'tier_2');
  await dialog.getByLabel('Tier', { exact: true }).selectOption('custom');
  await dialog.getByLabel('Monthly spend cap (USD)').fill('2500');
  await dialog.getByLabel('Requests per minute').fill('7');
  await dialog.getByLabel('Note to the organization').fill('Approved with a custom plan for your launch.');
  await dialog.getByRole('button', { name: 'Approve' }).click();
  await dialog.waitFor({ state: 'detached' });
  await p.getByText('No requests are waiting.').waitFor();
  await p.getByRole('table', { name: 'Recent decisions' }).getByText('Approved with a custom plan for your launch.').waitFor();

  // Live for the organization: its limits and its next model request.
  const l = await limits(org.admin);
  assert.equal(l.tier, 'custom');
  assert.equal(l.rate_limits[0].requests_per_minute, 7);
  const m = await call(server, org.key, { model: 'gatehouse-mock-small', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(m.headers.get('anthropic-ratelimit-requests-limit'), '7');
  await until(() => server.outbox().some((x) => x.subject === 'Your limit increase request was approved'), 'the mail');

  // The admin's page shows the new tier and the answer.
  const a = adminPage;
  await a.reload();
  await heading(a, 'Limits').waitFor();
  assert.equal(await a.locator('#limits-tier-name').innerText(), 'Custom');
  assert.match(await a.getByRole('table', { name: 'Rate limits per model class' }).innerText(), /\b7\b/);
  const table = a.getByRole('table', { name: 'Limit increase requests' });
  await table.getByText('Approved', { exact: true }).waitFor();
  await table.getByText('Approved with a custom plan for your launch.').waitFor();
  await a.getByText('Your tier was set by the platform team.').waitFor();
});

test('a staff account with no organization of its own goes straight to /staff', async () => {
  const email = `ops.${STAMP}@example.com`;
  const ops = new Client(server.consoleUrl);
  await ops.signIn(server, email);
  const o = await ops.post('/auth/onboarding', { full_name: 'Ops Person', confirmed_age_18: true, accepted_terms: true });
  assert.equal(o.status, 200, JSON.stringify(o.body));
  assert.equal(gatehouse(server, 'staff', 'add', email).status, 0);
  const p = await signedInPage(ops, 'ops');
  await p.goto(url('/staff'));
  await heading(p, 'Staff').waitFor();
  await p.getByRole('heading', { name: 'Pending requests' }).waitFor();
  assert.equal(new URL(p.url()).pathname, '/staff');
  // Anywhere else, an account without an organization is still asked to create one.
  await p.goto(url('/dashboard'));
  await p.waitForURL(url('/create-organization'));
  await p.context().close();
});

test('someone who is not staff is told /staff is not for them', async () => {
  const p = adminPage;
  await p.goto(url('/staff'));
  await heading(p, 'Staff').waitFor();
  await p.getByRole('heading', { name: 'This page is for the platform team' }).waitFor();
});
