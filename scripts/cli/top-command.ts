import type { CommandSpec } from './command-spec.ts';
import { WINDOW_FLAG, describeFreshness } from './count-command.ts';
import { integerFlag, windowFlag } from './flag-values.ts';
import { clientFor } from './node-client.ts';
import { columns, formatCount, printJson, printLines } from './text-output.ts';

/** `hitmesh top [--window W] [-k K] [--prefix P]`: the keys with the most hits. */
export const topCommand: CommandSpec = {
  name: 'top',
  summary: 'the K keys with the most hits in the last W',
  usage: 'top [--window W] [-k K] [--prefix P]',
  positionals: [],
  flags: [WINDOW_FLAG, { name: 'k', short: 'k', value: 'K', help: 'how many keys, 1..1000 (default: 10)' }, { name: 'prefix', value: 'P', help: 'only keys starting with P' }],
  notes: ['output: rank, key, count, then whether the ranking is exact; with --json the node\'s answer {"top":[{"key","count"}…],"exact",…}'],
  async run({ global, flags }) {
    const window = typeof flags.window === 'string' ? windowFlag(flags.window, 'top') : '60s';
    const k = typeof flags.k === 'string' ? integerFlag('-k', flags.k, 1, 1_000, 'top') : 10;
    const prefix = typeof flags.prefix === 'string' ? flags.prefix : undefined;
    const answer = await clientFor(global).top({ window, k, ...(prefix === undefined ? {} : { prefix }) });
    if (global.json) {
      printJson(answer);
      return 0;
    }
    const rows = answer.top.map((entry, i) => [String(i + 1), entry.key, formatCount(entry.count)]);
    const scope = `${prefix === undefined ? '' : `keys starting with ${JSON.stringify(prefix)}, `}window ${answer.window ?? window}, node ${answer.node}`;
    const exactness = answer.exact ? 'exact' : `not exact${answer.maxError === null ? '' : `: a key left out has at most ${formatCount(answer.maxError)} more hits than the last listed`}`;
    printLines([
      ...(rows.length === 0 ? ['no hits'] : columns([['#', 'key', 'count'], ...rows], [0, 2])),
      `${scope}; ${exactness}; ${describeFreshness(answer.freshness)}`,
    ]);
    return 0;
  },
};
