import { randomBytes } from 'node:crypto';
import { isNodeId, isOrigin } from '../crdt/names.ts';
import type { Store } from './store.ts';

/**
 * Who this replica is. `id` is the human name; `incarnation` is random and
 * created once with the data directory, so a node that lost its data comes
 * back as a new replica even under an old name and never reuses an identity
 * whose counts it no longer has. `origin` names the replica's slots.
 */
export interface Identity {
  readonly id: string;
  readonly incarnation: string;
  readonly origin: string;
  readonly createdAt: number;
}

export const IDENTITY_META = 'identity';

export class IdentityMismatchError extends Error {
  readonly code = 'HITMESH_IDENTITY_MISMATCH';
}

export function originOf(id: string, incarnation: string): string {
  return `${id}#${incarnation}`;
}

/** The identity stored in `store`, or a new one written to it. */
export async function loadOrCreateIdentity(store: Store, id: string, now: number): Promise<{ identity: Identity; created: boolean }> {
  const stored = await store.getMeta(IDENTITY_META);
  if (stored !== undefined) {
    const identity = parseIdentity(stored);
    if (identity.id !== id) {
      throw new IdentityMismatchError(`this data directory belongs to node ${JSON.stringify(identity.id)}, not ${JSON.stringify(id)}: start it with --id ${identity.id} or use another --data`);
    }
    return { identity, created: false };
  }
  const identity = newIncarnation(id, now);
  await store.commit({ slots: [], meta: new Map([[IDENTITY_META, JSON.stringify(identity)]]) });
  return { identity, created: true };
}

/** A fresh identity under `id`: a new random incarnation, never one whose counts exist anywhere. */
export function newIncarnation(id: string, now: number): Identity {
  const incarnation = randomBytes(6).toString('hex');
  return { id, incarnation, origin: originOf(id, incarnation), createdAt: now };
}

function parseIdentity(text: string): Identity {
  const value: unknown = JSON.parse(text);
  if (typeof value === 'object' && value !== null) {
    const { id, incarnation, createdAt } = value as Record<string, unknown>;
    if (isNodeId(id) && typeof incarnation === 'string' && isOrigin(originOf(id, incarnation)) && typeof createdAt === 'number') {
      return { id, incarnation, origin: originOf(id, incarnation), createdAt };
    }
  }
  throw new Error(`corrupt identity record: ${text}`);
}
