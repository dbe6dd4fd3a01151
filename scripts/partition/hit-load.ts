/**
 * Steady load for an experiment: `rate` single hits per second, round-robin
 * over the nodes that are targets now, each on a key drawn from a seeded
 * random, every answer recorded in the ledger. Clients talk to nodes
 * directly, never through the fault proxies: a partition cuts nodes from
 * each other, and each side keeps its clients.
 */
import http from 'node:http';
import type { HitLedger, HitOutcome } from './hit-ledger.ts';

export interface LoadTarget {
  readonly id: string;
  readonly url: string;
}

export interface HitLoadOptions {
  readonly targets: readonly LoadTarget[];
  readonly keys: readonly string[];
  readonly rate: number;
  readonly random: () => number;
  readonly ledger: HitLedger;
  /** A hit with no answer after this long is given up as unknown. */
  readonly timeoutMs?: number;
  /** Hits in flight per node beyond which new ones are not sent (a stalled node must not pile up sockets). */
  readonly maxInFlightPerNode?: number;
}

const TICK_MS = 10;

export class HitLoad {
  private readonly agents = new Map<string, http.Agent>();
  private readonly inFlight = new Map<string, number>();
  private readonly paused = new Set<string>();
  /** Every request in flight, with the epoch ms it was sent at. */
  private readonly pending = new Map<Promise<void>, number>();
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private issued = 0;
  private next = 0;
  /** Hits not sent because their node had too many in flight. */
  skipped = 0;

  constructor(private readonly options: HitLoadOptions) {
    for (const target of options.targets) {
      this.agents.set(target.id, new http.Agent({ keepAlive: true, maxSockets: 64 }));
      this.inFlight.set(target.id, 0);
    }
  }

  start(): void {
    this.startedAt = performance.now();
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  /** Stop sending to `id` (its hits go to the others) until resume(). */
  pause(id: string): void {
    this.paused.add(id);
  }

  resume(id: string): void {
    this.paused.delete(id);
  }

  /** Resolves once no hit to `id` is in flight (pause it first, or this may never happen). */
  async idle(id: string): Promise<void> {
    while ((this.inFlight.get(id) ?? 0) > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  /** Stop sending and wait for every hit in flight to be answered or given up. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    while (this.pending.size > 0) await Promise.all([...this.pending.keys()]);
    for (const agent of this.agents.values()) agent.destroy();
  }

  /** The send time (epoch ms) of the oldest request not yet answered or given up; undefined when none is in flight. */
  oldestInFlightSentAt(): number | undefined {
    let oldest: number | undefined;
    for (const sentAt of this.pending.values()) if (oldest === undefined || sentAt < oldest) oldest = sentAt;
    return oldest;
  }

  private tick(): void {
    const due = Math.floor(((performance.now() - this.startedAt) / 1000) * this.options.rate);
    const targets = this.options.targets.filter((t) => !this.paused.has(t.id));
    while (this.issued < due) {
      this.issued++;
      if (targets.length === 0) continue;
      const target = targets[this.next++ % targets.length];
      if (target === undefined) continue;
      const key = this.options.keys[Math.floor(this.options.random() * this.options.keys.length)];
      if (key === undefined) continue;
      if ((this.inFlight.get(target.id) ?? 0) >= (this.options.maxInFlightPerNode ?? 200)) {
        this.skipped++;
        continue;
      }
      this.send(target, key);
    }
  }

  private send(target: LoadTarget, key: string): void {
    const sentAt = Date.now();
    this.inFlight.set(target.id, (this.inFlight.get(target.id) ?? 0) + 1);
    const done = postHit(target.url, key, this.agents.get(target.id), this.options.timeoutMs ?? 5_000).then((outcome) => {
      this.inFlight.set(target.id, (this.inFlight.get(target.id) ?? 1) - 1);
      this.options.ledger.record(target.id, key, sentAt, outcome);
      this.pending.delete(done);
    });
    this.pending.set(done, sentAt);
  }
}

/** POST /hit/<key> and classify the answer. Never rejects. */
export function postHit(url: string, key: string, agent: http.Agent | undefined, timeoutMs: number): Promise<HitOutcome> {
  return new Promise<HitOutcome>((resolve) => {
    let settled = false;
    const settle = (outcome: HitOutcome): void => {
      if (settled) return;
      settled = true;
      resolve(outcome);
    };
    const req = http.request(`${url}/hit/${encodeURIComponent(key)}`, { method: 'POST', agent, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', () => settle({ kind: 'unknown' }));
      res.on('end', () => settle(classify(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))));
    });
    req.on('timeout', () => {
      req.destroy();
      settle({ kind: 'unknown' });
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      // Refused: no connection, so the node never saw the hit. Anything else may have reached it.
      settle(error.code === 'ECONNREFUSED' ? { kind: 'failed' } : { kind: 'unknown' });
    });
    req.end();
  });
}

function classify(status: number, body: string): HitOutcome {
  if (status === 200) {
    try {
      const { at } = JSON.parse(body) as { at?: unknown };
      if (typeof at === 'number' && Number.isInteger(at)) return { kind: 'acked', at };
    } catch {
      // fall through: a 200 we cannot read is not an acknowledgement we can check
    }
    return { kind: 'unknown' };
  }
  // A 4xx or 503 answer means the hit was not taken.
  if ((status >= 400 && status < 500) || status === 503) return { kind: 'failed' };
  return { kind: 'unknown' };
}
