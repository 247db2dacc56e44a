// A throwaway PostgreSQL 15 for a test file: scripts/pg-test.sh `run` in a temporary
// directory, on a free loopback port, as an unprivileged user. The server process itself
// (not pg_ctl, which would daemonize) is the child that children.mjs tracks, so it never
// outlives the file; and since its standard input is a pipe from this process, the script's
// watcher kills it even when this process dies by SIGKILL.
//
//   const pg = await startPostgres();   // {url, pid, dir, createDatabase(name), psql(url, sql), stop()}
//   const url = pg.createDatabase('t1'); // a fresh, empty database: its URL
//   await pg.halt();                     // an outage: the server stops, its data stays
//   await pg.restart();                  // the same data directory, on the same port (same url)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnChild, stopChild, running } from './children.mjs';
import { ROOT } from './server.mjs';

const dirs = new Set();
process.on('exit', () => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function once(dir) {
  // ROOT is read here, not at load time: server.mjs and this module import each other.
  const proc = spawnChild(join(ROOT, 'scripts/pg-test.sh'), ['run', dir], { stdio: ['pipe', 'pipe', 'pipe'] });
  return new Promise((resolve) => {
    const timer = setTimeout(() => { cleanup(); resolve({ proc, ok: false, why: 'not ready in 60 s' }); }, 60000);
    const check = () => {
      const url = proc.log().match(/^(postgresql:\/\/\S+)$/m);
      if (url && /database system is ready to accept connections/.test(proc.log())) {
        cleanup();
        resolve({ proc, ok: true, url: url[1] });
      }
    };
    const onExit = () => { cleanup(); resolve({ proc, ok: false, why: 'exited' }); };
    const cleanup = () => {
      clearTimeout(timer);
      proc.child.stdout.off('data', check);
      proc.child.stderr.off('data', check);
      proc.child.off('exit', onExit);
    };
    proc.child.stdout.on('data', check);
    proc.child.stderr.on('data', check);
    proc.child.on('exit', onExit);
    check();
  });
}

// Runs `sql` on `url` with psql; returns trimmed, unaligned output. Throws on an error.
export function psql(url, sql) {
  const r = spawnSync('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', url, '-c', sql], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`psql ${sql}: ${r.stderr}`);
  return r.stdout.trim();
}

export async function startPostgres() {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pg-'));
  dirs.add(dir);
  let started;
  // A port taken meanwhile makes the server exit at once: try again on another.
  for (let attempt = 0; attempt < 5; attempt++) {
    started = await once(dir);
    if (started.ok) break;
    if (running(started.proc.child)) await stopChild(started.proc, { what: 'postgres' });
    try { unlinkSync(join(dir, 'port')); } catch { /* none yet */ }
  }
  if (!started.ok) throw new Error(`PostgreSQL did not start (${started.why}):\n${started.proc.log().slice(-4000)}`);
  let { proc } = started;
  const { url } = started;
  let n = 0;
  return {
    url,
    dir,
    get pid() { return proc.child.pid; },
    get running() { return running(proc.child); },
    log: () => proc.log(),
    psql,
    createDatabase(name = `t${++n}`) {
      psql(url, `CREATE DATABASE ${name}`);
      return url.replace(/\/[^/]*$/, `/${name}`);
    },
    // Stops the server and keeps its data directory, as an outage would: `mode` 'fast'
    // (SIGINT: open connections are cut, the server shuts down cleanly) or 'immediate'
    // (SIGQUIT: no shutdown checkpoint, crash recovery at the next start). Resolves once the
    // process is gone, so nothing listens on the port any more.
    async halt({ mode = 'fast' } = {}) {
      if (running(proc.child)) proc.child.kill(mode === 'immediate' ? 'SIGQUIT' : 'SIGINT');
      await stopChild(proc, { what: 'postgres' });
    },
    // Starts the server again on the same data directory and the same port (the url does not
    // change) after halt(). Throws when it does not come up (e.g. someone took the port).
    async restart() {
      if (running(proc.child)) throw new Error('PostgreSQL is running: halt() it first');
      const again = await once(dir);
      if (!again.ok) {
        if (running(again.proc.child)) await stopChild(again.proc, { what: 'postgres' });
        throw new Error(`PostgreSQL did not restart (${again.why}):\n${again.proc.log().slice(-4000)}`);
      }
      if (again.url !== url) throw new Error(`PostgreSQL restarted on ${again.url}, not ${url}`);
      proc = again.proc;
    },
    // A fast shutdown (SIGINT: connections are cut, nothing is waited for); the data goes.
    async stop() {
      if (running(proc.child)) proc.child.kill('SIGINT');
      await stopChild(proc, { what: 'postgres' });
      rmSync(dir, { recursive: true, force: true });
      dirs.delete(dir);
    },
  };
}
