/**
 * Start-up and memory at scale: `keys` keys hit 3 times each at random
 * instants over 1 day and over 30 days (seeded straight into the data
 * directory, bench/seed.ts), then a node started on each: time from spawn to
 * /readyz, RSS then and once it is idle, and a 30-day count's latency over
 * every key. The 1-day directory is the baseline the 30-day one is compared
 * with: memory should not grow with history.
 */
import { join } from 'node:path';
import { runLoad, type LoadResult } from './load.ts';
import { freePort, rssMb, startPinned, waitForIdle, type RowOptions } from './processes.ts';
import { seedHistory } from './seed.ts';
import { fmt } from './format.ts';

export interface StartupSide {
  readonly days: number;
  readonly slots: number;
  readonly readyS: number;
  readonly readyMb: number;
  readonly idleMb: number;
  readonly count30d: LoadResult;
}

export async function benchStartup(options: RowOptions & { readonly keys: number }): Promise<StartupSide[]> {
  const sides: StartupSide[] = [];
  for (const days of [1, 30]) {
    const dir = join(options.work, `startup-${days}d`);
    const { slots } = await seedHistory(dir, 'bench', { keys: options.keys, hitsPerKey: 3, spanMs: days * 86_400_000, now: Date.now(), seed: 7 });
    const port = await freePort();
    const spawned = performance.now();
    const server = await startPinned(options.serverCpu, 'node/main.ts', ['--id', 'bench', '--port', String(port), '--data', dir, '--log-level', 'warn'], port);
    const readyS = (performance.now() - spawned) / 1000;
    const pid = server.child.pid ?? 0;
    const readyMb = rssMb(pid);
    await waitForIdle(pid, 120_000);
    const idleMb = rssMb(pid);
    const count30d = await runLoad(
      { url: server.url, method: 'GET', prefix: '/count/k', keys: options.keys, suffix: '?window=30d', durationS: options.durationS, connections: 1 },
      options.loadCpu,
    );
    await server.stop();
    sides.push({ days, slots, readyS, readyMb, idleMb, count30d });
  }
  const [day, month] = sides;
  options.say(`Start-up and memory, ${fmt(options.keys)} keys hit 3 times each over 1 day and over 30 days (seeded into the data directory)`);
  for (const s of sides) {
    options.say(
      `  ${String(s.days).padStart(2)} day${s.days === 1 ? ' ' : 's'}  ${fmt(s.slots)} slots stored, ready after ${fmt(s.readyS, 1)} s, RSS ${fmt(s.readyMb)} MB then, ${fmt(s.idleMb)} MB idle; GET /count?window=30d (1 connection) p50 ${fmt(s.count30d.p50Ms, 2)} ms, p99 ${fmt(s.count30d.p99Ms, 2)} ms`,
    );
  }
  if (day !== undefined && month !== undefined) {
    options.say(`  30 days vs 1 day: RSS ${fmt(month.idleMb / day.idleMb, 2)}x, ready ${fmt(month.readyS / day.readyS, 2)}x (targets: <= 400 MB, within 1.10x, ready <= 2 s, 30-day count p99 <= 5 ms)`);
  }
  return sides;
}
