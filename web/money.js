// Money as the API sends it: USD amounts in decimal strings ("12.50", "-0.004213"). They are
// never turned into JavaScript numbers: arithmetic and comparisons go through BigInt nano-USD
// (10^-9 USD, the server's own unit) or cents, and display is built from the digits.

const NANO = 9;
const NANO_PER_CENT = 10_000_000n;

// A decimal string from the server ("12.5", "-3.004") as BigInt nano-USD, or null.
export function toNano(usd) {
  const m = /^\s*(-)?(\d+)(?:\.(\d+))?\s*$/.exec(String(usd ?? ''));
  if (!m) return null;
  let frac = (m[3] || '').slice(0, NANO);
  frac = frac.padEnd(NANO, '0');
  const v = BigInt(m[2]) * 10n ** BigInt(NANO) + BigInt(frac);
  return m[1] ? -v : v;
}

// Nano-USD rounded half away from zero to whole cents.
function nanoToCents(nano) {
  const neg = nano < 0n;
  const a = neg ? -nano : nano;
  const cents = (a + NANO_PER_CENT / 2n) / NANO_PER_CENT;
  return neg ? -cents : cents;
}

const group = (digits) => digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');

// Whole cents (BigInt) as "12.50" (no sign for zero).
export function centsToUsd(cents) {
  const neg = cents < 0n;
  const a = neg ? -cents : cents;
  return `${neg ? '-' : ''}${a / 100n}.${String(a % 100n).padStart(2, '0')}`;
}

// "$1,234.50" (or "-$3.20") for an amount in BigInt nano-USD, rounded half away from zero to
// the cent; an amount that rounds to nothing but is not zero is "<$0.01" (">-$0.01"), so a
// little spend never reads as none. The one rule for every page (Limits, Billing, Usage, Cost).
export function formatNusd(nano) {
  const cents = nanoToCents(nano);
  if (cents === 0n && nano !== 0n) return nano < 0n ? '>-$0.01' : '<$0.01';
  const neg = cents < 0n;
  const a = neg ? -cents : cents;
  return `${neg ? '-' : ''}$${group(String(a / 100n))}.${String(a % 100n).padStart(2, '0')}`;
}

// formatNusd for a server amount (a decimal string). '—' when missing.
export function formatUsd(usd) {
  const nano = toNano(usd);
  return nano === null ? '—' : formatNusd(nano);
}

// Sign of a server amount: -1, 0 or 1 (0 when missing).
export function signOf(usd) {
  const n = toNano(usd);
  if (n === null || n === 0n) return 0;
  return n < 0n ? -1 : 1;
}

// Compares two server amounts: -1, 0, 1 (missing counts as zero).
export function compareUsd(a, b) {
  const x = toNano(a) ?? 0n;
  const y = toNano(b) ?? 0n;
  return x < y ? -1 : x > y ? 1 : 0;
}

// `part` as a share of `whole`, 0..1 (for meters), from exact amounts.
export function ratio(part, whole) {
  const p = toNano(part);
  const w = toNano(whole);
  if (p === null || w === null || w <= 0n || p <= 0n) return 0;
  if (p >= w) return 1;
  return Number((p * 10000n) / w) / 10000;
}

// What a person typed in an amount field ("10", "$1,000.5", "25.00") as
// {usd: "1000.50", cents: BigInt} or {error}. Whole cents only; never negative.
export function parseAmountInput(text, { label = 'the amount' } = {}) {
  const raw = String(text ?? '').trim().replace(/^\$\s*/, '').replace(/,(?=\d{3}(\D|$))/g, '');
  if (raw === '') return { error: `Enter ${label}.` };
  const m = /^(\d{1,9})(?:\.(\d{0,2}))?$/.exec(raw) || /^()\.(\d{1,2})$/.exec(raw);
  if (!m) {
    if (/^-/.test(raw)) return { error: 'Enter an amount that is not negative.' };
    if (/^\d*\.\d{3,}$/.test(raw)) return { error: 'Use at most two decimals (whole cents).' };
    return { error: `Enter ${label} in US dollars, like 25 or 25.50.` };
  }
  const cents = BigInt(m[1] || '0') * 100n + BigInt((m[2] || '').padEnd(2, '0'));
  return { usd: centsToUsd(cents), cents };
}

// A server amount as whole cents (BigInt), rounded; null when missing.
export function usdToCents(usd) {
  const n = toNano(usd);
  return n === null ? null : nanoToCents(n);
}
