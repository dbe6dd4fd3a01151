/**
 * What a soak records over time, in two loops of its own so a slow one does
 * not hold up the other:
 * - every `everyMs`, each node's lifetime count, RSS, largest replication
 *   lag and largest clock offset to a peer (what the node itself reports);
 * - every `everyMs`, a marker hit on one running node (round-robin), and the
 *   time from its acknowledgement until every running node counts it: lag as
 *   a client sees it. Each marker has a key of its own, so one that never
 *   arrives does not hold up the next. Marker hits go into the ledger and the
 *   final checks.
 */
import type { HitLedger } from '../partition/hit-ledger.ts';
import { postHit } from '../partition/hit-load.ts';
import { readCounts, sumCounts } from '../partition/count-reader.ts';
import { sleep } from '../partition/timing.ts';
import { readNodeStats } from './node-stats.ts';
import type { MarkerSample } from './report.ts';

export interface SampledNode {
  readonly id: string;
  readonly url: string;
  readonly running: boolean;
}

export interface SamplerOptions {
  readonly nodes: readonly SampledNode[];
  /** The keys whose lifetime counts are summed for the chart. */
  readonly keys: readonly string[];
  /** Marker i hits `${markerPrefix}${i}`. */
  readonly markerPrefix: string;
  readonly ledger: HitLedger;
  readonly everyMs: number;
  /** Ms since the run started. */
  now(): number;
}

/** A marker not seen everywhere after this long is recorded as lost to the chart (null), not waited for. */
const MARKER_TIMEOUT_MS = 10_000;
const MARKER_POLL_MS = 20;

type Series = Record<string, (number | null)[]>;

export class SoakSampler {
  readonly timeline: { atMs: number[]; acked: number[]; counts: Series; rssBytes: Series; lagMs: Series; clockOffsetMs: Series };
  readonly markers: MarkerSample[] = [];
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly markerKeySent: string[] = [];
  private nextMarker = 0;
  private markerSentAt: number | undefined;

  constructor(private readonly options: SamplerOptions) {
    const series = (): Series => Object.fromEntries(options.nodes.map((n) => [n.id, []]));
    this.timeline = { atMs: [], acked: [], counts: series(), rssBytes: series(), lagMs: series(), clockOffsetMs: series() };
  }

  start(): void {
    this.running = true;
    this.loops = [this.every(() => this.sample()), this.every(() => this.marker())];
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** The last sample of each node, for the progress line. */
  latest(): { id: string; rssBytes: number | null; lagMs: number | null }[] {
    return this.options.nodes.map((n) => ({ id: n.id, rssBytes: this.timeline.rssBytes[n.id]?.at(-1) ?? null, lagMs: this.timeline.lagMs[n.id]?.at(-1) ?? null }));
  }

  /** Every marker key hit so far. */
  markerKeys(): readonly string[] {
    return this.markerKeySent;
  }

  /** The send time of the marker hit in flight, if one is: closed ranges must wait for it like for any hit. */
  oldestInFlightSentAt(): number | undefined {
    return this.markerSentAt;
  }

  private async every(job: () => Promise<void>): Promise<void> {
    while (this.running) {
      const started = this.options.now();
      await job();
      const wait = started + this.options.everyMs - this.options.now();
      if (wait > 0 && this.running) await sleep(Math.min(wait, this.options.everyMs));
    }
  }

  private async sample(): Promise<void> {
    const { nodes, keys, ledger } = this.options;
    const atMs = this.options.now();
    const read = await Promise.all(nodes.map(async (n) => ({ stats: await readNodeStats(n.url), counts: await readCounts(n.url, keys, undefined, 2_000) })));
    this.timeline.atMs.push(atMs);
    this.timeline.acked.push(ledger.acked);
    nodes.forEach((n, i) => {
      const r = read[i];
      this.timeline.counts[n.id]?.push(r?.counts === undefined ? null : sumCounts(r.counts));
      this.timeline.rssBytes[n.id]?.push(r?.stats.rssBytes ?? null);
      this.timeline.lagMs[n.id]?.push(r?.stats.lagMs ?? null);
      this.timeline.clockOffsetMs[n.id]?.push(r?.stats.clockOffsetMs ?? null);
    });
  }

  private async marker(): Promise<void> {
    const { ledger } = this.options;
    const up = this.options.nodes.filter((n) => n.running);
    const target = up[this.nextMarker % Math.max(1, up.length)];
    if (target === undefined) return;
    const key = `${this.options.markerPrefix}${String(this.nextMarker++).padStart(4, '0')}`;
    this.markerKeySent.push(key);
    const atMs = this.options.now();
    const sentAt = Date.now();
    this.markerSentAt = sentAt;
    const outcome = await postHit(target.url, key, undefined, 5_000);
    ledger.record(target.id, key, sentAt, outcome);
    this.markerSentAt = undefined;
    if (outcome.kind !== 'acked') {
      this.markers.push({ atMs, node: target.id, ms: null });
      return;
    }
    const ackedAt = this.options.now();
    while (this.running && this.options.now() - ackedAt < MARKER_TIMEOUT_MS) {
      const counts = await Promise.all(this.options.nodes.filter((n) => n.running).map((n) => readCounts(n.url, [key], undefined, 1_000)));
      if (counts.every((c) => (c?.get(key) ?? 0) >= 1)) {
        this.markers.push({ atMs, node: target.id, ms: this.options.now() - ackedAt });
        return;
      }
      await sleep(MARKER_POLL_MS);
    }
    this.markers.push({ atMs, node: target.id, ms: null });
  }
}
