// TCP sequence numbers live in a 32-bit circle; every comparison must survive wrap-around (RFC 1982 style).

/** a + n modulo 2^32. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** Signed distance a - b in the circle, in [-2^31, 2^31). */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** The later of two sequence numbers. */
export function seqMax(a: number, b: number): number {
  return seqDiff(a, b) >= 0 ? a : b;
}
