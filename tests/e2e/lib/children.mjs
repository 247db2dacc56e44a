// Every process a test file starts goes through here, so that none outlives the file and none
// can make a test wait for ever.
//
// spawnChild() registers the child; when the test file's process ends for any reason node lets
// it see (a normal exit, a failed or timed-out test whose file the runner then terminates, or
// Ctrl-C), every child still running is killed with SIGKILL. waitExit() and stopChild() bound
// every wait for an exit: past the deadline the child is killed and the test fails with the
// end of the child's log.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

const live = new Set();

function killAll() {
  for (const child of live) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
  live.clear();
}

process.on('exit', killAll);
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(sig, () => {
    killAll();
    process.exit(128 + constants.signals[sig]);
  });
}

// Spawns `cmd` like child_process.spawn and returns {child, exited, log()}: `exited` resolves
// with {code, signal}; log() is everything the child wrote to stdout and stderr so far (when
// those are pipes).
export function spawnChild(cmd, args, options = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  live.add(child);
  let log = '';
  const onData = (d) => { log += d.toString(); };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise((res) => child.on('exit', (code, signal) => { live.delete(child); res({ code, signal }); }));
  // 'close' comes after 'exit', once the child's output pipes are drained.
  const closed = new Promise((res) => child.on('close', () => res()));
  return { child, exited, closed, log: () => log };
}

export const running = (child) => child.exitCode === null && child.signalCode === null;

// Waits up to `timeoutMs` for the child to exit on its own. Past that it is killed and the
// returned promise rejects with `what` and the end of the log.
// The exit is reported once what the child wrote is read to its end (the pipes can still hold
// output when the process is gone), or at the deadline when something else keeps them open.
export async function waitExit({ child, exited, closed, log }, { timeoutMs = 30000, what = 'the process' } = {}) {
  let timer;
  const late = new Promise((res) => { timer = setTimeout(() => res(null), timeoutMs); });
  const r = await Promise.race([exited, late]);
  if (r) {
    await Promise.race([closed ?? Promise.resolve(), late]);
    clearTimeout(timer);
    return r;
  }
  clearTimeout(timer);
  child.kill('SIGKILL');
  await exited;
  throw new Error(`${what} did not exit within ${timeoutMs} ms and was killed; the end of its log:\n${log().slice(-6000)}`);
}

// Sends SIGTERM and waits up to `graceMs` for the exit, then SIGKILL (and a rejection with the
// end of the log). Resolves with {code, signal}.
export async function stopChild(proc, { graceMs = 30000, what = 'the process' } = {}) {
  if (running(proc.child)) proc.child.kill('SIGTERM');
  return waitExit(proc, { timeoutMs: graceMs, what: `${what}, after SIGTERM,` });
}
