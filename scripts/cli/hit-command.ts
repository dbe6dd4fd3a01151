import type { CommandSpec } from './command-spec.ts';
import { integerFlag, keyArgument } from './flag-values.ts';
import { clientFor } from './node-client.ts';
import { formatCount, formatTime, printJson, printLines } from './text-output.ts';

/** `hitmesh hit KEY [-n N]`: add hits to a key, once, however often the client retries. */
export const hitCommand: CommandSpec = {
  name: 'hit',
  summary: 'add N hits (default 1) to KEY',
  usage: 'hit KEY [-n N] [--idempotency-key TOKEN]',
  positionals: ['KEY'],
  flags: [
    { name: 'n', short: 'n', value: 'N', help: 'how many hits to add, 1..1000000 (default: 1)' },
    { name: 'idempotency-key', value: 'TOKEN', help: 'count this hit once however often the command is run with it (default: a new one each run)' },
  ],
  notes: ['output: KEY +N on NODE at TIME; with --json the node\'s answer {"key","n","node","at"}'],
  async run({ global, positionals, flags }) {
    const key = keyArgument(positionals[0] ?? '', 'hit');
    const n = typeof flags.n === 'string' ? integerFlag('-n', flags.n, 1, 1_000_000, 'hit') : 1;
    const token = flags['idempotency-key'];
    const answer = await clientFor(global).hit(key, { n, ...(typeof token === 'string' ? { idempotencyKey: token } : {}) });
    if (global.json) printJson(answer);
    else printLines([`${answer.key} +${formatCount(answer.n)} on ${answer.node} at ${formatTime(answer.at)}${answer.duplicate === true ? ' (a repeat: counted once)' : ''}`]);
    return 0;
  },
};
