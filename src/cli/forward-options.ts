// --forward (client) and --allow (server): parsing and checks, each bad value a ConfigError naming the flag.
import { encodeForwardTable, MAX_FORWARDS } from '../core/forwards';
import { parseHostPort } from '../core/addr';
import type { ClientForward } from '../tunnel/client-endpoints';

/** Commander's collector for a repeatable flag. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** "LOCAL_HOST:PORT=TARGET_HOST:PORT" entries; `ludp` is checked against, as no two endpoints may share an address. */
export function parseForwards(specs: string[], ludp: { host: string; port: number }, fail: (msg: string) => Error): ClientForward[] {
  if (specs.length > MAX_FORWARDS) throw fail(`--forward: ${specs.length} given, at most ${MAX_FORWARDS}`);
  const seen = new Set([`${ludp.host}:${ludp.port}`]);
  const out: ClientForward[] = [];
  for (const spec of specs) {
    const parts = spec.split('=');
    if (parts.length !== 2) throw fail(`--forward: "${spec}" is not LOCAL_HOST:PORT=TARGET_HOST:PORT`);
    let local: { host: string; port: number };
    let target: { host: string; port: number };
    try {
      local = parseHostPort(parts[0]);
      target = parseHostPort(parts[1]);
    } catch (e) {
      throw fail(`--forward: "${spec}": ${(e as Error).message}`);
    }
    const key = `${local.host}:${local.port}`;
    if (seen.has(key)) throw fail(`--forward: "${spec}": ${key} is already a local endpoint (--ludp or another --forward)`);
    seen.add(key);
    out.push({ localHost: local.host, localPort: local.port, target });
  }
  try {
    encodeForwardTable(out.map((f) => f.target));
  } catch (e) {
    throw fail(`--forward: ${(e as Error).message}`);
  }
  return out;
}

export function parseAllow(specs: string[], fail: (msg: string) => Error): { host: string; port: number }[] {
  return specs.map((spec) => {
    try {
      return parseHostPort(spec);
    } catch (e) {
      throw fail(`--allow: ${(e as Error).message}`);
    }
  });
}
