/**
 * Seeds from a DNS name (--peers-dns) change under a running membership:
 * what a new answer may drop and what it must keep, and how many of a big
 * answer are dialed at once.
 */
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../gossip/limits.ts';
import { Membership, type MembershipConfig } from '../../gossip/membership.ts';

const CONFIG: MembershipConfig = { static: true, maxPeers: Number.POSITIVE_INFINITY, reconnectMinMs: 100, reconnectMaxMs: 500, forgetAfterMs: 60_000 };
const self = { id: 'me', address: '10.0.0.1:7001' };
const none = new Set<string>();

describe('named seeds', () => {
  it('are dialed besides the fixed ones; the own address among them is not', () => {
    const m = new Membership(self, ['fixed:7001'], CONFIG, () => 0.5);
    m.setNamedSeeds(['10.0.0.1:7001', '10.0.0.2:7001']);
    expect(m.seeds).toEqual(['fixed:7001', '10.0.0.2:7001']);
    expect(m.toDial(0, none, 0).sort()).toEqual(['10.0.0.2:7001', 'fixed:7001']);
  });

  it('an address that led to this node itself stays never dialed though the answer flaps', () => {
    const m = new Membership(self, [], CONFIG, () => 0.5);
    m.setNamedSeeds(['10.0.0.9:7001', '10.0.0.2:7001']);
    expect(m.toDial(0, none, 0).sort()).toEqual(['10.0.0.2:7001', '10.0.0.9:7001']);
    m.dialed('10.0.0.9:7001');
    m.never('10.0.0.9:7001');
    m.setNamedSeeds(['10.0.0.2:7001']);
    m.setNamedSeeds(['10.0.0.9:7001', '10.0.0.2:7001']);
    expect(m.toDial(10_000, new Set(['10.0.0.2:7001']), 1)).toEqual([]);
    expect(m.failedLately('10.0.0.9:7001')).toBe(true);
  });

  it('a static node stops dialing an address the name no longer gives', () => {
    const m = new Membership(self, [], CONFIG, () => 0.5);
    m.setNamedSeeds(['10.0.0.2:7001', '10.0.0.3:7001']);
    for (const a of m.toDial(0, none, 0)) m.backOff(a, 0);
    m.setNamedSeeds(['10.0.0.2:7001']);
    expect(m.toDial(60_000, none, 0)).toEqual(['10.0.0.2:7001']);
  });

  it(`a big answer is dialed at most ${LIMITS.maxPendingDials} at a time`, () => {
    const m = new Membership(self, [], CONFIG, () => 0.5);
    const many = Array.from({ length: 300 }, (_, i) => `10.1.${Math.floor(i / 250)}.${i % 250}:7001`);
    m.setNamedSeeds(many);
    const first = m.toDial(0, none, 0);
    expect(first).toHaveLength(LIMITS.maxPendingDials);
    expect(m.toDial(0, none, 0)).toEqual([]);
    for (const a of first.slice(0, 10)) m.dialed(a);
    expect(m.toDial(0, none, 0)).toHaveLength(10);
  });
});
