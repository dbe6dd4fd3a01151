import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import { ManualClock } from '../../node/clock.ts';
import { MemoryStore } from '../../node/memory-store.ts';
import { Replica } from '../../node/replica.ts';
import type { CommitBatch } from '../../node/store.ts';

const logger = pino({ level: 'silent' });
const KEYS = ['a', 'b', 'c'];

/**
 * A store that can be made to die part-way through a write: the next slot
 * batch keeps only its first half (a checkpoint torn between chunks), and
 * nothing after it reaches the disk, as when the process is killed.
 */
class TearableStore extends MemoryStore {
  tornAfter: number | undefined;
  dead = false;

  override async commit(batch: CommitBatch): Promise<void> {
    if (this.dead) throw new Error('process is dead');
    if (this.tornAfter !== undefined && batch.slots.length > 0) {
      this.dead = true;
      await super.commit({ slots: batch.slots.slice(0, Math.ceil(batch.slots.length * this.tornAfter)), meta: new Map() });
      throw new Error('killed mid-checkpoint');
    }
    await super.commit(batch);
  }

  override truncateLog(throughSeq: number): Promise<void> {
    if (this.dead) return Promise.reject(new Error('process is dead'));
    return super.truncateLog(throughSeq);
  }
}

type Step =
  | { kind: 'hits'; key: string; n: number; times: number }
  | { kind: 'tick'; ms: number }
  | { kind: 'checkpoint' }
  | { kind: 'expire' }
  | { kind: 'crash' }
  | { kind: 'tornCheckpoint'; fraction: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('hits' as const), key: fc.constantFrom(...KEYS), n: fc.integer({ min: 1, max: 9 }), times: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 90_000 }) }) },
  // Past the 1 s tier's retention (2 h) and the 1 min tier's (48 h): a restart then skips expired buckets, replayed records included.
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 3_600_000, max: 3 * 86_400_000 }) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'checkpoint' as const }) },
  // A retention pass: it also evicts what a checkpoint wrote past the 2 h hot horizon, so later counts, replays and crashes meet buckets in the store only.
  { weight: 1, arbitrary: fc.constant({ kind: 'expire' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'crash' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('tornCheckpoint' as const), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }) },
);

describe('crash recovery of the write-ahead log and checkpoints', () => {
  it('after any mix of batches, checkpoints, crashes and torn checkpoints, every count equals the acknowledged hits', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 25 }), async (steps) => {
        const disk = new TearableStore();
        const clock = new ManualClock(Date.UTC(2026, 10, 28, 12));
        // Timers far off: the steps decide when checkpoints happen; a crash just drops the instance.
        const open = (): Promise<Replica> =>
          Replica.open({ store: disk, id: 'n1', retention: DEFAULT_RETENTION, clock, logger, checkpointIntervalMs: 1e9, gcIntervalMs: 1e9 });
        let replica = await open();
        const acked = new Map<string, number>();
        const hourly = new Map<string, number>();
        const stamped: { key: string; at: number; n: number }[] = [];
        for (const step of steps) {
          if (step.kind === 'hits') {
            await Promise.all(Array.from({ length: step.times }, () => replica.hit(step.key, step.n)));
            acked.set(step.key, (acked.get(step.key) ?? 0) + step.n * step.times);
            stamped.push({ key: step.key, at: clock.now(), n: step.n * step.times });
          } else if (step.kind === 'tick') {
            clock.advance(step.ms);
          } else if (step.kind === 'checkpoint') {
            await replica.checkpoint();
          } else if (step.kind === 'expire') {
            await replica.expire();
          } else {
            if (step.kind === 'tornCheckpoint') {
              disk.tornAfter = step.fraction;
              await replica.checkpoint();
            }
            disk.tornAfter = undefined;
            disk.dead = false;
            replica = await open(); // the old instance is gone, as after kill -9
          }
        }
        for (const key of KEYS) {
          expect(replica.count(key, replica.plan({ kind: 'all' })), `lifetime ${key}`).toBe(acked.get(key) ?? 0);
          hourly.set(key, replica.count(key, replica.plan({ kind: 'window', ms: 30 * 86_400_000 })));
        }
        // The tiers agree with each other after recovery too: every hit is in the last 30 days.
        for (const key of KEYS) expect(hourly.get(key)).toBe(acked.get(key) ?? 0);
        // And the last hour, read from seconds and minutes, has exactly the hits stamped in it (its start rounded out to the second).
        const from = Math.floor((clock.now() - 3_600_000) / 1_000) * 1_000;
        for (const key of KEYS) {
          const lastHour = stamped.filter((h) => h.key === key && h.at >= from).reduce((sum, h) => sum + h.n, 0);
          expect(replica.count(key, replica.plan({ kind: 'window', ms: 3_600_000 })), `last hour ${key}`).toBe(lastHour);
        }
        const seqBefore = replica.seq;
        await replica.close();
        const reopened = await open();
        expect(reopened.seq).toBe(seqBefore);
        for (const key of KEYS) expect(reopened.count(key, reopened.plan({ kind: 'all' }))).toBe(acked.get(key) ?? 0);
        await reopened.close();
      }),
      { numRuns: 200 },
    );
  });

  it('hits that land while a checkpoint of many chunks is being written, then a crash between any two chunks: nothing lost or doubled', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 3 }), fc.array(fc.integer({ min: 0, max: 999 }), { minLength: 1, maxLength: 30 }), async (crashAfter, hitKeys) => {
        const keys = Array.from({ length: 1_000 }, (_, i) => `k${i}`);
        const acked = new Map<string, number>();
        const pending: Promise<void>[] = [];
        let slotBatches = 0;
        let replica: Replica | undefined;
        const disk = new (class extends TearableStore {
          override async commit(batch: CommitBatch): Promise<void> {
            if (batch.slots.length > 0 && replica !== undefined) {
              // Between the checkpoint's chunks, more hits arrive (on keys whose slots may or may not be written yet).
              for (const i of hitKeys.splice(0, 3)) {
                const key = keys[i] as string;
                pending.push(replica.hit(key, 1).then(() => void acked.set(key, (acked.get(key) ?? 0) + 1), () => undefined));
              }
              if (slotBatches++ === crashAfter) this.dead = true;
              // A real write takes a while: the hits above are written and applied before this chunk lands.
              await new Promise((resolve) => setTimeout(resolve, 2));
            }
            await super.commit(batch);
          }
        })();
        const clock = new ManualClock(Date.UTC(2026, 10, 28, 12));
        const open = (): Promise<Replica> => Replica.open({ store: disk, id: 'n1', retention: DEFAULT_RETENTION, clock, logger, checkpointIntervalMs: 1e9, gcIntervalMs: 1e9 });
        const first = await open();
        await first.hits(keys.map((key) => ({ key })));
        for (const key of keys) acked.set(key, 1);
        replica = first;
        await first.checkpoint();
        await Promise.all(pending);
        replica = undefined;
        disk.dead = false;
        const again = await open();
        for (const key of keys) expect(again.count(key, again.plan({ kind: 'all' })), key).toBe(acked.get(key));
        await again.close();
      }),
      { numRuns: 60 },
    );
  });
});
