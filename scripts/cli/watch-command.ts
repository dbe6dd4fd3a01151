import type { CountAnswer } from '../../client/index.ts';
import type { CommandSpec } from './command-spec.ts';
import { WINDOW_FLAG, describeFreshness } from './count-command.ts';
import { durationFlag, keyArgument, windowFlag } from './flag-values.ts';
import { clientFor, describeFailure } from './node-client.ts';
import { listenForStop } from './stop-signal.ts';
import { columns, formatCount, formatTime, printJson } from './text-output.ts';

type Reading = { readonly url: string; readonly answer: CountAnswer } | { readonly url: string; readonly error: string };

function readingLines(readings: readonly Reading[]): string[] {
  return columns(
    readings.map((r) =>
      'answer' in r ? [r.answer.node, r.url, formatCount(r.answer.count), describeFreshness(r.answer.freshness)] : ['?', r.url, '-', `no answer: ${r.error}`],
    ),
    [2],
  );
}

/** Redraws the block in place on a terminal; elsewhere (a pipe, a file) appends each block. */
function textView(tty: boolean): (header: string, lines: readonly string[]) => void {
  let shown = 0;
  return (header, lines) => {
    const block = [header, ...lines.map((l) => `  ${l}`)];
    const rewind = tty && shown > 0 ? `\x1b[${shown}A` : '';
    process.stdout.write(`${rewind}${block.map((l) => (tty ? `\x1b[2K${l}` : l)).join('\n')}\n`);
    shown = block.length;
  };
}

/** `hitmesh watch KEY`: the key's count on every node given, refreshed until Ctrl-C. */
export const watchCommand: CommandSpec = {
  name: 'watch',
  summary: 'the count of KEY on every node given by --url, refreshed every interval until Ctrl-C',
  usage: 'watch KEY [--window W] [--interval DUR]',
  positionals: ['KEY'],
  flags: [WINDOW_FLAG, { name: 'interval', value: 'DUR', help: 'time between refreshes, at least 100ms (default: 1s)' }],
  notes: [
    'Each node is asked on its own, without failover, so a node that is down shows as "no answer" and the others go on.',
    'output: a line per node (id, URL, count, freshness) per refresh, redrawn in place on a terminal;',
    'with --json one line per refresh {"at","key","window","nodes":[…]} and, at the end, {"summary":{"updates",…}}.',
    'Ctrl-C (SIGINT) or SIGTERM stops it cleanly with exit status 0.',
  ],
  async run({ global, positionals, flags }) {
    const key = keyArgument(positionals[0] ?? '', 'watch');
    const window = typeof flags.window === 'string' ? windowFlag(flags.window, 'watch') : '60s';
    const intervalMs = typeof flags.interval === 'string' ? durationFlag('--interval', flags.interval, 100, 'watch') : 1_000;
    const nodes = global.urls.map((url) => ({ url, client: clientFor(global, { urls: [url], retries: 0 }) }));
    const read = async ({ url, client }: (typeof nodes)[number]): Promise<Reading> => {
      try {
        return { url, answer: await client.count(key, { window }) };
      } catch (error) {
        const cause = describeFailure(error);
        if (cause === undefined) throw error;
        return { url, error: cause };
      }
    };
    const show = textView(process.stdout.isTTY);
    const stop = listenForStop();
    let updates = 0;
    try {
      while (!stop.requested) {
        const started = Date.now();
        const readings = await Promise.race([Promise.all(nodes.map(read)), stop.stopped]);
        if (typeof readings === 'string') break;
        updates++;
        if (global.json) printJson({ at: started, key, window, nodes: readings });
        else show(`${key}, window ${window}, ${formatTime(started)} (Ctrl-C to stop)`, readingLines(readings));
        await stop.sleep(started + intervalMs - Date.now());
      }
    } finally {
      stop.dispose();
    }
    if (global.json) printJson({ summary: { key, window, updates, stoppedBy: await stop.stopped } });
    return 0;
  },
};
