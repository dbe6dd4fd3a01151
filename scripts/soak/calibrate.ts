/**
 * The calibration burst before a soak: for a few seconds, as many hits as the
 * cluster takes (a fixed number of requests always in flight per node, each
 * sent as soon as the one before it is answered). Every hit goes into the
 * ledger like any other, since it is counted like any other. The peak is
 * the best whole second; the soak then runs at half of it.
 */
import http from 'node:http';
import type { HitLedger } from '../partition/hit-ledger.ts';
import { postHit, type LoadTarget } from '../partition/hit-load.ts';

export interface Calibration {
  readonly burstMs: number;
  /** Requests kept in flight per node. */
  readonly concurrency: number;
  readonly sent: number;
  readonly acked: number;
  /** Acked hits in the best whole second of the burst. */
  readonly peakPerS: number;
  /** Acked hits per second over the whole burst. */
  readonly meanPerS: number;
}

export interface CalibrateOptions {
  readonly targets: readonly LoadTarget[];
  readonly keys: readonly string[];
  readonly ledger: HitLedger;
  readonly random: () => number;
  readonly seconds: number;
  readonly concurrency?: number;
}

export async function calibrate(options: CalibrateOptions): Promise<Calibration> {
  const concurrency = options.concurrency ?? 16;
  const burstMs = Math.round(options.seconds * 1000);
  const started = performance.now();
  const perSecond: number[] = [];
  let sent = 0;
  let acked = 0;
  const worker = async (target: LoadTarget, agent: http.Agent): Promise<void> => {
    while (performance.now() - started < burstMs) {
      const key = options.keys[Math.floor(options.random() * options.keys.length)] ?? 'calibration';
      const sentAt = Date.now();
      sent++;
      const outcome = await postHit(target.url, key, agent, 5_000);
      options.ledger.record(target.id, key, sentAt, outcome);
      if (outcome.kind !== 'acked') continue;
      acked++;
      const second = Math.floor((performance.now() - started) / 1000);
      perSecond[second] = (perSecond[second] ?? 0) + 1;
    }
  };
  const agents = options.targets.map(() => new http.Agent({ keepAlive: true, maxSockets: concurrency }));
  try {
    await Promise.all(options.targets.flatMap((target, i) => Array.from({ length: concurrency }, () => worker(target, agents[i] ?? new http.Agent()))));
  } finally {
    for (const agent of agents) agent.destroy();
  }
  const elapsedMs = performance.now() - started;
  // Only whole seconds count for the peak: the last one is cut short by the deadline.
  const whole = Array.from(perSecond.slice(0, Math.max(1, Math.floor(burstMs / 1000))), (n) => n ?? 0);
  return {
    burstMs: Math.round(elapsedMs),
    concurrency,
    sent,
    acked,
    peakPerS: Math.max(0, ...whole),
    meanPerS: Math.round((acked / elapsedMs) * 1000),
  };
}
