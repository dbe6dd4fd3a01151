/** The flags of `npm run soak -- [flags]`. */
import { parseArgs } from 'node:util';
import { DEFAULT_FAKETIME_LIBRARY } from './faketime.ts';
import { FAULT_KINDS, type SoakFaultKind } from './faults.ts';

export class UsageError extends Error {}

export interface SoakSettings {
  readonly nodes: number;
  readonly durationS: number;
  /** Hits per second over all nodes; undefined: half the peak a calibration burst measures. */
  readonly rate: number | undefined;
  readonly keys: number;
  readonly seed: number;
  /** The faults dealt, in a seeded order. */
  readonly faults: readonly SoakFaultKind[];
  /** Seconds of as-fast-as-possible load that measure the peak (only without --rate). */
  readonly calibrateS: number;
  /** How long a closed range may take to agree on every node. */
  readonly convergeLimitS: number;
  /** libfaketime's path, for the skewed clock; "none" skips that fault. */
  readonly faketime: string;
}

export interface SoakOptions {
  readonly settings: SoakSettings;
  readonly out: string;
  readonly json: boolean;
  readonly quiet: boolean;
  readonly keepData: boolean;
}

export const USAGE = `usage: npm run soak -- [flags]

A proxied local cluster under steady load for a long time, with random faults one after
another (each held a few seconds and healed before the next), checking that no hit is lost
or counted twice, that every closed time range converges, and that memory stays flat.

flags:
  --duration D         how long the load runs: 90s, 10m, 1h or plain seconds (default 10m)
  --nodes N            nodes in the cluster, 2-15 (default 3)
  --rate R             hits per second over all nodes (default: half the peak of a calibration burst)
  --calibrate S        seconds of the calibration burst, as many hits as the cluster takes (default 3)
  --keys K             distinct keys hit (default 20)
  --seed S             picks the faults, their victims and the keys of hits (default 1)
  --faults LIST        which faults to deal, comma-separated: ${FAULT_KINDS.join(',')} (default all)
  --converge-limit S   seconds a closed range may take to agree on every node (default 30)
  --faketime PATH      libfaketime, for the skewed clock; "none" skips that fault (default ${DEFAULT_FAKETIME_LIBRARY})
  --out DIR            where the JSON and HTML reports go (default reports)
  --json               print the JSON report on stdout instead of the summary
  --quiet              no progress lines
  --keep-data          keep the nodes' data directories
  -h, --help

exit status: 0 every check held, 1 one failed, 2 bad flags, 3 the soak could not run`;

export function parseSoakArgs(argv: readonly string[]): SoakOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: false,
      strict: true,
      options: {
        duration: { type: 'string', default: '10m' },
        nodes: { type: 'string', default: '3' },
        rate: { type: 'string' },
        calibrate: { type: 'string', default: '3' },
        keys: { type: 'string', default: '20' },
        seed: { type: 'string', default: '1' },
        faults: { type: 'string', default: FAULT_KINDS.join(',') },
        'converge-limit': { type: 'string', default: '30' },
        faketime: { type: 'string', default: DEFAULT_FAKETIME_LIBRARY },
        out: { type: 'string', default: 'reports' },
        json: { type: 'boolean', default: false },
        quiet: { type: 'boolean', default: false },
        'keep-data': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values } = parsed;
  if (values.help) return 'help';
  const settings: SoakSettings = {
    nodes: integer('--nodes', values.nodes, 2, 15),
    durationS: parseDurationS('--duration', values.duration, 10, 24 * 3600),
    rate: values.rate === undefined ? undefined : number('--rate', values.rate, 1, 50_000),
    keys: integer('--keys', values.keys, 1, 500),
    seed: integer('--seed', values.seed, 0, 2 ** 32 - 1),
    faults: faultList(values.faults),
    calibrateS: number('--calibrate', values.calibrate, 1, 60),
    convergeLimitS: number('--converge-limit', values['converge-limit'], 1, 600),
    faketime: values.faketime,
  };
  return { settings, out: values.out, json: values.json, quiet: values.quiet, keepData: values['keep-data'] };
}

const UNITS: Readonly<Record<string, number>> = { ms: 0.001, s: 1, m: 60, h: 3600 };

/** `90s`, `10m`, `1.5h`, `500ms` or plain seconds, in seconds. */
export function parseDurationS(flag: string, text: string, minS: number, maxS: number): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  const seconds = match === null ? NaN : Number(match[1]) * (UNITS[match[2] ?? 's'] ?? NaN);
  if (!Number.isFinite(seconds) || seconds < minS || seconds > maxS) {
    throw new UsageError(`${flag} must be a duration from ${minS} s to ${maxS / 3600} h, like 90s, 10m or 600, got "${text}"`);
  }
  return seconds;
}

function faultList(text: string): SoakFaultKind[] {
  const names = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new UsageError(`--faults must name at least one of ${FAULT_KINDS.join(', ')}`);
  const kinds: SoakFaultKind[] = [];
  for (const name of names) {
    const kind = FAULT_KINDS.find((k) => k === name);
    if (kind === undefined) throw new UsageError(`unknown fault "${name}" in --faults: ${FAULT_KINDS.join(', ')}`);
    if (!kinds.includes(kind)) kinds.push(kind);
  }
  return kinds;
}

function number(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < min || value > max) throw new UsageError(`${flag} must be a number from ${min} to ${max}, got "${text}"`);
  return value;
}

function integer(flag: string, text: string, min: number, max: number): number {
  const value = number(flag, text, min, max);
  if (!Number.isInteger(value)) throw new UsageError(`${flag} must be a whole number, got "${text}"`);
  return value;
}
