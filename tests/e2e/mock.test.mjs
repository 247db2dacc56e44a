// The standalone mock upstream (`gatehouse mock-upstream`) driven by the official Anthropic and
// OpenAI SDKs, streaming and not: the text and the usage must equal the formula documented in
// src/gateway/mock.h, reproduced here by mockReply(). Also the raw SSE framing, the failure
// knobs, pacing and a clean stop.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { BINARY } from './lib/server.mjs';
import { spawnChild, stopChild } from './lib/children.mjs';

// ---- The documented formula (src/gateway/mock.h) ------------------------------------------

const VOCAB = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'a', 'lazy', 'dog', 'while',
  'seven', 'gentle', 'rivers', 'carry', 'small', 'paper', 'boats', 'past', 'old', 'stone',
  'bridges', 'toward', 'quiet', 'harbors', 'where', 'tired', 'sailors', 'mend', 'heavy', 'nets',
  'and', 'sing'];
const NATURAL_TOKENS = 30;

function textBytes(content) {
  if (content == null) return 0;
  if (typeof content === 'string') return Buffer.byteLength(content, 'utf8');
  return content.filter((b) => b.type === 'text').reduce((n, b) => n + Buffer.byteLength(b.text, 'utf8'), 0);
}
const part = (bytes) => 4 + Math.ceil(bytes / 4);

export function mockInputTokens(body, api = 'messages') {
  let n = 0;
  if (api !== 'chat' && body.system != null) n += part(textBytes(body.system));
  for (const m of body.messages) n += part(textBytes(m.content));
  return n;
}

function token(seed, i) {
  let w = VOCAB[(seed + i) % VOCAB.length];
  if (i % 10 === 0) w = w[0].toUpperCase() + w.slice(1);
  if (i % 10 === 9) w += '.';
  return (i > 0 ? ' ' : '') + w;
}

// {input, output, stopReason ('end_turn' | 'max_tokens' | 'stop_sequence'), text, stopSequence}
export function mockReply(body, api = 'messages') {
  const input = mockInputTokens(body, api);
  const seed = input % VOCAB.length;
  const ends = [];
  let natural = '';
  for (let i = 0; i < NATURAL_TOKENS; i++) { natural += token(seed, i); ends.push(natural.length); }
  const max = api === 'chat' ? (body.max_completion_tokens ?? body.max_tokens ?? Infinity) : body.max_tokens;
  let stops = api === 'chat' ? body.stop : body.stop_sequences;
  if (typeof stops === 'string') stops = [stops];
  let best = null;
  for (const s of stops ?? []) {
    const at = s.length ? natural.indexOf(s) : -1;
    if (at < 0) continue;
    const tok = ends.findIndex((e) => e >= at + s.length);
    if (!best || tok < best.tok || (tok === best.tok && at < best.at)) best = { tok, at, s };
  }
  if (best && best.tok + 1 <= max)
    return { input, output: best.tok + 1, stopReason: 'stop_sequence', text: natural.slice(0, best.at), stopSequence: best.s };
  if (max < NATURAL_TOKENS)
    return { input, output: max, stopReason: 'max_tokens', text: natural.slice(0, ends[max - 1]), stopSequence: null };
  return { input, output: NATURAL_TOKENS, stopReason: 'end_turn', text: natural, stopSequence: null };
}

// ---- The server -------------------------------------------------------------------------------

let proc, baseUrl;

before(async () => {
  proc = spawnChild(BINARY, ['mock-upstream', '--port', '0', '--threads', '2']);
  baseUrl = await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`mock upstream not ready in 10 s:\n${proc.log()}`)), 10000);
    const check = () => {
      const m = proc.log().match(/mock upstream listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); res(m[1]); }
    };
    proc.child.stderr.on('data', check);
    proc.exited.then(({ code, signal }) => { clearTimeout(timer); rej(new Error(`exited (${code ?? signal}):\n${proc.log()}`)); });
  });
});

after(async () => {
  if (!proc) return;
  const { code, signal } = await stopChild(proc, { what: 'the mock upstream' });
  assert.equal(code, 0, `mock upstream did not stop cleanly (${code ?? signal}):\n${proc.log().slice(-4000)}`);
});

const anthropic = () => new Anthropic({ baseURL: baseUrl, apiKey: 'sk-any', maxRetries: 0 });
const openai = () => new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey: 'sk-any', maxRetries: 0 });

const PROMPT = {
  system: 'You are a terse assistant.',
  messages: [
    { role: 'user', content: 'Tell me about foxes, please.' },
    { role: 'assistant', content: [{ type: 'text', text: 'Foxes are small canids.' }] },
    { role: 'user', content: 'More détails 🦊' },
  ],
};

function assertUsage(usage, want) {
  assert.equal(usage.input_tokens, want.input);
  assert.equal(usage.output_tokens, want.output);
  assert.equal(usage.cache_creation_input_tokens, 0);
  assert.equal(usage.cache_read_input_tokens, 0);
}

// ---- Anthropic ----------------------------------------------------------------------------------

test('Anthropic SDK: messages.create returns the documented text and usage', async () => {
  for (const extra of [{ max_tokens: 1024 }, { max_tokens: 7 }, { max_tokens: 1024, stop_sequences: ['nothing here', 'quiet harbors'] }]) {
    const req = { model: 'mock-sonnet', ...PROMPT, ...extra };
    const want = mockReply(req);
    const msg = await anthropic().messages.create(req);
    assert.equal(msg.type, 'message');
    assert.equal(msg.role, 'assistant');
    assert.equal(msg.model, 'mock-sonnet');
    assert.match(msg.id, /^msg_01[0-9A-Za-z]{22}$/);
    assert.equal(msg.content.length, 1);
    assert.equal(msg.content[0].type, 'text');
    assert.equal(msg.content[0].text, want.text);
    assert.equal(msg.stop_reason, want.stopReason);
    assert.equal(msg.stop_sequence, want.stopSequence);
    assertUsage(msg.usage, want);
  }
  // Every stop reason was exercised above.
  assert.deepEqual(['end_turn', 'max_tokens', 'stop_sequence'],
    [{ max_tokens: 1024 }, { max_tokens: 7 }, { max_tokens: 1024, stop_sequences: ['quiet harbors'] }]
      .map((x) => mockReply({ ...PROMPT, ...x }).stopReason));
});

test('Anthropic SDK: messages.stream accumulates the same message', async () => {
  const req = { model: 'mock-haiku', max_tokens: 12, ...PROMPT };
  const want = mockReply(req);
  const stream = anthropic().messages.stream(req);
  let text = '';
  stream.on('text', (t) => { text += t; });
  const msg = await stream.finalMessage();
  assert.equal(text, want.text);
  assert.equal(msg.content[0].text, want.text);
  assert.equal(msg.stop_reason, 'max_tokens');
  assertUsage(msg.usage, want);
});

test('Anthropic SDK: create({stream: true}) yields the exact event sequence', async () => {
  const req = { model: 'mock-haiku', max_tokens: 100, stop_sequences: ['over'], ...PROMPT };
  const want = mockReply(req);
  const stream = await anthropic().messages.create({ ...req, stream: true });
  const types = [];
  let text = '', delta;
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'message_start') {
      assert.equal(ev.message.usage.input_tokens, want.input);
      assert.equal(ev.message.usage.output_tokens, 1);
    }
    if (ev.type === 'content_block_delta') text += ev.delta.text;
    if (ev.type === 'message_delta') delta = ev;
  }
  const deltas = types.filter((t) => t === 'content_block_delta').length;
  assert.deepEqual(types, ['message_start', 'content_block_start', ...Array(deltas).fill('content_block_delta'),
    'content_block_stop', 'message_delta', 'message_stop']);
  assert.equal(text, want.text);
  assert.equal(delta.delta.stop_reason, want.stopReason);
  assert.equal(delta.delta.stop_sequence, want.stopSequence);
  assert.equal(delta.usage.output_tokens, want.output);
});

test('raw SSE: every data line follows its event line, and message_delta carries usage', async () => {
  const req = { model: 'm', max_tokens: 5, stream: true, messages: [{ role: 'user', content: 'Hi' }] };
  const r = await fetch(`${baseUrl}/v1/messages`, { method: 'POST', body: JSON.stringify(req) });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/event-stream/);
  const raw = await r.text();
  const events = raw.split('\n\n').filter(Boolean);
  assert.equal(events.length, 3 + 5 + 3);
  for (const ev of events) {
    const lines = ev.split('\n');
    assert.equal(lines.length, 2, ev);
    assert.match(lines[0], /^event: \w+$/);
    assert.match(lines[1], /^data: \{/);
    assert.equal(JSON.parse(lines[1].slice(6)).type, lines[0].slice(7));
  }
  const md = JSON.parse(events.at(-2).split('\n')[1].slice(6));
  assert.equal(md.type, 'message_delta');
  assert.deepEqual(md.usage, { input_tokens: mockInputTokens(req), cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0, output_tokens: 5 });
});

test('Anthropic SDK: countTokens and a 400 for a bad request', async () => {
  const req = { model: 'm', ...PROMPT };
  const r = await anthropic().messages.countTokens(req);
  assert.deepEqual(r, { input_tokens: mockInputTokens(req) });
  await assert.rejects(anthropic().messages.create({ model: 'm', messages: [] , max_tokens: 5 }),
    (e) => e.status === 400 && e.error.error.type === 'invalid_request_error');
});

// ---- OpenAI -------------------------------------------------------------------------------------

test('OpenAI SDK: chat.completions.create returns the documented text and usage', async () => {
  for (const extra of [{}, { max_tokens: 4 }, { max_completion_tokens: 6, stop: 'brown' }]) {
    const req = { model: 'gpt-mock', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello!' }], ...extra };
    const want = mockReply(req, 'chat');
    const c = await openai().chat.completions.create(req);
    assert.equal(c.object, 'chat.completion');
    assert.equal(c.model, 'gpt-mock');
    assert.equal(c.choices[0].message.role, 'assistant');
    assert.equal(c.choices[0].message.content, want.text);
    assert.equal(c.choices[0].finish_reason, want.stopReason === 'max_tokens' ? 'length' : 'stop');
    assert.deepEqual(c.usage, { prompt_tokens: want.input, completion_tokens: want.output, total_tokens: want.input + want.output });
  }
});

test('OpenAI SDK: streaming with and without include_usage', async () => {
  const base = { model: 'gpt-mock', messages: [{ role: 'user', content: 'Stream, please.' }], max_tokens: 9 };
  const want = mockReply(base, 'chat');
  for (const includeUsage of [true, false]) {
    const req = { ...base, stream: true, ...(includeUsage ? { stream_options: { include_usage: true } } : {}) };
    const stream = await openai().chat.completions.create(req);
    let text = '', usage = null, finish = null, chunks = 0;
    for await (const ch of stream) {
      chunks++;
      assert.equal(ch.object, 'chat.completion.chunk');
      if (ch.usage) usage = ch.usage;
      const choice = ch.choices[0];
      if (choice?.delta?.content) text += choice.delta.content;
      if (choice?.finish_reason) finish = choice.finish_reason;
    }
    assert.equal(text, want.text);
    assert.equal(finish, 'length');
    if (includeUsage)
      assert.deepEqual(usage, { prompt_tokens: want.input, completion_tokens: want.output, total_tokens: want.input + want.output });
    else
      assert.equal(usage, null);
    assert.equal(chunks, 1 + want.output + 1 + (includeUsage ? 1 : 0));
  }
  // The SDK's stream helper assembles the same completion.
  const helper = openai().chat.completions.stream({ ...base, stream_options: { include_usage: true } });
  const final = await helper.finalChatCompletion();
  assert.equal(final.choices[0].message.content, want.text);
  assert.equal(final.usage.completion_tokens, want.output);
});

// ---- Knobs --------------------------------------------------------------------------------------

const small = { model: 'm', max_tokens: 30, messages: [{ role: 'user', content: 'x' }] };

test('x-mock-fail injects failures the SDKs see as such', async () => {
  await assert.rejects(anthropic().messages.create(small, { headers: { 'x-mock-fail': '529' } }),
    (e) => e.status === 529 && e.error.error.type === 'overloaded_error');
  await assert.rejects(anthropic().messages.create(small, { headers: { 'x-mock-fail': '500' } }),
    (e) => e.status === 500 && e.error.error.type === 'api_error');
  await assert.rejects(async () => {
    const s = anthropic().messages.stream(small, { headers: { 'x-mock-fail': 'close-mid-stream' } });
    await s.finalMessage();
  });
  const g = await fetch(`${baseUrl}/v1/messages`, { method: 'POST', headers: { 'x-mock-fail': 'garbage' }, body: JSON.stringify(small) });
  assert.equal(g.status, 200);
  const garbage = await g.text();
  assert.throws(() => JSON.parse(garbage));
  assert.doesNotMatch(garbage, /^(event|data):/m);

  // A stall: the head arrives, the body never does.
  const ac = new AbortController();
  const s = await fetch(`${baseUrl}/v1/messages`, { method: 'POST', headers: { 'x-mock-fail': 'stall' },
    body: JSON.stringify({ ...small, stream: true }), signal: ac.signal });
  assert.equal(s.status, 200);
  const reader = s.body.getReader();
  const got = await Promise.race([reader.read().then(() => 'data'), new Promise((r) => setTimeout(() => r('nothing'), 300))]);
  assert.equal(got, 'nothing');
  ac.abort();
  await reader.cancel().catch(() => {});

  const bad = await fetch(`${baseUrl}/v1/messages`, { method: 'POST', headers: { 'x-mock-fail': 'sometimes' }, body: JSON.stringify(small) });
  assert.equal(bad.status, 400);
});

test('tokens per second paces a stream, latency delays the first byte', async () => {
  const t0 = Date.now();
  const r = await fetch(`${baseUrl}/v1/messages`, {
    method: 'POST',
    headers: { 'x-mock-latency-ms': '100', 'x-mock-tokens-per-second': '100' },
    body: JSON.stringify({ ...small, max_tokens: 20, stream: true }),
  });
  const firstByte = Date.now() - t0;
  const body = await r.text();
  const total = Date.now() - t0;
  assert.ok(firstByte >= 90, `first byte after ${firstByte} ms`);
  // 20 tokens at 100/s: the last is due 190 ms after the first byte.
  assert.ok(total >= 100 + 180, `whole stream in ${total} ms`);
  assert.equal(body.match(/event: content_block_delta/g).length, 20);
});

test('healthz and unknown paths', async () => {
  const h = await fetch(`${baseUrl}/healthz`);
  assert.equal(h.status, 200);
  assert.equal((await h.json()).status, 'ok');
  const n = await fetch(`${baseUrl}/v1/models`);
  assert.equal(n.status, 404);
  assert.equal((await n.json()).error.type, 'not_found_error');
});
