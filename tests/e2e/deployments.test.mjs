// Several deployments per model (issue 15): weighted balancing on outstanding requests,
// retries before the first byte, passive health with ejection and re-admission, fallbacks
// billed at their own prices, no retry once a stream has started. The deployments are real
// `gatehouse mock-upstream` processes; their failures are switched with --fail and
// PUT /mock/fail. Nothing here bets on timing: shares are counted over many requests and
// compared with each other, and waits for a state are bounded polls of /metrics.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import Anthropic from '@anthropic-ai/sdk';
import { deadPort, startServer, BINARY } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { uniq, sql, sqlObject, sqlQuote } from './lib/expect.mjs';
import { report, USAGE } from './lib/reports.mjs';
import { LIMITS_CONFIG, PRICES, price, orgWithKey, grant, admission, call, nusd, until } from './lib/limits.mjs';

// ---- helpers ------------------------------------------------------------------------------------

const mocks = [];

async function startMock(args = []) {
  const child = spawn(BINARY, ['mock-upstream', '--port', '0', '--threads', '1', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((res) => child.on('exit', (code, signal) => res({ code, signal })));
  const url = await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`mock upstream not ready in 10 s:\n${log}`)), 10000);
    const check = () => {
      const m = log.match(/mock upstream listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); res(m[1]); }
    };
    child.stderr.on('data', check);
    exited.then(({ code, signal }) => { clearTimeout(timer); rej(new Error(`exited (${code ?? signal}):\n${log}`)); });
  });
  const mock = {
    url, child, exited,
    async fail(mode) {
      const r = await fetch(`${url}/mock/fail`, { method: 'PUT', body: mode });
      assert.equal(r.status, 200, await r.text());
    },
    kill() { child.kill('SIGKILL'); },
  };
  mocks.push(mock);
  return mock;
}

// A minimal Anthropic-style upstream that records the x-api-key of every request.
async function startKeyUpstream(keysSeen) {
  const srv = http.createServer((req, res) => {
    keysSeen.push(req.headers['x-api-key']);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'msg_k', type: 'message', role: 'assistant', model: 'k', stop_reason: 'end_turn',
        stop_sequence: null, content: [{ type: 'text', text: 'ok' }], usage: { input_tokens: 3, output_tokens: 1 } }));
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${srv.address().port}`, close: () => new Promise((r) => srv.close(r)) };
}


async function metrics(server) {
  const r = await fetch(`${server.consoleUrl}/metrics`);
  assert.equal(r.status, 200);
  return r.text();
}

// A per-deployment series' value: metric(text, 'gatehouse_deployment_requests_total', 'w211', 0).
function metric(text, name, model, dep, extra = '') {
  const re = new RegExp(`^${name}\\{model="${model}",deployment="${dep}"${extra}\\} (\\d+)$`, 'm');
  const m = text.match(re);
  return m ? Number(m[1]) : undefined;
}
const health = (text, model, dep) => ['up', 'ejected', 'trial'].find((s) => metric(text, 'gatehouse_deployment_health', model, dep, `,state="${s}"`) === 1);

async function usageEvent(server, requestId, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const row = sqlObject(server, ['model', 'requested_model', 'deployment', 'input_tokens', 'output_tokens',
      'cost_nusd', 'status', 'stream'], `FROM usage_events WHERE request_id = ${sqlQuote(requestId)}`);
    if (row) return row;
    if (Date.now() > deadline) throw new Error(`no usage event for ${requestId}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// Nano-USD for `tokens` at `usdPerMillion`, rounded half up as the meter does.
const cost = (tokens, usdPerMillion) => Math.floor((tokens * usdPerMillion * 1e9 + 500000) / 1e6);

const ask = (model, extra = {}) => ({ model, max_tokens: 8, messages: [{ role: 'user', content: 'Hi' }], ...extra });

// `total` requests from `concurrency` workers; returns their statuses.
async function load(client, model, total, concurrency, onDone = () => {}) {
  const statuses = [];
  let next = 0;
  const worker = async () => {
    while (next < total) {
      next++;
      try {
        const r = await client.messages.create(ask(model)).withResponse();
        statuses.push(r.response.status);
      } catch (e) {
        statuses.push(e.status ?? String(e));
      }
      await onDone(statuses.length);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return statuses;
}

// ---- the world ----------------------------------------------------------------------------------

let server, key, A, B, C, K, F, S, M1, M2, H, R, client;
const keysAt = [[], []];
const keyUpstreams = [];
const PRICE = { price_input: 3, price_output: 15, model_class: 'shared' };

before(async () => {
  [A, B, C, K, F, S, M1, M2, H, R] = await Promise.all([
    startMock(), startMock(), startMock(), startMock(['--latency-ms', '20']), startMock(),
    startMock(['--latency-ms', '50']),
    // Paced, so that the first events reach the client before the failure does.
    startMock(['--fail', 'close-mid-stream', '--tokens-per-second', '50']),
    startMock(['--fail', 'close-mid-stream', '--tokens-per-second', '50']),
    startMock(),
    startMock(['--fail', '429']),
  ]);
  const dead1 = deadPort();
  const dead2 = deadPort();
  keyUpstreams.push(await startKeyUpstream(keysAt[0]), await startKeyUpstream(keysAt[1]));
  server = await startServer({
    env: { GH_TEST_KEY_ONE: 'sk-one-0123456789', GH_TEST_KEY_TWO: 'sk-two-0123456789' },
    config: {
      'model w211': { upstream_url: `${A.url} weight=2, ${B.url}, ${C.url}`, ...PRICE },
      'model slow3': { upstream_url: `${A.url}, ${B.url}, ${S.url}`, ...PRICE },
      'model trio': { upstream_url: `${A.url}, ${B.url}, ${K.url}`, ...PRICE },
      'model flaky': { upstream_url: `${A.url},${B.url},${F.url}`, eject_ms: 200, ...PRICE },
      // Ejected for 5 minutes: no trial request can come within the test.
      'model down': { upstream_url: `http://127.0.0.1:${dead1}, http://127.0.0.1:${dead2}`, fallbacks: 'backup', eject_ms: 300000, ...PRICE },
      'model backup': { upstream_url: A.url, model_class: 'shared', price_input: 7, price_output: 21 },
      'model broken': { upstream_url: `${M1.url}, ${M2.url}`, ...PRICE },
      'model single': { upstream_url: K.url, ...PRICE },
      'model keyed': { upstream_url: `${keyUpstreams[0].url}, ${keyUpstreams[1].url}`, api_key_env: 'GH_TEST_KEY_ONE, GH_TEST_KEY_TWO', ...PRICE },
      'model limited': { upstream_url: `${R.url}, ${A.url}`, ...PRICE },
      'model limited-alone': { upstream_url: R.url, ...PRICE },
      // Active checks every 100 ms; an ejection would last 5 minutes without them.
      'model checked': { upstream_url: `${A.url}, ${H.url}`, health_path: '/healthz', health_interval_ms: 100, eject_ms: 300000, ...PRICE },
    },
  });
  const admin = new Client(server.consoleUrl);
  await admin.signUpWithOrg(server, uniq('deploy'), 'Deploy');
  const r = await admin.post('/v1/organizations/api_keys', { name: 'deploy key' });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  key = r.body.key;
  client = new Anthropic({ apiKey: key, baseURL: server.apiUrl, maxRetries: 0 });
});

after(async () => {
  await server?.stop();
  for (const u of keyUpstreams) await u.close();
  for (const m of mocks) {
    if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGTERM');
    await m.exited;
  }
});

describe('several deployments per model', () => {
  test('weights 2:1:1: shares within 5% of the weights over 3,000 requests, and usage names the deployment', async () => {
    // One request at a time: nothing is outstanding when the next is placed, so every
    // comparison is a tie and the weighted round robin decides alone.
    const statuses = await load(client, 'w211', 3000, 1);
    assert.deepEqual([...new Set(statuses)], [200]);
    const text = await metrics(server);
    const counts = [0, 1, 2].map((d) => metric(text, 'gatehouse_deployment_requests_total', 'w211', d));
    assert.equal(counts[0] + counts[1] + counts[2], 3000);
    const want = [1500, 750, 750];
    counts.forEach((n, i) => assert.ok(Math.abs(n - want[i]) <= want[i] * 0.05, `deployment ${i}: ${n} of 3000, want ${want[i]} ± 5% (${counts})`));
    // The usage events record which deployment served each request (once the writer has
    // committed all of them).
    const deadline = Date.now() + 20000;
    while (Number(sql(server, `SELECT count(*) FROM usage_events WHERE model = 'w211';`).trim()) < 3000) {
      assert.ok(Date.now() < deadline, 'the 3,000 usage events were not committed within 20 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    const rows = sql(server, `SELECT deployment, count(*) FROM usage_events WHERE model = 'w211' GROUP BY deployment ORDER BY deployment;`).trim();
    const byUrl = Object.fromEntries(rows.split('\n').map((l) => l.split('|')).map(([u, n]) => [u, Number(n)]));
    assert.deepEqual(byUrl, { [A.url]: counts[0], [B.url]: counts[1], [C.url]: counts[2] });
    console.log(`w211 shares: ${counts.join(' / ')}`);
  });

  test('a deployment with 50 ms more latency gets less traffic than each fast one', async () => {
    const statuses = await load(client, 'slow3', 900, 8);
    assert.deepEqual([...new Set(statuses)], [200]);
    const text = await metrics(server);
    const [a, b, s] = [0, 1, 2].map((d) => metric(text, 'gatehouse_deployment_requests_total', 'slow3', d));
    assert.equal(a + b + s, 900);
    assert.ok(s < a && s < b, `slow ${s} vs fast ${a}, ${b}`);
    console.log(`slow3 shares: fast ${a} / fast ${b} / slow ${s}`);
  });

  test('a deployment killed under load: no client sees an error', async () => {
    let killed = false;
    const statuses = await load(client, 'trio', 600, 8, (done) => {
      if (!killed && done >= 150) { killed = true; K.kill(); }
    });
    assert.ok(killed);
    assert.equal(statuses.length, 600);
    assert.deepEqual([...new Set(statuses)], [200], `statuses: ${JSON.stringify(statuses.filter((s) => s !== 200).slice(0, 5))}`);
    const text = await metrics(server);
    const retries = [0, 1, 2].reduce((n, d) => n + metric(text, 'gatehouse_deployment_retries_total', 'trio', d), 0);
    assert.ok(retries >= 1, 'failed attempts on the dead deployment were retried elsewhere');
    assert.ok(metric(text, 'gatehouse_deployment_ejections_total', 'trio', 2) >= 1, 'the dead deployment was ejected');
    // Reset mid-answer or refused, depending on when each attempt met the kill.
    const errors = ['connect', 'reset', 'timeout'].reduce((n, k) => n + metric(text, 'gatehouse_deployment_errors_total', 'trio', 2, `,kind="${k}"`), 0);
    assert.ok(errors >= 3, `the dead deployment's failures are counted (${errors})`);
    // A model with one deployment keeps today's behaviour: its dead upstream is a 502.
    const single = await client.messages.create(ask('single')).catch((e) => e);
    assert.equal(single.status, 502);
  });

  test('a deployment answering 529 is ejected, gets no traffic, and is re-admitted once healthy', async () => {
    await F.fail('529');
    let text;
    for (let i = 0; i < 300; i++) {
      const r = await client.messages.create(ask('flaky')).withResponse();
      assert.equal(r.response.status, 200, 'the 529 is retried on another deployment');
      text = await metrics(server);
      if (metric(text, 'gatehouse_deployment_ejections_total', 'flaky', 2) >= 1) break;
    }
    assert.ok(metric(text, 'gatehouse_deployment_ejections_total', 'flaky', 2) >= 1, 'ejected');
    assert.ok(metric(text, 'gatehouse_deployment_errors_total', 'flaky', 2, ',kind="overloaded"') >= 3);
    assert.notEqual(health(text, 'flaky', 2), 'up');
    // Healthy again: a trial request after the backoff brings it back.
    await F.fail('none');
    const deadline = Date.now() + 60000;
    while (health(text, 'flaky', 2) !== 'up') {
      assert.ok(Date.now() < deadline, 'not re-admitted within a minute');
      const r = await client.messages.create(ask('flaky')).withResponse();
      assert.equal(r.response.status, 200);
      text = await metrics(server);
    }
    const before = metric(text, 'gatehouse_deployment_requests_total', 'flaky', 2);
    const statuses = await load(client, 'flaky', 60, 1);
    assert.deepEqual([...new Set(statuses)], [200]);
    text = await metrics(server);
    assert.ok(metric(text, 'gatehouse_deployment_requests_total', 'flaky', 2) - before >= 15, 'it gets its share again');
  });

  test('each deployment gets its own key from api_key_env\'s list', async () => {
    const statuses = await load(client, 'keyed', 10, 1);
    assert.deepEqual([...new Set(statuses)], [200]);
    assert.ok(keysAt[0].length >= 1 && keysAt[1].length >= 1, `both deployments served (${keysAt[0].length}, ${keysAt[1].length})`);
    assert.deepEqual([...new Set(keysAt[0])], ['sk-one-0123456789']);
    assert.deepEqual([...new Set(keysAt[1])], ['sk-two-0123456789']);
    assert.ok(!server.log.includes('sk-one-0123456789') && !server.log.includes('sk-two-0123456789'), 'keys are never logged');
  });

  test('a 429 from one deployment is retried on another, and does not eject it', async () => {
    const statuses = await load(client, 'limited', 30, 1);
    assert.deepEqual([...new Set(statuses)], [200]);
    const text = await metrics(server);
    const limited = metric(text, 'gatehouse_deployment_errors_total', 'limited', 0, ',kind="rate_limited"');
    assert.ok(limited >= 10, `the rate-limited deployment got its share of first attempts (${limited})`);
    assert.equal(metric(text, 'gatehouse_deployment_retries_total', 'limited', 1), limited, 'each was retried on the other');
    assert.equal(metric(text, 'gatehouse_deployment_ejections_total', 'limited', 0), 0, 'busy is not broken');
    assert.equal(health(text, 'limited', 0), 'up');
    // A stream too: the retry happens before the stream's head, so the client sees one clean stream.
    const before = metric(text, 'gatehouse_deployment_errors_total', 'limited', 0, ',kind="rate_limited"');
    let now = before;
    for (let i = 0; i < 20 && now === before; i++) {
      const stream = await client.messages.create(ask('limited', { stream: true }));
      const kinds = [];
      for await (const ev of stream) kinds.push(ev.type);
      assert.equal(kinds[0], 'message_start');
      assert.equal(kinds.at(-1), 'message_stop');
      now = metric(await metrics(server), 'gatehouse_deployment_errors_total', 'limited', 0, ',kind="rate_limited"');
    }
    assert.ok(now > before, 'a streaming request met the 429 and was retried');
    // With nowhere else to go, the upstream's 429 reaches the client as it is.
    const alone = await client.messages.create(ask('limited-alone')).catch((e) => e);
    assert.equal(alone.status, 429);
    assert.equal(alone.error.error.type, 'rate_limit_error');
  });

  test('every deployment down: the fallback serves, named in the response, billed at its prices', async () => {
    const { data: msg, response } = await client.messages.create(ask('down')).withResponse();
    assert.equal(response.status, 200);
    assert.equal(msg.model, 'backup', 'the response names the model that served');
    const ev = await usageEvent(server, response.headers.get('request-id'));
    assert.equal(ev.model, 'backup');
    assert.equal(ev.requested_model, 'down');
    assert.equal(ev.deployment, A.url);
    assert.equal(ev.input_tokens, msg.usage.input_tokens);
    assert.equal(ev.output_tokens, msg.usage.output_tokens);
    assert.equal(ev.cost_nusd, cost(msg.usage.input_tokens, 7) + cost(msg.usage.output_tokens, 21));
    // Both dead deployments were tried first (retries = 2 allows both), then the fallback.
    let text = await metrics(server);
    assert.equal(metric(text, 'gatehouse_deployment_errors_total', 'down', 0, ',kind="connect"') + metric(text, 'gatehouse_deployment_errors_total', 'down', 1, ',kind="connect"'), 2);
    // Once both are ejected, requests go straight to the fallback.
    for (let i = 0; i < 3; i++) assert.equal((await client.messages.create(ask('down'))).model, 'backup');
    text = await metrics(server);
    assert.equal(health(text, 'down', 0), 'ejected');
    assert.equal(health(text, 'down', 1), 'ejected');
    const attempts = metric(text, 'gatehouse_deployment_requests_total', 'down', 0) + metric(text, 'gatehouse_deployment_requests_total', 'down', 1);
    const more = await client.messages.create(ask('down'));
    assert.equal(more.model, 'backup');
    text = await metrics(server);
    assert.equal(metric(text, 'gatehouse_deployment_requests_total', 'down', 0) + metric(text, 'gatehouse_deployment_requests_total', 'down', 1), attempts, 'no attempt on ejected deployments');
  });

  test('active health checks eject a failing deployment without any request, and bring it back', async () => {
    await H.fail('500');
    const deadline = Date.now() + 30000;
    let text = await metrics(server);
    while (health(text, 'checked', 1) !== 'ejected') {
      assert.ok(Date.now() < deadline, 'not ejected by the health checks within 30 s');
      await new Promise((r) => setTimeout(r, 50)); // polling the state, not betting on it
      text = await metrics(server);
    }
    assert.equal(metric(text, 'gatehouse_deployment_requests_total', 'checked', 1), 0, 'no request was sent to it');
    const before = metric(text, 'gatehouse_deployment_requests_total', 'checked', 0);
    const statuses = await load(client, 'checked', 20, 1);
    assert.deepEqual([...new Set(statuses)], [200]);
    text = await metrics(server);
    assert.equal(metric(text, 'gatehouse_deployment_requests_total', 'checked', 1), 0, 'an ejected deployment gets no traffic');
    assert.equal(metric(text, 'gatehouse_deployment_requests_total', 'checked', 0) - before, 20);
    // Healthy again: the next check re-admits it, long before its 5-minute ejection ends.
    await H.fail('none');
    while (health(text, 'checked', 1) !== 'up') {
      assert.ok(Date.now() < deadline + 30000, 'not re-admitted by the health checks');
      await new Promise((r) => setTimeout(r, 50));
      text = await metrics(server);
    }
    const again = await load(client, 'checked', 20, 1);
    assert.deepEqual([...new Set(again)], [200]);
    text = await metrics(server);
    const share = metric(text, 'gatehouse_deployment_requests_total', 'checked', 1);
    assert.ok(share >= 5 && share <= 15, `it gets its half again (${share} of 20)`);
  });

  test('a stream that fails mid-way is not retried, and is charged for what was relayed', async () => {
    const { status, raw } = await new Promise((resolve, reject) => {
      const req = http.request(`${server.apiUrl}/v1/messages`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': '2023-06-01' },
      }, (res) => {
        let raw = '';
        res.on('data', (d) => { raw += d; });
        res.on('end', () => resolve({ status: res.statusCode, raw, requestId: res.headers['request-id'] }));
      });
      req.on('error', reject);
      req.end(JSON.stringify(ask('broken', { stream: true, max_tokens: 200 })));
    }).then((r) => { r.requestId && (globalThis.brokenId = r.requestId); return r; });
    assert.equal(status, 200);
    assert.match(raw, /event: error/);
    assert.doesNotMatch(raw, /message_stop/);
    const text = await metrics(server);
    const attempts = metric(text, 'gatehouse_deployment_requests_total', 'broken', 0) + metric(text, 'gatehouse_deployment_requests_total', 'broken', 1);
    assert.equal(attempts, 1, 'one attempt: never retried after the first byte');
    assert.equal(metric(text, 'gatehouse_deployment_retries_total', 'broken', 0) + metric(text, 'gatehouse_deployment_retries_total', 'broken', 1), 0);
    const ev = await usageEvent(server, globalThis.brokenId);
    assert.equal(ev.stream, 1);
    // Charged what the relayed events reported (the input from message_start; nothing when
    // the failure overtook every event).
    const start = raw.match(/event: message_start\ndata: (.*)\n/);
    assert.equal(ev.input_tokens, start ? JSON.parse(start[1]).message.usage.input_tokens : 0);
    assert.equal(ev.cost_nusd, cost(ev.input_tokens, 3) + cost(ev.output_tokens, 15));
    assert.ok([M1.url, M2.url].includes(ev.deployment));
  });
});

describe('fallbacks under admission', () => {
  let lserver, org;
  before(async () => {
    const dead = deadPort();
    lserver = await startServer({
      config: {
        ...LIMITS_CONFIG,
        'model lost': { upstream_url: `http://127.0.0.1:${dead}`, model_class: 'small', price_input: 1, price_output: 5, fallbacks: 'dime, gatehouse-mock-small' },
        'model lost-dear': { upstream_url: `http://127.0.0.1:${dead}`, model_class: 'small', price_input: 1, price_output: 5, fallbacks: 'dime' },
      },
    });
    org = await orgWithKey(lserver, 'Fallbacks');
    await grant(lserver, org.admin, org.orgId, '1');
  });
  after(async () => { await lserver?.stop(); });

  test('a fallback whose worst case the balance cannot cover is skipped; the next one serves at its prices', async () => {
    const balance = async () => nusd((await admission(org.admin)).balance_usd);
    const before = await balance();
    // "dime" (a cent a token) would reserve more than the $1 balance for 200 output tokens.
    const r = await call(lserver, org.key, ask('lost', { max_tokens: 200 }));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.model, 'gatehouse-mock-small');
    const ev = await usageEvent(lserver, r.headers.get('request-id'));
    assert.deepEqual([ev.model, ev.requested_model, ev.deployment], ['gatehouse-mock-small', 'lost', null]);
    const want = price(ev.input_tokens, PRICES['gatehouse-mock-small'].in) + price(ev.output_tokens, PRICES['gatehouse-mock-small'].out);
    assert.equal(BigInt(ev.cost_nusd), want);
    await until(async () => before - (await balance()) === want, 'the balance to drop by the fallback\'s cost', 5000);
    // The usage report groups by the model that served.
    const day = new Date(); day.setUTCHours(0, 0, 0, 0);
    const buckets = await report(org.admin, USAGE, { starting_at: day.toISOString().replace('.000Z', 'Z'), bucket_width: '1d', group_by: ['model'] });
    const results = buckets.flatMap((b) => b.results);
    assert.deepEqual(results.map((x) => [x.model, x.uncached_input_tokens, x.output_tokens]),
      [['gatehouse-mock-small', ev.input_tokens, ev.output_tokens]]);
    assert.equal(nusd((await admission(org.admin)).reserved_usd), 0n, 'no reservation is left behind');
    // With only the unaffordable fallback, the client gets the upstream's failure, not charged.
    const lost = await call(lserver, org.key, ask('lost-dear', { max_tokens: 200 }));
    assert.equal(lost.status, 502, lost.text);
    assert.equal(await balance(), before - want);
    assert.equal(nusd((await admission(org.admin)).reserved_usd), 0n);
  });
});
