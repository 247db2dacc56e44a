// A response that reached the client in full is never left without its usage event, even when
// the server is killed with SIGKILL under load: every such response's request id is among the
// usage events after a restart (which replays the journal), and no event is counted twice.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { uniq, sql as runSql } from './lib/expect.mjs';

const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-kill-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

const CONFIG = { 'model fast': { style: 'mock', price_input: 3, price_output: 15 } };

// The trimmed output of `query` on the database of `server` (either backend).
const sql = (server, query) => runSql(server, query).trim();

test('SIGKILL under load loses no usage event of a delivered response', async () => {
  let server = await startServer({ dataDir, config: CONFIG });
  const admin = new Client(server.consoleUrl);
  await admin.signUpWithOrg(server, uniq('kill'), 'Acme');
  const key = (await admin.post('/v1/organizations/api_keys', { name: 'load' })).body.key;

  const delivered = new Set(); // request ids of responses received in full
  let sent = 0;
  let killed = false;
  const body = JSON.stringify({ model: 'fast', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });
  const worker = async () => {
    while (!killed) {
      sent++;
      try {
        const r = await fetch(`${server.apiUrl}/v1/messages`, {
          method: 'POST', body,
          headers: { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': '2023-06-01' },
        });
        const j = await r.json(); // the whole body arrived
        if (r.status === 200 && j.type === 'message') delivered.add(r.headers.get('request-id'));
      } catch { /* the kill cut this one off: not delivered */ }
    }
  };
  const workers = Array.from({ length: 16 }, worker);
  // Kill once a good number of responses have been delivered, while requests are in flight.
  const deadline = Date.now() + 30000;
  while (delivered.size < 400 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  server.child.kill('SIGKILL');
  killed = true;
  await server.waitExit();
  await Promise.all(workers);
  assert.ok(delivered.size >= 400, `only ${delivered.size} responses were delivered in 30 s`);

  // Restart on the same data: the journal is replayed into the database.
  server = await startServer({ dataDir, config: CONFIG });
  try {
    const ids = new Set(sql(server, "SELECT request_id FROM usage_events WHERE route = 'messages'").split('\n'));
    const missing = [...delivered].filter((id) => !ids.has(id));
    assert.deepEqual(missing, [], `${missing.length} delivered responses have no usage event`);
    const rows = Number(sql(server, 'SELECT count(*) FROM usage_events'));
    const distinct = Number(sql(server, 'SELECT count(DISTINCT request_id) FROM usage_events'));
    assert.equal(rows, distinct, 'no event counted twice');
    assert.ok(rows <= sent, `${rows} events for ${sent} requests sent`);
    // And the events are whole: tokens and cost as the mock reported them.
    assert.equal(Number(sql(server, "SELECT count(*) FROM usage_events WHERE output_tokens <= 0 OR cost_nusd <= 0")), 0);
  } finally {
    await server.stop();
  }
});
