// Big-endian reads and writes at a byte offset, for the data path. Optimized code inlines indexed
// loads and stores, but it calls Buffer's read and write methods through a generic property lookup (a
// LoadIC call) every time: a dozen such calls per segment parsed (BENCHMARKS.md, cut 7). Callers check
// their bounds first; a read past the end of the array gives 0 here instead of throwing, and a write
// keeps the value's low 16 or 32 bits.

export function u16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

export function u32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

export function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v;
}

export function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}
