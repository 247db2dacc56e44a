// Usage and cost reports (GET /v1/organizations/usage_report/messages and
// /v1/organizations/cost_report) against events made through the real gateway: calls with
// several keys, two workspaces and both built-in mock models, then every bucket width,
// grouping and filter checked against sums computed here from the raw usage_events rows (read
// with the sql helper), cost strings exact, a developer who reaches one workspace, the cost
// report refused to non-billing roles, every bad parameter a 400 that says what to fix, time
// zones, a range over a month boundary and empty ranges. A second server relays to an upstream
// written here that reports cache tokens, for the cache columns and their costs.
//
// All calls happen within seconds. To have usage in more than one day, one key's events are
// moved back into the previous month and another's one day back, in usage_events and in the
// rollups alike (a translation by whole days, which keeps the writer's sums as it wrote them):
// that is the "passage of time" the sql helper is for.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { uniq, assertError, addMember, KeyClient, sql } from './lib/expect.mjs';
import { buy, billing, readyOrg } from './lib/billing.mjs';
import {
  O, USAGE, COST, iso, floorTo, rawEvents, expectedUsage, expectedCost, cents, queryString, report, modelCall,
  committed, moveBack,
} from './lib/reports.mjs';

// ================================================================================================
describe('usage and cost reports over the built-in mocks', () => {
  let server;
  let admin;
  let orgId;
  let W; // a second workspace
  let D; // Default
  const keys = {};
  let events;
  let otherOrg;
  let now;
  let monthStart; // the first instant of the current month, UTC, in seconds

  before(async () => {
    server = await startServer();
    // PostgreSQL rolls hour and day rollups forward from minute rows past a mark, which a new
    // database sets after the minute it was made in: set back, this test's events are after
    // it, so hour and day reports must add minute rows not rolled yet to the rolled ones.
    if (server.storeUrl)
      sql(server, "UPDATE usage_rollup_watermark SET rolled_before = date_trunc('minute', now()) - interval '1 hour';");
    admin = new Client(server.consoleUrl);
    orgId = (await admin.signUpWithOrg(server, uniq('rep'), 'Acme')).current_organization.id;
    W = (await admin.post(`${O}/workspaces`, { name: 'Research' })).body;
    D = (await admin.get(`${O}/workspaces`)).body.data[0];
    for (const [name, ws] of [['d1', D], ['d2', D], ['w1', W], ['w2', W]]) {
      const r = await admin.post(`${O}/api_keys`, { name, workspace_id: ws.id });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      keys[name] = r.body;
    }
    const other = new Client(server.consoleUrl);
    otherOrg = (await other.signUpWithOrg(server, uniq('other'), 'Other')).current_organization.id;
    const otherKey = (await other.post(`${O}/api_keys`, { name: 'o' })).body;

    // 4 keys × 2 models × (one plain, one streamed), a count_tokens and a chat completion.
    let n = 0;
    const calls = [];
    for (const [i, name] of ['d1', 'd2', 'w1', 'w2'].entries()) {
      for (const [j, model] of ['gatehouse-mock-small', 'gatehouse-mock-large'].entries()) {
        const content = `Report call ${name} ${model} ${'x'.repeat(i * 7 + j * 3)}`;
        calls.push(modelCall(server, keys[name].key, '/v1/messages', { model, max_tokens: 5 + i + j, messages: [{ role: 'user', content }] }));
        calls.push(modelCall(server, keys[name].key, '/v1/messages', { model, max_tokens: 12 + i, stream: true, messages: [{ role: 'user', content: `${content}!` }] }));
        n += 2;
      }
    }
    calls.push(modelCall(server, keys.d1.key, '/v1/messages/count_tokens', { model: 'gatehouse-mock-small', messages: [{ role: 'user', content: 'count me' }] }));
    calls.push(modelCall(server, keys.w1.key, '/v1/chat/completions', { model: 'gatehouse-mock-large', max_tokens: 9, messages: [{ role: 'user', content: 'chat with me' }] }));
    n += 2;
    calls.push(modelCall(server, otherKey.key, '/v1/messages', { model: 'gatehouse-mock-small', max_tokens: 7, messages: [{ role: 'user', content: 'other org' }] }));
    await Promise.all(calls);
    await committed(server, orgId, n);
    await committed(server, otherOrg, 1);

    // w2's usage goes to the last day of the previous month, d2's to yesterday (or, on the
    // first of a month, the day before that, so that w2 is alone in the previous month's
    // last day).
    const today = new Date();
    moveBack(server, keys.w2.id, today.getUTCDate());
    moveBack(server, keys.d2.id, today.getUTCDate() === 1 ? 2 : 1);
    events = rawEvents(server, orgId);
    assert.equal(events.length, n);
    if (server.storeUrl) {
      // d1's and w1's events are in no hour or day row yet: the writer rolls only minutes
      // before the last one, every two minutes.
      const unrolled = Number(sql(server, `SELECT coalesce(sum(requests), 0) FROM usage_rollup_minute WHERE key_id IN ('${keys.d1.id}', '${keys.w1.id}') AND bucket_start >= (SELECT rolled_before FROM usage_rollup_watermark);`).trim());
      const d1w1 = events.filter((e) => e.key_id === keys.d1.id || e.key_id === keys.w1.id).length;
      assert.equal(unrolled, d1w1, 'the minute rows of d1 and w1 are not rolled forward yet');
      assert.equal(sql(server, `SELECT count(*) FROM usage_rollup_hour WHERE key_id = '${keys.d1.id}';`).trim(), '0');
    }
    now = Math.floor(Date.now() / 1000);
    monthStart = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 1) / 1000;
  });
  after(async () => { await server?.stop(); });

  test('each event\'s costs are its tokens at the model\'s prices and add up to its total', () => {
    const PRICES = { 'gatehouse-mock-small': [1e9, 5e9, 1.25e9, 0.1e9], 'gatehouse-mock-large': [3e9, 15e9, 3.75e9, 0.3e9] };
    const price = (tokens, perMillion) => (BigInt(tokens) * BigInt(perMillion) + 500_000n) / 1_000_000n;
    for (const e of events) {
      const [pin, pout, pcw, pcr] = PRICES[e.model];
      const parts = [price(e.input_tokens, pin), price(e.output_tokens, pout), price(e.cache_creation_tokens, pcw), price(e.cache_read_tokens, pcr)];
      assert.deepEqual([e.input_cost_nusd, e.output_cost_nusd, e.cache_creation_cost_nusd, e.cache_read_cost_nusd].map(BigInt), parts);
      assert.equal(BigInt(e.cost_nusd), parts.reduce((a, b) => a + b, 0n));
    }
    assert.ok(events.some((e) => e.cost_nusd > 0 && e.route === 'chat.completions'));
    assert.ok(events.some((e) => e.route === 'count_tokens' && e.cost_nusd === 0));
  });

  test('usage: every bucket width, grouping and filter matches the raw events', async () => {
    const groupings = [[], ['workspace_id'], ['api_key_id'], ['model'], ['workspace_id', 'api_key_id', 'model'], ['model', 'workspace_id']];
    const filters = [{}, { workspace_ids: [W.id] }, { api_key_ids: [keys.d1.id, keys.w2.id] }, { models: ['gatehouse-mock-large'] },
      { workspace_ids: [D.id], models: ['gatehouse-mock-small'] }, { api_key_ids: ['apikey_01nonesuchnonesuchnones'] }];
    const ranges = {
      // The last 20 minutes in pages of 7 buckets.
      '1m': { starting_at: iso(now - 20 * 60), ending_at: iso(now + 1), limit: '7' },
      // Back to the previous month, in pages of 100 hours.
      '1h': { starting_at: iso(monthStart - 2 * 86400), ending_at: iso(now), limit: '100' },
      // 35 days, in pages of 10.
      '1d': { starting_at: iso(now - 34 * 86400), ending_at: iso(now), limit: '10' },
    };
    let nonEmpty = 0;
    for (const [width, range] of Object.entries(ranges)) {
      for (const group_by of groupings) {
        for (const f of filters) {
          const q = { ...range, bucket_width: width, group_by, ...f };
          const got = await report(admin, USAGE, q);
          assert.deepEqual(got, expectedUsage(events, q), `${JSON.stringify(q)}`);
          nonEmpty += got.filter((b) => b.results.length).length;
        }
      }
    }
    assert.ok(nonEmpty > 100, `only ${nonEmpty} buckets had usage`);
  });

  test('usage: the default width is a day; fixed dimensions group to their one value', async () => {
    const q = { starting_at: iso(now - 6 * 86400), ending_at: iso(now), group_by: ['service_tier', 'context_window', 'inference_geo', 'account_id', 'service_account_id'] };
    const got = await report(admin, USAGE, q);
    assert.equal(got.length, 7);
    assert.deepEqual(got, expectedUsage(events, q));
    // A filter on them keeps everything or nothing.
    const all = await report(admin, USAGE, { ...q, service_tiers: ['standard', 'batch'], context_window: ['0-200k'], inference_geos: ['not_available'] });
    assert.deepEqual(all, got);
    for (const f of [{ service_tiers: ['priority'] }, { context_window: ['200k-1M'] }, { inference_geos: ['us'] }, { account_ids: ['user_01x'] }]) {
      const none = await report(admin, USAGE, { ...q, ...f });
      assert.equal(none.length, 7);
      assert.ok(none.every((b) => b.results.length === 0), JSON.stringify(f));
    }
  });

  test('cost: every grouping and filter matches the raw events, to the nano-dollar', async () => {
    const groupings = [[], ['workspace_id'], ['description'], ['workspace_id', 'description'], ['api_key_id'], ['model'], ['api_key_id', 'description']];
    const filters = [{}, { workspace_ids: [W.id] }, { api_key_ids: [keys.d2.id] }, { models: ['gatehouse-mock-small'] }];
    for (const group_by of groupings) {
      for (const f of filters) {
        const q = { starting_at: iso(now - 34 * 86400), ending_at: iso(now), group_by, limit: '31', ...f };
        assert.deepEqual(await report(admin, COST, q), expectedCost(events, q), JSON.stringify(q));
      }
    }
  });

  test('cost: the month-to-date total is the sum of this month\'s event costs', async () => {
    const got = await report(admin, COST, { starting_at: iso(monthStart), ending_at: iso(now) });
    const total = got.flatMap((b) => b.results).reduce((a, r) => {
      const [w, f = ''] = r.amount.split('.');
      return a + BigInt(w) * 10_000_000n + BigInt(f.padEnd(7, '0'));
    }, 0n);
    const mtd = events.filter((e) => e.created_at_ms >= monthStart * 1000).reduce((a, e) => a + BigInt(e.cost_nusd), 0n);
    assert.equal(total, mtd);
    assert.ok(mtd > 0n);
    // The previous month's usage (w2's) is not in it, and is in a range over the boundary.
    const w2 = events.filter((e) => e.key_id === keys.w2.id).reduce((a, e) => a + BigInt(e.cost_nusd), 0n);
    assert.ok(w2 > 0n);
    const over = await report(admin, COST, { starting_at: iso(monthStart - 86400), ending_at: iso(monthStart + 86400), group_by: ['api_key_id'] });
    assert.deepEqual(over.map((b) => b.starting_at), [iso(monthStart - 86400), iso(monthStart)]);
    assert.deepEqual(over[0].results.map((r) => [r.api_key_id, r.amount]), [[keys.w2.id, cents(w2)]]);
  });

  test('a range over a month boundary, in days and in hours', async () => {
    for (const width of ['1d', '1h']) {
      const q = { starting_at: iso(monthStart - 86400), ending_at: iso(monthStart + 3600), bucket_width: width, group_by: ['api_key_id'] };
      const got = await report(admin, USAGE, q);
      assert.deepEqual(got, expectedUsage(events, q));
      assert.equal(got.length, width === '1d' ? 2 : 25);
      assert.equal(got.at(-1).starting_at, iso(monthStart));
      const before = got.filter((b) => b.starting_at < iso(monthStart)).flatMap((b) => b.results);
      assert.deepEqual([...new Set(before.map((r) => r.api_key_id))], [keys.w2.id]);
    }
  });

  test('time zones: offsets are the same instants; buckets are UTC days', async () => {
    const day = floorTo(now, 86400);
    // 01:30 at +02:00 is 23:30 UTC the day before: the first bucket starts that day.
    const local = new Date((day + 5400) * 1000).toISOString().slice(0, 19);
    const withOffset = { starting_at: `${local}+02:00`, ending_at: iso(now), group_by: ['model'] };
    const got = await report(admin, USAGE, withOffset);
    assert.equal(got[0].starting_at, iso(day - 86400));
    assert.deepEqual(got, await report(admin, USAGE, { ...withOffset, starting_at: iso(day - 1800) }));
    // Lower case, fractions and negative offsets.
    const a = await report(admin, USAGE, { starting_at: `${iso(day - 86400).replace('T', 't').replace('Z', 'z')}`, ending_at: iso(now) });
    const b = await report(admin, USAGE, { starting_at: `${iso(day - 86400).slice(0, 19)}.123456Z`, ending_at: iso(now) });
    const c = await report(admin, USAGE, { starting_at: `${new Date((day - 86400 - 5 * 3600) * 1000).toISOString().slice(0, 19)}-05:00`, ending_at: iso(now) });
    assert.deepEqual(a, b);
    assert.deepEqual(a, c);
    assert.equal(a.length, 2);
  });

  test('empty ranges', async () => {
    // starting_at = ending_at: no buckets.
    let r = await admin.get(`${USAGE}?starting_at=${iso(now)}&ending_at=${iso(now)}`);
    assert.deepEqual(r.body, { data: [], has_more: false, next_page: null });
    // A week with no usage: every bucket, all empty.
    r = await admin.get(`${USAGE}?starting_at=2020-01-01T00:00:00Z&ending_at=2020-01-08T00:00:00Z`);
    assert.equal(r.status, 200);
    assert.equal(r.body.data.length, 7);
    assert.ok(r.body.data.every((b) => b.results.length === 0));
    assert.deepEqual(r.body.data[0], { starting_at: '2020-01-01T00:00:00Z', ending_at: '2020-01-02T00:00:00Z', results: [] });
    r = await admin.get(`${COST}?starting_at=2020-01-01T00:00:00Z&ending_at=2020-01-03T00:00:00Z`);
    assert.deepEqual(r.body.data.map((b) => b.results), [[], []]);
    // Starting in the future, with no ending_at: nothing yet.
    r = await admin.get(`${USAGE}?starting_at=${iso(now + 3 * 86400)}`);
    assert.deepEqual(r.body, { data: [], has_more: false, next_page: null });
    // Without ending_at the range runs to the current bucket.
    r = await admin.get(`${USAGE}?starting_at=${iso(now - 3 * 3600)}&bucket_width=1h`);
    assert.equal(r.body.data.length, 4);
    assert.equal(r.body.data.at(-1).starting_at, iso(floorTo(now, 3600)));
  });

  test('pagination: limit and next_page walk the buckets in order', async () => {
    const q = { starting_at: iso(now - 9 * 86400), ending_at: iso(now), limit: '4' };
    const first = await admin.get(`${USAGE}?${queryString(q)}`);
    assert.equal(first.body.data.length, 4);
    assert.equal(first.body.has_more, true);
    // The token names the next bucket, as Anthropic's do.
    assert.equal(Buffer.from(first.body.next_page.slice(5), 'base64').toString(), iso(floorTo(now - 9 * 86400, 86400) + 4 * 86400));
    const all = await report(admin, USAGE, q);
    assert.equal(all.length, 10);
    assert.deepEqual(all.slice(0, 4), first.body.data);
    // Limits per width: the defaults are 7 days, 24 hours, 60 minutes.
    for (const [width, n, back] of [['1d', 7, 10 * 86400], ['1h', 24, 2 * 86400], ['1m', 60, 3 * 3600]]) {
      const r = await admin.get(`${USAGE}?starting_at=${iso(now - back)}&bucket_width=${width}&ending_at=${iso(now)}`);
      assert.equal(r.body.data.length, n, width);
      assert.equal(r.body.has_more, true);
    }
  });

  test('bad parameters: 400 with a message that says what to fix', async () => {
    const t = iso(now - 86400);
    const cases = [
      [USAGE, '', /starting_at is required/],
      [USAGE, `starting_at=${t}&ending_at=${iso(now - 2 * 86400)}`, /ending_at .* is before starting_at/],
      [USAGE, 'starting_at=yesterday', /starting_at "yesterday" is not an RFC 3339 time/],
      [USAGE, 'starting_at=2026-02-30T00:00:00Z', /not an RFC 3339 time/],
      [USAGE, 'starting_at=2026-03-01T00:00:00', /not an RFC 3339 time/],
      [USAGE, 'starting_at=2026-03-01', /not an RFC 3339 time/],
      [USAGE, `starting_at=${t}&ending_at=2026-13-01T00:00:00Z`, /ending_at "2026-13-01T00:00:00Z" is not an RFC 3339 time/],
      [USAGE, `starting_at=${t}&bucket_width=1w`, /bucket_width must be 1m, 1h or 1d, not "1w"/],
      [USAGE, `starting_at=${t}&limit=0`, /limit must be a whole number from 1 to 31 for bucket_width 1d/],
      [USAGE, `starting_at=${t}&limit=32`, /from 1 to 31/],
      [USAGE, `starting_at=${t}&bucket_width=1h&limit=169`, /from 1 to 168 for bucket_width 1h/],
      [USAGE, `starting_at=${t}&bucket_width=1m&limit=1441`, /from 1 to 1440 for bucket_width 1m/],
      [USAGE, `starting_at=${t}&limit=ten`, /limit must be a whole number/],
      [USAGE, `starting_at=${t}&group_by[]=colour`, /group_by\[\] cannot be "colour"; use any of api_key_id, workspace_id, model/],
      [USAGE, `starting_at=${t}&group_by[]=description`, /group_by\[\] cannot be "description"/],
      [USAGE, `starting_at=${t}&starting_at=${t}`, /starting_at was sent more than once/],
      [USAGE, `starting_at=${t}&colour=red`, /Unknown query parameter "colour"/],
      [USAGE, `starting_at=${t}&page=page_bm9wZQ==`, /page is not a next_page token of this query/],
      [USAGE, `starting_at=${t}&page=${encodeURIComponent('page_MjAyMC0wMS0wMVQwMDowMDowMFo=')}`, /page is not a next_page token/],
      [USAGE, `starting_at=${iso(now - 15 * 86400)}&bucket_width=1m`, /Minute buckets are kept for 14 days: starting_at must be .* or later with bucket_width 1m\. Use 1h or 1d/],
      [USAGE, `starting_at=${t}&service_tiers[]=gold`, /service_tiers\[\] cannot be "gold"/],
      [USAGE, `starting_at=${t}&${Array.from({ length: 101 }, (_, i) => `models[]=m${i}`).join('&')}`, /models\[\] has more than 100 values/],
      [USAGE, `starting_at=${t}&workspace_ids[]=`, /workspace_ids\[\] has an empty value/],
      [COST, '', /starting_at is required/],
      [COST, `starting_at=${t}&bucket_width=1h`, /bucket_width must be 1d for the cost report, not "1h"/],
      [COST, `starting_at=${t}&group_by[]=service_tier`, /group_by\[\] cannot be "service_tier"; use any of workspace_id, description/],
      [COST, `starting_at=${t}&ending_at=${iso(now - 3 * 86400)}`, /ending_at .* is before starting_at/],
      [COST, `starting_at=${t}&limit=32`, /from 1 to 31 for bucket_width 1d/],
      [COST, `starting_at=${t}&service_tiers[]=standard`, /Unknown query parameter "service_tiers\[\]"/],
    ];
    for (const [path, qs, message] of cases) {
      const r = await admin.get(`${path}?${qs}`);
      assertError(r, 400, 'invalid_request_error');
      assert.match(r.body.error.message, message, `${path}?${qs.slice(0, 120)}`);
    }
  });

  test('visibility: users and developers see the workspaces they reach; cost is for billing and admins', async () => {
    const dev = await addMember(server, admin, 'developer', { name: 'dev' }); // reaches Default only
    const user = await addMember(server, admin, 'user', { name: 'wsuser' });
    assert.equal((await admin.post(`${O}/workspaces/${W.id}/members`, { user_id: user.id, workspace_role: 'workspace_user' })).status, 201);
    const billing = await addMember(server, admin, 'billing', { name: 'bill' });
    const adminKey = new KeyClient(server.consoleUrl, (await admin.post(`${O}/admin_keys`, { name: 'reports' })).body.key);

    const q = { starting_at: iso(now - 34 * 86400), ending_at: iso(now), limit: '31', group_by: ['workspace_id', 'api_key_id'] };
    const inDefault = events.filter((e) => e.workspace_id === D.id);
    assert.deepEqual(await report(dev.client, USAGE, q), expectedUsage(inDefault, q));
    assert.deepEqual(await report(dev.client, USAGE, { ...q, workspace_ids: [D.id] }), expectedUsage(inDefault, q));
    for (const ws of [[W.id], [D.id, W.id], ['wrkspc_01nonesuchnonesuchnone']]) {
      const r = await dev.client.get(`${USAGE}?${queryString({ ...q, workspace_ids: ws })}`);
      assertError(r, 403, 'permission_error');
      assert.match(r.body.error.message, /workspaces you are a member of and of Default only/);
    }
    // A user who is a member of W reaches both; so do billing members and admin keys.
    for (const c of [user.client, billing.client, adminKey]) assert.deepEqual(await report(c, USAGE, q), expectedUsage(events, q));

    const cq = { starting_at: iso(now - 30 * 86400), ending_at: iso(now), limit: '31', group_by: ['workspace_id'] };
    for (const c of [dev.client, user.client]) {
      const r = await c.get(`${COST}?${queryString(cq)}`);
      assertError(r, 403, 'permission_error');
      assert.match(r.body.error.message, /billing or admin role/);
    }
    for (const c of [billing.client, adminKey]) assert.deepEqual(await report(c, COST, cq), expectedCost(events, cq));

    // No session: 401. Another organization sees only its own usage.
    assertError(await new Client(server.consoleUrl).get(`${USAGE}?starting_at=${iso(now)}`), 401, 'authentication_error');
    const otherEvents = rawEvents(server, otherOrg);
    assert.equal(otherEvents.length, 1);
  });
});

// ================================================================================================
// An upstream that reports cache writes and reads, for the cache columns and their costs.
function cacheUpstream() {
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => { raw += d; });
    req.on('end', () => {
      const body = JSON.parse(raw);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'msg_up', type: 'message', role: 'assistant', model: body.model,
        content: [{ type: 'text', text: 'cached' }], stop_reason: 'end_turn', stop_sequence: null,
        usage: { input_tokens: 11, cache_creation_input_tokens: 1234, cache_read_input_tokens: 56789, output_tokens: 40 } }));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((r) => server.close(r)),
  })));
}

describe('cache tokens and their costs', () => {
  let server;
  let upstream;

  before(async () => {
    upstream = await cacheUpstream();
    server = await startServer({ config: {
      'model cached-claude': { style: 'anthropic', upstream_url: upstream.url, price_input: 3, price_output: 15, price_cache_write: 3.75, price_cache_read: 0.3 },
    } });
  });
  after(async () => {
    await server?.stop();
    await upstream?.close();
  });

  test('cache writes and reads are reported and priced per token type', async () => {
    const admin = new Client(server.consoleUrl);
    const orgId = (await admin.signUpWithOrg(server, uniq('cache'), 'Cache')).current_organization.id;
    const key = (await admin.post(`${O}/api_keys`, { name: 'c' })).body;
    for (let i = 0; i < 3; i++)
      await modelCall(server, key.key, '/v1/messages', { model: 'cached-claude', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
    await committed(server, orgId, 3);
    const events = rawEvents(server, orgId);
    const now = Math.floor(Date.now() / 1000);
    const q = { starting_at: iso(now - 3600), ending_at: iso(now), bucket_width: '1h', group_by: ['model'] };
    const usage = await report(admin, USAGE, q);
    assert.deepEqual(usage, expectedUsage(events, q));
    const r = usage.flatMap((b) => b.results)[0];
    assert.deepEqual([r.uncached_input_tokens, r.cache_creation.ephemeral_5m_input_tokens, r.cache_read_input_tokens, r.output_tokens],
      [33, 3702, 170367, 120]);

    const cq = { starting_at: iso(now - 86400), ending_at: iso(now), group_by: ['description'] };
    const cost = await report(admin, COST, cq);
    assert.deepEqual(cost, expectedCost(events, cq));
    // 3 × 11 input at $3/M, 3 × 1,234 writes at $3.75/M, 3 × 56,789 reads at $0.30/M,
    // 3 × 40 output at $15/M, each rounded to the nano-dollar per event, in cents.
    const lines = cost.flatMap((b) => b.results).map((x) => [x.token_type, x.description, x.amount]);
    assert.deepEqual(lines, [
      ['uncached_input_tokens', 'cached-claude Usage - Input Tokens', '0.0099'],
      ['cache_creation.ephemeral_5m_input_tokens', 'cached-claude Usage - Cache Write Tokens', '1.38825'],
      ['cache_read_input_tokens', 'cached-claude Usage - Cache Read Tokens', '5.11101'],
      ['output_tokens', 'cached-claude Usage - Output Tokens', '0.18'],
    ]);
  });
});

describe('the cost report and the ledger', () => {
  let server;
  after(async () => { await server?.stop(); });

  test('the month-to-date cost agrees with what the ledger took from the balance, to the nano-dollar', async () => {
    server = await startServer();
    const { client, orgId } = await readyOrg(server, 'Ledgerco');
    const bought = await buy(client, '20.00');
    assert.equal(bought.status, 200, JSON.stringify(bought.body));
    const key = (await client.post(`${O}/api_keys`, { name: 'ledger' })).body.key;
    const calls = [];
    for (let i = 0; i < 12; i++) {
      const model = i % 2 ? 'gatehouse-mock-large' : 'gatehouse-mock-small';
      calls.push(modelCall(server, key, '/v1/messages', { model, max_tokens: 10 + i, stream: i % 3 === 0, messages: [{ role: 'user', content: `ledger ${'y'.repeat(i * 5)}` }] }));
    }
    await Promise.all(calls);
    await committed(server, orgId, 12);
    const now = Math.floor(Date.now() / 1000);
    const d = new Date();
    const monthStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) / 1000;
    const got = await report(client, COST, { starting_at: iso(monthStart), ending_at: iso(now) });
    // Cost amounts are cents with up to 7 decimals: 1 cent = 10,000,000 nano-USD.
    const mtd = got.flatMap((b) => b.results).reduce((a, r) => {
      const [w, f = ''] = r.amount.split('.');
      return a + BigInt(w) * 10_000_000n + BigInt(f.padEnd(7, '0'));
    }, 0n);
    assert.ok(mtd > 0n);
    // The ledger: what was bought minus the balance now is what usage took.
    const balance = (await billing(client)).balance_usd;
    const [bw, bf = ''] = balance.split('.');
    const taken = 20n * 1_000_000_000n - (BigInt(bw) * 1_000_000_000n + BigInt(bf.padEnd(9, '0')));
    assert.equal(mtd, taken);
  });
});
