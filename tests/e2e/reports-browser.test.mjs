// The Usage and Cost pages in a real browser (playwright-core driving Debian's chromium):
// DAYS days of usage made through the gateway (three workspaces, four keys, both mock models),
// then the pages' totals, filters, grouping and CSV files checked against sums computed from
// the raw usage_events rows, the chart's tooltip, a developer's view, and screenshots
// (tests/e2e/artifacts/usage.png, cost.png).
//
// History: each day's calls are made now, committed, and then moved back to their day
// (events and rollups alike, by whole days) before the next day's calls, so that "today"
// only ever holds the calls just made.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, lastLink } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { uniq, addMember } from './lib/expect.mjs';
import { O, iso, floorTo, rawEvents, expectedUsage, modelCall, committed, moveTodayBack, usd } from './lib/reports.mjs';

const ARTIFACTS = join(import.meta.dirname, 'artifacts');
const WEB_DIR = process.env.GATEHOUSE_WEB_DIR;
const DAYS = 24;

let server;
let browser;
let page;
let admin;
let orgId;
let events;
const ws = {};
const keys = {};
const problems = [];

const url = (path) => server.consoleUrl + path;
const heading = (name) => page.getByRole('heading', { level: 1, name });
const shot = (name) => page.screenshot({ path: join(ARTIFACTS, name), fullPage: true, animations: 'disabled' });

// Waits until `fn` (run in the page) returns something truthy; polls, with a deadline.
async function until(fn, arg, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await page.evaluate(fn, arg);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// The text of each stat tile: {label: value}.
const stats = () => page.evaluate(() => Object.fromEntries([...document.querySelectorAll('.stat')]
  .map((s) => [s.querySelector('.stat-label').textContent, s.querySelector('.stat-value').textContent])));

// Clicks Export CSV and returns the file's name and text.
async function exportCsv() {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
  return { name: dl.suggestedFilename(), text: readFileSync(await dl.path(), 'utf8') };
}

// Waits for the report to be drawn after a filter change: the chart or the empty state.
async function settled() {
  await until(() => !document.querySelector('.chart-section .loading-block') && !!document.querySelector('.chart, .report-empty'), null, 'the report');
  await until(() => !document.querySelector('button.btn-secondary[disabled]'), null, 'Export CSV enabled');
}

const big = (n) => 'lorem ipsum dolor sit amet '.repeat(n);

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startServer({ config: WEB_DIR ? { server: { web_dir: WEB_DIR } } : {} });
  admin = new Client(server.consoleUrl);
  const email = uniq('reports-ui');
  orgId = (await admin.signUpWithOrg(server, email, 'Acme Analytics', 'Ada Lovelace')).current_organization.id;
  ws.default = (await admin.get(`${O}/workspaces`)).body.data[0];
  ws.research = (await admin.post(`${O}/workspaces`, { name: 'Research' })).body;
  ws.production = (await admin.post(`${O}/workspaces`, { name: 'Production' })).body;
  for (const [name, w] of [['Website chatbot', ws.production], ['Batch summaries', ws.production], ['Notebook', ws.research], ['Local testing', ws.default]]) {
    keys[name] = (await admin.post(`${O}/api_keys`, { name, workspace_id: w.id })).body;
  }

  // A weekly rhythm, production busiest, prompts of tens of thousands of tokens
  // (about 7 tokens per repetition), so that days cost dollars rather than fractions of a cent.
  let n = 0;
  for (let d = DAYS - 1; d >= 0; d--) {
    const weekday = new Date(Date.now() - d * 86400e3).getUTCDay();
    const load = weekday === 0 || weekday === 6 ? 1 : 2 + (d % 3);
    const calls = [];
    for (let i = 0; i < load; i++) {
      calls.push(modelCall(server, keys['Website chatbot'].key, '/v1/messages', { model: 'gatehouse-mock-large', max_tokens: 30, messages: [{ role: 'user', content: big(9000 + 2500 * i + 700 * (DAYS - d)) }] }));
      calls.push(modelCall(server, keys['Batch summaries'].key, '/v1/messages', { model: 'gatehouse-mock-small', max_tokens: 20, messages: [{ role: 'user', content: big(14000 + 900 * (DAYS - d)) }] }));
    }
    if (d % 2 === 0) calls.push(modelCall(server, keys.Notebook.key, '/v1/messages', { model: 'gatehouse-mock-large', max_tokens: 25, stream: true, messages: [{ role: 'user', content: big(6000 + 300 * (DAYS - d)) }] }));
    calls.push(modelCall(server, keys['Local testing'].key, '/v1/messages', { model: 'gatehouse-mock-small', max_tokens: 10, messages: [{ role: 'user', content: big(30 + d) }] }));
    await Promise.all(calls);
    n += calls.length;
    await committed(server, orgId, n);
    if (d > 0) moveTodayBack(server, orgId, d);
  }
  events = rawEvents(server, orgId);
  assert.equal(events.length, n);

  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // Sign the admin in in the browser with a fresh link.
  assert.equal((await admin.post('/auth/email', { email })).status, 202);
  await page.goto(lastLink(server, email));
  await page.waitForURL(url('/dashboard'));
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const sumTokens = (evs) => evs.reduce((a, e) => a + e.input_tokens + e.output_tokens + e.cache_creation_tokens + e.cache_read_tokens, 0);
const fmt = (n) => n.toLocaleString('en-US');
const since = (days) => floorTo(Math.floor(Date.now() / 1000), 86400) - (days - 1) * 86400;

test('Usage: totals, filters, grouping by model and the CSV match the raw events', async () => {
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: /^Usage\b/ }).click();
  await page.waitForURL(/\/settings\/usage/);
  await heading('Usage').waitFor();
  await settled();
  // The default range is the last 7 days, in days.
  const week = events.filter((e) => e.created_at_ms >= since(7) * 1000);
  assert.equal((await stats())['Total tokens'], fmt(sumTokens(week)));
  assert.equal(await page.getByLabel('Granularity').inputValue(), '1d');
  assert.equal(await page.locator('.chart-plot svg .chart-bar').count() > 0, true);

  // 30 days, grouped by model.
  await page.getByLabel('Date range').selectOption('30d');
  await settled();
  await page.getByLabel('Group by').selectOption('model');
  await settled();
  const legend = page.locator('.chart-legend');
  await legend.getByText('gatehouse-mock-large').waitFor();
  await legend.getByText('gatehouse-mock-small').waitFor();
  assert.equal((await stats())['Total tokens'], fmt(sumTokens(events)));
  assert.match(page.url(), /range=30d/);
  assert.match(page.url(), /group=model/);

  // Only the Production workspace.
  await page.getByRole('button', { name: 'Workspaces All workspaces' }).click();
  await page.getByRole('group', { name: 'Workspaces' }).getByLabel('Production').check();
  await page.keyboard.press('Escape');
  await settled();
  const production = events.filter((e) => e.workspace_id === ws.production.id);
  assert.equal((await stats())['Total tokens'], fmt(sumTokens(production)));
  await page.getByRole('button', { name: 'Workspaces Production' }).waitFor();

  // The CSV is the table: one line per day and model, with the raw events' sums.
  const csv = await exportCsv();
  assert.match(csv.name, /^usage-\d{4}-\d\d-\d\d-to-\d{4}-\d\d-\d\d-1d-by-model\.csv$/);
  const q = { starting_at: iso(since(30)), ending_at: iso(Math.floor(Date.now() / 1000)), bucket_width: '1d', group_by: ['model'], workspace_ids: [ws.production.id] };
  const expected = ['period_start,period_end,model,model_name,uncached_input_tokens,cache_creation_input_tokens,cache_read_input_tokens,output_tokens,total_tokens'];
  for (const b of expectedUsage(events, q)) {
    for (const r of b.results) {
      const cw = r.cache_creation.ephemeral_5m_input_tokens;
      expected.push([b.starting_at, b.ending_at, r.model, r.model, r.uncached_input_tokens, cw, r.cache_read_input_tokens, r.output_tokens,
        r.uncached_input_tokens + cw + r.cache_read_input_tokens + r.output_tokens].join(','));
    }
  }
  assert.ok(expected.length > 2 * 10, `${expected.length} lines`);
  assert.equal(csv.text, `${expected.join('\r\n')}\r\n`);

  // Hovering a bar shows that day's numbers.
  const box = await page.locator('.chart-plot').boundingBox();
  await page.mouse.move(box.x + box.width - 30, box.y + 120);
  await page.locator('.chart-tooltip').waitFor({ state: 'visible' });
  assert.match(await page.locator('.chart-tooltip').innerText(), /tokens/);
  await page.screenshot({ path: join(ARTIFACTS, 'usage-tooltip.png'), clip: { x: box.x - 80, y: box.y - 60, width: box.width + 100, height: box.height + 110 } });
  await page.mouse.move(box.x + box.width - 30, box.y + box.height + 200);

  // Back to every workspace, grouped by workspace, for the picture.
  await page.getByRole('button', { name: 'Workspaces Production' }).click();
  await page.getByRole('group', { name: 'Workspaces' }).getByRole('button', { name: 'Clear' }).click();
  await settled();
  await page.getByLabel('Group by').selectOption('workspace');
  await settled();
  await page.locator('.chart-legend').getByText('Research').waitFor();
  // Hours of the last day: 24 buckets offered, the chart redrawn.
  await page.getByLabel('Date range').selectOption('today');
  await settled();
  assert.equal(await page.getByLabel('Granularity').inputValue(), '1h');
  assert.equal(await page.locator('#filter-width option[value="1m"]').isDisabled(), false);
  await page.getByLabel('Date range').selectOption('30d');
  await settled();
  assert.equal(await page.locator('#filter-width option[value="1m"]').isDisabled(), true);
  await page.getByLabel('Granularity').selectOption('1d');
  await settled();
  await shot('usage.png');
  // On a phone the filters stack and the table becomes cards.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.locator('.chart-plot svg').waitFor();
  assert.equal(await page.evaluate(() => document.documentElement.scrollWidth), 390, 'nothing wider than the screen');
  await page.screenshot({ path: join(ARTIFACTS, 'usage-390.png'), animations: 'disabled' });
  await page.setViewportSize({ width: 1280, height: 900 });
  assert.deepEqual(problems, []);
});

test('Cost: month to date, grouping by workspace and the CSV are exact', async () => {
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: /^Cost\b/ }).click();
  await page.waitForURL(/\/settings\/cost/);
  await heading('Cost').waitFor();
  await settled();
  const now = new Date();
  const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const mtd = events.filter((e) => e.created_at_ms >= monthStart).reduce((a, e) => a + BigInt(e.cost_nusd), 0n);
  await until((v) => document.querySelector('.stat-accent .stat-value [title]')?.title === v, `$${usd(mtd)}`, 'the month-to-date total');

  await page.getByLabel('Date range').selectOption('30d');
  await settled();
  await page.getByLabel('Group by').selectOption('workspace');
  await settled();
  await page.locator('.chart-legend').getByText('Production').waitFor();
  const total = events.reduce((a, e) => a + BigInt(e.cost_nusd), 0n);
  await until((v) => [...document.querySelectorAll('.stat-value')].some((el) => el.title === v), `$${usd(total)}`, 'the period total');

  // The CSV: one line per day and workspace (by name), exact dollars per token type.
  const csv = await exportCsv();
  assert.match(csv.name, /^cost-\d{4}-\d\d-\d\d-to-\d{4}-\d\d-\d\d-by-workspace\.csv$/);
  const names = new Map(Object.values(ws).map((w) => [w.id, w.name]));
  const rows = new Map();
  for (const e of events) {
    const day = new Date(floorTo(Math.floor(e.created_at_ms / 1000), 86400) * 1000).toISOString().slice(0, 10);
    const k = `${day}|${e.workspace_id}`;
    if (!rows.has(k)) rows.set(k, { day, ws: e.workspace_id, v: [0n, 0n, 0n, 0n] });
    const r = rows.get(k);
    r.v[0] += BigInt(e.input_cost_nusd);
    r.v[1] += BigInt(e.cache_creation_cost_nusd);
    r.v[2] += BigInt(e.cache_read_cost_nusd);
    r.v[3] += BigInt(e.output_cost_nusd);
  }
  const expected = ['date,workspace_id,workspace_name,input_usd,cache_write_usd,cache_read_usd,output_usd,total_usd'];
  const sorted = [...rows.values()].sort((a, b) => a.day.localeCompare(b.day) || names.get(a.ws).localeCompare(names.get(b.ws)));
  for (const r of sorted) expected.push([r.day, r.ws, names.get(r.ws), ...r.v.map(usd), usd(r.v.reduce((a, v) => a + v, 0n))].join(','));
  assert.equal(csv.text, `${expected.join('\r\n')}\r\n`);
  await shot('cost.png');
  assert.deepEqual(problems, []);
});

test('a developer sees the Usage of the workspaces they reach, and no Cost', async () => {
  const dev = await addMember(server, admin, 'developer', { name: 'dev' });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const devPage = await context.newPage();
  devPage.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  assert.equal((await dev.client.post('/auth/email', { email: dev.email })).status, 202);
  await devPage.goto(lastLink(server, dev.email));
  await devPage.waitForURL(url('/dashboard'));
  await devPage.goto(url('/settings/usage?range=30d'));
  await devPage.getByRole('heading', { level: 1, name: 'Usage' }).waitFor();
  const inDefault = events.filter((e) => e.workspace_id === ws.default.id);
  await devPage.locator('.stat-value').first().getByText(fmt(sumTokens(inDefault)), { exact: true }).waitFor();
  await devPage.goto(url('/settings/cost'));
  await devPage.getByRole('heading', { name: 'Costs are visible to admins and billing members' }).waitFor();
  await context.close();
  assert.deepEqual(problems, []);
});
