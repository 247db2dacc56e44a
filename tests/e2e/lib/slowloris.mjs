// A slowloris client for the console tests, run as its own process so that it can hold
// thousands of sockets under a raised descriptor limit (see slowloris.test.mjs).
// Usage: node slowloris.mjs PORT COUNT LOCAL_ADDRESS
// Opens COUNT connections from LOCAL_ADDRESS, sends the start of a request head on each, then
// one more header byte on each every second, forever. Prints "settled CONNECTED FAILED" once
// every connection attempt has connected or failed, then "open N" whenever the number of
// connections still open changes. Exits when its stdin closes.
import net from 'node:net';

const [port, count, localAddress] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
const open = new Set();
let connected = 0;
let failed = 0;
let reported = -1;
let reportQueued = false;

function report() {
  if (reportQueued) return;
  reportQueued = true;
  setImmediate(() => {
    reportQueued = false;
    if (connected + failed === count && open.size !== reported) {
      reported = open.size;
      process.stdout.write(`open ${open.size}\n`);
    }
  });
}

let pending = count;
function settle() {
  if (--pending === 0) process.stdout.write(`settled ${connected} ${failed}\n`);
  report();
}

for (let i = 0; i < count; i++) {
  const sock = net.connect({ port, host: '127.0.0.1', localAddress });
  let done = false;
  sock.on('connect', () => {
    connected++;
    open.add(sock);
    sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    done = true;
    settle();
  });
  sock.on('error', () => {});
  sock.on('close', () => {
    open.delete(sock);
    if (!done) {
      failed++;
      done = true;
      settle();
    } else {
      report();
    }
  });
}

const drip = setInterval(() => {
  for (const s of open) s.write('a');
}, 1000);

process.stdin.resume();
process.stdin.on('end', () => {
  clearInterval(drip);
  for (const s of open) s.destroy();
  process.exit(0);
});
