import { pino, type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs on stdout, every line carrying the node id. */
export function createLogger(node: string, level: string): Logger {
  return pino({ level, base: { node }, timestamp: pino.stdTimeFunctions.isoTime });
}
