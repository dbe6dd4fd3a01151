import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Challenge-response on the handshake: each side sends a fresh nonce and
 * answers the other's with HMAC-SHA256(secret, "hitmesh/1" | nonce | own
 * origin). The secret never crosses the wire, a proof cannot be replayed on
 * another connection (fresh nonce) and cannot be reflected back (it binds the
 * prover's origin). Without a secret the proof is empty and anyone may join.
 */
export function proveIdentity(secret: string | undefined, peerNonce: Uint8Array, ownOrigin: string): Uint8Array {
  if (secret === undefined) return new Uint8Array(0);
  return createHmac('sha256', secret).update('hitmesh/1').update(peerNonce).update(ownOrigin).digest();
}

export function verifyIdentity(secret: string | undefined, ownNonce: Uint8Array, peerOrigin: string, proof: Uint8Array): boolean {
  if (secret === undefined) return true;
  const expected = proveIdentity(secret, ownNonce, peerOrigin);
  return proof.length === expected.length && timingSafeEqual(proof, expected);
}
