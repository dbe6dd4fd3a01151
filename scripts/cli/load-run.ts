import { performance } from 'node:perf_hooks';
import { summarizeLatencies, type LatencySummary } from './latency-summary.ts';
import type { HitOutcome } from './node-client.ts';
import type { StopSignal } from './stop-signal.ts';

export interface LoadPlan {
  /** Logical hits per second, over all keys. */
  readonly rate: number;
  readonly durationMs: number;
  readonly keys: readonly string[];
  /** Most hits in flight at once. */
  readonly concurrency: number;
}

/** What one hit did: an outcome, and for a failure the one-line cause. */
export type HitResult = { readonly outcome: 'acked' } | { readonly outcome: Exclude<HitOutcome, 'acked'>; readonly cause: string };

export interface LoadProgress {
  readonly elapsedMs: number;
  readonly planned: number;
  readonly sent: number;
  readonly acked: number;
  readonly failed: number;
  readonly unknown: number;
  readonly inFlight: number;
}

export interface LoadSummary extends LoadProgress {
  readonly stoppedEarly: boolean;
  /** Acked hits per second of the run. */
  readonly achievedRate: number;
  /** Of acked hits, from sending to the answer (retries included). */
  readonly latency: LatencySummary;
  /** Acked hits per key, so a caller can check them against the nodes' counts. */
  readonly ackedByKey: Readonly<Record<string, number>>;
  /** Causes of failed and unknown hits, with how often each was seen (at most 10 distinct). */
  readonly causes: Readonly<Record<string, number>>;
}

const MAX_CAUSES = 10;

/**
 * Hit i is due at start + i / rate; C workers take the next due hit in turn,
 * so a slow node lowers the achieved rate instead of piling up requests.
 */
export async function runLoad(plan: LoadPlan, sendHit: (key: string) => Promise<HitResult>, stop: StopSignal, onProgress: (progress: LoadProgress) => void, progressEveryMs = 1_000): Promise<LoadSummary> {
  const planned = Math.max(1, Math.round((plan.rate * plan.durationMs) / 1_000));
  const start = performance.now();
  let next = 0;
  let acked = 0;
  let failed = 0;
  let unknown = 0;
  let inFlight = 0;
  const latencies: number[] = [];
  const ackedByKey: Record<string, number> = {};
  const causes: Record<string, number> = {};
  let sent = 0;
  const progress = (): LoadProgress => ({ elapsedMs: Math.round(performance.now() - start), planned, sent, acked, failed, unknown, inFlight });

  const worker = async (): Promise<void> => {
    while (!stop.requested && next < planned) {
      const index = next++;
      const key = plan.keys[index % plan.keys.length] ?? '';
      await stop.sleep(start + (index * 1_000) / plan.rate - performance.now());
      if (stop.requested) return;
      sent++;
      inFlight++;
      const sentAt = performance.now();
      const result = await sendHit(key);
      inFlight--;
      if (result.outcome === 'acked') {
        acked++;
        latencies.push(performance.now() - sentAt);
        ackedByKey[key] = (ackedByKey[key] ?? 0) + 1;
      } else {
        if (result.outcome === 'failed') failed++;
        else unknown++;
        if (result.cause in causes || Object.keys(causes).length < MAX_CAUSES) causes[result.cause] = (causes[result.cause] ?? 0) + 1;
      }
    }
  };

  const ticker = setInterval(() => onProgress(progress()), progressEveryMs);
  try {
    await Promise.all(Array.from({ length: Math.min(plan.concurrency, planned) }, worker));
  } finally {
    clearInterval(ticker);
  }
  const final = progress();
  return {
    ...final,
    stoppedEarly: sent < planned,
    achievedRate: Math.round((acked / Math.max(final.elapsedMs, 1)) * 1_000 * 10) / 10,
    latency: summarizeLatencies(latencies),
    ackedByKey,
    causes,
  };
}
