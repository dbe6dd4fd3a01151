/**
 * The grammar of the names replicas go by, the same wherever a name enters:
 * flags, the store, and frames from peers. A name that passes here is safe
 * to use as a LevelDB key part (no NUL, no control characters), a metric
 * label and a log field.
 *
 *   node id     = 1-64 of [A-Za-z0-9._-], starting with a letter or digit
 *   incarnation = 1-32 of [A-Za-z0-9]
 *   origin      = node id "#" incarnation   (one replica's slots are named by it)
 *   address     = host ":" port, port 1-65535, host a DNS name, IPv4 or [IPv6]
 */
const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ORIGIN = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63})#[A-Za-z0-9]{1,32}$/;
const ADDRESS = /^(\[[0-9a-fA-F:.]{2,45}\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):([0-9]{1,5})$/;

/** Longest origin: a 64-character id, '#', a 32-character incarnation. */
export const MAX_ORIGIN_LENGTH = 97;
/** Longest address: a 253-character DNS name, ':', 5 digits. */
export const MAX_ADDRESS_LENGTH = 259;

export function isNodeId(text: unknown): text is string {
  return typeof text === 'string' && NODE_ID.test(text);
}

export function isOrigin(text: unknown): text is string {
  return typeof text === 'string' && text.length <= MAX_ORIGIN_LENGTH && ORIGIN.test(text);
}

/** The node id an origin belongs to (`n1` of `n1#3fa9`); undefined for a string that is not an origin. */
export function nodeIdOf(origin: string): string | undefined {
  return ORIGIN.exec(origin)?.[1];
}

/** "name:7001" or "[::1]:7001" as host (brackets off) and port; the grammar is isAddress's. */
export function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(address.slice(at + 1)) };
}

/** host:port with a port in 1..65535: what a node may be dialed at. */
export function isAddress(text: unknown): text is string {
  if (typeof text !== 'string' || text.length > MAX_ADDRESS_LENGTH) return false;
  const match = ADDRESS.exec(text);
  if (match === null) return false;
  const port = Number(match[2]);
  return port >= 1 && port <= 65_535;
}
