import { DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS } from '../../client/index.ts';
import { formatDuration } from '../../node/duration.ts';
import { DEFAULTS } from '../../node/config.ts';
import { UsageError } from './cli-errors.ts';
import type { FlagSpec, FlagValues, GlobalOptions } from './command-spec.ts';
import { durationFlag, urlFlag } from './flag-values.ts';

/** The node's own default address (node/config.ts), so a bare `hitmesh` talks to `npm run node`. */
export const DEFAULT_URL = `http://127.0.0.1:${DEFAULTS.port}`;

export const GLOBAL_FLAGS: readonly FlagSpec[] = [
  { name: 'url', value: 'URL', multiple: true, help: `a node to talk to; repeat for several [HITMESH_URL, comma list] (default: ${DEFAULT_URL})` },
  { name: 'json', help: 'machine output: one JSON document (watch and load: one JSON line per update, then the summary)' },
  { name: 'token', value: 'TEXT', help: 'API token, sent as Authorization: Bearer [HITMESH_API_TOKEN]' },
  { name: 'timeout', value: 'DUR', help: `how long one attempt waits for a node's answer, at most ${formatDuration(MAX_TIMEOUT_MS)} (default: ${formatDuration(DEFAULT_TIMEOUT_MS)})` },
  { name: 'help', short: 'h', help: 'print help and exit' },
];

export function globalOptions(values: FlagValues, env: NodeJS.ProcessEnv): GlobalOptions {
  const given = values.url;
  const fromFlags = Array.isArray(given) ? given.filter((v): v is string => typeof v === 'string') : typeof given === 'string' ? [given] : [];
  const rawUrls = fromFlags.length > 0 ? fromFlags.flatMap(splitList) : splitList(env.HITMESH_URL ?? '');
  const urls = rawUrls.length > 0 ? rawUrls.map(urlFlag) : [DEFAULT_URL];
  const tokenFlag = values.token;
  const token = typeof tokenFlag === 'string' ? tokenFlag : env.HITMESH_API_TOKEN === '' ? undefined : env.HITMESH_API_TOKEN;
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) throw new UsageError('--token must be printable ASCII without spaces');
  const timeout = values.timeout;
  return {
    urls: [...new Set(urls)],
    json: values.json === true,
    token,
    timeoutMs: typeof timeout === 'string' ? timeoutFlag(timeout) : undefined,
  };
}

function timeoutFlag(raw: string): number {
  const ms = durationFlag('--timeout', raw, 1);
  if (ms > MAX_TIMEOUT_MS) throw new UsageError(`--timeout must be at most ${formatDuration(MAX_TIMEOUT_MS)}, got ${JSON.stringify(raw)}`);
  return ms;
}

function splitList(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter((s) => s !== '');
}
