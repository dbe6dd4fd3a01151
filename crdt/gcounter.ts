/**
 * A grow-only counter: one non-decreasing count per replica. The value is the
 * sum; merge is the pointwise max, so it is commutative, associative and
 * idempotent and a delta carrying absolute counts can be applied any number of
 * times, in any order.
 */
export type ReplicaId = string;
export type GCounter = ReadonlyMap<ReplicaId, number>;

export const emptyGCounter: GCounter = new Map();

export function increment(counter: GCounter, replica: ReplicaId, n: number): GCounter {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`increment must be a non-negative integer, got ${n}`);
  const next = new Map(counter);
  next.set(replica, (counter.get(replica) ?? 0) + n);
  return next;
}

export function merge(a: GCounter, b: GCounter): GCounter {
  const next = new Map(a);
  for (const [replica, count] of b) {
    if (count > (next.get(replica) ?? 0)) next.set(replica, count);
  }
  return next;
}

export function value(counter: GCounter): number {
  let sum = 0;
  for (const count of counter.values()) sum += count;
  return sum;
}

/** a ≤ b in the lattice order: b has seen everything a has. */
export function leq(a: GCounter, b: GCounter): boolean {
  for (const [replica, count] of a) {
    if (count > (b.get(replica) ?? 0)) return false;
  }
  return true;
}

export function equals(a: GCounter, b: GCounter): boolean {
  return leq(a, b) && leq(b, a);
}
