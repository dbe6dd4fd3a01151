/**
 * The checks after the load has stopped and every node agrees: the lifetime
 * and the whole run as one window (count-check.ts), then every fault's
 * closed range again. Those were judged once already while the load ran;
 * reading them at the very end catches a count that changed after it had
 * agreed (a hit counted twice by a later repair, say).
 */
import { boundsViolations, type EpochRange } from '../partition/closed-ranges.ts';
import { checkCounts, type NodeCounts } from '../partition/count-check.ts';
import { readCounts } from '../partition/count-reader.ts';
import type { HitLedger } from '../partition/hit-ledger.ts';
import type { Violation } from '../partition/report.ts';

export interface FinalChecks {
  /** Per node: its lifetime counts (undefined: no answer). */
  readonly lifetime: ReadonlyMap<string, NodeCounts>;
  readonly total: number;
  readonly violations: Violation[];
}

export async function finalChecks(
  nodes: readonly { readonly id: string; readonly url: string }[],
  keys: readonly string[],
  ledger: HitLedger,
  run: EpochRange,
  faultRanges: readonly EpochRange[],
): Promise<FinalChecks> {
  const read = async (range?: EpochRange): Promise<Map<string, NodeCounts>> =>
    new Map(await Promise.all(nodes.map(async (n): Promise<[string, NodeCounts]> => [n.id, await readCounts(n.url, keys, range)])));
  const lifetime = await read();
  const { total, violations } = checkCounts(ledger, { keys, all: lifetime, window: await read(run), range: run });
  let checked = total;
  for (const range of faultRanges) {
    violations.push(...boundsViolations(ledger, keys, range, await read(range)));
    checked += nodes.length * keys.length;
  }
  return { lifetime, total: checked, violations };
}
