/** Longest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 256;

// C0 and C1 control characters, DEL included: matching them is the point.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;

/** Why `key` is not a valid key, or undefined. The same rule holds for keys from HTTP and from peers. */
export function keyProblem(key: string): string | undefined {
  if (key.length === 0) return 'key must not be empty';
  if (!key.isWellFormed()) return 'key must be valid UTF-8 text';
  // A UTF-16 unit is at most 3 bytes of UTF-8: short keys need no byte count.
  if (key.length * 3 > MAX_KEY_BYTES && Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) return `key must be at most ${MAX_KEY_BYTES} bytes of UTF-8`;
  if (CONTROL.test(key)) return 'key must not contain control characters';
  return undefined;
}
