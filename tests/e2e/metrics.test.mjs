// /metrics counts the model API (docs/api.md, "Health and metrics"): requests by route, model
// and status, their durations and Gatehouse's own share, upstream errors by kind, and open
// streams, summed over the loop threads, each of which counts in a shard of its own
// (lib/metrics.h). Requests go through the official SDKs and plain fetch on several
// connections at once, so both loops of the default configuration serve some. A request
// answered by the gateway itself is counted when h2o disposes of it, just after its last byte
// leaves, so the figures are read with a bounded poll, never a sleep.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { deadPort, startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { uniq } from './lib/expect.mjs';

async function metrics(server) {
  const r = await fetch(`${server.consoleUrl}/metrics`);
  assert.equal(r.status, 200);
  return r.text();
}

// The value of one series (its exact name and labels), 0 when absent.
function value(text, series) {
  for (const line of text.split('\n')) {
    const sp = line.lastIndexOf(' ');
    if (sp > 0 && line.slice(0, sp) === series) return Number(line.slice(sp + 1));
  }
  return 0;
}

// Polls /metrics until every series has its value, or fails after 10 s with what differs.
async function expectSeries(server, want) {
  const deadline = Date.now() + 10000;
  for (;;) {
    const text = await metrics(server);
    const wrong = Object.entries(want).filter(([s, v]) => value(text, s) !== v)
      .map(([s, v]) => `${s}: ${value(text, s)}, expected ${v}`);
    if (wrong.length === 0) return text;
    if (Date.now() > deadline) assert.fail(`/metrics after 10 s:\n${wrong.join('\n')}`);
    await new Promise((r) => setImmediate(r));
  }
}

const req = (route, model, status) =>
  `gatehouse_api_requests_total{route="${route}",model="${model}",status="${status}"}`;

describe('/metrics counts the model API', () => {
  let server;
  let key;

  before(async () => {
    server = await startServer({
      config: {
        // Naming models replaces the built-in ones: the small mock is named again.
        'model gatehouse-mock-small': { style: 'mock', price_input: 1, price_output: 5 },
        'model dead': { style: 'anthropic', upstream_url: `http://127.0.0.1:${deadPort()}`, connect_timeout_ms: 1000 },
        // A token a second: a stream of 60 runs for a minute unless its client leaves, and
        // then it is stopped (cancel), not read to its end.
        'model slow': { style: 'mock', mock_tokens_per_second: 1, on_disconnect: 'cancel' },
      },
    });
    const admin = new Client(server.consoleUrl);
    await admin.signUpWithOrg(server, uniq('metrics'), 'Metrics Org');
    const r = await admin.post('/v1/organizations/api_keys', { name: 'metrics key' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    key = r.body.key;
  });
  after(async () => { await server?.stop(); });

  test('requests by route, model and status; durations; upstream errors; open streams', async () => {
    const before = await metrics(server);
    assert.equal(value(before, req('messages', 'gatehouse-mock-small', '200')), 0);
    assert.match(before, /# TYPE gatehouse_api_requests_total counter/);

    const anthropic = new Anthropic({ apiKey: key, baseURL: server.apiUrl, maxRetries: 0 });
    const openai = new OpenAI({ apiKey: key, baseURL: `${server.apiUrl}/v1`, maxRetries: 0 });
    const msg = { model: 'gatehouse-mock-small', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] };
    // Twelve at once (several connections), then two streams read to their end.
    await Promise.all(Array.from({ length: 12 }, () => anthropic.messages.create(msg)));
    for (let i = 0; i < 2; i++) {
      const stream = await anthropic.messages.create({ ...msg, stream: true });
      let events = 0;
      for await (const _ of stream) events++;
      assert.ok(events > 3);
    }
    await openai.chat.completions.create({ model: 'gatehouse-mock-small', max_completion_tokens: 4, messages: [{ role: 'user', content: 'hi' }] });
    // Refused by the gateway: a bad key (no model known yet), an unknown model.
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${server.apiUrl}/v1/messages`, { method: 'POST', headers: { 'x-api-key': 'sk-ant-nope', 'content-type': 'application/json' }, body: JSON.stringify(msg) });
      assert.equal(r.status, 401);
    }
    const unknown = await fetch(`${server.apiUrl}/v1/messages`, { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: JSON.stringify({ ...msg, model: 'no-such-model' }) });
    assert.equal(unknown.status, 404);
    // An upstream that cannot be reached: a 502 and an upstream error of kind connect.
    await assert.rejects(anthropic.messages.create({ ...msg, model: 'dead' }), (e) => e.status === 502);
    // Answered from the catalogue; health checks are not model API requests.
    for (let i = 0; i < 2; i++) assert.equal((await fetch(`${server.apiUrl}/v1/models`, { headers: { 'x-api-key': key } })).status, 200);
    for (let i = 0; i < 4; i++) assert.equal((await fetch(`${server.apiUrl}/healthz`)).status, 200);

    const text = await expectSeries(server, {
      [req('messages', 'gatehouse-mock-small', '200')]: 14,
      [req('chat_completions', 'gatehouse-mock-small', '200')]: 1,
      [req('messages', '', '401')]: 3,
      [req('messages', '', '404')]: 1,
      [req('messages', 'dead', '502')]: 1,
      [req('models', '', '200')]: 2,
      'gatehouse_upstream_errors_total{model="dead",kind="connect"}': 1,
      'gatehouse_api_request_duration_seconds_count{route="messages"}': 19,
      'gatehouse_api_overhead_seconds_count{route="messages"}': 19,
      'gatehouse_api_request_duration_seconds_count{route="chat_completions"}': 1,
      'gatehouse_api_request_duration_seconds_count{route="models"}': 2,
      'gatehouse_api_open_streams': 0,
    });
    // Nothing else was counted: no route "other" from the health checks.
    assert.equal(value(text, 'gatehouse_api_request_duration_seconds_count{route="other"}'), 0);
    // A histogram is cumulative and ends at its count; the part spent in Gatehouse is a part.
    assert.equal(value(text, 'gatehouse_api_request_duration_seconds_bucket{route="messages",le="+Inf"}'), 19);
    const total = value(text, 'gatehouse_api_request_duration_seconds_sum{route="messages"}');
    const ours = value(text, 'gatehouse_api_overhead_seconds_sum{route="messages"}');
    assert.ok(total > 0 && ours > 0 && ours <= total, `overhead ${ours} s of ${total} s`);
    // The connect failure waited on the upstream, not on Gatehouse: the dead model's attempt
    // went to deployment 0 and failed there.
    assert.equal(value(text, 'gatehouse_deployment_errors_total{model="dead",deployment="0",kind="connect"}'), 1);
  });

  test('an open stream is counted while it runs and no longer once it ends', async () => {
    const anthropic = new Anthropic({ apiKey: key, baseURL: server.apiUrl, maxRetries: 0 });
    const stream = await anthropic.messages.create({ model: 'slow', max_tokens: 60, stream: true,
      messages: [{ role: 'user', content: 'a long answer, please' }] });
    const it = stream[Symbol.asyncIterator]();
    assert.equal((await it.next()).value.type, 'message_start');
    await expectSeries(server, { gatehouse_api_open_streams: 1 });
    stream.controller.abort(); // the client leaves; the upstream is cancelled
    await expectSeries(server, { gatehouse_api_open_streams: 0 });
    // Counted once it was charged, with the status its client was sent.
    await expectSeries(server, { [req('messages', 'slow', '200')]: 1 });
  });
});
