// The console's organization administration in a real browser: an admin creates a workspace,
// invites a member who joins from a second browser, adds them to the workspace, creates an
// API key whose secret is shown (and copied) once, renames and deactivates it, manages admin
// keys, and reads the audit log. Drives Debian's chromium with playwright-core.
//
// Screenshots land in tests/e2e/artifacts/ (git-ignored). The server serves the console
// embedded in its binary; set GATEHOUSE_WEB_DIR=/abs/path/to/web to serve web/ from disk
// instead while working on the pages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';

const ARTIFACTS = join(import.meta.dirname, 'artifacts');
const WEB_DIR = process.env.GATEHOUSE_WEB_DIR;
const STAMP = `${Date.now()}`;
const ADMIN_EMAIL = `ada.${STAMP}@example.com`;
const MEMBER_EMAIL = `grace.${STAMP}@example.com`;
const ORG = 'Acme Analytics';
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

let server;
let browser;
let admin; // {context, page}
let member; // {context, page}
let api; // the admin's session, for checking what the server holds
const problems = [];
const state = {}; // ids shared between the steps

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
    // Refusals the test provokes on purpose (inviting an existing member, demoting the only
    // admin: 409) are logged by chromium as failed loads; anything else is a problem.
    if (/^Failed to load resource: the server responded with a status of (401|409)\b/.test(text)) return;
    problems.push(`${who} console: ${text}`);
  });
  p.on('pageerror', (e) => problems.push(`${who} page error: ${e.message}`));
  p.on('requestfailed', (r) => {
    if (r.failure()?.errorText === 'net::ERR_ABORTED') return; // navigation away mid-request
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
const nav = (p) => p.getByRole('navigation', { name: 'Console' });

// The invite link in the newest mail to `email` (lastLink only knows sign-in links).
function inviteLink(email) {
  const msgs = server.outbox().filter((m) => m.to && m.to.toLowerCase().includes(email.toLowerCase()));
  assert.ok(msgs.length, `no mail to ${email}`);
  const m = msgs[msgs.length - 1].body.match(/https?:\/\/\S+\/auth\/invite\?token=[A-Za-z0-9_-]+/);
  assert.ok(m, `no invite link in the mail to ${email}`);
  return m[0];
}

// Whether `secret` is anywhere in the page: its markup (page.content()), its text, or the
// live value of any form field (a value set from script is not in the markup).
async function secretInPage(p, secret) {
  if ((await p.content()).includes(secret)) return true;
  return p.evaluate((s) => document.documentElement.textContent.includes(s)
    || [...document.querySelectorAll('input, textarea')].some((el) => el.value.includes(s)), secret);
}

// Runs `act` (a filter change) and resolves once the list request it causes has answered
// with `query` in its URL and the page has drawn the answer.
async function filtered(p, path, query, act) {
  const answered = p.waitForResponse((r) => r.url().includes(path) && r.url().includes(query) && r.request().method() === 'GET');
  await act();
  const res = await answered;
  assert.equal(res.status(), 200);
  const n = (await res.json()).data.length;
  if (n) await p.locator('main table:visible tbody tr').nth(n - 1).waitFor();
  else await p.locator('main table:visible').waitFor({ state: 'detached' });
  return n;
}

async function newSignedInContext(client) {
  const context = await browser.newContext({ viewport: DESKTOP });
  await context.addCookies([{ name: 'gh_session', value: client.cookies.get('gh_session'), url: server.consoleUrl, httpOnly: true, sameSite: 'Lax' }]);
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  watch(page, 'admin');
  return { context, page };
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startServer({ config: withWebDir() });
  browser = await launch();
  // The admin signs up through the API (sign-up itself is covered by browser.test.mjs);
  // the browser gets the same session cookie.
  api = new Client(server.consoleUrl);
  await api.signUpWithOrg(server, ADMIN_EMAIL, ORG, 'Ada Lovelace');
  admin = await newSignedInContext(api);
  await admin.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.consoleUrl });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the sidebar links Members, Workspaces, API Keys and, for admins, the Audit log', async () => {
  const { page } = admin;
  await page.goto(url('/dashboard'));
  await heading(page, 'Welcome, Ada').waitFor();
  for (const [name, href] of [['Members', '/settings/members'], ['Workspaces', '/settings/workspaces'],
    ['API Keys', '/settings/keys'], ['Audit log', '/settings/audit-log']]) {
    const link = nav(page).getByRole('link', { name, exact: true });
    assert.equal(await link.getAttribute('href'), href, name);
    assert.equal(await link.locator('.nav-soon').count(), 0, `${name} is no longer "Soon"`);
  }
});

test('Workspaces: the Default workspace has no actions; an admin creates one with a colour', async () => {
  const { page } = admin;
  await nav(page).getByRole('link', { name: 'Workspaces', exact: true }).click();
  await page.waitForURL(url('/settings/workspaces'));
  await heading(page, 'Workspaces').waitFor();
  const table = page.getByRole('table', { name: 'Workspaces' });
  const defaultRow = table.getByRole('row', { name: /Default/ });
  await defaultRow.waitFor();
  // Default cannot be renamed or archived: its menu only changes the colour.
  await defaultRow.getByRole('button', { name: 'Actions for Default' }).click();
  assert.deepEqual(await page.getByRole('menu', { name: 'Actions for Default' }).getByRole('menuitem').allInnerTexts(), ['Change colour']);
  await page.keyboard.press('Escape');

  const add = page.getByRole('button', { name: 'Add Workspace' });
  await add.click();
  const dialog = page.getByRole('dialog', { name: 'Create workspace' });
  await dialog.waitFor();
  // Keyboard: focus starts in the name field, Tab stays inside, Escape closes and returns focus.
  const focused = () => page.evaluate(() => document.activeElement.getAttribute('aria-label') || document.activeElement.textContent.trim() || document.activeElement.id);
  assert.equal(await dialog.getByLabel('Workspace name').evaluate((el) => el === document.activeElement), true);
  await dialog.getByRole('button', { name: 'Create', exact: true }).focus();
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'Close', 'Tab from the last control wraps to the first');
  await page.keyboard.press('Shift+Tab');
  assert.equal(await focused(), 'Create', 'Shift+Tab from the first control wraps to the last');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  assert.equal(await add.evaluate((el) => el === document.activeElement), true, 'focus returns to the button');
  await add.click();
  // The name is required; nothing is sent without it.
  await dialog.getByRole('button', { name: 'Create', exact: true }).click();
  await dialog.getByText('Enter a name for the workspace.').waitFor();
  assert.equal(await dialog.getByLabel('Workspace name').getAttribute('maxlength'), '40');
  const swatches = dialog.getByRole('radio');
  assert.equal(await swatches.count(), 10, 'the ten palette colours');
  await dialog.getByLabel('Workspace name').fill('Project Alpha');
  await dialog.getByRole('radio', { name: 'Teal' }).check();
  const created = page.waitForResponse((r) => r.url().endsWith('/v1/organizations/workspaces') && r.request().method() === 'POST');
  await dialog.getByRole('button', { name: 'Create', exact: true }).click();
  const res = await created;
  assert.equal(res.status(), 201);
  assert.equal(res.request().postDataJSON().display_color, '#2F8F8F');
  await dialog.waitFor({ state: 'detached' });
  const link = table.getByRole('link', { name: 'Project Alpha' });
  await link.waitFor();
  state.workspaceId = (await res.json()).id;
  assert.equal(await link.getAttribute('href'), `/settings/workspaces/${state.workspaceId}`);

  const { body } = await api.get(`/v1/organizations/workspaces/${state.workspaceId}`);
  assert.equal(body.name, 'Project Alpha');
  assert.equal(body.display_color, '#2F8F8F');
});

test('Workspaces: archiving asks first, explains the keys, and hides the workspace until "Show archived"', async () => {
  const { page } = admin;
  const sandbox = await api.post('/v1/organizations/workspaces', { name: 'Sandbox draft' });
  assert.equal(sandbox.status, 201);
  await page.reload();
  const table = page.getByRole('table', { name: 'Workspaces' });
  await table.getByRole('link', { name: 'Sandbox draft' }).waitFor();
  // Rename from the row menu.
  await page.getByRole('button', { name: 'Actions for Sandbox draft' }).click();
  await page.getByRole('menuitem', { name: 'Rename' }).click();
  const rename = page.getByRole('dialog', { name: 'Rename Sandbox draft' });
  assert.equal(await rename.getByLabel('Workspace name').inputValue(), 'Sandbox draft');
  await rename.getByLabel('Workspace name').fill('Sandbox');
  await rename.getByRole('button', { name: 'Rename' }).click();
  await rename.waitFor({ state: 'detached' });
  await table.getByRole('link', { name: 'Sandbox', exact: true }).waitFor();
  assert.equal((await api.get(`/v1/organizations/workspaces/${sandbox.body.id}`)).body.name, 'Sandbox');

  await page.getByRole('button', { name: 'Actions for Sandbox' }).click();
  const menu = page.getByRole('menu', { name: 'Actions for Sandbox' });
  assert.deepEqual(await menu.getByRole('menuitem').allInnerTexts(), ['Rename', 'Change colour', 'Archive']);
  await menu.getByRole('menuitem', { name: 'Archive' }).click();
  const confirm = page.getByRole('alertdialog', { name: 'Archive Sandbox?' });
  await confirm.getByText('Its API keys will be archived too').waitFor();
  // Escape cancels: nothing archived.
  await page.keyboard.press('Escape');
  await confirm.waitFor({ state: 'detached' });
  assert.equal((await api.get(`/v1/organizations/workspaces/${sandbox.body.id}`)).body.archived_at, null);

  await page.getByRole('button', { name: 'Actions for Sandbox' }).click();
  await page.getByRole('menuitem', { name: 'Archive' }).click();
  await page.getByRole('alertdialog', { name: 'Archive Sandbox?' }).getByRole('button', { name: 'Archive workspace' }).click();
  await table.getByRole('link', { name: 'Sandbox' }).waitFor({ state: 'detached' });
  assert.ok((await api.get(`/v1/organizations/workspaces/${sandbox.body.id}`)).body.archived_at);
  await page.getByLabel('Show archived').check();
  const archivedRow = table.getByRole('row', { name: /Sandbox/ });
  await archivedRow.getByText('Archived').waitFor();
  assert.equal(await archivedRow.getByRole('button', { name: /Actions for/ }).count(), 0, 'an archived workspace cannot change');
  await page.getByLabel('Show archived').uncheck();
  await archivedRow.waitFor({ state: 'detached' });
});

test('Members: an admin invites people; each address gets its own result', async () => {
  const { page } = admin;
  await nav(page).getByRole('link', { name: 'Members', exact: true }).click();
  await page.waitForURL(url('/settings/members'));
  await heading(page, 'Members').waitFor();
  const members = page.getByRole('table', { name: 'Members' });
  await members.getByRole('row', { name: new RegExp(ADMIN_EMAIL.replace(/\./g, '\\.')) }).waitFor();

  await page.getByRole('button', { name: 'Invite', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: 'Invite members' });
  const emails = dialog.getByLabel('Email addresses, one per line');
  await emails.fill('not-an-email');
  await dialog.getByRole('button', { name: 'Send Invites' }).click();
  await dialog.getByText('“not-an-email” is not an email address.').waitFor();
  assert.equal(server.outbox().filter((m) => /invite/i.test(m.subject ?? '')).length, 0);

  // One new address and one that already belongs to a member (the server refuses it).
  await emails.fill(`${MEMBER_EMAIL}\n${ADMIN_EMAIL}`);
  assert.deepEqual(await dialog.getByLabel('Role').locator('option').allInnerTexts(), ['User', 'Developer', 'Billing', 'Admin']);
  await dialog.getByLabel('Role').selectOption({ label: 'Developer' });
  await dialog.getByRole('button', { name: 'Send Invites' }).click();
  const results = dialog.getByRole('list', { name: 'Invite results' });
  const ok = results.getByRole('listitem').filter({ hasText: MEMBER_EMAIL });
  await ok.getByText('Invite sent').waitFor();
  const refused = results.getByRole('listitem').filter({ hasText: ADMIN_EMAIL });
  await refused.locator('.invite-result-text').filter({ hasNotText: /Sending|Invite sent/ }).waitFor();
  const reason = await refused.locator('.invite-result-text').innerText();
  assert.ok(reason.length > 10, `the server's reason is shown: ${reason}`);
  await dialog.getByText('Sent 1 invite.').waitFor();
  assert.equal(await emails.inputValue(), ADMIN_EMAIL, 'the refused address stays to fix or retry');
  await dialog.getByRole('button', { name: 'Done' }).click();
  await dialog.waitFor({ state: 'detached' });

  const pending = page.getByRole('table', { name: 'Pending invites' });
  const row = pending.getByRole('row', { name: new RegExp(MEMBER_EMAIL.replace(/\./g, '\\.')) });
  await row.getByText('Developer').waitFor();
  await row.getByText('Pending').waitFor();
  const { body } = await api.get('/v1/organizations/invites?status=pending');
  assert.deepEqual(body.data.map((i) => [i.email, i.role]), [[MEMBER_EMAIL, 'developer']]);
});

test('Members: resending an invite mails a new link; revoking asks first', async () => {
  const { page } = admin;
  const before = server.outbox().filter((m) => m.to?.includes(MEMBER_EMAIL)).length;
  await page.getByRole('button', { name: `Resend invite to ${MEMBER_EMAIL}` }).click();
  await page.locator('.toast').filter({ hasText: `Sent a new invite link to ${MEMBER_EMAIL}` }).waitFor();
  assert.equal(server.outbox().filter((m) => m.to?.includes(MEMBER_EMAIL)).length, before + 1);

  // A second invite, revoked from the list.
  const other = `alan.${STAMP}@example.com`;
  assert.equal((await api.post('/v1/organizations/invites', { email: other, role: 'user' })).status, 201);
  await page.reload();
  await page.getByRole('button', { name: `Revoke invite to ${other}` }).click();
  const confirm = page.getByRole('alertdialog', { name: 'Revoke invite?' });
  await confirm.getByText(other).waitFor();
  await confirm.getByRole('button', { name: 'Revoke invite' }).click();
  await confirm.waitFor({ state: 'detached' });
  await page.getByRole('table', { name: 'Pending invites' }).getByText(other).waitFor({ state: 'detached' });
  const { body } = await api.get('/v1/organizations/invites?status=pending');
  assert.deepEqual(body.data.map((i) => i.email), [MEMBER_EMAIL]);
});

test('Members: the server\'s refusal to demote the only admin is shown and the role stays', async () => {
  const { page } = admin;
  const role = page.getByRole('combobox', { name: 'Role for Ada Lovelace' });
  assert.equal(await role.inputValue(), 'admin');
  const answered = page.waitForResponse((r) => /\/v1\/organizations\/users\//.test(r.url()) && r.request().method() === 'POST');
  await role.selectOption('user');
  const res = await answered;
  assert.equal(res.status(), 409);
  const message = (await res.json()).error.message;
  await page.getByRole('alert').filter({ hasText: message }).waitFor();
  assert.equal(await role.inputValue(), 'admin', 'the select goes back to the real role');
  assert.equal((await api.get('/auth/session')).body.current_organization.role, 'admin');
});

test('the invited member opens the mailed link in another browser, onboards and lands in the organization', async () => {
  const context = await browser.newContext({ viewport: DESKTOP });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  watch(page, 'member');
  member = { context, page };

  await page.goto(inviteLink(MEMBER_EMAIL));
  await page.waitForURL(url('/onboarding'));
  await page.getByText(MEMBER_EMAIL).waitFor();
  await page.getByLabel('Full name').fill('Grace Hopper');
  await page.getByLabel('I confirm that I am at least 18 years old').check();
  await page.getByLabel('I accept the Terms of Service').check();
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(url('/dashboard'));
  await heading(page, 'Welcome, Grace').waitFor();
  await page.getByRole('button', { name: new RegExp(`Organization: ${ORG}`) }).waitFor();
  const session = await (await page.request.get(url('/auth/session'))).json();
  assert.equal(session.current_organization.name, ORG);
  assert.equal(session.current_organization.role, 'developer');
  state.memberId = session.account.id;
  // Not an admin: no audit log in the sidebar.
  await nav(page).getByRole('link', { name: 'Members', exact: true }).waitFor();
  assert.equal(await nav(page).getByRole('link', { name: 'Audit log' }).count(), 0);
});

test('a member who is not an admin sees the member list read-only', async () => {
  const { page } = member;
  await nav(page).getByRole('link', { name: 'Members', exact: true }).click();
  await heading(page, 'Members').waitFor();
  const table = page.getByRole('table', { name: 'Members' });
  await table.getByRole('row', { name: /Ada Lovelace/ }).getByText('Admin').waitFor();
  await page.getByText('Only admins can invite people, change roles or remove members.').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Invite', exact: true }).count(), 0);
  assert.equal(await table.getByRole('combobox').count(), 0);
  assert.equal(await table.getByRole('button', { name: /Actions for/ }).count(), 0);
  assert.equal(await page.getByRole('table', { name: 'Pending invites' }).count(), 0);
});

test('the admin sees the new member and adds them to the workspace from its page', async () => {
  const { page } = admin;
  await page.reload();
  const members = page.getByRole('table', { name: 'Members' });
  const row = members.getByRole('row', { name: /Grace Hopper/ });
  await row.waitFor();
  await row.getByText(MEMBER_EMAIL).waitFor();
  assert.equal(await row.getByRole('combobox', { name: 'Role for Grace Hopper' }).inputValue(), 'developer');
  // Accepted: no longer pending.
  await page.getByText('No pending invites.').waitFor();
  await shot(page, 'members-1280.png');

  await nav(page).getByRole('link', { name: 'Workspaces', exact: true }).click();
  await page.getByRole('link', { name: 'Project Alpha' }).click();
  await page.waitForURL(url(`/settings/workspaces/${state.workspaceId}`));
  await heading(page, 'Project Alpha').waitFor();
  assert.match(await page.title(), /^Project Alpha · /);
  assert.equal(await nav(page).getByRole('link', { name: 'Workspaces', exact: true }).getAttribute('aria-current'), 'true');
  await page.getByText(state.workspaceId).waitFor();
  await page.getByText('No members yet.').waitFor();
  // Change the colour from the page's own menu.
  await page.getByRole('button', { name: 'Workspace actions for Project Alpha' }).click();
  await page.getByRole('menuitem', { name: 'Change colour' }).click();
  const colour = page.getByRole('dialog', { name: 'Change the colour of Project Alpha' });
  assert.equal(await colour.getByRole('radio', { name: 'Teal' }).isChecked(), true, 'the current colour is selected');
  await colour.getByRole('radio', { name: 'Blue' }).check();
  await colour.getByRole('button', { name: 'Save colour' }).click();
  await colour.waitFor({ state: 'detached' });
  await page.locator('.detail-color').getByText('Blue').waitFor();
  assert.equal((await api.get(`/v1/organizations/workspaces/${state.workspaceId}`)).body.display_color, '#4E8FD4');

  await page.getByRole('button', { name: 'Add member' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add a member to Project Alpha' });
  const who = dialog.getByLabel('Member');
  // Everyone in the organization not yet in the workspace (the list loads after the dialog
  // opens, so wait for it before reading it).
  await who.locator('option', { hasText: MEMBER_EMAIL }).waitFor({ state: 'attached' });
  const options = await who.locator('option').allInnerTexts();
  assert.ok(options.includes(`Grace Hopper (${MEMBER_EMAIL})`), options.join(', '));
  await who.selectOption({ label: `Grace Hopper (${MEMBER_EMAIL})` });
  assert.equal(await dialog.getByLabel('Workspace role').inputValue(), 'workspace_developer', 'suggested from the organization role');
  assert.deepEqual(await dialog.getByLabel('Workspace role').locator('option').allInnerTexts(),
    ['Workspace User', 'Workspace Developer', 'Workspace Admin', 'Workspace Billing']);
  await dialog.getByRole('button', { name: 'Add member' }).click();
  await dialog.waitFor({ state: 'detached' });
  const wsTable = page.getByRole('table', { name: 'Members of Project Alpha' });
  const wsRow = wsTable.getByRole('row', { name: /Grace Hopper/ });
  await wsRow.waitFor();
  assert.equal(await wsRow.getByRole('combobox', { name: 'Workspace role for Grace Hopper' }).inputValue(), 'workspace_developer');
  const { body } = await api.get(`/v1/organizations/workspaces/${state.workspaceId}/members`);
  assert.deepEqual(body.data.map((m) => [m.user_id, m.workspace_role]), [[state.memberId, 'workspace_developer']]);
  await shot(page, 'workspace-1280.png');

  // The Default workspace has no member list.
  await page.getByRole('navigation', { name: 'Breadcrumb' }).getByRole('link', { name: 'Workspaces' }).click();
  await page.getByRole('table', { name: 'Workspaces' }).getByRole('link', { name: 'Default' }).click();
  await heading(page, 'Default').waitFor();
  await page.getByText('Everyone in the organization can use the Default workspace.').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Add member' }).count(), 0);
  await page.getByRole('button', { name: 'Workspace actions for Default' }).click();
  assert.deepEqual(await page.getByRole('menu').getByRole('menuitem').allInnerTexts(), ['Change colour']);
  await page.keyboard.press('Escape');
});

test('API Keys: a new key\'s secret is shown once, copied, and gone from the page after Done', async () => {
  const { page } = admin;
  await nav(page).getByRole('link', { name: 'API Keys', exact: true }).click();
  await page.waitForURL(url('/settings/keys'));
  await heading(page, 'API Keys').waitFor();
  await page.getByRole('heading', { name: 'No API keys yet' }).waitFor();

  await page.getByRole('button', { name: 'Create Key' }).first().click();
  const dialog = page.getByRole('dialog', { name: 'Create API key' });
  const ws = dialog.getByLabel('Workspace');
  await ws.locator('option', { hasText: 'Project Alpha' }).waitFor({ state: 'attached' });
  const { body: wsList } = await api.get('/v1/organizations/workspaces');
  const def = wsList.data.find((w) => w.is_default);
  assert.equal(await ws.inputValue(), def.id, 'Default is preselected');
  // Only workspaces that can hold keys: the archived Sandbox is not offered.
  assert.deepEqual(await ws.locator('option').allInnerTexts(), ['Default (default)', 'Project Alpha']);
  await dialog.getByLabel('Key name').fill('Production');
  const created = page.waitForResponse((r) => r.url().endsWith('/v1/organizations/api_keys') && r.request().method() === 'POST');
  await dialog.getByRole('button', { name: 'Create Key' }).click();
  assert.equal((await created).status(), 201);

  const secretDialog = page.getByRole('dialog', { name: 'Save your API key' });
  await secretDialog.getByText("Save this key now. You won't be able to see it again.").waitFor();
  const field = secretDialog.getByRole('textbox', { name: 'Secret of Production' });
  assert.equal(await field.getAttribute('readonly'), '');
  const secret = await field.inputValue();
  assert.match(secret, /^sk-gh-api01-[A-Za-z0-9]{49}$/);
  assert.equal(await secretInPage(page, secret), true, 'while the dialog is open the check sees it');
  await shot(page, 'key-created-1280.png', { fullPage: false });
  await secretDialog.getByRole('button', { name: 'Copy' }).click();
  await secretDialog.getByRole('button', { name: 'Copied' }).waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(copied, secret);
  assert.ok(copied.startsWith('sk-gh-api01-'));
  await secretDialog.getByRole('button', { name: 'Done' }).click();
  await secretDialog.waitFor({ state: 'detached' });

  const table = page.getByRole('table', { name: 'API keys' });
  const row = table.getByRole('row', { name: /Production/ });
  await row.waitFor();
  const { body } = await api.get('/v1/organizations/api_keys');
  assert.equal(body.data.length, 1);
  const key = body.data[0];
  state.keyId = key.id;
  assert.equal(await row.locator('code').innerText(), key.partial_key_hint);
  assert.ok(secret.startsWith(key.partial_key_hint.split('...')[0]));
  await row.getByText('Default').waitFor();
  await row.getByText('Ada Lovelace').waitFor();
  await row.getByText('Never').waitFor();
  await row.getByText('Active').waitFor();
  assert.equal(await secretInPage(page, secret), false, 'the secret is nowhere in the page');
  assert.equal(await secretInPage(page, secret.slice(12, 40)), false, 'not even part of it');
});

test('API Keys: rename and deactivate from the row menu; filters by status and workspace', async () => {
  const { page } = admin;
  const table = page.getByRole('table', { name: 'API keys' });
  await page.getByRole('button', { name: 'Actions for Production' }).click();
  assert.deepEqual(await page.getByRole('menu', { name: 'Actions for Production' }).getByRole('menuitem').allInnerTexts(),
    ['Rename', 'Deactivate', 'Archive']);
  await page.getByRole('menuitem', { name: 'Rename' }).click();
  const dialog = page.getByRole('dialog', { name: 'Rename API key' });
  await dialog.getByLabel('Key name').fill('Production v2');
  await dialog.getByRole('button', { name: 'Rename' }).click();
  await dialog.waitFor({ state: 'detached' });
  const row = table.getByRole('row', { name: /Production v2/ });
  await row.waitFor();
  assert.equal((await api.get(`/v1/organizations/api_keys/${state.keyId}`)).body.name, 'Production v2');

  await page.getByRole('button', { name: 'Actions for Production v2' }).click();
  await page.getByRole('menuitem', { name: 'Deactivate' }).click();
  await row.getByText('Inactive').waitFor();
  assert.equal((await api.get(`/v1/organizations/api_keys/${state.keyId}`)).body.status, 'inactive');
  // The menu by keyboard: ArrowDown opens it on the first item, Escape closes it and
  // returns focus to its button.
  const trigger = page.getByRole('button', { name: 'Actions for Production v2' });
  await trigger.focus();
  await page.keyboard.press('ArrowDown');
  const first = page.getByRole('menuitem', { name: 'Rename' });
  assert.equal(await first.evaluate((el) => el === document.activeElement), true);
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.getByRole('menuitem', { name: 'Reactivate' }).evaluate((el) => el === document.activeElement), true);
  await page.keyboard.press('Escape');
  await first.waitFor({ state: 'hidden' });
  assert.equal(await trigger.getAttribute('aria-expanded'), 'false');
  assert.equal(await trigger.evaluate((el) => el === document.activeElement), true);

  // A second key, in Project Alpha, for the filters.
  const staging = await api.post('/v1/organizations/api_keys', { name: 'Staging', workspace_id: state.workspaceId });
  assert.equal(staging.status, 201);
  const names = () => table.locator('tbody tr .cell-title').allInnerTexts();
  const KEYS = '/v1/organizations/api_keys';
  await filtered(page, KEYS, 'status=active', () => page.getByLabel('Status').selectOption({ label: 'Active' }));
  assert.deepEqual(await names(), ['Staging']);
  assert.match(page.url(), /status=active/);
  await filtered(page, KEYS, 'status=inactive', () => page.getByLabel('Status').selectOption({ label: 'Inactive' }));
  assert.deepEqual(await names(), ['Production v2']);
  await filtered(page, KEYS, `workspace_id=${state.workspaceId}`, () => page.getByLabel('Workspace').selectOption({ label: 'Project Alpha' }));
  await page.getByRole('heading', { name: 'No keys match these filters' }).waitFor();
  await filtered(page, KEYS, 'limit=', () => page.getByRole('button', { name: 'Clear filters' }).click());
  assert.deepEqual(await names(), ['Production v2', 'Staging']);
  await table.getByRole('row', { name: /Staging/ }).getByText('Project Alpha').waitFor();
  await shot(page, 'keys-1280.png');
});

test('API Keys at phone width: rows become cards, nothing overflows', async () => {
  const { page } = admin;
  await page.setViewportSize(PHONE);
  try {
    await page.reload();
    const row = page.getByRole('table', { name: 'API keys' }).getByRole('row', { name: /Staging/ });
    await row.waitFor();
    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true);
    assert.equal(await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'API Keys', exact: true }).isVisible(), false);
    await page.getByRole('button', { name: 'Actions for Staging' }).waitFor();
    await shot(page, 'keys-390.png');
  } finally {
    await page.setViewportSize(DESKTOP);
  }
});

test('Admin keys: created with the secret shown once, usable with x-api-key, revoked after a confirmation', async () => {
  const { page } = admin;
  await page.reload();
  await page.getByRole('tab', { name: 'Admin keys' }).click();
  assert.match(page.url(), /tab=admin/);
  const panel = page.getByRole('tabpanel', { name: 'Admin keys' });
  await panel.getByText('x-api-key').first().waitFor();
  await panel.getByRole('button', { name: 'Create admin key' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create admin key' });
  await dialog.getByLabel('Key name').fill('Provisioning');
  await dialog.getByRole('button', { name: 'Create admin key' }).click();
  const secretDialog = page.getByRole('dialog', { name: 'Save your admin key' });
  const secret = await secretDialog.getByRole('textbox').inputValue();
  assert.match(secret, /^sk-gh-admin01-/);
  await secretDialog.getByRole('button', { name: 'Done' }).click();
  await secretDialog.waitFor({ state: 'detached' });
  assert.equal(await secretInPage(page, secret), false);
  const table = page.getByRole('table', { name: 'Admin keys' });
  const row = table.getByRole('row', { name: /Provisioning/ });
  await row.getByText('Active').waitFor();

  const viaKey = await fetch(url('/v1/organizations/users'), { headers: { 'x-api-key': secret } });
  assert.equal(viaKey.status, 200);

  await row.getByRole('button', { name: 'Revoke Provisioning' }).click();
  const confirm = page.getByRole('alertdialog', { name: 'Revoke Provisioning?' });
  await confirm.getByText('Revoking is final.').waitFor();
  await confirm.getByRole('button', { name: 'Revoke key' }).click();
  await row.getByText('Revoked').waitFor();
  assert.equal(await row.getByRole('button', { name: 'Revoke Provisioning' }).count(), 0);
  assert.equal((await fetch(url('/v1/organizations/users'), { headers: { 'x-api-key': secret } })).status, 401);
});

test('the audit log lists the changes, newest first, and filters by action and actor', async () => {
  const { page } = admin;
  await nav(page).getByRole('link', { name: 'Audit log' }).click();
  await page.waitForURL(url('/settings/audit-log'));
  await heading(page, 'Audit log').waitFor();
  const table = page.getByRole('table', { name: 'Audit log events' });
  await table.getByRole('row').nth(1).waitFor();
  const actions = await table.locator('code.action-name').allInnerTexts();
  for (const a of ['workspace.created', 'invite.created', 'invite.accepted', 'api_key.created', 'workspace_member.added', 'api_key.updated']) {
    assert.ok(actions.includes(a), `${a} in ${actions.join(', ')}`);
  }
  // Newest first: the admin key was revoked last.
  assert.equal(actions[0], 'admin_key.revoked');
  assert.ok(actions.indexOf('api_key.created') < actions.indexOf('workspace.created'));
  await shot(page, 'audit-log-1280.png');

  const AUDIT = '/v1/organizations/audit_log';
  await filtered(page, AUDIT, 'action=api_key.created', () => page.getByLabel('Action').selectOption('api_key.created'));
  assert.deepEqual(await table.locator('code.action-name').allInnerTexts(), ['api_key.created', 'api_key.created']);
  assert.match(page.url(), /action=api_key\.created/);

  await filtered(page, AUDIT, 'limit=', () => page.getByLabel('Action').selectOption(''));
  await filtered(page, AUDIT, `actor_id=${state.memberId}`,
    () => page.getByLabel('Actor').selectOption({ label: `Grace Hopper (${MEMBER_EMAIL})` }));
  assert.deepEqual(await table.locator('code.action-name').allInnerTexts(), ['invite.accepted']);
});

test('the audit log loads older events with "Load more"', async () => {
  const { page } = admin;
  // 60 more events: renames of the Staging key.
  const { body: keys } = await api.get('/v1/organizations/api_keys?status=active');
  const staging = keys.data.find((k) => k.name === 'Staging');
  for (let i = 1; i <= 60; i++) {
    assert.equal((await api.post(`/v1/organizations/api_keys/${staging.id}`, { name: `Staging ${i}` })).status, 200);
  }
  const total = (await api.get('/v1/organizations/audit_log?limit=1000')).body.data.length;
  assert.ok(total > 50 && total <= 100, `${total} events: two pages of 50`);
  await page.goto(url('/settings/audit-log'));
  const table = page.getByRole('table', { name: 'Audit log events' });
  await table.getByRole('row').nth(1).waitFor();
  const rows = table.locator('tbody tr');
  assert.equal(await rows.count(), 50);
  assert.equal(await rows.first().locator('.cell-sub').innerText(), 'name: Staging 59 → Staging 60');
  const more = page.getByRole('button', { name: 'Load more' });
  await more.click();
  await rows.nth(total - 1).waitFor();
  await more.waitFor({ state: 'hidden' });
  assert.equal(await rows.count(), total);
  assert.equal(await rows.last().locator('code.action-name').innerText(), 'workspace.created', 'the oldest event comes last');
  const ids = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.eventId));
  assert.equal(new Set(ids).size, total, 'no event twice');
});

test('a developer sees the keys of the workspaces they reach, and no admin keys', async () => {
  const { page } = member;
  await page.goto(url('/settings/keys'));
  await heading(page, 'API Keys').waitFor();
  const table = page.getByRole('table', { name: 'API keys' });
  await table.getByRole('row', { name: /Production v2/ }).waitFor();
  await table.getByRole('row', { name: /Staging 60/ }).waitFor();
  assert.equal(await page.getByRole('tab').count(), 0, 'no admin keys tab');
  await page.getByRole('button', { name: 'Create Key' }).first().click();
  const dialog = page.getByRole('dialog', { name: 'Create API key' });
  await dialog.getByLabel('Key name').fill('Grace laptop');
  await dialog.getByLabel('Workspace').selectOption({ label: 'Project Alpha' });
  await dialog.getByRole('button', { name: 'Create Key' }).click();
  const secretDialog = page.getByRole('dialog', { name: 'Save your API key' });
  assert.match(await secretDialog.getByRole('textbox').inputValue(), /^sk-gh-api01-/);
  await secretDialog.getByRole('button', { name: 'Done' }).click();
  const row = table.getByRole('row', { name: /Grace laptop/ });
  await row.getByText('Grace Hopper').waitFor();
  await row.getByText('Project Alpha').waitFor();
});

test('a member who is not an admin cannot read the audit log', async () => {
  const { page } = member;
  await page.goto(url('/settings/audit-log'));
  await heading(page, 'Audit log').waitFor();
  await page.getByText('Only admins can read the audit log.').waitFor();
  assert.equal(await page.getByRole('table').count(), 0);
});

test('no script errors, CSP violations or failed requests', () => {
  assert.deepEqual(problems, []);
});
