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
import { addMember, sql, sqlSeconds, sqlQuote } from './lib/expect.mjs';
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
  server = await startServer({ config: { ...MODELS, billing: { scheduler_interval_s: 1 }, ...(WEB_DIR ? { server: { web_dir: WEB_DIR } } : {}) } });
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

// Whether `text` names a field the way the API does (snake_case).
const SNAKE = /\b[a-z]+(?:_[a-z0-9]+)+\b/;

test('7. messages name fields by their label, as sentences', async () => {
  const { page } = admin;
  assert.equal((await api.post(`${O}/limits`, { monthly_spend_limit_usd: '50.00' })).status, 200);
  await page.goto(url('/settings/limits'));
  await heading(page, 'Limits').waitFor();
  await page.getByRole('button', { name: 'Edit limits of Research' }).click();
  const dialog = page.getByRole('dialog', { name: 'Limits of Research' });
  await dialog.getByLabel(/Monthly spend limit/).fill('80');
  expected.push('400');
  const saved = page.waitForResponse((r) => r.url().endsWith(`/workspaces/${research.id}/limits`) && r.request().method() === 'POST');
  await dialog.getByRole('button', { name: 'Save limits' }).click();
  const res = await saved;
  assert.equal(res.status(), 400);
  assert.match((await res.json()).error.message, /^monthly_spend_limit_usd: /, 'the API names the field');
  const alert = dialog.getByRole('alert').filter({ hasText: 'must not exceed' });
  await alert.waitFor();
  const text = await alert.innerText();
  expected.pop();
  assert.match(text, /^The monthly spend limit must not exceed the organization.s/);
  assert.doesNotMatch(text, SNAKE);
  await bothWidths(page, 'limits-field-message');
  // Editing the field clears the stale message.
  await dialog.getByLabel(/Monthly spend limit/).fill('8');
  await alert.waitFor({ state: 'detached' }).catch(async () => assert.equal(await alert.isVisible(), false));
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'detached' });
});

test('8a/c/d. the invite box reports whole lines, errors go when fixed, the list behind updates', async () => {
  const { page } = admin;
  await page.goto(url('/settings/members'));
  await heading(page, 'Members').waitFor();
  await page.getByRole('button', { name: 'Invite', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: 'Invite members' });
  const box = dialog.getByLabel('Email addresses, one per line');
  const good = `grace.${STAMP}@example.com`;
  await box.fill(`not an email\n${good}`);
  await dialog.getByRole('button', { name: 'Send Invites' }).click();
  const error = dialog.getByText('“not an email” is not an email address.');
  await error.waitFor();
  assert.equal(await dialog.getByText('not, an, email').count(), 0);
  await bothWidths(page, 'invite-bad-line');
  await box.fill(good);
  await error.waitFor({ state: 'hidden' });
  await dialog.getByRole('button', { name: 'Send Invites' }).click();
  await dialog.getByText('Sent 1 invite.').waitFor();
  // Behind the still open dialog, Pending invites already lists the new invite.
  assert.equal(await dialog.isVisible(), true);
  await page.getByRole('table', { name: 'Pending invites' }).getByText(good).waitFor({ state: 'attached' });
  await dialog.getByRole('button', { name: 'Done' }).click();
  await dialog.waitFor({ state: 'detached' });
});

test('8c/d/g/h. Create Key: errors clear, the list behind shows the key, names wrap between words, Escape warns', async () => {
  const { page } = admin;
  await page.goto(url('/settings/keys'));
  await heading(page, 'API Keys').waitFor();
  await page.getByRole('button', { name: 'Create Key' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create API key' });
  await dialog.getByRole('button', { name: 'Create Key' }).click();
  const error = dialog.getByText('Enter a name for the key.');
  await error.waitFor();
  await dialog.getByLabel('Key name').fill('AIsuru - Production');
  await error.waitFor({ state: 'hidden' });
  await dialog.getByRole('button', { name: 'Create Key' }).click();
  const secret = page.getByRole('dialog', { name: 'Save your API key' });
  await secret.waitFor();
  // The list behind the secret already has the key.
  const cell = page.getByRole('table', { name: 'API keys' }).locator('.cell-title', { hasText: 'AIsuru - Production' });
  await cell.waitFor({ state: 'attached' });

  // Escape would lose the secret: the first one only warns.
  await page.keyboard.press('Escape');
  await secret.getByText('You have not copied this key.').waitFor();
  assert.equal(await secret.isVisible(), true, 'the secret is still shown');
  await bothWidths(page, 'secret-escape-warning');
  await page.keyboard.press('Escape');
  await secret.waitFor({ state: 'detached' });

  // At 1280 px the name breaks between words only: its cell is wider than its longest word.
  await page.setViewportSize(DESKTOP);
  const fits = await cell.evaluate((el) => {
    const probe = document.createElement('span');
    probe.style.cssText = 'position:absolute;visibility:hidden;white-space:nowrap';
    probe.textContent = 'Production';
    el.append(probe);
    const word = probe.getBoundingClientRect().width;
    probe.remove();
    return { cell: el.getBoundingClientRect().width, word };
  });
  assert.ok(fits.cell + 0.5 >= fits.word, `the name cell (${fits.cell}px) is narrower than "Production" (${fits.word}px)`);
  await shot(page, 'keys-names-1280.png');
});

test('8b. the audit log filters by every action, billing ones included, and accepts purchase.unconfirmed', async () => {
  const actions = (await api.get(`${O}/audit_log/actions`)).body.data;
  for (const a of ['payment_method.added', 'purchase.succeeded', 'purchase.unconfirmed', 'credits.granted', 'auto_reload.updated', 'api_key.created']) {
    assert.ok(actions.includes(a), `${a} is an action`);
  }
  const bad = await api.get(`${O}/audit_log?action=purchase.nothing`);
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /audit_log\/actions/);

  // A purchase the provider never confirmed (the test card 0259 stays pending; 24 hours pass)
  // is given up by the billing scheduler, which records purchase.unconfirmed.
  assert.equal((await api.post(`${BILLING}/payment_method`, { ...CARD, number: '4000000000000259' })).status, 200);
  const p = await buy(api, '12.00');
  assert.equal(p.status, 202, JSON.stringify(p.body));
  sql(server, `UPDATE purchases SET created_at = created_at - ${sqlSeconds(server, 90000)}, updated_at = updated_at - ${sqlSeconds(server, 90000)} WHERE id = ${sqlQuote(p.body.id)};`);
  await until(async () => (await api.get(`${O}/audit_log?action=purchase.unconfirmed`)).body.data.length === 1, 'purchase.unconfirmed');
  assert.equal((await api.post(`${BILLING}/payment_method`, CARD)).status, 200);

  const { page } = admin;
  await page.goto(url('/settings/audit-log?action=purchase.unconfirmed'));
  await heading(page, 'Audit log').waitFor();
  const select = page.getByLabel('Action');
  await page.getByRole('table', { name: 'Audit log events' }).getByText('purchase.unconfirmed').waitFor();
  assert.equal(await select.inputValue(), 'purchase.unconfirmed');
  const options = await select.locator('option').evaluateAll((os) => os.map((o) => o.value));
  assert.deepEqual(options.slice(1), actions, 'the filter offers the server\'s list');
  assert.equal(await page.getByRole('table', { name: 'Audit log events' }).locator('tbody tr').count(), 1);
  await select.selectOption('purchase.succeeded');
  await page.getByRole('table', { name: 'Audit log events' }).getByText('purchase.succeeded').first().waitFor();
  await bothWidths(page, 'audit-billing-actions');
});

test('8e/f/i/j. Limits: one money format, toasts clear of buttons, Remove Limit asks, over-limit warnings', async () => {
  const { page } = admin;
  // $1.00 in Research (its limit is then set to $0.50) and a fraction of a cent in Default.
  const rk = await api.post(`${O}/api_keys`, { name: 'Research batch', workspace_id: research.id });
  const dk = await api.post(`${O}/api_keys`, { name: 'Default cheap' });
  await modelCall(rk.body.key, DOLLAR_REQUEST);
  await modelCall(dk.body.key, CHEAP_REQUEST);
  assert.equal((await api.post(`${O}/workspaces/${research.id}/limits`, { monthly_spend_limit_usd: '0.50' })).status, 200);
  const ws = async () => (await api.get(`${O}/limits`)).body.workspaces;
  await until(async () => (await ws()).every((w) => w.month_to_date_usd !== '0.00' && w.month_to_date_usd !== '0'), 'spend in both workspaces');
  const def = (await ws()).find((w) => w.name === 'Default');
  assert.ok(/^0\.00\d*[1-9]/.test(def.month_to_date_usd), `Default spent less than a cent: ${def.month_to_date_usd}`);

  await page.goto(url('/settings/limits'));
  await heading(page, 'Limits').waitFor();
  const table = page.getByRole('table', { name: 'Workspace limits' });
  const defaultRow = table.locator('tr', { hasText: 'Default' });
  await defaultRow.getByText('<$0.01', { exact: true }).waitFor();
  const researchRow = table.locator('tr', { hasText: 'Research' });
  await researchRow.getByText('Limit reached').waitFor();
  await page.locator('#limits-ws-over').getByText(/Research has reached its monthly spend limit/).waitFor();
  await bothWidths(page, 'limits-over');

  // The Cost page shows the same spend the same way.
  await page.goto(url(`/settings/cost?workspaces=${def.workspace_id}`));
  await heading(page, 'Cost').waitFor();
  await page.locator('.stat-value', { hasText: '<$0.01' }).first().waitFor();

  // Remove Limit asks first; Cancel keeps the limit.
  await page.goto(url('/settings/limits'));
  await page.locator('#change-limit').click();
  const dialog = page.getByRole('dialog', { name: 'Change monthly limit' });
  await dialog.getByRole('button', { name: 'Remove Limit' }).click();
  const confirm = page.getByRole('alertdialog', { name: 'Remove the monthly limit?' });
  await confirm.getByText('The limit of $50.00 per month stops applying at once.').waitFor();
  await bothWidths(page, 'limits-remove-confirm');
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await confirm.waitFor({ state: 'detached' });
  assert.equal((await api.get(`${O}/limits`)).body.monthly_spend_limit_usd, '50.00', 'nothing changed');
  await dialog.getByRole('button', { name: 'Remove Limit' }).click();
  await confirm.getByRole('button', { name: 'Remove Limit' }).click();
  await confirm.waitFor({ state: 'detached' });
  await dialog.waitFor({ state: 'detached' });
  assert.equal((await api.get(`${O}/limits`)).body.monthly_spend_limit_usd, null);

  // The toast that confirms it covers no button or link, at either width.
  for (const size of [DESKTOP, PHONE]) {
    await page.setViewportSize(size);
    await page.evaluate(() => { document.getElementById('toasts').replaceChildren(); });
    await page.locator('#change-limit').click();
    await page.getByRole('dialog').getByLabel('Monthly limit (USD)').fill('40');
    await page.getByRole('dialog').getByRole('button', { name: 'Update Limit' }).click();
    const toast = page.locator('.toast', { hasText: 'Monthly limit set to $40.00' });
    await toast.waitFor();
    // Controls under the toast, and whether a press at their centre still reaches them.
    const hits = await toast.evaluate((t) => {
      const r = t.getBoundingClientRect();
      return [...document.querySelectorAll('button, a[href], input, select')].filter((el) => {
        const b = el.getBoundingClientRect();
        if (!b.width || !b.height || el.closest('#sidebar:not(.open)')) return false;
        return b.left < r.right && b.right > r.left && b.top < r.bottom && b.bottom > r.top;
      }).map((el) => {
        const b = el.getBoundingClientRect();
        const at = document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2);
        return { name: el.textContent.trim() || el.getAttribute('aria-label') || el.tagName, reached: !!at && el.contains(at) };
      });
    });
    if (size === DESKTOP) assert.deepEqual(hits, [], 'at 1280 px the toast sits where there is nothing to press');
    // A phone's top bar has no free space: the toast lies over it for a moment, and presses
    // go through it to the controls.
    for (const hit of hits) assert.equal(hit.reached, true, `a press on ${hit.name} reaches it through the toast`);
    assert.ok(hits.every((hit) => /Menu|Gatehouse|Organization/.test(hit.name)), `only the top bar is under the toast: ${JSON.stringify(hits)}`);
    await shot(page, `limits-toast-${size.width}.png`, { fullPage: false });
    assert.equal((await api.post(`${O}/limits`, { monthly_spend_limit_usd: '50.00' })).status, 200);
    await page.reload();
    await heading(page, 'Limits').waitFor();
  }
  await page.setViewportSize(DESKTOP);
});
