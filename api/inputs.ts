import { keyProblem } from '../crdt/key.ts';
import { MAX_HIT_N } from '../node/config.ts';
import { parseDuration } from '../node/duration.ts';
import type { CountRange } from '../node/replica.ts';
import { badRequest } from './http-error.ts';

export function checkKey(key: string): string {
  const problem = keyProblem(key);
  if (problem !== undefined) throw badRequest(problem);
  return key;
}

export function parseN(text: string | undefined): number {
  if (text === undefined) return 1;
  const n = /^[1-9][0-9]{0,6}$/.test(text) ? Number(text) : NaN;
  if (!(n <= MAX_HIT_N)) throw badRequest(`n must be an integer in 1..${MAX_HIT_N}, got ${JSON.stringify(text)}`);
  return n;
}

export const DEFAULT_WINDOW = '60s';
const WINDOW_HELP = "window must be a duration of at least 1s with a unit (ms, s, m, h, d: 30s, 5m, 1h, 7d) or 'all'";
const EPOCH_MS = /^[0-9]{1,15}$/;

/** The range a count query asks for: ?window=W, or ?from=T1&to=T2 (epoch ms). */
export function parseCountRange(query: { window?: string; from?: string; to?: string }): { range: CountRange; window: string | null } {
  const { window, from, to } = query;
  if (from !== undefined || to !== undefined) {
    if (window !== undefined) throw badRequest('give either window or from/to, not both');
    if (from === undefined || to === undefined) throw badRequest('from and to go together: both epoch milliseconds');
    if (!EPOCH_MS.test(from) || !EPOCH_MS.test(to)) throw badRequest('from and to must be epoch milliseconds (non-negative integers)');
    const [f, t] = [Number(from), Number(to)];
    if (f > t) throw badRequest(`from must not be after to (from=${f}, to=${t})`);
    return { range: { kind: 'range', from: f, to: t }, window: null };
  }
  const text = window ?? DEFAULT_WINDOW;
  if (text === 'all') return { range: { kind: 'all' }, window: 'all' };
  const ms = parseDuration(text);
  if (ms === undefined || ms < 1_000) throw badRequest(`${WINDOW_HELP}; got ${JSON.stringify(text)}`);
  return { range: { kind: 'window', ms }, window: text };
}
