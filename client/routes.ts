/**
 * Paths and query strings of the HTTP API. Keys and values are encoded with
 * encodeURIComponent, which the server decodes back exactly (README "Keys"):
 * a `+` goes as %2B and a space as %20, never as URLSearchParams' `+`, which
 * the server would read as a plus sign.
 */
import { HitmeshInputError } from './errors.ts';
import type { CountOptions, HitOptions, HitsOptions, TopOptions } from './types.ts';

type QueryParam = readonly [name: string, value: string | number | undefined];

/** `?a=1&b=2` of the params that have a value; '' when none has. */
export function queryString(params: readonly QueryParam[]): string {
  const parts = params.filter((p): p is readonly [string, string | number] => p[1] !== undefined).map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(String(value))}`);
  return parts.length === 0 ? '' : `?${parts.join('&')}`;
}

/**
 * One path segment for a key. `.` and `..` cannot travel in a path (fetch
 * resolves them, even as %2E), and an empty key would name another route.
 */
export function keySegment(key: string, route: string): string {
  if (key === '') throw new HitmeshInputError(`${route}: the key must not be empty`);
  if (key === '.' || key === '..') throw new HitmeshInputError(`${route}: the key ${JSON.stringify(key)} cannot be sent in a path; use hits() and counts() for it`);
  return encodeURIComponent(key);
}

/** A server-side wait (`?timeout=`) in the API's duration syntax. */
function timeoutParam(timeoutMs: number | undefined): string | undefined {
  return timeoutMs === undefined ? undefined : `${timeoutMs}ms`;
}

function rangeParams(options: CountOptions): QueryParam[] {
  return [
    ['window', options.window],
    ['from', options.from],
    ['to', options.to],
    ['read', options.read],
    ['timeout', timeoutParam(options.timeoutMs)],
  ];
}

export function hitPath(key: string, options: HitOptions): string {
  return `/hit/${keySegment(key, 'hit')}${queryString([
    ['n', options.n],
    ['ack', options.ack],
    ['timeout', timeoutParam(options.timeoutMs)],
  ])}`;
}

export function hitsPath(options: HitsOptions): string {
  return `/hits${queryString([
    ['ack', options.ack],
    ['timeout', timeoutParam(options.timeoutMs)],
  ])}`;
}

export function countPath(key: string, options: CountOptions): string {
  return `/count/${keySegment(key, 'count')}${queryString(rangeParams(options))}`;
}

/** Always repeated `key=`: it holds any key, commas included, where `keys=a,b` would split them. */
export function countsPath(keys: readonly string[], options: CountOptions): string {
  if (keys.length === 0) throw new HitmeshInputError('counts: name at least one key');
  return `/counts${queryString([...keys.map((key): QueryParam => ['key', key]), ...rangeParams(options)])}`;
}

export function topPath(options: TopOptions): string {
  return `/top${queryString([['k', options.k], ['prefix', options.prefix], ...rangeParams(options)])}`;
}

export function forgetMemberPath(id: string): string {
  if (id === '' || id === '.' || id === '..') throw new HitmeshInputError(`forgetMember: ${JSON.stringify(id)} is not a node id`);
  return `/cluster/members/${encodeURIComponent(id)}`;
}
