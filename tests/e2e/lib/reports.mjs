// Usage and cost reports for the end-to-end tests: what the report endpoints should answer,
// computed independently from the raw usage_events rows (read with the sql helper, on either
// backend), and the helpers that make usage through the gateway and move it in time.
import assert from 'node:assert/strict';
import { sql, sqlQuote } from './expect.mjs';

export const O = '/v1/organizations';
export const USAGE = `${O}/usage_report/messages`;
export const COST = `${O}/cost_report`;
export const WIDTH_S = { '1m': 60, '1h': 3600, '1d': 86400 };
export const DAY_MS = 86400e3;

// ---- independent computation from raw events ----

// Every usage event of an organization, as stored.
export function rawEvents(server, orgId) {
  const pairs = `'workspace_id', workspace_id, 'key_id', key_id, 'model', model, 'route', route,
    'input_tokens', input_tokens, 'output_tokens', output_tokens,
    'cache_creation_tokens', cache_creation_tokens, 'cache_read_tokens', cache_read_tokens,
    'cost_nusd', cost_nusd, 'input_cost_nusd', input_cost_nusd, 'output_cost_nusd', output_cost_nusd,
    'cache_creation_cost_nusd', cache_creation_cost_nusd, 'cache_read_cost_nusd', cache_read_cost_nusd`;
  const where = `FROM usage_events WHERE org_id = ${sqlQuote(orgId)}`;
  const out = sql(server, {
    sqlite: `SELECT json_group_array(json_object('created_at_ms', created_at_ms, ${pairs})) ${where};`,
    postgres: `SELECT coalesce(json_agg(json_build_object(
      'created_at_ms', (extract(epoch FROM created_at) * 1000)::bigint, ${pairs})), '[]') ${where};`,
  });
  return JSON.parse(out);
}

export const sec = (iso) => Math.floor(Date.parse(iso) / 1000);
export const iso = (s) => new Date(s * 1000).toISOString().replace('.000Z', 'Z');
export const floorTo = (s, w) => Math.floor(s / w) * w;
export const ceilTo = (s, w) => Math.ceil(s / w) * w;

// The buckets a query covers: from the bucket of starting_at to the end of the bucket of
// ending_at, UTC.
export function bucketStarts(startingAt, endingAt, width) {
  const w = WIDTH_S[width];
  const out = [];
  const end = sec(startingAt) === sec(endingAt) ? floorTo(sec(startingAt), w) : ceilTo(sec(endingAt), w);
  for (let t = floorTo(sec(startingAt), w); t < end; t += w) out.push(t);
  return out;
}

const matches = (ev, q) => (!q.workspace_ids || q.workspace_ids.includes(ev.workspace_id))
  && (!q.api_key_ids || q.api_key_ids.includes(ev.key_id))
  && (!q.models || q.models.includes(ev.model));

// Groups the events of each bucket by the dimensions asked; returns [[bucketStart, [[group,
// events]]]] in the API's order (workspace, then key, then model).
export function grouped(events, q, dims) {
  const w = WIDTH_S[q.bucket_width ?? '1d'];
  return bucketStarts(q.starting_at, q.ending_at, q.bucket_width ?? '1d').map((b) => {
    const groups = new Map();
    for (const ev of events) {
      if (floorTo(Math.floor(ev.created_at_ms / 1000), w) !== b || !matches(ev, q)) continue;
      const g = {
        workspace_id: dims.workspace ? ev.workspace_id : null,
        api_key_id: dims.key ? ev.key_id : null,
        model: dims.model ? ev.model : null,
      };
      const k = JSON.stringify(g);
      if (!groups.has(k)) groups.set(k, { g, evs: [] });
      groups.get(k).evs.push(ev);
    }
    const cmp = (a, b2) => (a < b2 ? -1 : a > b2 ? 1 : 0);
    const sorted = [...groups.values()].sort((x, y) => cmp(x.g.workspace_id ?? '', y.g.workspace_id ?? '')
      || cmp(x.g.api_key_id ?? '', y.g.api_key_id ?? '') || cmp(x.g.model ?? '', y.g.model ?? ''));
    return [b, sorted];
  });
}

const sum = (evs, f) => evs.reduce((a, e) => a + e[f], 0);
const sumBig = (evs, f) => evs.reduce((a, e) => a + BigInt(e[f]), 0n);

export function expectedUsage(events, q) {
  const gb = q.group_by ?? [];
  const dims = { workspace: gb.includes('workspace_id'), key: gb.includes('api_key_id'), model: gb.includes('model') };
  const w = WIDTH_S[q.bucket_width ?? '1d'];
  return grouped(events, q, dims).map(([b, groups]) => ({
    starting_at: iso(b),
    ending_at: iso(b + w),
    results: groups.map(({ g, evs }) => ({
      uncached_input_tokens: sum(evs, 'input_tokens'),
      cache_creation: { ephemeral_1h_input_tokens: 0, ephemeral_5m_input_tokens: sum(evs, 'cache_creation_tokens') },
      cache_read_input_tokens: sum(evs, 'cache_read_tokens'),
      output_tokens: sum(evs, 'output_tokens'),
      server_tool_use: { web_search_requests: 0 },
      api_key_id: g.api_key_id,
      workspace_id: g.workspace_id,
      model: g.model,
      service_tier: gb.includes('service_tier') ? 'standard' : null,
      context_window: gb.includes('context_window') ? '0-200k' : null,
      inference_geo: gb.includes('inference_geo') ? 'not_available' : null,
      account_id: null,
      service_account_id: null,
    })),
  }));
}

// Exact cents from nano-USD (a cent is 10^7 nano-USD), the way docs/api.md describes them.
export function cents(nusd) {
  const whole = nusd / 10_000_000n;
  const frac = nusd % 10_000_000n;
  return frac === 0n ? `${whole}` : `${whole}.${frac.toString().padStart(7, '0').replace(/0+$/, '')}`;
}

export const TOKEN_LINES = [
  ['uncached_input_tokens', 'Input Tokens', 'input_cost_nusd'],
  ['cache_creation.ephemeral_5m_input_tokens', 'Cache Write Tokens', 'cache_creation_cost_nusd'],
  ['cache_read_input_tokens', 'Cache Read Tokens', 'cache_read_cost_nusd'],
  ['output_tokens', 'Output Tokens', 'output_cost_nusd'],
];

export function expectedCost(events, q) {
  const gb = q.group_by ?? [];
  const desc = gb.includes('description');
  const dims = { workspace: gb.includes('workspace_id'), key: gb.includes('api_key_id'), model: desc || gb.includes('model') };
  return grouped(events, q, dims).map(([b, groups]) => {
    const results = [];
    for (const { g, evs } of groups) {
      const base = (amount) => ({ currency: 'USD', amount: cents(amount), workspace_id: g.workspace_id });
      if (!desc) {
        const total = sumBig(evs, 'cost_nusd');
        if (total === 0n) continue;
        const r = { ...base(total), description: null, cost_type: null, context_window: null,
          model: g.model, service_tier: null, token_type: null, inference_geo: null };
        if (dims.key) r.api_key_id = g.api_key_id;
        results.push(r);
        continue;
      }
      for (const [type, label, field] of TOKEN_LINES) {
        const amount = sumBig(evs, field);
        if (amount === 0n) continue;
        const r = { ...base(amount), description: `${g.model} Usage - ${label}`, cost_type: 'tokens',
          context_window: '0-200k', model: g.model, service_tier: 'standard', token_type: type, inference_geo: null };
        if (dims.key) r.api_key_id = g.api_key_id;
        results.push(r);
      }
    }
    return { starting_at: iso(b), ending_at: iso(b + 86400), results };
  });
}

// ---- the API ----

export function queryString(q) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (Array.isArray(v)) for (const x of v) p.append(`${k}[]`, x);
    else if (v !== undefined) p.set(k, v);
  }
  return p.toString();
}

// Every bucket of a report, following next_page; checks the envelope of each page.
export async function report(client, path, q) {
  const data = [];
  let page;
  for (let i = 0; i < 100; i++) {
    const r = await client.get(`${path}?${queryString({ ...q, page })}`);
    assert.equal(r.status, 200, `${path} ${JSON.stringify(q)}: ${r.status} ${JSON.stringify(r.body)}`);
    assert.deepEqual(Object.keys(r.body), ['data', 'has_more', 'next_page']);
    if (q.limit) assert.ok(r.body.data.length <= Number(q.limit));
    data.push(...r.body.data);
    if (!r.body.has_more) {
      assert.equal(r.body.next_page, null);
      return data;
    }
    assert.match(r.body.next_page, /^page_[A-Za-z0-9+/]+=*$/);
    page = r.body.next_page;
  }
  throw new Error('more than 100 pages');
}

// ---- the gateway ----

export async function modelCall(server, key, path, json) {
  const res = await fetch(server.apiUrl + path, {
    method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: JSON.stringify(json),
  });
  const text = await res.text();
  assert.equal(res.status, 200, `${path}: ${res.status} ${text}`);
  return text;
}

// Resolves once the writer has committed `n` events of the organization.
export async function committed(server, orgId, n, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const have = Number(sql(server, `SELECT count(*) FROM usage_events WHERE org_id = ${sqlQuote(orgId)};`).trim());
    if (have === n) return;
    if (have > n) throw new Error(`${have} events for ${orgId}, expected ${n}`);
    if (Date.now() > deadline) throw new Error(`only ${have} of ${n} events committed within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

// PostgreSQL keeps only minute rollups in the writer's transaction and rolls hour and day
// rollups forward from them past a mark (usage_rollup_watermark): minute rows at or after the
// mark are in no hour or day row yet. Rows moved back in time land before the mark, where the
// writer would have added them to the hour and day tables itself (a late event): so before
// moving them, this adds the sums of those of them not rolled yet (`where` picks them) to the
// hour and day tables, which are then moved with them. Locking the mark first, it waits for a
// writer's or roll's transaction under way.
const SUMS = ['requests', 'input_tokens', 'output_tokens', 'cache_creation_tokens', 'cache_read_tokens',
  'input_cost_nusd', 'output_cost_nusd', 'cache_creation_cost_nusd', 'cache_read_cost_nusd'];
const rollInto = (table, width, where) => `
  INSERT INTO ${table} AS r (org_id, bucket_start, workspace_id, key_id, model, ${SUMS.join(', ')})
  SELECT org_id, to_timestamp(floor(extract(epoch FROM bucket_start) / ${width}) * ${width}), workspace_id, key_id, model,
         ${SUMS.map((c) => `sum(${c})`).join(', ')}
    FROM usage_rollup_minute WHERE bucket_start >= (SELECT rolled_before FROM usage_rollup_watermark) AND ${where}
   GROUP BY 1, 2, 3, 4, 5
  ON CONFLICT (org_id, bucket_start, workspace_id, key_id, model) DO UPDATE SET
         ${SUMS.map((c) => `${c} = r.${c} + excluded.${c}`).join(', ')};`;
const rollPg = (where) => `
  SELECT 1 FROM usage_rollup_watermark FOR UPDATE;
  ${rollInto('usage_rollup_hour', 3600, where)}
  ${rollInto('usage_rollup_day', 86400, where)}`;

// Moves a key's usage `days` back in time: its events and its rows of every rollup table.
export function moveBack(server, keyId, days) {
  const key = sqlQuote(keyId);
  if (server.storeUrl) {
    const back = `${days * 86400} * interval '1 second'`;
    sql(server, `BEGIN;${rollPg(`key_id = ${key}`)}
      UPDATE usage_events SET created_at = created_at - ${back} WHERE key_id = ${key};
      UPDATE usage_rollup_minute SET bucket_start = bucket_start - ${back} WHERE key_id = ${key};
      UPDATE usage_rollup_hour SET bucket_start = bucket_start - ${back} WHERE key_id = ${key};
      UPDATE usage_rollup_day SET bucket_start = bucket_start - ${back} WHERE key_id = ${key};
      COMMIT;`);
    return;
  }
  sql(server, `BEGIN;
    UPDATE usage_events SET created_at_ms = created_at_ms - ${days * DAY_MS} WHERE key_id = ${key};
    UPDATE usage_rollup_minute SET bucket_start = bucket_start - ${days * 86400} WHERE key_id = ${key};
    UPDATE usage_rollup_hour SET bucket_start = bucket_start - ${days * 86400} WHERE key_id = ${key};
    UPDATE usage_rollup_day SET bucket_start = bucket_start - ${days * 86400} WHERE key_id = ${key};
    COMMIT;`);
}


// Moves all of an organization's usage from today (UTC) `days` days back: its events and its
// rollup rows. Used to build a history one day at a time (today must hold only new usage).
export function moveTodayBack(server, orgId, days) {
  const today = floorTo(Math.floor(Date.now() / 1000), 86400);
  const org = sqlQuote(orgId);
  if (server.storeUrl) {
    const back = `${days * 86400} * interval '1 second'`;
    const since = `to_timestamp(${today})`;
    sql(server, `BEGIN;${rollPg(`org_id = ${org} AND bucket_start >= ${since}`)}
      UPDATE usage_events SET created_at = created_at - ${back} WHERE org_id = ${org} AND created_at >= ${since};
      UPDATE usage_rollup_minute SET bucket_start = bucket_start - ${back} WHERE org_id = ${org} AND bucket_start >= ${since};
      UPDATE usage_rollup_hour SET bucket_start = bucket_start - ${back} WHERE org_id = ${org} AND bucket_start >= ${since};
      UPDATE usage_rollup_day SET bucket_start = bucket_start - ${back} WHERE org_id = ${org} AND bucket_start >= ${since};
      COMMIT;`);
    return;
  }
  sql(server, `BEGIN;
    UPDATE usage_events SET created_at_ms = created_at_ms - ${days * DAY_MS} WHERE org_id = ${org} AND created_at_ms >= ${today * 1000};
    UPDATE usage_rollup_minute SET bucket_start = bucket_start - ${days * 86400} WHERE org_id = ${org} AND bucket_start >= ${today};
    UPDATE usage_rollup_hour SET bucket_start = bucket_start - ${days * 86400} WHERE org_id = ${org} AND bucket_start >= ${today};
    UPDATE usage_rollup_day SET bucket_start = bucket_start - ${days * 86400} WHERE org_id = ${org} AND bucket_start >= ${today};
    COMMIT;`);
}

// Exact decimal dollars for nano-USD: 1234567890n -> "1.23456789", 0n -> "0.00".
export function usd(nusd) {
  const frac = (nusd % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${nusd / 1_000_000_000n}.${frac.padEnd(2, '0')}`;
}
