import { ReplicaState } from '../crdt/replica-state.ts';
import type { Retention } from '../crdt/retention.ts';
import type { Slot } from '../crdt/slot.ts';
import { ALL_TIERS, bucketStart, type Tier } from '../crdt/tiers.ts';
import { LIFETIME_PLAN, planWindow, type WindowPlan } from '../crdt/window-plan.ts';
import type { Clock } from './clock.ts';
import { GroupCommit, type PendingHits } from './group-commit.ts';
import { loadOrCreateIdentity, type Identity } from './identity.ts';
import type { Logger } from './logger.ts';
import type { NodeMetrics } from './metrics.ts';
import { RetentionGc } from './retention-gc.ts';
import type { Store } from './store.ts';

/** What a count covers: the last `ms`, an explicit [from, to), or everything. */
export type CountRange =
  | { readonly kind: 'window'; readonly ms: number }
  | { readonly kind: 'range'; readonly from: number; readonly to: number }
  | { readonly kind: 'all' };

export interface HitItem {
  readonly key: string;
  readonly n: number;
}

export interface ReplicaOptions {
  readonly store: Store;
  readonly id: string;
  readonly retention: Retention;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics?: NodeMetrics;
  readonly gcIntervalMs?: number;
}

/** The replica is shutting down and takes no more hits. */
export class ShuttingDownError extends Error {
  readonly code = 'HITMESH_SHUTTING_DOWN';
}

const SEQ_META = 'seq';

/**
 * One replica: the in-memory state rebuilt from the store, the hit path
 * through group commit, window counts, retention. Every batch this replica
 * commits gets the next sequence number of its origin; its slots carry it, so
 * gossip can ask "everything of origin O after seq s".
 */
export class Replica {
  private readonly commits: GroupCommit;
  private readonly gc: RetentionGc;
  private accepting = true;
  private seq_: number;

  private constructor(
    private readonly options: ReplicaOptions,
    readonly identity: Identity,
    readonly state: ReplicaState,
    seq: number,
  ) {
    this.seq_ = seq;
    this.commits = new GroupCommit((pending) => this.writeBatch(pending));
    this.gc = new RetentionGc({
      state,
      store: options.store,
      retention: options.retention,
      clock: options.clock,
      intervalMs: options.gcIntervalMs ?? 60_000,
      logger: options.logger,
      metrics: options.metrics,
    });
  }

  /** Open the store, load or create the identity and rebuild the counts from disk. */
  static async open(options: ReplicaOptions): Promise<Replica> {
    const { store, clock, logger } = options;
    if (!store.isOpen) await store.open();
    let loaded: Awaited<ReturnType<typeof Replica.load>>;
    try {
      loaded = await Replica.load(store, options.id, clock.now());
    } catch (error) {
      await store.close(); // leave the directory unlocked for whoever comes next
      throw error;
    }
    const { identity, created, state, slots, seq } = loaded;
    const replica = new Replica(options, identity, state, seq);
    options.metrics?.keys.set(state.keyCount);
    logger.info({ origin: identity.origin, created, slots, keys: state.keyCount, seq }, created ? 'new replica created' : 'replica reopened');
    await replica.gc.runOnce();
    replica.gc.start();
    return replica;
  }

  private static async load(store: Store, id: string, now: number) {
    const { identity, created } = await loadOrCreateIdentity(store, id, now);
    const state = new ReplicaState();
    let slots = 0;
    for await (const slot of store.scanSlots()) {
      state.join(slot);
      slots++;
    }
    const seq = Number((await store.getMeta(SEQ_META)) ?? '0');
    return { identity, created, state, slots, seq };
  }

  get seq(): number {
    return this.seq_;
  }

  get isAccepting(): boolean {
    return this.accepting && this.options.store.isOpen;
  }

  get retention(): Retention {
    return this.options.retention;
  }

  now(): number {
    return this.options.clock.now();
  }

  /** Count `n` hits of `key` now; resolves with the timestamp once they are durable. */
  async hit(key: string, n: number): Promise<number> {
    this.assertAccepting();
    const at = this.options.clock.now();
    const second = bucketStart(0, at);
    await this.commits.add((pending) => pending.add(key, second, n));
    return at;
  }

  /** Count a batch of hits, all in one commit; resolves with their sum once durable. */
  async hits(items: readonly HitItem[]): Promise<number> {
    this.assertAccepting();
    const second = bucketStart(0, this.options.clock.now());
    let total = 0;
    await this.commits.add((pending) => {
      for (const item of items) {
        pending.add(item.key, second, item.n);
        total += item.n;
      }
    });
    return total;
  }

  plan(range: CountRange): WindowPlan {
    if (range.kind === 'all') return LIFETIME_PLAN;
    const now = this.options.clock.now();
    const [from, to] = range.kind === 'window' ? [now - range.ms, now + 1] : [range.from, range.to];
    return planWindow(from, to, now, this.options.retention);
  }

  count(key: string, plan: WindowPlan): number {
    return this.state.sum(key, plan);
  }

  /** Stop taking hits, write what is pending, stop the background work and close the store. */
  async close(): Promise<void> {
    this.accepting = false;
    await this.commits.drain();
    await this.gc.stop();
    if (this.options.store.isOpen) await this.options.store.close();
  }

  private assertAccepting(): void {
    if (!this.isAccepting) throw new ShuttingDownError('this node is shutting down and takes no hits');
  }

  /** Turn pending increments into absolute slot counts, write them, then make them visible. */
  private async writeBatch(pending: PendingHits): Promise<void> {
    const { store, metrics } = this.options;
    const origin = this.identity.origin;
    const seq = this.seq_ + 1;
    const slots: Slot[] = [];
    for (const [key, seconds] of pending.byKey) {
      const increments = new Map<number, number>(); // start + tier → hits
      for (const [second, n] of seconds) {
        for (const tier of ALL_TIERS) {
          const index = bucketStart(tier, second) + tier;
          increments.set(index, (increments.get(index) ?? 0) + n);
        }
      }
      for (const [index, n] of increments) {
        const tier = (index % 1000) as Tier;
        const start = index - tier;
        slots.push({ origin, key, tier, start, count: this.state.get(origin, key, tier, start) + n, seq });
      }
    }
    const stopTimer = metrics?.storeWriteSeconds.startTimer();
    try {
      await store.commit({ slots, meta: new Map([[SEQ_META, String(seq)]]) });
    } catch (error) {
      metrics?.storeWriteErrors.inc();
      this.options.logger.error({ err: error, hits: pending.hits }, 'store write failed; the batch was refused');
      throw error;
    } finally {
      stopTimer?.();
    }
    for (const slot of slots) this.state.join(slot);
    this.seq_ = seq;
    if (metrics !== undefined) {
      metrics.hitsAccepted.inc(pending.hits);
      metrics.storeBatchHits.observe(pending.hits);
      metrics.storeBatchSlots.observe(slots.length);
      metrics.keys.set(this.state.keyCount);
    }
  }
}
