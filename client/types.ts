/**
 * The JSON the hitmesh HTTP API answers (README "HTTP API", api/*.ts), and
 * the options of the client's calls. Fields a route adds only under some
 * query (`acked` under `ack=`, `answered` under `read=`) are optional.
 */

/** `?ack=` of a hit and `?read=` of a count: how many members must take part. */
export type AckLevel = 'local' | 'majority' | 'all';
export type ReadLevel = AckLevel;

/** POST /hit/:key */
export interface HitAnswer {
  readonly key: string;
  readonly n: number;
  /** Id of the node that answered. */
  readonly node: string;
  /** Stamp (epoch ms) of the hit that counted; for a duplicate, the first one's. */
  readonly at: number;
  /** Only with an Idempotency-Key: whether this node already knew the token (trust the count, not this flag). */
  readonly duplicate?: boolean;
  /** Only under `ack=`: members known to hold the hit, and how many were needed. */
  readonly acked?: number;
  readonly needed?: number;
}

/** POST /hits */
export interface HitsAnswer {
  /** Sum of n of the items that counted (repeats of a token excluded). */
  readonly accepted: number;
  /** Items that repeated a token this node knew; present when any item has an id (always, from this client). */
  readonly duplicates?: number;
  readonly acked?: number;
  readonly needed?: number;
}

/** How complete a count answer is. */
export interface Freshness {
  readonly peers: number;
  readonly synced: number;
  readonly maxLagMs: number;
  /** Only under `read=`: the members whose state was joined. */
  readonly answered?: readonly string[];
}

/** What every count answer says beside its counts. */
export interface RangeAnswer {
  /** The window asked for; null for a from/to range. */
  readonly window: string | null;
  /** The range actually counted, rounded out to whole buckets; null for `window=all`. */
  readonly from: number | null;
  readonly to: number | null;
  readonly node: string;
  readonly asOf: number;
  readonly freshness: Freshness;
}

/** GET /count/:key */
export interface CountAnswer extends RangeAnswer {
  readonly key: string;
  readonly count: number;
}

/** GET /counts */
export interface CountsAnswer extends RangeAnswer {
  readonly counts: Readonly<Record<string, number>>;
}

export interface TopEntry {
  readonly key: string;
  readonly count: number;
}

/** GET /top */
export interface TopAnswer extends RangeAnswer {
  readonly top: readonly TopEntry[];
  readonly k: number;
  readonly prefix: string | null;
  /** True when no key left out belongs in the list. */
  readonly exact: boolean;
  /** When not exact: no key left out has more than this many hits above the last listed; null when unknown (under `read=`). */
  readonly maxError: number | null;
}

export type PeerState = 'up' | 'suspect' | 'down';

/** Per origin, what a member holds: [seq, at, digest, high] (gossip/messages.ts). */
export type VersionVector = Readonly<Record<string, unknown>>;

export interface ClusterPeer {
  readonly id: string;
  readonly origin: string | null;
  readonly address: string;
  readonly state: PeerState;
  readonly lastContact: number | null;
  readonly lastContactAgoMs: number | null;
  readonly vv: VersionVector;
  readonly synced: boolean;
  readonly replicationLagMs: number;
  readonly clockOffsetMs: number | null;
  readonly rttMs: number | null;
}

/** GET /cluster */
export interface ClusterAnswer {
  /** The members `ack=` and `read=` count, this node included. */
  readonly members: { readonly ids: readonly string[]; readonly count: number; readonly majority: number };
  readonly node: {
    readonly id: string;
    readonly incarnation: string;
    readonly origin: string;
    readonly address: string;
    readonly seq: number;
    readonly keys: number;
    readonly vv: VersionVector;
  };
  readonly peers: readonly ClusterPeer[];
}

/** DELETE /cluster/members/:id */
export interface ForgetAnswer {
  readonly forgotten: string;
}

/** GET /healthz */
export interface HealthAnswer {
  readonly status: string;
  readonly node: string;
  readonly incarnation: string;
}

/** GET /readyz (200 only: a 503 is retried on another node, then thrown). */
export interface ReadyAnswer {
  readonly ready: boolean;
  readonly reason?: string;
}

// ---------------------------------------------------------------------------
// Call options

export interface HitOptions {
  /** Hits to add, 1..1,000,000 (default 1). */
  readonly n?: number;
  readonly ack?: AckLevel;
  /** Server-side wait for `ack=` (`?timeout=`); the client's per-attempt timeout is stretched to cover it. */
  readonly timeoutMs?: number;
  /** The token of this logical hit; a random UUID when omitted. Reused by every retry on every node. */
  readonly idempotencyKey?: string;
}

export interface HitItem {
  readonly key: string;
  readonly n?: number;
  /** The item's token; a random UUID when omitted, reused by every retry. */
  readonly id?: string;
}

export interface HitsOptions {
  readonly ack?: AckLevel;
  readonly timeoutMs?: number;
}

/** Either a window (`30s`, `5m`, `all`; default `60s` on the server) or a [from, to) range in epoch ms. */
export type CountRange = { readonly window?: string; readonly from?: never; readonly to?: never } | { readonly from: number; readonly to: number; readonly window?: never };

export type CountOptions = CountRange & {
  readonly read?: ReadLevel;
  /** Server-side wait for `read=` (`?timeout=`). */
  readonly timeoutMs?: number;
};

export type TopOptions = CountOptions & {
  /** 1..1000, default 10. */
  readonly k?: number;
  readonly prefix?: string;
};
