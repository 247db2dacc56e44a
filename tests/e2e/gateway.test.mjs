// The model API (data plane): the official Anthropic and OpenAI SDKs against the built-in mock
// models, every refusal in its exact shape (401 for each kind of bad key, 400, 404, 413), the
// identifying response headers, and the relay to real HTTP upstreams — an upstream written in
// this file that can answer normally, slowly, with errors, garbage, stalls or a broken stream —
// with the usage events that each request leaves in the database.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { rmSync } from 'node:fs';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { deadPort, startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { uniq, sql, sqlObject, sqlQuote } from './lib/expect.mjs';

const REQ_ID = /^req_01[0-9A-Za-z]{22}$/;
const VOCAB = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'a', 'lazy', 'dog', 'while', 'seven',
  'gentle', 'rivers', 'carry', 'small', 'paper', 'boats', 'past', 'old', 'stone', 'bridges', 'toward',
  'quiet', 'harbors', 'where', 'tired', 'sailors', 'mend', 'heavy', 'nets', 'and', 'sing'];

// What the built-in mock answers (src/gateway/mock.h): `n` words from the vocabulary starting
// at input_tokens, sentences of ten.
function mockText(inputTokens, n) {
  let s = '';
  for (let i = 0; i < n; i++) {
    let w = VOCAB[(inputTokens + i) % 32];
    if (i % 10 === 0) w = w[0].toUpperCase() + w.slice(1);
    if (i % 10 === 9) w += '.';
    s += (i ? ' ' : '') + w;
  }
  return s;
}
// The mock's input tokens for one message of `text`: 4 per part plus one per started 4 bytes.
const mockInput = (text) => 4 + Math.ceil(Buffer.byteLength(text) / 4);

// The prices of the built-in mocks, nano-USD per million tokens.
const SMALL = { in: 1_000_000_000, out: 5_000_000_000 };
const cost = (tokens, perMillion) => Math.floor((tokens * perMillion + 500_000) / 1_000_000);

// Signs up, creates an organization and an API key. Returns what the tests need.
async function setup(server, name = 'Acme') {
  const admin = new Client(server.consoleUrl);
  const s = await admin.signUpWithOrg(server, uniq('gw'), name);
  const r = await admin.post('/v1/organizations/api_keys', { name: 'test key' });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return { admin, key: r.body.key, keyId: r.body.id, orgId: s.current_organization.id, workspaceId: r.body.workspace_id };
}

// One raw request to the model API: {status, headers, text, json}.
async function call(server, path, { method = 'POST', key, bearer = false, json, body, headers = {} } = {}) {
  const h = { ...headers };
  if (key !== undefined) h[bearer ? 'authorization' : 'x-api-key'] = bearer ? `Bearer ${key}` : key;
  if (json !== undefined) { h['content-type'] = 'application/json'; body = JSON.stringify(json); }
  const res = await fetch(server.apiUrl + path, { method, headers: h, body });
  const text = await res.text();
  let parsed;
  try { parsed = JSON.parse(text); } catch { parsed = undefined; }
  return { status: res.status, headers: res.headers, text, json: parsed };
}

// Anthropic's error shape, exactly, with the request id of the header.
function assertAnthropicError(r, status, type, message) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  assert.deepEqual(Object.keys(r.json).sort(), ['error', 'request_id', 'type']);
  assert.deepEqual(Object.keys(r.json.error).sort(), ['message', 'type']);
  assert.equal(r.json.type, 'error');
  assert.equal(r.json.error.type, type);
  assert.match(r.json.request_id, REQ_ID);
  assert.equal(r.headers.get('request-id'), r.json.request_id);
  assert.equal(r.headers.get('server'), 'gatehouse');
  if (message instanceof RegExp) assert.match(r.json.error.message, message);
  else if (message !== undefined) assert.equal(r.json.error.message, message);
}

// OpenAI's error shape, exactly (on /v1/chat/completions).
function assertOpenAIError(r, status, type, code, message) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  assert.deepEqual(Object.keys(r.json), ['error']);
  assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(r.json.error.type, type);
  assert.equal(r.json.error.code, code);
  assert.equal(r.json.error.param, null);
  assert.match(r.headers.get('request-id'), REQ_ID);
  if (message instanceof RegExp) assert.match(r.json.error.message, message);
  else if (message !== undefined) assert.equal(r.json.error.message, message);
}

// The usage event of a request, waiting for the writer thread to commit it.
async function usageEvent(server, requestId, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const row = sqlObject(server, ['request_id', 'org_id', 'workspace_id', 'key_id', 'model', 'route',
      'input_tokens', 'output_tokens', 'cache_creation_tokens', 'cache_read_tokens', 'cost_nusd', 'status',
      'stream', 'client_disconnected', 'latency_us', 'upstream_us'],
    `FROM usage_events WHERE request_id = ${sqlQuote(requestId)}`);
    if (row) return row;
    if (Date.now() > deadline) throw new Error(`no usage event for ${requestId} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const usageCount = (server, requestId) =>
  Number(sql(server, `SELECT count(*) FROM usage_events WHERE request_id = ${sqlQuote(requestId)};`).trim());

const MSG = (text = 'Say hello', extra = {}) => ({ model: 'gatehouse-mock-small', max_tokens: 20, messages: [{ role: 'user', content: text }], ...extra });

// ================================================================================================
describe('the model API against the built-in mocks (default configuration)', () => {
  let server;
  let acme;

  before(async () => {
    server = await startServer({ config: { server: { api_max_body_bytes: 65536 } } });
    acme = await setup(server);
  });
  after(async () => { await server?.stop(); });

  test('Anthropic SDK: messages.create, not streaming, through authorization: Bearer', async () => {
    const client = new Anthropic({ apiKey: acme.key, baseURL: server.apiUrl, maxRetries: 0 });
    const { data: msg, response } = await client.messages
      .create({ model: 'gatehouse-mock-small', max_tokens: 20, messages: [{ role: 'user', content: 'Say hello' }] })
      .withResponse();
    const input = mockInput('Say hello');
    assert.equal(msg.type, 'message');
    assert.equal(msg.role, 'assistant');
    assert.equal(msg.model, 'gatehouse-mock-small');
    assert.equal(msg.content[0].text, mockText(input, 20));
    assert.equal(msg.stop_reason, 'max_tokens');
    assert.deepEqual(msg.usage, { input_tokens: input, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 20 });
    const id = response.headers.get('request-id');
    assert.match(id, REQ_ID);
    assert.equal(response.headers.get('server'), 'gatehouse'); // one, not h2o's as well
    assert.equal(response.headers.get('anthropic-organization-id'), acme.orgId);
    assert.equal(response.headers.get('anthropic-workspace-id'), acme.workspaceId);

    const ev = await usageEvent(server, id);
    assert.deepEqual({ ...ev, latency_us: 0, upstream_us: 0 }, {
      request_id: id, org_id: acme.orgId, workspace_id: acme.workspaceId, key_id: acme.keyId,
      model: 'gatehouse-mock-small', route: 'messages', input_tokens: input, output_tokens: 20,
      cache_creation_tokens: 0, cache_read_tokens: 0,
      cost_nusd: cost(input, SMALL.in) + cost(20, SMALL.out), status: 200, stream: 0,
      client_disconnected: 0, latency_us: 0, upstream_us: 0,
    });
    assert.ok(ev.latency_us >= ev.upstream_us && ev.upstream_us > 0, JSON.stringify(ev));
  });

  test('Anthropic SDK: streaming, every event with its event: line and usage in message_delta', async () => {
    const client = new Anthropic({ apiKey: acme.key, baseURL: server.apiUrl, maxRetries: 0 });
    const { data: stream, response } = await client.messages
      .create({ model: 'gatehouse-mock-small', max_tokens: 1000, stream: true, messages: [{ role: 'user', content: 'Tell me a story' }] })
      .withResponse();
    assert.match(response.headers.get('content-type'), /^text\/event-stream/);
    const types = [];
    let text = '';
    let usage;
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'content_block_delta') text += ev.delta.text;
      if (ev.type === 'message_delta') usage = ev.usage;
    }
    const input = mockInput('Tell me a story');
    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');
    assert.equal(types.filter((t) => t === 'content_block_delta').length, 30);
    assert.equal(text, mockText(input, 30));
    assert.equal(usage.output_tokens, 30);
    const ev = await usageEvent(server, response.headers.get('request-id'));
    assert.equal(ev.stream, 1);
    assert.equal(ev.input_tokens, input);
    assert.equal(ev.output_tokens, 30);
    assert.equal(ev.cost_nusd, cost(input, SMALL.in) + cost(30, SMALL.out));
  });

  test('Anthropic SDK: the stream helper gives the final message with its usage', async () => {
    const client = new Anthropic({ apiKey: acme.key, baseURL: server.apiUrl, maxRetries: 0 });
    const final = await client.messages.stream({ model: 'gatehouse-mock-large', max_tokens: 12, messages: [{ role: 'user', content: 'Hi' }] }).finalMessage();
    assert.equal(final.usage.output_tokens, 12);
    assert.equal(final.usage.input_tokens, mockInput('Hi'));
    assert.equal(final.content[0].text, mockText(mockInput('Hi'), 12));
  });

  test('Anthropic SDK: count_tokens and models.list', async () => {
    const client = new Anthropic({ apiKey: acme.key, baseURL: server.apiUrl, maxRetries: 0 });
    const { data: count, response } = await client.messages
      .countTokens({ model: 'gatehouse-mock-small', messages: [{ role: 'user', content: 'Count these words' }] })
      .withResponse();
    assert.deepEqual(count, { input_tokens: mockInput('Count these words') });
    // count_tokens is recorded, but costs nothing.
    const ev = await usageEvent(server, response.headers.get('request-id'));
    assert.equal(ev.route, 'count_tokens');
    assert.deepEqual([ev.input_tokens, ev.output_tokens, ev.cost_nusd], [0, 0, 0]);

    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids, ['gatehouse-mock-small', 'gatehouse-mock-large']);
  });

  test('GET /v1/models has Anthropic\'s list shape; /v1/models/{id} one model', async () => {
    const r = await call(server, '/v1/models', { method: 'GET', key: acme.key });
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.json).sort(), ['data', 'first_id', 'has_more', 'last_id']);
    assert.equal(r.json.has_more, false);
    assert.equal(r.json.first_id, 'gatehouse-mock-small');
    assert.equal(r.json.last_id, 'gatehouse-mock-large');
    for (const m of r.json.data) {
      assert.deepEqual(Object.keys(m).sort(), ['created_at', 'display_name', 'id', 'type']);
      assert.equal(m.type, 'model');
      assert.match(m.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    }
    assert.equal(r.json.data[0].display_name, 'Mock Small (built-in mock)');
    assert.equal(r.headers.get('anthropic-organization-id'), acme.orgId);
    const one = await call(server, '/v1/models/gatehouse-mock-large', { method: 'GET', key: acme.key });
    assert.deepEqual(one.json, r.json.data[1]);
    assertAnthropicError(await call(server, '/v1/models/nope', { method: 'GET', key: acme.key }), 404, 'not_found_error', 'model: nope');
    assertAnthropicError(await call(server, '/v1/models', { method: 'GET' }), 401, 'authentication_error');
  });

  test('GET /v1/models pages with limit, after_id and before_id; bad paging is a 400', async () => {
    const get = (q) => call(server, `/v1/models${q}`, { method: 'GET', key: acme.key });
    const ids = (r) => r.json.data.map((m) => m.id);
    let r = await get('?limit=1');
    assert.deepEqual([ids(r), r.json.has_more, r.json.first_id, r.json.last_id],
      [['gatehouse-mock-small'], true, 'gatehouse-mock-small', 'gatehouse-mock-small']);
    r = await get(`?limit=1&after_id=${r.json.last_id}`);
    assert.deepEqual([ids(r), r.json.has_more], [['gatehouse-mock-large'], false]);
    r = await get('?after_id=gatehouse-mock-large');
    assert.deepEqual([ids(r), r.json.has_more, r.json.first_id, r.json.last_id], [[], false, null, null]);
    r = await get('?before_id=gatehouse-mock-large&limit=1');
    assert.deepEqual([ids(r), r.json.has_more], [['gatehouse-mock-small'], false]);
    r = await get('?before_id=gatehouse%2Dmock%2Dlarge');
    assert.deepEqual(ids(r), ['gatehouse-mock-small']);
    assertAnthropicError(await get('?limit=0'), 400, 'invalid_request_error', 'limit: must be a whole number from 1 to 1000');
    assertAnthropicError(await get('?limit=ten'), 400, 'invalid_request_error', 'limit: must be a whole number from 1 to 1000');
    assertAnthropicError(await get('?after_id=nope'), 400, 'invalid_request_error', 'after_id: there is no model nope');
    assertAnthropicError(await get('?after_id=gatehouse-mock-small&before_id=gatehouse-mock-large'), 400,
      'invalid_request_error', 'give after_id or before_id, not both');
    assertAnthropicError(await get('?after_id=%zz'), 400, 'invalid_request_error');
    // The SDK's auto-pagination walks the pages with after_id.
    const client = new Anthropic({ apiKey: acme.key, baseURL: server.apiUrl, maxRetries: 0 });
    const seen = [];
    for await (const m of client.models.list({ limit: 1 })) seen.push(m.id);
    assert.deepEqual(seen, ['gatehouse-mock-small', 'gatehouse-mock-large']);
  });

  test('OpenAI SDK: chat.completions.create, not streaming and streaming with include_usage', async () => {
    const client = new OpenAI({ apiKey: acme.key, baseURL: `${server.apiUrl}/v1`, maxRetries: 0 });
    const input = mockInput('Say hello');
    const { data: done, response } = await client.chat.completions
      .create({ model: 'gatehouse-mock-small', max_completion_tokens: 15, messages: [{ role: 'user', content: 'Say hello' }] })
      .withResponse();
    assert.equal(done.object, 'chat.completion');
    assert.equal(done.choices[0].message.content, mockText(input, 15));
    assert.equal(done.choices[0].finish_reason, 'length');
    assert.equal(done.usage.prompt_tokens, input);
    assert.equal(done.usage.completion_tokens, 15);
    let ev = await usageEvent(server, response.headers.get('request-id'));
    assert.equal(ev.route, 'chat.completions');
    assert.deepEqual([ev.input_tokens, ev.output_tokens, ev.stream], [input, 15, 0]);

    const { data: stream, response: sres } = await client.chat.completions
      .create({ model: 'gatehouse-mock-small', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Say hello' }] })
      .withResponse();
    let text = '';
    let usage = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, mockText(input, 30));
    assert.equal(usage.completion_tokens, 30);
    ev = await usageEvent(server, sres.headers.get('request-id'));
    assert.deepEqual([ev.input_tokens, ev.output_tokens, ev.stream], [input, 30, 1]);
  });

  test('a chat stream that did not ask for usage is still metered (usage is forced on)', async () => {
    const client = new OpenAI({ apiKey: acme.key, baseURL: `${server.apiUrl}/v1`, maxRetries: 0 });
    const { data: stream, response } = await client.chat.completions
      .create({ model: 'gatehouse-mock-small', stream: true, max_tokens: 7, messages: [{ role: 'user', content: 'Hey' }] })
      .withResponse();
    for await (const chunk of stream) void chunk;
    const ev = await usageEvent(server, response.headers.get('request-id'));
    assert.deepEqual([ev.input_tokens, ev.output_tokens], [mockInput('Hey'), 7]);
    assert.ok(ev.cost_nusd > 0);
  });

  test('every 401, in the shape of the route, with no usage event', async () => {
    const forged = (prefix) => {
      // A well-formed key (right alphabet and checksum) that was never issued.
      const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
      let c = ~0;
      const body = prefix + 'F'.repeat(43);
      for (const b of Buffer.from(body)) { c ^= b; for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xEDB88320 & -(c & 1)); }
      let n = ~c >>> 0, crc = '';
      for (let i = 0; i < 6; i++) { crc = BASE62[n % 62] + crc; n = Math.floor(n / 62); }
      return body + crc;
    };
    const other = await setup(server, 'Keys');
    const inactive = (await other.admin.post('/v1/organizations/api_keys', { name: 'inactive' })).body;
    assert.equal((await other.admin.post(`/v1/organizations/api_keys/${inactive.id}`, { status: 'inactive' })).status, 200);
    const archived = (await other.admin.post('/v1/organizations/api_keys', { name: 'archived' })).body;
    assert.equal((await other.admin.post(`/v1/organizations/api_keys/${archived.id}`, { status: 'archived' })).status, 200);
    const ws = (await other.admin.post('/v1/organizations/workspaces', { name: 'Doomed' })).body;
    const inWs = (await other.admin.post('/v1/organizations/api_keys', { name: 'in ws', workspace_id: ws.id })).body;
    // The key works until its workspace is archived.
    assert.equal((await call(server, '/v1/messages', { key: inWs.key, json: MSG() })).status, 200);
    assert.equal((await other.admin.post(`/v1/organizations/workspaces/${ws.id}/archive`, {})).status, 200);
    const adminKey = (await other.admin.post('/v1/organizations/admin_keys', { name: 'script' })).body.key;
    const good = acme.key;

    const cases = [
      { name: 'no key', key: undefined, message: /^x-api-key header is required/, known: false },
      { name: 'empty key', key: '', message: /^x-api-key header is required/, known: false },
      { name: 'malformed', key: 'sk-ant-api03-abc', message: /^invalid x-api-key: the key is malformed/, known: false },
      { name: 'bad checksum', key: good.slice(0, -1) + (good.at(-1) === 'A' ? 'B' : 'A'), message: /^invalid x-api-key: the key is malformed/, known: false },
      { name: 'unknown', key: forged('sk-gh-api01-'), message: 'invalid x-api-key: no such key.', known: false },
      { name: 'inactive', key: inactive.key, message: /inactive/, known: true, ws: other.workspaceId },
      { name: 'archived', key: archived.key, message: /archived/, known: true, ws: other.workspaceId },
      { name: 'archived workspace', key: inWs.key, message: /archived/, known: true, ws: ws.id },
      { name: 'admin key', key: adminKey, message: /^Admin keys \(sk-gh-admin01-\.\.\.\) work only on the Organization API/, known: false },
    ];
    for (const c of cases) {
      for (const bearer of [false, true]) {
        const r = await call(server, '/v1/messages', { key: c.key, bearer, json: MSG() });
        assertAnthropicError(r, 401, 'authentication_error', c.message);
        assert.equal(r.headers.get('anthropic-organization-id'), c.known ? other.orgId : null, `${c.name}: org header`);
        assert.equal(r.headers.get('anthropic-workspace-id'), c.known ? c.ws : null, `${c.name}: workspace header`);
        assert.equal(usageCount(server, r.json.request_id), 0);
      }
      const o = await call(server, '/v1/chat/completions', { key: c.key, bearer: true, json: MSG() });
      assertOpenAIError(o, 401, 'authentication_error', 'invalid_api_key', c.message);
    }
    // The SDKs surface them as authentication errors.
    const a = new Anthropic({ apiKey: forged('sk-gh-api01-'), baseURL: server.apiUrl, maxRetries: 0 });
    await assert.rejects(a.messages.create(MSG()), (e) => e instanceof Anthropic.AuthenticationError && e.status === 401);
    const oa = new OpenAI({ apiKey: adminKey, baseURL: `${server.apiUrl}/v1`, maxRetries: 0 });
    await assert.rejects(oa.chat.completions.create(MSG()), (e) => e instanceof OpenAI.AuthenticationError && /Organization API/.test(e.message));
    // No key ever reaches the log.
    for (const c of cases) if (c.key && c.key.length > 20) assert.ok(!server.log.includes(c.key), `${c.name} key in the log`);
  });

  test('bad bodies get 400 with a clear message, unknown models 404, nothing charged', async () => {
    const cases = [
      [undefined, 'The request body is empty; it must be a JSON object.'],
      ['{"model":', /^The request body is not valid JSON: /],
      ['{"model":"gatehouse-mock-small","max_tokens":5,"messages":[1],}', /^The request body is not valid JSON: expected a quoted key/],
      ['[1,2]', /^The request body is not valid JSON: the body must be a JSON object/],
      [JSON.stringify({ max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }), 'model: Field required'],
      [JSON.stringify({ model: 'gatehouse-mock-small', messages: [{ role: 'user', content: 'x' }] }), 'max_tokens: Field required'],
      [JSON.stringify({ model: 'gatehouse-mock-small', max_tokens: 0, messages: [{ role: 'user', content: 'x' }] }), 'max_tokens: Input should be greater than or equal to 1'],
      [JSON.stringify({ model: 'gatehouse-mock-small', max_tokens: 2.5, messages: [{ role: 'user', content: 'x' }] }), 'max_tokens: Input should be a valid integer'],
      [JSON.stringify({ model: 'gatehouse-mock-small', max_tokens: 5 }), 'messages: Field required'],
      [JSON.stringify({ model: 'gatehouse-mock-small', max_tokens: 5, messages: 'hi' }), 'messages: Input should be a valid list'],
      [JSON.stringify({ model: 7, max_tokens: 5, messages: [] }), 'model: Input should be a valid string'],
      [JSON.stringify({ model: 'gatehouse-mock-small', max_tokens: 5, stream: 'yes', messages: [{ role: 'user', content: 'x' }] }), 'stream: Input should be a valid boolean'],
      ['{"model":"gatehouse-mock-small","max_tokens":5,"messages":[{}],"model":"gatehouse-mock-large"}', 'model: appears more than once in the request body'],
      ['{"model":"gatehouse-mock-small","max_tokens":5,"messages":' + '['.repeat(100) + ']'.repeat(100) + '}', 'The request body nests JSON deeper than 64 levels.'],
    ];
    for (const [body, message] of cases) {
      const r = await call(server, '/v1/messages', { key: acme.key, body, headers: { 'content-type': 'application/json' } });
      assertAnthropicError(r, 400, 'invalid_request_error', message);
      assert.equal(r.headers.get('anthropic-organization-id'), acme.orgId);
      assert.equal(usageCount(server, r.json.request_id), 0);
    }
    assertAnthropicError(await call(server, '/v1/messages', { key: acme.key, json: { ...MSG(), model: 'claude-nonesuch' } }),
      404, 'not_found_error', 'model: claude-nonesuch');
    assertAnthropicError(await call(server, '/v1/messages', { key: acme.key, json: MSG(), headers: { 'anthropic-version': 'latest' } }),
      400, 'invalid_request_error', /^anthropic-version: "latest" is not a version/);
    assertOpenAIError(await call(server, '/v1/chat/completions', { key: acme.key, json: { model: 'gpt-nonesuch', messages: [{ role: 'user', content: 'x' }] } }),
      404, 'not_found_error', 'model_not_found', 'model: gpt-nonesuch');
    assertOpenAIError(await call(server, '/v1/chat/completions', { key: acme.key, json: { model: 'gatehouse-mock-small', messages: [] } }),
      400, 'invalid_request_error', 'invalid_request', 'messages: List should have at least 1 item');
    // The SDKs raise them with their messages.
    const client = new Anthropic({ apiKey: acme.key, baseURL: server.apiUrl, maxRetries: 0 });
    await assert.rejects(client.messages.create({ ...MSG(), model: 'claude-nonesuch' }),
      (e) => e instanceof Anthropic.NotFoundError && e.error.error.message === 'model: claude-nonesuch');
    // Wrong methods and paths are 404s of the router.
    assertAnthropicError(await call(server, '/v1/messages', { method: 'GET', key: acme.key }), 404, 'not_found_error', /^No route for GET \/v1\/messages\./);
    assertAnthropicError(await call(server, '/v1/messages/batches', { key: acme.key, json: MSG() }), 404, 'not_found_error');
  });

  test('bodies over api_max_body_bytes get 413 request_too_large', async () => {
    const big = MSG('x'.repeat(70000));
    const r = await call(server, '/v1/messages', { key: acme.key, json: big });
    assertAnthropicError(r, 413, 'request_too_large', /the limit is 65536 bytes/);
    assert.equal(usageCount(server, r.json.request_id), 0);
    assertOpenAIError(await call(server, '/v1/chat/completions', { key: acme.key, json: big }), 413, 'request_too_large', 'request_too_large');
    // Far over the limit, h2o refuses it from the content-length alone, in the same shape.
    const huge = await new Promise((resolve, reject) => {
      const req = http.request(`${server.apiUrl}/v1/messages`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': acme.key, 'content-length': 4 * 1024 * 1024 },
      }, (res) => {
        let data = '';
        res.on('data', (d) => { data += d; });
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, data }));
      });
      req.on('error', reject);
      req.write('{"model":"gatehouse-mock-small"');
    });
    assert.equal(huge.status, 413);
    const j = JSON.parse(huge.data);
    assert.equal(j.error.type, 'request_too_large');
    assert.equal(j.request_id, huge.headers['request-id']);
    assert.match(j.request_id, REQ_ID);
  });
});

// ================================================================================================
// A scriptable model server. The first message's text picks what it does ("mode=..."); every
// request it gets is recorded.
function startUpstream() {
  const seen = [];
  // A held "slow" stream stops after its first word until the test releases it (holdSlow).
  let slowGate = null;
  const events = new (class extends EventTarget {})();
  const sse = (res, event, data) => res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
  const usageStart = { input_tokens: 11, cache_creation_input_tokens: 3, cache_read_input_tokens: 2, output_tokens: 1 };

  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { raw += d; });
    req.on('end', () => {
      const body = JSON.parse(raw);
      const first = body.messages?.[0]?.content;
      const mode = (typeof first === 'string' && first.match(/^mode=([\w-]+)/)?.[1]) || 'normal';
      const record = { path: req.url, headers: req.headers, body, mode, finished: false, aborted: false };
      seen.push(record);
      res.on('close', () => { if (!res.writableFinished) record.aborted = true; events.dispatchEvent(new Event('change')); });
      res.on('finish', () => { record.finished = true; events.dispatchEvent(new Event('change')); });

      if (req.url === '/v1/chat/completions') {
        const usage = { prompt_tokens: 20, completion_tokens: 6, total_tokens: 26, prompt_tokens_details: { cached_tokens: 8 } };
        if (!body.stream) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ id: 'c1', object: 'chat.completion', created: 1, model: body.model,
            choices: [{ index: 0, message: { role: 'assistant', content: 'upstream says hi' }, finish_reason: 'stop' }], usage }));
          return;
        }
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const chunk = (choices, extra = {}) => res.write(`data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: body.model, choices, ...extra })}\n\n`);
        for (const w of ['upstream', ' says', ' hi']) chunk([{ index: 0, delta: { content: w }, finish_reason: null }]);
        chunk([{ index: 0, delta: {}, finish_reason: 'stop' }]);
        // Like OpenAI: the usage chunk only when asked for.
        if (body.stream_options?.include_usage === true) chunk([], { usage });
        res.end('data: [DONE]\n\n');
        return;
      }

      const message = (text, output) => ({ id: 'msg_up', type: 'message', role: 'assistant', model: body.model,
        content: [{ type: 'text', text }], stop_reason: 'end_turn', stop_sequence: null,
        usage: { ...usageStart, output_tokens: output } });
      switch (mode) {
        case 'normal':
        case 'slow': {
          if (!body.stream) {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify(message('Hello from upstream', 4)));
            return;
          }
          res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
          sse(res, 'message_start', { message: { ...message('', 1), content: [], stop_reason: null } });
          sse(res, 'content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
          const words = mode === 'slow' ? Array.from({ length: 10 }, (_, i) => `w${i} `) : ['Hello', ' from', ' up', 'stream'];
          let i = 0;
          const gate = mode === 'slow' ? slowGate : null;
          if (gate) slowGate = null;
          const next = () => {
            if (res.destroyed) return;
            if (i < words.length) {
              sse(res, 'content_block_delta', { index: 0, delta: { type: 'text_delta', text: words[i++] } });
              if (i === 1 && gate) gate.then(() => setTimeout(next, 30));
              else if (mode === 'slow') setTimeout(next, 30); else next();
              return;
            }
            sse(res, 'content_block_stop', { index: 0 });
            sse(res, 'message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: words.length } });
            sse(res, 'message_stop', {});
            res.end();
          };
          next();
          return;
        }
        case 'flood': {
          // 64 MB of events as fast as the gateway takes them, minding backpressure.
          const n = 16384;
          const text = 'x'.repeat(4000);
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          sse(res, 'message_start', { message: { ...message('', 1), content: [], stop_reason: null } });
          record.written = 0;
          let i = 0;
          const pump = () => {
            record.blockedSince = null;
            while (i < n) {
              const chunk = `event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } })}\n\n`;
              i++;
              record.written += chunk.length;
              if (!res.write(chunk)) { record.blockedSince = Date.now(); res.once('drain', pump); return; }
            }
            sse(res, 'message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: n } });
            sse(res, 'message_stop', {});
            res.end();
          };
          pump();
          return;
        }
        case '400':
          res.writeHead(400, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message: 'upstream says: prompt is too long' } }));
          return;
        case '529':
          res.writeHead(529, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }));
          return;
        case '500':
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end('internal trouble');
          return;
        case 'garbage':
          req.socket.end('THIS IS NOT HTTP\r\n\r\n');
          return;
        case 'stall-head':
          return; // never answers; the gateway's first-byte timeout fires
        case 'stall-mid':
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          sse(res, 'message_start', { message: { ...message('', 1), content: [], stop_reason: null } });
          return; // then silence; the gateway's idle timeout fires
        case 'close-mid':
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          sse(res, 'message_start', { message: { ...message('', 1), content: [], stop_reason: null } });
          sse(res, 'content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'Hel' } });
          // Half an event, then the connection dies.
          res.write('event: content_block_delta\ndata: {"type":"content_bl');
          setTimeout(() => req.socket.destroy(), 20);
          return;
        case 'sse-garbage':
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.end('\x00\xffnot an event stream at all');
          return;
        default:
          res.writeHead(500);
          res.end();
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve({
      url: `http://127.0.0.1:${server.address().port}`,
      seen,
      last: () => seen.at(-1),
      // The next "slow" stream waits after its first word until the returned function is
      // called: a test can act (close its client) with the stream certainly unfinished.
      holdSlow() {
        let release;
        slowGate = new Promise((r) => { release = r; });
        return release;
      },
      // Resolves when `pred(record)` holds for the last request with `mode`.
      waitFor(mode, pred, timeoutMs = 30000) {
        return new Promise((res, rej) => {
          const check = () => {
            const r = seen.filter((x) => x.mode === mode).at(-1);
            if (r && pred(r)) { done(); res(r); }
          };
          const timer = setTimeout(() => { done(); rej(new Error(`upstream ${mode}: condition not met in ${timeoutMs} ms`)); }, timeoutMs);
          let done = () => { clearTimeout(timer); events.removeEventListener('change', check); };
          events.addEventListener('change', check);
          const poll = setInterval(check, 20); // for conditions on time, like "blocked for 300 ms"
          const stop = done;
          done = () => { stop(); clearInterval(poll); };
          check();
        });
      },
      close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
    });
  }));
}


// Reads an SSE response as it arrives: {status, headers, events: [{event, data}], raw}.
function readStream(server, path, key, json, { onFirstEvent } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${server.apiUrl}${path}`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': '2023-06-01' },
    }, (res) => {
      let raw = '';
      let first = true;
      res.setEncoding('utf8');
      res.on('data', (d) => {
        raw += d;
        if (first && raw.includes('\n\n')) { first = false; onFirstEvent?.(req, res); }
      });
      const done = () => resolve({
        status: res.statusCode, headers: res.headers, raw,
        events: raw.split('\n\n').filter((b) => b.trim()).map((b) => ({
          event: b.match(/^event: (.*)$/m)?.[1] ?? null,
          data: b.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n'),
        })),
      });
      res.on('end', done);
      res.on('close', done);
    });
    req.on('error', (e) => (e.code === 'ECONNRESET' ? resolve({ aborted: true }) : reject(e)));
    req.end(JSON.stringify(json));
  });
}

describe('the relay to HTTP upstreams', () => {
  let server;
  let upstream;
  let acme;
  const UPSTREAM_KEY = 'sk-upstream-own-secret-0123456789';
  const PRICE = { price_input: 3, price_output: 15, price_cache_write: 3.75, price_cache_read: 0.3 };
  const anthropicCost = (input, output, cw, cr) => cost(input, 3e9) + cost(output, 15e9) + cost(cw, 3.75e9) + cost(cr, 0.3e9);

  before(async () => {
    upstream = await startUpstream();
    const dead = deadPort();
    server = await startServer({
      env: { GH_TEST_UPSTREAM_KEY: UPSTREAM_KEY },
      config: {
        'model relay-claude': { style: 'anthropic', upstream_url: upstream.url, api_key_env: 'GH_TEST_UPSTREAM_KEY', upstream_model: 'claude-upstream-name', ...PRICE },
        // Short timeouts only where a stall is the point: the upstream never answers, so the
        // timeout fires however loaded the machine is. Everything else uses relay-claude, whose
        // default timeouts a busy machine never reaches.
        'model relay-stall': { style: 'anthropic', upstream_url: upstream.url, first_byte_timeout_ms: 500, ...PRICE },
        'model relay-idle': { style: 'anthropic', upstream_url: upstream.url, idle_timeout_ms: 500, ...PRICE },
        'model relay-cancel': { style: 'anthropic', upstream_url: upstream.url, on_disconnect: 'cancel', ...PRICE },
        'model relay-gpt': { style: 'openai', upstream_url: `${upstream.url}/v1/`, api_key_env: 'GH_TEST_UPSTREAM_KEY', upstream_model: 'org/gpt-upstream', ...PRICE },
        'model dead': { style: 'anthropic', upstream_url: `http://127.0.0.1:${dead}`, connect_timeout_ms: 1000 },
        'model mock': { style: 'mock', price_input: 1, price_output: 5 },
      },
    });
    acme = await setup(server);
  });
  after(async () => {
    await server?.stop();
    await upstream?.close();
  });

  const claude = (text, extra = {}) => ({ model: 'relay-claude', max_tokens: 50, messages: [{ role: 'user', content: text }], ...extra });

  test('Anthropic style: the upstream gets its own key, its model name and nothing of the client', async () => {
    const client = new Anthropic({
      apiKey: acme.key, baseURL: server.apiUrl, maxRetries: 0,
      defaultHeaders: { cookie: 'gh_session=secret', 'x-forwarded-for': '6.6.6.6', 'anthropic-beta': 'tools-2024-04-04' },
    });
    const { data: msg, response } = await client.messages.create(claude('Hi there')).withResponse();
    assert.equal(msg.content[0].text, 'Hello from upstream');
    const up = upstream.last();
    assert.equal(up.path, '/v1/messages');
    assert.equal(up.body.model, 'claude-upstream-name');
    assert.deepEqual(up.body.messages, [{ role: 'user', content: 'Hi there' }]);
    assert.equal(up.headers['x-api-key'], UPSTREAM_KEY);
    assert.equal(up.headers.authorization, undefined);
    assert.equal(up.headers.cookie, undefined);
    assert.equal(up.headers['x-forwarded-for'], undefined);
    assert.equal(up.headers['user-agent'], undefined);
    assert.equal(up.headers['anthropic-version'], '2026-10-21', 'the SDK\'s newer version is passed as it is');
    assert.equal(up.headers['anthropic-beta'], 'tools-2024-04-04');
    assert.equal(up.headers['content-type'], 'application/json');
    assert.ok(!JSON.stringify(up.headers).includes(acme.key));
    assert.ok(!server.log.includes(UPSTREAM_KEY), 'the upstream key is never logged');
    const ev = await usageEvent(server, response.headers.get('request-id'));
    assert.deepEqual([ev.model, ev.input_tokens, ev.output_tokens, ev.cache_creation_tokens, ev.cache_read_tokens], ['relay-claude', 11, 4, 3, 2]);
    assert.equal(ev.cost_nusd, anthropicCost(11, 4, 3, 2));
  });

  test('Anthropic style, streaming: relayed event by event and charged from the stream', async () => {
    const client = new Anthropic({ apiKey: acme.key, baseURL: server.apiUrl, maxRetries: 0 });
    const { data: stream, response } = await client.messages.create(claude('Stream please', { stream: true })).withResponse();
    let text = '';
    for await (const ev of stream) if (ev.type === 'content_block_delta') text += ev.delta.text;
    assert.equal(text, 'Hello from upstream');
    assert.equal(upstream.last().body.stream, true);
    const ev = await usageEvent(server, response.headers.get('request-id'));
    assert.deepEqual([ev.input_tokens, ev.output_tokens, ev.cache_creation_tokens, ev.cache_read_tokens, ev.stream], [11, 4, 3, 2, 1]);
  });

  test('OpenAI style: bearer key upstream, base URL with /v1, usage forced on for streams', async () => {
    const client = new OpenAI({ apiKey: acme.key, baseURL: `${server.apiUrl}/v1`, maxRetries: 0 });
    const { data: done, response } = await client.chat.completions
      .create({ model: 'relay-gpt', messages: [{ role: 'user', content: 'Hi' }] }).withResponse();
    assert.equal(done.choices[0].message.content, 'upstream says hi');
    let up = upstream.last();
    assert.equal(up.path, '/v1/chat/completions');
    assert.equal(up.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
    assert.equal(up.headers['x-api-key'], undefined);
    assert.equal(up.headers['anthropic-version'], undefined);
    assert.equal(up.body.model, 'org/gpt-upstream');
    assert.equal(up.body.stream_options, undefined, 'nothing added when not streaming');
    let ev = await usageEvent(server, response.headers.get('request-id'));
    // 20 prompt tokens of which 8 cached: 12 uncached input, 8 cache reads.
    assert.deepEqual([ev.input_tokens, ev.cache_read_tokens, ev.output_tokens], [12, 8, 6]);
    assert.equal(ev.cost_nusd, anthropicCost(12, 6, 0, 8));

    // The client did not ask for usage; the upstream is asked anyway, and the stream charged.
    const { data: stream, response: sres } = await client.chat.completions
      .create({ model: 'relay-gpt', stream: true, messages: [{ role: 'user', content: 'Hi' }] }).withResponse();
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    assert.equal(text, 'upstream says hi');
    up = upstream.last();
    assert.deepEqual(up.body.stream_options, { include_usage: true });
    ev = await usageEvent(server, sres.headers.get('request-id'));
    assert.deepEqual([ev.input_tokens, ev.cache_read_tokens, ev.output_tokens, ev.stream], [12, 8, 6, 1]);
  });

  test('the relay does not translate: each style serves its own API', async () => {
    assertOpenAIError(await call(server, '/v1/chat/completions', { key: acme.key, json: claude('x') }), 400, 'invalid_request_error', 'invalid_request', /speaks the Anthropic Messages API/);
    assertAnthropicError(await call(server, '/v1/messages', { key: acme.key, json: { ...claude('x'), model: 'relay-gpt' } }), 400, 'invalid_request_error', /speaks the OpenAI Chat Completions API/);
  });

  test('upstream 4xx answers pass through with their status and body, uncharged', async () => {
    const r = await call(server, '/v1/messages', { key: acme.key, json: claude('mode=400') });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.message, 'upstream says: prompt is too long');
    assert.match(r.headers.get('request-id'), REQ_ID);
    const ev = await usageEvent(server, r.headers.get('request-id'));
    assert.deepEqual([ev.status, ev.input_tokens, ev.output_tokens, ev.cost_nusd], [400, 0, 0, 0]);
  });

  test('upstream failures map to 502, 504 and 529 in Anthropic\'s shape', async () => {
    assertAnthropicError(await call(server, '/v1/messages', { key: acme.key, json: { ...claude('x'), model: 'dead' } }),
      502, 'api_error', /^The upstream model server for dead could not be reached/);
    assertAnthropicError(await call(server, '/v1/messages', { key: acme.key, json: claude('mode=529') }),
      529, 'overloaded_error', 'The upstream model server for relay-claude is overloaded (HTTP 529).');
    assertAnthropicError(await call(server, '/v1/messages', { key: acme.key, json: claude('mode=500') }),
      502, 'api_error', 'The upstream model server for relay-claude answered HTTP 500.');
    assertAnthropicError(await call(server, '/v1/messages', { key: acme.key, json: claude('mode=garbage') }),
      502, 'api_error', /^The upstream model server for relay-claude did not send a valid response/);
    const stalled = await call(server, '/v1/messages', { key: acme.key, json: { ...claude('mode=stall-head'), model: 'relay-stall' } });
    assertAnthropicError(stalled, 504, 'timeout_error', 'The upstream model server for relay-stall did not start its response within 500 ms.');
    const ev = await usageEvent(server, stalled.json.request_id);
    assert.deepEqual([ev.status, ev.output_tokens, ev.cost_nusd], [504, 0, 0]);
    // The SDK sees the types it knows.
    const client = new Anthropic({ apiKey: acme.key, baseURL: server.apiUrl, maxRetries: 0 });
    await assert.rejects(client.messages.create(claude('mode=529')), (e) => e.status === 529 && e.error.error.type === 'overloaded_error');
    // The gateway keeps serving.
    assert.equal((await call(server, '/v1/messages', { key: acme.key, json: claude('fine') })).status, 200);
  });

  test('a stream that breaks gets a clean SSE error event and is charged what was delivered', async () => {
    for (const [mode, type, message, model] of [
      ['stall-mid', 'timeout_error', 'The upstream model server for relay-idle sent nothing for 500 ms in the middle of its response.', 'relay-idle'],
      ['close-mid', 'api_error', /^The upstream model server for relay-claude (ended its stream before it was complete|broke off its response)/],
      ['sse-garbage', 'api_error', 'The upstream model server for relay-claude ended its stream before it was complete.'],
    ]) {
      const r = await readStream(server, '/v1/messages', acme.key, { ...claude(`mode=${mode}`, { stream: true }), model: model ?? 'relay-claude' });
      assert.equal(r.status, 200, mode);
      const last = r.events.at(-1);
      assert.equal(last.event, 'error', `${mode}: ${r.raw}`);
      const err = JSON.parse(last.data);
      assert.equal(err.type, 'error');
      assert.equal(err.error.type, type);
      if (message instanceof RegExp) assert.match(err.error.message, message); else assert.equal(err.error.message, message);
      assert.equal(err.request_id, r.headers['request-id']);
      // Every event before the error is whole: the half event was dropped.
      for (const e of r.events.slice(0, -1)) assert.doesNotThrow(() => JSON.parse(e.data), `${mode}: ${e.data}`);
      const ev = await usageEvent(server, r.headers['request-id']);
      if (mode === 'sse-garbage') assert.deepEqual([ev.input_tokens, ev.output_tokens], [0, 0]);
      else assert.deepEqual([ev.input_tokens, ev.output_tokens, ev.cache_creation_tokens, ev.cache_read_tokens], [11, 1, 3, 2]);
    }
    // The SDK raises the error event as an API error.
    const client = new Anthropic({ apiKey: acme.key, baseURL: server.apiUrl, maxRetries: 0 });
    const stream = await client.messages.create(claude('mode=close-mid', { stream: true }));
    await assert.rejects((async () => { for await (const e of stream) void e; })(), (e) => e instanceof Anthropic.APIError && /upstream model server/.test(e.message));
  });

  test('a client that leaves mid-stream: the upstream is read to its end and charged in full', async () => {
    // The upstream holds its stream until the client is gone, so the gateway has words left to
    // relay to a closed connection however slowly this machine runs.
    const release = upstream.holdSlow();
    const r = await readStream(server, '/v1/messages', acme.key, claude('mode=slow', { stream: true }), {
      onFirstEvent: (req) => req.destroy(),
    });
    release();
    assert.ok(r.aborted || r.status === 200);
    const up = await upstream.waitFor('slow', (x) => x.finished || x.aborted);
    assert.equal(up.finished, true, 'the upstream was read to its end');
    // Find the event: the newest relay-claude stream with a disconnected client.
    const deadline = Date.now() + 30000; // a bound, not a bet on speed
    let row;
    while (Date.now() < deadline) {
      const out = sql(server, "SELECT request_id FROM usage_events WHERE model = 'relay-claude' AND client_disconnected ORDER BY journal_seq DESC LIMIT 1;").trim();
      if (out) { row = await usageEvent(server, out); break; }
      await new Promise((res) => setTimeout(res, 20));
    }
    assert.ok(row, 'a usage event for the abandoned stream');
    assert.deepEqual([row.input_tokens, row.output_tokens, row.stream, row.client_disconnected], [11, 10, 1, 1]);
    assert.equal(row.cost_nusd, anthropicCost(11, 10, 3, 2));
  });

  test('on_disconnect = cancel: the upstream is stopped and charged input plus the output relayed', async () => {
    const release = upstream.holdSlow();
    const r = await readStream(server, '/v1/messages', acme.key, { ...claude('mode=slow', { stream: true }), model: 'relay-cancel' }, {
      onFirstEvent: (req) => req.destroy(),
    });
    release();
    assert.ok(r.aborted || r.status === 200);
    const up = await upstream.waitFor('slow', (x) => x.finished || x.aborted);
    assert.equal(up.aborted, true, 'the upstream connection was closed early');
    const deadline = Date.now() + 30000; // a bound, not a bet on speed
    let row;
    while (Date.now() < deadline) {
      const out = sql(server, "SELECT request_id FROM usage_events WHERE model = 'relay-cancel' ORDER BY journal_seq DESC LIMIT 1;").trim();
      if (out) { row = await usageEvent(server, out); break; }
      await new Promise((res) => setTimeout(res, 20));
    }
    assert.ok(row);
    assert.equal(row.client_disconnected, 1);
    assert.equal(row.input_tokens, 11);
    assert.ok(row.output_tokens >= 1 && row.output_tokens < 10, `output ${row.output_tokens}`);
  });

  test('a slow client holds the upstream back instead of the gateway buffering its stream', async () => {
    const got = new Promise((resolve, reject) => {
      const req = http.request(`${server.apiUrl}/v1/messages`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': acme.key },
      }, (r) => { r.pause(); resolve(r); });
      req.on('error', reject);
      req.end(JSON.stringify(claude('mode=flood', { stream: true })));
    });
    const r = await got;
    // The client reads nothing: the upstream must end up blocked, not read to its end.
    const up = await upstream.waitFor('flood', (x) => x.finished || (x.blockedSince && Date.now() - x.blockedSince > 300), 20000);
    assert.equal(up.finished, false, 'the gateway read the whole stream although the client read nothing');
    assert.ok(up.written < 48 * 1024 * 1024, `the upstream got ${up.written} bytes out`);
    // Now the client reads: everything arrives, whole, and is charged.
    const marker = 'event: content_block_delta\n';
    let deltas = 0, tail = '', end = '';
    r.setEncoding('utf8');
    r.on('data', (d) => {
      const s = tail + d;
      deltas += s.split(marker).length - 1;
      tail = s.slice(-(marker.length - 1)); // too short to hold a whole marker again
      end = (end + d).slice(-64);
    });
    r.resume();
    await new Promise((resolve) => r.on('end', resolve));
    assert.equal(deltas, 16384);
    assert.match(end, /message_stop"}\n\n$/);
    const ev = await usageEvent(server, r.headers['request-id']);
    assert.deepEqual([ev.output_tokens, ev.client_disconnected], [16384, 0]);
  });

  test('many concurrent streams share a few loop threads', async () => {
    const client = new Anthropic({ apiKey: acme.key, baseURL: server.apiUrl, maxRetries: 0 });
    const runs = Array.from({ length: 50 }, async (_, i) => {
      const stream = await client.messages.create(claude(`mode=slow ${i}`, { stream: true }));
      let n = 0;
      for await (const ev of stream) if (ev.type === 'content_block_delta') n++;
      return n;
    });
    assert.deepEqual(await Promise.all(runs), Array(50).fill(10));
  });
});

test('shutdown: a request stalled on its upstream is stopped after the grace period, answered and charged', async () => {
  const upstream = await startUpstream();
  const server = await startServer({
    config: {
      server: { shutdown_grace_ms: 200 },
      'model stuck': { style: 'anthropic', upstream_url: upstream.url, price_input: 1, price_output: 1 },
    },
  });
  let stopped = false;
  try {
    const { key } = await setup(server);
    const pending = call(server, '/v1/messages', { key, json: { model: 'stuck', max_tokens: 5, messages: [{ role: 'user', content: 'mode=stall-head' }] } });
    await upstream.waitFor('stall-head', () => true);
    const stop = server.stop({ keepData: true });
    const r = await pending;
    assertAnthropicError(r, 529, 'overloaded_error', 'Gatehouse is shutting down; retry the request.');
    const { code } = await stop;
    stopped = true;
    assert.equal(code, 0);
    // The event was committed before the process ended.
    const ev = await usageEvent(server, r.json.request_id, 1000);
    assert.deepEqual([ev.status, ev.output_tokens], [529, 0]);
  } finally {
    if (!stopped) await server.stop().catch(() => {});
    rmSync(server.dataDir, { recursive: true, force: true });
    await upstream.close();
  }
});

