// Spend notifications on the Limits page in a real browser (issue 16, point 10): an admin sees
// the empty state, adds notifications (a wrong amount is explained next to the field, the
// server's refusal of a duplicate is shown in the dialog), sees one marked "Sent" after real
// calls cross it, and removes one after a confirmation (cancelling keeps it). A billing
// member sees the card; a developer does not. Screenshots notify-limits.png (1280×800) and
// notify-limits-mobile.png and notify-dialog-mobile.png (390×844) land in tests/e2e/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from './lib/server.mjs';
import { addMember } from './lib/expect.mjs';
import { LIMITS_CONFIG, call, grant, orgWithKey, until } from './lib/limits.mjs';

const ARTIFACTS = join(import.meta.dirname, 'artifacts');
const WEB_DIR = process.env.GATEHOUSE_WEB_DIR;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

let server, browser, org;
const problems = [];

function withWebDir(config) {
  return WEB_DIR ? { ...config, server: { ...(config.server ?? {}), web_dir: WEB_DIR } } : config;
}

async function signedInPage(client, who, viewport = DESKTOP) {
  const context = await browser.newContext({ viewport });
  await context.addCookies([{ name: 'gh_session', value: client.cookies.get('gh_session'), url: server.consoleUrl, httpOnly: true, sameSite: 'Lax' }]);
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    // Refusals provoked on purpose are logged by chromium as failed loads.
    if (/^Failed to load resource: the server responded with a status of (400|409)\b/.test(msg.text())) return;
    problems.push(`${who} console: ${msg.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${who} page error: ${e.message}`));
  return page;
}

const url = (path) => server.consoleUrl + path;
const card = (p) => p.getByRole('region', { name: 'Spend notifications' });
const shot = async (p, name) => {
  await p.evaluate(() => { document.getElementById('toasts')?.replaceChildren(); });
  await card(p).scrollIntoViewIfNeeded();
  await p.screenshot({ path: join(ARTIFACTS, name), animations: 'disabled' });
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
});

after(async () => {
  await browser?.close();
  await server?.stop();
  assert.deepEqual(problems, []);
});

test('add, see sent, and remove spend notifications on the Limits page', async () => {
  const p = await signedInPage(org.admin, 'admin');
  await p.goto(url('/settings/limits'));
  const c = card(p);
  await c.getByText('No spend notifications yet.').waitFor();
  await shot(p, 'notify-empty.png');

  // A wrong amount is explained next to the field; nothing is added.
  await c.getByRole('button', { name: 'Add Notification' }).click();
  let dlg = p.getByRole('dialog', { name: 'Add a spend notification' });
  await dlg.getByLabel('Amount (USD)').fill('0');
  await dlg.getByRole('button', { name: 'Add Notification' }).click();
  await dlg.getByText('Enter an amount above $0.').waitFor();
  await dlg.getByLabel('Amount (USD)').fill('0.20');
  await dlg.getByRole('button', { name: 'Add Notification' }).click();
  await dlg.waitFor({ state: 'detached' });
  const table = c.getByRole('table', { name: 'Spend notifications' });
  await table.getByText('Spend reaches $0.20').waitFor();

  // A percentage: out of range is explained; 80% of the tier's $10.00 cap is accepted.
  await c.getByRole('button', { name: 'Add Notification' }).click();
  dlg = p.getByRole('dialog', { name: 'Add a spend notification' });
  await dlg.getByLabel('Notify when').selectOption('spend_percent');
  assert.equal(await dlg.getByLabel('Amount (USD)').isVisible(), false);
  await dlg.getByLabel('Percentage of the monthly limit').fill('120');
  await dlg.getByRole('button', { name: 'Add Notification' }).click();
  await dlg.getByText('Enter the percentage as a whole number from 1 to 100.').waitFor();
  await dlg.getByLabel('Percentage of the monthly limit').fill('80');
  await dlg.getByRole('button', { name: 'Add Notification' }).click();
  await dlg.waitFor({ state: 'detached' });
  await table.getByText('Spend reaches 80% of the monthly limit ($10.00)').waitFor();

  // A low balance, and a duplicate refused by the server with its sentence in the dialog.
  await c.getByRole('button', { name: 'Add Notification' }).click();
  dlg = p.getByRole('dialog', { name: 'Add a spend notification' });
  await dlg.getByLabel('Notify when').selectOption('balance_below');
  await dlg.getByLabel('Amount (USD)').fill('2');
  await dlg.getByRole('button', { name: 'Add Notification' }).click();
  await dlg.waitFor({ state: 'detached' });
  await table.getByText('Credit balance falls below $2.00').waitFor();
  await c.getByRole('button', { name: 'Add Notification' }).click();
  dlg = p.getByRole('dialog', { name: 'Add a spend notification' });
  await dlg.getByLabel('Amount (USD)').fill('0.2');
  await dlg.getByRole('button', { name: 'Add Notification' }).click();
  await dlg.getByText('There is already a notification for the monthly spend of $0.20.').waitFor();
  await dlg.getByRole('button', { name: 'Cancel' }).click();
  await dlg.waitFor({ state: 'detached' });
  assert.equal(await table.getByRole('row').count(), 4, 'a header and three notifications');

  // Real calls cross $0.20: after a reload the row says "Sent".
  for (let i = 0; i < 3; i++) {
    const r = await call(server, org.key, { model: 'dime', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 200, r.text);
  }
  await until(async () => {
    const r = await org.admin.get('/v1/organizations/limits/notifications');
    return r.body.data.some((n) => n.kind === 'spend_amount' && n.notified_at);
  }, 'the $0.20 notification to be sent');
  await p.reload();
  const row = table.getByRole('row').filter({ hasText: 'Spend reaches $0.20' });
  await row.getByText('Sent').waitFor();
  assert.match(await table.getByRole('row').filter({ hasText: '80%' }).innerText(), /Not yet/);
  await shot(p, 'notify-limits.png');

  // Remove asks first: Cancel keeps it, Remove Notification removes it.
  await row.getByRole('button', { name: 'Remove: Spend reaches $0.20' }).click();
  let confirm = p.getByRole('alertdialog', { name: 'Remove this notification?' });
  await confirm.getByText('Nobody will be emailed when the month’s spend reaches $0.20.').waitFor();
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await confirm.waitFor({ state: 'detached' });
  assert.equal(await row.count(), 1);
  await row.getByRole('button', { name: 'Remove: Spend reaches $0.20' }).click();
  confirm = p.getByRole('alertdialog', { name: 'Remove this notification?' });
  await confirm.getByRole('button', { name: 'Remove Notification' }).click();
  await confirm.waitFor({ state: 'detached' });
  await row.waitFor({ state: 'detached' });
  assert.equal((await org.admin.get('/v1/organizations/limits/notifications')).body.data.length, 2);
  await p.context().close();
});

test('on a phone, for a billing member; a developer does not see the card', async () => {
  const billing = await addMember(server, org.admin, 'billing');
  const p = await signedInPage(billing.client, 'billing', PHONE);
  await p.goto(url('/settings/limits'));
  await card(p).getByRole('table', { name: 'Spend notifications' }).getByText('Credit balance falls below $2.00').waitFor();
  // Nothing of the card sticks out of the screen (a long email address wraps).
  const wide = await p.evaluate(() => [...document.querySelectorAll('#notifications-card, #notifications-card *')]
    .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
    .map((e) => `${e.tagName}.${e.className}`));
  assert.deepEqual(wide, [], 'nothing of the card sticks out of the screen');
  assert.ok(await p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no sideways scrolling');
  await card(p).getByRole('button', { name: 'Add Notification' }).waitFor();
  await shot(p, 'notify-limits-mobile.png');
  // The dialog on a phone, with the percentage's hint naming the limit.
  await card(p).getByRole('button', { name: 'Add Notification' }).click();
  const dlg = p.getByRole('dialog', { name: 'Add a spend notification' });
  await dlg.getByLabel('Notify when').selectOption('spend_percent');
  await dlg.getByText('A whole number from 1 to 100. The monthly limit is $10.00 now.').waitFor();
  await p.screenshot({ path: join(ARTIFACTS, 'notify-dialog-mobile.png'), animations: 'disabled' });
  await dlg.getByRole('button', { name: 'Cancel' }).click();
  await dlg.waitFor({ state: 'detached' });
  await p.context().close();

  const dev = await addMember(server, org.admin, 'developer');
  const d = await signedInPage(dev.client, 'developer');
  await d.goto(url('/settings/limits'));
  await d.getByRole('region', { name: 'Monthly spend limit' }).waitFor();
  assert.equal(await card(d).count(), 0);
  await d.context().close();
});
