/** The flags of `npm run partition -- <experiment> [flags]`. */
import { parseArgs } from 'node:util';
import { EXPERIMENTS, findExperiment, type Experiment } from './experiments.ts';
import type { ExperimentSettings } from './report.ts';

export class UsageError extends Error {}

export interface PartitionOptions {
  readonly experiments: readonly Experiment[];
  readonly settings: ExperimentSettings;
  readonly out: string;
  readonly json: boolean;
  readonly quiet: boolean;
  readonly keepData: boolean;
}

export const USAGE = `usage: npm run partition -- <experiment|all> [flags]

experiments:
${EXPERIMENTS.map((e) => `  ${e.name.padEnd(8)} ${e.summary}`).join('\n')}
  all      each of them in turn

flags:
  --nodes N            nodes in the cluster (default 3)
  --duration S         seconds of load; faults start after the first 20% (at least 1 s) and are healed at the end (default 10)
  --rate R             hits per second over all nodes (default 200)
  --keys K             distinct keys hit (default 20)
  --seed S             picks the victims, chaos's faults and the keys of hits (default 1)
  --mode cut|blackhole how a link fails: refuse connections, or accept and forward nothing (default cut)
  --converge-limit S   seconds after the heal to wait for convergence before calling it a failure (default 30)
  --continuous         keep the load going through the heal and after it; convergence is judged on closed
                       time ranges (whole seconds whose every hit has been answered) while hits keep coming
  --out DIR            where the JSON and HTML reports go (default reports)
  --json               print the JSON report on stdout instead of the summary
  --quiet              no progress lines
  --keep-data          keep the nodes' data directories
  -h, --help

exit status: 0 every guarantee held, 1 one was broken (or no convergence), 2 bad flags, 3 the experiment could not run`;

export function parsePartitionArgs(argv: readonly string[]): PartitionOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        nodes: { type: 'string', default: '3' },
        duration: { type: 'string', default: '10' },
        rate: { type: 'string', default: '200' },
        keys: { type: 'string', default: '20' },
        seed: { type: 'string', default: '1' },
        mode: { type: 'string', default: 'cut' },
        'converge-limit': { type: 'string', default: '30' },
        continuous: { type: 'boolean', default: false },
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
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'name an experiment: ' + names() : `one experiment at a time, got ${positionals.join(' ')}`);
  const name = positionals[0] ?? '';
  const experiments = name === 'all' ? EXPERIMENTS : [findExperiment(name)].filter((e): e is Experiment => e !== undefined);
  if (experiments.length === 0) throw new UsageError(`unknown experiment "${name}": ${names()}`);
  const mode = values.mode;
  if (mode !== 'cut' && mode !== 'blackhole') throw new UsageError(`--mode must be cut or blackhole, got "${mode}"`);
  const settings: ExperimentSettings = {
    nodes: integer('--nodes', values.nodes, 2, 15),
    durationS: number('--duration', values.duration, 2, 3_600),
    rate: number('--rate', values.rate, 1, 5_000),
    keys: integer('--keys', values.keys, 1, 500),
    seed: integer('--seed', values.seed, 0, 2 ** 32 - 1),
    cutMode: mode,
    convergeLimitS: number('--converge-limit', values['converge-limit'], 1, 600),
    continuous: values.continuous,
  };
  const tooSmall = experiments.find((e) => settings.nodes < e.minNodes);
  if (tooSmall !== undefined) throw new UsageError(`${tooSmall.name} needs at least ${tooSmall.minNodes} nodes`);
  return { experiments, settings, out: values.out, json: values.json, quiet: values.quiet, keepData: values['keep-data'] };
}

const names = (): string => [...EXPERIMENTS.map((e) => e.name), 'all'].join(', ');

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
