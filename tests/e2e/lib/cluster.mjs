// A cluster for a test: one throwaway PostgreSQL (lib/postgres.mjs) with one database, and N
// `gatehouse serve` nodes on it, each with its own data directory (its usage journal and
// node_id file) and its own loopback ports. The cluster files run the same on both runs of
// the suite: a cluster is a PostgreSQL store whatever GATEHOUSE_TEST_STORE says.
//
//   const c = await startCluster({ nodes: 3, config: { limits: { enforce: true } } });
//   c.nodes[0].consoleUrl, c.nodes[1].apiUrl, c.nodes[2].nodeId   // servers of lib/server.mjs
//   c.sql('SELECT count(*) FROM usage_events')                     // psql output, '|' between columns
//   await new Client(c.nodes[0].consoleUrl).signIn(c, email)        // c.outbox(): all nodes' mail
//   const n = await c.startNode();                                 // one more node (appended to c.nodes)
//   await c.restartNode(1)                                         // a node again on its data directory
//   await c.stop();                                                // every node, then PostgreSQL
//
// `config` is merged over lib/server.mjs's base config for every node ([cluster] poll_ms and
// lease_ttl_ms included); `nodeConfig(i)` may add per-node sections. Nodes start at the same
// time (their migrations race under PostgreSQL's advisory lock, as a real rollout's would);
// each node's id is read back from its data directory.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { startPostgres } from './postgres.mjs';
import { startServer } from './server.mjs';

function merge(a, b) {
  const out = structuredClone(a ?? {});
  for (const [section, values] of Object.entries(b ?? {})) out[section] = { ...(out[section] ?? {}), ...values };
  return out;
}

// Runs `query` on `url` with psql: rows on lines, columns joined by '|' (as server.sql()).
export function clusterSql(url, query) {
  const r = spawnSync('psql', ['-X', '-q', '-At', '-F', '|', '-v', 'ON_ERROR_STOP=1', url, '-c', query], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`psql failed (${r.status ?? r.signal}) on ${query}:\n${r.stderr}`);
  return r.stdout;
}

export async function startCluster({ nodes = 3, config = {}, nodeConfig = () => ({}), env = {} } = {}) {
  const pg = await startPostgres();
  const storeUrl = pg.createDatabase('cluster');
  const dirs = [];
  const cluster = {
    pg,
    storeUrl,
    nodes: [],
    sql: (query) => clusterSql(storeUrl, query),
    // Every node's outbox (mail queued on one node may be sent by another), oldest first by
    // file name; so `client.signIn(cluster, email)` and lastLink(cluster, email) work.
    outbox: () => cluster.nodes.filter(Boolean).flatMap((n) => n.outbox()).sort((a, b) => a.file.localeCompare(b.file)),
    // Starts a node on `dataDir` (a new one by default) and appends it to `nodes` unless it
    // replaces node `index` (restartNode).
    async startNode({ dataDir, index, extraConfig, args } = {}) {
      const i = index ?? cluster.nodes.length;
      const dir = dataDir ?? mkdtempSync(join(tmpdir(), `gatehouse-node${i}-`));
      if (!dataDir) dirs.push(dir);
      const server = await startServer({
        dataDir: dir,
        storeUrl,
        config: merge(merge(config, nodeConfig(i)), extraConfig),
        env,
        args,
      });
      server.nodeId = readFileSync(join(dir, 'node_id'), 'utf8').trim();
      server.index = i;
      cluster.nodes[i] = server;
      return server;
    },
    // Stops node `i` (SIGTERM, or SIGKILL with { kill: true }) and starts it again on its data
    // directory: the same node id, its journal replayed.
    async restartNode(i, { kill = false } = {}) {
      const old = cluster.nodes[i];
      if (kill) {
        old.child.kill('SIGKILL');
        await old.waitExit();
      } else if (old.child.exitCode === null && old.child.signalCode === null) {
        await old.stop({ keepData: true });
      }
      return cluster.startNode({ dataDir: old.dataDir, index: i });
    },
    // Stops every node still running (a clean stop each, in parallel), then PostgreSQL, and
    // removes the data directories. Throws after cleaning up if a node did not stop cleanly.
    async stop() {
      const results = await Promise.allSettled(cluster.nodes.map((n) =>
        n && n.child.exitCode === null && n.child.signalCode === null ? n.stop({ keepData: true }) : null));
      await pg.stop();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
  };
  try {
    await Promise.all(Array.from({ length: nodes }, (_, i) => cluster.startNode({ index: i })));
  } catch (e) {
    await cluster.stop().catch(() => {});
    throw e;
  }
  return cluster;
}
