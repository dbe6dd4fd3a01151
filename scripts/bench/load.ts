import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { cpuSeconds } from './processes.ts';

/** One load: requests to `prefix + random(0..keys-1) + suffix` (or `prefix + suffix` when keys is 0), optionally with a fixed JSON body. */
export interface LoadSpec {
  readonly url: string;
  readonly method: 'GET' | 'POST';
  readonly prefix: string;
  readonly keys: number;
  /** Draw the key Zipf (s = 1) over 0..keys-1, key r with probability ∝ 1/(r+1), instead of uniformly. */
  readonly zipf?: boolean;
  readonly suffix: string;
  readonly body?: string;
  readonly durationS: number;
  readonly connections: number;
}

export interface LoadResult {
  readonly tool: 'wrk' | 'autocannon';
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly non2xx: number;
  /** CPU the load generator itself used, in cores (1 = one core saturated). */
  readonly loadCpu: number;
}

export function hasWrk(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (error) {
    // wrk --version exits 1 after printing its version; only a missing binary is ENOENT.
    return (error as { code?: string }).code !== 'ENOENT';
  }
}

export async function runLoad(spec: LoadSpec, cpu: number): Promise<LoadResult> {
  return hasWrk() ? runWrk(spec, cpu) : runAutocannon(spec);
}

/** A load's figures and the server's CPU time per request meanwhile (µs, all its threads, from /proc). */
export type MeasuredLoad = LoadResult & { readonly serverUsPerRequest: number };

/** runLoad, also measuring the CPU time the server `pid` spent per request. */
export async function runMeasuredLoad(spec: LoadSpec, cpu: number, pid: number): Promise<MeasuredLoad> {
  const before = cpuSeconds(pid);
  const result = await runLoad(spec, cpu);
  const used = cpuSeconds(pid) - before;
  return { ...result, serverUsPerRequest: (used * 1e6) / Math.max(1, result.rps * spec.durationS) };
}

async function runWrk(spec: LoadSpec, cpu: number): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'hitmesh-wrk-'));
  const script = join(dir, 'load.lua');
  const headers = spec.body === undefined ? '{}' : '{["Content-Type"] = "application/json"}';
  writeFileSync(
    script,
    [
      `local body = ${spec.body === undefined ? 'nil' : luaString(spec.body)}`,
      `local headers = ${headers}`,
      ...(spec.zipf === true
        ? [
            `local n = ${spec.keys}`,
            'local cumulative, sum = {}, 0',
            'for r = 1, n do sum = sum + 1 / r; cumulative[r] = sum end',
            'local function pick()',
            '  local u, lo, hi = math.random() * sum, 1, n',
            '  while lo < hi do local mid = math.floor((lo + hi) / 2); if cumulative[mid] < u then lo = mid + 1 else hi = mid end end',
            '  return lo - 1',
            'end',
          ]
        : [`local function pick() return ${spec.keys > 0 ? `math.random(0, ${spec.keys - 1})` : '""'} end`]),
      'request = function()',
      `  return wrk.format("${spec.method}", ${luaString(spec.prefix)} .. pick() .. ${luaString(spec.suffix)}, headers, body)`,
      'end',
    ].join('\n'),
  );
  const child = spawn('taskset', ['-c', String(cpu), 'wrk', '-t1', `-c${spec.connections}`, `-d${spec.durationS}s`, '--latency', '-s', script, spec.url], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const pid = child.pid ?? 0;
  let cpuUsed = 0;
  const sampler = setInterval(() => {
    try {
      cpuUsed = cpuSeconds(pid);
    } catch {
      // exited
    }
  }, 200);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearInterval(sampler);
  rmSync(dir, { recursive: true, force: true });
  if (code !== 0) throw new Error(`wrk failed (${code}): ${out}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? '0') + Number(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)?.slice(1).reduce((a, b) => a + Number(b), 0) ?? 0);
  return { tool: 'wrk', rps, p50Ms: wrkLatency(out, '50'), p99Ms: wrkLatency(out, '99'), non2xx, loadCpu: cpuUsed / spec.durationS };
}

function wrkLatency(out: string, percentile: string): number {
  const match = new RegExp(`^\\s+${percentile}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(out);
  if (match === null) return NaN;
  const scale = { us: 0.001, ms: 1, s: 1000 }[match[2] as 'us' | 'ms' | 's'];
  return Number(match[1]) * scale;
}

function luaString(text: string): string {
  return `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')}"`;
}

async function runAutocannon(spec: LoadSpec): Promise<LoadResult> {
  const pick = spec.zipf === true ? zipfPicker(spec.keys) : () => Math.floor(Math.random() * spec.keys);
  const before = process.cpuUsage();
  const result = await autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: spec.durationS,
    requests: [
      {
        method: spec.method,
        ...(spec.body === undefined ? {} : { body: spec.body, headers: { 'content-type': 'application/json' } }),
        setupRequest: (req) => ({ ...req, path: `${spec.prefix}${spec.keys > 0 ? pick() : ''}${spec.suffix}` }),
      },
    ],
  });
  const used = process.cpuUsage(before);
  return {
    tool: 'autocannon',
    rps: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx + result.errors,
    loadCpu: (used.user + used.system) / 1e6 / spec.durationS,
  };
}

/** Zipf (s = 1) over 0..n-1 by inverting the cumulative sums. */
export function zipfPicker(n: number, random: () => number = Math.random): () => number {
  const cumulative = new Float64Array(n);
  let sum = 0;
  for (let r = 0; r < n; r++) cumulative[r] = sum += 1 / (r + 1);
  return () => {
    const u = random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cumulative[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}
