// What a new customer tripped on in the console (issue 16, points 1–8), in a real browser
// (playwright-core driving Debian's chromium) against the real server: the dashboard's "Get
// started" ticked from real state and per role, dialogs that close on navigation and on
// sign-out, the Usage/Cost multi-select, the phone layout, the VAT example, field labels in
// messages, the invite box, the audit log's actions, stale errors, lists behind dialogs, one
// money format, toasts, key names, the one-time secret's Escape, Remove Limit and the
// over-limit warning. Screenshots at 1280×800 and 390×844 land in tests/e2e/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { addMember, sqlite, sqlQuote } from './lib/expect.mjs';
import { BILLING, CARD, PROFILE, buy, until } from './lib/billing.mjs';

const ARTIFACTS = join(import.meta.dirname, 'artifacts');
const WEB_DIR = process.env.GATEHOUSE_WEB_DIR;
const STAMP = `${Date.now()}`;
const ADMIN_EMAIL = `ada.finish.${STAMP}@example.com`;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const O = '/v1/organizations';
// Two mock models: "pricey" at $100,000 per million tokens (the request below costs exactly
// $1.00) and "cheap" at $1 per million (a request costs a small fraction of a cent).
const MODELS = {
  'model pricey': { style: 'mock', price_input: 100000, price_output: 100000 },
  'model cheap': { style: 'mock', price_input: 1, price_output: 1 },
};
const DOLLAR_REQUEST = { model: 'pricey', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] };
const CHEAP_REQUEST = { model: 'cheap', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] };

let server;
let browser;
let api; // the admin's session, for setting up and checking what the server holds
let admin; // {context, page} at 1280×800
let orgId;
let research; // a second workspace
const problems = [];

function launch() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

// Failed requests that a step provokes on purpose are listed in `expected`.
const expected = [];
function watch(p, who) {
  p.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    if (/^Failed to load resource: the server responded with a status of (400|401|402)\b/.test(text) && expected.length) return;
    problems.push(`${who} console: ${text}`);
  });
  p.on('pageerror', (e) => problems.push(`${who} page error: ${e.message}`));
  p.on('requestfailed', (r) => {
    if (r.failure()?.errorText === 'net::ERR_ABORTED') return; // navigation away mid-request
    problems.push(`${who} request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`);
  });
}

const url = (path) => server.consoleUrl + path;
const heading = (p, name) => p.getByRole('heading', { level: 1, name, exact: true });
const shot = async (p, name, { fullPage = true } = {}) => {
  await p.evaluate((top) => { if (top) window.scrollTo(0, 0); }, fullPage);
  await p.screenshot({ path: join(ARTIFACTS, name), fullPage, animations: 'disabled' });
};
// Shots of the current page at both widths (the viewport is put back afterwards).
async function bothWidths(p, name) {
  const was = p.viewportSize();
  await p.setViewportSize(DESKTOP);
  await shot(p, `${name}-1280.png`);
  await p.setViewportSize(PHONE);
  await shot(p, `${name}-390.png`);
  await p.setViewportSize(was);
}

async function contextFor(client, who, viewport = DESKTOP) {
  const context = await browser.newContext({ viewport });
  await context.addCookies([{ name: 'gh_session', value: client.cookies.get('gh_session'), url: server.consoleUrl, httpOnly: true, sameSite: 'Lax' }]);
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  watch(page, who);
  return { context, page };
}

// The "Get started" steps once the dashboard has worked them out: [[id, done], …], or null
// when the card is not shown.
async function steps(p) {
  await p.goto(url('/dashboard'));
  await p.getByRole('heading', { level: 2, name: 'Quickstart' }).waitFor();
  await p.waitForFunction(() => !document.querySelector('.getting-started[aria-busy="true"]'));
  return p.evaluate(() => {
    const card = document.querySelector('.getting-started');
    if (!card) return null;
    return [...card.querySelectorAll('li.step')].map((li) => [li.dataset.step, li.dataset.done === 'true']);
  });
}

async function modelCall(key, json) {
  const r = await fetch(`${server.apiUrl}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': '2023-06-01' },
    body: JSON.stringify(json),
  });
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  return body;
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startServer({ config: { ...MODELS, ...(WEB_DIR ? { server: { web_dir: WEB_DIR } } : {}) } });
  browser = await launch();
  api = new Client(server.consoleUrl);
  orgId = (await api.signUpWithOrg(server, ADMIN_EMAIL, 'Acme Analytics', 'Ada Lovelace')).current_organization.id;
  research = (await api.post(`${O}/workspaces`, { name: 'Research' })).body;
  admin = await contextFor(api, 'admin');
});

after(async () => {
  await browser?.close();
  await server?.stop();
  assert.deepEqual(problems, [], 'no console errors, page errors or failed requests');
});

test('1. Get started ticks each step from real state, per role, and goes away when all are done', async () => {
  const { page } = admin;
  assert.deepEqual(await steps(page), [['billing-details', false], ['credits', false], ['key', false], ['team', false]]);
  await page.getByText('4 of 4 steps left').waitFor();
  await bothWidths(page, 'dashboard-get-started');

  // Billing details entered.
  const s = await api.post(`${O}/me/settings`, { legal_name: 'Acme Analytics S.r.l.',
    billing_address: { line1: 'Via Roma 1', city: 'Milano', postal_code: '20121', country: 'IT' } });
  assert.equal(s.status, 200, JSON.stringify(s.body));
  assert.deepEqual(await steps(page), [['billing-details', true], ['credits', false], ['key', false], ['team', false]]);
  await page.locator('li[data-step="billing-details"]').getByText('Done', { exact: true }).waitFor();

  // A card alone is not enough; a card and a purchase are.
  assert.equal((await api.post(`${BILLING}/profile`, PROFILE)).status, 200);
  assert.equal((await api.post(`${BILLING}/payment_method`, CARD)).status, 200);
  assert.deepEqual((await steps(page))[1], ['credits', false]);
  assert.equal((await buy(api, '10.00')).status, 200);
  assert.deepEqual((await steps(page))[1], ['credits', true]);

  // Invited people accepting completes the team step; a developer sees only the key step and
  // a user (no workspace role that allows keys) no card at all.
  const dev = await addMember(server, api, 'developer', { fullName: 'Linus Developer' });
  const user = await addMember(server, api, 'user', { fullName: 'Grace User' });
  assert.deepEqual(await steps(page), [['billing-details', true], ['credits', true], ['key', false], ['team', true]]);
  await page.getByText('1 of 4 steps left').waitFor();
  const devCtx = await contextFor(dev.client, 'developer');
  const userCtx = await contextFor(user.client, 'user');
  try {
    assert.deepEqual(await steps(devCtx.page), [['key', false]]);
    await bothWidths(devCtx.page, 'dashboard-get-started-developer');
    assert.equal(await steps(userCtx.page), null, 'a user has no step to take');
    // Made a workspace developer of Research, the user can create keys there: the step shows.
    assert.equal((await api.post(`${O}/workspaces/${research.id}/members`, { user_id: user.id, workspace_role: 'workspace_developer' })).status, 201);
    assert.deepEqual(await steps(userCtx.page), [['key', false]]);

    // The first key completes everything: the card is gone for everyone.
    const k = await api.post(`${O}/api_keys`, { name: 'First key' });
    assert.equal(k.status, 201, JSON.stringify(k.body));
    assert.equal(await steps(page), null, 'all done: the card is hidden');
    assert.equal(await steps(devCtx.page), null);
    // The user reaches only Research's keys: their step is done by a key there.
    assert.deepEqual(await steps(userCtx.page), [['key', false]]);
    assert.equal((await user.client.post(`${O}/api_keys`, { name: 'Research notebook', workspace_id: research.id })).status, 201);
    assert.equal(await steps(userCtx.page), null);
    await bothWidths(page, 'dashboard-done');
  } finally {
    await devCtx.context.close();
    await userCtx.context.close();
  }
});

test('2. dialogs close on Back, on any route change and when the session ends in another tab', async () => {
  const { page } = admin;
  const keysBefore = (await api.get(`${O}/api_keys?limit=100`)).body.data.length;
  await page.goto(url('/settings/members'));
  await heading(page, 'Members').waitFor();
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'API Keys' }).click();
  await heading(page, 'API Keys').waitFor();
  await page.getByRole('button', { name: 'Create Key' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create API key' });
  await dialog.getByLabel('Key name').fill('Made after Back');
  await page.goBack();
  await heading(page, 'Members').waitFor();
  await dialog.waitFor({ state: 'detached' });
  assert.equal(await page.locator('dialog').count(), 0, 'no dialog left over the Members page');
  assert.equal((await api.get(`${O}/api_keys?limit=100`)).body.data.length, keysBefore, 'no key was created');

  // A link followed from inside the page (the organization switcher's "Create organization")
  // is a route change too.
  await page.goto(url('/settings/workspaces'));
  await page.getByRole('button', { name: 'Add Workspace' }).click();
  await page.getByRole('dialog').waitFor();
  await page.evaluate(() => { history.pushState(null, '', '/settings/limits'); dispatchEvent(new PopStateEvent('popstate')); });
  await heading(page, 'Limits').waitFor();
  assert.equal(await page.locator('dialog').count(), 0);

  // Two tabs of one browser, signed in as the admin in a session of their own: signing out in
  // one closes the dialog in the other and shows the sign-in page there.
  const second = new Client(server.consoleUrl);
  await second.signIn(server, ADMIN_EMAIL);
  const tabs = await contextFor(second, 'admin tabs');
  try {
    const a = tabs.page;
    const b = await tabs.context.newPage();
    watch(b, 'admin tab b');
    await a.goto(url('/settings/keys'));
    await a.getByRole('button', { name: 'Create Key' }).click();
    await a.getByRole('dialog', { name: 'Create API key' }).getByLabel('Key name').fill('Made after sign-out');
    await b.goto(url('/dashboard'));
    await b.getByRole('button', { name: 'Sign out' }).first().click();
    await b.waitForURL(url('/login'));
    await a.waitForURL(url('/login'));
    await a.locator('dialog').waitFor({ state: 'detached' });
    assert.equal(await a.locator('dialog').count(), 0, 'the dialog does not float over the sign-in page');
    await bothWidths(a, 'dialog-after-sign-out');
  } finally {
    await tabs.context.close();
  }

  // A session revoked elsewhere (another browser): the next request answers 401, and the
  // dialog goes away with the page instead of staying over the sign-in page.
  const third = new Client(server.consoleUrl);
  await third.signIn(server, ADMIN_EMAIL);
  const other = await contextFor(third, 'admin elsewhere');
  try {
    const p = other.page;
    await p.goto(url('/settings/keys'));
    await p.getByRole('button', { name: 'Create Key' }).click();
    const d = p.getByRole('dialog', { name: 'Create API key' });
    await d.getByLabel('Key name').fill('Made by a revoked session');
    assert.equal((await third.post('/auth/logout', {})).status, 200);
    expected.push('401');
    await d.getByRole('button', { name: 'Create Key' }).click();
    await p.waitForURL(url('/login'));
    await d.waitFor({ state: 'detached' });
    expected.pop();
  } finally {
    await other.context.close();
  }
  assert.equal((await api.get(`${O}/api_keys?limit=100`)).body.data.length, keysBefore, 'no key was created');
});

test('3. Usage and Cost filters: clicking anywhere on an option\'s row selects it and keeps the menu open', async () => {
  const { page } = admin;
  for (const [path, title] of [['/settings/usage', 'Usage'], ['/settings/cost', 'Cost']]) {
    await page.goto(url(path));
    await heading(page, title).waitFor();
    const button = page.locator('#filter-workspaces');
    await button.click();
    const panel = page.locator(`#${await button.getAttribute('aria-controls')}`);
    await panel.waitFor();
    // The name's text.
    await panel.getByText('Research', { exact: true }).click();
    assert.equal(await panel.isVisible(), true, 'the menu stays open');
    assert.equal(await panel.getByRole('checkbox', { name: 'Research' }).isChecked(), true);
    assert.equal(await button.innerText(), 'Research');
    // The empty end of the row.
    const row = panel.locator('.ms-option').filter({ hasText: 'Default' });
    const box = await row.boundingBox();
    await page.mouse.click(box.x + box.width - 6, box.y + box.height / 2);
    assert.equal(await panel.isVisible(), true);
    assert.equal(await panel.getByRole('checkbox', { name: 'Default' }).isChecked(), true);
    assert.equal(await button.innerText(), '2 selected');
    assert.match(page.url(), /workspaces=/);
    if (path === '/settings/usage') await bothWidths(page, 'usage-multiselect');
    // Clicking a selected name unselects it.
    await panel.getByText('Research', { exact: true }).click();
    assert.equal(await panel.getByRole('checkbox', { name: 'Research' }).isChecked(), false);
    await page.keyboard.press('Escape');
    await panel.waitFor({ state: 'hidden' });
  }
});

test('4. phone (390 px): the dashboard never widens the page, and Sign out is in view in the menu', async () => {
  const phone = await contextFor(api, 'admin phone', PHONE);
  try {
    const { page } = phone;
    await page.goto(url('/dashboard'));
    await page.getByRole('heading', { level: 2, name: 'Quickstart' }).waitFor();
    await page.locator('.code-pre').getByText('curl').waitFor();
    const widths = await page.evaluate(() => ({
      doc: document.documentElement.scrollWidth, view: window.innerWidth,
      pre: document.querySelector('.code-pre').clientWidth, code: document.querySelector('.code-pre').scrollWidth,
      wide: [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
        .slice(0, 5).map((e) => `${e.tagName}.${e.className}`),
    }));
    assert.ok(widths.doc <= widths.view, `the page is ${widths.doc}px wide in a ${widths.view}px window: ${widths.wide}`);
    assert.ok(widths.code > widths.pre, 'the code scrolls inside its box instead');
    await shot(page, 'dashboard-phone.png');
    await page.getByRole('button', { name: 'Menu' }).click();
    const signOut = page.locator('#sidebar').getByRole('button', { name: 'Sign out' });
    await signOut.waitFor();
    const box = await signOut.boundingBox();
    assert.ok(box.y >= 0 && box.y + box.height <= PHONE.height, `Sign out at y=${box.y}..${box.y + box.height} is in the 844px window`);
    await shot(page, 'menu-phone.png', { fullPage: false });
  } finally {
    await phone.context.close();
  }
});

test('6. the VAT ID example in the hint passes the server\'s own check', async () => {
  const { page } = admin;
  await page.goto(url('/settings/organization'));
  await heading(page, 'Organization').waitFor();
  const vat = page.getByLabel('Tax or VAT ID');
  await vat.waitFor();
  const hint = await page.locator(`#${await vat.getAttribute('id')}-hint`).innerText();
  const example = /e\.g\. ([A-Z]{2}\w+)/.exec(hint)[1];
  assert.equal(await vat.getAttribute('placeholder'), example);
  await vat.fill(example);
  const saved = page.waitForResponse((r) => r.url().endsWith(`${O}/me/settings`) && r.request().method() === 'POST');
  await page.getByRole('button', { name: 'Save changes' }).click();
  assert.equal((await saved).status(), 200);
  assert.equal((await api.get(`${O}/me/settings`)).body.vat_id, example);
  await bothWidths(page, 'organization-vat');
});
