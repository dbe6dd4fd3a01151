/**
 * The experiments: what each does to the cluster between the end of the
 * warm-up and the heal. Each is a short script over FaultContext; the runner
 * owns the load, the heal, convergence and the checks.
 */
import type { FlapSchedule } from '../lib/fault-proxy.ts';
import type { SlowLink } from './proxied-cluster.ts';
import type { ExperimentName } from './report.ts';
import { PAIRINGS, type Pairing } from './fresh-probes.ts';
import { pick, shuffled } from './seeded.ts';

export interface SpanHandle {
  end(): void;
}

/** What an experiment may do. Times are ms since the load started. */
export interface FaultContext {
  /** Node ids, in a seeded random order: experiments pick their victims from the front. */
  readonly ids: readonly string[];
  /** Seeded: the same --seed picks the same faults. */
  readonly random: () => number;
  /** When the faults end and the runner heals everything. */
  readonly healAtMs: number;
  now(): number;
  /** Sleep until `ms` since the load started. */
  until(ms: number): Promise<void>;
  /** Cut (or black-hole, per --mode) every link between `a` and `b` until the heal. */
  cut(a: readonly string[], b: readonly string[]): void;
  /** Every link between `a` and `b` comes and goes until the heal. */
  flap(a: readonly string[], b: readonly string[], schedule: FlapSchedule): void;
  /** Every link between `a` and `b` is slow (delayed and throttled) until the heal. */
  slow(a: readonly string[], b: readonly string[], link: SlowLink): void;
  /** Heal every link now (cut, flapping or slow) and end their spans; nodes are not touched. */
  healLinks(): void;
  /** A shaded span on the timeline, open until end() or the heal. */
  span(label: string, nodes: readonly string[]): SpanHandle;
  event(label: string, node?: string): void;
  /** kill -9. */
  kill(id: string): Promise<void>;
  /** kill -9 and delete its data directory. */
  wipe(id: string): Promise<void>;
  /** Start a stopped node again (same id, port, data dir) and wait until it is ready. */
  restart(id: string): Promise<void>;
  /** Stop sending hits to `id` and wait for its answers in flight. */
  pauseLoad(id: string): Promise<void>;
  resumeLoad(id: string): void;
  /** Wait until every other node holds every hit `id` has taken. */
  waitReplicated(id: string): Promise<void>;
  /** One probe of the `fresh` experiment: a write on `writer` at the pairing's level, then at once the read on `reader` that must see it. */
  readAfterWrite(pairing: Pairing, writer: string, reader: string): Promise<void>;
  /** The `retry` experiment's clients (retry-load.ts): idempotent hits retried across `sides` from now until the heal; the runner lets the last retries land after it and checks them. */
  retryHits(sides: readonly [readonly string[], readonly string[]]): void;
}

export interface Experiment {
  readonly name: ExperimentName;
  readonly summary: string;
  readonly minNodes: number;
  /** One sentence for the report, naming the nodes. */
  describe(ids: readonly string[]): string;
  run(ctx: FaultContext): Promise<void>;
}

/** Flap timing: down long enough to break the connection, up long enough to reconnect and sync. */
export const FLAP: FlapSchedule = { upMs: 700, downMs: 1_300 };

/** A slow link: a long intercontinental round trip and a thin pipe (a sync of 20 keys is a few hundred bytes). */
export const SLOW: SlowLink = { delayMs: 150, bytesPerSecond: 4_096 };

/** The `fresh` experiment's links: a long round trip, so a read that does not wait for its quorum would miss the write. */
export const FRESH_DELAY_MS = 300;

/** A crashed or wiped node stays down for this share of the fault phase. */
const DOWN_SHARE = 0.4;

/** The two sides of a split: a majority of ⌊n/2⌋ + 1 nodes and the rest; with 2 nodes, one each (a side is never empty). */
export function halves(ids: readonly string[]): [string[], string[]] {
  const size = Math.max(1, Math.min(ids.length - 1, Math.floor(ids.length / 2) + 1));
  return [ids.slice(0, size), ids.slice(size)];
}

const set = (ids: readonly string[]): string => `{${[...ids].sort().join(", ")}}`;

function first(ids: readonly string[]): string {
  const id = ids[0];
  if (id === undefined) throw new Error('no nodes');
  return id;
}

/** kill -9 (or kill -9 and delete its data) `victim`, leave it down until `untilMs`, restart it and wait until it is ready; both phases drawn as spans. */
async function downThenRestart(ctx: FaultContext, victim: string, how: 'kill' | 'wipe', untilMs: number): Promise<void> {
  const down = ctx.span(how === 'kill' ? `${victim} down` : `${victim} wiped`, [victim]);
  ctx.event(how === 'kill' ? `kill -9 ${victim}` : `${victim} disk lost`, victim);
  await (how === 'kill' ? ctx.kill(victim) : ctx.wipe(victim));
  await ctx.until(untilMs);
  down.end();
  const starting = ctx.span(how === 'kill' ? `${victim} starting` : `${victim} starting empty`, [victim]);
  await ctx.restart(victim);
  starting.end();
  ctx.event(`${victim} ready`, victim);
}

function downUntil(ctx: FaultContext): number {
  const start = ctx.now();
  return start + (ctx.healAtMs - start) * DOWN_SHARE;
}

/** An experiment that does one thing to the links between the two halves of a split, from the warm-up to the heal. */
function betweenHalves(
  name: ExperimentName,
  summary: string,
  describe: (major: readonly string[], minor: readonly string[]) => string,
  apply: (ctx: FaultContext, major: string[], minor: string[]) => void,
): Experiment {
  return {
    name,
    summary,
    minNodes: 2,
    describe: (ids) => describe(...halves(ids)),
    run: async (ctx) => {
      apply(ctx, ...halves(ctx.ids));
      await ctx.until(ctx.healAtMs);
    },
  };
}

export const EXPERIMENTS: readonly Experiment[] = [
  betweenHalves(
    'split',
    'a majority and a minority side, cut from each other; both keep taking hits',
    (major, minor) => `${major.length > minor.length ? `majority ${set(major)} and minority ${set(minor)}` : `${set(major)} and ${set(minor)}`} cut from each other, hits on both sides`,
    (ctx, major, minor) => ctx.cut(major, minor),
  ),
  {
    name: 'isolate',
    summary: 'one node cut from all the others',
    minNodes: 2,
    describe: (ids) => `${first(ids)} cut from every other node, hits on all`,
    run: async (ctx) => {
      const victim = first(ctx.ids);
      ctx.cut([victim], ctx.ids.slice(1));
      await ctx.until(ctx.healAtMs);
    },
  },
  {
    name: 'bridge',
    summary: 'A and B cut from each other, both still reach the rest',
    minNodes: 3,
    describe: (ids) => `${ids[0]} and ${ids[1]} cut from each other; both still reach ${set(ids.slice(2))}, which must carry their hits across`,
    run: async (ctx) => {
      const [a, b] = ctx.ids;
      if (a === undefined || b === undefined) throw new Error('bridge needs 3 nodes');
      ctx.cut([a], [b]);
      await ctx.until(ctx.healAtMs);
    },
  },
  betweenHalves(
    'flap',
    'the links between a majority and a minority come and go',
    (major, minor) => `links between ${set(major)} and ${set(minor)} down ${FLAP.downMs} ms, up ${FLAP.upMs} ms, over and over`,
    (ctx, major, minor) => ctx.flap(major, minor, FLAP),
  ),
  betweenHalves(
    'slow',
    'the links between a majority and a minority become slow (delayed, throttled)',
    (major, minor) => `links between ${set(major)} and ${set(minor)} delay every chunk ${SLOW.delayMs} ms and carry at most ${SLOW.bytesPerSecond} bytes/s`,
    (ctx, major, minor) => ctx.slow(major, minor, SLOW),
  ),
  {
    name: 'fresh',
    summary: `every link delays each chunk by ${FRESH_DELAY_MS} ms; a write at one level on one node is read at once on another at the level that must see it`,
    minNodes: 3,
    describe: () =>
      `every link delays each chunk by ${FRESH_DELAY_MS} ms; on random pairs of nodes, over and over: ack=all then a plain read, ack=majority then read=majority, a plain write then read=all, each read at once`,
    run: async (ctx) => {
      for (let i = 0; i < ctx.ids.length; i++) for (let j = i + 1; j < ctx.ids.length; j++) ctx.slow([ctx.ids[i] as string], [ctx.ids[j] as string], { delayMs: FRESH_DELAY_MS, bytesPerSecond: 10_000_000 });
      // A probe takes a few round trips; the last ones must end before the heal.
      while (ctx.now() < ctx.healAtMs - 8 * FRESH_DELAY_MS) {
        for (const pairing of PAIRINGS) {
          const [writer, reader] = shuffled(ctx.ids, ctx.random);
          if (writer === undefined || reader === undefined) throw new Error('fresh needs 3 nodes');
          await ctx.readAfterWrite(pairing, writer, reader);
        }
      }
      await ctx.until(ctx.healAtMs);
    },
  },
  {
    name: 'retry',
    summary: 'a majority and a minority cut from each other; hits with an Idempotency-Key retried across the cut, during it and after the heal, each must count once',
    minNodes: 2,
    describe: (ids) => {
      const [major, minor] = halves(ids);
      return `${set(major)} and ${set(minor)} cut from each other, hits on both sides; besides, hits with an Idempotency-Key each, a share of them retried as a client whose answer was lost or slow would (on the other side, on the same node, there and back, several times, during the cut and after the heal): each must count once`;
    },
    run: async (ctx) => {
      const [major, minor] = halves(ctx.ids);
      ctx.cut(major, minor);
      ctx.retryHits([major, minor]);
      await ctx.until(ctx.healAtMs);
    },
  },
  {
    name: 'crash',
    summary: 'kill -9 a node under load, restart it on the same data',
    minNodes: 2,
    describe: (ids) => `kill -9 of ${first(ids)} under load, restarted on the same data; hits on all nodes throughout`,
    run: async (ctx) => {
      await downThenRestart(ctx, first(ctx.ids), 'kill', downUntil(ctx));
      await ctx.until(ctx.healAtMs);
    },
  },
  {
    name: 'wipe',
    summary: 'a node loses its disk and rejoins empty',
    minNodes: 2,
    describe: (ids) =>
      `${first(ids)} taken out of the load until its hits are on every other node, then killed and its data directory deleted; it restarts empty, as a new incarnation, and takes hits again`,
    run: async (ctx) => {
      const victim = first(ctx.ids);
      // A hit acknowledged by one node lives on that node's disk until replicated: losing the disk earlier would lose it.
      await ctx.pauseLoad(victim);
      await ctx.waitReplicated(victim);
      await downThenRestart(ctx, victim, 'wipe', downUntil(ctx));
      ctx.resumeLoad(victim);
      await ctx.until(ctx.healAtMs);
    },
  },
  {
    name: 'chaos',
    summary: 'a seeded random sequence of the faults above, one at a time, 1-3 s each',
    minNodes: 3,
    describe: () => 'a seeded random sequence of splits, isolations, bridges, flapping and slow links and kill -9s, one at a time, each held 1-3 s and undone before the next',
    run: async (ctx) => {
      // Stop starting faults this long before the heal, so the last one is undone (a node restarted) in time.
      const lastStartMs = ctx.healAtMs - 3_500;
      while (ctx.now() < lastStartMs) {
        const holdMs = 1_000 + Math.floor(ctx.random() * 2_000);
        const order = shuffled(ctx.ids, ctx.random);
        const kind = pick(['split', 'isolate', 'bridge', 'flap', 'slow', 'crash'] as const, ctx.random);
        if (kind === 'crash') {
          await downThenRestart(ctx, first(order), 'kill', ctx.now() + holdMs);
        } else {
          const cutAt = kind === 'isolate' ? 1 : 1 + Math.floor(ctx.random() * (order.length - 1));
          const [a, b] = [order.slice(0, cutAt), order.slice(cutAt)];
          if (kind === 'bridge') ctx.cut([first(order)], [order[1] ?? first(b)]);
          else if (kind === 'flap') ctx.flap(a, b, FLAP);
          else if (kind === 'slow') ctx.slow(a, b, SLOW);
          else ctx.cut(a, b);
          await ctx.until(ctx.now() + holdMs);
          ctx.healLinks();
        }
        await ctx.until(ctx.now() + 300 + Math.floor(ctx.random() * 700));
      }
      await ctx.until(ctx.healAtMs);
    },
  },
];

export function findExperiment(name: string): Experiment | undefined {
  return EXPERIMENTS.find((e) => e.name === name);
}
