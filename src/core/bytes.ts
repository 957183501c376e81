// Big-endian reads at a byte offset, for the data path. Optimized code inlines indexed loads, but it
// calls Buffer's read methods through a generic property lookup (a LoadIC call) every time: a dozen
// such calls per segment parsed (BENCHMARKS.md, "Inside a crossing"). Callers check their bounds
// first, as they did before; a read past the end of the array gives 0 here instead of throwing.

export function u16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

export function u32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}
