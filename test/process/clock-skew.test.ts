/**
 * The clock guard and clock jumps with real node processes (SPEC §4), one
 * node's wall clock moved live by libfaketime (its monotonic clock left alone).
 *
 * - One node of three 5 s ahead: more than half of its peers find it off, so
 *   it reports not ready and answers hits 503; the other two (each off from
 *   one peer of two, not more than half) stay ready and take hits. Set right,
 *   it takes hits again. Nothing acknowledged is lost; the counts converge.
 * - A clock that jumps back 2 h on a lone node (one node: no peer to judge
 *   it, so the guard does not stop it first; `--max-clock-skew 1d` would not
 *   do, it also raises the jump threshold to 1 d): later hits are stamped
 *   with the real time in a new incarnation, not pinned 2 h ahead; retention
 *   deleted nothing on the word of the clock that was ahead; every hit counts once.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalNode } from '../../scripts/lib/local-node.ts';
import { clusterOf, converged, countsOf, eventually, killStartedNodes, Ledger, logOf, metric, readyz, sleep, startNodes, type HitOutcome } from './durability-cluster.ts';
import { fakeClockIn, requireFaketime } from './faketime.ts';
import { freePort, getJson, makeTempDir, removeTempDirs } from './node-process.ts';

const KEYS = ['k0', 'k1', 'k2', 'k3', 'k4'];
/** Time the guard may take either way: the filter believes the best of the last 8 samples, one per 1 s sync. */
const GUARD_DEADLINE_MS = 20_000;

let root = '';
/** Probed once; awaited by each test, so that without libfaketime every test fails saying so (none is skipped). */
let faketime: Promise<void> | undefined;
beforeAll(async () => {
  root = await makeTempDir('hitmesh-clock-');
});
const needFaketime = (): Promise<void> => (faketime ??= requireFaketime(root));

afterAll(async () => {
  try {
    await killStartedNodes();
  } finally {
    await removeTempDirs();
  }
});

interface Sent {
  readonly node: string;
  readonly sentAt: number;
  readonly doneAt: number;
  readonly outcome: HitOutcome;
}

/** A hit every ~20 ms on each node until stopped, every outcome kept with when it was sent and answered. */
function steadyLoad(nodes: readonly LocalNode[], ledger: Ledger): { readonly sent: Sent[]; stop(): Promise<void> } {
  const sent: Sent[] = [];
  let running = true;
  const agents = nodes.map(() => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const loops = nodes.map(async (node, i) => {
    for (let n = 0; running; n++) {
      const sentAt = Date.now();
      const outcome = await ledger.hit(node, KEYS[n % KEYS.length] ?? '', agents[i]);
      sent.push({ node: node.id, sentAt, doneAt: Date.now(), outcome });
      await sleep(20);
    }
  });
  return {
    sent,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      for (const agent of agents) agent.destroy();
    },
  };
}

describe.sequential('clocks (libfaketime)', () => {
  it('one node of three 5 s ahead stops taking hits (the others go on), takes them again once set right; nothing acked is lost', { timeout: 75_000 }, async () => {
    await needFaketime();
    const [n1, n2, n3] = await startNodes(root, [{ id: 'n1' }, { id: 'n2' }, { id: 'n3', fakeClock: fakeClockIn(root, 'n3') }]);
    if (n1 === undefined || n2 === undefined || n3 === undefined) throw new Error('three nodes');
    const nodes = [n1, n2, n3];
    await eventually('a full mesh', () => Promise.all(nodes.map(clusterOf)), (all) => all.every((c) => c.peers.length === 2 && c.peers.every((p) => p.state === 'up' && p.clockOffsetMs !== null)));
    const ledger = new Ledger();
    const load = steadyLoad(nodes, ledger);
    try {
      await sleep(1_000);
      const skewedAt = Date.now();
      await n3.setClockOffset(5_000);
      const others = async (): Promise<number[]> => Promise.all([n1, n2].map(async (n) => (await readyz(n)).status));
      const down = await eventually('n3 to report not ready over its clock', async () => ({ n3: await readyz(n3), others: await others() }), (v) => v.n3.status === 503, GUARD_DEADLINE_MS);
      const detectMs = Date.now() - skewedAt;
      expect(down.n3.body).toMatch(/"ready":false/);
      expect(JSON.parse(down.n3.body)).toMatchObject({ reason: expect.stringMatching(/clock/) as unknown });
      expect(down.others, 'n1 and n2 stay ready').toEqual([200, 200]);
      const refused = await new Ledger().hit(n3, 'probe');
      expect(refused).toMatchObject({ kind: 'rejected', status: 503, body: expect.stringMatching(/clock/) as unknown });
      expect(await metric(n3, 'hitmesh_clock_skewed')).toBe(1);
      expect([await metric(n1, 'hitmesh_clock_skewed'), await metric(n2, 'hitmesh_clock_skewed')]).toEqual([0, 0]);
      // The others see n3 5 s ahead of them, in /cluster and in the metric.
      const offsets = await eventually(
        'n1 and n2 to show n3 about 5 s ahead',
        () => Promise.all([n1, n2].map(async (n) => (await clusterOf(n)).peers.find((p) => p.id === 'n3')?.clockOffsetMs ?? null)),
        (all) => all.every((ms) => ms !== null && Math.abs(ms - 5_000) < 500),
        GUARD_DEADLINE_MS,
      );
      const gauge = await metric(n1, 'hitmesh_gossip_clock_offset_seconds', { peer: 'n3' });
      expect(gauge ?? NaN).toBeCloseTo(5, 0);
      await sleep(1_500);
      expect(await others(), 'n1 and n2 still ready').toEqual([200, 200]);

      const fixedAt = Date.now();
      await n3.setClockOffset(0);
      // Ready with both peers up and judged: a node that hears from no peer cannot judge its clock and takes hits too,
      // and the links may blink as the clock steps back.
      await eventually(
        'n3 to be ready again, judging both peers about right',
        () => Promise.all([readyz(n3), clusterOf(n3)]),
        ([r, c]) => r.status === 200 && c.peers.length === 2 && c.peers.every((p) => p.state === 'up' && p.clockOffsetMs !== null && Math.abs(p.clockOffsetMs) < 500),
        GUARD_DEADLINE_MS,
      );
      const recoverMs = Date.now() - fixedAt;
      const readyAgainAt = Date.now();
      await sleep(1_500);
      await load.stop();

      const of = (id: string, from: number, to: number): Sent[] => load.sent.filter((s) => s.node === id && s.sentAt >= from && s.doneAt <= to);
      for (const id of ['n1', 'n2']) {
        const bad = load.sent.filter((s) => s.node === id && s.outcome.kind !== 'acked');
        expect(bad, `${id} refused hits while n3 was skewed`).toEqual([]);
      }
      // n3: every hit answered while it said not ready is a 503; after it is ready again, 200s stamped with the real time.
      const refusedRun = of('n3', skewedAt + detectMs, fixedAt);
      expect(refusedRun.length).toBeGreaterThan(10);
      expect(refusedRun.filter((s) => !(s.outcome.kind === 'rejected' && s.outcome.status === 503))).toEqual([]);
      const after = of('n3', readyAgainAt, Date.now());
      expect(after.length).toBeGreaterThan(10);
      for (const s of after) {
        expect(s.outcome.kind, JSON.stringify(s)).toBe('acked');
        if (s.outcome.kind === 'acked') expect(Math.abs(s.outcome.at - s.doneAt), 'stamped with the real time').toBeLessThan(2_500);
      }
      const unknown = [...ledger.perKey.values()].reduce((sum, t) => sum + t.unknown, 0);
      expect(unknown).toBe(0);
      const counts = await converged(nodes, ledger, KEYS);
      expect(counts, 'every node counts exactly the acknowledged hits').toEqual(ledger.acked(KEYS));
      const aheadAcks = of('n3', skewedAt, skewedAt + detectMs).filter((s) => s.outcome.kind === 'acked').length;
      console.log(
        `[clock-skew] ${JSON.stringify({ detectMs, recoverMs, offsetsSeen: offsets, refusedOnN3: refusedRun.length, ackedOnN3WhileAheadBeforeTheGuard: aheadAcks, acked: ledger.acked(KEYS), n3Incarnations: await metric(n3, 'hitmesh_incarnations_started_total') })}`,
      );
    } catch (error) {
      await load.stop();
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n--- n3 log ---\n${logOf(n3).split('\n').slice(-30).join('\n')}`, { cause: error });
    } finally {
      await Promise.all(nodes.map((n) => n.kill()));
    }
  });

  it('a clock that jumps back 2 h: later hits are stamped with the real time in a new incarnation, retention deletes nothing early, every hit counted once', { timeout: 60_000 }, async () => {
    await needFaketime();
    const clock = fakeClockIn(root, 'solo');
    // A 1 h second tier and a fast GC: had GC believed the clock 2 h ahead, the first hits' seconds would be gone.
    const [solo] = await startNodes(root, [{ id: 'solo', fakeClock: clock, extraArgs: ['--retention-1s', '1h', '--gc-interval', '100ms'] }]);
    if (solo === undefined) throw new Error('one node');
    const ledger = new Ledger();
    const send = async (count: number): Promise<number[]> => {
      const stamps: number[] = [];
      for (let i = 0; i < count; i++) {
        const outcome = await ledger.hit(solo, KEYS[i % KEYS.length] ?? '');
        if (outcome.kind !== 'acked') throw new Error(`hit ${i} not acknowledged: ${JSON.stringify(outcome)}\n${logOf(solo)}`);
        expect(Math.abs(outcome.at - (Date.now() + solo.clockOffsetMs)), `stamped with the node's clock (offset ${solo.clockOffsetMs} ms)`).toBeLessThan(2_000);
        stamps.push(outcome.at);
      }
      return stamps;
    };
    const range = async (stamps: readonly number[]): Promise<number> => {
      const from = Math.floor(Math.min(...stamps) / 1000) * 1000;
      const to = Math.floor(Math.max(...stamps) / 1000) * 1000 + 1000;
      const answer = (await getJson(`${solo.url}/counts?keys=${KEYS.join(',')}&from=${from}&to=${to}`)) as { counts: Record<string, number> };
      return Object.values(answer.counts).reduce((a, b) => a + b, 0);
    };
    const before = await clusterOf(solo);
    const early = await send(25);
    await solo.setClockOffset(2 * 3_600_000);
    const ahead = await send(25);
    await sleep(1_000); // ten GC rounds on the clock that is ahead
    await solo.setClockOffset(0);
    const back = await send(25);

    const now = await clusterOf(solo);
    expect(now.node.incarnation, 'a new incarnation after the jump back').not.toBe(before.node.incarnation);
    expect(now.node.seq, 'its seqs start over').toBe(back.length);
    expect(await metric(solo, 'hitmesh_incarnations_started_total')).toBe(1);
    expect(logOf(solo)).toMatch(/clock went back/);
    expect(await countsOf(solo, KEYS), 'every hit once').toEqual(ledger.acked(KEYS));
    expect(await range(early), 'the first hits, 1 s buckets kept').toBe(early.length);
    expect(await range(ahead), 'the hits stamped 2 h ahead stay there').toBe(ahead.length);
    expect(await range(back), 'the hits after the jump back, at the real time').toBe(back.length);
    expect(await metric(solo, 'hitmesh_expired_buckets_total')).toBe(0);

    // A restart keeps the new incarnation; a peer that joins gets both incarnations' hits, each once.
    await solo.stop();
    await solo.start();
    expect((await clusterOf(solo)).node.incarnation).toBe(now.node.incarnation);
    const peer = new LocalNode({ id: 'peer', port: await freePort(), dataDir: `${root}/peer`, peers: [`127.0.0.1:${solo.options.port}`], logLevel: 'warn' });
    try {
      await peer.start();
      expect(await converged([solo, peer], ledger, KEYS)).toEqual(ledger.acked(KEYS));
      console.log(`[clock-jump] ${JSON.stringify({ before: before.node.incarnation, after: now.node.incarnation, early: early.length, ahead: ahead.length, back: back.length, firstBackAt: back[0], lastAheadAt: ahead.at(-1) })}`);
    } finally {
      await Promise.all([peer.kill(), solo.kill()]);
    }
  });
});
