import { ReplicaState } from '../crdt/replica-state.ts';
import type { Retention } from '../crdt/retention.ts';
import { ALL_TIERS, bucketStart } from '../crdt/tiers.ts';
import { LIFETIME_PLAN, planWindow, type WindowPlan } from '../crdt/window-plan.ts';
import { ReplicatedState } from '../gossip/replicated-state.ts';
import type { Changes, HitRow, LocalCommit, ReplicaView } from '../gossip/replica-view.ts';
import type { VersionEntry, VersionVector } from '../gossip/messages.ts';
import { AT_META, Checkpointer, SEQ_META, VV_META } from './checkpointer.ts';
import type { Clock } from './clock.ts';
import { DirtySlots } from './dirty-slots.ts';
import { GroupCommit, type PendingHits } from './group-commit.ts';
import { loadOrCreateIdentity, type Identity } from './identity.ts';
import { decodeLogRecord, encodeLogRecord } from './log-record.ts';
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
  /** Default 1. */
  readonly n?: number;
}

export interface ReplicaOptions {
  readonly store: Store;
  readonly id: string;
  readonly retention: Retention;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics?: NodeMetrics;
  readonly gcIntervalMs?: number;
  /** How often the write-ahead log is turned into slots. */
  readonly checkpointIntervalMs?: number;
}

/** The replica is shutting down and takes no more hits. */
export class ShuttingDownError extends Error {
  readonly code = 'HITMESH_SHUTTING_DOWN';
}

/**
 * One replica: the in-memory state rebuilt from the store, the hit path
 * through group commit, window counts, retention.
 *
 * Every batch of local hits gets the next sequence number of this origin and
 * is written as one small write-ahead log record; it is then applied to the
 * state and acknowledged. A checkpoint every second writes the changed slots
 * (absolute counts, each with the seq of its last change, so gossip can ask
 * "everything of origin O after seq s") and drops the records they cover.
 */
export class Replica {
  private readonly commits: GroupCommit;
  private readonly gc: RetentionGc;
  private readonly checkpointer: Checkpointer;
  private readonly windowPlans = new Map<number, { second: number; plan: WindowPlan }>();
  private accepting = true;
  private lastStamp = 0;
  private seq_: number;
  private lastAt: number;
  private readonly commitListeners: ((commit: LocalCommit) => void)[] = [];
  /** The state with its version vector: what gossip reads and writes through `view`. */
  readonly replicated: ReplicatedState;

  private constructor(
    private readonly options: ReplicaOptions,
    readonly identity: Identity,
    readonly state: ReplicaState,
    private readonly dirty: DirtySlots,
    seq: number,
    lastAt: number,
    vv: VersionVector,
  ) {
    this.seq_ = seq;
    this.lastAt = lastAt;
    this.replicated = new ReplicatedState(identity.origin, state);
    this.replicated.restore(vv);
    this.replicated.noteLocal(seq, lastAt);
    this.checkpointer = new Checkpointer({
      state,
      store: options.store,
      dirty,
      origin: identity.origin,
      seq: () => this.seq_,
      lastAt: () => this.lastAt,
      remoteVector: () => {
        const vv: Record<string, VersionEntry> = { ...this.replicated.versionVector() };
        delete vv[identity.origin];
        return vv;
      },
      intervalMs: options.checkpointIntervalMs ?? 5_000,
      logger: options.logger,
      metrics: options.metrics,
    });
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
    const { identity, created, state, dirty, slots, replayed, seq, lastAt, vv } = loaded;
    const replica = new Replica(options, identity, state, dirty, seq, lastAt, vv);
    options.metrics?.keys.set(state.keyCount);
    logger.info({ origin: identity.origin, created, slots, replayed, keys: state.keyCount, seq }, created ? 'new replica created' : 'replica reopened');
    await replica.checkpointer.run();
    await replica.gc.runOnce();
    replica.checkpointer.start();
    replica.gc.start();
    return replica;
  }

  /**
   * Rebuild from the store: every slot, then the log records not yet
   * checkpointed. A record is applied to a slot only if the slot's stored seq
   * is older than the record, so nothing is counted twice whatever point a
   * crash interrupted a checkpoint at.
   */
  private static async load(store: Store, id: string, now: number) {
    const { identity, created } = await loadOrCreateIdentity(store, id, now);
    const origin = identity.origin;
    const records: { seq: number; record: string }[] = [];
    for await (const record of store.scanLog()) records.push(record);
    // The stored seq of each own slot the log touches (0: not stored).
    const storedSeq = new Map<string, Map<number, number>>();
    for (const { record } of records) {
      for (const [key, second] of decodeLogRecord(record)) {
        const slots = storedSeq.get(key) ?? new Map<number, number>();
        for (const tier of ALL_TIERS) slots.set(bucketStart(tier, second) + tier, 0);
        storedSeq.set(key, slots);
      }
    }
    const state = new ReplicaState();
    let slots = 0;
    for await (const slot of store.scanSlots()) {
      state.join(slot, slot.seq);
      slots++;
      const touched = slot.origin === origin ? storedSeq.get(slot.key) : undefined;
      if (touched?.has(slot.start + slot.tier) === true) touched.set(slot.start + slot.tier, slot.seq);
    }
    const dirty = new DirtySlots();
    let seq = Number((await store.getMeta(SEQ_META)) ?? '0');
    let lastAt = Number((await store.getMeta(AT_META)) ?? '0');
    const vv = JSON.parse((await store.getMeta(VV_META)) ?? '{}') as VersionVector;
    for (const { seq: recordSeq, record } of records) {
      for (const [key, second, n] of decodeLogRecord(record)) {
        lastAt = Math.max(lastAt, second);
        for (const tier of ALL_TIERS) {
          const start = bucketStart(tier, second);
          if ((storedSeq.get(key)?.get(start + tier) ?? 0) >= recordSeq) continue;
          state.add(origin, key, tier, start, n, recordSeq);
          dirty.mark(key, second, recordSeq);
        }
      }
      seq = Math.max(seq, recordSeq);
    }
    return { identity, created, state, dirty, slots, replayed: records.length, seq, lastAt, vv };
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
    const at = this.stamp();
    const second = bucketStart(0, at);
    await this.commits.add((pending) => {
      pending.add(key, second, n);
      pending.maxAt = at;
    });
    return at;
  }

  /** Count a batch of hits, all in one commit; resolves with their sum once durable. */
  async hits(items: readonly HitItem[]): Promise<number> {
    this.assertAccepting();
    if (items.length === 0) return 0;
    const at = this.stamp();
    const second = bucketStart(0, at);
    let total = 0;
    await this.commits.add((pending) => {
      pending.maxAt = at;
      for (const item of items) {
        const n = item.n ?? 1;
        pending.add(item.key, second, n);
        total += n;
      }
    });
    return total;
  }

  plan(range: CountRange): WindowPlan {
    if (range.kind === 'all') return LIFETIME_PLAN;
    const now = this.options.clock.now();
    if (range.kind === 'range') return planWindow(range.from, range.to, now, this.options.retention);
    // A window of whole seconds plans the same within one second: reuse it.
    const second = Math.floor(now / 1000);
    const cached = range.ms % 1000 === 0 ? this.windowPlans.get(range.ms) : undefined;
    if (cached?.second === second) return cached.plan;
    const plan = planWindow(now - range.ms, now + 1, now, this.options.retention);
    if (range.ms % 1000 === 0) {
      if (this.windowPlans.size >= 64) this.windowPlans.clear(); // windows are the caller's choice: stay small
      this.windowPlans.set(range.ms, { second, plan });
    }
    return plan;
  }

  count(key: string, plan: WindowPlan): number {
    return this.state.sum(key, plan);
  }

  /** Stop taking hits, write what is pending and a last checkpoint, stop the background work and close the store. */
  async close(): Promise<void> {
    this.accepting = false;
    await this.commits.drain();
    await this.gc.stop();
    await this.checkpointer.stop();
    if (this.options.store.isOpen) {
      await this.checkpointer.run();
      await this.options.store.close();
    }
  }

  /** Write a checkpoint now (tests; shutdown does it itself). */
  checkpoint(): Promise<void> {
    return this.checkpointer.run();
  }

  /**
   * The time a hit is counted at: the clock, but never behind an earlier
   * stamp, so this origin's stamps follow its seqs (anti-entropy relies on it).
   */
  private stamp(): number {
    this.lastStamp = Math.max(this.options.clock.now(), this.lastStamp, this.lastAt);
    return this.lastStamp;
  }

  /** Called after every durable local batch with its new counts (gossip pushes them). */
  onLocalCommit(listener: (commit: LocalCommit) => void): void {
    this.commitListeners.push(listener);
  }

  /** The replica as gossip sees it: remote changes go through here to be made durable. */
  get view(): ReplicaView {
    return {
      origin: this.identity.origin,
      versionVector: () => this.replicated.versionVector(),
      changesSince: (origin, since) => this.replicated.changesSince(origin, since),
      apply: (origin, changes, complete, to) => this.applyRemote(origin, changes, complete, to),
    };
  }

  private applyRemote(origin: string, changes: Changes, complete: { from: number; to: VersionEntry } | undefined, to?: VersionEntry): Changes {
    if (origin === this.identity.origin) return { hits: [], slots: [] }; // nobody knows our own slots better than we do
    const raised = this.replicated.apply(origin, changes, complete, to);
    const seq = (complete?.to ?? to)?.[0] ?? 0;
    for (const row of raised.hits) {
      for (const tier of ALL_TIERS) this.dirty.markRemote(origin, row.key, bucketStart(tier, row.second) + tier, seq);
    }
    for (const row of raised.slots) this.dirty.markRemote(origin, row.key, row.start + row.tier, seq);
    return raised;
  }

  private assertAccepting(): void {
    if (!this.isAccepting) throw new ShuttingDownError('this node is shutting down and takes no hits');
  }

  /** Write the batch as one log record, then make it visible: the callers are acknowledged after this. */
  private async writeBatch(pending: PendingHits): Promise<void> {
    const { store, metrics } = this.options;
    const origin = this.identity.origin;
    const seq = this.seq_ + 1;
    const stopTimer = metrics?.storeWriteSeconds.startTimer();
    try {
      await store.commit({ slots: [], meta: NO_META, log: { seq, record: encodeLogRecord(pending) } });
    } catch (error) {
      metrics?.storeWriteErrors.inc();
      this.options.logger.error({ err: error, hits: pending.hits }, 'store write failed; the batch was refused');
      throw error;
    } finally {
      stopTimer?.();
    }
    const rows: HitRow[] = [];
    for (const [second, keys] of pending.bySecond) {
      for (const [key, n] of keys) {
        const counts = this.state.addHit(origin, key, second, n, seq);
        this.dirty.mark(key, second, seq);
        if (this.commitListeners.length > 0) rows.push({ key, second, counts });
      }
    }
    this.seq_ = seq;
    this.lastAt = Math.max(this.lastAt, pending.maxAt);
    this.replicated.noteLocal(seq, this.lastAt);
    for (const listener of this.commitListeners) listener({ seq, at: this.lastAt, hits: rows });
    if (metrics !== undefined) {
      metrics.hitsAccepted.inc(pending.hits);
      metrics.storeBatchHits.observe(pending.hits);
      metrics.keys.set(this.state.keyCount);
    }
  }
}

const NO_META: ReadonlyMap<string, string> = new Map();
