import cliProgress from 'cli-progress';
import { CommandFailure, UsageError } from './cli-errors.ts';
import type { CommandSpec, FlagValue } from './command-spec.ts';
import { durationFlag, integerFlag, keyArgument, rateFlag } from './flag-values.ts';
import { runLoad, type HitResult, type LoadProgress, type LoadSummary } from './load-run.ts';
import { clientFor, describeFailure, outcomeOfFailure } from './node-client.ts';
import { listenForStop } from './stop-signal.ts';
import { columns, formatCount, printJson, printLines } from './text-output.ts';

const DEFAULT_KEYS = 100;
const DEFAULT_CONCURRENCY = 32;
const DEFAULT_PREFIX = 'load-';

function required(value: FlagValue, flag: string): string {
  if (typeof value !== 'string') throw new UsageError(`load needs --${flag}`, 'load');
  return value;
}

function summaryLines(summary: LoadSummary): string[] {
  const ms = (v: number | null): string => (v === null ? '-' : `${v} ms`);
  const lines = columns(
    [
      ['planned', formatCount(summary.planned)],
      ['sent', formatCount(summary.sent)],
      ['acked', formatCount(summary.acked)],
      ['failed', formatCount(summary.failed)],
      ['unknown', formatCount(summary.unknown)],
      ['rate', `${summary.achievedRate} acked hits/s over ${(summary.elapsedMs / 1_000).toFixed(1)} s${summary.stoppedEarly ? ' (stopped early)' : ''}`],
      ['latency', `p50 ${ms(summary.latency.p50Ms)}, p99 ${ms(summary.latency.p99Ms)}, max ${ms(summary.latency.maxMs)}`],
    ],
    [],
  );
  const causes = Object.entries(summary.causes).map(([cause, n]) => `  ${formatCount(n)} × ${cause}`);
  return causes.length === 0 ? lines : [...lines, 'causes:', ...causes];
}

/** `hitmesh load`: a load generator, R logical hits/s for D over N keys, then what became of them. */
export const loadCommand: CommandSpec = {
  name: 'load',
  summary: 'send R hits/s for D over N keys, then count acked, failed and unknown hits and latency',
  usage: 'load --rate R --duration D [--keys N] [--concurrency C] [--prefix P]',
  positionals: [],
  flags: [
    { name: 'rate', value: 'R', help: 'logical hits per second, over all keys (up to 100000)' },
    { name: 'duration', value: 'D', help: 'how long to send, at least 100ms (10s, 5m)' },
    { name: 'keys', value: 'N', help: `how many keys, hit in turn: P0 … P(N-1), 1..1000000 (default: ${DEFAULT_KEYS})` },
    { name: 'concurrency', value: 'C', help: `most hits in flight at once, 1..10000 (default: ${DEFAULT_CONCURRENCY})` },
    { name: 'prefix', value: 'P', help: `prefix of the key names (default: ${DEFAULT_PREFIX})` },
  ],
  notes: [
    'Each logical hit carries one Idempotency-Key that every retry and failover reuses, so it counts at most once.',
    'acked: a node answered 200. failed: known not counted (refused connection, an error answer).',
    'unknown: may or may not have counted (timed out, connection lost after sending).',
    'output: a progress bar on stderr, then the summary; with --json one line per second',
    '{"progress":{…}} and, at the end, {"summary":{"acked","failed","unknown","achievedRate","latency",…,"ackedByKey"}}.',
    'Ctrl-C (SIGINT) or SIGTERM stops sending early; the summary still follows. Exit status 1 if no hit was acked.',
  ],
  async run({ global, flags }) {
    const rate = rateFlag('--rate', required(flags.rate, 'rate'), 100_000, 'load');
    const durationMs = durationFlag('--duration', required(flags.duration, 'duration'), 100, 'load');
    const keyCount = typeof flags.keys === 'string' ? integerFlag('--keys', flags.keys, 1, 1_000_000, 'load') : DEFAULT_KEYS;
    const concurrency = typeof flags.concurrency === 'string' ? integerFlag('--concurrency', flags.concurrency, 1, 10_000, 'load') : DEFAULT_CONCURRENCY;
    const prefix = typeof flags.prefix === 'string' ? flags.prefix : DEFAULT_PREFIX;
    const keys = Array.from({ length: keyCount }, (_, i) => keyArgument(`${prefix}${i}`, 'load'));

    const client = clientFor(global);
    const sendHit = async (key: string): Promise<HitResult> => {
      try {
        await client.hit(key);
        return { outcome: 'acked' };
      } catch (error) {
        const cause = describeFailure(error);
        if (cause === undefined) throw error;
        const outcome = outcomeOfFailure(error);
        return { outcome: outcome === 'acked' ? 'unknown' : outcome, cause };
      }
    };

    const bar = global.json
      ? undefined
      : new cliProgress.SingleBar(
          { format: 'load |{bar}| {percentage}% {value}/{total} sent | acked {acked} failed {failed} unknown {unknown} | {eta_formatted} left', hideCursor: true, clearOnComplete: false },
          cliProgress.Presets.shades_classic,
        );
    const plannedTotal = Math.max(1, Math.round((rate * durationMs) / 1_000));
    bar?.start(plannedTotal, 0, { acked: 0, failed: 0, unknown: 0 });
    const onProgress = (p: LoadProgress): void => {
      if (global.json) printJson({ progress: p });
      else bar?.update(p.sent, { acked: p.acked, failed: p.failed, unknown: p.unknown });
    };
    const stop = listenForStop();
    let summary: LoadSummary;
    try {
      summary = await runLoad({ rate, durationMs, keys, concurrency }, sendHit, stop, onProgress);
    } finally {
      stop.dispose();
      bar?.stop();
    }
    if (global.json) printJson({ summary: { ...summary, rate, durationMs, keys: keyCount, prefix, concurrency } });
    else printLines(summaryLines(summary));
    if (summary.acked === 0 && summary.sent > 0) throw new CommandFailure(`no hit was acked; ${Object.keys(summary.causes)[0] ?? 'no cause recorded'}`);
    return 0;
  },
};
