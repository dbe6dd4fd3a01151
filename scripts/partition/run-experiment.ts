/**
 * Runs one experiment end to end: a proxied local cluster, steady load on
 * every node, the experiment's faults after a warm-up, the heal, the time to
 * converge, and the guarantee check of every node's counts against every
 * recorded hit. By default the load stops at the heal, so "converged" has one
 * meaning: every node answers the same count for every key. With
 * `continuous` it goes on through the heal and convergence is judged on
 * closed time ranges (continuous.ts).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mulberry32 } from '../../gossip/random.ts';
import { checkedRange, closedHorizon } from './closed-ranges.ts';
import { continuousHeld, finishContinuous, type ContinuousOutcome } from './continuous.ts';
import { readCounts, sumCounts } from './count-reader.ts';
import { FRESH_DELAY_MS, type Experiment, type FaultContext, type SpanHandle } from './experiments.ts';
import { checkedScopes, finalCheck } from './final-check.ts';
import { HitLedger } from './hit-ledger.ts';
import { HitLoad } from './hit-load.ts';
import { ProxiedCluster } from './proxied-cluster.ts';
import { awaitAgreement, type RangeProbe } from './range-convergence.ts';
import { waitReplicated } from './replication-wait.ts';
import type { ExperimentReport, ExperimentSettings, FaultSpan, TimelineEvent } from './report.ts';
import { shuffled } from './seeded.ts';
import { sleep } from './timing.ts';
import { FreshProbes, freshHeld } from './fresh-probes.ts';
import { checkRetries, retryHeld, RetryLoad, settleRetries } from './retry-load.ts';

export interface RunOptions {
  /** One line about how it is going, about once a second. */
  readonly progress?: (line: string) => void;
  /** Output lines of the nodes (they run at --log-level warn). */
  readonly nodeLine?: (id: string, line: string) => void;
  /** Keep the nodes' data directories (their path is reported through `progress`). */
  readonly keepData?: boolean;
  /** Aborting stops the experiment at its next wait and cleans up; runExperiment then rejects. */
  readonly signal?: AbortSignal;
  /** Node.js flags for every node process, before its main script (e.g. ['--import', file] to preload a module). */
  readonly nodeArgs?: readonly string[];
}

const SAMPLE_EVERY_MS = 250;
/** The timeline goes on this long after convergence, so the chart shows the lines settled. */
const TAIL_MS = 1_000;
/** The `retry` experiment's logical hits per second, as a share of --rate (most are sent more than once). */
const RETRY_SHARE = 0.25;

export async function runExperiment(experiment: Experiment, settings: ExperimentSettings, options: RunOptions = {}): Promise<ExperimentReport> {
  const random = mulberry32(settings.seed);
  // The faults' own stream: the load draws from `random` as fast as the clock lets it, which must not change which faults a seed picks.
  const faultRandom = mulberry32(settings.seed ^ 0x9e3779b9);
  const ids = shuffled(
    Array.from({ length: settings.nodes }, (_, i) => `n${i + 1}`),
    random,
  );
  const byName = [...ids].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
  const keys = Array.from({ length: settings.keys }, (_, i) => `key-${String(i).padStart(3, '0')}`);
  // The `retry` experiment's idempotent hits go to keys of their own: the load's keys must add up to their ids.
  const retryKeys = keys.map((key) => key.replace(/^key-/, 'retry-'));
  const dataRoot = await mkdtemp(join(tmpdir(), `hitmesh-${experiment.name}-`));
  const cluster = await ProxiedCluster.start({
    ids: byName,
    dataRoot,
    onLine: (id, line) => options.nodeLine?.(id, line),
    ...(options.nodeArgs === undefined ? {} : { nodeArgs: options.nodeArgs }),
  }).catch(async (error: unknown) => {
    await rm(dataRoot, { recursive: true, force: true });
    throw error;
  });

  const ledger = new HitLedger(byName, { idSeed: settings.seed });
  // Every hit carries an identity key, so the check can tell which hit was lost or counted twice.
  const load = new HitLoad({ targets: cluster.nodes.map((n) => ({ id: n.id, url: n.url })), keys, rate: settings.rate, random, ledger, identities: true });
  const durationMs = settings.durationS * 1000;
  const faultAtMs = Math.max(1_000, Math.round(durationMs * 0.2));
  const faults: { label: string; fromMs: number; toMs: number | undefined; nodes: readonly string[] }[] = [];
  const events: TimelineEvent[] = [];
  const timeline = { atMs: [] as number[], acked: [] as number[], counts: Object.fromEntries(byName.map((id) => [id, [] as (number | null)[]])) };

  const t0 = performance.now();
  const epoch0 = Date.now();
  const now = (): number => Math.round(performance.now() - t0);
  const sleepUntil = async (ms: number): Promise<void> => {
    options.signal?.throwIfAborted();
    const wait = ms - (performance.now() - t0);
    if (wait > 0) await sleep(wait, options.signal);
  };
  const openSpan = (label: string, nodes: readonly string[]): SpanHandle => {
    const span = { label, fromMs: now(), toMs: undefined as number | undefined, nodes };
    faults.push(span);
    return { end: () => (span.toMs ??= now()) };
  };

  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const atMs = now();
      const answers = await Promise.all(cluster.nodes.map((n) => readCounts(n.url, keys, undefined, 1_000)));
      timeline.atMs.push(atMs);
      timeline.acked.push(ledger.acked);
      for (const [i, node] of cluster.nodes.entries()) {
        const answer = answers[i];
        timeline.counts[node.id]?.push(answer === undefined ? null : sumCounts(answer));
      }
      const wait = atMs + SAMPLE_EVERY_MS - now();
      if (wait > 0) await sleep(wait);
    }
  })();
  const ticker = setInterval(() => options.progress?.(progressLine(experiment.name, now(), durationMs, faults, ledger, timeline)), 1_000);

  const linkSpans: SpanHandle[] = [];
  let fresh: FreshProbes | undefined;
  let retries: RetryLoad | undefined;
  const ctx: FaultContext = {
    ids,
    random: faultRandom,
    healAtMs: durationMs,
    now,
    until: sleepUntil,
    cut: (a, b) => {
      cluster.cut(a, b, settings.cutMode);
      linkSpans.push(openSpan(`${settings.cutMode === 'cut' ? 'cut' : 'black-holed'} ${group(a)} | ${group(b)}`, [...a, ...b]));
    },
    flap: (a, b, schedule) => {
      cluster.flap(a, b, schedule);
      linkSpans.push(openSpan(`flapping ${group(a)} | ${group(b)}`, [...a, ...b]));
    },
    slow: (a, b, link) => {
      cluster.slow(a, b, link);
      linkSpans.push(openSpan(`slow ${group(a)} | ${group(b)}: +${link.delayMs} ms, ${link.bytesPerSecond} B/s`, [...a, ...b]));
    },
    healLinks: () => {
      cluster.healAll();
      for (const span of linkSpans.splice(0)) span.end();
    },
    span: openSpan,
    event: (label, node) => events.push({ atMs: now(), label, ...(node === undefined ? {} : { node }) }),
    kill: async (id) => {
      await cluster.node(id).kill();
    },
    wipe: (id) => cluster.wipe(id),
    restart: (id) => cluster.node(id).start(),
    pauseLoad: (id) => {
      load.pause(id);
      return load.idle(id);
    },
    resumeLoad: (id) => load.resume(id),
    waitReplicated: (id) => waitReplicated(cluster, id, 30_000),
    readAfterWrite: (pairing, writer, reader) => {
      fresh ??= new FreshProbes(FRESH_DELAY_MS);
      const node = (id: string): { id: string; url: string } => ({ id, url: cluster.node(id).url });
      return fresh.probe(pairing, node(writer), node(reader));
    },
    retryHits: (sides) => {
      const targets = cluster.nodes.map((n) => ({ id: n.id, url: n.url }));
      const runId = `retry-s${settings.seed}-${randomUUID().slice(0, 8)}`;
      retries ??= new RetryLoad({ targets, sides, keys: retryKeys, rate: settings.rate * RETRY_SHARE, random: mulberry32(settings.seed ^ 0x85ebca6b), runId });
      retries.start();
    },
  };

  let report: ExperimentReport;
  try {
    load.start();
    await sleepUntil(faultAtMs);
    await experiment.run(ctx);

    cluster.healAll();
    const healAtMs = now();
    for (const span of faults) span.toMs ??= healAtMs;
    const probe: RangeProbe = {
      nodes: cluster.nodes,
      keys,
      ledger,
      horizon: () => closedHorizon(load.oldestInFlightSentAt(), Date.now()),
      now,
      epoch0,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    };
    const limitMs = settings.convergeLimitS * 1000;
    retries?.heal();
    // The retry keys settle on their own clock: their last retries land after the heal, while the load's keys converge.
    const retryProbe = { ...probe, keys: retryKeys };
    const retrySettled = retries === undefined ? undefined : settleRetries(retries, retryProbe, healAtMs, healAtMs + limitMs);
    // Awaited below; this only keeps an abort meanwhile from being an unhandled rejection.
    retrySettled?.catch(() => undefined);
    let convergedMs: number | null;
    let loadEndMs: number;
    let continuous: ContinuousOutcome | undefined;
    if (settings.continuous) {
      continuous = await finishContinuous({ probe, faultAtMs, healAtMs, limitMs, stopLoad: () => load.stop(), until: sleepUntil });
      ({ convergedMs, loadEndMs } = continuous);
    } else {
      await load.stop();
      loadEndMs = now();
      // Converged: every node answers, and all answer the same for every key (nothing is being written any more).
      const agreedAt = await awaitAgreement(probe, [undefined], healAtMs + limitMs);
      convergedMs = agreedAt === null ? null : agreedAt - healAtMs;
    }
    const settled = await retrySettled;
    await sleepUntil(now() + TAIL_MS);
    sampling = false;
    await sampler;
    clearInterval(ticker);

    // The window checked besides the lifetime (whole seconds from the faults to the load's end), and one bucket of each coarser tier.
    const { fromMs: epochFromMs, toMs: epochToMs } = checkedRange(epoch0, faultAtMs, loadEndMs);
    const scopes = checkedScopes(epoch0, faultAtMs, loadEndMs);
    const { lifetime: all, checks } = await finalCheck(probe, scopes, now() + limitMs);
    const retry = retries === undefined || settled === undefined ? undefined : await checkRetries(retries, retryProbe, scopes, now() + limitMs, settled);
    const converged = convergedMs !== null;
    report = {
      version: 1,
      experiment: experiment.name,
      description: experiment.describe(ids),
      settings,
      startedAt: new Date(epoch0).toISOString(),
      nodes: cluster.nodes.map((node) => {
        const counts = all.get(node.id);
        return { id: node.id, url: node.url, ...ledger.tally(node.id), finalCount: counts === undefined ? null : sumCounts(counts) };
      }),
      hits: ledger.totals(),
      faults: faults.map((f): FaultSpan => ({ label: f.label, fromMs: f.fromMs, toMs: f.toMs ?? healAtMs, nodes: f.nodes })),
      events,
      loadEndMs,
      convergence: { converged, ms: convergedMs, healAtMs },
      window: { epochFromMs, epochToMs, fromMs: epochFromMs - epoch0, toMs: epochToMs - epoch0 },
      timeline,
      ...(continuous === undefined ? {} : { continuous: continuous.checks }),
      ...(fresh === undefined ? {} : { fresh: fresh.summary() }),
      ...(retry === undefined ? {} : { retry }),
      checks,
      ok:
        converged &&
        checks.violations.length === 0 &&
        (continuous === undefined || continuousHeld(continuous.checks)) &&
        (fresh === undefined || freshHeld(fresh.summary())) &&
        (retry === undefined || retryHeld(retry)),
    };
  } finally {
    clearInterval(ticker);
    sampling = false;
    await load.stop();
    await retries?.drain();
    await sampler;
    await cluster.stop();
    if (options.keepData === true) options.progress?.(`data kept in ${dataRoot}`);
    else await rm(dataRoot, { recursive: true, force: true });
  }
  return report;
}

const group = (ids: readonly string[]): string => `{${[...ids].sort().join(',')}}`;

function progressLine(
  name: string,
  atMs: number,
  durationMs: number,
  faults: readonly { label: string; toMs: number | undefined }[],
  ledger: HitLedger,
  timeline: { counts: Readonly<Record<string, readonly (number | null)[]>> },
): string {
  const t = ledger.totals();
  const open = faults.filter((f) => f.toMs === undefined).map((f) => f.label);
  const counts = Object.entries(timeline.counts)
    .map(([id, series]) => `${id} ${series.at(-1) ?? '—'}`)
    .join('  ');
  const phase = atMs < durationMs ? `${(atMs / 1000).toFixed(1)}/${(durationMs / 1000).toFixed(0)} s` : `converging ${((atMs - durationMs) / 1000).toFixed(1)} s`;
  return `${name} ${phase} · ${open.length > 0 ? open.join('; ') : 'no faults'} · sent ${t.sent} acked ${t.acked} failed ${t.failed} unknown ${t.unknown} · counts ${counts}`;
}
