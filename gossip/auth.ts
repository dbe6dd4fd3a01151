import { createHmac, timingSafeEqual } from 'node:crypto';

/** Which end of the connection a proof speaks for. */
export type Role = 'dialer' | 'acceptor';

/**
 * Challenge-response on the handshake: each side sends a fresh nonce and
 * answers the other's with HMAC-SHA256(secret, "hitmesh/1" | role | nonce |
 * own origin). The secret never crosses the wire; a proof cannot be replayed
 * on another connection (fresh nonce); and it names the prover's end of the
 * connection, so a stranger cannot take the proof one member gives it and
 * hand it to another member as its own (both would be acceptors). Frames
 * after the handshake carry no MAC: the secret keeps strangers out, it does
 * not protect a link someone sits in the middle of (use a private network).
 * Without a secret the proof is empty and anyone may join.
 */
export function proveIdentity(secret: string | undefined, peerNonce: Uint8Array, ownOrigin: string, role: Role): Uint8Array {
  if (secret === undefined) return new Uint8Array(0);
  return createHmac('sha256', secret).update(`hitmesh/1 ${role}\u0000`).update(peerNonce).update(ownOrigin).digest();
}

/** Check the peer's proof; `peerRole` is the peer's end of the connection (the opposite of ours). */
export function verifyIdentity(secret: string | undefined, ownNonce: Uint8Array, peerOrigin: string, proof: Uint8Array, peerRole: Role): boolean {
  if (secret === undefined) return true;
  const expected = proveIdentity(secret, ownNonce, peerOrigin, peerRole);
  return proof.length === expected.length && timingSafeEqual(proof, expected);
}
