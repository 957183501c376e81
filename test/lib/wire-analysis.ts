// What a censor's middlebox can see in a capture of the tunnel, measured from the packets alone:
// TCP fidelity (timestamp option, TSval clock, TSecr echoes, TTL/DF/IP id against the kernel's own
// handshake segments of the same connection), plaintext structure (byte offsets that hold one value,
// plaintext length fields) and the fully-encrypted-traffic rule of Wu et al., "How the Great Firewall
// of China Detects and Blocks Fully Encrypted Traffic" (USENIX Security 2023), section 4.
// Every function returns figures; the tests decide what passes.
import { ACK, RST, SYN, TcpPacket } from './pcap';

export interface Conn {
  /** client ip:port > server ip:port, with an instance number when the tuple was reused. */
  key: string;
  clientPort: number; serverPort: number;
  /** Every packet of the connection, in capture order. */
  packets: TcpPacket[];
  syn?: TcpPacket; synAck?: TcpPacket;
  /** Segments with payload, per direction, in capture order. */
  c2s: TcpPacket[]; s2c: TcpPacket[];
}

/**
 * Splits a capture into connections. `isServer(ip, port)` says which end is the server. A SYN from
 * the client starts a new instance of its 4-tuple (masquerade may reuse a tuple after a reconnect).
 */
export function connections(pkts: TcpPacket[], isServer: (ip: string, port: number) => boolean): Conn[] {
  const live = new Map<string, Conn>();
  const all: Conn[] = [];
  for (const p of pkts) {
    const toServer = isServer(p.dst, p.dport);
    if (!toServer && !isServer(p.src, p.sport)) continue;
    const tuple = toServer ? `${p.src}:${p.sport}>${p.dst}:${p.dport}` : `${p.dst}:${p.dport}>${p.src}:${p.sport}`;
    let c = live.get(tuple);
    const isSyn = (p.flags & (SYN | ACK)) === SYN && toServer;
    if (!c || (isSyn && c.syn && c.syn.seq !== p.seq)) {
      c = { key: `${tuple}#${all.length}`, clientPort: toServer ? p.sport : p.dport, serverPort: toServer ? p.dport : p.sport, packets: [], c2s: [], s2c: [] };
      live.set(tuple, c);
      all.push(c);
    }
    c.packets.push(p);
    if (isSyn) c.syn ??= p;
    else if ((p.flags & (SYN | ACK)) === (SYN | ACK) && !toServer) c.synAck ??= p;
    if (p.payload.length > 0) (toServer ? c.c2s : c.s2c).push(p);
  }
  return all;
}

export interface Fidelity {
  conns: number;
  /** Connections whose SYN and SYN-ACK were captured. */
  withHandshake: number;
  /** ... and both carried the timestamp option (the kernels negotiated timestamps). */
  tsNegotiated: number;
  dataSegs: number;
  dataSegsWithTs: number;
  /** Consecutive TSval pairs per direction that were checked, and those that went backwards (mod 2^32). */
  tsPairs: number; tsBackwards: number;
  /** Non-SYN segments with a timestamp whose TSecr was checked, and those echoing no TSval the peer had sent. */
  ecrChecked: number; ecrUnknown: number;
  /** Data segments compared with their direction's handshake segment (SYN or SYN-ACK). */
  ipChecked: number; ttlMismatch: number; dfMismatch: number;
  /** Directions with >= 3 data segments, and those whose IP ids were all the same. */
  ipIdDirs: number; ipIdConstant: number;
  examples: string[];
}

const seqLess = (a: number, b: number) => ((a - b) | 0) < 0;

/** TCP and IP fidelity of the data segments, on connections whose handshake was captured. */
export function fidelity(conns: Conn[]): Fidelity {
  const f: Fidelity = { conns: conns.length, withHandshake: 0, tsNegotiated: 0, dataSegs: 0, dataSegsWithTs: 0, tsPairs: 0, tsBackwards: 0,
    ecrChecked: 0, ecrUnknown: 0, ipChecked: 0, ttlMismatch: 0, dfMismatch: 0, ipIdDirs: 0, ipIdConstant: 0, examples: [] };
  const note = (s: string) => { if (f.examples.length < 8) f.examples.push(s); };
  for (const c of conns) {
    if (!c.syn || !c.synAck) continue;
    f.withHandshake++;
    const negotiated = !!c.syn.ts && !!c.synAck.ts;
    if (negotiated) f.tsNegotiated++;
    // Timestamps: every data segment, TSval never going backwards, TSecr echoing a TSval the peer sent.
    const sentVals = { c2s: new Set<number>(), s2c: new Set<number>() };
    const lastVal: { c2s?: number; s2c?: number } = {};
    for (const p of c.packets) {
      const dir = p.sport === c.serverPort ? 's2c' : 'c2s';
      const peer = dir === 'c2s' ? 's2c' : 'c2s';
      if (p.payload.length > 0) {
        f.dataSegs++;
        if (p.ts) f.dataSegsWithTs++;
        else if (negotiated) note(`${c.key} ${dir} data seg #${p.index} (${p.payload.length} B) has no timestamp option`);
      }
      if (!p.ts) continue;
      const prev = lastVal[dir];
      if (prev !== undefined) {
        f.tsPairs++;
        if (seqLess(p.ts.val, prev)) { f.tsBackwards++; note(`${c.key} ${dir} TSval went back from ${prev} to ${p.ts.val} at #${p.index}`); }
      }
      lastVal[dir] = p.ts.val;
      sentVals[dir].add(p.ts.val);
      if ((p.flags & SYN) === 0 && (p.flags & RST) === 0 && (p.flags & ACK) !== 0) {
        f.ecrChecked++;
        if (!sentVals[peer].has(p.ts.ecr)) { f.ecrUnknown++; note(`${c.key} ${dir} TSecr ${p.ts.ecr} at #${p.index} echoes nothing the peer sent`); }
      }
    }
    // IP header fields of the injected data against the kernel's own handshake segment that direction.
    for (const [dir, segs, ref] of [['c2s', c.c2s, c.syn], ['s2c', c.s2c, c.synAck]] as const) {
      for (const p of segs) {
        f.ipChecked++;
        if (p.ttl !== ref.ttl) { f.ttlMismatch++; note(`${c.key} ${dir} TTL ${p.ttl} at #${p.index}, handshake had ${ref.ttl}`); }
        if (p.df !== ref.df) { f.dfMismatch++; note(`${c.key} ${dir} DF ${p.df} at #${p.index}, handshake had ${ref.df}`); }
      }
      // IPv6 has no IP id.
      if (segs.length >= 3 && segs[0].ipVersion === 4) {
        f.ipIdDirs++;
        if (segs.every((p) => p.ipId === segs[0].ipId)) { f.ipIdConstant++; note(`${c.key} ${dir}: all ${segs.length} IP ids are ${segs[0].ipId}`); }
      }
    }
  }
  return f;
}

/** Payloads of the data segments of one direction, without each connection's first (handshake) payload. */
export function bulkPayloads(conns: Conn[], dir: 'c2s' | 's2c'): Buffer[] {
  return conns.flatMap((c) => c[dir].slice(1).map((p) => p.payload));
}

export interface OffsetBias {
  /** Offsets with enough samples that were checked (from the start after `skip`, and from the end). */
  checked: number;
  /** Offsets where one value is in more than `limit` of the segments. */
  flagged: Array<{ where: 'head' | 'tail'; offset: number; value: number; share: number; samples: number }>;
  worst: { where: 'head' | 'tail'; offset: number; value: number; share: number; samples: number } | undefined;
}

/**
 * For offsets 0..head-1 after `skip` bytes (the TLS record header in tls mode) and the last `tail`
 * bytes, the share of segments holding that offset's most common value. Offsets with fewer than
 * minSamples segments long enough are not judged (a few random bytes can repeat by chance).
 */
export function offsetBias(payloads: Buffer[], skip: number, o: { head?: number; tail?: number; minSamples?: number; limit?: number } = {}): OffsetBias {
  const head = o.head ?? 64, tail = o.tail ?? 16, minSamples = o.minSamples ?? 200, limit = o.limit ?? 0.1;
  const res: OffsetBias = { checked: 0, flagged: [], worst: undefined };
  const judge = (where: 'head' | 'tail', offset: number, pick: (b: Buffer) => number | undefined) => {
    const counts = new Uint32Array(256);
    let samples = 0;
    for (const b of payloads) {
      const v = pick(b);
      if (v === undefined) continue;
      counts[v]++;
      samples++;
    }
    if (samples < minSamples) return;
    res.checked++;
    let value = 0;
    for (let v = 1; v < 256; v++) if (counts[v] > counts[value]) value = v;
    const r = { where, offset, value, share: counts[value] / samples, samples };
    if (!res.worst || r.share > res.worst.share) res.worst = r;
    if (r.share > limit) res.flagged.push(r);
  };
  for (let i = 0; i < head; i++) judge('head', i, (b) => (b.length > skip + i ? b[skip + i] : undefined));
  // Tail offsets only on payloads long enough that they do not overlap the skipped header.
  for (let i = 1; i <= tail; i++) judge('tail', i, (b) => (b.length >= skip + tail ? b[b.length - i] : undefined));
  return res;
}

export interface LengthFields {
  checked: number;
  flagged: Array<{ offset: number; endian: 'BE' | 'LE'; k: number; share: number; samples: number }>;
  worst: { offset: number; endian: 'BE' | 'LE'; k: number; share: number; samples: number } | undefined;
}

/**
 * Looks for a plaintext length: a 2-byte field (big- or little-endian) at offsets 0..maxOffset after
 * `skip` that equals the TCP payload length minus one constant k in more than `limit` of the segments.
 */
export function lengthFields(payloads: Buffer[], skip: number, o: { maxOffset?: number; minSamples?: number; limit?: number } = {}): LengthFields {
  const maxOffset = o.maxOffset ?? 32, minSamples = o.minSamples ?? 200, limit = o.limit ?? 0.1;
  const res: LengthFields = { checked: 0, flagged: [], worst: undefined };
  for (let off = 0; off <= maxOffset; off++) {
    for (const endian of ['BE', 'LE'] as const) {
      const counts = new Map<number, number>();
      let samples = 0;
      for (const b of payloads) {
        if (b.length < skip + off + 2) continue;
        const v = endian === 'BE' ? b.readUInt16BE(skip + off) : b.readUInt16LE(skip + off);
        const k = (b.length - v) & 0xffff;
        counts.set(k, (counts.get(k) ?? 0) + 1);
        samples++;
      }
      if (samples < minSamples) continue;
      res.checked++;
      let best = 0, bestK = 0;
      for (const [k, n] of counts) if (n > best) { best = n; bestK = k; }
      const r = { offset: off, endian, k: bestK > 0x7fff ? bestK - 0x10000 : bestK, share: best / samples, samples };
      if (!res.worst || r.share > res.worst.share) res.worst = r;
      if (r.share > limit) res.flagged.push(r);
    }
  }
  return res;
}

const printable = (x: number) => x >= 0x20 && x <= 0x7e;
const HTTP_STARTS = ['GET ', 'PUT ', 'POST ', 'HEAD ', 'DELETE ', 'OPTIONS ', 'CONNECT ', 'PATCH ', 'TRACE '];

export interface FetVerdict { flagged: boolean; popcount: number; exemptions: string[]; length: number }

/**
 * The GFW's rule for fully encrypted traffic, applied to a connection's first client payload: it is
 * blocked unless one exemption holds. Ex1 average set bits per byte <= 3.4 or >= 4.6; Ex2 the first
 * 6 bytes printable; Ex3 more than half printable; Ex4 more than 20 contiguous printable bytes;
 * Ex5 a TLS ([16-17] 03 [00-09]) or HTTP start.
 */
export function fetRule(b: Buffer): FetVerdict {
  let bits = 0, nPrint = 0, run = 0, maxRun = 0;
  for (const x of b) {
    let v = x;
    while (v) { bits += v & 1; v >>= 1; }
    if (printable(x)) { nPrint++; run++; maxRun = Math.max(maxRun, run); } else run = 0;
  }
  const popcount = b.length ? bits / b.length : 0;
  const ex: string[] = [];
  if (popcount <= 3.4 || popcount >= 4.6) ex.push(`Ex1 popcount ${popcount.toFixed(2)}`);
  if (b.length >= 6 && [...b.subarray(0, 6)].every(printable)) ex.push('Ex2 printable prefix');
  if (nPrint > b.length / 2) ex.push('Ex3 mostly printable');
  if (maxRun > 20) ex.push('Ex4 printable run');
  if (b.length >= 3 && (b[0] === 0x16 || b[0] === 0x17) && b[1] === 0x03 && b[2] <= 0x09) ex.push('Ex5 TLS');
  if (HTTP_STARTS.some((m) => b.subarray(0, m.length).toString('latin1') === m)) ex.push('Ex5 HTTP');
  return { flagged: ex.length === 0, popcount, exemptions: ex, length: b.length };
}

/** The FET verdict on each connection's first client payload (connections whose SYN was captured). */
export function firstPayloadVerdicts(conns: Conn[]): Array<{ conn: string; verdict: FetVerdict; head: string }> {
  return conns.filter((c) => c.syn && c.c2s.length > 0)
    .map((c) => ({ conn: c.key, verdict: fetRule(c.c2s[0].payload), head: c.c2s[0].payload.subarray(0, 16).toString('hex') }));
}
