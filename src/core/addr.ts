// One address type for IPv4 and IPv6. Hot paths (capture, flow tables) key everything by a number:
// an IPv4 address is its u32 value (below 2^32), an IPv6 address a 52-bit hash of its 16 bytes placed
// above 2^32, so tables keyed by number serve both families with no string per packet. A hash can
// collide, so whoever matches a packet to a connection by key also compares the words (sameIp6).
// IPv4-mapped IPv6 (::ffff:a.b.c.d, what a dual-stack socket reports for IPv4 peers) is IPv4 here:
// its packets on the wire are IPv4.
import { intToIp, ipToInt } from './ipv4';

/** An IPv6 address as four u32 words, most significant first (word i = bytes 4i..4i+3, big-endian). */
export type Ip6Words = Uint32Array;

export interface IpAddr {
  /** The table key: the IPv4 u32, or 2^32 + hash of the IPv6 words. */
  key: number;
  /** The IPv6 words; null for IPv4. */
  ip6: Ip6Words | null;
}

const TWO32 = 0x100000000;

/** Seeds of the key hash, random per process: a peer cannot aim at another address's key. */
const SEED_A = (Math.random() * TWO32) >>> 0;
const SEED_B = (Math.random() * TWO32) >>> 0;

function mix(h: number, w: number): number {
  h = Math.imul(h ^ w, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The key of an IPv6 address given as words; IPv4-mapped addresses get their IPv4 key. */
export function key6(w0: number, w1: number, w2: number, w3: number): number {
  if (w0 === 0 && w1 === 0 && w2 === 0xffff) return w3 >>> 0;
  const a = mix(mix(mix(mix(SEED_A, w0), w1), w2), w3);
  const b = mix(mix(mix(mix(SEED_B, w3), w2), w1), w0);
  return TWO32 + (a & 0xfffff) * TWO32 + b;
}

export function isV6Key(key: number): boolean {
  return key >= TWO32;
}

export function sameIp6(a: Ip6Words, w: Uint32Array): boolean {
  return a[0] === w[0] && a[1] === w[1] && a[2] === w[2] && a[3] === w[3];
}

/** Parses dotted IPv4 or IPv6 text (RFC 4291 forms, embedded IPv4 included, no zone); null if neither. */
export function parseIp(text: string): IpAddr | null {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) {
    try {
      return { key: ipToInt(text), ip6: null };
    } catch {
      return null;
    }
  }
  const w = parseIp6Words(text);
  if (!w) return null;
  const key = key6(w[0], w[1], w[2], w[3]);
  return isV6Key(key) ? { key, ip6: w } : { key, ip6: null };
}

function parseIp6Words(text: string): Ip6Words | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || text.length > 45) return null;
  let s = text;
  const tail: number[] = [];
  const v4 = /^(.*:)(\d{1,3}(?:\.\d{1,3}){3})$/.exec(s);
  if (v4) {
    let v: number;
    try {
      v = ipToInt(v4[2]);
    } catch {
      return null;
    }
    tail.push(v >>> 16, v & 0xffff);
    s = v4[1].endsWith('::') ? v4[1] : v4[1].slice(0, -1);
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const groups = (part: string): number[] | null => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = groups(halves[0]);
  const rest = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !rest) return null;
  const given = head.length + rest.length + tail.length;
  let all: number[];
  if (halves.length === 2) {
    if (given > 7) return null;
    all = [...head, ...new Array<number>(8 - given).fill(0), ...rest, ...tail];
  } else {
    if (given !== 8) return null;
    all = [...head, ...tail];
  }
  const w = new Uint32Array(4);
  for (let i = 0; i < 4; i++) w[i] = ((all[2 * i] << 16) | all[2 * i + 1]) >>> 0;
  return w;
}

/** Text of an IPv6 address in the RFC 5952 form (longest run of zero groups as "::", lower case). */
export function formatIp6(w: Uint32Array): string {
  const g: number[] = [];
  for (let i = 0; i < 4; i++) g.push(w[i] >>> 16, w[i] & 0xffff);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

export function formatIp(a: IpAddr): string {
  return a.ip6 ? formatIp6(a.ip6) : intToIp(a.key);
}

/** "1.2.3.4:80" or "[2001:db8::1]:80". */
export function formatIpPort(a: IpAddr, port: number): string {
  return a.ip6 ? `[${formatIp6(a.ip6)}]:${port}` : `${intToIp(a.key)}:${port}`;
}

/** A host for a flag: IPv4, IPv6 (bare or in brackets) or a name; brackets are removed. */
export function hostText(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/**
 * Splits "host:port" or "[ipv6]:port"; the port must be 1-65535. A bare IPv6 address is refused with a
 * hint, since its last group could not be told from a port.
 */
export function parseHostPort(spec: string): { host: string; port: number } {
  const s = spec ?? '';
  const br = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s);
  const m = br ?? /^([^:[\]]+):(\d{1,5})$/.exec(s);
  if (!m) {
    if (parseIp6Words(hostText(s))) throw new Error(`"${spec}" has no port: write an IPv6 address with one as [addr]:port`);
    throw new Error(`"${spec}" is not host:port (IPv6: [addr]:port)`);
  }
  if (br && !parseIp6Words(m[1])) throw new Error(`"${m[1]}" in "${spec}" is not an IPv6 address`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw new Error(`port ${port} in "${spec}" is outside 1-65535`);
  return { host: m[1], port };
}

/** "1.2.3.4:80" or "[2001:db8::1]:80" for an endpoint keyed like a FakeTcp's. */
export function endpointText(ep: { ip: number; port: number; ip6?: Ip6Words | null }): string {
  return formatIpPort({ key: ep.ip, ip6: ep.ip6 ?? null }, ep.port);
}

/**
 * One number for an address key and a port, for flow tables: exact for IPv4 (below 2^48), a hash
 * above 2^48 for IPv6, so the table's owner compares the words on a hit.
 */
export function keyWithPort(key: number, port: number): number {
  if (key < TWO32) return key * 65536 + port;
  const lo = key % TWO32;
  const hi = Math.floor(key / TWO32);
  const a = mix(mix(SEED_A, lo), hi * 65536 + port) & 0xfffff;
  const b = mix(mix(SEED_B, hi ^ (port << 16)), lo);
  return 0x1000000000000 + a * TWO32 + b;
}


/** host:port for logs, with an IPv6 host in brackets. */
export function hostPortText(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
