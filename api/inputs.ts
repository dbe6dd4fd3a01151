import { keyProblem } from '../crdt/key.ts';
import { tokenProblem } from '../crdt/key-tokens.ts';
import { MAX_HIT_N } from '../node/config.ts';
import { parseDuration } from '../node/duration.ts';
import type { CountRange } from '../node/replica.ts';
import { badRequest } from './http-error.ts';

export function checkKey(key: string): string {
  const problem = keyProblem(key);
  if (problem !== undefined) throw badRequest(problem);
  return key;
}

/**
 * The Idempotency-Key header, if any. Sent twice it is a 400: Node joins
 * repeated headers with ", ", and "a, a" would be a token of its own that no
 * retry sending "a" once matches.
 */
export function parseToken(header: string | string[] | undefined, rawHeaders: readonly string[]): string | undefined {
  if (header === undefined) return undefined;
  let times = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if ((rawHeaders[i] as string).toLowerCase() === 'idempotency-key') times++;
  if (times > 1 || Array.isArray(header)) throw badRequest('Idempotency-Key must be sent once');
  const problem = tokenProblem(header);
  if (problem !== undefined) throw badRequest(`Idempotency-Key: ${problem}`);
  return header;
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

/** Set on a parsed query that could not be read; an onRequest hook answers it with a 400. */
export const QUERY_PROBLEM = Symbol('query problem');
export type ParsedQuery = Record<string, string | string[]> & { [QUERY_PROBLEM]?: string };

/** The one parameter that may be given more than once (GET /counts?key=a&key=b); it is always a list. */
const REPEATABLE = 'key';

/**
 * The query string, decoded the way paths are (decodeURIComponent: `+` is a
 * plus sign, `%2B` too, `%2C` a comma). It must not throw: the router calls it
 * outside fastify's error handling, so a problem is recorded for a hook to answer.
 *
 * The result is a plain object literal: one made with Object.create(null)
 * starts in V8's dictionary mode, which made this parser cost about 1 µs a
 * request. Parameters are own properties only (Object.hasOwn), and one named
 * "__proto__" is defined as an own property, so no name reaches the prototype.
 */
export function parseQueryString(text: string): ParsedQuery {
  const query = {} as ParsedQuery;
  let from = 0;
  while (from < text.length) {
    let end = text.indexOf('&', from);
    if (end < 0) end = text.length;
    if (end > from) {
      const eq = text.indexOf('=', from);
      const split = eq >= 0 && eq < end;
      const name = decodeQueryPart(text.slice(from, split ? eq : end));
      const value = decodeQueryPart(split ? text.slice(eq + 1, end) : '');
      if (name === undefined || value === undefined) {
        query[QUERY_PROBLEM] = `the query string is not valid percent-encoded UTF-8: ${JSON.stringify(text.slice(from, end).slice(0, 100))}`;
        return query;
      }
      const seen = Object.hasOwn(query, name) ? query[name] : undefined;
      if (name === REPEATABLE) {
        if (Array.isArray(seen)) seen.push(value);
        else query[name] = [value];
      } else if (seen !== undefined) {
        query[QUERY_PROBLEM] = `query parameter ${JSON.stringify(name)} is given more than once`;
        return query;
      } else if (name === '__proto__') {
        Object.defineProperty(query, name, { value, enumerable: true, writable: true, configurable: true });
      } else {
        query[name] = value;
      }
    }
    from = end + 1;
  }
  return query;
}

function decodeQueryPart(text: string): string | undefined {
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined; // a stray %, or bytes that are not UTF-8
  }
}
