/** What the replica tests of idempotency tokens share: a replica whose timers never fire, and a peer's token arriving by gossip. */
import { pino } from 'pino';
import { DEFAULT_RETENTION, type Retention } from '../../crdt/retention.ts';
import type { ManualClock } from '../../node/clock.ts';
import { Replica } from '../../node/replica.ts';
import type { Store } from '../../node/store.ts';

const logger = pino({ level: 'silent' });

/** Node n1 on `store`; checkpoints and retention run only when the test says so. */
export function openReplica(store: Store, clock: ManualClock, retention: Retention = DEFAULT_RETENTION): Promise<Replica> {
  return Replica.open({ store, id: 'n1', retention, clock, logger, checkpointIntervalMs: 1e9, gcIntervalMs: 1e9 });
}

/**
 * `origin` took one hit of `key` under `token` at `at` (its batch 1), and it
 * reaches `replica` by gossip; `complete`: as a delta from seq 0 (the vector
 * moves), else as a partial one.
 */
export function peerTakes(replica: Replica, origin: string, key: string, token: string, at: number, complete = false): void {
  const second = at - (at % 1000);
  replica.view.apply(origin, { hits: [{ key, second, counts: [1, 1, 1, 1, 1] }], slots: [], tokens: [{ key, token, at, n: 1 }] }, complete ? { from: 0, to: [1, at] } : undefined, [1, at]);
}
