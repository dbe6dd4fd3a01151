import {
  HitmeshAckTimeoutError,
  HitmeshClient,
  HitmeshHttpError,
  HitmeshInputError,
  HitmeshNetworkError,
  HitmeshTimeoutError,
  HitmeshUnavailableError,
} from '../../client/index.ts';
import type { GlobalOptions } from './command-spec.ts';

export interface ClientChoice {
  /** The nodes to use; the global --url list when omitted. */
  readonly urls?: readonly string[];
  /** Retries after the first attempt; the client's default when omitted. */
  readonly retries?: number;
}

/** The one place the command line builds a client from its flags. */
export function clientFor(global: GlobalOptions, choice: ClientChoice = {}): HitmeshClient {
  return new HitmeshClient({
    urls: [...(choice.urls ?? global.urls)],
    ...(global.timeoutMs === undefined ? {} : { timeoutMs: global.timeoutMs }),
    ...(choice.retries === undefined ? {} : { retries: choice.retries }),
    ...(global.token === undefined ? {} : { token: global.token }),
  });
}

/** One line naming why a call failed, for the client's own errors; undefined for anything else (a bug, shown in full). */
export function describeFailure(error: unknown): string | undefined {
  if (error instanceof HitmeshUnavailableError) {
    const last = error.causes.at(-1);
    if (last?.error instanceof HitmeshHttpError) return describeFailure(last.error);
    return `cannot reach ${reachedUrls(error)}: ${last === undefined ? error.message : last.error.message}`;
  }
  if (error instanceof HitmeshHttpError) {
    return `${error.url} answered ${error.status}${error.serverMessage === '' ? '' : `: ${error.serverMessage}`}`;
  }
  if (error instanceof HitmeshTimeoutError || error instanceof HitmeshNetworkError || error instanceof HitmeshInputError || error instanceof HitmeshAckTimeoutError) {
    return error.message;
  }
  return undefined;
}

function reachedUrls(error: HitmeshUnavailableError): string {
  const urls = [...new Set(error.causes.map((c) => c.url))];
  return urls.length === 0 ? 'the nodes' : urls.join(', ');
}

/** How a hit ended, for the load generator's tally. */
export type HitOutcome = 'acked' | 'failed' | 'unknown';

/**
 * A failed hit is one known not to count: refused before it was sent (ECONNREFUSED),
 * or rejected by a node. Anything else (a timeout, a connection lost after sending,
 * an ack= that timed out) may or may not have counted: unknown.
 */
export function outcomeOfFailure(error: unknown): HitOutcome {
  if (error instanceof HitmeshHttpError || error instanceof HitmeshInputError) return 'failed';
  if (error instanceof HitmeshNetworkError) return isRefused(error) ? 'failed' : 'unknown';
  if (error instanceof HitmeshUnavailableError) {
    const definite = error.causes.every((c) => c.error instanceof HitmeshHttpError || (c.error instanceof HitmeshNetworkError && isRefused(c.error)));
    return definite ? 'failed' : 'unknown';
  }
  return 'unknown';
}

function isRefused(error: HitmeshNetworkError): boolean {
  let cause: unknown = error.cause;
  for (let depth = 0; depth < 4 && cause instanceof Error; depth++) {
    if ((cause as NodeJS.ErrnoException).code === 'ECONNREFUSED') return true;
    cause = cause.cause;
  }
  return false;
}
