/**
 * One soak end to end (SPEC §6): a proxied cluster, a calibration burst
 * (unless --rate), steady load for the duration with faults one after
 * another, each held a few seconds, undone, and followed by a wait until
 * every node agrees on its closed range [start second, heal second + 1 s)
 * while the load goes on. At the end the run start to the last closed second
 * is judged under load too; then the load stops and the lifetime, the whole
 * run and every fault's range are checked against the ledger, and memory is
 * judged for flatness.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mulberry32 } from '../../gossip/random.ts';
import { closedHorizon, closedSecond, wholeSeconds, type EpochRange } from '../partition/closed-ranges.ts';
import { sumCounts } from '../partition/count-reader.ts';
import { HitLedger } from '../partition/hit-ledger.ts';
import { HitLoad } from '../partition/hit-load.ts';
import { ProxiedCluster } from '../partition/proxied-cluster.ts';
import { awaitAgreement, settleRange, type RangeProbe } from '../partition/range-convergence.ts';
import { shuffled } from '../partition/seeded.ts';
import { sleep } from '../partition/timing.ts';
import { calibrate, type Calibration } from './calibrate.ts';
import { checkFaketime } from './faketime.ts';
import { applyFault, FaultDeck, faultLabel, faultNodes, HOLD_MS, planFault, type SoakFaultKind } from './faults.ts';
import { finalChecks } from './final-checks.ts';
import { judgeMemory } from './memory-check.ts';
import type { SoakSettings } from './options.ts';
import { soakProgressLine } from './progress.ts';
import type { SoakFault, SoakReport } from './report.ts';
import { SoakSampler } from './sampler.ts';
import { soakTarget, type SoakTimelineLog } from './soak-target.ts';

export interface SoakRunOptions {
  /** How it is going, about once a second (may be shown only now and then). */
  readonly progress?: (line: string) => void;
  /** A line worth keeping: the rate chosen, a fault that failed. */
  readonly note?: (line: string) => void;
  readonly nodeLine?: (id: string, line: string) => void;
  readonly keepData?: boolean;
  readonly signal?: AbortSignal;
}

/** Marker hits (sampler.ts) go to keys of their own, soak-marker-0000 on. */
export const MARKER_PREFIX = 'soak-marker-';

export async function runSoak(settings: SoakSettings, options: SoakRunOptions = {}): Promise<SoakReport> {
  const random = mulberry32(settings.seed);
  const faultRandom = mulberry32(settings.seed ^ 0x9e3779b9);
  const ids = Array.from({ length: settings.nodes }, (_, i) => `n${i + 1}`);
  const steady = shuffled(ids, faultRandom)[0] ?? 'n1';
  const keys = Array.from({ length: settings.keys }, (_, i) => `key-${String(i).padStart(3, '0')}`);

  const skipped: { kind: SoakFaultKind; reason: string }[] = [];
  let faketime: string | undefined;
  if (settings.faults.includes('skew')) {
    const check = await checkFaketime(settings.faketime);
    if (check.ok) faketime = check.library;
    else skipped.push({ kind: 'skew', reason: check.reason });
  }
  const kinds = settings.faults.filter((k) => k !== 'skew' || faketime !== undefined);

  const dataRoot = await mkdtemp(join(tmpdir(), 'hitmesh-soak-'));
  options.note?.(`soak: starting ${settings.nodes} nodes${faketime === undefined ? '' : ' under libfaketime'}`);
  const cluster = await ProxiedCluster.start({
    ids,
    dataRoot,
    onLine: (id, line) => options.nodeLine?.(id, line),
    ...(faketime === undefined ? {} : { fakeClockLibrary: faketime }),
  }).catch(async (error: unknown) => {
    await rm(dataRoot, { recursive: true, force: true });
    throw error;
  });

  const t0 = performance.now();
  const epoch0 = Date.now();
  const now = (): number => Math.round(performance.now() - t0);
  const until = async (ms: number): Promise<void> => {
    options.signal?.throwIfAborted();
    const wait = ms - (performance.now() - t0);
    if (wait > 0) await sleep(wait, options.signal);
  };
  const durationMs = settings.durationS * 1000;
  const sampleEveryMs = Math.min(5_000, Math.max(1_000, Math.round(durationMs / 60)));
  const ledger = new HitLedger(ids);
  const targets = cluster.nodes.map((n) => ({ id: n.id, url: n.url }));
  const sampler = new SoakSampler({ nodes: cluster.nodes, keys, markerPrefix: MARKER_PREFIX, ledger, everyMs: sampleEveryMs, now });
  const log: SoakTimelineLog = { spans: [], events: [], starts: Object.fromEntries(ids.map((id) => [id, [0]])) };
  let phase = 'calibrating';
  let load: HitLoad | undefined;
  let loadStartMs = 0;
  let rate = settings.rate ?? 0;
  const ticker = setInterval(() => {
    const open = log.spans.filter((s) => s.toMs === undefined).map((s) => s.label);
    options.progress?.(soakProgressLine({ phase, atMs: now() - loadStartMs, durationMs, open, rate, totals: ledger.totals(), nodes: sampler.latest() }));
  }, 1_000);

  try {
    sampler.start();
    let calibration: Calibration | undefined;
    if (settings.rate === undefined) {
      calibration = await calibrate({ targets, keys, ledger, random, seconds: settings.calibrateS });
      if (calibration.peakPerS < 2) throw new Error(`the calibration burst got ${calibration.acked} hits acknowledged: the cluster takes no load`);
      rate = Math.round(calibration.peakPerS / 2);
      options.note?.(`soak: calibration peak ${calibration.peakPerS} hits/s (mean ${calibration.meanPerS}), soaking at ${rate} hits/s`);
    }
    load = new HitLoad({ targets, keys, rate, random, ledger });
    const probe: RangeProbe = {
      nodes: cluster.nodes,
      keys,
      ledger,
      horizon: () => closedHorizon(oldest(load?.oldestInFlightSentAt(), sampler.oldestInFlightSentAt()), Date.now()),
      now,
      epoch0,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    };
    const limitMs = settings.convergeLimitS * 1000;
    phase = 'soak';
    load.start();
    loadStartMs = now();
    const endMs = loadStartMs + durationMs;

    // Faults from a short warm-up on, the last one started early enough to be undone well before the end.
    const faults: SoakFault[] = [];
    const target = soakTarget(cluster, load, log, now, until);
    const deck = kinds.length > 0 ? new FaultDeck(kinds, faultRandom) : undefined;
    await until(loadStartMs + Math.min(5_000, durationMs / 10));
    while (deck !== undefined && now() + HOLD_MS.max + 4_000 < endMs) {
      const plan = planFault(deck.next(), ids, steady, faultRandom);
      const fromMs = now();
      try {
        await applyFault(plan, target);
      } catch (error) {
        options.signal?.throwIfAborted();
        // Leave no link cut behind; a node that would not restart stays down, and the checks will say so.
        cluster.healAll();
        const message = error instanceof Error ? error.message : String(error);
        faults.push({ kind: plan.kind, label: faultLabel(plan), fromMs, toMs: now(), nodes: faultNodes(plan), convergedMs: null, error: message });
        options.note?.(`soak: ${faultLabel(plan)} failed, no more faults: ${message}`);
        break;
      }
      const healAtMs = now();
      const range = await settleRange(probe, faultLabel(plan), wholeSeconds(epoch0 + fromMs, epoch0 + healAtMs), healAtMs + limitMs);
      const convergedMs = range.agreedAtMs === null ? null : Math.max(0, range.agreedAtMs - healAtMs);
      faults.push({ kind: plan.kind, label: faultLabel(plan), fromMs, toMs: healAtMs, nodes: faultNodes(plan), range, convergedMs });
      const outcome = convergedMs === null ? `did not converge within ${settings.convergeLimitS} s` : `converged ${convergedMs} ms after the heal`;
      const bad = range.violations.length > 0 ? `, ${range.violations.length} counts out of bounds` : '';
      options.note?.(`soak ${((healAtMs - loadStartMs) / 1000).toFixed(0)} s: ${faultLabel(plan)}, held ${((healAtMs - fromMs) / 1000).toFixed(1)} s, ${outcome}${bad}`);
      await until(now() + 500 + Math.floor(faultRandom() * 1_000));
    }
    await until(endMs);

    phase = 'tail';
    const tailRange = await settleRange(probe, 'run start → last closed second', { fromMs: closedSecond(epoch0), toMs: closedSecond(probe.horizon()) }, now() + limitMs);
    phase = 'settling';
    await load.stop();
    await sampler.stop();
    const loadEndMs = now();
    const run: EpochRange = { fromMs: closedSecond(epoch0), toMs: closedSecond(epoch0 + loadEndMs) + 1_000 };
    const faultRanges = faults.flatMap((f) => (f.range === undefined ? [] : [{ fromMs: f.range.epochFromMs, toMs: f.range.epochToMs }]));
    // The final checks cover the marker keys too. Everything they read must have settled: the lifetime agreeing says nothing about the 1 s buckets.
    const checked = [...keys, ...sampler.markerKeys()];
    const settledAt = await awaitAgreement({ ...probe, keys: checked }, [undefined, run, ...faultRanges], loadEndMs + limitMs);
    clearInterval(ticker);
    const final = await finalChecks(cluster.nodes, checked, ledger, run, faultRanges);
    const restarts = Object.fromEntries(Object.entries(log.starts).map(([id, starts]) => [id, starts.slice(1)]));
    const memory = judgeMemory(sampler.timeline, loadStartMs, loadEndMs, restarts);
    const ranges = [...faults.flatMap((f) => (f.range === undefined ? [] : [f.range])), tailRange];
    const verdict = {
      // A hit missing from a range that never agreed is a convergence failure, counted under `converged`.
      exact: final.violations.length === 0 && ranges.every((r) => r.violations.every((v) => v.kind === 'missing')),
      converged: settledAt !== null && ranges.every((r) => r.agreedAtMs !== null),
      memoryFlat: memory.ok,
      faultsApplied: faults.every((f) => f.error === undefined),
    };
    return {
      version: 1,
      kind: 'soak',
      settings,
      startedAt: new Date(epoch0).toISOString(),
      rate,
      rateSource: settings.rate === undefined ? 'calibration' : 'flag',
      ...(calibration === undefined ? {} : { calibration }),
      loadStartMs,
      loadEndMs,
      steadyNode: steady,
      nodes: cluster.nodes.map((node) => {
        const counts = final.lifetime.get(node.id);
        return { id: node.id, url: node.url, ...ledger.tally(node.id), finalCount: counts === undefined ? null : sumCounts(counts), starts: log.starts[node.id]?.length ?? 0 };
      }),
      hits: ledger.totals(),
      notSent: load.skipped,
      faults,
      skipped,
      events: log.events,
      sampleEveryMs,
      timeline: sampler.timeline,
      markers: sampler.markers,
      tailRange,
      settledMs: settledAt === null ? null : settledAt - loadEndMs,
      checks: { total: final.total, violations: final.violations },
      memory,
      verdict,
      ok: verdict.exact && verdict.converged && verdict.memoryFlat && verdict.faultsApplied,
    };
  } finally {
    clearInterval(ticker);
    await load?.stop();
    await sampler.stop();
    await cluster.stop();
    if (options.keepData === true) options.note?.(`soak: data kept in ${dataRoot}`);
    else await rm(dataRoot, { recursive: true, force: true });
  }
}

function oldest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}
