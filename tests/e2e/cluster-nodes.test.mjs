// Several `gatehouse serve` on one PostgreSQL are one installation (issue 14, point 1): three
// nodes started at once share the schema (their migrations race under the advisory lock), each
// gets an id of its own kept in its data directory, and each writes its usage events under
// that id, numbered from 1 by its own journal, so the three journals never collide. On SQLite
// a server is a single node and says so, and a second one on the same files is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster } from './lib/cluster.mjs';
import { spawnChild, waitExit } from './lib/children.mjs';
import { orgWithKey } from './lib/limits.mjs';
import { gatehouse, until } from './lib/billing.mjs';
import { BINARY, startServer } from './lib/server.mjs';

test('three nodes on one PostgreSQL: distinct node ids, usage keyed by node, ids kept across restarts', async () => {
  const c = await startCluster({ nodes: 3 });
  try {
    const ids = c.nodes.map((n) => n.nodeId);
    assert.equal(new Set(ids).size, 3, `distinct ids: ${ids}`);
    for (const id of ids) assert.match(id, /^node-[A-Za-z0-9]{12}$/);

    // An organization made on node 0, then every node restarted so that each loads its key
    // (this file is about the nodes sharing one store, not about changes reaching them: see
    // cluster-propagation.test.mjs).
    const o = await orgWithKey({ ...c.nodes[0], outbox: c.outbox }, 'Cluster');
    for (let i = 1; i < 3; i++) await c.restartNode(i);
    for (const n of c.nodes) {
      const client = new Anthropic({ apiKey: o.key, baseURL: n.apiUrl, maxRetries: 0 });
      for (let i = 0; i < 2; i++) {
        const m = await client.messages.create({ model: 'gatehouse-mock-small', max_tokens: 8,
          messages: [{ role: 'user', content: `hello ${n.index}.${i}` }] });
        assert.equal(m.type, 'message');
      }
    }
    // Each node's two events, under its id, numbered 1 and 2 by its own journal.
    await until(() => c.sql('SELECT count(*) FROM usage_events').trim() === '6', 'six usage events');
    const rows = c.sql('SELECT node_id, journal_seq FROM usage_events ORDER BY node_id, journal_seq').trim().split('\n');
    assert.deepEqual(rows, [...ids].sort().flatMap((id) => [`${id}|1`, `${id}|2`]));

    // A restarted node keeps its id (the file) and continues its own sequence.
    const again = await c.restartNode(1);
    assert.equal(again.nodeId, ids[1]);
    const client = new Anthropic({ apiKey: o.key, baseURL: again.apiUrl, maxRetries: 0 });
    await client.messages.create({ model: 'gatehouse-mock-small', max_tokens: 8, messages: [{ role: 'user', content: 'again' }] });
    await until(() => c.sql(`SELECT max(journal_seq) FROM usage_events WHERE node_id = '${ids[1]}'`).trim() === '3',
      'the restarted node to continue at seq 3');
    assert.equal(c.sql('SELECT count(*) FROM usage_events').trim(), '7');
  } finally {
    await c.stop();
  }
});

test('a SQLite store is a single node: a second serve on its data directory or its database is refused; the CLI still works', async () => {
  const server = await startServer({ store: 'sqlite' });
  const other = mkdtempSync(join(tmpdir(), 'gatehouse-second-'));
  try {
    assert.match(server.log, /cluster: node local is a single node \(SQLite store; several nodes need PostgreSQL/);
    const serve = async (args) => {
      const p = spawnChild(BINARY, ['serve', '--listen', '127.0.0.1:0', '--api-listen', '127.0.0.1:0', ...args]);
      const r = await waitExit(p, { timeoutMs: 30000, what: 'the second gatehouse serve' });
      return { code: r.code, log: p.log() };
    };
    // The same data directory (its journal, its database).
    let r = await serve(['--config', join(server.dataDir, 'gatehouse.ini'), '--data-dir', server.dataDir]);
    assert.equal(r.code, 1, r.log);
    assert.match(r.log, /another gatehouse serve is running on the data directory .* every node needs its own data_dir/);
    // Another data directory on the same SQLite file.
    r = await serve(['--data-dir', other, '--store', `sqlite:${join(server.dataDir, 'gatehouse.db')}`]);
    assert.equal(r.code, 1, r.log);
    assert.match(r.log, /another gatehouse serve is using the SQLite database .*gatehouse\.db \(it holds .*gatehouse\.db\.lock\)\. A SQLite store serves one node; to run several nodes, use a PostgreSQL store/);
    // The command-line tools take no lock.
    const check = gatehouse(server, 'ledger', 'check');
    assert.equal(check.status, 0, check.stderr);
    // The running server still serves.
    assert.equal((await fetch(`${server.consoleUrl}/healthz`)).status, 200);
  } finally {
    rmSync(other, { recursive: true, force: true });
    await server.stop({ keepData: true });
  }
  // Once it stopped, a server starts on the same data directory again.
  const again = await startServer({ store: 'sqlite', dataDir: server.dataDir });
  await again.stop();
  rmSync(server.dataDir, { recursive: true, force: true });
});
