// Signs up a benchmark account through the real sign-in flow and prints a new API key (and,
// with --org, a space and the organization's id).
// Usage: node bench/make-key.mjs CONSOLE_URL DATA_DIR[,DATA_DIR...] [--org]
import { join } from 'node:path';
import { Client } from '../tests/e2e/lib/client.mjs';
import { readOutbox } from '../tests/e2e/lib/server.mjs';

const [consoleUrl, dataDirs] = process.argv.slice(2);
// DATA_DIR may be several, comma-separated: the nodes of a cluster, any of which may send.
const server = { outbox: () => dataDirs.split(',').flatMap((d) => readOutbox(join(d, 'outbox'))) };
const email = `bench.${Date.now()}@example.com`;
const c = new Client(consoleUrl);
const s = await c.signUpWithOrg(server, email, 'Benchmark');
const r = await c.post('/v1/organizations/api_keys', { name: 'bench' });
if (r.status !== 201) throw new Error(`creating the key: ${r.status} ${JSON.stringify(r.body)}`);
process.stdout.write(process.argv[4] === '--org' ? `${r.body.key} ${s.current_organization.id}` : r.body.key);
