// Plans & Billing in a real browser with [billing] provider = stripe, against the fake Stripe
// (lib/fake-stripe.mjs) and its fake Stripe.js: the console's content security policy lets
// Stripe.js load from the configured origin, the card is entered in Stripe's element (here a
// text box holding a test token) and confirmed with Stripe directly, a card the bank refuses
// is explained and not saved, then an admin buys $10, sees the balance change and downloads
// the invoice PDF. Drives Debian's chromium with playwright-core.
//
// The screenshot lands in tests/e2e/artifacts/billing-stripe.png (git-ignored).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { startFakeStripe } from './lib/fake-stripe.mjs';

const ARTIFACTS = join(import.meta.dirname, 'artifacts');
const WEB_DIR = process.env.GATEHOUSE_WEB_DIR;
const STAMP = `${Date.now()}`;
const SECRET = `sk_test_browser${randomBytes(12).toString('hex')}`;
const WHSEC = `whsec_browser${randomBytes(12).toString('hex')}`;
const PK = 'pk_test_gatehouseBrowser';
const BILLING = '/v1/organizations/billing';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let fake;
let server;
let browser;
let api; // the admin's session, for checking what the server holds
let page;
const problems = [];

const url = (path) => server.consoleUrl + path;
const region = (name) => page.getByRole('region', { name, exact: true });
const isPost = (path) => (r) => r.url().endsWith(path) && r.request().method() === 'POST';

async function billing() {
  const r = await api.get(BILLING);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  fake = await startFakeStripe({ webhookSecret: WHSEC, secretKey: SECRET, publishableKey: PK });
  server = await startServer({
    config: {
      ...(WEB_DIR ? { server: { web_dir: WEB_DIR } } : {}),
      billing: {
        provider: 'stripe', stripe_api_base: fake.url, stripe_js_url: fake.jsUrl, stripe_publishable_key: PK,
        stripe_secret_key_env: 'GH_BROWSER_STRIPE_KEY', stripe_webhook_secret_env: 'GH_BROWSER_STRIPE_WHSEC',
      },
    },
    env: { GH_BROWSER_STRIPE_KEY: SECRET, GH_BROWSER_STRIPE_WHSEC: WHSEC },
  });
  fake.setWebhookUrl(`${server.consoleUrl}/webhooks/stripe`);
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  api = new Client(server.consoleUrl);
  await api.signUpWithOrg(server, `grace.${STAMP}@example.com`, 'Hopper Labs', 'Grace Hopper');
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  await context.addCookies([{ name: 'gh_session', value: api.cookies.get('gh_session'), url: server.consoleUrl, httpOnly: true, sameSite: 'Lax' }]);
  page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    // The declined card setup (402 from Stripe) is provoked on purpose.
    if (/^Failed to load resource: the server responded with a status of 402\b/.test(msg.text())) return;
    problems.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    if (r.failure()?.errorText === 'net::ERR_ABORTED') return;
    problems.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`);
  });
});

after(async () => {
  await browser?.close();
  await fake?.idle();
  await server?.stop();
  await fake?.stop();
});

test('the card is entered in Stripe\'s form; a card the bank refuses is not saved', async () => {
  await page.goto(url('/settings/billing'));
  await region('Credit balance').getByText('Test mode').waitFor();
  await region('Payment method').getByRole('button', { name: 'Add payment method' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add payment method' });
  await dialog.getByText('Card details are entered in a secure form provided by Stripe.').waitFor();
  // Stripe.js came from the configured origin and mounted its element in the dialog.
  const token = dialog.locator('input[name="fake-stripe-token"]');
  await token.waitFor();
  assert.equal(await token.inputValue(), 'pm_card_visa');
  assert.equal(await page.locator(`script[src="${fake.jsUrl}"]`).count(), 1);
  const setup = fake.requests.filter((r) => r.path === '/v1/setup_intents' && r.method === 'POST');
  assert.equal(setup.length, 1, 'one SetupIntent for the dialog');

  // The bank refuses the card at setup: Stripe's message, nothing saved.
  await token.fill('pm_card_setupDeclined');
  await dialog.getByRole('button', { name: 'Add card' }).click();
  await dialog.getByRole('alert').filter({ hasText: 'Your card was declined.' }).waitFor();
  assert.equal((await billing()).payment_method, null);
  await page.screenshot({ path: join(ARTIFACTS, 'billing-stripe-card.png'), animations: 'disabled' });

  // Another card in the same form: confirmed at Stripe, then the SetupIntent id goes to
  // Gatehouse (never card details).
  await token.fill('pm_card_visa');
  const saved = page.waitForResponse(isPost(`${BILLING}/payment_method`));
  await dialog.getByRole('button', { name: 'Add card' }).click();
  const res = await saved;
  assert.equal(res.status(), 200);
  const sent = JSON.parse(res.request().postData());
  assert.deepEqual(Object.keys(sent), ['setup_intent']);
  assert.match(sent.setup_intent, /^seti_/);
  assert.equal(fake.setupIntents.get(sent.setup_intent).status, 'succeeded');
  assert.ok(res.request().headers()['x-csrf-token'], 'sent with the CSRF header');
  await dialog.waitFor({ state: 'detached' });

  const card = region('Payment method');
  await card.getByText('Visa', { exact: true }).waitFor();
  await card.getByText('4242', { exact: true }).waitFor();
  await page.locator('.toast').filter({ hasText: 'Card ending in 4242 saved' }).waitFor();
  assert.equal((await billing()).payment_method.last4, '4242');
});

test('buying $10 with the Stripe card: the balance updates and the invoice PDF downloads', async () => {
  await page.evaluate(() => { window.__sameDocument = true; });
  await region('Credit balance').getByRole('button', { name: 'Add funds' }).click();
  const questions = page.getByRole('dialog', { name: 'Before your first purchase' });
  await questions.getByLabel('What will you use the API for?').selectOption('Building a product or service for my customers');
  await questions.getByLabel('Describe your use').fill('Code review assistant.');
  await questions.getByLabel('Search countries').fill('united states');
  await questions.getByLabel('United States', { exact: true }).check();
  await questions.getByLabel('No', { exact: true }).check();
  await questions.getByRole('button', { name: 'Continue' }).click();

  const dialog = page.getByRole('dialog', { name: 'Add funds' });
  await dialog.getByText('Visa', { exact: true }).waitFor();
  await dialog.getByLabel('Amount (USD)').fill('10');
  const bought = page.waitForResponse(isPost(`${BILLING}/purchases`));
  await dialog.getByRole('button', { name: 'Buy credits' }).click();
  const res = await bought;
  assert.equal(res.status(), 200);
  const key = res.request().headers()['idempotency-key'] ?? '';
  assert.match(key, UUID);
  const purchase = await res.json();
  assert.equal(purchase.status, 'succeeded');
  await dialog.waitFor({ state: 'detached' });

  await page.locator('#billing-balance').filter({ hasText: '$10.00' }).waitFor();
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no page reload');
  // Stripe charged once, with the purchase id as its idempotency key.
  const charges = fake.requests.filter((r) => r.method === 'POST' && r.path === '/v1/payment_intents');
  assert.equal(charges.length, 1);
  assert.equal(charges[0].headers['idempotency-key'], purchase.id);
  assert.equal(charges[0].form.amount, '1000');

  const r = await api.get('/v1/organizations/invoices');
  const [invoice] = r.body.data;
  assert.ok(invoice, 'an invoice was issued');
  assert.equal(invoice.payment, 'Visa ending in 4242');
  const row = page.getByRole('table', { name: 'Invoices' }).getByRole('row').filter({ hasText: invoice.number });
  await row.getByText('Paid').waitFor();
  const downloading = page.waitForEvent('download');
  await row.getByRole('link', { name: `Download PDF of invoice ${invoice.number}` }).click();
  const download = await downloading;
  assert.equal(download.suggestedFilename(), `${invoice.number}.pdf`);
  assert.equal(readFileSync(await download.path()).subarray(0, 5).toString('latin1'), '%PDF-');

  await fake.idle(); // Stripe's payment_intent.succeeded webhook changes nothing
  assert.equal((await billing()).balance_usd, '10.00');
  await page.evaluate(() => { document.getElementById('toasts')?.replaceChildren(); window.scrollTo(0, 0); });
  await page.screenshot({ path: join(ARTIFACTS, 'billing-stripe.png'), fullPage: true, animations: 'disabled' });
  assert.deepEqual(problems, []);
});
