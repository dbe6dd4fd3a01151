/**
 * Typed errors of the client. Each has a stable `code` to branch on, so a
 * caller never parses messages.
 */

/** The node answered a status this client does not retry (400, 401, 404, 413, 415, 422, …), or a retried one ran out of attempts. */
export class HitmeshHttpError extends Error {
  readonly code: `HITMESH_HTTP_${number}`;

  constructor(
    readonly status: number,
    /** The server's `error` message (empty when the body had none). */
    readonly serverMessage: string,
    readonly url: string,
    /** The parsed JSON body, when there was one. */
    readonly body: unknown,
  ) {
    super(`${status} from ${url}${serverMessage === '' ? '' : `: ${serverMessage}`}`);
    this.name = 'HitmeshHttpError';
    this.code = `HITMESH_HTTP_${status}`;
  }
}

/**
 * A 504 of `ack=` (too few members held the hit in time) after every retry.
 * The hit IS counted (on at least one node) and replicates as usual: do not
 * send it again with a new token, or it counts twice.
 */
export class HitmeshAckTimeoutError extends Error {
  readonly code = 'HITMESH_ACK_TIMEOUT';

  constructor(
    readonly acked: number,
    readonly needed: number,
    readonly causes: readonly NodeFailure[],
  ) {
    super(`the hit is counted, but only ${acked} of the ${needed} members needed were known to hold it, after ${causes.length} attempts`);
    this.name = 'HitmeshAckTimeoutError';
  }
}

/** One attempt gave no answer within its timeout. */
export class HitmeshTimeoutError extends Error {
  readonly code = 'HITMESH_TIMEOUT';

  constructor(
    readonly url: string,
    readonly timeoutMs: number,
  ) {
    super(`no answer from ${url} within ${timeoutMs} ms`);
    this.name = 'HitmeshTimeoutError';
  }
}

/** One attempt failed below HTTP: refused, reset, DNS, or an answer that was not the JSON promised. */
export class HitmeshNetworkError extends Error {
  readonly code = 'HITMESH_NETWORK';

  constructor(
    readonly url: string,
    options: { readonly cause: unknown },
  ) {
    super(`request to ${url} failed: ${describe(options.cause)}`, options);
    this.name = 'HitmeshNetworkError';
  }
}

/** Bad input the client can see before sending (e.g. a key `.` or `..` in a path). */
export class HitmeshInputError extends Error {
  readonly code = 'HITMESH_INPUT';

  constructor(message: string) {
    super(message);
    this.name = 'HitmeshInputError';
  }
}

/** What one attempt on one node ended with. */
export interface NodeFailure {
  readonly url: string;
  readonly error: HitmeshHttpError | HitmeshTimeoutError | HitmeshNetworkError;
}

/** Every attempt failed (retries used up, on every node tried); `causes` lists them in order. */
export class HitmeshUnavailableError extends Error {
  readonly code = 'HITMESH_UNAVAILABLE';

  constructor(readonly causes: readonly NodeFailure[]) {
    const last = causes.at(-1);
    super(`every attempt failed (${causes.length})${last === undefined ? '' : `; last: ${last.error.message}`}`);
    this.name = 'HitmeshUnavailableError';
  }
}

export type HitmeshError = HitmeshHttpError | HitmeshAckTimeoutError | HitmeshTimeoutError | HitmeshNetworkError | HitmeshInputError | HitmeshUnavailableError;

function describe(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  // undici wraps the socket error (ECONNREFUSED, ECONNRESET) as the cause of "fetch failed".
  const inner = cause.cause instanceof Error ? `: ${cause.cause.message}` : '';
  return `${cause.message}${inner}`;
}
