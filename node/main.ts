import { CliError, parseCli } from './cli.ts';
import { startNode } from './start-node.ts';

/** `npm run node -- <flags>`: one hitmesh node in the foreground until SIGTERM or Ctrl-C. */
async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseCli(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof CliError) {
      process.stderr.write(`hitmesh: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  if (parsed.kind === 'help') {
    process.stdout.write(`${parsed.text}\n`);
    return 0;
  }
  const node = await startNode(parsed.config).catch((error: unknown) => {
    process.stderr.write(`hitmesh: cannot start: ${error instanceof Error ? error.message : String(error)}\n`);
    return undefined;
  });
  if (node === undefined) return 1;

  return new Promise<number>((resolve) => {
    let shuttingDown = false;
    const shutdown = (signal: string): void => {
      // Ctrl-C reaches npm, tsx and the node at once and tsx relays it again: repeats are expected, not a second request.
      if (shuttingDown) return;
      shuttingDown = true;
      node.logger.info({ signal }, 'shutting down');
      node.stop().then(
        () => resolve(0),
        (error: unknown) => {
          node.logger.error({ err: error }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
  });
}

process.exitCode = await main();
