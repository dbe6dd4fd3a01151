/**
 * Steady load for an experiment: `rate` single hits per second, round-robin
 * over the nodes that are targets now, each on a key drawn from a seeded
 * random, every answer recorded in the ledger. Clients talk to nodes
 * directly, never through the fault proxies: a partition cuts nodes from
 * each other, and each side keeps its clients.
 *
 * With `identities`, each hit also carries a key of its own: POST /hits with
 * [{key}, {key: "id-<client>-<n>"}], all or nothing, so the id counts exactly
 * when the hit does (see id-sample.ts). Off by default: the soak's load runs
 * for minutes at ~1,700 hits/s and a key per hit would grow every node.
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
  /** Give every hit an identity key, sent with it in one batch. Default off. */
  readonly identities?: boolean;
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
  /** Per target: ids given so far. */
  private readonly idCounters = new Map<string, number>();
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
    const agent = this.agents.get(target.id);
    const timeoutMs = this.options.timeoutMs ?? 5_000;
    const id = this.options.identities === true ? this.nextId(target.id) : undefined;
    const answer = id === undefined ? postHit(target.url, key, agent, timeoutMs) : postHits(target.url, [key, id], agent, timeoutMs);
    const done = answer.then((outcome) => {
      this.inFlight.set(target.id, (this.inFlight.get(target.id) ?? 1) - 1);
      this.options.ledger.record(target.id, key, sentAt, outcome, id);
      this.pending.delete(done);
    });
    this.pending.set(done, sentAt);
  }

  /** `id-<client>-<n>`: [a-z0-9-] only, so it reads back the same however a key list is encoded. */
  private nextId(target: string): string {
    const n = (this.idCounters.get(target) ?? 0) + 1;
    this.idCounters.set(target, n);
    return `id-${target.toLowerCase().replace(/[^a-z0-9]/g, '')}-${n}`;
  }
}

/** POST /hit/<key> and classify the answer. Never rejects. */
export function postHit(url: string, key: string, agent: http.Agent | undefined, timeoutMs: number): Promise<HitOutcome> {
  return request(`${url}/hit/${encodeURIComponent(key)}`, undefined, agent, timeoutMs, (body) => {
    const { at } = JSON.parse(body) as { at?: unknown };
    return typeof at === 'number' && Number.isInteger(at) ? { at } : undefined;
  });
}

/**
 * POST /hits with one hit on each of `keys`, all or nothing, and classify the answer. Its answer says how many
 * were accepted but not when: an acked batch was stamped between the send and the answer. Never rejects.
 */
export function postHits(url: string, keys: readonly string[], agent: http.Agent | undefined, timeoutMs: number): Promise<HitOutcome> {
  const sentAt = Date.now();
  return request(`${url}/hits`, JSON.stringify(keys.map((key) => ({ key }))), agent, timeoutMs, (body) => {
    const { accepted } = JSON.parse(body) as { accepted?: unknown };
    return accepted === keys.length ? { at: sentAt, atMax: Date.now() } : undefined;
  });
}

/** One request; `acked` reads a 200's body into the stamp (undefined, or a throw: not an acknowledgement we can check). */
function request(
  url: string,
  body: string | undefined,
  agent: http.Agent | undefined,
  timeoutMs: number,
  acked: (body: string) => { at: number; atMax?: number } | undefined,
): Promise<HitOutcome> {
  return new Promise<HitOutcome>((resolve) => {
    let settled = false;
    const settle = (outcome: HitOutcome): void => {
      if (settled) return;
      settled = true;
      resolve(outcome);
    };
    const headers = body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    const req = http.request(url, { method: 'POST', agent, timeout: timeoutMs, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', () => settle({ kind: 'unknown' }));
      res.on('end', () => settle(classify(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'), acked)));
    });
    req.on('timeout', () => {
      req.destroy();
      settle({ kind: 'unknown' });
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      // Refused: no connection, so the node never saw the hit. Anything else may have reached it.
      settle(error.code === 'ECONNREFUSED' ? { kind: 'failed' } : { kind: 'unknown' });
    });
    req.end(body);
  });
}

function classify(status: number, body: string, acked: (body: string) => { at: number; atMax?: number } | undefined): HitOutcome {
  if (status === 200) {
    try {
      const stamp = acked(body);
      if (stamp !== undefined) return { kind: 'acked', ...stamp };
    } catch {
      // fall through: a 200 we cannot read is not an acknowledgement we can check
    }
    return { kind: 'unknown' };
  }
  // A 4xx or 503 answer means the hit was not taken.
  if ((status >= 400 && status < 500) || status === 503) return { kind: 'failed' };
  return { kind: 'unknown' };
}
