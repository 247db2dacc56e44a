// Runs the fake Stripe (fake-stripe.mjs) as a child process for tests written in another
// language (tests/unit/test_pay_stripe.c).
//
//   node tests/e2e/lib/fake-stripe-cli.mjs [--secret-key K] [--webhook-secret S]
//        [--webhook-url U] [--publishable-key P] [--echo-key-in-errors] [--no-auto-events]
//
// Listens on 127.0.0.1 on a free port and prints "READY <port>" on stdout. Then reads one JSON
// command per line on stdin and answers each with one JSON line on stdout:
//   {"cmd":"failNext","n":1,"status":500}             also delayMs, hang, match (a prefix
//                                                      of "METHOD /path")  -> {"ok":true}
//   {"cmd":"stats"}   -> {"ok":true,"customers":N,"setupIntents":N,"paymentMethods":N,
//                         "paymentIntents":[{id,status,amount,customer,payment_method,metadata}],
//                         "requests":[{method,path,idempotencyKey}]}
//   {"cmd":"completePending","id":"pi_…","succeed":true}   -> {"ok":true,"status":<webhook>}
// A failed command answers {"ok":false,"error":"…"}. At the end of stdin the fake stops and
// the process exits 0, so a parent that dies takes the fake with it.
import { createInterface } from 'node:readline';
import { startFakeStripe } from './fake-stripe.mjs';

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

const fake = await startFakeStripe({
  secretKey: opt('--secret-key'),
  webhookSecret: opt('--webhook-secret'),
  webhookUrl: opt('--webhook-url'),
  publishableKey: opt('--publishable-key'),
  echoKeyInErrors: args.includes('--echo-key-in-errors'),
  autoEvents: !args.includes('--no-auto-events'),
});

const reply = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

async function run(cmd) {
  switch (cmd.cmd) {
    case 'failNext':
      fake.failNext(cmd.n, { status: cmd.status, delayMs: cmd.delayMs, hang: cmd.hang, match: cmd.match });
      return {};
    case 'stats':
      return {
        customers: fake.customers.size,
        setupIntents: fake.setupIntents.size,
        paymentMethods: fake.paymentMethods.size,
        paymentIntents: [...fake.paymentIntents.values()].map((p) => ({ id: p.id, status: p.status,
          amount: p.amount, customer: p.customer, payment_method: p.payment_method, metadata: p.metadata })),
        requests: fake.requests.map((r) => ({ method: r.method, path: r.path,
          idempotencyKey: r.headers['idempotency-key'] ?? null })),
      };
    case 'completePending':
      return { status: await fake.completePending(cmd.id, { succeed: cmd.succeed ?? true }) };
    default:
      throw new Error(`unknown command ${cmd.cmd}`);
  }
}

// Commands run one at a time, in order, so answers come back in the order asked.
let queue = Promise.resolve();
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (!line.trim()) return;
  queue = queue.then(async () => {
    try {
      reply({ ok: true, ...(await run(JSON.parse(line))) });
    } catch (e) {
      reply({ ok: false, error: String(e?.message ?? e) });
    }
  });
});
lines.on('close', () => {
  queue.then(() => fake.stop()).then(() => process.exit(0));
});

process.stdout.write(`READY ${fake.port}\n`);
