import type { ReplicaState } from '../crdt/replica-state.ts';
import { TopRanking } from './top-ranking.ts';
import type { Retention } from '../crdt/retention.ts';
import { Tier, bucketStart } from '../crdt/tiers.ts';
import { nodeIdOf } from '../crdt/names.ts';
import { TOKEN_KEPT } from '../crdt/token-state.ts';
import { LIFETIME_PLAN, planWindow, type WindowPlan } from '../crdt/window-plan.ts';
import type { VersionEntry, VersionVector } from '../gossip/messages.ts';
import type { HitRow, LocalCommit, ReplicaView } from '../gossip/replica-view.ts';
import { ReplicatedState } from '../gossip/replicated-state.ts';
import { ColdRepair } from './cold-repair.ts';
import { ColdSlots } from './cold-slots.ts';
import { AT_META, Checkpointer, SEQ_META, VV_META } from './checkpointer.ts';
import type { Clock } from './clock.ts';
import type { DirtySlots } from './dirty-slots.ts';
import type { DirtyTokens } from './dirty-tokens.ts';
import { checkCountLimit, type CountLedger } from './count-limit.ts';
import { GroupCommit, type PendingHits } from './group-commit.ts';
import { planTokens, type TokenLookup, type TokenPlan } from './token-plan.ts';
import type { TokenChange } from '../gossip/replica-view.ts';
import { IDENTITY_META, newIncarnation, type Identity } from './identity.ts';
import { encodeLogRecord } from './log-record.ts';
import type { Logger } from './logger.ts';
import type { NodeMetrics } from './metrics.ts';
import { loadReplica } from './replica-load.ts';
import { RetentionClock } from './retention-clock.ts';
import { DEFAULTS } from './config.ts';
import { RetentionGc, expiryHorizons } from './retention-gc.ts';
import { FailStopStore } from './fail-stop-store.ts';
import type { Store } from './store.ts';
import { StoreRecovery, reportRecoveryProblems } from './store-recovery.ts';

/** What a count covers: the last `ms`, an explicit [from, to), or everything. */
export type CountRange =
  | { readonly kind: 'window'; readonly ms: number }
  | { readonly kind: 'range'; readonly from: number; readonly to: number }
  | { readonly kind: 'all' };

/** What a hit request returns with the batch that made it durable: the origin and seq peers must hold for an ack. */
export interface Committed<T> {
  readonly value: T;
  readonly origin: string;
  readonly seq: number;
  /** Instead of a batch to wait for: how many members are known to hold the hits (a repeat of a token another node counted). */
  readonly holders?: number;
}

export interface HitItem {
  readonly key: string;
  /** Default 1. */
  readonly n?: number;
  /** An idempotency token: the item counts once however often it is sent. */
  readonly id?: string;
}

/** What a hit with an idempotency token came to: counted now, or a repeat of one counted before (`at` is then that one's). */
export interface TokenOutcome {
  readonly at: number;
  readonly duplicate: boolean;
}

/** What a batch came to: hits counted, and items that repeated a token already counted. */
export interface BatchOutcome {
  readonly accepted: number;
  readonly duplicates: number;
  /** The stamp of the hits counted (0: none). */
  readonly at: number;
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
  /** The first wait before reopening a store whose write failed (doubled per failed try, at most 10 s); default 250 ms. */
  readonly storeRetryMs?: number;
  /** A clock that goes back further than this makes the replica a new incarnation instead of stamping hits in the past's future. */
  readonly maxBackwardJumpMs?: number;
  /** Tokens held at most before new ones are refused; default --max-tokens's. */
  readonly maxTokens?: number;
  /** Keep the ranking index (default true). */
  readonly topIndex?: boolean;
  /** See --top-exact-keys. */
  readonly topExactKeys?: number;
  /** See --hot-horizon (default: the 1 s tier's retention); Infinity keeps every bucket in memory. */
  readonly hotHorizonMs?: number;
  /** See --cold-cache. */
  readonly coldCacheEntries?: number;
}

/** How long buckets stay in memory after they end (undefined: for good). */
function hotHorizon(options: ReplicaOptions): number | undefined {
  const ms = options.hotHorizonMs ?? options.retention[Tier.second];
  return Number.isFinite(ms) ? ms : undefined;
}

/** The replica is shutting down and takes no more hits. */
export class ShuttingDownError extends Error {
  readonly code = 'HITMESH_SHUTTING_DOWN';
}

/** The replica takes no hits for now (clock skew, a new incarnation that failed, a failed store); the message says why. */
export class HitsRefusedError extends Error {
  readonly code = 'HITMESH_HITS_REFUSED';
}

/**
 * The store failed the write of this batch. Its hits are not counted here,
 * but the bytes may have reached the disk: if the node is killed before it
 * reopens its store (which drops such a record), they may count after the
 * restart. So this is neither an acknowledgement nor a refusal (500).
 */
export class HitWriteFailedError extends Error {
  readonly code = 'HITMESH_HIT_WRITE_FAILED';
}

/**
 * One replica: the in-memory state rebuilt from the store, the hit path
 * through group commit, window counts, retention.
 *
 * Every batch of local hits gets the next sequence number of this origin and
 * is written as one small write-ahead log record; it is then applied to the
 * state and acknowledged. A checkpoint every few seconds writes the changed
 * slots (absolute counts, each with the seq of its last change) and drops the
 * records they cover.
 *
 * A replica can become a new incarnation while it runs: when its clock went
 * back (its stamps must follow its seqs), and when a peer holds more of its
 * origin than its store does (a power loss or a restored backup). The old
 * origin is then one origin among others, held up to where it stopped.
 */
export class Replica {
  private readonly commits: GroupCommit;
  private readonly gc: RetentionGc;
  private readonly checkpointer: Checkpointer;
  private readonly windowPlans = new Map<number, { second: number; plan: WindowPlan }>();
  readonly retentionClock: RetentionClock;
  private accepting = true;
  private identity_: Identity;
  private lastStamp: number;
  private seq_: number;
  private lastAt: number;
  private readonly commitListeners: ((commit: LocalCommit) => void)[] = [];
  private readonly rotationListeners: ((identity: Identity, reason: string) => void)[] = [];
  private hold: Promise<void> | undefined;
  private rotating: Promise<void> | undefined;
  /** Why hits are refused right now (set by replication's clock guard), or undefined. */
  private refusal: (() => string | undefined) | undefined;
  private broken: string | undefined;
  /** Goes up whenever a token is added to a batch or comes from a peer: a plan of tokens made before is then made again. */
  private tokenEpoch = 0;
  /** Hits added to a batch and not yet in the state (see checkCountLimit). */
  private unapplied = 0;
  private readonly countLedger: CountLedger = {
    lifetimeTotal: (key) => this.state.lifetimeTotal(key),
    pendingFor: (key) => this.commits.pendingFor(key),
    unapplied: () => this.unapplied,
  };
  /** A new incarnation that could not be written because the store failed: written once it is reopened. */
  private pendingRotation: string | undefined;
  /** The store being put back in step after a reopen (see resync). */
  private resyncing: Promise<void> | undefined;
  /** Every write goes through here: the first failed one stops the store until `recovery` has reopened it. */
  private readonly store: FailStopStore;
  private readonly recovery: StoreRecovery;
  /** Buckets past the hot horizon, read from the store through a bounded cache. */
  readonly coldSlots: ColdSlots;
  /** The state with its version vector: what gossip reads and writes through `view`. */
  readonly replicated: ReplicatedState;
  /** `GET /top` (see TopRanking). */
  readonly ranking: TopRanking;

  private constructor(
    private readonly options: ReplicaOptions,
    identity: Identity,
    readonly state: ReplicaState,
    private readonly dirty: DirtySlots,
    private readonly dirtyTokens: DirtyTokens,
    seq: number,
    lastAt: number,
    vv: VersionVector,
  ) {
    this.store = new FailStopStore(options.store);
    this.recovery = new StoreRecovery({
      store: this.store,
      resync: () => this.resync(),
      logger: options.logger,
      metrics: options.metrics,
      firstRetryMs: options.storeRetryMs,
    });
    this.coldSlots = new ColdSlots(this.store, options.coldCacheEntries ?? DEFAULTS.coldCacheEntries, options.logger, options.metrics?.registry);
    state.attachColdReader(this.coldSlots.read);
    this.ranking = new TopRanking(state, options.topExactKeys ?? DEFAULTS.topExactKeys, (method) => options.metrics?.topRankings.labels(method).inc());
    this.identity_ = identity;
    this.seq_ = seq;
    this.lastAt = lastAt;
    this.lastStamp = lastAt;
    // Every remote change that raised a count or a key's seq is made durable at the next checkpoint.
    this.replicated = new ReplicatedState(
      identity.origin,
      state,
      (origin, key, tier, start, changedSeq) => {
        if (origin !== this.identity_.origin) dirty.markRemote(origin, key, tier, start, changedSeq);
      },
      (origin, change, kept) => {
        this.tokenEpoch++;
        dirtyTokens.add(origin, change);
        if (kept) dirtyTokens.keep(change.key, change.token);
      },
      // Once buckets can be evicted, every repair may need the store: the line can pass the peer's time while one runs.
      (origin, since) => (state.cold.active ? new ColdRepair({ state, store: this.store, logger: options.logger }, origin, since?.[0] ?? 0, since?.[1] ?? Number.NEGATIVE_INFINITY) : undefined),
    );
    this.replicated.restore(vv);
    this.replicated.noteLocal(seq, lastAt);
    this.retentionClock = new RetentionClock(options.clock);
    this.checkpointer = new Checkpointer({
      state,
      store: this.store,
      dirty,
      dirtyTokens,
      origin: () => this.identity_.origin,
      seq: () => this.seq_,
      lastAt: () => this.lastAt,
      remoteVector: () => this.remoteVector(),
      intervalMs: options.checkpointIntervalMs ?? 5_000,
      logger: options.logger,
      metrics: options.metrics,
      written: (slots) => this.coldSlots.written(slots, (tier, start) => state.cold.isCold(tier, start)),
    });
    this.commits = new GroupCommit((pending) => this.writeBatch(pending));
    this.gc = new RetentionGc({
      state,
      store: this.store,
      retention: options.retention,
      clock: this.retentionClock,
      intervalMs: options.gcIntervalMs ?? 60_000,
      logger: options.logger,
      metrics: options.metrics,
      hotHorizonMs: hotHorizon(options),
      unwritten: (key, origin) => this.checkpointer.holdsUnwritten(origin, key),
    });
  }

  /** Open the store, load or create the identity and rebuild the counts from disk. */
  static async open(options: ReplicaOptions): Promise<Replica> {
    const { store, clock, logger, metrics } = options;
    if (!store.isOpen) await store.open();
    let loaded: Awaited<ReturnType<typeof loadReplica>>;
    try {
      // What the first retention pass would drop at once is not read at all (the retention clock believes the wall clock at start).
      const now = clock.now();
      loaded = await loadReplica(store, options.id, now, options.retention[Tier.second], options.topIndex ?? true, expiryHorizons(now, options.retention), hotHorizon(options));
    } catch (error) {
      await store.close(); // leave the directory unlocked for whoever comes next
      throw error;
    }
    const { identity, created, state, dirty, dirtyTokens, slots, replayed, seq, lastAt, vv, corrupt } = loaded;
    for (const record of corrupt) {
      metrics?.storeCorruptRecords.labels(record.kind).inc();
      logger.warn({ corrupt: record }, 'skipped a corrupt record in the store');
    }
    reportRecoveryProblems(store.recoveryProblems ?? [], logger, metrics);
    const replica = new Replica(options, identity, state, dirty, dirtyTokens, seq, lastAt, vv);
    metrics?.keys.set(state.keyCount);
    logger.info({ origin: identity.origin, created, slots, replayed, corrupt: corrupt.length, keys: state.keyCount, seq }, created ? 'new replica created' : 'replica reopened');
    await replica.checkpointer.run();
    replica.checkpointer.start();
    replica.gc.start(); // its first pass in the background: what it would drop from memory was never loaded
    return replica;
  }

  get identity(): Identity {
    return this.identity_;
  }

  get seq(): number {
    return this.seq_;
  }

  get isAccepting(): boolean {
    // A store being reopened after a failure is not a closed one: readiness says why hits are refused.
    return this.accepting && this.broken === undefined && (this.store.isOpen || this.recovery.reason !== undefined);
  }

  /** Why hits are not taken right now (held for start-up, clock, a failed incarnation), or undefined. */
  get notTakingHits(): string | undefined {
    if (this.broken !== undefined) return this.broken;
    const storeFailure = this.recovery.reason;
    if (storeFailure !== undefined) return storeFailure;
    if (this.hold !== undefined) return 'waiting to hear from peers what they hold of this node';
    if (this.rotating !== undefined) return 'starting a new incarnation';
    return this.refusal?.();
  }

  get retention(): Retention {
    return this.options.retention;
  }

  now(): number {
    return this.options.clock.now();
  }

  /** Hits wait (they are not refused) until `until` settles: start-up learns from peers what they hold of this origin first. */
  holdHitsUntil(until: Promise<unknown>): void {
    const hold: Promise<void> = until.then(
      () => undefined,
      () => undefined,
    );
    this.hold = hold;
    void hold.then(() => {
      if (this.hold === hold) this.hold = undefined;
    });
  }

  /** Refuse hits (503) while `reason()` says why; the clock guard. */
  refuseHitsWhile(reason: () => string | undefined): void {
    this.refusal = reason;
  }

  /** Count `n` hits of `key` now; resolves with the timestamp once they are durable. */
  async hit(key: string, n: number): Promise<number> {
    return (await this.hitInBatch(key, n)).value;
  }

  /** The same, saying which batch carried the hits (its origin and seq): what `?ack=` waits for peers to hold. */
  hitInBatch(key: string, n: number): Promise<Committed<number>> {
    return this.admit(
      (pending, at) => {
        pending.add(key, bucketStart(0, at), n);
        return at;
      },
      () => checkCountLimit([{ key, n }], this.countLedger),
    );
  }

  /** Count a batch of hits, all in one commit; resolves with their sum once durable. */
  async hits(items: readonly HitItem[]): Promise<number> {
    return (await this.hitsInBatch(items)).value;
  }

  /** The same, saying which batch carried them (an empty list: the last batch, which holds nothing of it). */
  async hitsInBatch(items: readonly HitItem[]): Promise<Committed<number>> {
    if (items.length === 0) {
      this.assertAccepting();
      return { value: 0, origin: this.identity_.origin, seq: this.seq_ };
    }
    return this.admit(
      (pending, at) => {
        let total = 0;
        const second = bucketStart(0, at);
        for (const item of items) {
          const n = item.n ?? 1;
          pending.add(item.key, second, n);
          total += n;
        }
        return total;
      },
      () => checkCountLimit(items, this.countLedger),
    );
  }

  /**
   * Count a batch whose items may carry idempotency tokens (`id`): an item
   * whose token this node knows (counted here, or heard of from a peer)
   * counts nothing again; a token with another n fails the whole batch
   * (TokenConflictError) before anything is counted. A batch of repeats only
   * writes nothing. Resolves once the new hits are durable.
   */
  async hitsOnce(items: readonly HitItem[]): Promise<Committed<BatchOutcome>> {
    for (;;) {
      const plan = planTokens(items, this.tokenLookup);
      if (plan.waitFor !== undefined) {
        await plan.waitFor;
        continue;
      }
      if (plan.fresh.length === 0) {
        this.assertAccepting();
        this.options.metrics?.tokenRepeats.inc(plan.duplicates);
        return { value: { accepted: 0, duplicates: plan.duplicates, at: 0 }, ...this.repeatHolders(items) };
      }
      let checked: TokenPlan = plan;
      const epoch = this.tokenEpoch;
      try {
        const committed = await this.admit(
          (pending, at) => {
            let total = 0;
            const second = bucketStart(0, at);
            for (const item of checked.fresh) {
              const n = item.n ?? 1;
              if (item.id === undefined) pending.add(item.key, second, n);
              else {
                pending.addWithToken(item.key, item.id, at, n);
                this.tokenEpoch++;
              }
              total += n;
            }
            return { accepted: total, duplicates: checked.duplicates, at };
          },
          () => {
            // In the step that adds them: a request for the same token, or a peer's observation, may have come in during the waits.
            if (this.tokenEpoch !== epoch) {
              checked = planTokens(items, this.tokenLookup);
              if (checked.waitFor !== undefined || checked.fresh.length !== plan.fresh.length) throw new TokenSeenError();
            }
            this.checkTokenRoom(checked.fresh);
            checkCountLimit(checked.fresh, this.countLedger);
          },
        );
        this.options.metrics?.tokenRepeats.inc(committed.value.duplicates);
        return committed;
      } catch (error) {
        if (error instanceof TokenSeenError) continue;
        throw error;
      }
    }
  }

  /** One hit of `n` under an idempotency token: counted once, however often it is sent (see hitsOnce). */
  async hitOnce(key: string, n: number, token: string): Promise<Committed<TokenOutcome>> {
    const committed = await this.hitsOnce([{ key, n, id: token }]);
    if (committed.value.duplicates === 0) return { ...committed, value: { at: committed.value.at, duplicate: false } };
    return { ...committed, value: { at: this.state.tokens.first(key, token)?.at ?? 0, duplicate: true } };
  }

  /**
   * What an ack of repeats waits for: this node's current batch when its
   * current origin counted them all (it holds every one of them); two
   * members known to hold them when other nodes counted them all (this one
   * and the one that counted each); else only this node is known to hold
   * them all (a mix, or an earlier incarnation of this node).
   */
  private repeatHolders(items: readonly HitItem[]): { origin: string; seq: number; holders?: number } {
    const { origin, id } = this.identity_;
    let own = 0;
    let others = 0;
    let tokened = 0;
    for (const item of items) {
      if (item.id === undefined) continue;
      tokened++;
      const first = this.state.tokens.first(item.key, item.id);
      if (first?.origin === origin) own++;
      else if (first !== undefined && nodeIdOf(first.origin) !== id) others++;
    }
    if (own === tokened) return { origin, seq: this.seq_ };
    return { origin, seq: this.seq_, holders: others === tokened ? 2 : 1 };
  }

  private readonly tokenLookup: TokenLookup = {
    first: (key, token) => this.state.tokens.repeatOf(key, token, this.options.clock.now()),
    pending: (key, token) => this.commits.pendingToken(key, token),
  };

  private checkTokenRoom(items: readonly HitItem[]): void {
    const max = this.options.maxTokens ?? DEFAULTS.maxTokens;
    let added = 0;
    for (const item of items) if (item.id !== undefined) added++;
    if (added > 0 && this.state.tokens.size + added > max) {
      throw new HitsRefusedError(`this node holds its limit of ${max} idempotency tokens (they are kept for the 1 s tier's retention); hits with a token are refused until older ones expire (see --max-tokens)`);
    }
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
    await this.recovery.stop();
    await this.rotating?.catch(() => undefined);
    if (this.store.failure !== undefined) {
      // One last try to put the store in step: otherwise a failed batch whose bytes reached the disk counts after the restart.
      try {
        await this.store.reopen();
        await this.resync();
      } catch (error) {
        this.options.logger.error({ err: error }, 'could not reopen the failed store at shutdown; a batch whose write failed may count after a restart');
      }
    }
    await this.commits.drain();
    await this.gc.stop();
    await this.checkpointer.stop();
    if (this.store.isOpen) {
      await this.checkpointer.run();
      await this.store.close();
    }
  }

  /** Resolves once a store that failed a write is reopened and in step again (at once if none failed). */
  storeSettled(): Promise<void> {
    return this.recovery.settled();
  }

  /** Run retention now (tests; a timer does it otherwise). Returns the buckets dropped. */
  expire(): Promise<number> {
    return this.gc.runOnce();
  }

  /** Write a checkpoint now (tests; shutdown does it itself). */
  checkpoint(): Promise<void> {
    return this.checkpointer.run();
  }

  /** Called after every durable local batch with its new counts (gossip pushes them). */
  onLocalCommit(listener: (commit: LocalCommit) => void): void {
    this.commitListeners.push(listener);
  }

  /** Called once the replica goes on as a new incarnation. */
  onRotate(listener: (identity: Identity, reason: string) => void): void {
    this.rotationListeners.push(listener);
  }

  /**
   * Go on as a new incarnation (same id, new random origin, seq 0): used when
   * the clock went back, and when peers hold more of this origin than the
   * store does. Hits wait meanwhile. If it cannot be written, the replica
   * takes no hits at all rather than reuse the old origin's seqs.
   */
  startNewIncarnation(reason: string): Promise<void> {
    if (this.resyncing !== undefined) {
      // The store is being put back in step: the resync writes the new incarnation last (two writers of the identity would race).
      this.pendingRotation ??= reason;
      return this.resyncing;
    }
    this.rotating ??= this.rotate(reason).finally(() => (this.rotating = undefined));
    return this.rotating;
  }

  /** The replica as gossip sees it: remote changes go through here to be made durable. */
  get view(): ReplicaView {
    return this.replicated;
  }

  private async rotate(reason: string): Promise<void> {
    try {
      await this.writeNewIncarnation(reason);
    } catch (error) {
      if (this.store.failure !== undefined) {
        // Not broken for good: the store is being reopened, and the reopen writes the new incarnation before any hit.
        this.pendingRotation = reason;
        this.options.logger.error({ err: error, reason }, 'could not start a new incarnation: the store failed; it is written once the store is reopened');
        return;
      }
      this.broken = `could not start a new incarnation (${reason}): ${error instanceof Error ? error.message : String(error)}`;
      this.options.logger.error({ err: error, reason }, 'could not start a new incarnation; refusing hits');
    }
  }

  private writeNewIncarnation(reason: string): Promise<void> {
    return this.checkpointer.paused((checkpoint) => this.writeNewIncarnationPaused(reason, checkpoint));
  }

  private async writeNewIncarnationPaused(reason: string, checkpoint: () => Promise<void>): Promise<void> {
    const { logger, clock } = this.options;
    const store = this.store;
    const old = this.identity_;
    await this.commits.drain();
    await checkpoint();
    if (this.checkpointer.failed) throw new Error('the last checkpoint of the old incarnation failed');
    const identity = newIncarnation(old.id, clock.now());
    const vv = { ...this.remoteVector(), [old.origin]: [this.seq_, this.lastAt] };
    await store.commit({
      slots: [],
      meta: new Map([
        [IDENTITY_META, JSON.stringify(identity)],
        [SEQ_META, '0'],
        [AT_META, '0'],
        [VV_META, JSON.stringify(vv)],
      ]),
    });
    this.identity_ = identity;
    this.seq_ = 0;
    this.lastAt = 0;
    this.lastStamp = 0;
    this.replicated.rotate(identity.origin);
    this.replicated.noteLocal(0, 0);
    this.pendingRotation = undefined;
    logger.warn({ reason, was: old.origin, origin: identity.origin }, 'started a new incarnation');
    this.options.metrics?.incarnations.inc();
    for (const listener of this.rotationListeners) listener(identity, reason);
  }

  /**
   * After a reopen, make the store hold what memory holds before any hit is
   * taken: the batches under way are settled first (no new one starts: hits
   * are refused), then the record of a batch whose write failed is dropped (it
   * may have reached the disk and was never counted), the identity and a
   * checkpoint are written, and a new incarnation the failure held up.
   */
  private resync(): Promise<void> {
    this.resyncing = this.resyncNow().finally(() => (this.resyncing = undefined));
    return this.resyncing;
  }

  private async resyncNow(): Promise<void> {
    // A new incarnation under way since before the failure finishes (or fails, and is pending) first.
    while (this.rotating !== undefined) await this.rotating;
    await this.commits.drain();
    await this.store.dropLogAfter(this.seq_);
    await this.store.commit({ slots: [], meta: new Map([[IDENTITY_META, JSON.stringify(this.identity_)]]) });
    await this.checkpointer.run();
    if (this.checkpointer.failed) throw new Error('the checkpoint after the reopen failed');
    if (this.pendingRotation !== undefined) await this.writeNewIncarnation(this.pendingRotation);
  }

  /**
   * Wait for start-up and for a new incarnation under way, stamp the hits and
   * add them to the next batch, all in one synchronous step after the last
   * wait, so a batch never straddles two incarnations. Resolves with what
   * `fill` returned once the batch is durable.
   */
  private async admit<T>(fill: (pending: PendingHits, at: number) => T, check: () => void): Promise<Committed<T>> {
    this.assertAccepting();
    for (let tries = 0; ; tries++) {
      while (this.hold !== undefined || this.rotating !== undefined) await (this.hold ?? this.rotating);
      this.assertAccepting();
      const refused = this.recovery.reason ?? this.refusal?.();
      if (refused !== undefined) throw new HitsRefusedError(`${refused}: the hit was not counted`);
      const now = this.options.clock.now();
      // Stamps follow seqs (anti-entropy relies on it): never behind an earlier one. A clock far behind them gets a
      // new incarnation, whose stamps start over, instead of every later hit pinned to that past future instant.
      if (tries === 0 && now < this.lastStamp - (this.options.maxBackwardJumpMs ?? 1_000)) {
        void this.startNewIncarnation(`the clock went back ${this.lastStamp - now} ms`);
        continue;
      }
      check(); // in the same synchronous step as the add: nothing else can add to the key in between
      const at = (this.lastStamp = Math.max(now, this.lastStamp, this.lastAt));
      let result!: T;
      let batch!: PendingHits;
      const durable = this.commits.add((pending) => {
        batch = pending;
        const before = pending.hits;
        result = fill(pending, at);
        this.unapplied += pending.hits - before;
        pending.maxAt = Math.max(pending.maxAt, at);
      });
      await durable;
      return { value: result, origin: batch.origin, seq: batch.seq };
    }
  }

  private assertAccepting(): void {
    if (!this.accepting || (!this.store.isOpen && this.recovery.reason === undefined)) throw new ShuttingDownError('this node is shutting down and takes no hits');
    if (this.broken !== undefined) throw new HitsRefusedError(this.broken);
  }

  private remoteVector(): Record<string, VersionEntry> {
    const vv: Record<string, VersionEntry> = { ...this.replicated.versionVector() };
    delete vv[this.identity_.origin];
    return vv;
  }

  /** Write the batch as one log record, then make it visible: the callers are acknowledged after this. */
  private async writeBatch(pending: PendingHits): Promise<void> {
    const { metrics } = this.options;
    const store = this.store;
    const origin = this.identity_.origin;
    const seq = this.seq_ + 1;
    const stopTimer = metrics?.storeWriteSeconds.startTimer();
    try {
      await store.commit({ slots: [], meta: NO_META, log: { seq, record: encodeLogRecord(pending) } });
    } catch (error) {
      metrics?.storeWriteErrors.inc();
      this.options.logger.error({ err: error, hits: pending.hits }, 'store write failed; the batch was not counted');
      throw new HitWriteFailedError(
        `the store failed to write this hit (${error instanceof Error ? error.message : String(error)}): it is not counted, and the node takes no hits until its store is reopened`,
        { cause: error },
      );
    } finally {
      stopTimer?.();
      this.unapplied -= pending.hits;
    }
    const rows: HitRow[] = [];
    for (const [second, keys] of pending.bySecond) {
      for (const [key, n] of keys) {
        const counts = this.state.addHit(origin, key, second, n, seq);
        this.dirty.mark(key, second, seq);
        if (this.commitListeners.length > 0) rows.push({ key, second, counts });
      }
    }
    const tokens: TokenChange[] = [];
    for (const change of pending.tokens()) {
      const joined = this.state.observe(change.key, change.token, { origin, at: change.at, n: change.n });
      if (joined === 0) continue;
      this.dirtyTokens.add(origin, change);
      if ((joined & TOKEN_KEPT) !== 0) this.dirtyTokens.keep(change.key, change.token);
      tokens.push(change);
    }
    this.seq_ = seq;
    pending.seq = seq;
    pending.origin = origin;
    this.lastAt = Math.max(this.lastAt, pending.maxAt);
    this.replicated.noteLocal(seq, this.lastAt);
    for (const listener of this.commitListeners) listener(tokens.length === 0 ? { seq, at: this.lastAt, hits: rows } : { seq, at: this.lastAt, hits: rows, tokens });
    if (metrics !== undefined) {
      metrics.hitsAccepted.inc(pending.hits);
      metrics.storeBatchHits.observe(pending.hits);
      metrics.keys.set(this.state.keyCount);
    }
  }
}

const NO_META: ReadonlyMap<string, string> = new Map();

/** A token came in between planning a batch and adding it: plan again. */
class TokenSeenError extends Error {}
