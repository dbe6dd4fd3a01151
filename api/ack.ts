import type { FastifyReply } from 'fastify';
import { neededFor, type AckLevel, type AckOutcome } from '../node/ack-waiters.ts';
import { parseDuration } from '../node/duration.ts';
import type { Committed } from '../node/replica.ts';
import type { ApiDeps } from './deps.ts';
import { badRequest } from './http-error.ts';

export const DEFAULT_ACK_TIMEOUT_MS = 5_000;
export const MAX_ACK_TIMEOUT_MS = 60_000;

/** The query parameters of a hit that choose its acknowledgement (SPEC section 3). */
export const ackQueryProperties = { ack: { type: 'string' }, timeout: { type: 'string' } } as const;

/** The 200 and 504 fields a hit with `?ack=` adds. */
export const ackedProperties = { acked: { type: 'integer' }, needed: { type: 'integer' } } as const;
export const ackTimeoutSchema = { type: 'object', required: ['error'], properties: { error: { type: 'string' }, ...ackedProperties } } as const;

export interface AckRequest {
  readonly level: AckLevel;
  readonly timeoutMs: number;
}

/** `?ack=local|majority|all` (default local) and `?timeout=` (a duration, default 5s, at most 60s). */
export function parseAck(query: { ack?: string; timeout?: string }): AckRequest {
  return parseLevel('ack', query.ack, query.timeout);
}

/** `?read=local|majority|all` and `?timeout=`, the same way. */
export function parseRead(query: { read?: string; timeout?: string }): AckRequest {
  return parseLevel('read', query.read, query.timeout);
}

function parseLevel(name: 'ack' | 'read', given: string | undefined, timeout: string | undefined): AckRequest {
  const level = given ?? 'local';
  if (level !== 'local' && level !== 'majority' && level !== 'all') throw badRequest(`${name} must be local, majority or all, got ${JSON.stringify(level)}`);
  if (timeout === undefined) return { level, timeoutMs: DEFAULT_ACK_TIMEOUT_MS };
  const ms = parseDuration(timeout);
  if (ms === undefined || ms < 1 || ms > MAX_ACK_TIMEOUT_MS) throw badRequest(`timeout must be a duration from 1ms to 60s (250ms, 5s), got ${JSON.stringify(timeout)}`);
  return { level, timeoutMs: ms };
}

/**
 * Wait until the members the request asked for hold the batch that carried
 * its hits. Resolves with the fields to add to the 200, or sends the 504
 * itself and resolves undefined: the hits count all the same.
 */
export async function awaitAck(deps: ApiDeps, committed: Committed<unknown>, ack: AckRequest, reply: FastifyReply): Promise<{ acked?: number; needed?: number } | undefined> {
  if (ack.level === 'local') return {};
  let outcome: AckOutcome;
  if (committed.holders !== undefined) {
    // A repeat of a token another node counted: nothing to wait for, only who is known to hold it.
    const members = 1 + deps.peers().length;
    const needed = neededFor(ack.level, members);
    outcome = { ok: committed.holders >= needed, acked: Math.min(committed.holders, members), needed };
  } else outcome = (await deps.awaitAck?.(committed.origin, committed.seq, ack.level, ack.timeoutMs)) ?? { ok: true, acked: 1, needed: neededFor(ack.level, 1) };
  if (outcome.ok) return { acked: outcome.acked, needed: outcome.needed };
  void reply.code(504).send({
    error: `${outcome.acked} of the ${outcome.needed} members ${ack.level} needs were known to hold the hit after ${ack.timeoutMs} ms; it is counted here and replicates as usual`,
    acked: outcome.acked,
    needed: outcome.needed,
  });
  return undefined;
}
