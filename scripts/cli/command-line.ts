import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './cli-errors.ts';
import type { CommandSpec, FlagSpec, FlagValues, Invocation } from './command-spec.ts';
import { GLOBAL_FLAGS, globalOptions } from './global-flags.ts';

export type ParsedCommandLine =
  | { readonly kind: 'help'; readonly command: CommandSpec | undefined }
  | { readonly kind: 'version' }
  | { readonly kind: 'run'; readonly command: CommandSpec; readonly invocation: Invocation };

type Options = NonNullable<ParseArgsConfig['options']>;

function optionsOf(flags: readonly FlagSpec[]): Options {
  const options: Options = {};
  for (const f of flags) {
    options[f.name] = { type: f.value === undefined ? 'boolean' : 'string', ...(f.short === undefined ? {} : { short: f.short }), ...(f.multiple === true ? { multiple: true } : {}) };
  }
  return options;
}

const GLOBAL_OPTIONS: Options = { ...optionsOf(GLOBAL_FLAGS), version: { type: 'boolean' } };

/**
 * The command is the first positional; global flags may come before or after it.
 * A lenient pass finds it, then a strict pass with the command's flags parses everything.
 */
export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv, commands: readonly CommandSpec[]): ParsedCommandLine {
  const lenient = parseArgs({ args: [...argv], options: GLOBAL_OPTIONS, strict: false, allowPositionals: true });
  const name = lenient.positionals[0];
  if (name === undefined) {
    if (lenient.values.version === true) return { kind: 'version' };
    if (lenient.values.help === true) return { kind: 'help', command: undefined };
    throw new UsageError(`no command given; one of ${commands.map((c) => c.name).join(', ')}`);
  }
  const command = commands.find((c) => c.name === name);
  if (command === undefined) throw new UsageError(`unknown command ${JSON.stringify(name)}; one of ${commands.map((c) => c.name).join(', ')}`);

  let values: FlagValues;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      options: { ...GLOBAL_OPTIONS, ...optionsOf(command.flags) },
      strict: true,
      allowPositionals: true,
    }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error), command.name);
  }
  if (values.help === true) return { kind: 'help', command };
  if (values.version === true) return { kind: 'version' };
  const rest = positionals.slice(1);
  if (rest.length < command.positionals.length) throw new UsageError(`${command.name} needs ${command.positionals.join(' ')}`, command.name);
  if (rest.length > command.positionals.length) throw new UsageError(`unexpected argument ${JSON.stringify(rest[command.positionals.length])}`, command.name);
  let global;
  try {
    global = globalOptions(values, env);
  } catch (error) {
    if (error instanceof UsageError) throw new UsageError(error.message, command.name);
    throw error;
  }
  return { kind: 'run', command, invocation: { global, positionals: rest, flags: values } };
}
