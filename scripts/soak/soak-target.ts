/** The FaultTarget of a soak: the proxied cluster, the load and the timeline's spans and events. */
import type { SpanHandle } from '../partition/experiments.ts';
import type { HitLoad } from '../partition/hit-load.ts';
import type { ProxiedCluster } from '../partition/proxied-cluster.ts';
import { waitReplicated } from '../partition/replication-wait.ts';
import type { TimelineEvent } from '../partition/report.ts';
import type { FaultTarget } from './faults.ts';

export interface OpenSpan {
  readonly label: string;
  readonly fromMs: number;
  toMs: number | undefined;
  readonly nodes: readonly string[];
}

export interface SoakTimelineLog {
  readonly spans: OpenSpan[];
  readonly events: TimelineEvent[];
  /** Per node: when each of its processes became ready, ms since the run started. */
  readonly starts: Record<string, number[]>;
}

/** How long a wipe waits for its node's hits to be on every other node. */
const REPLICATED_WITHIN_MS = 30_000;

export function soakTarget(cluster: ProxiedCluster, load: HitLoad, log: SoakTimelineLog, now: () => number, until: (ms: number) => Promise<void>): FaultTarget {
  return {
    cut: (a, b, mode) => cluster.cut(a, b, mode),
    slow: (a, b, link) => cluster.slow(a, b, link),
    healAll: () => cluster.healAll(),
    kill: async (id) => {
      await cluster.node(id).kill();
    },
    wipe: (id) => cluster.wipe(id),
    restart: async (id) => {
      await cluster.node(id).start();
      (log.starts[id] ??= []).push(now());
    },
    setClockOffset: (id, ms) => cluster.node(id).setClockOffset(ms),
    pauseLoad: (id) => {
      load.pause(id);
      return load.idle(id);
    },
    resumeLoad: (id) => load.resume(id),
    waitReplicated: (id) => waitReplicated(cluster, id, REPLICATED_WITHIN_MS),
    now,
    until,
    span: (label, nodes): SpanHandle => {
      const span: OpenSpan = { label, fromMs: now(), toMs: undefined, nodes };
      log.spans.push(span);
      return { end: () => (span.toMs ??= now()) };
    },
    event: (label, node) => log.events.push({ atMs: now(), label, ...(node === undefined ? {} : { node }) }),
  };
}
