import type { Freshness } from '../../client/index.ts';
import type { CommandSpec } from './command-spec.ts';
import { keyArgument, windowFlag } from './flag-values.ts';
import { clientFor } from './node-client.ts';
import { columns, formatCount, formatSpan, printJson, printLines } from './text-output.ts';

export const WINDOW_FLAG = { name: 'window', value: 'W', help: 'a duration of at least 1s (30s, 5m, 1h, 7d) or all (default: 60s)' } as const;

/** `synced 2/2 peers, max lag 15ms`: how complete a node's answer is. */
export function describeFreshness(freshness: Freshness): string {
  return `synced ${freshness.synced}/${freshness.peers} peers, max lag ${formatSpan(freshness.maxLagMs)}`;
}

/** `hitmesh count KEY [--window W]`: the hits of a key in a window, as one node counts them. */
export const countCommand: CommandSpec = {
  name: 'count',
  summary: 'how many hits KEY got in the last W',
  usage: 'count KEY [--window W]',
  positionals: ['KEY'],
  flags: [WINDOW_FLAG],
  notes: ['output: the count and which node answered, how fresh; with --json the node\'s answer {"key","count","window",…}'],
  async run({ global, positionals, flags }) {
    const key = keyArgument(positionals[0] ?? '', 'count');
    const window = typeof flags.window === 'string' ? windowFlag(flags.window, 'count') : '60s';
    const answer = await clientFor(global).count(key, { window });
    if (global.json) {
      printJson(answer);
      return 0;
    }
    printLines(
      columns(
        [
          ['key', 'window', 'count', 'node', 'freshness'],
          [answer.key, answer.window ?? window, formatCount(answer.count), answer.node, describeFreshness(answer.freshness)],
        ],
        [2],
      ),
    );
    return 0;
  },
};
