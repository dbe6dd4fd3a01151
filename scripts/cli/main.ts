#!/usr/bin/env node
/** `hitmesh COMMAND ...`: parse, dispatch, and turn expected failures into one line and an exit status. */
import { CommandFailure, UsageError } from './cli-errors.ts';
import { parseCommandLine } from './command-line.ts';
import { COMMANDS } from './commands.ts';
import { commandHelp, overallHelp } from './help-text.ts';
import { describeFailure } from './node-client.ts';
import { packageVersion } from './version.ts';

async function main(): Promise<number> {
  try {
    const parsed = parseCommandLine(process.argv.slice(2), process.env, COMMANDS);
    if (parsed.kind === 'version') {
      process.stdout.write(`hitmesh ${packageVersion()}\n`);
      return 0;
    }
    if (parsed.kind === 'help') {
      process.stdout.write(`${parsed.command === undefined ? overallHelp(COMMANDS) : commandHelp(parsed.command)}\n`);
      return 0;
    }
    return await parsed.command.run(parsed.invocation);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`hitmesh: ${error.message} (see hitmesh ${error.command === undefined ? '' : `${error.command} `}--help)\n`);
      return 2;
    }
    const failure = error instanceof CommandFailure ? error.message : describeFailure(error);
    if (failure === undefined) throw error;
    process.stderr.write(`hitmesh: ${failure}\n`);
    return 1;
  }
}

process.exitCode = await main();
