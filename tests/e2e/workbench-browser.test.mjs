// The Workbench (issue 16, point 9) in a real browser against the real server, admission on:
// an admin picks a workspace and a model, writes a system prompt and a message, sets max tokens
// and temperature and watches the answer stream; the tokens and cost shown are those the model
// API metered for the workspace's "Workbench" key, the organization's credits pay for it, the
// key's secret never reaches the browser, "Get code" gives code that makes the same call, a
// spend limit refuses a call as it would any other, a developer uses it on a phone and a user
// without a key role cannot. Screenshots in tests/e2e/artifacts/workbench-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { startServer, ROOT } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { addMember, sql, sqlQuote } from './lib/expect.mjs';
import { grant, admission, nusd, until } from './lib/limits.mjs';

const ARTIFACTS = join(import.meta.dirname, 'artifacts');
const WEB_DIR = process.env.GATEHOUSE_WEB_DIR;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const O = '/v1/organizations';
const SECRET = /sk-gh-api01-[0-9A-Za-z]{43}/;

let server;
let browser;
let api;
let orgId;
let cfg;
const problems = [];
const bodies = []; // every response body the browser got, to look for secrets

function watch(p, who) {
  p.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    if (who === 'admin limit' && /status of (400|402|429)\b/.test(msg.text())) return; // the refusal provoked on purpose
    problems.push(`${who} console: ${msg.text()}`);
  });
  p.on('pageerror', (e) => problems.push(`${who} page error: ${e.message}`));
  p.on('response', async (r) => {
    try { bodies.push({ url: r.url(), text: await r.text() }); } catch { /* a redirect or a download */ }
  });
}

async function contextFor(client, who, viewport = DESKTOP) {
  const context = await browser.newContext({ viewport });
  await context.addCookies([{ name: 'gh_session', value: client.cookies.get('gh_session'), url: server.consoleUrl, httpOnly: true, sameSite: 'Lax' }]);
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  watch(page, who);
  return { context, page };
}

const url = (path) => server.consoleUrl + path;
const shot = async (p, name, fullPage = true) => {
  if (fullPage) await p.evaluate(() => window.scrollTo(0, 0));
  await p.screenshot({ path: join(ARTIFACTS, name), fullPage, animations: 'disabled' });
};

// Exactly as src/lib/money.c prices a token kind: half up to the nano-USD.
const part = (tokens, perMtok) => (BigInt(tokens) * perMtok + 500000n) / 1000000n;
// As the console shows money (money.js formatNusd).
function formatNusd(n) {
  const cents = (n + 5_000_000n) / 10_000_000n;
  if (cents === 0n && n !== 0n) return '<$0.01';
  return `$${(cents / 100n).toLocaleString('en-US')}.${String(cents % 100n).padStart(2, '0')}`;
}

// Fills the form and runs it; resolves with the stats shown when the answer ended.
async function runWorkbench(page, { workspace, model, system, message, maxTokens, temperature }) {
  if (workspace) await page.getByLabel('Workspace', { exact: true }).selectOption({ label: workspace });
  await page.getByLabel('Model', { exact: true }).selectOption(model);
  if (system !== undefined) await page.getByLabel(/^System prompt/).fill(system);
  await page.getByRole('textbox', { name: 'Message 1' }).fill(message);
  await page.getByLabel('Max tokens').fill(String(maxTokens));
  await page.getByLabel('Temperature').fill(String(temperature));
  await page.locator('#wb-output').evaluate((el) => {
    // Counts the pieces of text as they are added: more than one means the answer was shown
    // as it streamed, not all at once at the end.
    window.__pieces = 0;
    new MutationObserver((records) => {
      for (const r of records) window.__pieces += [...r.addedNodes].filter((n) => n.nodeType === 3).length;
    }).observe(el, { childList: true, subtree: true });
  });
  await page.getByRole('button', { name: 'Run' }).click();
  await page.locator('#wb-stats').waitFor();
  return page.evaluate(() => ({
    text: document.querySelector('.wb-text').textContent,
    pieces: window.__pieces,
    input: document.querySelector('[data-stat="input"]').textContent,
    output: document.querySelector('[data-stat="output"]').textContent,
    cost: document.querySelector('[data-stat="cost"]').textContent,
  }));
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startServer({ config: { limits: { enforce: true, poll_ms: 50 }, ...(WEB_DIR ? { server: { web_dir: WEB_DIR } } : {}) } });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  api = new Client(server.consoleUrl);
  orgId = (await api.signUpWithOrg(server, `ada.wb.${Date.now()}@example.com`, 'Acme Analytics', 'Ada Lovelace')).current_organization.id;
  await grant(server, api, orgId, '10.00');
  cfg = (await api.get('/auth/config')).body;
});

after(async () => {
  await browser?.close();
  await server?.stop();
  assert.deepEqual(problems, []);
  for (const b of bodies) assert.doesNotMatch(b.text, SECRET, `a secret reached the browser in ${b.url}`);
});

test('an admin runs a prompt: it streams, and shows the tokens and cost the model API charged', async () => {
  const { context, page } = await contextFor(api, 'admin');
  try {
    await page.goto(url('/dashboard'));
    await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Workbench' }).click();
    await page.getByRole('heading', { level: 1, name: 'Workbench' }).waitFor();
    const model = cfg.models[0];
    const before = nusd((await admission(api)).balance_usd);
    const shown = await runWorkbench(page, { workspace: 'Default (default)', model: model.id, system: 'Answer in one line.',
      message: 'Write a haiku about gates.', maxTokens: 40, temperature: 0.3 });
    assert.ok(shown.text.length > 0, 'an answer');
    assert.ok(shown.pieces > 1, `the answer arrived in pieces (${shown.pieces})`);
    await shot(page, 'workbench-1280.png');

    // The Workbench key: one key named "Workbench" in Default, made by the admin.
    const keys = (await api.get(`${O}/api_keys?limit=100`)).body.data;
    const wb = keys.filter((k) => k.name === 'Workbench');
    assert.equal(wb.length, 1);
    assert.equal(wb[0].workspace_id, (await api.get(`${O}/workspaces`)).body.data.find((w) => w.is_default).id);

    // What the model API metered for that key is what the page shows.
    await until(() => Number(sql(server, `SELECT count(*) FROM usage_events WHERE key_id = ${sqlQuote(wb[0].id)};`).trim()) === 1, 'the usage event');
    const [inTok, outTok, cost] = sql(server, `SELECT input_tokens, output_tokens, cost_nusd FROM usage_events WHERE key_id = ${sqlQuote(wb[0].id)};`).trim().split('|');
    assert.equal(shown.input, Number(inTok).toLocaleString('en-US'));
    assert.equal(shown.output, Number(outTok).toLocaleString('en-US'));
    const perMtok = (usdText) => nusd(usdText);
    const expected = part(inTok, perMtok(model.price_per_mtok_usd.input)) + part(outTok, perMtok(model.price_per_mtok_usd.output));
    assert.equal(BigInt(cost), expected, 'the console prices tokens as the meter does');
    assert.equal(shown.cost, formatNusd(BigInt(cost)));
    // ... and the organization paid for it.
    await until(async () => nusd((await admission(api)).balance_usd) === before - BigInt(cost), 'the balance to go down by the cost');

    // A second run reuses the same key.
    await page.getByRole('textbox', { name: 'Message 1' }).fill('And one about walls.');
    await page.getByRole('button', { name: 'Run' }).click();
    await until(() => Number(sql(server, `SELECT count(*) FROM usage_events WHERE key_id = ${sqlQuote(wb[0].id)};`).trim()) === 2, 'the second usage event');
    assert.equal((await api.get(`${O}/api_keys?limit=100`)).body.data.filter((k) => k.name === 'Workbench').length, 1);
    await page.locator('#wb-stats').waitFor();

    // The key shows in Usage like any key.
    await page.goto(url('/settings/usage'));
    await page.locator('#filter-keys').click();
    await page.getByRole('checkbox', { name: /^Workbench/ }).waitFor();
  } finally {
    await context.close();
  }
});

test('Get code gives curl, Python and TypeScript for the same request, and the TypeScript runs', async () => {
  const { context, page } = await contextFor(api, 'admin code');
  const dir = join(ROOT, 'tests/e2e/artifacts');
  const file = join(dir, `workbench-sample-${process.pid}.mjs`);
  try {
    await page.goto(url('/workbench'));
    const model = cfg.models[cfg.models.length - 1].id;
    await page.getByLabel('Model', { exact: true }).selectOption(model);
    await page.getByLabel(/^System prompt/).fill('Be "brief".');
    await page.getByRole('textbox', { name: 'Message 1' }).fill("What's a gate?");
    await page.getByRole('button', { name: 'Add message' }).click();
    await page.getByRole('textbox', { name: 'Message 2' }).fill('A way through a wall.');
    await page.getByRole('button', { name: 'Add message' }).click();
    await page.getByRole('textbox', { name: 'Message 3' }).fill('And a gatehouse?');
    await page.getByLabel('Max tokens').fill('25');
    await page.getByLabel('Temperature').fill('0.5');
    await page.getByRole('button', { name: 'Get code' }).click();
    const dialog = page.getByRole('dialog', { name: 'Get code' });
    const code = () => dialog.locator('pre code').innerText();
    const want = { model, max_tokens: 25, system: 'Be "brief".', temperature: 0.5, messages: [
      { role: 'user', content: "What's a gate?" }, { role: 'assistant', content: 'A way through a wall.' }, { role: 'user', content: 'And a gatehouse?' }] };

    const curl = await code();
    assert.match(curl, new RegExp(`^curl ${cfg.api_base_url.replace(/[.]/g, '\\.')}/v1/messages`));
    assert.match(curl, /\$GATEHOUSE_API_KEY/);
    // The curl runs as written with a real key: the shell quoting holds.
    const key = (await api.post(`${O}/api_keys`, { name: 'Code sample' })).body.key;
    const out = execFileSync('sh', ['-c', curl], { env: { ...process.env, GATEHOUSE_API_KEY: key }, encoding: 'utf8' });
    assert.match(out, /event: message_stop/);
    await shot(page, 'workbench-code-1280.png', false);

    await dialog.getByRole('tab', { name: 'Python' }).click();
    const py = await code();
    assert.match(py, /client\.messages\.stream\(/);
    assert.match(py, /max_tokens=25,/);
    assert.match(py, /temperature=0\.5,/);
    assert.match(py, /os\.environ\["GATEHOUSE_API_KEY"\]/);

    await dialog.getByRole('tab', { name: 'TypeScript' }).click();
    const ts = await code();
    const requestText = /client\.messages\.stream\(([\s\S]*?)\);\n/.exec(ts)[1];
    assert.deepEqual(JSON.parse(requestText), want, 'the same request as the form');
    await dialog.getByRole('button', { name: /^Copy/ }).waitFor();
    // The TypeScript sample is plain JavaScript too: run it with the official SDK.
    writeFileSync(file, ts);
    const printed = execFileSync(process.execPath, [file], { cwd: ROOT, env: { ...process.env, GATEHOUSE_API_KEY: key }, encoding: 'utf8' });
    assert.ok(printed.trim().length > 0, 'the sample printed the answer');
    for (const sample of [curl, py, ts]) assert.doesNotMatch(sample, SECRET);
  } finally {
    rmSync(file, { force: true });
    await context.close();
  }
});

test('admission applies: a call over the monthly limit is refused with the model API\'s reason', async () => {
  assert.equal((await api.post(`${O}/limits`, { monthly_spend_limit_usd: '0.01' })).status, 200);
  const { context, page } = await contextFor(api, 'admin limit');
  try {
    await page.goto(url('/workbench'));
    await page.getByLabel('Model', { exact: true }).selectOption(cfg.models[cfg.models.length - 1].id);
    await page.getByRole('textbox', { name: 'Message 1' }).fill('A long answer, please.');
    await page.getByLabel('Max tokens').fill('4000');
    const res = page.waitForResponse((r) => r.url().endsWith('/workbench/messages'));
    await page.getByRole('button', { name: 'Run' }).click();
    const r = await res;
    assert.ok([400, 402, 429].includes(r.status()), `refused: ${r.status()}`);
    const message = (await r.json()).error.message;
    assert.match(message, /monthly spend limit/i, 'refused by admission for the spend limit');
    await page.locator('.wb-result').getByRole('alert').filter({ hasText: message.slice(0, 40) }).waitFor();
    await shot(page, 'workbench-refused-1280.png');
  } finally {
    assert.equal((await api.post(`${O}/limits`, { monthly_spend_limit_usd: null })).status, 200);
    await context.close();
  }
});

test('a developer uses it on a phone; a user without a key role cannot', async () => {
  const dev = await addMember(server, api, 'developer', { fullName: 'Linus Developer' });
  const { context, page } = await contextFor(dev.client, 'developer', PHONE);
  try {
    await page.goto(url('/workbench'));
    const shown = await runWorkbench(page, { model: cfg.models[0].id, message: 'Hello from a phone', maxTokens: 20, temperature: 1 });
    assert.ok(shown.text.length > 0);
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'nothing widens the page');
    await shot(page, 'workbench-390.png');
  } finally {
    await context.close();
  }

  const user = await addMember(server, api, 'user', { fullName: 'Grace User' });
  const ws = (await api.get(`${O}/workspaces`)).body.data.find((w) => w.is_default);
  const r = await user.client.post(`${O}/workbench/messages`, { workspace_id: ws.id, request: { model: cfg.models[0].id, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] } });
  assert.equal(r.status, 403);
  assert.match(r.body.error.message, /cannot use the Workbench in the workspace "Default"/);
  const u = await contextFor(user.client, 'user');
  try {
    await u.page.goto(url('/workbench'));
    await u.page.getByText(/needs the Developer role in the organization, or the Workspace Developer role/).waitFor();
    await shot(u.page, 'workbench-user-1280.png');
  } finally {
    await u.context.close();
  }
});
