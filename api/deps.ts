import type { Logger } from '../node/logger.ts';
import type { NodeMetrics } from '../node/metrics.ts';
import type { PeerView } from '../gossip/protocol.ts';
import type { WindowPlan } from '../crdt/window-plan.ts';
import type { AckLevel, AckOutcome } from '../node/ack-waiters.ts';
import type { FreshAnswer } from '../node/fresh-reads.ts';
import type { Replica } from '../node/replica.ts';

/** How complete a count answer is (SPEC section 3). */
export interface Freshness {
  readonly peers: number;
  readonly synced: number;
  readonly maxLagMs: number;
}

/** What the HTTP layer needs from the node: it only translates between HTTP and these. */
export interface ApiDeps {
  readonly replica: Replica;
  readonly metrics: NodeMetrics;
  readonly logger: Logger;
  readonly bodyLimitBytes: number;
  /** The address peers dial for this node. */
  readonly advertise: () => string;
  /** Freshness of this node's view; a lone node is always complete. */
  readonly freshness: () => Freshness;
  /** The other members as gossip sees them. */
  readonly peers: () => readonly PeerView[];
  /** Forget a member now (DELETE /cluster/members/:id); false when it is not known. */
  readonly forgetMember?: (id: string) => boolean;
  /** Wait until `level` of the members hold batch `seq` of `origin` (`?ack=`); undefined (no gossip): this node is every member. */
  readonly awaitAck?: (origin: string, seq: number, level: AckLevel, timeoutMs: number) => Promise<AckOutcome> | undefined;
  /** `?read=`: counts joined from `level` of the members; undefined (no gossip): this node answers alone. */
  readonly freshRead?: (keys: readonly string[], plan: WindowPlan, level: AckLevel, timeoutMs: number) => Promise<FreshAnswer> | undefined;
}

export const SINGLE_NODE_FRESHNESS: Freshness = { peers: 0, synced: 0, maxLagMs: 0 };
