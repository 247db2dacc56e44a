// Plans & Billing in a real browser, with the built-in test payment provider: an admin adds
// the test card 4242…, answers the first-purchase questions and buys $10 of credits (the
// balance updates without a reload, the invoice appears and its PDF downloads), a double
// click buys once, auto-reload is validated and saved, a declined card shows the card
// network's message and changes nothing, and a developer is told why billing is not theirs
// to see. Drives Debian's chromium with playwright-core.
//
// Screenshots land in tests/e2e/artifacts/ (git-ignored). The server serves the console
// embedded in its binary; set GATEHOUSE_WEB_DIR=/abs/path/to/web to serve web/ from disk
// instead while working on the pages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { openInvite } from './lib/expect.mjs';

const ARTIFACTS = join(import.meta.dirname, 'artifacts');
const WEB_DIR = process.env.GATEHOUSE_WEB_DIR;
const STAMP = `${Date.now()}`;
const ADMIN_EMAIL = `ada.${STAMP}@example.com`;
const DEV_EMAIL = `linus.${STAMP}@example.com`;
const ORG = 'Acme Analytics';
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };
const BILLING = '/v1/organizations/billing';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let server;
let browser;
let api; // the admin's session, for checking what the server holds
let admin; // {context, page}
const problems = [];

function withWebDir(config = {}) {
  return WEB_DIR ? { ...config, server: { ...(config.server ?? {}), web_dir: WEB_DIR } } : config;
}

function launch() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

function watch(p, who) {
  p.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    // The decline (402) is provoked on purpose and logged by chromium as a failed load.
    if (/^Failed to load resource: the server responded with a status of 402\b/.test(text)) return;
    problems.push(`${who} console: ${text}`);
  });
  p.on('pageerror', (e) => problems.push(`${who} page error: ${e.message}`));
  p.on('requestfailed', (r) => {
    if (r.failure()?.errorText === 'net::ERR_ABORTED') return; // navigation away mid-request, downloads
    problems.push(`${who} request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`);
  });
}

const url = (path) => server.consoleUrl + path;
// Full-page shots start from the top; toasts left from earlier steps are cleared first.
const shot = async (p, name, { fullPage = true } = {}) => {
  await p.evaluate((top) => {
    document.getElementById('toasts')?.replaceChildren();
    if (top) window.scrollTo(0, 0);
  }, fullPage);
  await p.screenshot({ path: join(ARTIFACTS, name), fullPage, animations: 'disabled' });
};
const heading = (p, name) => p.getByRole('heading', { level: 1, name, exact: true });
const region = (p, name) => p.getByRole('region', { name, exact: true });
const balanceText = (p) => p.locator('#billing-balance').innerText();
const isPost = (path) => (r) => r.url().endsWith(path) && r.request().method() === 'POST';

async function billing() {
  const r = await api.get(BILLING);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}
async function invoices() {
  const r = await api.get('/v1/organizations/invoices?limit=100');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.data;
}

async function signedInPage(client, who) {
  const context = await browser.newContext({ viewport: DESKTOP, acceptDownloads: true });
  await context.addCookies([{ name: 'gh_session', value: client.cookies.get('gh_session'), url: server.consoleUrl, httpOnly: true, sameSite: 'Lax' }]);
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  watch(page, who);
  return { context, page };
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startServer({ config: withWebDir() });
  browser = await launch();
  // Sign-up itself is covered by browser.test.mjs: the admin signs up through the API and
  // the browser gets the same session cookie.
  api = new Client(server.consoleUrl);
  await api.signUpWithOrg(server, ADMIN_EMAIL, ORG, 'Ada Lovelace');
  admin = await signedInPage(api, 'admin');
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('Plans & Billing starts at $0.00 in test mode, with setup to complete and no invoices', async () => {
  const { page } = admin;
  await page.goto(url('/dashboard'));
  const link = page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: /^Billing\b/ });
  assert.equal(await link.locator('.nav-soon').count(), 0, 'Billing is no longer "Soon"');
  await link.click();
  await page.waitForURL(url('/settings/billing'));
  await heading(page, 'Plans & Billing').waitFor();
  assert.match(await page.title(), /^Plans & Billing · /);

  const balance = region(page, 'Credit balance');
  await balance.getByText('$0.00', { exact: true }).waitFor();
  await balance.getByText('Test mode').waitFor();
  await balance.getByRole('button', { name: 'Add funds' }).waitFor();
  await region(page, 'Complete setup').getByRole('button', { name: 'Complete setup' }).waitFor();
  await region(page, 'Payment method').getByText('No payment method yet.').waitFor();
  await region(page, /^Auto-reload/).getByText('Off', { exact: true }).waitFor();
  await region(page, 'Credit lots').getByText('Purchased credits expire one year after purchase.').waitFor();
  await region(page, 'Invoice history').getByRole('heading', { name: 'No invoices yet' }).waitFor();
});

test('Add payment method: the test cards are listed, the number is spaced, bad input is caught first', async () => {
  const { page } = admin;
  await region(page, 'Payment method').getByRole('button', { name: 'Add payment method' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add payment method' });
  for (const number of ['4242 4242 4242 4242', '4000 0000 0000 0002', '4000 0000 0000 0341', '4000 0000 0000 9995']) {
    await dialog.getByText(number, { exact: true }).waitFor();
  }
  const number = dialog.getByLabel('Card number');
  assert.equal(await number.evaluate((el) => el === document.activeElement), true, 'the number field has focus');

  // Nothing typed: explained per field, nothing sent.
  let sent = 0;
  const count = (r) => { if (r.url().endsWith(`${BILLING}/payment_method`)) sent++; };
  page.on('request', count);
  await dialog.getByRole('button', { name: 'Add card' }).click();
  await dialog.getByText('Enter the card number.').waitFor();
  await dialog.getByText('Enter the expiration date.').waitFor();
  await dialog.getByText('Enter the security code.').waitFor();
  await number.pressSequentially('4242424242424241');
  await dialog.getByLabel('Expiration date').pressSequentially('1230');
  await dialog.getByLabel('Security code (CVC)').fill('123');
  await dialog.getByRole('button', { name: 'Add card' }).click();
  await dialog.getByText('This card number is not valid. Check it for typos.').waitFor();
  assert.equal(await number.getAttribute('aria-invalid'), 'true');
  page.off('request', count);
  assert.equal(sent, 0, 'client-side checks send nothing');

  await number.fill('');
  await number.pressSequentially('4242424242424242');
  assert.equal(await number.inputValue(), '4242 4242 4242 4242', 'typed digits are grouped by four');
  assert.equal(await dialog.getByLabel('Expiration date').inputValue(), '12 / 30');
  const saved = page.waitForResponse(isPost(`${BILLING}/payment_method`));
  await dialog.getByRole('button', { name: 'Add card' }).click();
  const res = await saved;
  assert.equal(res.status(), 200);
  assert.ok(res.request().headers()['x-csrf-token'], 'sent with the CSRF header');
  assert.deepEqual(JSON.parse(res.request().postData()), { number: '4242424242424242', exp_month: 12, exp_year: 2030, cvc: '123' });
  await dialog.waitFor({ state: 'detached' });

  const card = region(page, 'Payment method');
  await card.getByText('Visa', { exact: true }).waitFor();
  await card.getByText('4242', { exact: true }).waitFor();
  await card.getByText(/Expires 12\/2030/).waitFor();
  await card.getByText('Adding a new card replaces this one.').waitFor();
  const pm = (await billing()).payment_method;
  assert.equal(pm.last4, '4242');
});

test('Add funds: the first-purchase questions, then $10 — the balance updates at once', async () => {
  const { page } = admin;
  // A marker that a reload would wipe: the balance must change without one.
  await page.evaluate(() => { window.__sameDocument = true; });
  await region(page, 'Credit balance').getByRole('button', { name: 'Add funds' }).click();

  const questions = page.getByRole('dialog', { name: 'Before your first purchase' });
  await questions.getByText('Step 1 of 2').waitFor();
  await questions.getByRole('button', { name: 'Continue' }).click();
  await questions.getByText('Select what you will use the API for.').waitFor();
  await questions.getByText('Select at least one country.').waitFor();
  await questions.getByText('Answer yes or no.').waitFor();

  await questions.getByLabel('What will you use the API for?').selectOption('Building a product or service for my customers');
  await questions.getByLabel('Describe your use').fill('A support assistant for our online store.');
  await questions.getByLabel('Search countries').fill('ital');
  await questions.getByLabel('Italy', { exact: true }).check();
  await questions.getByLabel('Search countries').fill('united states');
  await questions.getByLabel('United States', { exact: true }).check();
  await questions.getByRole('list', { name: 'Selected countries' }).getByText('Italy').waitFor();
  await questions.getByLabel('Yes', { exact: true }).check();
  await questions.getByRole('button', { name: 'Continue' }).click();
  await questions.getByText('Select the regulated industries, or answer No.').waitFor();
  await questions.getByLabel('No', { exact: true }).check();
  const answered = page.waitForResponse(isPost(`${BILLING}/profile`));
  await questions.getByRole('button', { name: 'Continue' }).click();
  const profile = await answered;
  assert.equal(profile.status(), 200);
  assert.deepEqual(JSON.parse(profile.request().postData()), {
    intended_use: 'Building a product or service for my customers: A support assistant for our online store.',
    countries: ['IT', 'US'],
    regulated_industries: [],
  });

  const dialog = page.getByRole('dialog', { name: 'Add funds' });
  await dialog.getByText('Step 2 of 2').waitFor();
  await dialog.getByText('Your first purchase must be at least $5.00').waitFor();
  const amount = dialog.getByLabel('Amount (USD)');
  assert.equal(await amount.evaluate((el) => el === document.activeElement), true, 'the amount field has focus');
  await dialog.getByText('Visa', { exact: true }).waitFor(); // the card it is charged to
  await amount.fill('2');
  await dialog.getByRole('button', { name: 'Buy credits' }).click();
  await dialog.getByText('Your first purchase must be at least $5.00.').waitFor();
  await amount.fill('10');
  await shot(page, 'billing-add-funds.png', { fullPage: false });

  const bought = page.waitForResponse(isPost(`${BILLING}/purchases`));
  await dialog.getByRole('button', { name: 'Buy credits' }).click();
  const res = await bought;
  assert.equal(res.status(), 200);
  assert.match(res.request().headers()['idempotency-key'] ?? '', UUID);
  assert.deepEqual(JSON.parse(res.request().postData()), { amount_usd: '10.00' });
  await dialog.waitFor({ state: 'detached' });

  await page.locator('#billing-balance').filter({ hasText: '$10.00' }).waitFor();
  assert.equal(await balanceText(page), '$10.00');
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no page reload');
  await page.locator('.toast').filter({ hasText: 'Added $10.00 to your credit balance' }).waitFor();
  assert.equal((await billing()).balance_usd.replace(/0+$/, '').replace(/\.$/, ''), '10');

  // The purchase shows up as a credit lot and an invoice; setup is complete.
  const lots = page.getByRole('table', { name: 'Credit lots' });
  await lots.getByRole('row').filter({ hasText: 'Purchase' }).filter({ hasText: '$10.00' }).waitFor();
  const [invoice] = await invoices();
  assert.ok(invoice, 'an invoice was issued');
  const row = page.getByRole('table', { name: 'Invoices' }).getByRole('row').filter({ hasText: invoice.number });
  await row.waitFor();
  await row.getByText('$10.00').waitFor();
  await row.getByText('Paid').waitFor();
  await region(page, 'Complete setup').waitFor({ state: 'detached' });
});

test('the invoice PDF downloads from Invoice history', async () => {
  const { page } = admin;
  const [invoice] = await invoices();
  const link = page.getByRole('table', { name: 'Invoices' }).getByRole('link', { name: `Download PDF of invoice ${invoice.number}` });
  const downloading = page.waitForEvent('download');
  await link.click();
  const download = await downloading;
  assert.equal(download.suggestedFilename(), `${invoice.number}.pdf`);
  const bytes = readFileSync(await download.path());
  assert.equal(bytes.subarray(0, 5).toString('latin1'), '%PDF-');
});

test('a double click on "Buy credits" buys once', async () => {
  const { page } = admin;
  let posted = 0;
  const count = (r) => { if (r.url().endsWith(`${BILLING}/purchases`) && r.method() === 'POST') posted++; };
  page.on('request', count);
  await region(page, 'Credit balance').getByRole('button', { name: 'Add funds' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add funds' });
  await dialog.getByText('Minimum $5.00').waitFor();
  await dialog.getByRole('button', { name: '$25' }).click();
  assert.equal(await dialog.getByLabel('Amount (USD)').inputValue(), '25.00');
  const bought = page.waitForResponse(isPost(`${BILLING}/purchases`));
  await dialog.getByRole('button', { name: 'Buy credits' }).dblclick();
  assert.equal((await bought).status(), 200);
  await dialog.waitFor({ state: 'detached' });
  await page.locator('#billing-balance').filter({ hasText: '$35.00' }).waitFor();
  page.off('request', count);
  assert.equal(posted, 1);
  assert.equal((await invoices()).length, 2);
});

test('auto-reload: Edit settings checks the amounts, then turns it on', async () => {
  const { page } = admin;
  const card = region(page, /^Auto-reload/);
  await card.getByRole('button', { name: 'Edit settings' }).click();
  const dialog = page.getByRole('dialog', { name: 'Auto-reload settings' });
  const toggle = dialog.getByRole('switch', { name: /Auto-reload/ });
  assert.equal(await toggle.isChecked(), false);
  assert.equal(await dialog.getByLabel('Reload amount').isDisabled(), true, 'the amounts wait for the switch');
  await toggle.check();
  await dialog.getByLabel('When the balance falls below').fill('5');
  await dialog.getByLabel('Reload amount').fill('2');
  await dialog.getByRole('button', { name: 'Save settings' }).click();
  await dialog.getByText('The reload amount must be at least $5.00, the minimum purchase.').waitFor();
  await dialog.getByLabel('Reload amount').fill('20');
  const saved = page.waitForResponse(isPost(`${BILLING}/auto_reload`));
  await dialog.getByRole('button', { name: 'Save settings' }).click();
  const res = await saved;
  assert.equal(res.status(), 200);
  assert.deepEqual(JSON.parse(res.request().postData()), { enabled: true, threshold_usd: '5.00', amount_usd: '20.00' });
  await dialog.waitFor({ state: 'detached' });
  await card.getByText('On', { exact: true }).waitFor();
  await card.getByText('$5.00').waitFor();
  await card.getByText('$20.00').waitFor();
  const ar = (await billing()).auto_reload;
  assert.equal(ar.enabled, true);
});

test('a declined card: the message is shown and the balance stays as it was', async () => {
  const { page } = admin;
  const before = await billing();
  const invoicesBefore = (await invoices()).length;

  await region(page, 'Payment method').getByRole('button', { name: 'Change payment method' }).click();
  const change = page.getByRole('dialog', { name: 'Change payment method' });
  await change.getByText(/Adding a new card replaces Visa/).waitFor();
  // 4000 0000 0000 0002 fails the zero-amount check made when a card is added (as Stripe's
  // SetupIntent does): it is not saved, the dialog says why and the card on file stays.
  await change.getByLabel('Card number').fill('4000 0000 0000 0002');
  await change.getByLabel('Expiration date').fill('11 / 31');
  await change.getByLabel('Security code (CVC)').fill('321');
  const refused = page.waitForResponse(isPost(`${BILLING}/payment_method`));
  await change.getByRole('button', { name: 'Replace card' }).click();
  assert.equal((await refused).status(), 402);
  await change.getByRole('alert').filter({ hasText: 'Your card was declined. The card was not saved' }).waitFor();
  assert.equal((await billing()).payment_method.last4, before.payment_method.last4, 'the card on file is unchanged');
  await shot(page, 'billing-declined-at-setup.png', { fullPage: false });
  // 4000 0000 0000 0341 passes the check and declines when charged.
  await change.getByLabel('Card number').fill('4000 0000 0000 0341');
  const saved = page.waitForResponse(isPost(`${BILLING}/payment_method`));
  await change.getByRole('button', { name: 'Replace card' }).click();
  assert.equal((await saved).status(), 200);
  await change.waitFor({ state: 'detached' });
  await region(page, 'Payment method').getByText('0341', { exact: true }).waitFor();

  await region(page, 'Credit balance').getByRole('button', { name: 'Add funds' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add funds' });
  await dialog.getByLabel('Amount (USD)').fill('10');
  const declined = page.waitForResponse(isPost(`${BILLING}/purchases`));
  await dialog.getByRole('button', { name: 'Buy credits' }).click();
  const res = await declined;
  assert.equal(res.status(), 402);
  const message = (await res.json()).error.message;
  assert.match(message, /Your card was declined/);
  await dialog.getByRole('alert').filter({ hasText: message }).waitFor();
  assert.equal(await dialog.getByRole('button', { name: 'Buy credits' }).isEnabled(), true, 'ready to try again');
  await shot(page, 'billing-declined.png', { fullPage: false });
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'detached' });

  assert.equal(await balanceText(page), '$35.00');
  const after = await billing();
  assert.equal(after.balance_usd, before.balance_usd);
  assert.equal(after.purchases_total_usd, before.purchases_total_usd);
  assert.equal((await invoices()).length, invoicesBefore);

  // Back to a good card for the screenshots.
  await region(page, 'Payment method').getByRole('button', { name: 'Change payment method' }).click();
  const again = page.getByRole('dialog', { name: 'Change payment method' });
  await again.getByRole('button', { name: 'Use test card 4242 4242 4242 4242' }).click();
  const back = page.waitForResponse(isPost(`${BILLING}/payment_method`));
  await again.getByRole('button', { name: 'Replace card' }).click();
  assert.equal((await back).status(), 200);
  await again.waitFor({ state: 'detached' });
  await region(page, 'Payment method').getByText('4242', { exact: true }).waitFor();
});

test('the page at 1280 and 390 pixels wide', async () => {
  const { page } = admin;
  await page.reload();
  await page.locator('#billing-balance').filter({ hasText: '$35.00' }).waitFor();
  await page.getByRole('table', { name: 'Invoices' }).getByRole('row').nth(2).waitFor();
  await shot(page, 'billing.png');
  await page.setViewportSize(PHONE);
  try {
    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, 'nothing overflows sideways');
    await shot(page, 'billing-mobile.png');
  } finally {
    await page.setViewportSize(DESKTOP);
  }
});

test('a payment the card network has not confirmed yet is shown as processing, not credited', async () => {
  const { page } = admin;
  await region(page, 'Payment method').getByRole('button', { name: 'Change payment method' }).click();
  const change = page.getByRole('dialog', { name: 'Change payment method' });
  await change.getByLabel('Card number').fill('4000 0000 0000 0259'); // the test provider's "processing" card
  await change.getByLabel('Expiration date').fill('10 / 32');
  await change.getByLabel('Security code (CVC)').fill('555');
  await change.getByRole('button', { name: 'Replace card' }).click();
  await change.waitFor({ state: 'detached' });
  await region(page, 'Payment method').getByText('0259', { exact: true }).waitFor();

  await region(page, 'Credit balance').getByRole('button', { name: 'Add funds' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add funds' });
  await dialog.getByLabel('Amount (USD)').fill('10');
  const bought = page.waitForResponse(isPost(`${BILLING}/purchases`));
  await dialog.getByRole('button', { name: 'Buy credits' }).click();
  const res = await bought;
  assert.equal(res.status(), 202);
  assert.equal((await res.json()).status, 'pending');
  await dialog.waitFor({ state: 'detached' });
  await page.getByRole('status').filter({ hasText: 'A purchase is processing.' }).waitFor();
  assert.equal(await balanceText(page), '$35.00', 'nothing is credited on a guess');
  const b = await billing();
  assert.equal(b.pending_purchases, 1);
  await shot(page, 'billing-pending.png', { fullPage: false });
});

test('a developer is told that billing is for admins and billing members', async () => {
  const invited = await api.post('/v1/organizations/invites', { email: DEV_EMAIL, role: 'developer' });
  assert.equal(invited.status, 201, JSON.stringify(invited.body));
  const mails = server.outbox().filter((m) => m.to && m.to.toLowerCase().includes(DEV_EMAIL));
  const link = mails[mails.length - 1].body.match(/https?:\/\/\S+\/auth\/invite\?token=[A-Za-z0-9_-]+/);
  assert.ok(link, 'an invite link was mailed');
  const dev = new Client(server.consoleUrl);
  const joined = await openInvite(dev, link[0]);
  assert.equal(joined.status, 200, JSON.stringify(joined.body));
  await dev.refreshSession();
  const onboarded = await dev.post('/auth/onboarding', { full_name: 'Linus Torvalds', confirmed_age_18: true, accepted_terms: true });
  assert.equal(onboarded.status, 200, JSON.stringify(onboarded.body));
  assert.equal((await dev.get(BILLING)).status, 403, 'the API refuses too');

  const { context, page } = await signedInPage(dev, 'developer');
  try {
    await page.goto(url('/settings/billing'));
    await heading(page, 'Plans & Billing').waitFor();
    await page.getByRole('heading', { name: 'You don’t have access to billing' }).waitFor();
    await page.getByText(`Only admins and billing members can see billing. Ask an admin of ${ORG} to give you the Billing role.`).waitFor();
    await page.getByText(`Your role in ${ORG} is Developer.`).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Add funds' }).count(), 0);
    await shot(page, 'billing-no-access.png');
  } finally {
    await context.close();
  }
});

test('no script errors, CSP violations or failed requests', () => {
  assert.deepEqual(problems, []);
});
