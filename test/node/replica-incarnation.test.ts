/**
 * A replica's seqs, stamps and incarnations (findings 3, 6 and 8 of "Counts
 * you can trust"), on real LevelDB files:
 * - a key's seq raised by a delta that raised no count is made durable, so a
 *   restarted node still offers that key to a peer behind it;
 * - a clock that jumps back does not pin later hits to its old future stamp,
 *   across restarts too: the replica goes on as a new incarnation;
 * - retention never deletes on the word of a clock that jumped ahead;
 * - a new incarnation keeps every count, and new hits go to the new origin.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_RETENTION } from '../../crdt/retention.ts';
import { LIFETIME_PLAN } from '../../crdt/window-plan.ts';
import { ManualClock } from '../../node/clock.ts';
import { LevelStore } from '../../node/level-store.ts';
import { Replica } from '../../node/replica.ts';

const logger = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 10, 28, 12, 0, 0, 250);
const HOUR = 3_600_000;
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function store(): Promise<() => LevelStore> {
  const dir = await mkdtemp(join(tmpdir(), 'hitmesh-incarnation-'));
  dirs.push(dir);
  return () => new LevelStore(dir);
}

const open = (make: () => LevelStore, clock: ManualClock): Promise<Replica> => Replica.open({ store: make(), id: 'n1', retention: DEFAULT_RETENTION, clock, logger, maxBackwardJumpMs: 1_000 });
const total = (r: Replica, key = 'a'): number => r.count(key, LIFETIME_PLAN);

describe('a key seq raised without a count', () => {
  it('survives a restart: the key is still offered to a peer that holds less', async () => {
    const make = await store();
    const clock = new ManualClock(T0);
    const r = await open(make, clock);
    const second = T0 - (T0 % 1000);
    const row = { key: 'k', second, counts: [1, 1, 1, 1, 1] as const };
    // A complete delta 0 → 5 whose count was produced later (a relayer read its current state)...
    r.view.apply('b#1', { hits: [row], slots: [] }, { from: 0, to: [5, second] }, [5, second]);
    // ...then the origin's own push of batches 6-8, which changed k: same count, higher seq.
    r.view.apply('b#1', { hits: [row], slots: [] }, { from: 5, to: [8, second] }, [8, second]);
    // As a peer link drains a repair: a key at a time, waiting while the repair reads the store (a key may come in parts).
    const offered = async (replica: Replica): Promise<string[]> => {
      const keys = new Set<string>();
      const it = replica.view.changedKeys('b#1', [6, second]);
      for (;;) {
        if (it.ready === false) {
          await new Promise((resolve) => setImmediate(resolve));
          continue;
        }
        const step = it.next();
        if (step.done === true) return [...keys];
        keys.add(step.value.key);
      }
    };
    expect(await offered(r)).toEqual(['k']);
    await r.close();
    const again = await open(make, clock);
    expect(again.replicated.entry('b#1')?.[0]).toBe(8);
    expect(await offered(again), 'after a restart, k is still offered to a peer holding b#1 up to 6').toEqual(['k']);
    await again.close();
  });
});

describe('clock jumps', () => {
  it('a clock that jumps ahead and back: later hits are stamped with the clock again, under a new incarnation, and every hit counts once', async () => {
    const make = await store();
    const clock = new ManualClock(T0);
    const r = await open(make, clock);
    const first = r.identity.origin;
    expect(await r.hit('a', 1)).toBe(T0);
    clock.jump(6 * HOUR);
    expect(await r.hit('a', 1)).toBe(T0 + 6 * HOUR);
    clock.jump(-6 * HOUR);
    clock.advance(10);
    const after = await r.hit('a', 1);
    expect(after, 'not pinned to the future stamp').toBe(T0 + 10);
    expect(r.identity.origin).not.toBe(first);
    expect(r.identity.id).toBe('n1');
    expect(total(r)).toBe(3);
    // Small steps back are absorbed: the stamp waits for the clock, the incarnation stays.
    const second = r.identity.origin;
    clock.jump(-500);
    expect(await r.hit('a', 1)).toBe(T0 + 10);
    expect(r.identity.origin).toBe(second);
    await r.close();
    const again = await open(make, clock);
    expect(again.identity.origin).toBe(second);
    expect(total(again)).toBe(4);
    expect(again.replicated.entry(first)?.[0], 'the old incarnation is held completely').toBe(2);
    await again.close();
  });

  it('the same across a restart: the stored last stamp is far ahead of the clock it restarts with', async () => {
    const make = await store();
    const clock = new ManualClock(T0 + 6 * HOUR);
    const r = await open(make, clock);
    const first = r.identity.origin;
    await r.hit('a', 2);
    await r.close();
    clock.jump(-6 * HOUR);
    const again = await open(make, clock);
    expect(await again.hit('a', 1)).toBe(T0);
    expect(again.identity.origin).not.toBe(first);
    expect(total(again)).toBe(3);
    await again.close();
  });

  it('retention does not delete on the word of a clock that jumped ahead; once time has really passed, it does', async () => {
    const make = await store();
    const clock = new ManualClock(T0);
    const r = await open(make, clock);
    await r.hit('a', 5);
    const second = T0 - (T0 % 1000);
    const exact = (): number => r.count('a', r.plan({ kind: 'range', from: second, to: second + 1000 }));
    expect(exact()).toBe(5);
    clock.jump(3 * HOUR); // past the 1 s tier's 2 h, on the wall clock only
    expect(await r.expire()).toBe(0);
    clock.jump(-3 * HOUR);
    expect(exact(), 'the one-second bucket is still there').toBe(5);
    clock.advance(3 * HOUR); // now it really is 3 h later
    expect(await r.expire()).toBeGreaterThan(0);
    await r.close();
  });
});

describe('a new incarnation', () => {
  it('keeps every count; new hits go to the new origin; the old one is held completely; all of it survives a restart', async () => {
    const make = await store();
    const clock = new ManualClock(T0);
    const r = await open(make, clock);
    const old = r.identity.origin;
    await Promise.all([r.hit('a', 1), r.hit('b', 2)]);
    await r.hit('a', 3);
    const oldSeq = r.seq;
    await r.startNewIncarnation('test');
    expect(r.identity.origin).not.toBe(old);
    expect(r.seq).toBe(0);
    expect([total(r, 'a'), total(r, 'b')]).toEqual([4, 2]);
    await r.hit('a', 10);
    expect(r.seq).toBe(1);
    expect(r.state.get(r.identity.origin, 'a', 4, 0)).toBe(10);
    expect(r.state.get(old, 'a', 4, 0)).toBe(4);
    await r.close();
    const again = await open(make, clock);
    expect(again.identity.origin).toBe(r.identity.origin);
    expect([total(again, 'a'), total(again, 'b')]).toEqual([14, 2]);
    expect(again.replicated.entry(old)?.[0]).toBe(oldSeq);
    expect(again.seq).toBe(1);
    await again.close();
  });
});
