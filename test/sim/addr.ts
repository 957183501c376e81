// Addresses on the simulated network are keys, as the core has them (src/core/addr.ts): IPv4 as its
// u32, IPv6 as a hash. Packets and socket events need the words and the text back, so every address
// the sim meets is registered here.
import { formatIp, IpAddr, isV6Key, key6, parseIp } from '../../src/core/addr';
import { intToIp } from '../../src/core/ipv4';

const known = new Map<number, IpAddr>();

/** The key of an address given as text; registers it. */
export function simIp(text: string): number {
  const a = parseIp(text);
  if (!a) throw new Error(`sim: "${text}" is not an IP address`);
  known.set(a.key, a);
  return a.key;
}

/** The key of an IPv6 address given as words (meta[at..at+3]); registers it. */
export function simIp6(meta: Uint32Array, at: number): number {
  const key = key6(meta[at], meta[at + 1], meta[at + 2], meta[at + 3]);
  if (isV6Key(key) && !known.has(key)) known.set(key, { key, ip6: meta.slice(at, at + 4) });
  return key;
}

/** The words of a registered IPv6 key; null for IPv4. */
export function ip6Of(key: number): Uint32Array | null {
  if (!isV6Key(key)) return null;
  const a = known.get(key);
  if (!a?.ip6) throw new Error(`sim: IPv6 key ${key} was never registered`);
  return a.ip6;
}

export function simIpText(key: number): string {
  return isV6Key(key) ? formatIp({ key, ip6: ip6Of(key) }) : intToIp(key);
}

const LOOPBACK6 = simIp('::1');

/** 127.0.0.0/8 or ::1. */
export function isLoopback(key: number): boolean {
  return key === LOOPBACK6 || (!isV6Key(key) && key >>> 24 === 127);
}
