import { formatDuration, parseDuration } from '../../node/duration.ts';
import { UsageError } from './cli-errors.ts';

/** Validators for flag values; each throws a UsageError naming the flag. */

export function integerFlag(flag: string, raw: string, min: number, max: number, command?: string): number {
  const n = /^[0-9]{1,10}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min && n <= max)) throw new UsageError(`${flag} must be an integer in ${min}..${max}, got ${JSON.stringify(raw)}`, command);
  return n;
}

/** A positive rate, decimals allowed (0.5 = one hit every 2 s). */
export function rateFlag(flag: string, raw: string, max: number, command?: string): number {
  const n = /^[0-9]{1,9}(\.[0-9]{1,6})?$/.test(raw) ? Number(raw) : NaN;
  if (!(n > 0 && n <= max)) throw new UsageError(`${flag} must be a number above 0 and at most ${max}, got ${JSON.stringify(raw)}`, command);
  return n;
}

export function durationFlag(flag: string, raw: string, minMs: number, command?: string): number {
  const ms = parseDuration(raw);
  if (ms === undefined) throw new UsageError(`${flag} must be a duration like 500ms, 30s, 5m, 2h, 7d; got ${JSON.stringify(raw)}`, command);
  if (ms < minMs) throw new UsageError(`${flag} must be at least ${formatDuration(minMs)}, got ${JSON.stringify(raw)}`, command);
  return ms;
}

/** A window as the node takes it: a duration of at least 1 s, or `all`. Returned as text, the node's own spelling. */
export function windowFlag(raw: string, command?: string): string {
  if (raw === 'all') return raw;
  const ms = parseDuration(raw);
  if (ms === undefined || ms < 1_000) throw new UsageError(`--window must be a duration of at least 1s (30s, 5m, 1h, 7d) or all; got ${JSON.stringify(raw)}`, command);
  return raw;
}

/** A node's base URL, without a trailing slash. */
export function urlFlag(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--url must be an http:// or https:// URL, got ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--url must be an http:// or https:// URL, got ${JSON.stringify(raw)}`);
  return url.href.replace(/\/+$/, '');
}

/** A key as the node takes it: not empty, at most 256 bytes, no control characters (SPEC section 3). */
export function keyArgument(raw: string, command?: string): string {
  // eslint-disable-next-line no-control-regex
  if (raw === '' || Buffer.byteLength(raw) > 256 || /[\u0000-\u001f\u007f]/.test(raw)) {
    throw new UsageError(`KEY must be 1-256 bytes without control characters, got ${JSON.stringify(raw.slice(0, 80))}`, command);
  }
  return raw;
}
