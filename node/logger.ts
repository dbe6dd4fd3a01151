import { write } from 'node:fs';
import { pino, type Logger } from 'pino';

export type { Logger };

export interface LogDestinationOptions {
  /** Lines waiting to be written beyond about this many bytes are dropped (and counted). */
  readonly maxPendingBytes?: number;
}

const MAX_CHUNK_BYTES = 64 * 1024;
/** A non-blocking pipe that is full (EAGAIN) is tried again after this. */
const RETRY_MS = 50;

/**
 * Where log lines go (stdout by default): written asynchronously and in
 * order, never throwing. Losing log lines must never stop a node, so a line
 * that cannot be written (a file that cannot grow, a full disk, a reader
 * gone) or that finds too many lines waiting is dropped and counted, and the
 * next one is tried afresh. pino's own destination re-emits such errors,
 * which kills the process.
 */
export class LogDestination {
  /** Lines lost so far (hitmesh_log_lines_dropped_total). */
  dropped = 0;
  /** The last write error, for tests and debugging. */
  lastError: string | undefined;
  private pending: string[] = [];
  private pendingBytes = 0;
  private writing = false;
  private waiters: (() => void)[] = [];
  private readonly maxPendingBytes: number;

  constructor(
    private readonly fd = 1,
    options: LogDestinationOptions = {},
  ) {
    this.maxPendingBytes = options.maxPendingBytes ?? 4 * 1024 * 1024;
  }

  /** One line (JSON and a newline) per log call, from pino. */
  write(line: string): boolean {
    if (this.pendingBytes + line.length > this.maxPendingBytes) {
      this.dropped++;
      return true;
    }
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (!this.writing) this.writeNext();
    return true;
  }

  /** Resolves once every line taken so far is written or dropped. */
  flushed(): Promise<void> {
    if (!this.writing) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** pino's logger.flush(). */
  flush(done?: (error?: Error) => void): void {
    void this.flushed().then(() => done?.());
  }

  private writeNext(): void {
    if (this.pending.length === 0) {
      this.writing = false;
      for (const resolve of this.waiters.splice(0)) resolve();
      return;
    }
    this.writing = true;
    let bytes = 0;
    let lines = 0;
    while (lines < this.pending.length && (lines === 0 || bytes + (this.pending[lines]?.length ?? 0) <= MAX_CHUNK_BYTES)) bytes += this.pending[lines++]?.length ?? 0;
    const chunk = Buffer.from(this.pending.splice(0, lines).join(''));
    this.pendingBytes -= bytes;
    this.writeChunk(chunk, 0, lines);
  }

  private writeChunk(chunk: Buffer, offset: number, lines: number): void {
    write(this.fd, chunk, offset, chunk.length - offset, null, (error, written) => {
      if (error !== null) {
        if (error.code === 'EAGAIN') {
          setTimeout(() => this.writeChunk(chunk, offset, lines), RETRY_MS).unref();
          return;
        }
        this.dropped += lines;
        this.lastError = `${error.code ?? 'error'}: ${error.message}`;
      } else if (offset + written < chunk.length) {
        this.writeChunk(chunk, offset + written, lines);
        return;
      }
      this.writeNext();
    });
  }
}

/** Structured JSON logs (stdout unless told otherwise), every line carrying the node id. */
export function createLogger(node: string, level: string, destination: LogDestination = new LogDestination()): Logger {
  return pino({ level, base: { node }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
