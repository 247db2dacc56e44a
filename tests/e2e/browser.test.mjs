// The console in a real browser: sign up with an emailed link, onboard, create an
// organization, enter billing details (a bad VAT ID is refused, a good one is saved and
// persists), switch organizations, sign out. Drives Debian's chromium with playwright-core.
//
// Screenshots land in tests/e2e/artifacts/ (git-ignored). The server serves the console
// embedded in its binary; set GATEHOUSE_WEB_DIR=/abs/path/to/web to serve web/ from disk
// instead while working on the pages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, lastLink } from './lib/server.mjs';

const ARTIFACTS = join(import.meta.dirname, 'artifacts');
const WEB_DIR = process.env.GATEHOUSE_WEB_DIR;
const EMAIL = `ada.${Date.now()}@example.com`;
const ORG = 'Acme Analytics';
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

let server;
let browser;
let context;
let page;
const problems = []; // console errors, page errors, failed requests

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

function watch(p) {
  p.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    // Expected API refusals (401 before sign-in, 400 for the bad VAT ID, 429) are logged by
    // chromium as failed loads; anything else (CSP violations, script errors) is a problem.
    if (/^Failed to load resource: the server responded with a status of (400|401|429)\b/.test(text)) return;
    problems.push(`console: ${text}`);
  });
  p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  p.on('requestfailed', (r) => {
    if (r.failure()?.errorText === 'net::ERR_ABORTED') return; // navigation away mid-request
    problems.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`);
  });
}

const url = (path) => server.consoleUrl + path;
// Full-page shots start from the top, with CSS transitions finished.
const shot = async (name, { fullPage = true } = {}) => {
  if (fullPage) await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(ARTIFACTS, name), fullPage, animations: 'disabled' });
};
const heading = (name) => page.getByRole('heading', { level: 1, name });

async function apiJson(path) {
  const r = await page.request.get(url(path));
  return { status: r.status(), body: await r.json() };
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startServer({ config: withWebDir() });
  browser = await launch();
  context = await browser.newContext({ viewport: DESKTOP });
  page = await context.newPage();
  page.setDefaultTimeout(10_000);
  watch(page);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the console is served with its assets for any console route', async () => {
  const r = await page.request.get(url('/settings/organization'));
  assert.equal(r.status(), 200);
  assert.match(r.headers()['content-type'], /text\/html/);
  const html = await r.text();
  assert.match(html, /<script type="module" src="\/static\/app\.js">/);
  const js = await page.request.get(url('/static/app.js'));
  assert.equal(js.status(), 200);
  assert.match(js.headers()['content-type'], /javascript/);
  const css = await page.request.get(url('/static/style.css'));
  assert.equal(css.status(), 200);
  assert.match(css.headers()['content-type'], /text\/css/);
});

test('an expired or invalid sign-in link is explained on the login page', async () => {
  await page.goto(url('/login?error=expired_link'));
  await page.getByRole('alert').filter({ hasText: 'That sign-in link has expired. Enter your email to get a new one.' }).waitFor();
  await page.goto(url('/login?error=invalid_link'));
  await page.getByRole('alert').filter({ hasText: 'That sign-in link is not valid. Enter your email to get a new one.' }).waitFor();
  await page.goto(url('/login?error=used_link'));
  await page.getByRole('alert').filter({ hasText: /already used: each link works once/ }).waitFor();
  // A console page without a session goes to the login page.
  await page.goto(url('/settings/organization'));
  await page.waitForURL(url('/login'));
});

test('sign in with email: the check-email page, then the emailed link', async () => {
  await page.goto(url('/login'));
  await heading('Sign in to Gatehouse').waitFor();
  await shot('login-1280.png');

  // A malformed address is caught before anything is sent.
  await page.getByLabel('Email').fill('not-an-email');
  await page.getByRole('button', { name: 'Continue with email' }).click();
  await page.getByText('Enter a valid email address').waitFor();
  assert.equal(server.outbox().length, 0);

  await page.getByLabel('Email').fill(EMAIL);
  await page.getByRole('button', { name: 'Continue with email' }).click();
  await page.waitForURL(url(`/check-email?email=${encodeURIComponent(EMAIL)}`));
  await heading('Check your email').waitFor();
  const main = page.getByRole('main');
  assert.match(await main.innerText(), new RegExp(`sent a sign-in link to ${EMAIL.replace(/\./g, '\\.')}`));
  assert.match(await main.innerText(), /valid for 15 minutes/);
  await page.getByRole('link', { name: 'Use a different email' }).waitFor();
  await shot('check-email-1280.png');

  await page.getByRole('button', { name: 'Resend' }).click();
  await page.getByText(`We sent a new link to ${EMAIL}`).waitFor();
  assert.equal(server.outbox().filter((m) => m.to.includes(EMAIL)).length, 2);

  await page.goto(lastLink(server, EMAIL));
  await page.waitForURL(url('/onboarding'));
});

test('onboarding asks for a name, age confirmation and the terms', async () => {
  const { body: session } = await apiJson('/auth/session');
  assert.equal(session.account.email, EMAIL);
  assert.equal(session.account.onboarded, false);
  await heading('Welcome to Gatehouse').waitFor();
  await page.getByText(`Version ${session.terms_version}`).waitFor();

  // Nothing filled in: every requirement is explained, nothing is sent.
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByText('Enter your full name.').waitFor();
  await page.getByText('You must be at least 18 years old').waitFor();
  await page.getByText('Accept the Terms of Service to continue.').waitFor();
  assert.equal((await apiJson('/auth/session')).body.account.onboarded, false);
  await shot('onboarding-errors-1280.png');

  await page.getByLabel('Full name').fill('Ada Lovelace');
  await page.getByLabel('I confirm that I am at least 18 years old').check();
  await page.getByLabel('I accept the Terms of Service').check();
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(url('/create-organization'));
  const after = (await apiJson('/auth/session')).body;
  assert.equal(after.account.onboarded, true);
  assert.equal(after.account.full_name, 'Ada Lovelace');
});

test('the first organization is created with "Create Account"', async () => {
  await page.getByText("Your company's name, or your own name if you are just trying things.").waitFor();
  await shot('create-organization-1280.png');
  await page.getByLabel('Name your organization').fill(ORG);
  await page.getByRole('button', { name: 'Create Account' }).click();
  await page.waitForURL(url('/dashboard'));
  await heading('Welcome, Ada').waitFor();
  await page.getByRole('button', { name: new RegExp(`Organization: ${ORG}`) }).waitFor();
  await page.getByText(EMAIL).first().waitFor();
  const { body: session } = await apiJson('/auth/session');
  assert.equal(session.current_organization.name, ORG);
  assert.equal(session.current_organization.role, 'admin');
  // The Quickstart shows a working call for the model API's address and the configured
  // models, with the built-in ones labelled as mocks.
  const quick = page.getByRole('region', { name: 'Quickstart' });
  const code = quick.getByRole('region', { name: 'Example code' }).or(quick.locator('pre'));
  await code.getByText(`curl ${server.apiUrl}/v1/messages`).waitFor();
  assert.match(await code.innerText(), /"model": "gatehouse-mock-small"/);
  assert.ok(!(await code.innerText()).includes('sk-gh-'), 'no key in the snippet');
  await quick.getByRole('tab', { name: 'Python' }).click();
  await code.getByText(`Anthropic(base_url="${server.apiUrl}"`).waitFor();
  const models = quick.getByRole('table', { name: 'Models and prices' }).locator('tbody tr');
  assert.equal(await models.count(), 2);
  assert.equal(await quick.getByText('Mock', { exact: true }).count(), 2);
  await shot('dashboard-1280.png');
});

test('the sidebar lists every section, none of them marked as coming later', async () => {
  const nav = page.getByRole('navigation', { name: 'Console' });
  await nav.getByRole('heading', { name: 'Settings' }).waitFor();
  const expected = { Dashboard: '/dashboard', Organization: '/settings/organization', Members: '/settings/members',
    Workspaces: '/settings/workspaces', 'API Keys': '/settings/keys', Billing: '/settings/billing',
    Limits: '/settings/limits', Usage: '/settings/usage', Cost: '/settings/cost' };
  for (const [name, href] of Object.entries(expected)) {
    assert.equal(await nav.getByRole('link', { name: new RegExp(`^${name}\\b`) }).getAttribute('href'), href, name);
  }
  assert.equal(await nav.locator('.nav-soon').count(), 0, 'no section is marked "Soon"');
  // Usage and Cost keep their filters in the query (tests/e2e/reports-browser.test.mjs covers
  // them, billing-browser Billing, limits-browser Limits).
  for (const name of ['Usage', 'Cost']) {
    const link = nav.getByRole('link', { name: new RegExp(`^${name}\\b`) });
    await link.click();
    await page.waitForURL((u) => u.pathname === expected[name]); // the page keeps its filters in the query
    await heading(name).waitFor();
  }
  await nav.getByRole('link', { name: /^Members\b/ }).click();
  await page.waitForURL(url('/settings/members'));
  await heading('Members').waitFor();
  // Members is built (tests/e2e/console-admin.test.mjs covers it): it lists this admin.
  await page.getByRole('table', { name: 'Members' }).getByText(EMAIL).waitFor();
  assert.equal(await nav.getByRole('link', { name: /^Members\b/ }).getAttribute('aria-current'), 'page');
  await shot('members-first-1280.png');
  await nav.getByRole('link', { name: /^Organization\b/ }).click();
  await page.waitForURL(url('/settings/organization'));
});

test('organization settings: a bad VAT ID is refused with the server message', async () => {
  await heading('Organization').waitFor();
  const name = page.getByLabel('Organization name');
  await name.waitFor();
  assert.equal(await name.inputValue(), ORG);
  const vat = page.getByLabel('Tax or VAT ID');

  await page.getByLabel('Legal name').fill('Acme Analytics S.r.l.');
  await page.getByLabel('Billing email').fill('billing@acme.example');
  await page.getByLabel('Street address').fill('Via Roma 1');
  await page.getByLabel('Address line 2').fill('Scala B');
  await page.getByLabel('City').fill('Milano');
  await page.getByLabel('Postal code').fill('20121');
  await page.getByLabel('State/Province').fill('MI');

  // The VAT field appears only for countries with VAT.
  assert.equal(await vat.isVisible(), false);
  await page.getByLabel('Country').selectOption({ label: 'United States' });
  assert.equal(await vat.isVisible(), false);
  await page.getByLabel('Country').selectOption({ label: 'Italy' });
  await vat.waitFor({ state: 'visible' });
  // The example in the hint is one the check accepts (the next test saves it).
  await page.getByText('Include the country prefix, e.g. IT00743110157').waitFor();

  await vat.fill('IT123');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.locator('.field-error').filter({ hasText: 'VAT ID IT123 is not valid for Italy' }).waitFor();
  await page.getByRole('alert').filter({ hasText: /Changes not saved\. VAT ID IT123 is not valid for Italy/ }).waitFor();
  assert.equal(await vat.getAttribute('aria-invalid'), 'true');
  // A refused request changes nothing.
  const { body: unchanged } = await apiJson('/v1/organizations/me/settings');
  assert.equal(unchanged.legal_name, null);
  assert.equal(unchanged.vat_id, null);
  await shot('settings-vat-error-1280.png', { fullPage: false }); // the refused field in view
});

test('organization settings: a valid VAT ID saves, and everything persists', async () => {
  const vat = page.getByLabel('Tax or VAT ID');
  await vat.fill('IT00743110157');
  const save = page.getByRole('button', { name: 'Save changes' });
  const saving = page.waitForResponse((r) => r.url().endsWith('/v1/organizations/me/settings') && r.request().method() === 'POST');
  await save.click();
  const res = await saving;
  assert.equal(res.status(), 200);
  assert.equal(res.request().headers()['content-type'], 'application/json');
  assert.ok(res.request().headers()['x-csrf-token'], 'the save sends the CSRF header');
  await page.locator('.save-status').filter({ hasText: 'Organization details saved' }).waitFor();
  await page.locator('.toast').filter({ hasText: 'Organization details saved' }).waitFor();
  assert.equal(await vat.getAttribute('aria-invalid'), null);
  assert.equal(await save.isEnabled(), true);

  await page.reload();
  await heading('Organization').waitFor();
  await page.getByLabel('Legal name').waitFor();
  const values = {
    'Organization name': ORG,
    'Legal name': 'Acme Analytics S.r.l.',
    'Billing email': 'billing@acme.example',
    'Street address': 'Via Roma 1',
    'Address line 2': 'Scala B',
    City: 'Milano',
    'Postal code': '20121',
    'State/Province': 'MI',
    Country: 'IT',
    'Tax or VAT ID': 'IT00743110157',
  };
  for (const [label, value] of Object.entries(values)) {
    assert.equal(await page.getByLabel(label).inputValue(), value, label);
  }
  await page.getByText(/^Last saved /).waitFor();

  const { status, body } = await apiJson('/v1/organizations/me/settings');
  assert.equal(status, 200);
  assert.equal(body.name, ORG);
  assert.equal(body.legal_name, 'Acme Analytics S.r.l.');
  assert.equal(body.billing_email, 'billing@acme.example');
  assert.deepEqual(body.billing_address, {
    line1: 'Via Roma 1', line2: 'Scala B', city: 'Milano', postal_code: '20121', state: 'MI', country: 'IT',
  });
  assert.equal(body.vat_id, 'IT00743110157');
  assert.equal(body.vat_applicable, true);
  assert.ok(body.updated_at);
  await shot('settings-1280.png');
});

test('at phone width the sidebar collapses behind a menu button', async () => {
  await page.setViewportSize(PHONE);
  try {
    await phoneChecks();
  } finally {
    await page.setViewportSize(DESKTOP);
  }
});

async function phoneChecks() {
  await page.reload();
  await page.getByLabel('Legal name').waitFor();
  assert.equal(await page.getByLabel('Tax or VAT ID').inputValue(), 'IT00743110157');
  const nav = page.getByRole('navigation', { name: 'Console' });
  const orgLink = nav.getByRole('link', { name: /^Organization\b/ });
  assert.equal(await orgLink.isVisible(), false, 'the sidebar is hidden at 390px');
  // Nothing overflows sideways.
  assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true);
  await shot('settings-390.png');

  const menu = page.getByRole('button', { name: 'Menu' });
  await menu.click();
  await orgLink.waitFor({ state: 'visible' });
  await nav.getByRole('button', { name: 'Sign out' }).waitFor();
  await shot('menu-390.png', { fullPage: false });
  await page.keyboard.press('Escape');
  await orgLink.waitFor({ state: 'hidden' });
}

test('the organization switcher creates and switches organizations', async () => {
  await page.goto(url('/dashboard'));
  // With billing details entered, the first getting-started step is ticked.
  await page.locator('.step').first().getByText('Done', { exact: true }).waitFor();
  await shot('dashboard-done-1280.png');
  const switcher = page.getByRole('button', { name: new RegExp(`Organization: ${ORG}`) });
  await switcher.click();
  const menu = page.getByRole('menu', { name: 'Organizations' });
  await menu.getByRole('menuitemradio', { name: new RegExp(`${ORG}.*Admin`), checked: true }).waitFor();
  await shot('org-switcher-1280.png', { fullPage: false });
  await menu.getByRole('menuitem', { name: 'Create organization' }).click();
  await page.waitForURL(url('/create-organization'));
  await page.getByLabel('Name your organization').fill('Side Project');
  await page.getByRole('button', { name: 'Create organization' }).click();
  await page.waitForURL(url('/dashboard'));
  await page.getByRole('button', { name: /Organization: Side Project/ }).waitFor();
  assert.equal((await apiJson('/auth/session')).body.organizations.length, 2);

  // Renaming the organization updates the top bar without a reload.
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: /^Organization\b/ }).click();
  const name = page.getByLabel('Organization name');
  await name.waitFor();
  assert.equal(await name.inputValue(), 'Side Project');
  assert.equal(await page.getByLabel('Legal name').inputValue(), '', 'a new organization has its own details');
  await name.fill('Side Project Labs');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.getByRole('button', { name: /Organization: Side Project Labs/ }).waitFor();
  assert.equal((await apiJson('/auth/session')).body.current_organization.name, 'Side Project Labs');

  await page.getByRole('button', { name: /Organization: Side Project Labs/ }).click();
  await page.getByRole('menuitemradio', { name: new RegExp(ORG) }).click();
  await page.getByRole('button', { name: new RegExp(`Organization: ${ORG}`) }).waitFor();
  assert.equal((await apiJson('/auth/session')).body.current_organization.name, ORG);
  // Still on the settings page: it now shows the other organization's details.
  await page.waitForURL(url('/settings/organization'));
  await page.getByLabel('Legal name').waitFor();
  assert.equal(await page.getByLabel('Organization name').inputValue(), ORG);
  assert.equal(await page.getByLabel('Legal name').inputValue(), 'Acme Analytics S.r.l.');
});

test('sign out ends the session', async () => {
  await page.getByRole('banner').getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(url('/login'));
  assert.equal((await apiJson('/auth/session')).status, 401);
  await page.goto(url('/dashboard'));
  await page.waitForURL(url('/login'));
});

test('no script errors, CSP violations or failed requests', () => {
  assert.deepEqual(problems, []);
});

test('signed out, the login page shows the operator\'s product name; "Resend" shows the server\'s 429 message', async () => {
  const limited = await startServer({
    config: withWebDir({ auth: { link_limit_per_email: 1, link_ttl_seconds: 1800 }, server: { product_name: 'Acme AI' } }),
  });
  const p = await context.newPage();
  try {
    await p.goto(`${limited.consoleUrl}/login`);
    // Signed out, the page still knows the operator's product name and link lifetime.
    await p.getByRole('heading', { name: 'Sign in to Acme AI' }).waitFor();
    await p.getByText('expires after 30 minutes').waitFor();
    await p.getByLabel('Email').fill('grace@example.com');
    await p.getByRole('button', { name: 'Continue with email' }).click();
    await p.getByRole('heading', { name: 'Check your email' }).waitFor();
    const resend = p.getByRole('button', { name: 'Resend' });
    const answered = p.waitForResponse((r) => r.url().endsWith('/auth/email'));
    await resend.click();
    const r = await answered;
    assert.equal(r.status(), 429);
    const message = (await r.json()).error.message;
    assert.ok(message);
    await p.getByText(message).waitFor();
    assert.equal(await resend.isEnabled(), true);
  } finally {
    await p.close();
    await limited.stop();
  }
});
