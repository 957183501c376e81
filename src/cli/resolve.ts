// Host names and address literals of the flags, turned into the address text the tunnel dials or
// sends to: IPv4 or IPv6, whichever the resolver gives first (its own order, as getaddrinfo has it),
// or the one family `--lcapIp` fixes.
import * as dns from 'dns';
import { formatIp, parseIp } from '../core/addr';

export type Family = 0 | 4 | 6;

/** The IP version of an address literal, 0 for none (""). */
export function familyOf(ip: string): Family {
  const a = ip ? parseIp(ip) : null;
  return a ? (a.ip6 ? 6 : 4) : 0;
}

export async function resolveIp(host: string, what: string, family: Family = 0): Promise<string> {
  const literal = parseIp(host);
  if (literal) {
    const text = formatIp(literal);
    if (family && familyOf(text) !== family) throw new Error(`${what}: ${host} is not an IPv${family} address, as --lcapIp is`);
    return text;
  }
  try {
    const r = await dns.promises.lookup(host, { family });
    return r.address;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new Error(`${what}: cannot resolve "${host}"${family ? ` to an IPv${family} address` : ''}: ${code}`);
  }
}
