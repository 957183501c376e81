// Port lists as rsock writes them: "80,443,10000-10005".

export class PortListError extends Error {}

/** Parses a port list; returns the ports in the order given, without duplicates. Throws PortListError naming the bad part. */
export function parsePorts(spec: string): number[] {
  if (typeof spec !== 'string' || spec.trim() === '') throw new PortListError('port list is empty');
  const out: number[] = [];
  const seen = new Set<number>();
  for (const raw of spec.split(',')) {
    const part = raw.trim();
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part);
    if (!m) throw new PortListError(`"${part}" is not a port or a range like 10000-10005`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    for (const p of [lo, hi]) {
      if (p < 1 || p > 65535) throw new PortListError(`port ${p} in "${part}" is outside 1-65535`);
    }
    if (hi < lo) throw new PortListError(`range "${part}" runs backwards`);
    for (let p = lo; p <= hi; p++) {
      if (!seen.has(p)) {
        seen.add(p);
        out.push(p);
      }
    }
  }
  if (out.length > 1024) throw new PortListError(`${out.length} ports is too many (at most 1024)`);
  return out;
}

/** A libpcap expression matching any of the ports on the given side ("src" or "dst"). Ranges stay ranges. */
export function portFilter(ports: number[], side: 'src' | 'dst'): string {
  const sorted = [...ports].sort((a, b) => a - b);
  const parts: string[] = [];
  let i = 0;
  while (i < sorted.length) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(i === j ? `${side} port ${sorted[i]}` : `${side} portrange ${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.length === 1 ? parts[0] : `(${parts.join(' or ')})`;
}
