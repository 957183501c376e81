// The hop-by-hop timeline of a one-in-flight ping-pong (bench/timeline.ts), from the packet taps
// along its path. A ping crosses the taps in a fixed order (points); at the points where the ping is
// plain UDP the tap reads its sequence number, and in between (inside a tunnel, where the header is
// masked) the ping is the first packet of the tunnel's data size after the previous point. With one
// ping in flight no two pings overlap, so that is unambiguous; a ping that some point did not see
// (lost, or a tap that dropped it) is left out and counted.
import type { PcapFrame } from '../test/lib/pcap';
import { pct } from './stats';

/** One packet at a tap: time in µs, direction (up: client → server), payload length, ping sequence if it is a plain ping. */
export interface TapPacket { t: number; up: boolean; len: number; seq?: number }

/** One place the ping passes: the packets of one tap in one direction. */
export interface Point { name: string; packets: TapPacket[] }

export interface Timeline {
  /** Per matched ping, the time at each point, in µs. */
  times: number[][];
  /** Pings seen at the first point that some later point did not see. */
  unmatched: number;
  /** Per unlabelled point, the payload length taken as the tunnel's data packets. */
  dataLen: Array<number | undefined>;
}

const PING_MAGIC = 0x72736b62; // bench/udpload.c's "rskb"
const PING_TYPE = 2;

/** A ping's sequence number when `payload` is one of udpload's pings (its header is little-endian, x86). */
export function pingSeq(payload: Buffer): number | undefined {
  if (payload.length < 32 || payload.readUInt32LE(0) !== PING_MAGIC || payload.readUInt32LE(4) !== PING_TYPE) return undefined;
  return Number(payload.readBigUInt64LE(16));
}

/**
 * Turns a tap's frames into TapPackets: UDP and TCP over IPv4 only (the benchmark's paths); `up` says
 * from the ports which way a packet goes.
 */
export function tapPackets(frames: PcapFrame[], up: (sport: number, dport: number) => boolean | undefined): TapPacket[] {
  const out: TapPacket[] = [];
  for (const f of frames) {
    const ip = f.ip;
    if (!ip || ip.length < 20 || ip[0] >> 4 !== 4 || (ip.readUInt16BE(6) & 0x1fff) !== 0) continue;
    const ihl = (ip[0] & 0x0f) * 4;
    const end = Math.min(ip.length, ip.readUInt16BE(2));
    const proto = ip[9];
    if (end < ihl + 8 || (proto !== 6 && proto !== 17)) continue;
    const dir = up(ip.readUInt16BE(ihl), ip.readUInt16BE(ihl + 2));
    if (dir === undefined) continue;
    const off = proto === 17 ? ihl + 8 : ihl + (ip[ihl + 12] >> 4) * 4;
    if (off > end) continue;
    const payload = ip.subarray(off, end);
    out.push({ t: f.timeMs * 1000, up: dir, len: payload.length, seq: proto === 17 ? pingSeq(payload) : undefined });
  }
  return out;
}

/** The most common non-zero payload length (the tunnel's data segments; keepalives and pure ACKs differ). */
function modalLen(ps: TapPacket[]): number | undefined {
  const n = new Map<number, number>();
  for (const p of ps) if (p.len > 0) n.set(p.len, (n.get(p.len) ?? 0) + 1);
  let best: number | undefined;
  for (const [len, c] of n) if (best === undefined || c > n.get(best)!) best = len;
  return best;
}

/** The first time in sorted `ts` at or after `from` and at or before `to`, or undefined. */
function firstIn(ts: number[], from: number, to: number): number | undefined {
  let lo = 0;
  let hi = ts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ts[mid] < from) lo = mid + 1;
    else hi = mid;
  }
  return lo < ts.length && ts[lo] <= to ? ts[lo] : undefined;
}

/** Matches the pings across the points; the first and the last point must be labelled (plain UDP). */
export function matchPings(points: Point[]): Timeline {
  const labelled = points.map((p) => p.packets.some((x) => x.seq !== undefined));
  if (!labelled[0] || !labelled[points.length - 1]) throw new Error('timeline: the first and last points must see plain pings');
  const bySeq = points.map((p) => {
    const m = new Map<number, number>();
    for (const x of p.packets) if (x.seq !== undefined && !m.has(x.seq)) m.set(x.seq, x.t);
    return m;
  });
  const dataLen = points.map((p, i) => (labelled[i] ? undefined : modalLen(p.packets)));
  const sorted = points.map((p, i) => p.packets.filter((x) => x.len === dataLen[i]).map((x) => x.t).sort((a, b) => a - b));
  const seqs = [...bySeq[0].entries()].sort((a, b) => a[1] - b[1]).map(([s]) => s);
  const times: number[][] = [];
  let unmatched = 0;
  for (const seq of seqs) {
    const row: number[] = [];
    let prev = -Infinity;
    for (let i = 0; i < points.length && row.length === i; i++) {
      let t: number | undefined;
      if (labelled[i]) t = bySeq[i].get(seq);
      else {
        // Bounded by the next labelled point's time for this ping, so a lost ping takes no packet of the next.
        let next = Infinity;
        for (let j = i + 1; j < points.length; j++) if (labelled[j]) { next = bySeq[j].get(seq) ?? -Infinity; break; }
        t = firstIn(sorted[i], prev, next);
      }
      if (t === undefined || t < prev) break;
      row.push(t);
      prev = t;
    }
    if (row.length === points.length) times.push(row);
    else unmatched++;
  }
  return { times, unmatched, dataLen };
}

export interface StageStats { name: string; p50: number; p90: number; p99: number; p999: number; mean: number; slowMean: number }

/**
 * Per stage (between consecutive points) and for the whole span: percentiles, and the mean over the
 * slowest 1 % of pings by whole span (`slowMean`: which stages the tail is made of).
 */
export function stageStats(times: number[][], names: string[]): StageStats[] {
  if (times.length === 0) return [];
  const spans = times.map((r) => r[r.length - 1] - r[0]);
  const order = spans.map((_, i) => i).sort((a, b) => spans[b] - spans[a]);
  const slow = order.slice(0, Math.max(1, Math.ceil(times.length / 100)));
  const stat = (name: string, v: number[], slowV: number[]): StageStats => {
    const s = [...v].sort((a, b) => a - b);
    return { name, p50: pct(s, 0.5), p90: pct(s, 0.9), p99: pct(s, 0.99), p999: pct(s, 0.999),
      mean: v.reduce((a, b) => a + b, 0) / v.length, slowMean: slowV.reduce((a, b) => a + b, 0) / slowV.length };
  };
  const out: StageStats[] = [];
  for (let k = 0; k + 1 < times[0].length; k++) {
    const v = times.map((r) => r[k + 1] - r[k]);
    out.push(stat(names[k] ?? `stage ${k + 1}`, v, slow.map((i) => v[i])));
  }
  out.push(stat('whole span', spans, slow.map((i) => spans[i])));
  return out;
}
