import type { CommandSpec, FlagSpec } from './command-spec.ts';
import { GLOBAL_FLAGS } from './global-flags.ts';

const EXIT_CODES = ['exit status: 0 success, 1 a node could not be reached or answered an error, 2 bad usage'];

function flagLines(flags: readonly FlagSpec[]): string[] {
  return flags.map((f) => {
    const value = f.value === undefined ? '' : ` ${f.value}`;
    // A one-letter flag (-n, -k) is shown by its short form only: `--n` reads as a typo.
    const names = f.name.length === 1 ? `-${f.name}${value}` : `${f.short === undefined ? '    ' : `-${f.short}, `}--${f.name}${value}`;
    return `  ${names.padEnd(28)}  ${f.help}`;
  });
}

export function overallHelp(commands: readonly CommandSpec[]): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 4;
  return [
    'hitmesh: talk to a hitmesh cluster',
    '',
    'usage: hitmesh COMMAND [flags]       (hitmesh COMMAND --help for its flags)',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'global flags:',
    ...flagLines(GLOBAL_FLAGS),
    `  ${'    --version'.padEnd(28)}  print the version and exit`,
    '',
    ...EXIT_CODES,
  ].join('\n');
}

export function commandHelp(command: CommandSpec): string {
  return [
    `hitmesh ${command.name}: ${command.summary}`,
    '',
    `usage: hitmesh ${command.usage}`,
    ...(command.flags.length > 0 ? ['', 'flags:', ...flagLines(command.flags)] : []),
    '',
    'global flags:',
    ...flagLines(GLOBAL_FLAGS),
    ...(command.notes === undefined ? [] : ['', ...command.notes]),
    '',
    ...EXIT_CODES,
  ].join('\n');
}
